"""Parity with PyTorch over random shapes and dtypes, driven by Hypothesis: every activation, the layers
(Dense, BatchNorm1d, LayerNorm, Residual, Embedding), the losses and the optimizers.

Batch sizes, widths, dtypes, value scales and hyperparameters are drawn; the fixed-shape comparisons
live beside each piece's own tests. Examples are derandomised (the same draws every run) and few, so
the file takes seconds.
"""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from mlpnumpy.nn.activations import ACTIVATIONS, get_activation  # noqa: E402
from mlpnumpy.nn.blocks import Residual  # noqa: E402
from mlpnumpy.nn.embedding import Embedding  # noqa: E402
from mlpnumpy.nn.layers import BatchNorm1d, Dense, LayerNorm  # noqa: E402
from mlpnumpy.nn.losses import MAE, MSE, BinaryCrossEntropy, CrossEntropy, Huber  # noqa: E402
from mlpnumpy.optim.optimizers import SGD, Adagrad, Adam, AdamW, RMSprop  # noqa: E402
from mlpnumpy.nn.parameter import Parameter  # noqa: E402

SETTINGS = settings(max_examples=15, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])

dtypes = st.sampled_from([np.float32, np.float64])
batch = st.integers(1, 48)
width = st.integers(1, 24)
seeds = st.integers(0, 2**31 - 1)

#: float64 agrees to round-off; float32 to a few ulp of the values involved
TOL = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-10, atol=1e-12)}

TORCH_ACT = {
    "relu": lambda: torch.nn.ReLU(), "leaky_relu": lambda: torch.nn.LeakyReLU(0.01),
    "sigmoid": lambda: torch.nn.Sigmoid(), "tanh": lambda: torch.nn.Tanh(), "identity": lambda: torch.nn.Identity(),
    "elu": lambda: torch.nn.ELU(), "gelu": lambda: torch.nn.GELU(approximate="tanh"), "selu": lambda: torch.nn.SELU(),
    "softplus": lambda: torch.nn.Softplus(), "hard_sigmoid": lambda: torch.nn.Hardsigmoid(),
    "silu": lambda: torch.nn.SiLU(), "mish": lambda: torch.nn.Mish(),
}


def _tdtype(dtype):
    return torch.float64 if dtype == np.float64 else torch.float32


def _close(ours, theirs, dtype, scale=1.0, extra=1.0):
    tol = TOL[dtype]
    np.testing.assert_allclose(ours, theirs.detach().numpy() if hasattr(theirs, "detach") else theirs,
                               rtol=tol["rtol"] * extra, atol=tol["atol"] * scale * extra)


def test_every_activation_has_a_torch_twin_here():
    assert set(TORCH_ACT) == set(ACTIVATIONS)


@SETTINGS
@given(name=st.sampled_from(sorted(ACTIVATIONS)), n=batch, k=width, dtype=dtypes, scale=st.sampled_from([0.1, 1.0, 8.0]),
       seed=seeds)
def test_activation_forward_backward(name, n, k, dtype, scale, seed):
    r = np.random.default_rng(seed)
    z = (r.normal(size=(n, k)) * scale).astype(dtype)
    g = r.normal(size=(n, k)).astype(dtype)
    act = get_activation(name)
    a = act.forward(z)
    dz = act.backward(g, a, z)
    assert a.dtype == dtype and dz.dtype == dtype
    t = torch.tensor(z, requires_grad=True)
    out = TORCH_ACT[name]()(t)
    out.backward(torch.tensor(g))
    _close(a, out, dtype, scale)
    # torch's Hardsigmoid slope is 1/6 rounded to float32 (5e-9 off in float64)
    _close(dz, t.grad, dtype, extra=1e3 if name == "hard_sigmoid" and dtype == np.float64 else 1.0)


