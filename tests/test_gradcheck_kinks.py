"""gradcheck sees kinks: when a finite-difference probe moves a pre-activation across a point where the
activation has no derivative (ReLU's 0), it says so, counts the entries, and reports the error away
from them; a real bug is still caught."""
import numpy as np
import pytest

from mlpnumpy import MLP, Sequential, gradcheck
from mlpnumpy.nn.activations import Activation, ReLU
from mlpnumpy.nn.layers import ActivationLayer, Dense


def _relu_layer_at_the_kink():
    """A ReLU Dense layer and an input whose pre-activation z[0, 0] is exactly 0."""
    rng = np.random.default_rng(3)
    layer = Dense(3, 2, activation="relu", rng=rng, dtype=np.float64)
    x = rng.standard_normal((4, 3))
    layer.b = np.array([-(x[0] @ layer.W[:, 0]), 0.3])  # z[0, 0] = x[0] W[:, 0] + b[0] = 0
    return layer, x


def test_a_pre_activation_at_the_kink_fails_naively_and_is_named():
    layer, x = _relu_layer_at_the_kink()
    assert abs(x[0] @ layer.W[:, 0] + layer.b[0]) < 1e-15
    result = gradcheck(layer, x)
    assert not result.passed()  # the naive check fails a correct layer ...
    assert result.max_error > 1e-3
    assert result.hit_kinks  # ... and says why
    # b[0] and W[:, 0] and x[0] move z[0, 0]: b[0], three weights and three inputs cross the kink
    assert result.kink_entries["b"] == 1 and result.kink_entries["W"] == 3 and result.kink_entries["x"] == 3
    assert result.errors_away_from_kinks["b"] < 1e-9
    assert result.passed(ignore_kinks=True)
    text = str(result)
    assert "kink" in text and "1 entry of b" in text and "3 entries of W" in text


def test_away_from_the_kink_nothing_is_flagged():
    layer, x = _relu_layer_at_the_kink()
    layer.b = np.array([0.5, 0.3])
    x = x.copy()
    x[0] += 0.1
    result = gradcheck(layer, x)
    assert not result.hit_kinks and result.passed()
    assert result.errors_away_from_kinks == result.errors
    assert "kink" not in str(result)


def test_a_model_with_a_dead_row_sits_at_the_kink():
    # seed 0: one sample turns every first-layer ReLU off, so the next layer's z is its bias, 0, exactly
    rng = np.random.default_rng(0)
    model = MLP([6, 5, 4, 3], "relu", seed=0)
    X, y = rng.standard_normal((8, 6)), rng.integers(0, 3, 8)
    result = gradcheck(model, X, y)
    assert result.worst == "1.b" and result.max_error > 1e-2
    assert result.kink_entries["1.b"] == 4 and result.kink_entries["0.W"] == 0
    assert result.max_error_away_from_kinks < 1e-8 and result.passed(ignore_kinks=True)


def test_every_naive_failure_of_a_correct_relu_mlp_is_a_kink():
    fails = flagged = 0
    for seed in range(12):
        rng = np.random.default_rng(seed)
        model = MLP([6, 5, 4, 3], "relu", seed=seed)
        X, y = rng.standard_normal((8, 6)), rng.integers(0, 3, 8)
        result = gradcheck(model, X, y)
        fails += not result.passed()
        flagged += result.hit_kinks
        assert result.passed(ignore_kinks=True), (seed, str(result))
        assert result.hit_kinks or result.passed()
    assert fails >= 2 and flagged == fails  # seeds 0 and 8 fail naively: both flagged, no false alarm


