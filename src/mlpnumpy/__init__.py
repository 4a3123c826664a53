"""mlpnumpy: multi-layer perceptrons from scratch in NumPy.

Backpropagation written by hand and readable, exact against PyTorch, fast on the CPU. The core
imports nothing but NumPy; plotting, progress bars, scikit-learn and ONNX are optional extras.

The subpackages follow the data's flow: ``datasets`` (loaders, files, preprocessing, splits) ->
``nn`` (parameters, activations, layers, losses, the model, gradient checks) -> ``optim``
(optimizers, schedules) -> ``training`` (fit, the driver, callbacks) -> ``io`` (model files,
checkpoints), ``plots``, ``integrations`` (scikit-learn, ONNX, PyTorch) and ``cli`` (the command
and its run folders). ``_kernels`` is the fast CPU path; ``learn``, ``sweep`` and ``experiments``
are the practice mode, the Dask/Optuna sweeps and the studies.
"""
import importlib as _importlib
import importlib.abc as _abc
import importlib.util as _util
import sys as _sys

from . import errors
from .compat import ActivationFunctions, MLPNumpy
from .errors import (DataTypeError, DivergenceError, FileFormatError, InvalidArgumentError, InvalidDataError,
                     MLPNumpyError, NotFittedError)
from .nn import activations, initializers, layers, losses, metrics
from .nn import blocks, embedding  # noqa: F401 - they register Residual and Embedding in layers.LAYER_TYPES
from .nn.gradcheck import gradcheck
from .nn.layers import ActivationLayer, BatchNorm1d, Dense, Dropout, Layer
from .nn.losses import BinaryCrossEntropy, CrossEntropy, MSE
from .nn.model import MLP, Sequential
from .nn.parameter import Parameter
from .optim import optimizers
from .optim.optimizers import SGD
from .training import callbacks
from .training.callbacks import EarlyStopping, History

# The flat module names of mlpnumpy 0.1 (and the short public ``mlpnumpy.sklearn``) import the
# modules where they live now: ``import mlpnumpy.nn.layers`` is ``mlpnumpy.nn.layers``, the same module
# object, so old scripts, pickles and monkeypatches keep working. New code uses the new paths.
MOVED_MODULES = {
    "parameter": "nn.parameter", "initializers": "nn.initializers", "activations": "nn.activations",
    "layers": "nn.layers", "blocks": "nn.blocks", "embedding": "nn.embedding", "losses": "nn.losses",
    "regularizers": "nn.regularizers", "model": "nn.model", "gradcheck": "nn.gradcheck",
    "metrics": "nn.metrics", "_modellock": "nn._modellock",
    "optimizers": "optim.optimizers", "schedules": "optim.schedules",
    "driver": "training.driver", "callbacks": "training.callbacks", "internals": "training.internals",
    "augment": "training.augment", "preprocessing": "datasets.preprocessing", "splits": "datasets.splits",
    "_filechecks": "io._filechecks", "_atomic": "io._atomic", "_npyio": "io._npyio",
    "sklearn": "integrations.sklearn", "_sklearn_solvers": "integrations._sklearn_solvers",
    "onnx_export": "integrations.onnx_export", "interop": "integrations.interop", "boundary": "plots.boundary",
    "run": "cli.run", "config": "cli.config", "_runfolder": "cli._runfolder", "demo": "cli.demo",
}


class _MovedModules(_abc.MetaPathFinder, _abc.Loader):
    """Finds ``mlpnumpy.<old name>`` and answers with the module at its new path."""

    def find_spec(self, fullname, path=None, target=None):
        prefix, _, name = fullname.rpartition(".")
        if prefix == __name__ and name in MOVED_MODULES:
            return _util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        return _importlib.import_module(f"{__name__}.{MOVED_MODULES[spec.name.rpartition('.')[2]]}")

    def exec_module(self, module):  # the module ran when its new path was imported
        pass


if not any(isinstance(f, _MovedModules) for f in _sys.meta_path):
    _sys.meta_path.append(_MovedModules())
# The moved modules already loaded are entered now: importing one later then leaves the package's
# attribute of that name alone (``mlpnumpy.gradcheck`` stays the function).
for _old, _new in MOVED_MODULES.items():
    if f"{__name__}.{_new}" in _sys.modules:
        _sys.modules.setdefault(f"{__name__}.{_old}", _sys.modules[f"{__name__}.{_new}"])
del _old, _new

__version__ = "0.1.0"


def load(path):
    """Load a model saved with ``model.save(path)`` (no code is executed; see :mod:`mlpnumpy.io`)."""
    from .io.model_files import load_model
    return load_model(path)


def export_onnx(model, path, **kwargs):
    """Export a model or estimator to ONNX (needs the ``onnx`` extra); see :mod:`mlpnumpy.integrations.onnx_export`."""
    from .integrations.onnx_export import export_onnx as _export
    return _export(model, path, **kwargs)


def to_torch(model):
    """The model as a ``torch.nn.Sequential`` (needs PyTorch); see :mod:`mlpnumpy.integrations.interop`."""
    from .integrations.interop import to_torch as _to_torch
    return _to_torch(model)


def from_torch(module, **kwargs):  # loss=, seed=
    """A ``torch.nn.Sequential`` of Linear/activation/BatchNorm1d/Dropout as an mlpnumpy model."""
    from .integrations.interop import from_torch as _from_torch
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
