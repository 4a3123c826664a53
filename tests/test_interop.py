"""PyTorch and safetensors interop: the same numbers both ways."""
import numpy as np
import pytest
from _helpers import randomize_batchnorm

torch = pytest.importorskip("torch")
from torch import nn

from mlpnumpy import MLP, Sequential
from mlpnumpy.errors import FileFormatError, InvalidArgumentError
from mlpnumpy.integrations.interop import from_torch, load_safetensors, save_safetensors, to_torch
from mlpnumpy.nn.layers import BatchNorm1d, Dense
from mlpnumpy.nn.losses import CrossEntropy

ACTIVATIONS = ["relu", "leaky_relu", "sigmoid", "tanh", "elu", "gelu", "identity"]
TOL = {np.float64: 1e-12, np.float32: 1e-6}


def _model(activation, dtype, batch_norm, dropout=0.0, seed=0):
    model = MLP([5, 7, 6, 3], activation, seed=seed, dtype=dtype, batch_norm=batch_norm, dropout=dropout)
    rng = np.random.default_rng(seed + 1)
    randomize_batchnorm(model, rng)
    for layer in model.layers:
        if isinstance(layer, Dense) and layer.b is not None:
            layer.b = rng.normal(size=layer.out_features) * 0.1
    return model


def _X(dtype, n=16):
    return np.random.default_rng(3).normal(size=(n, 5)).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("batch_norm", [False, True])
