"""mlpnumpy: multi-layer perceptrons from scratch in NumPy.

Backpropagation written by hand and readable, exact against PyTorch, fast on the CPU. The core
imports nothing but NumPy; plotting, progress bars, scikit-learn and ONNX are optional extras.
"""
from . import activations, callbacks, errors, initializers, layers, losses, metrics, optimizers
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


__all__ = ["MLP", "MLPNumpy", "Sequential", "Dense", "Dropout", "BatchNorm1d", "ActivationLayer", "Layer",
           "Parameter", "CrossEntropy", "BinaryCrossEntropy", "MSE", "SGD", "History", "EarlyStopping",
           "gradcheck", "load", "ActivationFunctions", "MLPNumpyError", "InvalidArgumentError",
           "InvalidDataError", "DataTypeError", "NotFittedError", "FileFormatError", "DivergenceError",
           "activations", "callbacks", "errors", "initializers", "layers", "losses", "metrics", "optimizers",
           "__version__"]
