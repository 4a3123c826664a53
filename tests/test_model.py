"""The MLP as a whole: gradient checks, PyTorch parity of outputs, gradients and SGD training,
determinism, dtype preservation."""
import numpy as np
import pytest

from mlpnumpy import MLP, Dense, Sequential
from mlpnumpy.nn.gradcheck import check_model
from mlpnumpy.nn.layers import ActivationLayer, BatchNorm1d, Dropout

ACTS = ["relu", "leaky_relu", "sigmoid", "tanh", "elu", "gelu"]


def _data(rng, n=10, d=5, k=3):
    return rng.standard_normal((n, d)), rng.integers(0, k, n)


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("loss", ["cross_entropy", "binary_cross_entropy", "mse"])
def test_gradcheck_whole_mlp(act, loss, rng):
    model = MLP([5, 7, 6, 3], act, seed=1, dtype=np.float64, loss=loss)
    X, y = _data(rng)
    if loss != "cross_entropy":
        y = (rng.random((10, 3)) > 0.5).astype(float) if loss == "binary_cross_entropy" else rng.standard_normal((10, 3))
    res = check_model(model, X, y)
    assert res.max_error < 1e-7, str(res)


def test_gradcheck_batchnorm_dropout_model_in_training_mode(rng):
    model = MLP([5, 8, 6, 3], "tanh", seed=3, dtype=np.float64, batch_norm=True, dropout=0.2)
    X, y = _data(rng, n=12)
    res = check_model(model, X, y, training=True)
    assert res.max_error < 1e-7, str(res)


def _torch_mlp(torch, model, act):
    mods = []
    F = {"relu": torch.nn.ReLU, "leaky_relu": torch.nn.LeakyReLU, "sigmoid": torch.nn.Sigmoid,
         "tanh": torch.nn.Tanh, "elu": torch.nn.ELU, "gelu": lambda: torch.nn.GELU(approximate="tanh")}
    dense = model.dense_layers
    for i, d in enumerate(dense):
        lin = torch.nn.Linear(d.in_features, d.out_features, dtype=torch.float64)
        with torch.no_grad():
            lin.weight.copy_(torch.tensor(d.W.T))
            lin.bias.copy_(torch.tensor(d.b))
        mods.append(lin)
        if i < len(dense) - 1:
            mods.append(F[act]())
    return torch.nn.Sequential(*mods)


