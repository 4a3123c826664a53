"""Exceptions raised by mlpnumpy, and the small checks that raise them.

Every error names the argument, the bad value and what would be accepted, and is raised before any
state changes. Each class subclasses the built-in a caller would expect (``ValueError``,
``TypeError``, ...), so ``except ValueError`` keeps working.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

__all__ = [
    "MLPNumpyError", "InvalidArgumentError", "InvalidDataError", "DataTypeError",
    "NotFittedError", "FileFormatError", "DivergenceError", "DatasetNotFoundError",
    "MissingDependencyError", "check_choice", "check_positive", "check_in_range", "require",
]


class MLPNumpyError(Exception):
    """Base class of every error mlpnumpy raises on purpose."""


class InvalidArgumentError(MLPNumpyError, ValueError):
    """A hyperparameter or option has a value that is not accepted."""


class InvalidDataError(MLPNumpyError, ValueError):
    """Input arrays (``X``, ``y``, weights) have a bad shape or bad values."""


class DataTypeError(MLPNumpyError, TypeError):
    """An argument has a type that cannot be used (object, complex or string arrays, ...)."""


class NotFittedError(MLPNumpyError, ValueError):
    """A method that needs a trained or built model was called too early."""


class FileFormatError(MLPNumpyError, ValueError):
    """A file (model, checkpoint, IDX, CSV) is malformed, truncated, hostile or of another version."""


class DivergenceError(MLPNumpyError, FloatingPointError):
    """Training produced a non-finite loss or gradient."""


class DatasetNotFoundError(MLPNumpyError, FileNotFoundError):
    """A data set's files are not on disk and could not be downloaded."""


class MissingDependencyError(MLPNumpyError, ImportError):
    """An optional extra (matplotlib, scikit-learn, onnx, ...) is needed but not installed."""


def _fmt(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def check_choice(arg: str, value: Any, choices: Iterable[str]) -> str:
    """Return ``value`` lower-cased if it is one of ``choices``, else raise naming the valid ones."""
    choices = list(choices)
    if isinstance(value, str) and value.lower() in choices:
        return value.lower()
    raise InvalidArgumentError(f"{arg}={_fmt(value)} is not one of: {', '.join(choices)}")


def check_positive(arg: str, value: Any, *, integer: bool = False, allow_zero: bool = False) -> Any:
    """Return ``value`` if it is a finite positive number (an ``int`` when ``integer``), else raise."""
    kind = "integer" if integer else "number"
    bound = ">= 0" if allow_zero else "> 0"
    ok_type = (isinstance(value, (int,)) and not isinstance(value, bool)) if integer else (
        isinstance(value, (int, float)) and not isinstance(value, bool))
    if not ok_type:
        try:
            import numpy as np
            if integer and isinstance(value, np.integer):
                value, ok_type = int(value), True
            elif not integer and isinstance(value, (np.integer, np.floating)):
                value, ok_type = float(value), True
        except ImportError:  # pragma: no cover
            pass
    if not ok_type:
        raise InvalidArgumentError(f"{arg}={_fmt(value)} is not a{'n' if integer else ''} {kind}; "
                                   f"expected a finite {kind} {bound}")
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        raise InvalidArgumentError(f"{arg}={_fmt(value)} is invalid; expected a finite {kind} {bound}")
    return value


def check_in_range(arg: str, value: Any, low: float, high: float, *, high_open: bool = True,
                   low_open: bool = False) -> float:
    """Return ``float(value)`` if ``low <= value < high`` (bounds as given), else raise."""
    lo_b, hi_b = ("(" if low_open else "["), (")" if high_open else "]")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"{arg}={_fmt(value)} is not a number; expected one in "
                                   f"{lo_b}{low}, {high}{hi_b}") from None
    ok = math.isfinite(v) and (v > low if low_open else v >= low) and (v < high if high_open else v <= high)
    if isinstance(value, bool) or not ok:
        raise InvalidArgumentError(f"{arg}={_fmt(value)} is out of range; expected a number in "
                                   f"{lo_b}{low}, {high}{hi_b}")
    return v


def check_number(arg: str, value: Any, low: float = 0.0, high: float | None = None, *,
                 label: str | None = None) -> float:
    """Return ``float(value)`` if it is a finite real in ``[low, high)`` (``high=None``: no upper
    bound), else raise. With ``label`` the message starts as PyTorch's (``Invalid learning rate: ...``),
    then names the argument, the value and what is accepted."""
    import numbers
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value) \
        and value >= low and (high is None or value < high)
    if not ok:
        accepted = f"a finite number >= {low:g}" if high is None else f"a number in [{low:g}, {high:g})"
        start = f"Invalid {label}: " if label else ""
        raise InvalidArgumentError(f"{start}{arg}={value!r}; expected {accepted}")
    return float(value)


def check_dtype(dtype: Any):
    """Return ``numpy.dtype(dtype)`` if it is float32 or float64 (the precisions mlpnumpy computes in),
    else raise naming it."""
    import numpy as np
    dt = np.dtype(dtype)
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise InvalidArgumentError(f"dtype={dt} is not supported; expected float32 or float64")
    return dt


def require(module: str, extra: str, purpose: str):
    """Import an optional dependency or raise :class:`MissingDependencyError` saying how to install it."""
    import importlib
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{purpose} needs the optional package '{module.split('.')[0]}', which is not installed; "
            f"install it with: pip install 'mlpnumpy[{extra}]'") from exc
