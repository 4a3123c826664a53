"""InternalsTracker: per-layer activation, gradient and update statistics, checked against hand
computations, and plot_internals' figure."""
import numpy as np
import pytest

from mlpnumpy import MLP, SGD
from mlpnumpy.training.callbacks import LambdaCallback
from mlpnumpy.errors import InvalidArgumentError
from mlpnumpy.training.internals import InternalsTracker, layer_stats, plot_internals


def _data(rng, n=64, d=6, k=3):
    X = rng.standard_normal((n, d)).astype(np.float32)
    y = rng.integers(0, k, n)
    return X, y


def test_keys_land_in_logs_history_and_records(rng):
    X, y = _data(rng)
    model = MLP([6, 8, 5, 3], ["relu", "tanh"], seed=0)
    tracker = InternalsTracker(probe=X[:40])
    seen = []
    hist = model.fit(X, y, epochs=3, batch_size=16, callbacks=[tracker, LambdaCallback(
        on_epoch_end=lambda e, logs: seen.append(set(logs)))], verbose=0)
    relu, tanh, out = (f"internals/layer{i}/" for i in range(3))
    expected = {relu + "dead_frac", tanh + "saturated_frac", out + "act_std", out + "update_ratio"}
    assert expected <= set(hist.history) and all(expected <= s for s in seen)
    assert relu + "saturated_frac" not in hist.history and tanh + "dead_frac" not in hist.history
    for key in expected:
        assert len(hist.history[key]) == 3
    assert tracker.epochs == [0, 1, 2]
    assert tracker.records["layer1"]["saturated_frac"] == hist.history[tanh + "saturated_frac"]
    assert "Dense(8, 5" in tracker.layer_names["layer1"]


def test_activation_stats_are_those_of_the_final_model_on_the_probe(rng):
    X, y = _data(rng)
    model = MLP([6, 10, 3], "relu", seed=1)
    tracker = InternalsTracker(probe=X)
    model.fit(X, y, epochs=2, batch_size=8, optimizer="adam", callbacks=[tracker], verbose=0)
    a = np.maximum(X @ model.layers[0].W + model.layers[0].b, 0).astype(np.float64)
    rec = tracker.records["layer0"]
    assert rec["act_mean"][-1] == pytest.approx(a.mean(), rel=1e-5)
    assert rec["act_std"][-1] == pytest.approx(a.std(), rel=1e-5)
    assert rec["dead_frac"][-1] == np.mean(np.all(a == 0, axis=0))


def test_gradient_and_update_ratio_match_one_hand_computed_sgd_step(rng):
    X, y = _data(rng, n=32)
    lr = 0.1
    model = MLP([6, 4, 3], "tanh", seed=2, dtype=np.float64)
    W0 = [l.W.copy() for l in model.layers]
    # the gradient at the initial weights, by hand: one full batch, so one step per epoch
    model.loss.forward(model.forward(X, training=True), y)
    model.backward(model.loss.backward())
    dW = [l.dW.copy() for l in model.layers]
    tracker = InternalsTracker(probe=X)
    model.fit(X, y, epochs=1, batch_size=32, shuffle=False, optimizer=SGD(lr=lr), callbacks=[tracker], verbose=0)
    for i in range(2):
        rec = tracker.records[f"layer{i}"]
        assert rec["grad_mean"][0] == pytest.approx(dW[i].mean(), rel=1e-9, abs=1e-15)
        assert rec["grad_std"][0] == pytest.approx(dW[i].std(), rel=1e-9)
        assert rec["update_ratio"][0] == pytest.approx(lr * np.linalg.norm(dW[i]) / np.linalg.norm(W0[i]), rel=1e-9)


def test_zero_learning_rate_gives_zero_updates_and_steady_activations(rng):
    X, y = _data(rng)
    model = MLP([6, 5, 3], "sigmoid", seed=3)
    tracker = InternalsTracker()  # probe: the first training batch
    model.fit(X, y, epochs=3, batch_size=16, optimizer=SGD(lr=0.0), callbacks=[tracker], verbose=0)
    assert tracker._probe.shape == (16, 6)
    rec = tracker.records["layer0"]
    assert rec["update_ratio"] == [0.0, 0.0, 0.0]
    assert rec["act_std"][0] == rec["act_std"][1] == rec["act_std"][2] > 0


def test_dead_relu_units_are_counted(rng):
    X, y = _data(rng)
    model = MLP([6, 10, 3], "relu", seed=4)
    b = model.layers[0].b.copy()
    b[:4] = -1e3  # four units can never fire on this data
    model.layers[0].b = b
    tracker = InternalsTracker(probe=X)
    model.fit(X, y, epochs=1, optimizer=SGD(lr=1e-3), callbacks=[tracker], verbose=0)
    assert tracker.records["layer0"]["dead_frac"][0] >= 0.4


@pytest.mark.parametrize("act", ["sigmoid", "tanh"])
def test_saturation_is_seen_with_huge_weights(rng, act):
    X, y = _data(rng)
    model = MLP([6, 50, 3], act, seed=5)
    model.layers[0].W = model.layers[0].W * 100
    tracker = InternalsTracker(probe=X)
    model.fit(X, y, epochs=1, optimizer=SGD(lr=0.0), callbacks=[tracker], verbose=0)
    assert tracker.records["layer0"]["saturated_frac"][0] > 0.8


def test_layer_stats_by_hand():
    a = np.array([[0.0, 0.5, 0.0], [0.0, 2.0, 1.0]])
    s = layer_stats(a, "relu")
    assert s["dead_frac"] == pytest.approx(1 / 3) and s["act_mean"] == pytest.approx(3.5 / 6)
    assert layer_stats(np.array([[0.005, 0.5, 0.995, 0.2]]), "sigmoid")["saturated_frac"] == 0.5
    assert layer_stats(np.array([[-0.999, 0.5, 0.98, 1.0]]), "tanh")["saturated_frac"] == 0.5
    assert set(layer_stats(a, "gelu")) == {"act_mean", "act_std"}


def test_every_k_epochs_and_the_last(rng):
    X, y = _data(rng)
    model = MLP([6, 4, 3], seed=0)
    tracker = InternalsTracker(probe=X, every=2)
    hist = model.fit(X, y, epochs=5, callbacks=[tracker], verbose=0)
    assert tracker.epochs == [1, 3, 4]
    assert len(hist.history["internals/layer0/act_std"]) == 3


@pytest.mark.parametrize("every", [0, -1, 1.5, "batch", True])
def test_invalid_every_is_refused(every):
    with pytest.raises(InvalidArgumentError, match="every="):
        InternalsTracker(every=every)


def test_plot_internals_from_history_dict_and_tracker(rng, tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib.image as mpimg
    X, y = _data(rng)
    model = MLP([6, 8, 3], "relu", seed=0)
    tracker = InternalsTracker(probe=X)
    hist = model.fit(X, y, epochs=2, callbacks=[tracker], verbose=0)
    for i, src in enumerate([hist, dict(hist.history), {"history": dict(hist.history)}, tracker]):
        path = plot_internals(src, tmp_path / f"internals{i}.png")
        img = mpimg.imread(path)
        assert img.ndim == 3 and img.shape[0] > 200 and img.shape[1] > 200
    with pytest.raises(InvalidArgumentError, match="internals"):
        plot_internals({"loss": [1.0]}, tmp_path / "none.png")