def test_to_torch_eval_outputs_and_training_gradients(dtype, activation, batch_norm):
    model = _model(activation, dtype, batch_norm, dropout=0.3)
    tmod = to_torch(model)
    X = _X(dtype)
    tmod.eval()
    with torch.no_grad():
        out = tmod(torch.from_numpy(X)).numpy()
    assert out.dtype == dtype
    np.testing.assert_allclose(out, model.forward(X, training=False), atol=TOL[dtype], rtol=TOL[dtype])

    # training mode (batch statistics): gradients of the same cross-entropy agree; no dropout here
    model = _model(activation, dtype, batch_norm)
    tmod = to_torch(model).train()
    y = np.arange(X.shape[0]) % 3
    loss = CrossEntropy()
    lval = loss.forward(model.forward(X, training=True), y)
    model.backward(loss.backward())
    tl = nn.functional.cross_entropy(tmod(torch.from_numpy(X)), torch.from_numpy(y))
    tl.backward()
    assert abs(lval - tl.item()) < 10 * TOL[dtype]
    tparams = [p for p in tmod.parameters()]
    ours = model.parameters()
    assert len(ours) == len(tparams)
    for p, t in zip(ours, tparams):
        g = t.grad.numpy()
        np.testing.assert_allclose(p.grad, g.T if p.name == "W" else g, atol=10 * TOL[dtype], rtol=1e-4)
    # the running statistics moved the same way
    for layer, m in zip([l for l in model.layers if isinstance(l, BatchNorm1d)],
                        [m for m in tmod if isinstance(m, nn.BatchNorm1d)]):
        np.testing.assert_allclose(layer.running_var, m.running_var.numpy(), atol=TOL[dtype], rtol=TOL[dtype])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_from_torch_matches_and_fuses(dtype):
    torch.manual_seed(0)
    tmod = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 8), nn.BatchNorm1d(8), nn.LeakyReLU(0.2),
                         nn.Dropout(0.1), nn.Sequential(nn.Linear(8, 6), nn.ELU(0.7)), nn.Identity(),
                         nn.Linear(6, 6), nn.GELU(approximate="tanh"), nn.Linear(6, 4, bias=False),
                         nn.Tanh(), nn.Linear(4, 3), nn.Sigmoid()).to(dtype)
    with torch.no_grad():
        tmod[3].running_mean.uniform_(-1, 1)
        tmod[3].running_var.uniform_(0.5, 2)
        tmod[3].weight.uniform_(0.5, 2)
    tmod.eval()
    model = from_torch(tmod)
    np_dtype = np.float64 if dtype == torch.float64 else np.float32
    assert model.dtype == np_dtype
    dense = [l for l in model.layers if isinstance(l, Dense)]
    assert [d.activation.name for d in dense] == ["relu", "identity", "elu", "gelu", "tanh", "sigmoid"]
    X = _X(np_dtype)
    with torch.no_grad():
        ref = tmod(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(model.forward(X), ref, atol=TOL[np_dtype], rtol=TOL[np_dtype])
    # and back again
    with torch.no_grad():
        again = to_torch(model).eval()(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(again, ref, atol=TOL[np_dtype], rtol=TOL[np_dtype])


@pytest.mark.parametrize("affine", [True, False])
def test_from_torch_takes_layer_norm_and_alpha_dropout(affine):
    torch.manual_seed(1)
    tmod = nn.Sequential(nn.Linear(5, 6), nn.LayerNorm(6, eps=1e-4, elementwise_affine=affine), nn.SELU(),
                         nn.AlphaDropout(0.1), nn.Linear(6, 3)).double()
    if affine:
        with torch.no_grad():
            tmod[1].weight.uniform_(0.5, 2)
            tmod[1].bias.uniform_(-1, 1)
    tmod.eval()
    model = from_torch(tmod)
    assert [type(l).__name__ for l in model.layers] == ["Dense", "LayerNorm", "ActivationLayer", "AlphaDropout",
                                                        "Dense"]
    assert model.layers[1].eps == 1e-4 and model.layers[3].p == 0.1
    X = _X(np.float64)
    with torch.no_grad():
        ref = tmod(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(model.forward(X), ref, atol=1e-12, rtol=1e-12)
    with pytest.raises(InvalidArgumentError, match="LayerNorm"):
        from_torch(nn.Sequential(nn.Linear(2, 6), nn.LayerNorm((2, 3))))


def test_from_torch_rejects_unsupported_modules():
    with pytest.raises(InvalidArgumentError, match="Softsign"):
        from_torch(nn.Sequential(nn.Linear(2, 3), nn.Softsign()))
    with pytest.raises(InvalidArgumentError, match="Softplus"):  # only torch's default beta=1, threshold=20
        from_torch(nn.Sequential(nn.Linear(2, 3), nn.Softplus(beta=2)))
    with pytest.raises(InvalidArgumentError, match="approximate='tanh'"):
        from_torch(nn.Sequential(nn.Linear(2, 3), nn.GELU()))
    with pytest.raises(InvalidArgumentError, match="torch.nn.Module"):
        from_torch([nn.Linear(2, 3)])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_safetensors_roundtrip(tmp_path, dtype):
    safetensors = pytest.importorskip("safetensors.numpy")
    model = _model("tanh", dtype, batch_norm=True)
    path = tmp_path / "w.safetensors"
    save_safetensors(model, path)
    names = safetensors.load_file(str(path))
    assert "layers.0.W" in names and "layers.1.running_var" in names
    assert names["layers.0.W"].shape == (5, 7) and names["layers.0.W"].dtype == dtype
    fresh = _model("tanh", dtype, batch_norm=True, seed=9)
    X = _X(dtype)
    assert not np.allclose(fresh.forward(X), model.forward(X))
    assert load_safetensors(path, fresh) is fresh
    np.testing.assert_array_equal(fresh.forward(X), model.forward(X))


def test_safetensors_mismatch_and_garbage(tmp_path):
    pytest.importorskip("safetensors")
    path = tmp_path / "w.safetensors"
    save_safetensors(MLP([5, 4, 3], seed=0), path)
    with pytest.raises(FileFormatError, match="shape"):
        load_safetensors(path, MLP([5, 6, 3], seed=0))
    with pytest.raises(FileFormatError, match="missing"):
        load_safetensors(path, Sequential([Dense(5, 4), Dense(4, 3), Dense(3, 3)]))
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!")
    with pytest.raises(FileFormatError):
        load_safetensors(bad, MLP([5, 4, 3], seed=0))


def test_missing_torch_is_a_clear_error(monkeypatch):
    from mlpnumpy.errors import MissingDependencyError
    monkeypatch.setitem(__import__("sys").modules, "torch", None)   # as if not installed
    with pytest.raises(MissingDependencyError, match=r"pip install 'mlpnumpy\[torch\]'"):
        to_torch(MLP([2, 2], seed=0))
