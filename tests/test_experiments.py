"""The experiments: each writes decodable figures and a JSON of its numbers, and the init study's
numbers show the known results (a)-(d), asserted here directly on the JSON, not on its own checks."""
import json

import numpy as np
import pytest

pytest.importorskip("matplotlib")
import matplotlib.image as mpimg  # noqa: E402

from mlpnumpy.errors import InvalidArgumentError  # noqa: E402
from mlpnumpy.experiments import main, run  # noqa: E402
from mlpnumpy.experiments.init_study import run_stack  # noqa: E402
from mlpnumpy.experiments.optimizers_study import descend, rosenbrock, rosenbrock_grad  # noqa: E402
from mlpnumpy.optimizers import SGD  # noqa: E402


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
    assert main(["init", "--out", str(out)]) == 0  # the full run: histogram figures included
    return out, _check_outputs(out, "init")


def test_init_writes_histograms_curves_and_all_numbers(init_data, capsys):
    out, data = init_data
    assert sorted(data["figures"]) == ["init_curves.png", "init_hist_relu.png", "init_hist_sigmoid.png",
                                       "init_hist_tanh.png"]
    for act in ("sigmoid", "tanh", "relu"):
        for scheme in ("std1", "std0.01", "xavier", "he"):
            r = data["results"][act][scheme]
            for key in ("act_mean", "act_std", "sample_std", "saturated_frac", "grad_W_norm", "grad_in_norm"):
                assert len(r[key]) == 10 and all(np.isfinite(r[key]))
    assert all(data["checks"].values()), data["checks"]


def _r(data, act, scheme, key="act_std"):
    return np.array(data["results"][act][scheme][key])


def test_a_unit_gaussian_weights_saturate_sigmoid_and_tanh(init_data):
    _, d = init_data
    assert np.all(_r(d, "sigmoid", "std1", "saturated_frac")[4:] > 0.5)   # < 0.05 or > 0.95, deep layers
    assert np.all(_r(d, "tanh", "std1", "saturated_frac")[4:] > 0.5)      # |a| > 0.99
    # and the slope there is ~0: the tanh stack's first-layer gradient is not what deep layers get
    assert _r(d, "tanh", "std1")[-1] > 0.9


def test_b_tiny_weights_collapse_the_signal(init_data):
    _, d = init_data
    assert _r(d, "tanh", "std0.01")[-1] < 1e-6 and _r(d, "relu", "std0.01")[-1] < 1e-6
    for act in ("tanh", "relu"):
        s = _r(d, act, "std0.01")
        assert np.all(s[1:] < 0.2 * s[:-1])  # shrinks by about 10x (tanh) or 14x (ReLU) per layer
    mean, std = _r(d, "sigmoid", "std0.01", "act_mean"), _r(d, "sigmoid", "std0.01")
    assert abs(mean[-1] - 0.5) < 0.01 and std[-1] < 0.02
    assert _r(d, "sigmoid", "std0.01", "sample_std")[-1] < 1e-6  # every input gives the same output


def test_c_xavier_keeps_sigmoid_and_tanh_in_their_working_range(init_data):
    _, d = init_data
    tanh = _r(d, "tanh", "xavier")
    assert tanh[-1] > 0.1 and _r(d, "tanh", "xavier", "saturated_frac")[-1] < 0.1
    assert tanh[-1] > 1e4 * _r(d, "tanh", "std0.01")[-1]
    assert _r(d, "tanh", "xavier", "sample_std")[-1] > 0.1  # the inputs are still told apart
    sig = _r(d, "sigmoid", "xavier")
    assert sig[-1] > 0.05 and _r(d, "sigmoid", "xavier", "saturated_frac")[-1] < 0.1
    assert sig[-1] > 4 * _r(d, "sigmoid", "std0.01")[-1]


def test_d_relu_he_keeps_the_spread_and_xavier_halves_the_variance(init_data):
    _, d = init_data
    he, xav = _r(d, "relu", "he"), _r(d, "relu", "xavier")
    assert 0.5 <= he[-1] / he[0] <= 2.0
    assert np.all(np.diff(xav) < 0) and xav[-1] / xav[0] < 0.1
    # the variance ratio per layer is 1/2 on average: std ratio over 9 layers ~ 2^-4.5 = 0.044
    assert 0.02 < xav[-1] / xav[0] < 0.09


def test_init_table_is_printed(tmp_path, capsys):
    assert main(["init", "--quick", "--out", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "relu / He" in text and "L10" in text and "FAILED" not in text
    assert _check_outputs(tmp_path, "init")["figures"] == ["init_curves.png"]


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
    assert set(data["results"]) == {"relu", "leaky_relu", "elu", "gelu", "tanh", "sigmoid"}
    for r in data["results"].values():
        assert len(r["val_accuracy"]) == data["config"]["epochs"] == 3
        assert 0.5 < r["test_accuracy"] <= 1.0  # three epochs already learn the digits well past chance
    assert "leaky_relu" in capsys.readouterr().out


def test_optimizers_experiment(tmp_path):
    assert main(["optimizers", "--quick", "--out", str(tmp_path / "o")]) == 0
    data = _check_outputs(tmp_path / "o", "optimizers")
    res = data["results"]
    assert set(res) == {"sgd", "momentum", "nesterov", "rmsprop", "adagrad", "adam", "adamw"}
    for r in res.values():
        assert len(r["train_loss"]) == 2 and r["train_loss"][-1] < r["train_loss"][0]
        assert r["rosenbrock_final"] < rosenbrock(-1.2, 1.0)  # every one goes downhill
        assert r["rosenbrock_path"][0] == [-1.2, 1.0]
    assert res["momentum"]["train_loss"][-1] < res["sgd"]["train_loss"][-1]


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
    with pytest.raises(SystemExit):
        main(["nope"])
    with pytest.raises(InvalidArgumentError, match="experiment='nope' is not one of: init"):
        run("nope")