def test_smooth_activations_never_flag_and_a_real_bug_is_still_caught():
    rng = np.random.default_rng(1)
    smooth = MLP([5, 4, 3], ["tanh"], seed=1)
    result = gradcheck(smooth, rng.standard_normal((6, 5)), rng.integers(0, 3, 6))
    assert not result.hit_kinks and result.passed()

    class BrokenReLU(ReLU):
        def backward(self, grad_a, a, z=None):
            return grad_a  # the mask forgotten

    layer = Dense(4, 3, activation=BrokenReLU(), rng=rng, dtype=np.float64)
    result = gradcheck(layer, rng.standard_normal((5, 4)))
    assert not result.passed(ignore_kinks=True) and result.max_error_away_from_kinks > 1e-2


def test_activation_layers_sampled_entries_and_declared_kinks():
    rng = np.random.default_rng(2)
    model = Sequential([Dense(3, 4, rng=rng), ActivationLayer("relu"), Dense(4, 2, rng=rng)], seed=2,
                       dtype=np.float64)
    X, y = rng.standard_normal((5, 3)), rng.integers(0, 2, 5)
    d0 = model.layers[0]
    d0.b = -(X[1] @ d0.W)  # sample 1: every pre-activation of the ReLU layer is exactly 0
    for kwargs in ({}, {"max_entries": 6}):
        result = gradcheck(model, X, y, **kwargs)
        assert result.hit_kinks and result.kink_entries["0.b"] >= 1, kwargs
        assert result.passed(ignore_kinks=True), (kwargs, str(result))

    class Hinge(Activation):  # max(z, 1): kink at 1, declared
        kinks = (1.0,)

        def forward(self, z):
            return np.maximum(z, 1.0)

        def backward(self, grad_a, a, z=None):
            return grad_a * (a > 1.0)

    layer = Dense(2, 2, activation=Hinge(), rng=rng, dtype=np.float64)
    x = rng.standard_normal((3, 2))
    layer.b = np.array([1.0 - x[2] @ layer.W[:, 0], 5.0])  # z[2, 0] = 1 exactly
    result = gradcheck(layer, x)
    assert result.kink_entries["b"] == 1 and result.passed(ignore_kinks=True)


@pytest.mark.parametrize("at_target", [True, False])
def test_mae_kink_where_output_equals_target(at_target):
    z = np.array([[0.3, -1.2], [2.0, 0.5]])
    t = z.copy() if at_target else z + 0.25
    result = gradcheck("mae", z, t)
    assert result.hit_kinks == at_target
    assert result.passed(ignore_kinks=True) and result.passed() != at_target


def test_the_command_line_names_the_kink_and_passes_a_correct_model(capsys):
    from mlpnumpy.cli import commands as cli
    # 64-3-3-10 ReLU on 8 digits rows: a row turns the 3 first-layer units off, so layer 1's z = b = 0
    assert cli.main(["gradcheck", "--hidden", "3", "3", "--activation", "relu", "--rows", "8"]) == 0
    out = capsys.readouterr().out
    assert "1.b: relative error" in out and "ok away from the kink" in out and "entries at a kink" in out
    assert "kink: a finite-difference step moved a pre-activation" in out
    assert "PASS: worst 1.b" in out and "away from kinks" in out
    # a smooth activation prints no kink line
    assert cli.main(["gradcheck", "--hidden", "3", "3", "--activation", "tanh", "--rows", "8"]) == 0
    assert "kink" not in capsys.readouterr().out


@pytest.mark.parametrize("name,kink", [("selu", 0.0), ("hard_sigmoid", 3.0), ("hard_sigmoid", -3.0),
                                       ("leaky_relu", 0.0)])
def test_other_kinked_activations(name, kink):
    rng = np.random.default_rng(5)
    layer = Dense(3, 2, activation=name, rng=rng, dtype=np.float64)
    x = rng.standard_normal((4, 3))
    layer.b = np.array([kink - x[1] @ layer.W[:, 0], 0.2])  # z[1, 0] sits exactly on the kink
    result = gradcheck(layer, x)
    assert result.kink_entries["b"] == 1 and result.passed(ignore_kinks=True)
    assert not result.passed()
