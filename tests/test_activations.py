"""Activations: hand-worked values, extremes, float64 gradient checks, parity with PyTorch."""
import warnings

import numpy as np
import pytest

from mlpnumpy import activations as A
from mlpnumpy.errors import InvalidArgumentError
from mlpnumpy.nn.gradcheck import check_layer
from mlpnumpy.nn.layers import ActivationLayer

NAMES = ["relu", "leaky_relu", "sigmoid", "tanh", "identity", "elu", "gelu"]


def test_hand_worked_values():
    z = np.array([[-2.0, 0.0, 3.0]])
    assert np.array_equal(A.ReLU().forward(z), [[0, 0, 3]])
    assert np.allclose(A.LeakyReLU(0.1).forward(z), [[-0.2, 0, 3]])
    assert np.allclose(A.Sigmoid().forward(z), 1 / (1 + np.exp(-z)))
    assert np.allclose(A.Tanh().forward(z), np.tanh(z))
    assert np.allclose(A.ELU().forward(z), [[np.exp(-2) - 1, 0, 3]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_exact_at_extremes_without_warnings(dtype):
    z = np.array([-1e4, -800.0, -40.0, 0.0, 40.0, 800.0, 1e4], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = A.sigmoid(z)
    assert s.dtype == dtype
    assert s[0] == 0.0 and s[-1] == 1.0 and s[3] == 0.5
    # no clipping artefact: sigmoid(-40) is tiny but not zero, and exact relative to exp(-40)
    assert s[2] > 0 and np.isclose(s[2], np.exp(-40.0) / (1 + np.exp(-40.0)), rtol=1e-6)


def test_softmax_stable_and_log_softmax_exact():
    z = np.array([[1e4, 0.0, -1e4], [1.0, 2.0, 3.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p = A.softmax(z)
        lp = A.log_softmax(z)
    assert np.allclose(p.sum(axis=1), 1)
    assert np.allclose(p[0], [1, 0, 0])
    assert lp[0, 2] == -2e4  # exact, not -inf
    assert np.allclose(np.exp(lp[1]), np.exp([1, 2, 3]) / np.exp([1, 2, 3]).sum())


def test_none_and_logistic_are_synonyms():
    assert isinstance(A.get_activation("none"), A.Identity)
    assert isinstance(A.get_activation("logistic"), A.Sigmoid)


def test_unknown_name_lists_valid_ones():
    with pytest.raises(InvalidArgumentError, match="activation='rleu' is not one of: relu, leaky_relu"):
        A.get_activation("rleu")


@pytest.mark.parametrize("name", NAMES)
def test_backward_does_not_write_into_argument(name, rng):
    act = A.get_activation(name)
    z = rng.standard_normal((4, 5))
    a = act.forward(z)
    g = rng.standard_normal((4, 5))
    g0 = g.copy()
    act.backward(g, a, z)
    assert np.array_equal(g, g0)


@pytest.mark.parametrize("name", NAMES)
def test_gradcheck_float64(name, rng):
    x = rng.standard_normal((6, 5))
    x[np.abs(x) < 1e-3] = 0.5  # keep away from the kinks of relu-like functions
    res = check_layer(ActivationLayer(name), x)
    assert res.max_error < 1e-7, str(res)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_preserved(name, dtype, rng):
    act = A.get_activation(name)
    z = rng.standard_normal((3, 4)).astype(dtype)
    a = act.forward(z)
    assert a.dtype == dtype
    assert act.backward(np.ones_like(a), a, z).dtype == dtype


@pytest.mark.parametrize("name", NAMES)
def test_parity_with_torch(name, rng):
    torch = pytest.importorskip("torch")
    F = {"relu": torch.relu, "leaky_relu": lambda t: torch.nn.functional.leaky_relu(t, 0.01),
         "sigmoid": torch.sigmoid, "tanh": torch.tanh, "identity": lambda t: t,
         "elu": torch.nn.functional.elu, "gelu": lambda t: torch.nn.functional.gelu(t, approximate="tanh")}[name]
    z = rng.standard_normal((8, 7)) * 3
    g = rng.standard_normal((8, 7))
    zt = torch.tensor(z, requires_grad=True)
    at = F(zt)
    at.backward(torch.tensor(g))
    act = A.get_activation(name)
    a = act.forward(z)
    dz = act.backward(g, a, z)
    np.testing.assert_allclose(a, at.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dz, zt.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_of_extreme_rows(dtype, rng):
    # (the fast path's fused softmax cross-entropy is pinned to this one in tests/test_paths.py)
    z = (rng.standard_normal((64, 10)) * 30).astype(dtype)
    z[3] = [1e4, -1e4, 0, 5, 5, 5, 1e4, -3, 2, 1]  # ties at the maximum, huge spread
    p = A.softmax(z)
    assert p.dtype == dtype
    np.testing.assert_allclose(p[3], [0.5, 0, 0, 0, 0, 0, 0.5, 0, 0, 0], atol=np.finfo(dtype).tiny)
    np.testing.assert_allclose(p.sum(axis=1), 1, rtol=4 * np.finfo(dtype).eps)
    np.testing.assert_allclose(A.softmax(z[None], axis=2)[0], p, rtol=0, atol=0)
    assert np.isnan(A.softmax(np.array([[1.0, np.nan, 2.0]]))).all()
