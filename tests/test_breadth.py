"""Issue 20's pieces: SELU (lecun_normal, alpha dropout), softplus, hard sigmoid, SiLU, Mish, LayerNorm,
L1 penalties, freezing and parameter groups, residual blocks, embeddings for categorical columns.

Each gets a float64 gradient check and, where PyTorch has the same piece, a comparison with it
(tests/test_torch_parity_hypothesis.py drives the same comparisons over random shapes and dtypes).
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from mlpnumpy import MLP, Dense, Sequential, gradcheck
from mlpnumpy.nn.activations import get_activation
from mlpnumpy.nn.blocks import Residual
from mlpnumpy.nn.embedding import Embedding
from mlpnumpy.errors import InvalidArgumentError, InvalidDataError
from mlpnumpy.io.model_files import load_model, save_model
from mlpnumpy.nn.layers import ActivationLayer, AlphaDropout, BatchNorm1d, Dropout, LayerNorm
from mlpnumpy.optim.optimizers import SGD, Adagrad, Adam, AdamW, RMSprop
from mlpnumpy.nn.regularizers import add_l1_grad, l1_penalty

NEW_ACTIVATIONS = ["selu", "softplus", "hard_sigmoid", "silu", "mish"]
TORCH_NAMES = {"selu": "SELU", "softplus": "Softplus", "hard_sigmoid": "Hardsigmoid", "silu": "SiLU", "mish": "Mish"}


def _rng(seed=0):
    return np.random.default_rng(seed)


def _torch():
    return pytest.importorskip("torch")


# ---------------------------------------------------------------------------------- activations
@pytest.mark.parametrize("name", NEW_ACTIVATIONS)
def test_new_activation_gradcheck(name):
    z = _rng().normal(0, 2, (6, 5))
    z[np.abs(np.abs(z) - 3) < 0.01] += 0.05  # hard sigmoid's kinks at +-3
    res = gradcheck(ActivationLayer(name), z)
    assert res.max_error < 1e-8, res
    res = gradcheck(MLP([5, 4, 3], name, seed=0, dtype=np.float64), z, np.arange(6) % 3)
    assert res.max_error < 1e-7, res


@pytest.mark.parametrize("name", NEW_ACTIVATIONS)
def test_new_activation_matches_torch(name):
    torch = _torch()
    z = _rng(1).normal(0, 4, (40, 9))
    z[0, :4] = [-40.0, 40.0, 19.9, 20.1]  # softplus's threshold, saturations
    g = _rng(2).normal(size=z.shape)
    act = get_activation(name)
    a = act.forward(z)
    dz = act.backward(g, a, z)
    t = torch.tensor(z, requires_grad=True)
    out = getattr(torch.nn, TORCH_NAMES[name])()(t)
    out.backward(torch.tensor(g))
    np.testing.assert_allclose(a, out.detach().numpy(), rtol=1e-12, atol=1e-13)
    # torch's Hardsigmoid backward multiplies by 1/6 rounded to float32 (5e-9 off): hence 1e-7
    np.testing.assert_allclose(dz, t.grad.numpy(), rtol=1e-7 if name == "hard_sigmoid" else 1e-12, atol=1e-13)


def test_names_aliases_and_per_layer_choice():
    assert get_activation("swish").name == "silu" and get_activation("HardSigmoid").name == "hard_sigmoid"
    m = MLP([3, 5, 5, 5, 2], ["selu", "mish", "softplus"], seed=0)
    assert [l.activation.name for l in m.dense_layers] == ["selu", "mish", "softplus", "identity"]
    assert m.dense_layers[0].init_name == "lecun_normal" and m.dense_layers[1].init_name == "he_normal"
    with pytest.raises(InvalidArgumentError, match="mish"):
        get_activation("mishh")


@pytest.mark.parametrize("name", NEW_ACTIVATIONS)
def test_new_activations_fast_path_equals_reference(name):
    X, y = _rng(3).normal(size=(50, 4)), np.arange(50) % 3
    ws = []
    for path in ("reference", "fast"):
        m = MLP([4, 8, 3], name, seed=0, dtype=np.float64)
        m.fit(X, y, epochs=3, batch_size=16, optimizer="adam", lr=1e-2, verbose=0, path=path)
        ws.append(m.get_weights())
    for a, b in zip(*ws):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_selu_keeps_deep_activations_normalised():
    X = _rng(4).normal(size=(2000, 64))
    m = MLP([64, *[64] * 16, 2], "selu", seed=0, dtype=np.float64)
    _, hidden = m.forward(X, return_hidden=True)
    last = hidden[-2]["a"]  # the 16th SELU layer's output
    assert abs(last.mean()) < 0.15 and 0.75 < last.var() < 1.25
    tanh = MLP([64, *[64] * 16, 2], "tanh", init="lecun_normal", seed=0, dtype=np.float64)
    _, th = tanh.forward(X, return_hidden=True)
    assert th[-2]["a"].var() < 0.25  # the same depth without self-normalisation shrinks


# ---------------------------------------------------------------------------------- alpha dropout
def test_alpha_dropout_keeps_mean_and_variance():
    x = _rng(5).normal(size=(400, 500))
    d = AlphaDropout(0.2, rng=_rng(6))
    y = d.forward(x, training=True)
    assert abs(y.mean()) < 0.01 and abs(y.var() - 1) < 0.01
    np.testing.assert_array_equal(d.forward(x, training=False), x)
    m = MLP([4, 8, 8, 2], "selu", dropout=0.1)
    assert [type(l) for l in m.layers].count(AlphaDropout) == 2 and not any(type(l) is Dropout for l in m.layers)


def test_alpha_dropout_matches_torch_given_its_mask_and_gradchecks():
    torch = _torch()
    x = _rng(7).normal(size=(30, 20))
    p = 0.3
    torch.manual_seed(0)
    y_t = torch.nn.functional.alpha_dropout(torch.tensor(x), p, training=True).numpy()
    d = AlphaDropout(p)
    a, b = d.affine()
    dropped = np.isclose(y_t, a * d.ALPHA_PRIME + b, rtol=0, atol=1e-12)
    assert 0.2 < dropped.mean() < 0.4
    np.testing.assert_allclose(y_t[~dropped], a * x[~dropped] + b, rtol=1e-12)
    res = gradcheck(AlphaDropout(p, rng=_rng(0)), x[:5, :6])
    assert res.max_error < 1e-9, res


# ---------------------------------------------------------------------------------- LayerNorm
@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm_matches_torch_and_gradchecks(affine):
    torch = _torch()
    x = _rng(8).normal(3, 2, (11, 7))
    ln = LayerNorm(7, eps=1e-5, elementwise_affine=affine, dtype=np.float64)
    if affine:
        ln.gamma.data[:] = _rng(9).normal(size=7)
        ln.beta.data[:] = _rng(10).normal(size=7)
    g = _rng(11).normal(size=x.shape)
    y = ln.forward(x, training=True)
    dx = ln.backward(g)
    tl = torch.nn.LayerNorm(7, eps=1e-5, elementwise_affine=affine, dtype=torch.float64)
    if affine:
        with torch.no_grad():
            tl.weight.copy_(torch.tensor(ln.gamma.data))
            tl.bias.copy_(torch.tensor(ln.beta.data))
    t = torch.tensor(x, requires_grad=True)
    out = tl(t)
    out.backward(torch.tensor(g))
    np.testing.assert_allclose(y, out.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx, t.grad.numpy(), rtol=1e-10, atol=1e-12)
    if affine:
        np.testing.assert_allclose(ln.gamma.grad, tl.weight.grad.numpy(), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(ln.beta.grad, tl.bias.grad.numpy(), rtol=1e-12, atol=1e-12)
    assert gradcheck(ln, x).max_error < 1e-8


def test_layer_norm_does_not_depend_on_the_batch():
    x = _rng(12).normal(size=(9, 5)).astype(np.float32)
    ln = LayerNorm(5)
    whole = ln.forward(x, training=True)
    for i in range(9):
        np.testing.assert_allclose(ln.forward(x[i:i + 1], training=True), whole[i:i + 1], rtol=1e-6)
    np.testing.assert_array_equal(ln.forward(x, training=False), whole)
    assert whole.dtype == np.float32


# ---------------------------------------------------------------------------------- L1
def test_l1_penalty_and_gradient_touch_weights_and_biases_apart():
    m = MLP([3, 4, 2], seed=0, dtype=np.float64)
    params = m.parameters()
    for p in params:
        p.grad = np.zeros_like(p.data)
    W, b = m.dense_layers[0].W, m.dense_layers[0].b
    b[:] = [1.0, -2.0, 0.0, 3.0]
    expect = 0.1 * sum(np.abs(l.W).sum() for l in m.dense_layers) + 0.01 * 6.0
    assert l1_penalty(params, 0.1, 0.01) == pytest.approx(expect, rel=1e-12)
    add_l1_grad(params, 0.0, 0.5)
    assert all(not p.grad.any() for p in params if p.name == "W")
    np.testing.assert_array_equal(m.dense_layers[0].db, [0.5, -0.5, 0.0, 0.5])
    add_l1_grad(params, 0.1, 0.0)
    np.testing.assert_array_equal(m.dense_layers[0].dW, 0.1 * np.sign(W))
    with pytest.raises(InvalidArgumentError, match="l1"):
        m.fit(np.zeros((4, 3)), [0, 1, 0, 1], l1=-1.0, verbose=0)


def _torch_step_loop(torch, t, lins, X, y, opt, l1, l1_bias, clip, epochs, batch):
    Xt, yt = torch.tensor(X), torch.tensor(y)
    for _ in range(epochs):
        for s in range(0, len(X), batch):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(t(Xt[s:s + batch]), yt[s:s + batch])
            loss = loss + l1 * sum(l.weight.abs().sum() for l in lins) + l1_bias * sum(l.bias.abs().sum()
                                                                                       for l in lins)
            loss.backward()
            if clip:
                torch.nn.utils.clip_grad_norm_([p for p in t.parameters() if p.requires_grad], clip)
            opt.step()


@pytest.mark.parametrize("path", ["reference", "fast"])
@pytest.mark.parametrize("kind", ["sgd", "adam"])
def test_l1_freezing_and_groups_match_torch(path, kind):
    """Layer 0 frozen, layer 1 at a tenth of the rate, L1 on weights and biases, clipping: as torch."""
    torch = _torch()
    from mlpnumpy.integrations.interop import to_torch
    X, y = _rng(13).normal(size=(64, 5)), _rng(14).integers(0, 3, 64)
    m = MLP([5, 7, 6, 3], seed=0, dtype=np.float64)
    t = to_torch(m)
    lins = [t[0], t[2], t[4]]
    m.freeze(0)
    opt = SGD(lr=0.1, momentum=0.9) if kind == "sgd" else Adam(lr=0.01)
    opt.add_param_group({"params": m.layers[1].parameters(), "lr_mult": 0.1})
    m.fit(X, y, epochs=3, batch_size=16, shuffle=False, optimizer=opt, l1=1e-2, l1_bias=1e-3, clip_grad_norm=1.0,
          verbose=0, path=path)
    for p in lins[0].parameters():
        p.requires_grad_(False)
    base = 0.1 if kind == "sgd" else 0.01
    groups = [{"params": list(lins[1].parameters()), "lr": base * 0.1}, {"params": list(lins[2].parameters())}]
    topt = torch.optim.SGD(groups, lr=0.1, momentum=0.9) if kind == "sgd" else torch.optim.Adam(groups, lr=0.01)
    _torch_step_loop(torch, t, lins, X, y, topt, 1e-2, 1e-3, 1.0, 3, 16)
    for layer, lin in zip(m.dense_layers, lins):
        np.testing.assert_allclose(layer.W, lin.weight.detach().numpy().T, rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(layer.b, lin.bias.detach().numpy(), rtol=1e-10, atol=1e-13)


def test_l1_makes_weights_small():
    X, y = _rng(15).normal(size=(200, 20)), (_rng(15).normal(size=200) > 0).astype(int)
    small = []
    for l1 in (0.0, 3e-3):
        m = MLP([20, 32, 2], seed=0)
        m.fit(X, y, epochs=30, optimizer="adam", lr=3e-3, l1=l1, verbose=0)
        small.append(np.mean(np.abs(m.dense_layers[0].W) < 1e-2))
    assert small[1] > 3 * small[0]


# ---------------------------------------------------------------------------------- freezing
OPTIMIZERS = [lambda: SGD(lr=0.1, momentum=0.9, weight_decay=0.1), lambda: Adam(lr=0.01),
              lambda: AdamW(lr=0.01, weight_decay=0.1), lambda: RMSprop(lr=0.01, momentum=0.5),
              lambda: Adagrad(lr=0.1)]


@pytest.mark.parametrize("path", ["reference", "fast"])
@pytest.mark.parametrize("make_opt", OPTIMIZERS)
def test_frozen_layers_stay_fixed_through_any_optimizer(path, make_opt):
    X, y = _rng(16).normal(size=(40, 4)), np.arange(40) % 3
    m = MLP([4, 6, 6, 3], seed=0, batch_norm=True)
    frozen = [m.layers[0], m.layers[1]]  # a Dense and its batch norm's gamma, beta
    m.freeze(0, frozen[1])
    before = [p.data.copy() for l in frozen for p in l.parameters()]
    others = [p.data.copy() for l in m.layers[2:] for p in l.parameters()]
    m.fit(X, y, epochs=2, batch_size=8, optimizer=make_opt(), verbose=0, path=path)
    for a, p in zip(before, [p for l in frozen for p in l.parameters()]):
        np.testing.assert_array_equal(a, p.data)
    after = [p.data for l in m.layers[2:] for p in l.parameters()]
    assert all(not np.array_equal(a, b) for a, b in zip(others, after))


def test_freezing_is_saved_and_undone(tmp_path):
    m = MLP([3, 4, 2], seed=0).freeze(0)
    save_model(m, tmp_path / "m.npz")
    m2 = load_model(tmp_path / "m.npz")
    assert not m2.layers[0].trainable and not m2.layers[0].weight.trainable and m2.layers[1].trainable
    m2.unfreeze()
    assert all(p.trainable for p in m2.parameters())
    with pytest.raises(InvalidArgumentError, match="layer indices"):
        m.freeze(7)
    with pytest.raises(InvalidArgumentError, match="not one of this model's layers"):
        m.freeze(Dense(3, 4))
    with pytest.raises(InvalidArgumentError, match="trainable"):
        m.layers[0].trainable = "no"


def test_param_groups_validate_and_lr_is_relative():
    m = MLP([3, 4, 2], seed=0)
    opt = SGD(lr=0.5)
    opt.add_param_group({"params": m.layers[0].parameters(), "lr": 0.05})
    assert opt.param_groups[0]["lr_mult"] == pytest.approx(0.1)
    with pytest.raises(InvalidArgumentError, match="already in a parameter group"):
        opt.add_param_group({"params": m.layers[0].parameters()})
    with pytest.raises(InvalidArgumentError, match="'momentum'"):
        opt.add_param_group({"params": m.layers[1].parameters(), "momentum": 0.9})
    # a zero multiplier freezes the group's rate (SGD without decay: no change at all)
    W = m.layers[1].W.copy()
    opt2 = SGD(lr=0.5)
    opt2.add_param_group({"params": m.layers[1].parameters(), "lr_mult": 0.0})
    m.fit(np.ones((4, 3)), [0, 1, 0, 1], optimizer=opt2, epochs=1, verbose=0)
    np.testing.assert_array_equal(W, m.layers[1].W)


# ---------------------------------------------------------------------------------- residual
def test_residual_backward_sums_both_paths():
    x = _rng(17).normal(size=(5, 4))
    f = Dense(4, 4, "tanh", dtype=np.float64, rng=_rng(0))
    r = Residual([f], dtype=np.float64)
    g = _rng(18).normal(size=x.shape)
    y = r.forward(x, training=True)
    np.testing.assert_allclose(y, x + np.tanh(x @ f.W + f.b))
    dx = r.backward(g)
    through_f = ((g * (1 - np.tanh(x @ f.W + f.b) ** 2)) @ f.W.T)
    np.testing.assert_allclose(dx, g + through_f, rtol=1e-12)  # identity path + f's path
    assert gradcheck(Residual([Dense(4, 4, "relu"), LayerNorm(4), Dense(4, 4, "silu")]), x).max_error < 1e-7


def test_residual_matches_torch():
    torch = _torch()
    x = _rng(19).normal(size=(6, 5))
    m = Sequential([Dense(5, 8, "relu"), Residual([Dense(8, 8, "gelu"), Dense(8, 8)]), Dense(8, 3)],
                   seed=0, dtype=np.float64)
    y = np.arange(6) % 3
    loss = m.loss.forward(m.forward(x, training=True), y)
    m.backward(m.loss.backward())
    lin = [torch.nn.Linear(a, b, dtype=torch.float64) for a, b in ((5, 8), (8, 8), (8, 8), (8, 3))]
    dense = [m.layers[0], *m.layers[1].layers, m.layers[2]]
    with torch.no_grad():
        for l, d in zip(lin, dense):
            l.weight.copy_(torch.tensor(d.W.T))
            l.bias.copy_(torch.tensor(d.b))
    h = torch.relu(lin[0](torch.tensor(x)))
    h = h + lin[2](torch.nn.functional.gelu(lin[1](h), approximate="tanh"))
    tl = torch.nn.functional.cross_entropy(lin[3](h), torch.tensor(y))
    tl.backward()
    assert loss == pytest.approx(tl.item(), rel=1e-12)
    for l, d in zip(lin, dense):
        np.testing.assert_allclose(d.dW, l.weight.grad.numpy().T, rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(d.db, l.bias.grad.numpy(), rtol=1e-10, atol=1e-13)


def test_residual_in_mlp_saves_and_refuses_bad_widths(tmp_path):
    with pytest.raises(InvalidArgumentError, match="keep the width"):
        Residual([Dense(4, 5)])
    with pytest.raises(InvalidArgumentError, match="residual=True"):
        MLP([3, 4, 5, 2], residual=True)
    m = MLP([3, 6, 6, 6, 2], residual=True, batch_norm=True, seed=0)
    assert [type(l).__name__ for l in m.layers] == ["Dense", "BatchNorm1d", "ActivationLayer", "Residual",
                                                    "Residual", "Dense"]
    X, y = _rng(20).normal(size=(30, 3)).astype(np.float32), np.arange(30) % 2
    m.fit(X, y, epochs=2, verbose=0)
    save_model(m, tmp_path / "r.npz")
    m2 = load_model(tmp_path / "r.npz")
    np.testing.assert_array_equal(m.decision_function(X), m2.decision_function(X))
    assert m2.layer_dims == [3, 6, 6, 6, 2]
    assert "layer3.0.W" in m.named_arrays() and "layer3.1.running_var" in m.named_arrays()


# ---------------------------------------------------------------------------------- embedding
def _cat_data(n=300, seed=21):
    r = _rng(seed)
    X = np.column_stack([r.normal(size=n), r.integers(0, 4, n), r.normal(size=n), r.integers(0, 3, n)])
    return X


def test_embedding_forward_backward_and_gradcheck():
    X = _cat_data(12)
    e = Embedding(4, {3: 3, 1: 4}, dims=[2, 5], rng=_rng(0), dtype=np.float64)  # dims follow the mapping's order
    assert e.columns == [1, 3] and e.dims == [5, 2] and e.output_features(4) == 9
    out = e.forward(X, training=True)
    np.testing.assert_array_equal(out[:, :2], X[:, [0, 2]])
    np.testing.assert_array_equal(out[:, 2:7], e.tables[0].data[X[:, 1].astype(int)])
    g = _rng(1).normal(size=out.shape)
    dx = e.backward(g)
    expect = np.zeros((4, 5))
    for i, c in enumerate(X[:, 1].astype(int)):
        expect[c] += g[i, 2:7]  # rows that share a code add up
    np.testing.assert_allclose(e.tables[0].grad, expect)
    assert not dx[:, [1, 3]].any() and np.array_equal(dx[:, [0, 2]], g[:, :2])
    m = Sequential([Embedding(4, {1: 4, 3: 3}, dims=2), Dense(6, 5, "tanh"), Dense(5, 2)], seed=0, dtype=np.float64)
    res = gradcheck(m, X, np.arange(12) % 2)
    assert res.max_error < 1e-8 and {"0.E0", "0.E1", "X"} <= set(res.errors)


def test_embedding_matches_torch():
    torch = _torch()
    X = _cat_data(20)
    e = Embedding(4, {1: 4, 3: 3}, dims=3, rng=_rng(2), dtype=np.float64)
    g = _rng(3).normal(size=(20, 8))
    out = e.forward(X, training=True)
    e.backward(g)
    embs = [torch.nn.Embedding(k, 3, dtype=torch.float64) for k in (4, 3)]
    with torch.no_grad():
        for emb, t in zip(embs, e.tables):
            emb.weight.copy_(torch.tensor(t.data))
    codes = torch.tensor(X[:, [1, 3]].astype(np.int64))
    tout = torch.cat([torch.tensor(X[:, [0, 2]]), embs[0](codes[:, 0]), embs[1](codes[:, 1])], dim=1)
    tout.backward(torch.tensor(g))
    np.testing.assert_array_equal(out, tout.detach().numpy())
    for emb, t in zip(embs, e.tables):
        np.testing.assert_allclose(t.grad, emb.weight.grad.numpy(), rtol=1e-12, atol=1e-15)


def test_embedding_refuses_unseen_or_non_integer_codes_and_saves(tmp_path):
    X = _cat_data(50)
    m = MLP([4, 8, 2], categorical={1: 4, 3: 3}, seed=0)
    assert type(m.layers[0]) is Embedding and m.n_features_in == 4 and m.layer_dims == [4, 8, 2]
    bad = X.copy()
    bad[5, 1] = 4
    with pytest.raises(InvalidDataError, match=r"column 1 holds 4 \(row 5\); expected integer codes 0..3"):
        m.predict(bad)
    bad[5, 1] = 1.5
    with pytest.raises(InvalidDataError, match="column 1"):
        m.predict(bad)
    with pytest.raises(InvalidArgumentError, match="out of range"):
        Embedding(4, {4: 2})
    m.fit(X, np.arange(50) % 2, epochs=2, verbose=0)
    save_model(m, tmp_path / "e.npz")
    m2 = load_model(tmp_path / "e.npz")
    np.testing.assert_array_equal(m.predict_proba(X), m2.predict_proba(X))
    assert m2.layer_dims == [4, 8, 2]


def test_new_layers_are_translated_or_refused_by_name(tmp_path):
    torch = _torch()
    from mlpnumpy.integrations.interop import to_torch
    x = _rng(22).normal(size=(7, 4))
    m = Sequential([Dense(4, 6, "mish"), LayerNorm(6), AlphaDropout(0.1), Dense(6, 5, "selu"),
                    ActivationLayer("hard_sigmoid"), Dense(5, 3, "softplus")], seed=0, dtype=np.float64)
    m.layers[1].gamma.data[:] = np.linspace(0.5, 2, 6)
    np.testing.assert_allclose(to_torch(m).eval()(torch.tensor(x)).detach().numpy(), m.decision_function(x),
                               rtol=1e-12, atol=1e-13)
    for bad, name in ((Sequential([Dense(4, 4), Residual([Dense(4, 4)])]), "Residual"),
                      (Sequential([Embedding(4, {0: 2}), Dense(4, 2)]), "Embedding")):
        with pytest.raises(InvalidArgumentError, match=f"layer 1 is a {name}|layer 0 is a {name}"):
            to_torch(bad)
        pytest.importorskip("onnx")
        from mlpnumpy import export_onnx
        with pytest.raises(InvalidArgumentError, match=f"is a {name}, which has no ONNX translation"):
            export_onnx(bad, tmp_path / "x.onnx")


def test_onnx_runs_the_new_pieces(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from mlpnumpy import export_onnx
    x = _rng(23).normal(0, 3, size=(9, 4))
    m = Sequential([Dense(4, 6, "selu"), LayerNorm(6), Dense(6, 6, "silu"), Dense(6, 6, "mish"),
                    Dense(6, 5, "hard_sigmoid"), Dense(5, 3, "softplus")], seed=0, dtype=np.float64)
    export_onnx(m, tmp_path / "m.onnx", output="logits")
    s = ort.InferenceSession(str(tmp_path / "m.onnx"))
    np.testing.assert_allclose(s.run(None, {s.get_inputs()[0].name: x})[0], m.decision_function(x),
                               rtol=1e-12, atol=1e-13)


# ---------------------------------------------------------------------------------- the command line
def test_cli_categorical_residual_and_l1(tmp_path):
    from mlpnumpy.cli.commands import main
    r = _rng(24)
    n = 400
    color, x = r.integers(0, 4, n), r.normal(size=n)
    label = np.isin(color, [1, 3]).astype(int)  # only the category decides
    path = tmp_path / "t.csv"
    path.write_text("x,color,label\n" + "".join(f"{a:.4f},{c},{d}\n" for a, c, d in zip(x, color, label)))
    out = tmp_path / "run"
    assert main(["train", "--data", str(path), "--categorical", "color", "--residual", "--hidden", "16", "16",
                 "--l1", "1e-5", "--l1-bias", "1e-5", "--epochs", "40", "--lr", "1e-2", "--out", str(out), "--quiet"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["test_accuracy"] >= 0.95 and m["config"]["l1"] == 1e-5 and m["config"]["residual"] is True
    model = load_model(out / "model.npz")
    assert type(model.layers[0]) is Embedding and model.layers[0].columns == [1]
    assert model.layers[0].cardinalities == [4] and type(model.layers[2]) is Residual
    np.testing.assert_array_equal(model.preprocessor.scale_[1], 1.0)  # codes left unscaled


@pytest.mark.parametrize("args,msg", [
    (["--categorical", "2"], "is the label column"),
    (["--categorical", "size"], "neither a column index nor a header name"),
    (["--residual", "--hidden", "8", "16"], "--residual needs two consecutive hidden layers"),
    (["--l1", "-1"], "--l1=-1.0 is invalid"),
])
def test_cli_refuses_bad_breadth_options(tmp_path, capsys, args, msg):
    from mlpnumpy.cli.commands import main
    path = tmp_path / "t.csv"
    path.write_text("x,color,label\n" + "".join(f"{i / 10},{i % 3},{i % 2}\n" for i in range(30)))
    assert main(["train", "--data", str(path), "--out", str(tmp_path / "o"), "--quiet", *args]) == 2
    assert msg in capsys.readouterr().err


def test_sklearn_estimators_take_l1_and_the_new_activations():
    pytest.importorskip("sklearn")
    from mlpnumpy.sklearn import MLPClassifier
    X, y = _rng(25).normal(size=(120, 10)), (_rng(25).normal(size=120) > 0).astype(int)
    a = MLPClassifier((16,), activation="mish", max_iter=100, random_state=0).fit(X, y)
    b = MLPClassifier((16,), activation="mish", max_iter=100, random_state=0, l1=1.0).fit(X, y)
    assert np.abs(b.coefs_[0]).sum() < 0.8 * np.abs(a.coefs_[0]).sum()
    assert MLPClassifier(activation=["selu"]).fit(X, y).model_.layers[0].activation.name == "selu"


_L = lambda meta: meta["config"]["layers"]  # noqa: E731


@pytest.mark.parametrize("mutate,msg", [
    (lambda m: _L(m)[0].__setitem__("in_features", "x"), "in_features='x' is not a positive integer"),
    (lambda m: _L(m)[0].__setitem__("columns", [9]), "are not distinct columns"),
    (lambda m: _L(m)[0].__setitem__("dims", [2, 3]), "equal lists of cardinalities and dims"),
    (lambda m: _L(m).insert(1, dict(_L(m)[0])), "is not the first layer"),
    (lambda m: _L(m)[2].__setitem__("layers", None), "has no list of layers"),
    (lambda m: _L(m)[2]["layers"][0].__setitem__("out_features", 9), "x \\+ f\\(x\\) needs one width"),
    (lambda m: _L(m)[1].__setitem__("trainable", "no"), "trainable='no' is not true or false"),
    (lambda m: _L(m).insert(2, {"type": "LayerNorm", "num_features": 5}), "LayerNorm.*do not line up"),
])
def test_model_files_with_bad_new_layers_are_refused(tmp_path, mutate, msg):
    import io as _io
    import zipfile

    from mlpnumpy.errors import FileFormatError
    path = tmp_path / "m.npz"
    save_model(MLP([4, 8, 8, 2], residual=True, categorical={1: 3}, seed=0), path)
    with zipfile.ZipFile(path) as z:
        entries = {n: z.read(n) for n in z.namelist()}
    meta = json.loads(np.load(_io.BytesIO(entries["__mlpnumpy__.npy"])).tobytes())
    mutate(meta)
    buf = _io.BytesIO()
    np.save(buf, np.frombuffer(json.dumps(meta).encode(), np.uint8))
    entries["__mlpnumpy__.npy"] = buf.getvalue()
    bad = tmp_path / "bad.npz"
    with zipfile.ZipFile(bad, "w") as z:
        for n, v in entries.items():
            z.writestr(n, v)
    with pytest.raises(FileFormatError, match=msg):
        load_model(bad)


def test_l1_gradient_is_the_penalised_losss_derivative():
    """backward + add_l1_grad equals finite differences of loss + l1_penalty (float64, weights away from 0)."""
    from mlpnumpy.nn.gradcheck import relative_error
    X, y = _rng(26).normal(size=(8, 3)), np.arange(8) % 2
    m = MLP([3, 4, 2], "tanh", seed=0, dtype=np.float64)
    params = m.parameters()
    for layer in m.dense_layers:
        layer.b = _rng(27).uniform(0.1, 0.5, layer.b.shape) * np.sign(_rng(28).normal(size=layer.b.shape))

    def objective():
        return m.loss.forward(m.forward(X, training=True), y) + l1_penalty(params, 0.03, 0.01)

    objective()
    m.backward(m.loss.backward())
    add_l1_grad(params, 0.03, 0.01)
    for p in params:
        assert np.abs(p.data).min() > 1e-3  # |w| is differentiable there
        numeric = np.zeros_like(p.data)
        for i in np.ndindex(p.data.shape):
            old = p.data[i]
            p.data[i] = old + 1e-6
            up = objective()
            p.data[i] = old - 1e-6
            down = objective()
            p.data[i] = old
            numeric[i] = (up - down) / 2e-6
        assert relative_error(p.grad, numeric) < 1e-7, p.name
