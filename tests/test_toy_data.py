"""The 2-D toy data sets, decision-boundary grids and figures, and `mlpnumpy train --data spiral`."""
from __future__ import annotations

import json

import numpy as np
import pytest

from mlpnumpy import MLP
from mlpnumpy.plots.boundary import BoundarySnapshots, decision_grid, grid_for, log_epochs
from mlpnumpy.datasets import load, make_circles, make_moons, make_sine, make_spiral, make_xor
from mlpnumpy.errors import InvalidArgumentError
from mlpnumpy.nn.layers import Dense
from mlpnumpy.nn.model import Sequential

MAKERS = [make_spiral, make_moons, make_circles, make_xor]


@pytest.mark.parametrize("make", MAKERS)
@pytest.mark.parametrize("n", [0, 1, 7, 301])
def test_shapes_dtypes_and_seeds(make, n):
    X, y = make(n, seed=3)
    assert X.shape == (n, 2) and X.dtype == np.float32 and y.shape == (n,) and y.dtype == np.int64
    X2, y2 = make(n, seed=3)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)
    X64, y64 = make(n, seed=3, dtype=np.float64)  # drawn in float64 then cast: the same points
    np.testing.assert_array_equal(X64.astype(np.float32), X)
    np.testing.assert_array_equal(y64, y)
    if n > 10:
        X3, _ = make(n, seed=4)
        assert not np.array_equal(X, X3)


@pytest.mark.parametrize("make,k", [(make_spiral, 3), (make_moons, 2), (make_circles, 2)])
def test_classes_are_balanced(make, k):
    _, y = make(301, seed=0)
    counts = np.bincount(y, minlength=k)
    assert counts.max() - counts.min() <= 1 and counts.sum() == 301


def test_spiral_has_n_classes_arms_in_the_unit_disc():
    X, y = make_spiral(400, n_classes=4, noise=0.0, seed=0, dtype=np.float64)
    assert set(np.unique(y)) == {0, 1, 2, 3}
    r = np.hypot(X[:, 0], X[:, 1])
    assert r.max() <= 1.0
    # without noise each point lies exactly on its arm: angle = 2 pi (r + k / K) (mod 2 pi)
    theta = np.arctan2(X[:, 1], X[:, 0])
    expected = 2 * np.pi * (r + y / 4)
    d = np.angle(np.exp(1j * (theta - expected)))
    assert np.abs(d).max() < 1e-9


def test_xor_and_circles_follow_their_rules_without_noise():
    X, y = make_xor(500, noise=0.0, seed=1, dtype=np.float64)
    np.testing.assert_array_equal(y, (X[:, 0] * X[:, 1] < 0).astype(int))
    X, y = make_circles(500, noise=0.0, factor=0.3, seed=1, dtype=np.float64)
    np.testing.assert_allclose(np.hypot(X[:, 0], X[:, 1]), np.where(y == 1, 0.3, 1.0))
    X, y = make_moons(500, noise=0.0, seed=1, dtype=np.float64)
    upper = X[y == 0]
    np.testing.assert_allclose(np.hypot(upper[:, 0], upper[:, 1]), 1.0)


def test_sine_is_a_regression_of_sin():
    x, y = make_sine(1000, noise=0.0, seed=0, dtype=np.float64)
    assert x.shape == y.shape == (1000, 1)
    np.testing.assert_allclose(y, np.sin(x))
    x, y = make_sine(4000, noise=0.1, seed=0, dtype=np.float64)
    assert abs(np.std(y - np.sin(x)) - 0.1) < 0.01


@pytest.mark.parametrize("bad", [dict(n_samples=-1), dict(noise=-0.1), dict(n_samples=2.5)])
def test_bad_arguments_are_named(bad):
    args = {"n_samples": 10, **bad}
    with pytest.raises(InvalidArgumentError, match=list(bad)[0]):
        make_spiral(**args)
    with pytest.raises(InvalidArgumentError, match="n_classes"):
        make_spiral(10, n_classes=1)
    with pytest.raises(InvalidArgumentError, match="factor"):
        make_circles(10, factor=1.5)


def test_load_serves_the_toy_sets():
    ds = load("spiral")
    assert ds.X_train.shape == (600, 2) and ds.X_test.shape == (300, 2) and ds.class_names == ["0", "1", "2"]
    ds2 = load("Spiral", n_train=50, n_test=20, seed=5, noise=0.0, dtype=np.float64)
    assert ds2.X_train.shape == (50, 2) and ds2.X_train.dtype == np.float64
    assert not np.array_equal(ds2.X_train[:20], ds2.X_test)  # independent streams, not the same rows
    for name in ("moons", "circles", "xor"):
        assert load(name).class_names == ["0", "1"]
    with pytest.raises(InvalidArgumentError, match="n_features"):
        load("moons", n_features=3)


