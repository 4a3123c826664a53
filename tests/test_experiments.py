"""The experiments: each writes decodable figures and a JSON of its numbers, and the init study's
numbers show the known results (a)-(d), asserted here directly on the JSON, not on its own checks."""
import contextlib
import io
import json

import numpy as np
import pytest

pytest.importorskip("matplotlib")
import matplotlib.image as mpimg  # noqa: E402

from mlpnumpy.errors import InvalidArgumentError  # noqa: E402
from mlpnumpy.experiments import main, run  # noqa: E402
from mlpnumpy.experiments.init_study import histogram_figure, run_stack  # noqa: E402
from mlpnumpy.experiments.optimizers_study import descend, rosenbrock, rosenbrock_grad  # noqa: E402
from mlpnumpy.optim.optimizers import SGD  # noqa: E402


def _check_outputs(out, name):
    data = json.loads((out / f"{name}.json").read_text())
    assert data["experiment"] == name and data["figures"]
    for fig in data["figures"]:
        img = mpimg.imread(out / fig)
        assert img.ndim == 3 and min(img.shape[:2]) > 200
    return data


@pytest.fixture(scope="module")
def init_data(tmp_path_factory):
    out = tmp_path_factory.mktemp("init")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["init", "--quick", "--out", str(out)]) == 0  # 300 inputs: the findings hold there too
    return out, _check_outputs(out, "init"), printed.getvalue()


def test_init_writes_curves_and_all_numbers(init_data, capsys):
    out, data, _ = init_data
    assert data["figures"] == ["init_curves.png"] and data["config"]["n_samples"] == 300
    for act in ("sigmoid", "tanh", "relu"):
        for scheme in ("std1", "std0.01", "xavier", "he"):
            r = data["results"][act][scheme]
            for key in ("act_mean", "act_std", "sample_std", "saturated_frac", "grad_W_norm", "grad_in_norm"):
                assert len(r[key]) == 10 and all(np.isfinite(r[key]))
    assert all(data["checks"].values()), data["checks"]


def _r(data, act, scheme, key="act_std"):
    return np.array(data["results"][act][scheme][key])


def test_a_unit_gaussian_weights_saturate_sigmoid_and_tanh(init_data):
    _, d, _ = init_data
    assert np.all(_r(d, "sigmoid", "std1", "saturated_frac")[4:] > 0.5)   # < 0.05 or > 0.95, deep layers
    assert np.all(_r(d, "tanh", "std1", "saturated_frac")[4:] > 0.5)      # |a| > 0.99
    assert _r(d, "tanh", "std1")[-1] > 0.9
    # yet the gradient does not vanish: with weights 10x too large it explodes backwards
    g = _r(d, "tanh", "std1", "grad_W_norm")
    assert np.all(g[:-1] > g[1:]) and g[0] > 100 * g[-1]


def test_b_tiny_weights_collapse_the_signal(init_data):
    _, d, _ = init_data
    assert _r(d, "tanh", "std0.01")[-1] < 1e-6 and _r(d, "relu", "std0.01")[-1] < 1e-6
    for act in ("tanh", "relu"):
        s = _r(d, act, "std0.01")
        assert np.all(s[1:] < 0.2 * s[:-1])  # shrinks by about 10x (tanh) or 14x (ReLU) per layer
    mean, std = _r(d, "sigmoid", "std0.01", "act_mean"), _r(d, "sigmoid", "std0.01")
    assert abs(mean[-1] - 0.5) < 0.01 and std[-1] < 0.02
    assert _r(d, "sigmoid", "std0.01", "sample_std")[-1] < 1e-6  # every input gives the same output


def test_c_xavier_keeps_tanh_working_but_not_the_sigmoid(init_data):
    _, d, _ = init_data
    tanh = _r(d, "tanh", "xavier")
    assert tanh[-1] > 0.1 and _r(d, "tanh", "xavier", "saturated_frac")[-1] < 0.1
    assert tanh[-1] > 1e4 * _r(d, "tanh", "std0.01")[-1]
    assert _r(d, "tanh", "xavier", "sample_std")[-1] > 0.1  # the inputs are still told apart
    g = _r(d, "tanh", "xavier", "grad_W_norm")
    assert g.max() < 2 * g.min()  # and every layer gets about the same gradient
    sig = _r(d, "sigmoid", "xavier")
    assert sig[-1] > 0.05 and _r(d, "sigmoid", "xavier", "saturated_frac")[-1] < 0.1  # nothing saturates ...
    assert _r(d, "sigmoid", "xavier", "sample_std")[-1] < 1e-5  # ... but the inputs are no longer told apart
    g = _r(d, "sigmoid", "xavier", "grad_W_norm")
    assert np.all(g[:-1] < g[1:]) and g[0] < 1e-4 * g[-1]  # and the gradient vanishes backwards


