"""mlpnumpy: multi-layer perceptrons from scratch in NumPy.

Backpropagation written by hand and readable, exact against PyTorch, fast on the CPU. The core
imports nothing but NumPy; plotting, progress bars, scikit-learn and ONNX are optional extras.
"""
from . import activations, callbacks, errors, initializers, layers, losses, metrics, optimizers
from . import blocks, embedding  # noqa: F401 - they register Residual and Embedding in layers.LAYER_TYPES
from .callbacks import EarlyStopping, History
from .compat import ActivationFunctions, MLPNumpy
from .errors import (DataTypeError, DivergenceError, FileFormatError, InvalidArgumentError, InvalidDataError,
                     MLPNumpyError, NotFittedError)
from .gradcheck import gradcheck
from .layers import ActivationLayer, BatchNorm1d, Dense, Dropout, Layer
from .losses import BinaryCrossEntropy, CrossEntropy, MSE
from .model import MLP, Sequential
from .optimizers import SGD
from .parameter import Parameter

__version__ = "0.1.0"


def load(path):
    """Load a model saved with ``model.save(path)`` (no code is executed; see :mod:`mlpnumpy.io`)."""
    from .io import load_model
    return load_model(path)


def export_onnx(model, path, **kwargs):
    """Export a model or estimator to ONNX (needs the ``onnx`` extra); see :mod:`mlpnumpy.onnx_export`."""
    from .onnx_export import export_onnx as _export
    return _export(model, path, **kwargs)


def to_torch(model):
    """The model as a ``torch.nn.Sequential`` (needs PyTorch); see :mod:`mlpnumpy.interop`."""
    from .interop import to_torch as _to_torch
    return _to_torch(model)


def from_torch(module, **kwargs):  # loss=, seed=
    """A ``torch.nn.Sequential`` of Linear/activation/BatchNorm1d/Dropout as an mlpnumpy model."""
    from .interop import from_torch as _from_torch
    return _from_torch(module, **kwargs)


def __getattr__(name):
    # mlpnumpy.learn (practice mode) is imported on first use, so `import mlpnumpy` stays lean
    if name == "learn":
        import importlib
        return importlib.import_module(".learn", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["export_onnx", "to_torch", "from_torch", "MLP", "MLPNumpy", "Sequential", "Dense", "Dropout", "BatchNorm1d", "ActivationLayer", "Layer",
           "Parameter", "CrossEntropy", "BinaryCrossEntropy", "MSE", "SGD", "History", "EarlyStopping",
           "gradcheck", "load", "ActivationFunctions", "MLPNumpyError", "InvalidArgumentError",
           "InvalidDataError", "DataTypeError", "NotFittedError", "FileFormatError", "DivergenceError",
           "activations", "callbacks", "errors", "initializers", "layers", "losses", "metrics", "optimizers",
           "__version__"]
