"""Layers: gradient checks in float64, parity with PyTorch, the seed's attribute names."""
import numpy as np
import pytest

from mlpnumpy.nn.gradcheck import check_layer
from mlpnumpy.nn.layers import BatchNorm1d, Dense, Dropout
from mlpnumpy.errors import InvalidArgumentError, InvalidDataError

ACTS = ["relu", "leaky_relu", "sigmoid", "tanh", "identity", "elu", "gelu"]


@pytest.mark.parametrize("act", ACTS)
def test_dense_gradcheck(act, rng):
    layer = Dense(5, 4, act, rng=rng, dtype=np.float64)
    layer.b = rng.standard_normal(4) * 0.1
    x = rng.standard_normal((7, 5))
    res = check_layer(layer, x)
    assert res.max_error < 1e-7, str(res)


@pytest.mark.parametrize("act", ACTS)
def test_dense_parity_with_torch(act, rng):
    torch = pytest.importorskip("torch")
    layer = Dense(6, 5, act, rng=rng, dtype=np.float64)
    layer.b = rng.standard_normal(5)
    x = rng.standard_normal((8, 6))
    g = rng.standard_normal((8, 5))
    lin = torch.nn.Linear(6, 5, dtype=torch.float64)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor(layer.W.T))
        lin.bias.copy_(torch.tensor(layer.b))
    F = {"relu": torch.nn.ReLU(), "leaky_relu": torch.nn.LeakyReLU(0.01), "sigmoid": torch.nn.Sigmoid(),
         "tanh": torch.nn.Tanh(), "identity": torch.nn.Identity(), "elu": torch.nn.ELU(),
         "gelu": torch.nn.GELU(approximate="tanh")}[act]
    xt = torch.tensor(x, requires_grad=True)
    out_t = F(lin(xt))
    out_t.backward(torch.tensor(g))
    out = layer.forward(x, training=True)
    dx = layer.backward(g)
    np.testing.assert_allclose(out, out_t.detach().numpy(), rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(layer.dW, lin.weight.grad.numpy().T, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(layer.db, lin.bias.grad.numpy(), rtol=1e-10, atol=1e-13)


def test_dense_seed_names_and_shapes(rng):
    layer = Dense(3, 2, "relu", rng=rng)
    assert layer.W.shape == (3, 2) and layer.b.shape == (2,)
    assert layer.W.dtype == np.float32
    layer.W = np.ones((3, 2))
    assert layer.W.dtype == np.float32 and np.all(layer.W == 1)
    layer.b = np.zeros((1, 2))  # the seed's row-shaped bias is accepted
    with pytest.raises(InvalidDataError, match=r"W has shape \(2, 3\); expected \(3, 2\)"):
        layer.W = np.ones((2, 3))
    x = rng.standard_normal((4, 3)).astype(np.float32)
    layer.forward(x, training=True)
    layer.backward(np.ones((4, 2), np.float32))
    assert layer.dW.shape == (3, 2) and layer.db.shape == (2,)


def test_backward_leaves_grad_out_untouched(rng):
    for layer in [Dense(4, 3, "relu", rng=rng, dtype=np.float64), BatchNorm1d(4, dtype=np.float64),
                  Dropout(0.5, rng=rng)]:
        x = rng.standard_normal((5, 4))
        out = layer.forward(x, training=True)
        g = rng.standard_normal(out.shape)
        g0 = g.copy()
        layer.backward(g)
        assert np.array_equal(g, g0), type(layer).__name__


@pytest.mark.parametrize("init,expected_std", [("he_normal", np.sqrt(2 / 400)), ("xavier_normal", np.sqrt(2 / 600)),
                                               ("lecun_normal", np.sqrt(1 / 400))])
def test_initialisers_have_the_right_spread(init, expected_std):
    layer = Dense(400, 200, "identity" if init != "he_normal" else "relu", init=init,
                  rng=np.random.default_rng(0), dtype=np.float64)
    assert layer.W.std() == pytest.approx(expected_std, rel=0.02)


def test_uniform_initialisers_bounds():
    he = Dense(300, 100, "relu", init="he_uniform", rng=np.random.default_rng(1), dtype=np.float64)
    assert np.abs(he.W).max() <= np.sqrt(2) * np.sqrt(3 / 300)
    assert he.W.std() == pytest.approx(np.sqrt(2 / 300), rel=0.03)
    xa = Dense(300, 100, "sigmoid", init="xavier_uniform", rng=np.random.default_rng(1), dtype=np.float64)
    assert np.abs(xa.W).max() <= np.sqrt(6 / 400)


def test_auto_init_follows_the_seed():
    assert Dense(4, 4, "relu").init_name == "he_normal"
    assert Dense(4, 4, "tanh").init_name == "xavier_normal"
    assert Dense(4, 4, "sigmoid", init=lambda s, fi, fo, r, d, gain=1: np.full(s, 0.5, d),
                 rng=np.random.default_rng(0)).W[0, 0] == 0.5


def test_unknown_init_lists_names():
    with pytest.raises(InvalidArgumentError, match="init='glorot' is not one of: auto, he_normal"):
        Dense(3, 3, init="glorot")


# ---------------------------------------------------------------- batch norm and dropout
def test_batchnorm_gradcheck_training_and_eval(rng):
    bn = BatchNorm1d(4, dtype=np.float64)
    bn.gamma.data[:] = rng.standard_normal(4)
    bn.beta.data[:] = rng.standard_normal(4)
    x = rng.standard_normal((6, 4)) * 2 + 1
    assert check_layer(bn, x, training=True).max_error < 1e-7
    bn.running_mean[:] = rng.standard_normal(4)
    bn.running_var[:] = rng.random(4) + 0.5
    assert check_layer(bn, x, training=False).max_error < 1e-7


def test_dropout_gradcheck_fixed_mask(rng):
    res = check_layer(Dropout(0.3, rng=np.random.default_rng(5)), rng.standard_normal((6, 5)), seed=5)
    assert res.max_error < 1e-7


def test_dropout_is_inverted_and_identity_in_eval():
    d = Dropout(0.25, rng=np.random.default_rng(0))
    x = np.ones((2000, 50))
    out = d.forward(x, training=True)
    assert set(np.unique(out)) <= {0.0, 1 / 0.75}
    assert out.mean() == pytest.approx(1.0, abs=0.01)
    assert (out == 0).mean() == pytest.approx(0.25, abs=0.01)
    assert d.forward(x, training=False) is x
    with pytest.raises(InvalidArgumentError, match=r"p=1.0 is out of range; expected a number in \[0.0, 1.0\)"):
        Dropout(1.0)


@pytest.mark.parametrize("dtype", [np.float64])
def test_batchnorm_parity_with_torch(dtype, rng):
    torch = pytest.importorskip("torch")
    bn = BatchNorm1d(5, eps=1e-5, momentum=0.1, dtype=dtype)
    tb = torch.nn.BatchNorm1d(5, eps=1e-5, momentum=0.1, dtype=torch.float64)
    gamma, beta = rng.standard_normal(5), rng.standard_normal(5)
    bn.gamma.data[:] = gamma
    bn.beta.data[:] = beta
    with torch.no_grad():
        tb.weight.copy_(torch.tensor(gamma))
        tb.bias.copy_(torch.tensor(beta))
    for step in range(3):  # training mode, running statistics move
        x = rng.standard_normal((9, 5)) * 3 + step
        g = rng.standard_normal((9, 5))
        xt = torch.tensor(x, requires_grad=True)
        tb.train()
        yt = tb(xt)
        yt.backward(torch.tensor(g))
        y = bn.forward(x, training=True)
        dx = bn.backward(g)
        np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(bn.gamma.grad, tb.weight.grad.numpy(), rtol=1e-10)
        np.testing.assert_allclose(bn.beta.grad, tb.bias.grad.numpy(), rtol=1e-10)
        tb.weight.grad = None
        tb.bias.grad = None
        np.testing.assert_allclose(bn.running_mean, tb.running_mean.numpy(), rtol=1e-12)
        np.testing.assert_allclose(bn.running_var, tb.running_var.numpy(), rtol=1e-12)
    tb.eval()  # evaluation mode uses the running statistics
    x = rng.standard_normal((4, 5))
    g = rng.standard_normal((4, 5))
    xt = torch.tensor(x, requires_grad=True)
    yt = tb(xt)
    yt.backward(torch.tensor(g))
    np.testing.assert_allclose(bn.forward(x, training=False), yt.detach().numpy(), rtol=1e-10)
    np.testing.assert_allclose(bn.backward(g), xt.grad.numpy(), rtol=1e-10)


def test_calculate_gain_matches_torch():
    torch = pytest.importorskip("torch")
    from mlpnumpy.nn.initializers import calculate_gain
    for name, param in [("relu", None), ("tanh", None), ("sigmoid", None), ("leaky_relu", None),
                        ("leaky_relu", 0.2)]:
        assert calculate_gain(name, param) == pytest.approx(torch.nn.init.calculate_gain(name, param), rel=1e-12)
    assert calculate_gain("identity") == torch.nn.init.calculate_gain("linear")
