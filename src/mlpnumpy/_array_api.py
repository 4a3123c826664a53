"""Array namespaces and devices: what lets the reference path run on any Python Array API library.

The reference path (layers, activations, losses, optimizers) asks :func:`namespace` for the module of
its arrays (through ``array-api-compat``, the package scikit-learn and SciPy use) and calls only the
standard's functions on it, so the same code runs on NumPy, CuPy, PyTorch tensors (CPU or CUDA) and
``array_api_strict``. This module also moves arrays between the host and a device, names where an
array lives in error messages, and draws dropout masks on the device reproducibly.
"""
from __future__ import annotations

import math

import numpy as np

from .errors import DataTypeError, InvalidArgumentError, InvalidDataError

__all__ = ["namespace", "is_numpy", "copy_array", "is_array", "device_of", "to_host", "to_device", "xp_dtype",
           "dtype_name", "describe", "Placement", "check_float_dtype", "uniform"]


def _compat():
    import array_api_compat
    return array_api_compat


def is_numpy(x) -> bool:
    """True for NumPy arrays (and NumPy scalars): the fast path's arrays."""
    return isinstance(x, (np.ndarray, np.generic))


def is_array(x) -> bool:
    """True for an array of any library the Array API standard covers (NumPy included)."""
    if isinstance(x, np.ndarray):
        return True
    if type(x).__module__.startswith(("builtins", "numpy")):
        return False
    return _compat().is_array_api_obj(x)


def namespace(*arrays):
    """The Array API namespace of ``arrays`` (``None`` entries are skipped): ``array_api_compat``'s
    wrapper for NumPy, CuPy and PyTorch, the library itself for ``array_api_strict``.

    Raises
    ------
    InvalidDataError
        When the arrays belong to different libraries (the message names them).
    """
    arrays = [a for a in arrays if a is not None]
    try:
        return _compat().array_namespace(*arrays)
    except TypeError:
        kinds = sorted({_library(a) for a in arrays})
        raise InvalidDataError(f"arrays of different libraries are mixed ({' and '.join(kinds)}); expected "
                               "one library: move the data or the model (model.to(X)) so they match") from None


def _library(x) -> str:
    c = _compat()
    if c.is_numpy_array(x):
        return "numpy"
    if c.is_torch_array(x):
        return "torch"
    if c.is_cupy_array(x):
        return "cupy"
    mod = type(x).__module__.split(".")[0]
    return mod


def device_of(x):
    """The device ``x`` lives on (``"cpu"`` for NumPy)."""
    return _compat().device(x)


def describe(xp_or_array, device=None) -> str:
    """``"torch on cuda:0"``, ``"numpy on cpu"``: a place named for error messages."""
    if is_array(xp_or_array):
        lib, device = _library(xp_or_array), device_of(xp_or_array)
    else:
        lib = _library_of_namespace(xp_or_array)
    return f"{lib} on {device}" if device is not None else lib


def _library_of_namespace(xp) -> str:
    name = getattr(xp, "__name__", str(xp))
    for lib in ("numpy", "torch", "cupy", "array_api_strict", "jax", "dask"):
        if lib in name:
            return lib
    return name


def to_host(x) -> np.ndarray:
    """``x`` as a NumPy array on the host (NumPy arrays are returned as they are)."""
    if isinstance(x, np.ndarray) or x is None:
        return x
    c = _compat()
    if c.is_torch_array(x):
        return x.detach().cpu().numpy()
    if c.is_cupy_array(x):
        return x.get()
    if c.is_array_api_obj(x):
        if _library(x) == "array_api_strict":
            import array_api_strict as xs
            x = x.to_device(xs.Device())
        return np.asarray(x)
    return np.asarray(x)


def copy_array(a):
    """A copy of ``a`` in its own library and on its own device."""
    if isinstance(a, np.ndarray):
        return a.copy()
    return namespace(a).asarray(a, copy=True)


def to_device(a, xp, device=None, dtype=None):
    """A copy of ``a`` (any array) in namespace ``xp`` on ``device``, optionally cast to ``dtype``."""
    if a is None:
        return None
    if not isinstance(a, np.ndarray) and namespace(a) is xp and device_of(a) == device:
        out = xp.asarray(a, copy=True)
    else:
        out = xp.asarray(to_host(a), device=device, copy=True)
    if dtype is not None and out.dtype != dtype:
        out = xp.astype(out, dtype)
    return out


def dtype_name(dt) -> str:
    """``"float32"`` for any library's float32 dtype."""
    if isinstance(dt, np.dtype) or isinstance(dt, type):
        return np.dtype(dt).name
    name = str(dt).split(".")[-1]
    return name.split("'")[0]


def xp_dtype(xp, dtype):
    """The dtype of ``xp`` named like ``dtype`` (a NumPy dtype, a name or another library's dtype)."""
    return getattr(xp, dtype_name(dtype))


def float_dtypes(xp, device) -> list[str]:
    """The real floating dtypes ``xp`` supports on ``device``, by name."""
    try:
        info = xp.__array_namespace_info__()
        return sorted(info.dtypes(device=device, kind="real floating"))
    except (AttributeError, TypeError, ValueError):
        return ["float32", "float64"]


def check_float_dtype(xp, device, dtype, arg: str = "dtype", fix: str | None = None) -> None:
    """Raise :class:`DataTypeError` when ``xp`` cannot hold ``dtype`` on ``device``, naming the dtypes
    that work there."""
    name = dtype_name(dtype)
    ok = float_dtypes(xp, device)
    if name not in ok:
        fix = fix or f"build the model with dtype={ok[0]!r} (MLP(..., dtype={ok[0]!r}))"
        raise DataTypeError(f"{arg}={name} is not supported by {describe(xp, device)}; it supports "
                            f"{', '.join(ok)}: {fix}")