@SETTINGS
@given(n=batch, k_in=width, k_out=width, act=st.sampled_from(sorted(ACTIVATIONS)), dtype=dtypes, seed=seeds)
def test_dense_layer(n, k_in, k_out, act, dtype, seed):
    r = np.random.default_rng(seed)
    layer = Dense(k_in, k_out, act, rng=r, dtype=dtype)
    layer.b = r.normal(size=k_out)
    x = r.normal(size=(n, k_in)).astype(dtype)
    g = r.normal(size=(n, k_out)).astype(dtype)
    y = layer.forward(x, training=True)
    dx = layer.backward(g)
    lin = torch.nn.Linear(k_in, k_out, dtype=_tdtype(dtype))
    with torch.no_grad():
        lin.weight.copy_(torch.tensor(layer.W.T))
        lin.bias.copy_(torch.tensor(layer.b))
    t = torch.tensor(x, requires_grad=True)
    out = TORCH_ACT[act]()(lin(t))
    out.backward(torch.tensor(g))
    s = np.sqrt(k_in) + 1  # sums of k_in products: their round-off grows with it
    _close(y, out, dtype, s)
    _close(dx, t.grad, dtype, s * np.sqrt(k_out))
    _close(layer.dW, lin.weight.grad.T, dtype, s * np.sqrt(n))
    _close(layer.db, lin.bias.grad, dtype, np.sqrt(n))


@SETTINGS
@given(n=st.integers(2, 48), k=width, dtype=dtypes, seed=seeds, training=st.booleans())
def test_batch_norm(n, k, dtype, seed, training):
    r = np.random.default_rng(seed)
    bn = BatchNorm1d(k, dtype=dtype)
    bn.gamma.data[:] = r.normal(size=k)
    bn.beta.data[:] = r.normal(size=k)
    bn.running_mean[:] = r.normal(size=k)
    bn.running_var[:] = r.uniform(0.5, 2, size=k)
    tb = torch.nn.BatchNorm1d(k, dtype=_tdtype(dtype))
    with torch.no_grad():
        for name, a in (("weight", bn.gamma.data), ("bias", bn.beta.data), ("running_mean", bn.running_mean),
                        ("running_var", bn.running_var)):
            getattr(tb, name).copy_(torch.tensor(a))
    tb.train(training)
    x = (r.normal(size=(n, k)) * 3 + 1).astype(dtype)
    g = r.normal(size=(n, k)).astype(dtype)
    y = bn.forward(x, training=training)
    dx = bn.backward(g)
    t = torch.tensor(x, requires_grad=True)
    out = tb(t)
    out.backward(torch.tensor(g))
    _close(y, out, dtype, 10)
    _close(dx, t.grad, dtype, 10 * n, extra=10 if dtype == np.float32 else 1e2)
    _close(bn.gamma.grad, tb.weight.grad, dtype, 10 * n)
    _close(bn.running_mean, tb.running_mean, dtype, 10)
    _close(bn.running_var, tb.running_var, dtype, 10)


@SETTINGS
@given(n=batch, k=st.integers(2, 24), dtype=dtypes, seed=seeds, affine=st.booleans())
def test_layer_norm(n, k, dtype, seed, affine):
    r = np.random.default_rng(seed)
    ln = LayerNorm(k, elementwise_affine=affine, dtype=dtype)
    tl = torch.nn.LayerNorm(k, elementwise_affine=affine, dtype=_tdtype(dtype))
    if affine:
        ln.gamma.data[:] = r.normal(size=k)
        ln.beta.data[:] = r.normal(size=k)
        with torch.no_grad():
            tl.weight.copy_(torch.tensor(ln.gamma.data))
            tl.bias.copy_(torch.tensor(ln.beta.data))
    x = (r.normal(size=(n, k)) * 4 - 2).astype(dtype)
    g = r.normal(size=(n, k)).astype(dtype)
    y = ln.forward(x, training=True)
    dx = ln.backward(g)
    t = torch.tensor(x, requires_grad=True)
    out = tl(t)
    out.backward(torch.tensor(g))
    _close(y, out, dtype, 10)
    _close(dx, t.grad, dtype, 10 * k, extra=10 if dtype == np.float32 else 1e2)
    if affine:
        _close(ln.gamma.grad, tl.weight.grad, dtype, 10 * n)
        _close(ln.beta.grad, tl.bias.grad, dtype, n)