def test_spiral_is_not_linear_and_an_mlp_learns_it():
    ds = load("spiral", n_train=300, n_test=300)
    linear = MLP([2, 3], seed=0)
    linear.fit(ds.X_train, ds.y_train, epochs=60, optimizer="adam", lr=1e-2, verbose=0)
    deep = MLP([2, 64, 64, 3], seed=0)
    deep.fit(ds.X_train, ds.y_train, epochs=150, optimizer="adam", lr=1e-2, verbose=0)
    assert linear.evaluate(ds.X_test, ds.y_test) < 0.65
    assert deep.evaluate(ds.X_test, ds.y_test) > 0.95


def _half_plane_model():
    """Class 0 where x1 > 0, class 1 where x1 < 0 (logits (x1, -x1))."""
    d = Dense(2, 2, dtype=np.float64)
    d.W = np.array([[1.0, -1.0], [0.0, 0.0]])
    d.b = np.zeros(2)
    return Sequential([d], dtype=np.float64)


def test_decision_grid_matches_a_model_worked_by_hand():
    X = np.array([[-1.0, -2.0], [1.0, 2.0]])
    xx, yy = grid_for(X, resolution=11, margin=0.0)
    assert xx[0, 0] == -1 and xx[0, -1] == 1 and yy[0, 0] == -2 and yy[-1, 0] == 2
    g = decision_grid(_half_plane_model(), X, resolution=11, margin=0.0)
    off = g.xx != 0
    np.testing.assert_array_equal(g.classes[off], (g.xx[off] < 0).astype(int))
    # softmax of (x, -x): the winning class's probability is 1/(1 + e^{-2|x|})
    np.testing.assert_allclose(g.confidence, 1 / (1 + np.exp(-2 * np.abs(g.xx))))


def test_decision_grid_refuses_what_it_cannot_draw():
    with pytest.raises(InvalidArgumentError, match="2 inputs"):
        decision_grid(MLP([3, 2]), np.zeros((4, 2)))
    with pytest.raises(InvalidArgumentError, match="classifier"):
        decision_grid(MLP([2, 1], loss="mse"), np.zeros((4, 2)))
    with pytest.raises(InvalidArgumentError, match="shape"):
        grid_for(np.zeros((4, 3)))


def test_binary_cross_entropy_models_get_two_classes():
    d = Dense(2, 1, dtype=np.float64)
    d.W = np.array([[1.0], [0.0]])
    m = Sequential([d], loss="binary_cross_entropy", dtype=np.float64)
    g = decision_grid(m, np.array([[-1.0, 0], [1, 1]]), resolution=9, margin=0.0)
    off = g.xx != 0
    np.testing.assert_array_equal(g.classes[off], (g.xx[off] > 0).astype(int))


def test_snapshots_follow_the_epochs_asked():
    assert log_epochs(100) == [1, 2, 4, 7, 14, 27, 52, 100]
    X, y = make_moons(60, seed=0)
    m = MLP([2, 8, 2], seed=0)
    snaps = BoundarySnapshots(X, every=3, resolution=20)
    m.fit(X, y, epochs=7, verbose=0, callbacks=[snaps])
    assert [e for e, _ in snaps.snapshots] == [1, 3, 6, 7]
    assert snaps.snapshots[-1][1].classes.shape == (20, 20)
    np.testing.assert_array_equal(snaps.snapshots[-1][1].classes, decision_grid(m, X, 20).classes)
    snaps2 = BoundarySnapshots(X, every=[2, 5], resolution=10)
    m.fit(X, y, epochs=5, verbose=0, callbacks=[snaps2])  # epochs count on: 8..12
    assert [e for e, _ in snaps2.snapshots] == [12]


def test_figures_are_written(tmp_path):
    pytest.importorskip("matplotlib")
    from PIL import Image

    from mlpnumpy.plots import figures as plots
    X, y = make_spiral(90, seed=0)
    m = MLP([2, 16, 3], seed=0)
    snaps = BoundarySnapshots(X, every=2, resolution=30)
    m.fit(X, y, epochs=4, verbose=0, callbacks=[snaps])
    p = plots.plot_decision_boundary(m, X, y, tmp_path / "b.png", resolution=50)
    assert Image.open(p).size == (600, 560)
    p = plots.plot_boundary_grid(snaps, X, y, tmp_path / "g.png")
    assert Image.open(p).size == (900, 290)  # 3 snapshots (1, 2, 4) in one row
    with pytest.raises(InvalidArgumentError, match="points"):
        plots.plot_decision_boundary(m, X[:, :1], y, tmp_path / "c.png")


def test_cli_train_spiral_writes_the_boundary_figures(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    from mlpnumpy.cli.commands import main
    out = tmp_path / "run"
    assert main(["train", "--data", "spiral", "--out", str(out), "--quiet"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["files"]["boundary"] == "boundary.png" and (out / "boundary.png").stat().st_size > 10_000
    assert m["files"]["boundary_epochs"] == "boundary_epochs.png" and (out / "boundary_epochs.png").exists()
    assert m["config"]["hidden"] == [64, 64] and m["epochs_trained"] == 100
    assert m["test_accuracy"] >= 0.95