def test_d_relu_he_keeps_the_spread_and_xavier_halves_the_variance(init_data):
    _, d, _ = init_data
    he, xav = _r(d, "relu", "he"), _r(d, "relu", "xavier")
    assert 0.5 <= he[-1] / he[0] <= 2.0
    assert np.all(np.diff(xav) < 0) and xav[-1] / xav[0] < 0.1
    # the variance ratio per layer is 1/2 on average: std ratio over 9 layers ~ 2^-4.5 = 0.044
    assert 0.02 < xav[-1] / xav[0] < 0.09


def test_init_table_is_printed(init_data):
    text = init_data[2]
    assert "relu / He" in text and "L10" in text and "FAILED" not in text and "300 inputs" in text


def test_init_histograms_share_one_x_scale_per_row_and_their_labels_do_not_overlap():
    runs = {s: run_stack("relu", s, n_samples=200, width=20, depth=10, keep_activations=True)
            for s in ("std1", "std0.01", "he")}
    fig = histogram_figure("relu", runs)
    axes = np.array(fig.axes).reshape(3, 10)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    for row in axes:
        assert len({ax.get_xlim() for ax in row}) == 1  # one x-scale per row
        boxes = []
        for ax in row:
            lo, hi = ax.get_xlim()
            labels = [t for t in ax.get_xticklabels() if t.get_text() and lo <= t.get_position()[0] <= hi]
            assert 1 <= len(labels) <= 4
            boxes += [t.get_window_extent(renderer) for t in labels]
        for i, a in enumerate(boxes):  # no tick label overlaps another, in its panel or the next
            for b in boxes[i + 1:]:
                assert not a.overlaps(b), (a, b)
    # std 5.8 at layer 1 against ~1e3 at layer 10 (N(0, 1), width 20): layer 1 fills the first bins only
    first = axes[0, 0].patches
    heights = np.array([p.get_height() for p in first])
    assert heights[:3].sum() == heights.sum()


def test_init_backward_matches_an_explicit_chain_rule():
    r = run_stack("tanh", "xavier", n_samples=50, width=8, depth=3, seed=1, keep_activations=True)
    rng = np.random.default_rng(1)
    X = rng.standard_normal((50, 8))
    Ws = [rng.standard_normal((8, 8)) * np.sqrt(2 / 16) for _ in range(3)]
    G = rng.standard_normal((50, 8))
    acts, a = [], X
    for W in Ws:
        a = np.tanh(a @ W)
        acts.append(a)
    np.testing.assert_allclose(r["a"][-1], acts[-1])
    dz = G * (1 - acts[-1] ** 2)
    assert r["grad_W_norm"][-1] == pytest.approx(np.linalg.norm(acts[-2].T @ dz))


def test_activations_experiment(tmp_path, capsys):
    assert main(["activations", "--quick", "--out", str(tmp_path / "a")]) == 0
    data = _check_outputs(tmp_path / "a", "activations")
    assert data["figures"] == ["activations.png", "activations_gradients.png"]
    assert data["config"]["optimizer"].startswith("SGD") and data["config"]["seeds"] == [0, 1]
    res = data["results"]
    assert set(res) == {"relu", "leaky_relu", "elu", "gelu", "tanh", "sigmoid"}
    for r in res.values():
        assert np.array(r["val_accuracy"]).shape == (2, 2)  # seed x epoch
        assert np.array(r["grad_W_norm"]).shape == (2, 2, 5)  # seed x epoch x Dense layer
        assert r["test_accuracy_min"] <= r["test_accuracy_mean"] <= r["test_accuracy_max"]
    # plain SGD, 4 hidden layers: the sigmoid's gradient vanishes towards the input and it stays
    # near chance, well outside the seeds' range of ReLU
    def first_to_last(act):
        g = res[act]["grad_W_norm_first_epoch"]
        return g[0] / g[-1]
    assert first_to_last("sigmoid") < 0.05 and first_to_last("relu") > 0.3
    assert res["sigmoid"]["test_accuracy_max"] < 0.3 < 0.6 < res["relu"]["test_accuracy_min"]
    assert "leaky_relu" in capsys.readouterr().out