@SETTINGS
@given(n=batch, k=width, depth=st.integers(1, 3), dtype=dtypes, seed=seeds)
def test_residual_block(n, k, depth, dtype, seed):
    r = np.random.default_rng(seed)
    inner = [Dense(k, k, "tanh" if j < depth - 1 else None, rng=r, dtype=dtype) for j in range(depth)]
    block = Residual(inner, dtype=dtype)
    x = r.normal(size=(n, k)).astype(dtype)
    g = r.normal(size=(n, k)).astype(dtype)
    y = block.forward(x, training=True)
    dx = block.backward(g)
    lins = []
    for d in inner:
        lin = torch.nn.Linear(k, k, dtype=_tdtype(dtype))
        with torch.no_grad():
            lin.weight.copy_(torch.tensor(d.W.T))
            lin.bias.copy_(torch.tensor(d.b))
        lins.append(lin)
    t = torch.tensor(x, requires_grad=True)
    h = t
    for j, lin in enumerate(lins):
        h = lin(h)
        if j < depth - 1:
            h = torch.tanh(h)
    out = t + h
    out.backward(torch.tensor(g))
    s = (np.sqrt(k) + 1) ** depth
    _close(y, out, dtype, s)
    _close(dx, t.grad, dtype, s * k)
    for d, lin in zip(inner, lins):
        _close(d.dW, lin.weight.grad.T, dtype, s * n)


@SETTINGS
@given(n=batch, n_num=st.integers(0, 4), cards=st.lists(st.integers(1, 6), min_size=1, max_size=3),
       dim=st.integers(1, 5), dtype=dtypes, seed=seeds)
def test_embedding(n, n_num, cards, dim, dtype, seed):
    r = np.random.default_rng(seed)
    n_in = n_num + len(cards)
    cols = sorted(r.choice(n_in, len(cards), replace=False).tolist())
    X = r.normal(size=(n, n_in))
    for c, k in zip(cols, cards):
        X[:, c] = r.integers(0, k, n)
    X = X.astype(dtype)
    e = Embedding(n_in, dict(zip(cols, cards)), dim, rng=r, dtype=dtype)
    y = e.forward(X, training=True)
    g = r.normal(size=y.shape).astype(dtype)
    dx = e.backward(g)
    embs = [torch.nn.Embedding(k, dim, dtype=_tdtype(dtype)) for k in cards]
    with torch.no_grad():
        for emb, tab in zip(embs, e.tables):
            emb.weight.copy_(torch.tensor(tab.data))
    num = [c for c in range(n_in) if c not in cols]
    t = torch.tensor(X[:, num], requires_grad=True)
    out = torch.cat([t] + [emb(torch.tensor(X[:, c].astype(np.int64))) for emb, c in zip(embs, cols)], dim=1)
    out.backward(torch.tensor(g))
    _close(y, out, dtype)
    _close(dx[:, num], t.grad, dtype)
    for emb, tab in zip(embs, e.tables):
        _close(tab.grad, emb.weight.grad, dtype, n)


@SETTINGS
@given(n=batch, k=st.integers(2, 12), dtype=dtypes, seed=seeds, smoothing=st.sampled_from([0.0, 0.1, 0.3]),
       scale=st.sampled_from([1.0, 30.0]))
def test_cross_entropy(n, k, dtype, seed, smoothing, scale):
    r = np.random.default_rng(seed)
    z = (r.normal(size=(n, k)) * scale).astype(dtype)
    y = r.integers(0, k, n)
    loss = CrossEntropy(label_smoothing=smoothing)
    val = loss.forward(z, y)
    grad = loss.backward()
    t = torch.tensor(z, requires_grad=True)
    tl = torch.nn.functional.cross_entropy(t, torch.tensor(y), label_smoothing=smoothing)
    tl.backward()
    _close(val, tl.item(), dtype, scale)
    _close(grad, t.grad, dtype)