@pytest.mark.parametrize("act", ACTS)
def test_parity_outputs_loss_and_gradients(act, rng):
    torch = pytest.importorskip("torch")
    model = MLP([6, 9, 7, 4], act, seed=2, dtype=np.float64)
    for d in model.dense_layers:
        d.b = rng.standard_normal(d.out_features) * 0.1
    tm = _torch_mlp(torch, model, act)
    X, y = _data(rng, n=11, d=6, k=4)
    out = model.forward(X, training=True)
    loss = model.loss.forward(out, y)
    dX = model.backward(model.loss.backward(), return_input_grad=True)
    Xt = torch.tensor(X, requires_grad=True)
    out_t = tm(Xt)
    loss_t = torch.nn.functional.cross_entropy(out_t, torch.tensor(y))
    loss_t.backward()
    np.testing.assert_allclose(out, out_t.detach().numpy(), rtol=1e-10, atol=1e-13)
    assert loss == pytest.approx(loss_t.item(), rel=1e-12)
    np.testing.assert_allclose(dX, Xt.grad.numpy(), rtol=1e-10, atol=1e-14)
    lins = [m for m in tm if isinstance(m, torch.nn.Linear)]
    for d, lin in zip(model.dense_layers, lins):
        np.testing.assert_allclose(d.dW, lin.weight.grad.numpy().T, rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(d.db, lin.bias.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_twenty_sgd_steps_match_torch(rng):
    torch = pytest.importorskip("torch")
    model = MLP([8, 16, 12, 5], "relu", seed=4, dtype=np.float64)
    tm = _torch_mlp(torch, model, "relu")
    X, y = _data(rng, n=50, d=8, k=5)  # batch 16 -> 4 steps per epoch, the last partial (2 rows)
    model.fit(X, y, epochs=5, lr=0.05, batch_size=16, shuffle=False, verbose=False)
    opt = torch.optim.SGD(tm.parameters(), lr=0.05)
    Xt, yt = torch.tensor(X), torch.tensor(y)
    steps = 0
    for _ in range(5):
        for s in range(0, 50, 16):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(tm(Xt[s:s + 16]), yt[s:s + 16]).backward()
            opt.step()
            steps += 1
    assert steps == 20
    for d, lin in zip(model.dense_layers, [m for m in tm if isinstance(m, torch.nn.Linear)]):
        np.testing.assert_allclose(d.W, lin.weight.detach().numpy().T, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(d.b, lin.bias.detach().numpy(), rtol=1e-9, atol=1e-12)


def test_same_seed_bit_identical_and_models_do_not_interfere(rng):
    X, y = _data(rng, n=64, d=6, k=3)

    def run(interleave=False):
        a = MLP([6, 10, 3], seed=7, dropout=0.1)
        if interleave:  # another model drawing from its own generator in between
            b = MLP([6, 10, 3], seed=8, dropout=0.1)
            b.fit(X, y, epochs=2, verbose=False)
        h = a.fit(X, y, epochs=3, lr=0.1, batch_size=8, verbose=False)
        return a.get_weights(), list(h), a.predict_proba(X)

    w1, l1, p1 = run()
    w2, l2, p2 = run(interleave=True)
    np.random.seed(0)  # global state must not matter
    w3, l3, p3 = run()
    for a, b, c in zip(w1, w2, w3):
        assert np.array_equal(a, b) and np.array_equal(a, c)
    assert l1 == l2 == l3
    assert np.array_equal(p1, p2) and np.array_equal(p1, p3)
    assert not np.array_equal(MLP([6, 10, 3], seed=9).get_weights()[0], w1[0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_preserved_end_to_end(dtype, rng):
    model = MLP([6, 10, 3], seed=0, dtype=dtype, batch_norm=True, dropout=0.1)
    X, y = _data(rng, n=40, d=6, k=3)
    X = X.astype(np.float64)  # input dtype is converted once to the model's
    model.fit(X, y, epochs=2, optimizer="adam", verbose=False)
    assert all(p.data.dtype == dtype and p.grad.dtype == dtype for p in model.parameters())
    out, hidden = model.forward(X.astype(dtype), return_hidden=True)
    assert out.dtype == dtype and all(h["a"].dtype == dtype for h in hidden)
    assert model.predict_proba(X).dtype == dtype
    assert all(b.dtype == dtype for l in model.layers for b in l.buffers().values())


def test_fit_uses_every_row_and_partial_batch(rng):
    X, y = _data(rng, n=10, d=4, k=2)
    model = MLP([4, 3, 2], seed=0)
    calls = []
    from mlpnumpy.training.callbacks import Callback

    class Count(Callback):
        def on_batch_end(self, batch, logs=None):
            calls.append(batch)
    model.fit(X, y, epochs=1, batch_size=4, callbacks=[Count()], verbose=False)
    assert calls == [0, 1, 2]  # 4 + 4 + 2


def test_activation_argument_forms():
    assert [d.activation.name for d in MLP([3, 4, 4, 2]).dense_layers] == ["relu", "relu", "identity"]
    assert [d.activation.name for d in MLP([3, 4, 4, 2], "tanh").dense_layers] == ["tanh", "tanh", "identity"]
    assert [d.activation.name for d in MLP([3, 4, 4, 2], ["relu", "sigmoid", "none"]).dense_layers] == \
        ["relu", "sigmoid", "identity"]
    assert [d.activation.name for d in MLP([3, 4, 4, 2], ["elu", "gelu"]).dense_layers] == ["elu", "gelu", "identity"]


def test_sequential_by_hand_and_summary(rng):
    model = Sequential([Dense(4, 8), BatchNorm1d(8), ActivationLayer("relu"), Dropout(0.2), Dense(8, 3)], seed=0)
    text = model.summary(print_fn=None)
    assert "Total params: 83" in text  # 4*8+8 + 16 + 8*3+3
    assert model.count_params() == 4 * 8 + 8 + 16 + 8 * 3 + 3
    X, y = _data(rng, n=30, d=4, k=3)
    h = model.fit(X, y, epochs=3, optimizer="adam", verbose=False)
    assert len(h) == 3 and np.isfinite(h).all()


def test_continue_training_keeps_optimizer_state(rng):
    X, y = _data(rng, n=32, d=4, k=3)
    a = MLP([4, 6, 3], seed=5)
    a.fit(X, y, epochs=4, optimizer="adam", batch_size=32, shuffle=False, verbose=False)
    b = MLP([4, 6, 3], seed=5)
    b.fit(X, y, epochs=2, optimizer="adam", batch_size=32, shuffle=False, verbose=False)
    b.fit(X, y, epochs=2, batch_size=32, shuffle=False, verbose=False)  # same Adam, moments carried on
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    assert b.optimizer.iterations == 4