def test_optimizers_experiment_tunes_each_learning_rate(tmp_path):
    assert main(["optimizers", "--quick", "--out", str(tmp_path / "o")]) == 0
    data = _check_outputs(tmp_path / "o", "optimizers")
    res = data["results"]
    assert set(res) == {"sgd", "momentum", "nesterov", "rmsprop", "adagrad", "adam", "adamw"}
    for name, r in res.items():
        grid = data["config"]["grids"][name]
        tuned = r["tuning"]
        assert tuned["lr"] == grid["digits"] and len(grid["digits"]) == 2  # quick: the middle of the grid
        finite = [v for v in tuned["final_val_loss"] if v is not None]
        assert r["lr"] in grid["digits"] and r["final_val_loss"] == min(finite)  # the best of its grid
        assert r["lr_at_grid_edge"] == (r["lr"] in (grid["digits"][0], grid["digits"][-1]))
        assert len(r["train_loss"]) == 2 and r["train_loss"][-1] < r["train_loss"][0]
        assert r["rosenbrock_lr"] in grid["rosenbrock"]
        assert r["rosenbrock_final"] == min(v for v in r["rosenbrock_tuning"]["final"] if v is not None)
        assert r["rosenbrock_final"] < rosenbrock(-1.2, 1.0)  # every one goes downhill
        assert r["rosenbrock_path"][0] == [-1.2, 1.0]


def test_rosenbrock_gradient_and_momentum_on_the_full_run():
    for x, y in [(-1.2, 1.0), (0.3, -0.7), (1.0, 1.0)]:
        h = 1e-6
        num = [(rosenbrock(x + h, y) - rosenbrock(x - h, y)) / (2 * h),
               (rosenbrock(x, y + h) - rosenbrock(x, y - h)) / (2 * h)]
        np.testing.assert_allclose(rosenbrock_grad(x, y), num, rtol=1e-6, atol=1e-6)
    plain = descend(SGD(lr=1e-3), 2000)[-1]
    heavy = descend(SGD(lr=1e-3, momentum=0.9), 2000)[-1]
    assert rosenbrock(*heavy) < 1e-6 < 0.01 < rosenbrock(*plain)  # momentum crosses the flat valley


def test_default_out_and_unknown_names(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["init", "--quick"]) == 0
    assert (tmp_path / "runs" / "experiment-init" / "init.json").is_file()
    with pytest.raises(InvalidArgumentError, match="invalid choice: 'nope'"):  # one line from mlpnumpy's main
        main(["nope"])
    with pytest.raises(InvalidArgumentError, match="experiment='nope' is not one of: init"):
        run("nope")


def test_diagnostics_experiment(tmp_path):
    assert main(["diagnostics", "--quick", "--out", str(tmp_path / "d")]) == 0
    data = _check_outputs(tmp_path / "d", "diagnostics")
    res = data["results"]
    init = res["initial_loss"]
    assert init["ln_K"] == pytest.approx(np.log(10))
    assert abs(init["loss_output_x0.1"] - init["ln_K"]) < 0.05       # unsure: p ~ 1/K
    assert init["ln_K"] < init["loss"] < 2 * init["ln_K"]            # as built: somewhat over-confident
    assert init["loss_output_x10"] > 5 * init["ln_K"]                # confidently wrong
    loss = res["overfit_one_batch"]["loss"]
    assert len(loss) == 60 and loss[-1] < 1e-3 * loss[0]             # one batch is learnt by heart
    ratios = {r["lr"]: r["update_ratio"][0][-1] for r in res["update_ratios"]}
    assert ratios[1e-4] < 3e-5 < 3e-4 < ratios[1e-2] < 3e-3 < 1e-2 < ratios[1.0]