@SETTINGS
@given(n=batch, k=width, dtype=dtypes, seed=seeds, kind=st.sampled_from(["bce", "mse", "mae", "huber"]))
def test_other_losses(n, k, dtype, seed, kind):
    r = np.random.default_rng(seed)
    z = (r.normal(size=(n, k)) * 3).astype(dtype)
    t = torch.tensor(z, requires_grad=True)
    F = torch.nn.functional
    if kind == "bce":
        y = r.integers(0, 2, (n, k)).astype(dtype)
        loss, tl = BinaryCrossEntropy(), F.binary_cross_entropy_with_logits(t, torch.tensor(y))
    elif kind == "mse":
        y = r.normal(size=(n, k)).astype(dtype)
        loss, tl = MSE(), F.mse_loss(t, torch.tensor(y))
    elif kind == "mae":
        y = r.normal(size=(n, k)).astype(dtype)
        loss, tl = MAE(), F.l1_loss(t, torch.tensor(y))
    else:
        y = r.normal(size=(n, k)).astype(dtype)
        loss, tl = Huber(0.7), F.huber_loss(t, torch.tensor(y), delta=0.7)
    val = loss.forward(z, y)
    grad = loss.backward()
    tl.backward()
    _close(val, tl.item(), dtype, 10)
    _close(grad, t.grad, dtype)


OPTS = {
    "sgd": (lambda h: SGD(lr=h["lr"], momentum=h["mu"], weight_decay=h["wd"], nesterov=h["mu"] > 0 and h["nest"]),
            lambda ps, h: torch.optim.SGD(ps, lr=h["lr"], momentum=h["mu"], weight_decay=h["wd"],
                                          nesterov=h["mu"] > 0 and h["nest"])),
    "adam": (lambda h: Adam(lr=h["lr"], weight_decay=h["wd"], amsgrad=h["nest"]),
             lambda ps, h: torch.optim.Adam(ps, lr=h["lr"], weight_decay=h["wd"], amsgrad=h["nest"])),
    "adamw": (lambda h: AdamW(lr=h["lr"], weight_decay=h["wd"]),
              lambda ps, h: torch.optim.AdamW(ps, lr=h["lr"], weight_decay=h["wd"])),
    "rmsprop": (lambda h: RMSprop(lr=h["lr"], momentum=h["mu"], weight_decay=h["wd"], centered=h["nest"]),
                lambda ps, h: torch.optim.RMSprop(ps, lr=h["lr"], momentum=h["mu"], weight_decay=h["wd"],
                                                  centered=h["nest"])),
    "adagrad": (lambda h: Adagrad(lr=h["lr"], weight_decay=h["wd"], lr_decay=h["mu"] / 10),
                lambda ps, h: torch.optim.Adagrad(ps, lr=h["lr"], weight_decay=h["wd"], lr_decay=h["mu"] / 10)),
}


@SETTINGS
@given(kind=st.sampled_from(sorted(OPTS)), shapes=st.lists(st.tuples(width, width), min_size=1, max_size=3),
       dtype=dtypes, seed=seeds, lr=st.sampled_from([1e-3, 1e-2, 0.1]), mu=st.sampled_from([0.0, 0.9]),
       wd=st.sampled_from([0.0, 1e-2]), nest=st.booleans(), lr_mult=st.sampled_from([1.0, 0.25]),
       frozen=st.booleans())
def test_optimizer_steps(kind, shapes, dtype, seed, lr, mu, wd, nest, lr_mult, frozen):
    """Five steps on random gradients; the first parameter is in a group with its own rate (and frozen,
    when drawn): torch's parameter groups and requires_grad=False."""
    r = np.random.default_rng(seed)
    h = {"lr": lr, "mu": mu, "wd": wd, "nest": nest}
    params = [Parameter(r.normal(size=s).astype(dtype), "W") for s in shapes]
    tparams = [torch.nn.Parameter(torch.tensor(p.data.copy())) for p in params]
    ours = OPTS[kind][0](h)
    ours.add_param_group({"params": params[:1], "lr_mult": lr_mult})
    theirs = OPTS[kind][1]([{"params": tparams[:1], "lr": lr * lr_mult}, {"params": tparams[1:]}], h)
    if frozen:
        params[0].trainable = False
        tparams[0].requires_grad_(False)
    for _ in range(5):
        grads = [r.normal(size=s).astype(dtype) for s in shapes]
        for p, tp, g in zip(params, tparams, grads):
            p.grad = g
            tp.grad = None if not tp.requires_grad else torch.tensor(g)
        ours.step(params)
        theirs.step()
    for p, tp in zip(params, tparams):
        _close(p.data, tp, dtype, extra=10)
    if frozen:
        assert np.array_equal(params[0].data, tparams[0].detach().numpy())
