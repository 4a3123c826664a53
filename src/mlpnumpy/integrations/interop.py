"""Moving models between mlpnumpy and PyTorch, and weights in and out of safetensors files.

``to_torch`` and ``from_torch`` translate layer by layer (a Dense layer is ``Linear`` with the
transposed weight, then its activation); the safetensors functions store each parameter and buffer
under ``layers.<i>.<name>``. torch and safetensors are optional extras, imported only here.
"""
from __future__ import annotations

import os

import numpy as np

from ..io._atomic import atomic_write_bytes
from ..errors import FileFormatError, InvalidArgumentError, require

__all__ = ["from_torch", "load_safetensors", "save_safetensors", "to_torch"]


def _torch_activation(nn, act):
    """The torch module for an mlpnumpy activation (None for the identity)."""
    name = act.name
    if name == "identity":
        return None
    table = {"relu": lambda: nn.ReLU(), "sigmoid": lambda: nn.Sigmoid(), "tanh": lambda: nn.Tanh(),
             "leaky_relu": lambda: nn.LeakyReLU(act.negative_slope), "elu": lambda: nn.ELU(act.alpha),
             "gelu": lambda: nn.GELU(approximate="tanh"), "selu": lambda: nn.SELU(),
             "softplus": lambda: nn.Softplus(), "hard_sigmoid": lambda: nn.Hardsigmoid(), "silu": lambda: nn.SiLU(),
             "mish": lambda: nn.Mish()}
    if name not in table or type(act).__module__ != "mlpnumpy.nn.activations":
        raise InvalidArgumentError(f"activation {act!r} has no torch translation; expected one of: "
                                   f"identity, {', '.join(table)}")
    return table[name]()


# ----------------------------------------------------------------------------- one translation per layer type
# Each returns the torch modules (None for nothing) that compute what the layer computes.
def _torch_dense(torch, nn, layer, tdtype):
    lin = nn.Linear(layer.in_features, layer.out_features, bias=layer.b is not None, dtype=tdtype)
    lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(layer.W.T)))
    if layer.b is not None:
        lin.bias.copy_(torch.from_numpy(layer.b))
    return [lin, _torch_activation(nn, layer.activation)]


def _torch_batch_norm(torch, nn, layer, tdtype):
    bn = nn.BatchNorm1d(layer.num_features, eps=layer.eps, momentum=layer.momentum, dtype=tdtype)
    bn.weight.copy_(torch.from_numpy(layer.gamma.data))
    bn.bias.copy_(torch.from_numpy(layer.beta.data))
    bn.running_mean.copy_(torch.from_numpy(layer.running_mean))
    bn.running_var.copy_(torch.from_numpy(layer.running_var))
    return [bn]


def _torch_layer_norm(torch, nn, layer, tdtype):
    ln = nn.LayerNorm(layer.num_features, eps=layer.eps, elementwise_affine=layer.elementwise_affine, dtype=tdtype)
    if layer.elementwise_affine:
        ln.weight.copy_(torch.from_numpy(layer.gamma.data))
        ln.bias.copy_(torch.from_numpy(layer.beta.data))
    return [ln]


def _torch_layers() -> dict:
    """Layer class -> its torch translation: a new layer type adds its entry here."""
    from ..nn.layers import ActivationLayer, AlphaDropout, BatchNorm1d, Dense, Dropout, LayerNorm
    return {Dense: _torch_dense, ActivationLayer: lambda torch, nn, l, dt: [_torch_activation(nn, l.activation)],
            BatchNorm1d: _torch_batch_norm, LayerNorm: _torch_layer_norm,
            Dropout: lambda torch, nn, l, dt: [nn.Dropout(l.p)],
            AlphaDropout: lambda torch, nn, l, dt: [nn.AlphaDropout(l.p)]}


def to_torch(model):
    """A ``torch.nn.Sequential`` computing what ``model.forward`` computes (raw outputs/logits).

    Dense -> ``Linear`` (``weight = W.T``) and its activation; BatchNorm1d -> ``BatchNorm1d`` with
    the same eps, momentum and running statistics; Dropout -> ``Dropout``. The module has the
    model's dtype and holds copies of its weights. The model's preprocessor is not included.
    """
    from .._array_api import host_model
    model = host_model(model)  # a model on a device is translated from a host copy
    torch = require("torch", "torch", "to_torch")
    from torch import nn

    tdtype = torch.float64 if np.dtype(model.dtype) == np.float64 else torch.float32
    table = _torch_layers()
    modules = []
    with torch.no_grad():
        for i, layer in enumerate(model.layers):
            translate = next((table[c] for c in type(layer).__mro__ if c in table), None)
            if translate is None:  # Residual, Embedding: no torch.nn module of their own in a Sequential
                raise InvalidArgumentError(f"layer {i} is a {type(layer).__name__}, which to_torch cannot translate; "
                                           f"expected one of: {', '.join(t.__name__ for t in table)}")
            modules += [m for m in translate(torch, nn, layer, tdtype) if m is not None]
    return nn.Sequential(*modules)