class Placement:
    """Where a model's arrays live: a namespace ``xp`` and a ``device`` (``None``: NumPy on the CPU)."""

    __slots__ = ("xp", "device")

    def __init__(self, xp=None, device=None):
        self.xp, self.device = xp, device

    @property
    def is_numpy(self) -> bool:
        return self.xp is None

    # a namespace is a module: copies share it, pickles name it
    def __deepcopy__(self, memo) -> Placement:
        return self

    def __getstate__(self):
        return {"xp": None if self.xp is None else self.xp.__name__, "device": self.device}

    def __setstate__(self, state):
        import importlib
        self.xp = None if state["xp"] is None else importlib.import_module(state["xp"])
        self.device = state["device"]

    def __repr__(self) -> str:
        return "numpy on cpu" if self.xp is None else describe(self.xp, self.device)

    @classmethod
    def of(cls, target, device=None) -> Placement:
        """The placement a ``model.to(target, device)`` asks for: an array (its namespace and device),
        a namespace module, or a library name (``"numpy"``, ``"torch"``, ``"cupy"``, ``"array_api_strict"``)."""
        if is_array(target):
            if isinstance(target, np.ndarray):
                return cls()
            if device is None:
                return cls(namespace(target), device_of(target))
            target = namespace(target)
        if isinstance(target, str):
            import importlib
            if target == "numpy":
                return cls()
            try:
                mod = importlib.import_module(target)
            except ImportError:
                raise InvalidArgumentError(f"target={target!r} is not an importable array library; expected "
                                           "an array, a namespace module, or 'numpy', 'torch', 'cupy', "
                                           "'array_api_strict'") from None
            target = mod
        if target is np or getattr(target, "__name__", "") in ("numpy", "array_api_compat.numpy"):
            return cls()
        if not hasattr(target, "asarray"):
            raise InvalidArgumentError(f"target={target!r} is neither an array nor an array namespace; expected "
                                       "e.g. a torch tensor, the torch module, or 'cupy'")
        # the library's own spelling of the device ("cuda" -> device(type='cuda', index=0)), which is what
        # its arrays report and what they are compared with
        probe = target.asarray([0.0], device=device) if device is not None else target.asarray([0.0])
        return cls(namespace(probe), device_of(probe))

    def same_as(self, x) -> bool:
        if isinstance(x, np.ndarray):
            return self.xp is None
        if self.xp is None:
            return False
        return namespace(x) is self.xp and device_of(x) == self.device

    def check(self, x, arg: str = "X") -> None:
        """Raise naming both places when ``x`` lives elsewhere than the model."""
        if x is None or self.same_as(x):
            return
        if not is_array(x):
            if self.xp is None:  # lists and other array-likes become NumPy arrays
                return
            raise InvalidDataError(f"{arg} is a {type(x).__name__}, but the model lives on {self!r}; expected "
                                   f"an array there (or move the model back with model.to('numpy'))")
        raise InvalidDataError(f"{arg} lives on {describe(x)} but the model lives on {self!r}; expected "
                               f"arrays of one library on one device: move the model with model.to({arg}) "
                               f"or the data to {self!r}")

    def move(self, a, dtype=None):
        """``a`` brought here (a copy), cast to ``dtype`` when given."""
        if a is None:
            return None
        if self.xp is None:
            h = np.array(to_host(a), copy=True)
            return h if dtype is None else h.astype(dtype, copy=False)
        return to_device(a, self.xp, self.device, None if dtype is None else xp_dtype(self.xp, dtype))


def host_model(model):
    """``model`` itself when it lives on NumPy, else a copy of it moved to the host (NumPy): what model
    files, ONNX export and ``to_torch`` read."""
    if model.placement.is_numpy:
        return model
    import copy
    return copy.deepcopy(model).to("numpy")


# ---------------------------------------------------------------------- randomness on the device
_M32 = 0xFFFFFFFF


def _mul32(x, m: int):
    """``(x * m) mod 2**32`` in int64 arithmetic that never overflows (``x < 2**32``)."""
    return (x * (m & 0xFFFF) + (((x * (m >> 16)) & 0xFFFF) << 16)) & _M32


def uniform(xp, shape: tuple[int, ...], seed: int, device=None, dtype=None):
    """Uniform numbers in [0, 1) of ``shape``, computed on ``device`` from ``seed`` by a counter-based
    hash (Wellons' ``lowbias32`` of each element's index): exact integer arithmetic, so the same seed gives
    the same numbers on every library and device, and nothing is copied from the host but the seed.

    The model's NumPy generator draws ``seed``, so dropout masks stay reproducible from the model's seed.
    """
    n = math.prod(shape)
    h = xp.arange(n, dtype=xp.int64, device=device)
    h = (h + (seed & _M32)) & _M32
    h = _mul32(h ^ (seed >> 32 & _M32), 0x9E3779B1)
    h = h ^ (h >> 16)
    h = _mul32(h, 0x7FEB352D)
    h = h ^ (h >> 15)
    h = _mul32(h, 0x846CA68B)
    h = h ^ (h >> 16)
    u = xp.astype(h >> 8, xp.float32 if dtype is None else dtype) * (2.0 ** -24)
    return xp.reshape(u, shape)
