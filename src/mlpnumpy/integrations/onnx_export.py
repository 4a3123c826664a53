"""Export a trained model to ONNX, for inference with onnxruntime or any other ONNX runtime.

Each layer becomes a few standard operators (Gemm per Dense layer; activations built from
primitives where a runtime might lack a double-precision kernel; batch norm in evaluation mode as
the affine map it then is; dropout dropped), so float32 and float64 models export alike.
Needs the optional ``onnx`` package.
"""
from __future__ import annotations

import os

import numpy as np

from ..io._atomic import atomic_write_bytes
from ..errors import InvalidArgumentError, check_choice, require

__all__ = ["export_onnx", "check_output_file"]

_OUTPUTS = ("probabilities", "logits")


class _GraphBuilder:
    """Collects nodes and constants, naming every intermediate tensor uniquely."""

    def __init__(self, onnx, dtype: np.dtype):
        self.onnx, self.dtype = onnx, dtype
        self.nodes, self.initializers = [], []
        self._count = 0

    def name(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def const(self, value, hint: str) -> str:
        arr = np.asarray(value, dtype=self.dtype)
        name = self.name(hint)
        self.initializers.append(self.onnx.numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def op(self, op_type: str, inputs: list[str], hint: str | None = None, **attrs) -> str:
        out = self.name(hint or op_type.lower())
        self.nodes.append(self.onnx.helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    # -- activations, as mlpnumpy.nn.activations computes them
    def activation(self, act, x: str) -> str:
        name = act.name
        if name == "identity":
            return x
        if name == "relu":
            return self.op("Relu", [x])
        if name == "sigmoid":
            return self.op("Sigmoid", [x])
        if name == "tanh":
            return self.op("Tanh", [x])
        # the newer activations from basic operators: onnxruntime has no float64 Selu, Softplus, ...
        if name == "hard_sigmoid":  # min(1, max(0, x/6 + 1/2)), torch's Hardsigmoid
            lin = self.op("Add", [self.op("Mul", [x, self.const(1.0 / 6, "sixth")]), self.const(0.5, "half")])
            return self.op("Min", [self.op("Max", [lin, self.const(0.0, "zero")]), self.const(1.0, "one")],
                           "hard_sigmoid")
        if name == "silu":
            return self.op("Mul", [x, self.op("Sigmoid", [x])], "silu")
        if name in ("softplus", "mish"):  # max(x, 0) + log(1 + exp(-|x|)): no overflow for any x
            zero = self.const(0.0, "zero")
            tail = self.op("Log", [self.op("Add", [self.const(1.0, "one"),
                                                   self.op("Exp", [self.op("Neg", [self.op("Abs", [x])])])])])
            sp = self.op("Add", [self.op("Max", [x, zero]), tail], "softplus")
            return sp if name == "softplus" else self.op("Mul", [x, self.op("Tanh", [sp])], "mish")
        zero = self.const(0.0, "zero")
        positive = self.op("Greater", [x, zero], "is_positive")
        if name == "leaky_relu":  # where(z > 0, z, slope * z)
            neg = self.op("Mul", [x, self.const(act.negative_slope, "slope")])
            return self.op("Where", [positive, x, neg], "leaky_relu")
        if name == "selu":        # where(z > 0, scale z, scale alpha (exp(min(z, 0)) - 1))
            from ..nn.activations import SELU
            e = self.op("Exp", [self.op("Min", [x, zero])])
            neg = self.op("Mul", [self.op("Sub", [e, self.const(1.0, "one")]),
                                  self.const(SELU.SCALE * SELU.ALPHA, "scale_alpha")])
            return self.op("Where", [positive, self.op("Mul", [x, self.const(SELU.SCALE, "scale")]), neg], "selu")
        if name == "elu":         # where(z > 0, z, alpha * (exp(min(z, 0)) - 1))
            e = self.op("Exp", [self.op("Min", [x, zero])])
            neg = self.op("Mul", [self.op("Sub", [e, self.const(1.0, "one")]), self.const(act.alpha, "alpha")])
            return self.op("Where", [positive, x, neg], "elu")
        if name == "gelu":        # 0.5 z (1 + tanh(sqrt(2/pi) (z + 0.044715 z^3))), the tanh form
            cube = self.op("Mul", [self.op("Mul", [x, x]), x])
            inner = self.op("Add", [x, self.op("Mul", [cube, self.const(0.044715, "k")])])
            t = self.op("Tanh", [self.op("Mul", [inner, self.const(np.sqrt(2.0 / np.pi), "c")])])
            half_x = self.op("Mul", [x, self.const(0.5, "half")])
            return self.op("Mul", [half_x, self.op("Add", [t, self.const(1.0, "one")])], "gelu")
        raise InvalidArgumentError(f"activation {name!r} has no ONNX translation; expected one of: identity, "
                                   "relu, leaky_relu, sigmoid, tanh, elu, gelu, selu, hard_sigmoid, silu, "
                                   "softplus, mish")


def _resolve(model_or_estimator):
    """``(core model, output transform, binary_two_columns)`` for a model or a fitted estimator."""
    from ..nn.model import Sequential
    if isinstance(model_or_estimator, Sequential):
        from .._array_api import host_model  # a model on a device is exported from a host copy
        return host_model(model_or_estimator), model_or_estimator.loss.output_transform, False
    core = getattr(model_or_estimator, "model_", None)
    if isinstance(core, Sequential):
        est = model_or_estimator
        transform = {"softmax": "softmax", "logistic": "sigmoid", "identity": "identity",
                     "exp": "exp"}[est.out_activation_]
        # sklearn's binary predict_proba returns [1 - p, p]
        two_columns = hasattr(est, "classes_") and transform == "sigmoid" and est.n_outputs_ == 1
        return core, transform, two_columns
    raise InvalidArgumentError(f"model_or_estimator is a {type(model_or_estimator).__name__}; expected an "
                               "mlpnumpy Sequential/MLP or a fitted mlpnumpy.sklearn estimator")


def check_output_file(path: str | os.PathLike, arg: str = "path") -> None:
    """Raise unless ``path`` can be written as a new or replaced file: not a folder, its folder exists.

    Checked before any work, so the error names the user's path, not a temporary file.
    """
    name = os.fspath(path)
    if os.path.isdir(name):
        raise InvalidArgumentError(f"{arg}={name!r} is a folder; expected a file name such as "
                                   f"{os.path.join(name, 'model.onnx')}")
    folder = os.path.dirname(os.path.abspath(name))
    if not os.path.isdir(folder):
        what = "is a file" if os.path.exists(folder) else "does not exist"
        raise InvalidArgumentError(f"{arg}={name!r}: its folder {folder} {what}; expected a path in an "
                                   "existing folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InvalidArgumentError(f"{arg}={name!r}: its folder {folder} is not writable")


# ----------------------------------------------------------------------------- one translation per layer type
# Each takes the graph, the layer, its index and the name of its input, and returns its output's name.
def _onnx_dense(g, layer, i, x):
    w = g.const(layer.W, f"layers.{i}.W")
    if layer.b is not None:
        x = g.op("Gemm", [x, w, g.const(layer.b, f"layers.{i}.b")], f"dense{i}")
    else:
        x = g.op("MatMul", [x, w], f"dense{i}")
    return g.activation(layer.activation, x)


def _onnx_activation(g, layer, i, x):
    return g.activation(layer.activation, x)


def _onnx_batch_norm(g, layer, i, x):
    # evaluation mode: gamma (x - mean) / sqrt(var + eps) + beta = x * scale + shift
    scale = layer.gamma.data.astype(np.float64) / np.sqrt(layer.running_var.astype(np.float64) + layer.eps)
    shift = layer.beta.data.astype(np.float64) - layer.running_mean.astype(np.float64) * scale
    return g.op("Add", [g.op("Mul", [x, g.const(scale, f"layers.{i}.scale")]),
                        g.const(shift, f"layers.{i}.shift")], f"batchnorm{i}")


def _onnx_layer_norm(g, layer, i, x):
    # row means as products with a (D, 1) column of 1/D: the same graph for every opset
    avg = g.const(np.full((layer.num_features, 1), 1.0 / layer.num_features), f"layers.{i}.avg")
    xc = g.op("Sub", [x, g.op("MatMul", [x, avg])], f"centred{i}")
    var = g.op("MatMul", [g.op("Mul", [xc, xc]), avg], f"var{i}")
    x = g.op("Div", [xc, g.op("Sqrt", [g.op("Add", [var, g.const(layer.eps, f"layers.{i}.eps")])])],
             f"layernorm{i}")
    if layer.elementwise_affine:
        x = g.op("Add", [g.op("Mul", [x, g.const(layer.gamma.data, f"layers.{i}.gamma")]),
                         g.const(layer.beta.data, f"layers.{i}.beta")], f"affine{i}")
    return x


def _onnx_identity(g, layer, i, x):
    return x  # dropout is the identity at inference


def _onnx_layers() -> dict:
    """Layer class -> its ONNX translation: a new layer type adds its entry here."""
    from ..nn.layers import ActivationLayer, AlphaDropout, BatchNorm1d, Dense, Dropout, LayerNorm
    return {Dense: _onnx_dense, ActivationLayer: _onnx_activation, BatchNorm1d: _onnx_batch_norm,
            LayerNorm: _onnx_layer_norm, Dropout: _onnx_identity, AlphaDropout: _onnx_identity}


def _translation(layer):
    """The translation of ``layer``'s class (or of the nearest base class that has one), or None."""
    table = _onnx_layers()
    return next((table[c] for c in type(layer).__mro__ if c in table), None)


def export_onnx(model_or_estimator, path: str | os.PathLike | None, *, opset: int = 17,
                include_preprocessing: bool = True, output: str = "probabilities"):
    """Write ``model_or_estimator`` as an ONNX graph ``X (batch, n_features) -> Y (batch, n_outputs)``.

    Parameters
    ----------
    model_or_estimator : Sequential, MLP, or a fitted MLPClassifier/MLPRegressor
    path : str or path-like, or None
        Destination file, written atomically; None only builds and returns the model.
    opset : int
        ONNX operator-set version (>= 13).
    include_preprocessing : bool
        Put the model's Standardizer (``model.preprocessor``), if any, at the input as
        ``(X - mean_) / scale_``.
    output : {"probabilities", "logits"}
        ``"probabilities"`` applies the loss's output transform (softmax, sigmoid; exp for a Poisson
        regressor; two columns ``[1-p, p]`` for a binary estimator, as its ``predict_proba``);
        ``"logits"`` returns the raw outputs.

    Returns
    -------
    onnx.ModelProto
        The checked model; input ``"X"``, output ``"probabilities"`` or ``"logits"``, both with a
        dynamic batch dimension, in the model's dtype (float32 or float64).
    """
    if path is not None:
        check_output_file(path)
    onnx = require("onnx", "onnx", "export_onnx")
    require("onnx.numpy_helper", "onnx", "export_onnx")  # the submodule the builder uses
    output = check_choice("output", output, _OUTPUTS)
    if not isinstance(opset, int) or isinstance(opset, bool) or opset < 13:
        raise InvalidArgumentError(f"opset={opset!r} is invalid; expected an integer >= 13")
    model, transform, two_columns = _resolve(model_or_estimator)
    dtype = np.dtype(model.dtype)
    elem = onnx.TensorProto.DOUBLE if dtype == np.float64 else onnx.TensorProto.FLOAT
    g = _GraphBuilder(onnx, dtype)

    x = "X"
    pre = getattr(model, "preprocessor", None)
    if include_preprocessing and pre is not None:
        x = g.op("Sub", [x, g.const(pre.mean_, "mean")], "centred")
        x = g.op("Div", [x, g.const(pre.scale_, "scale")], "standardized")
    for i, layer in enumerate(model.layers):
        translate = _translation(layer)
        if translate is None:  # Residual, Embedding
            raise InvalidArgumentError(f"layer {i} is a {type(layer).__name__}, which has no ONNX translation; "
                                       f"expected one of: {', '.join(t.__name__ for t in _onnx_layers())}")
        x = translate(g, layer, i, x)
    if output == "probabilities":
        if transform == "softmax":
            x = g.op("Softmax", [x], axis=1)
        elif transform == "sigmoid":
            x = g.op("Sigmoid", [x])
            if two_columns:
                x = g.op("Concat", [g.op("Sub", [g.const(1.0, "one"), x]), x], axis=1)
        elif transform == "exp":
            x = g.op("Exp", [x])
    out_name = output
    g.nodes.append(onnx.helper.make_node("Identity", [x], [out_name], name="output"))
    n_out = 2 if two_columns and output == "probabilities" else model.n_outputs

    graph = onnx.helper.make_graph(
        g.nodes, "mlpnumpy",
        [onnx.helper.make_tensor_value_info("X", elem, ["batch", model.n_features_in])],
        [onnx.helper.make_tensor_value_info(out_name, elem, ["batch", n_out])],
        initializer=g.initializers)
    opsets = [onnx.helper.make_opsetid("", opset)]
    proto = onnx.helper.make_model(graph, opset_imports=opsets, producer_name="mlpnumpy")
    # the oldest IR version that carries this opset, so older runtimes can load the file
    proto.ir_version = onnx.helper.find_min_ir_version_for(opsets)
    onnx.checker.check_model(proto)
    if path is not None:
        atomic_write_bytes(path, proto.SerializeToString())
    return proto