_ACTIVATION_NAMES = {"ReLU": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh"}


def _flatten(module, nn):
    if isinstance(module, nn.Sequential):
        for child in module:
            yield from _flatten(child, nn)
    else:
        yield module


def _activation_of(module, nn):
    """An mlpnumpy activation for a torch activation module, or None if it is not one."""
    from ..nn.activations import ELU, GELU, LeakyReLU, get_activation
    kind = type(module).__name__
    if kind in _ACTIVATION_NAMES and type(module) is getattr(nn, kind):
        return get_activation(_ACTIVATION_NAMES[kind])
    if type(module) is nn.LeakyReLU:
        return LeakyReLU(module.negative_slope)
    if type(module) is nn.ELU:
        return ELU(module.alpha)
    simple = {nn.SELU: "selu", nn.Hardsigmoid: "hard_sigmoid", nn.SiLU: "silu", nn.Mish: "mish"}
    if type(module) in simple:
        return get_activation(simple[type(module)])
    if type(module) is nn.Softplus and module.beta == 1 and module.threshold == 20:
        return get_activation("softplus")
    if type(module) is nn.GELU:
        if module.approximate != "tanh":
            raise InvalidArgumentError("GELU(approximate='none') (the exact erf form) is not supported; mlpnumpy's "
                                       "GELU is the tanh form: use torch.nn.GELU(approximate='tanh')")
        return GELU()
    return None


# ------------------------------------------------------------- from torch: one translation per module type
# Each takes the torch module and ``arr`` (a tensor as a NumPy array of the model's dtype) and returns
# the mlpnumpy layer (None for nothing) and a function that copies the module's arrays into it once the
# model is built (None when there is nothing to copy).
def _from_linear(m, arr, dtype):
    from ..nn.layers import Dense
    layer = Dense(m.in_features, m.out_features, "identity", dtype=dtype, bias=m.bias is not None)
    W, b = arr(m.weight).T, None if m.bias is None else arr(m.bias)

    def copy():
        layer.W = W
        if b is not None:
            layer.b = b
    return layer, copy


def _norm_copy(layer, m, arr, n, dtype):
    gamma = arr(m.weight) if m.weight is not None else np.ones(n, dtype)
    beta = arr(m.bias) if m.bias is not None else np.zeros(n, dtype)

    def copy():
        layer.gamma.assign(gamma)
        layer.beta.assign(beta)
    return copy


def _from_batch_norm(m, arr, dtype):
    from ..nn.layers import BatchNorm1d
    if m.momentum is None or not m.track_running_stats:
        raise InvalidArgumentError("BatchNorm1d with momentum=None or track_running_stats=False is not "
                                   "supported; mlpnumpy keeps exponential running statistics")
    layer = BatchNorm1d(m.num_features, m.eps, m.momentum, dtype=dtype)
    affine = _norm_copy(layer, m, arr, m.num_features, dtype)
    mean, var = arr(m.running_mean), arr(m.running_var)

    def copy():
        affine()
        layer.running_mean[...] = mean
        layer.running_var[...] = var
    return layer, copy


def _from_layer_norm(m, arr, dtype):
    from ..nn.layers import LayerNorm
    if len(m.normalized_shape) != 1:
        raise InvalidArgumentError(f"LayerNorm{tuple(m.normalized_shape)} is not supported; expected LayerNorm "
                                   "over the last dimension, LayerNorm(n)")
    layer = LayerNorm(m.normalized_shape[0], m.eps, m.elementwise_affine, dtype=dtype)
    return layer, _norm_copy(layer, m, arr, m.normalized_shape[0], dtype) if m.elementwise_affine else None


def _from_dropout(m, arr, dtype):
    from ..nn.layers import Dropout
    return Dropout(m.p), None


def _from_alpha_dropout(m, arr, dtype):
    from ..nn.layers import AlphaDropout
    return AlphaDropout(m.p), None


def _from_torch_modules(nn) -> dict:
    """torch module class -> its translation (activations are found by :func:`_activation_of`)."""
    return {nn.Linear: _from_linear, nn.BatchNorm1d: _from_batch_norm, nn.LayerNorm: _from_layer_norm,
            nn.Dropout: _from_dropout, nn.AlphaDropout: _from_alpha_dropout, nn.Identity: lambda m, a, d: (None, None)}


def from_torch(module, *, loss="cross_entropy", seed=None):
    """An mlpnumpy ``Sequential`` with ``module``'s layers and weights (copied).

    Accepts ``nn.Sequential`` stacks (nested ones are flattened) of Linear, the activations
    ``to_torch`` writes (ReLU, LeakyReLU, Sigmoid, Tanh, ELU, GELU(approximate='tanh'), SELU,
    Softplus, Hardsigmoid, SiLU, Mish), Identity, BatchNorm1d, LayerNorm, Dropout and AlphaDropout. An
    activation right after a Linear becomes that Dense layer's activation. The dtype is the
    parameters' (float32 or float64). ``seed`` seeds the model's generator (dropout masks, shuffling).

    Raises
    ------
    InvalidArgumentError
        For any other module, naming it.
    """
    torch = require("torch", "torch", "from_torch")
    from torch import nn

    from ..nn.layers import ActivationLayer, Dense
    from ..nn.model import Sequential
    if not isinstance(module, nn.Module):
        raise InvalidArgumentError(f"module is a {type(module).__name__}; expected a torch.nn.Module")
    tensors = list(module.parameters())
    tdtype = tensors[0].dtype if tensors else torch.float32
    if tdtype not in (torch.float32, torch.float64):
        raise InvalidArgumentError(f"module has {tdtype} parameters; expected float32 or float64")
    dtype = np.float64 if tdtype == torch.float64 else np.float32

    def arr(t):
        return t.detach().cpu().numpy().astype(dtype)

    table = _from_torch_modules(nn)
    layers, copies = [], []   # copies: what to copy in once the model is built
    for m in _flatten(module, nn):
        act = _activation_of(m, nn)
        if act is not None:
            last = layers[-1] if layers else None
            if isinstance(last, Dense) and last.activation.name == "identity":
                last.activation = act   # fuse into the preceding Dense layer
            else:
                layers.append(ActivationLayer(act))
            continue
        translate = table.get(type(m))
        if translate is None:
            raise InvalidArgumentError(f"from_torch cannot translate {type(m).__name__} ({m!r}); expected Linear, "
                                       "ReLU, LeakyReLU, Sigmoid, Tanh, ELU, GELU(approximate='tanh'), SELU, "
                                       "Softplus(), Hardsigmoid, SiLU, Mish, Identity, BatchNorm1d, LayerNorm, "
                                       "Dropout or AlphaDropout")
        layer, copy = translate(m, arr, dtype)
        if layer is not None:
            layers.append(layer)
        if copy is not None:
            copies.append(copy)
    if not layers:
        raise InvalidArgumentError("module has no layers to translate")
    for copy in copies:  # weights first: the model then keeps them, draws nothing
        copy()
    return Sequential(layers, loss=loss, seed=seed, dtype=dtype)


def _named_tensors(model) -> dict[str, np.ndarray]:
    """Every parameter and buffer of ``model`` as ``layers.<i>.<name>`` (e.g. ``layers.0.W``)."""
    from .._array_api import host_model
    return host_model(model).named_arrays("layers.")


def save_safetensors(model, path: str | os.PathLike) -> None:
    """Write ``model``'s parameters and buffers to a safetensors file (atomically).

    Tensor names are ``layers.<i>.<name>``: ``W`` (in, out) and ``b`` (out,) for Dense layers,
    ``gamma``, ``beta``, ``running_mean``, ``running_var`` for BatchNorm1d. Only weights are stored;
    rebuild the architecture and use :func:`load_safetensors`.
    """
    require("safetensors", "safetensors", "save_safetensors")
    from safetensors.numpy import save
    tensors = {k: np.ascontiguousarray(v) for k, v in _named_tensors(model).items()}
    atomic_write_bytes(path, save(tensors, metadata={"format": "mlpnumpy", "dtype": str(np.dtype(model.dtype))}))


def load_safetensors(path: str | os.PathLike, model):
    """Copy the tensors of a safetensors file written by :func:`save_safetensors` into ``model``.

    Every tensor the model needs must be present with its shape, and no other; values are cast to
    the model's dtype. Returns ``model``.

    Raises
    ------
    FileFormatError
        For a file that is not safetensors, or whose names or shapes do not match the model.
    """
    safetensors = require("safetensors", "safetensors", "load_safetensors")
    from safetensors.numpy import load_file
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{os.fspath(path)} does not exist")
    try:
        tensors = load_file(os.fspath(path))
    except (OSError, ValueError, safetensors.SafetensorError) as exc:  # corrupt header, truncated data
        raise FileFormatError(f"{os.fspath(path)} is not a readable safetensors file ({exc})") from None
    targets = _named_tensors(model)
    missing, extra = sorted(set(targets) - set(tensors)), sorted(set(tensors) - set(targets))
    if missing or extra:
        raise FileFormatError(f"{os.fspath(path)} does not match the model: missing {missing}, unexpected {extra}")
    for name, target in targets.items():
        if tensors[name].shape != target.shape:
            raise FileFormatError(f"{name} has shape {tensors[name].shape} in the file; the model needs {target.shape}")
        if not np.all(np.isfinite(tensors[name])):
            raise FileFormatError(f"{name} contains NaN or infinity")
    for name, target in targets.items():
        np.copyto(target, tensors[name], casting="unsafe")
    return model
