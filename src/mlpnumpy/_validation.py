"""Checks of user data, run before any state changes: each error names the argument, the bad value
or shape, and what would be accepted."""
from __future__ import annotations

import numpy as np

from .errors import DataTypeError, InvalidArgumentError, InvalidDataError

__all__ = ["check_X", "check_targets", "check_sample_weight", "check_class_labels", "check_class_weight",
           "max_classes", "DEFAULT_MAX_CLASSES", "ENV_MAX_CLASSES"]

#: Most classes a data file may define (its largest label + 1, or its distinct names): a label of
#: 10**12 must not build 10**12 class names or an output layer that wide.
DEFAULT_MAX_CLASSES = 10_000
#: Environment variable overriding :data:`DEFAULT_MAX_CLASSES`.
ENV_MAX_CLASSES = "MLPNUMPY_MAX_CLASSES"


def _as_numeric(arr, arg: str) -> np.ndarray:
    try:
        a = np.asarray(arr)
    except (TypeError, ValueError) as exc:
        raise DataTypeError(f"{arg} could not be converted to a numeric array ({exc}); "
                            "expected a 2-D array of real numbers") from None
    if a.dtype.kind == "c":
        raise DataTypeError(f"{arg} has complex dtype {a.dtype}; expected real numbers")
    if a.dtype.kind not in "biuf":
        raise DataTypeError(f"{arg} has dtype {a.dtype} ({a.dtype.kind!r} kind); expected a numeric "
                            "array (convert strings or objects to numbers first)")
    return a


def _all_finite(a: np.ndarray, block: int = 1 << 20) -> bool:
    """``np.isfinite(a).all()`` in blocks of rows, so a large data set needs no full-size mask.

    A float matrix is first checked through its row sums ``a @ ones`` (one BLAS pass, 4x faster
    than ``isfinite`` here): a NaN or an infinity always makes its row's sum NaN or infinite, so
    finite sums prove every entry finite. Non-finite sums (which a sum that overflows also gives)
    fall through to the exact check.
    """
    if a.ndim == 2 and a.dtype.kind == "f" and a.size > 4096 and a.shape[1] > 1:
        with np.errstate(over="ignore", invalid="ignore"):
            if np.isfinite(a @ np.ones(a.shape[1], a.dtype)).all():
                return True
    if a.size <= block:
        return bool(np.isfinite(a).all())
    rows = max(1, block // max(1, a.shape[1]))
    return all(np.isfinite(a[i:i + rows]).all() for i in range(0, a.shape[0], rows))


def check_X(X, dtype, n_features: int | None = None, arg: str = "X") -> np.ndarray:
    """Return ``X`` as a C-contiguous 2-D array of ``dtype`` (no copy when it already is one).

    ``dtype=None`` keeps a float input's dtype and turns integers into float32. An array of another
    Array API library (a torch tensor, a CuPy array) is checked where it lives and stays there.

    Raises
    ------
    DataTypeError
        Non-numeric, object or complex data, or a dtype the array's device cannot hold.
    InvalidDataError
        Not 2-D, empty, NaN/infinity, or a feature count other than ``n_features``.
    """
    if _foreign(X):
        return _check_X_xp(X, dtype, n_features, arg)
    a = _as_numeric(X, arg)
    if a.ndim != 2:
        raise InvalidDataError(f"{arg} has shape {a.shape} ({a.ndim}-D); expected a 2-D array "
                               "(n_samples, n_features); reshape a single sample with x.reshape(1, -1)")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise InvalidDataError(f"{arg} has shape {a.shape}; expected at least one sample and one feature")
    if n_features is not None and a.shape[1] != n_features:
        raise InvalidDataError(f"{arg} has {a.shape[1]} features; the model expects {n_features}")
    if dtype is None:
        dtype = a.dtype if a.dtype.kind == "f" else np.float32
    a = np.ascontiguousarray(a, dtype=dtype)
    if not _all_finite(a):
        bad = np.argwhere(~np.isfinite(a))[0]
        raise InvalidDataError(f"{arg} contains NaN or infinity (first at row {bad[0]}, column {bad[1]}"
                               f", or values too large for {np.dtype(dtype)}); expected finite values")
    return a


def check_targets(y, n_rows: int, loss_name: str, n_outputs: int, dtype, arg: str = "y") -> np.ndarray:
    """Validate targets for a loss: integer labels or one-hot rows for cross-entropy, 0/1 rows for
    binary cross-entropy, real rows for regression. Returns int64 labels or ``dtype`` arrays."""
    if _foreign(y):
        return _check_targets_xp(y, n_rows, loss_name, n_outputs, dtype, arg)
    a = _as_numeric(y, arg)
    if a.shape[0:1] != (n_rows,):
        raise InvalidDataError(f"{arg} has {a.shape[0] if a.ndim else 0} rows but X has {n_rows}; "
                               "expected one target per row of X")
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        raise InvalidDataError(f"{arg} contains NaN or infinity; expected finite targets")
    if loss_name == "cross_entropy":
        if a.ndim == 1:
            if a.dtype.kind == "f":
                if not np.all(a == np.round(a)):
                    bad = a[a != np.round(a)][0]
                    raise InvalidDataError(f"{arg} holds non-integral label {bad!r}; class labels must be "
                                           f"integers 0..{n_outputs - 1}")
            lab = a.astype(np.int64)
            if lab.min() < 0 or lab.max() >= n_outputs:
                bad = lab.min() if lab.min() < 0 else lab.max()
                raise InvalidDataError(f"{arg} holds label {bad}; the model has {n_outputs} outputs, so labels "
                                       f"must be integers in [0, {n_outputs - 1}]")
            return lab
        if a.ndim == 2:
            if a.shape[1] != n_outputs:
                raise InvalidDataError(f"{arg} has one-hot width {a.shape[1]}; the model has {n_outputs} outputs")
            if np.any(a < 0) or np.any(a > 1):
                r, c = np.argwhere((a < 0) | (a > 1))[0]
                raise InvalidDataError(f"{arg}[{r}, {c}]={float(a[r, c])!r} is not a probability; one-hot or probability "
                                       "rows hold values in [0, 1] (class indices go in a 1-D y)")
            sums = a.sum(axis=1, dtype=np.float64)
            off = np.abs(sums - 1) > 1e-3
            if off.any():
                r = int(np.flatnonzero(off)[0])
                raise InvalidDataError(f"{arg} row {r} sums to {sums[r]:.6g}; one-hot or probability rows sum to 1")
            return np.ascontiguousarray(a, dtype=dtype)
        raise InvalidDataError(f"{arg} has shape {a.shape}; expected labels (n,) or one-hot rows (n, {n_outputs})")
    # binary cross-entropy and regression: rows of n_outputs values
    if a.ndim == 1 and n_outputs == 1:
        a = a.reshape(-1, 1)
    if a.ndim != 2 or a.shape[1] != n_outputs:
        raise InvalidDataError(f"{arg} has shape {a.shape}; the model has {n_outputs} outputs, so expected "
                               f"({n_rows}, {n_outputs})")
    a = np.ascontiguousarray(a, dtype=dtype)
    if loss_name == "binary_cross_entropy" and (np.any(a < 0) or np.any(a > 1)):
        raise InvalidDataError(f"{arg} has values outside [0, 1]; binary cross-entropy expects 0/1 targets")
    return a


def check_sample_weight(sample_weight, n_rows: int, dtype) -> np.ndarray | None:
    if sample_weight is None:
        return None
    if _foreign(sample_weight):
        return _check_sample_weight_xp(sample_weight, n_rows, dtype)
    w = _as_numeric(sample_weight, "sample_weight").astype(dtype, copy=False).reshape(-1)
    if w.shape[0] != n_rows:
        raise InvalidDataError(f"sample_weight has {w.shape[0]} entries; expected one per row of X ({n_rows})")
    if not np.isfinite(w).all() or np.any(w < 0):
        raise InvalidDataError("sample_weight must be finite and >= 0")
    if not np.any(w > 0):
        raise InvalidDataError("sample_weight is all zero; at least one weight must be > 0")
    return w


def max_classes(value: int | None = None) -> int:
    """The cap on the number of classes: ``value``, else ``$MLPNUMPY_MAX_CLASSES``, else 10,000."""
    import os
    if value is None:
        env = os.environ.get(ENV_MAX_CLASSES)
        if not env:
            return DEFAULT_MAX_CLASSES
        try:
            value = int(env)
        except ValueError:
            raise InvalidArgumentError(f"${ENV_MAX_CLASSES}={env!r} is not an integer; expected a number of "
                                       "classes >= 2") from None
        arg = f"${ENV_MAX_CLASSES}"
    else:
        arg = "max_classes"
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 2:
        raise InvalidArgumentError(f"{arg}={value!r} is invalid; expected an integer >= 2")
    return int(value)


def check_class_labels(y: np.ndarray, where: str, cap: int | None = None) -> None:
    """Class labels of a data file: whole numbers 0..K-1 or text names, with K within the class cap.

    Raises naming the first offending label (its true value, never one wrapped by a cast), before
    anything the size of K is built.
    """
    cap = max_classes(cap)
    a = np.asarray(y)
    if a.size == 0:
        return
    if a.dtype.kind == "U":
        k = len(np.unique(a))
        if k > cap:
            raise InvalidDataError(f"{where}: the labels name {k:,} different classes, more than the cap of {cap:,}; "
                                   f"expected at most {cap:,} (raise it with ${ENV_MAX_CLASSES})")
        return
    if a.dtype.kind not in "biuf":
        return
    if a.dtype.kind == "f":
        bad = ~np.isfinite(a) | (a != np.round(a))
        if bad.any():
            v = a[np.flatnonzero(bad)[0]]
            raise InvalidDataError(f"{where}: label {float(v)!r} is not a whole number; class labels must be "
                                   f"integers 0..K-1 (K <= {cap:,}) or class names")
    lo = a.min()
    if lo < 0:
        raise InvalidDataError(f"{where}: label {_exact(lo)} is negative; class labels must be integers 0..K-1 "
                               f"(K <= {cap:,}) or class names")
    hi = a.max()
    if hi >= cap:
        raise InvalidDataError(f"{where}: label {_exact(hi)} is out of range; class labels must be integers "
                               f"0..{cap - 1:,} (at most {cap:,} classes; raise the cap with ${ENV_MAX_CLASSES} if the "
                               "data really has more)")


def _exact(v) -> str:
    """A label as written: 100000000000000000000 for 1e20, 18446744073709551615 for 2**64 - 1."""
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    return str(int(v)) if float(v).is_integer() else repr(float(v))


# ---------------------------------------------------------------------- any Array API library
# The same checks for arrays of other libraries (torch, CuPy, array_api_strict), done where the array
# lives: a check costs one number brought back to the host, never the array.

def _foreign(a) -> bool:
    from ._array_api import is_array
    return not isinstance(a, np.ndarray) and is_array(a)


def _xp_kind(xp, a, arg: str) -> None:
    if not xp.isdtype(a.dtype, ("real floating", "integral", "bool")):
        raise DataTypeError(f"{arg} has dtype {a.dtype}; expected a numeric array of real numbers")


def _xp_cast(xp, a, dtype, arg: str):
    from ._array_api import check_float_dtype, device_of, xp_dtype
    check_float_dtype(xp, device_of(a), dtype, arg=f"{arg}'s dtype (the model's)")
    want = xp_dtype(xp, dtype)
    return a if a.dtype == want else xp.astype(a, want)


def _check_X_xp(X, dtype, n_features, arg):
    from ._array_api import dtype_name, namespace
    xp = namespace(X)
    _xp_kind(xp, X, arg)
    if X.ndim != 2:
        raise InvalidDataError(f"{arg} has shape {tuple(X.shape)} ({X.ndim}-D); expected a 2-D array "
                               "(n_samples, n_features); reshape a single sample with x.reshape(1, -1)")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise InvalidDataError(f"{arg} has shape {tuple(X.shape)}; expected at least one sample and one feature")
    if n_features is not None and X.shape[1] != n_features:
        raise InvalidDataError(f"{arg} has {X.shape[1]} features; the model expects {n_features}")
    if dtype is None:
        dtype = dtype_name(X.dtype) if xp.isdtype(X.dtype, "real floating") else "float32"
    a = _xp_cast(xp, X, dtype, arg)
    if not bool(xp.all(xp.isfinite(a))):
        raise InvalidDataError(f"{arg} contains NaN or infinity (or values too large for {dtype_name(dtype)}); "
                               "expected finite values")
    return a


def _check_targets_xp(y, n_rows, loss_name, n_outputs, dtype, arg):
    from ._array_api import namespace
    xp = namespace(y)
    _xp_kind(xp, y, arg)
    if y.ndim == 0 or y.shape[0] != n_rows:
        raise InvalidDataError(f"{arg} has {y.shape[0] if y.ndim else 0} rows but X has {n_rows}; "
                               "expected one target per row of X")
    floating = xp.isdtype(y.dtype, "real floating")
    if floating and not bool(xp.all(xp.isfinite(y))):
        raise InvalidDataError(f"{arg} contains NaN or infinity; expected finite targets")
    if loss_name == "cross_entropy":
        if y.ndim == 1:
            if floating and not bool(xp.all(y == xp.round(y))):
                raise InvalidDataError(f"{arg} holds non-integral labels; class labels must be integers "
                                       f"0..{n_outputs - 1}")
            lab = xp.astype(y, xp.int64)
            lo, hi = int(xp.min(lab)), int(xp.max(lab))
            if lo < 0 or hi >= n_outputs:
                raise InvalidDataError(f"{arg} holds label {lo if lo < 0 else hi}; the model has {n_outputs} "
                                       f"outputs, so labels must be integers in [0, {n_outputs - 1}]")
            return lab
        if y.ndim == 2:
            if y.shape[1] != n_outputs:
                raise InvalidDataError(f"{arg} has one-hot width {y.shape[1]}; the model has {n_outputs} outputs")
            if bool(xp.any(y < 0)):
                raise InvalidDataError(f"{arg} has negative target probabilities; expected rows in [0, 1]")
            return _xp_cast(xp, y, dtype, arg)
        raise InvalidDataError(f"{arg} has shape {tuple(y.shape)}; expected labels (n,) or one-hot rows "
                               f"(n, {n_outputs})")
    if y.ndim == 1 and n_outputs == 1:
        y = xp.reshape(y, (-1, 1))
    if y.ndim != 2 or y.shape[1] != n_outputs:
        raise InvalidDataError(f"{arg} has shape {tuple(y.shape)}; the model has {n_outputs} outputs, so expected "
                               f"({n_rows}, {n_outputs})")
    a = _xp_cast(xp, y, dtype, arg)
    if loss_name == "binary_cross_entropy" and bool(xp.any((a < 0) | (a > 1))):
        raise InvalidDataError(f"{arg} has values outside [0, 1]; binary cross-entropy expects 0/1 targets")
    return a


def _check_sample_weight_xp(sample_weight, n_rows, dtype):
    from ._array_api import namespace
    xp = namespace(sample_weight)
    _xp_kind(xp, sample_weight, "sample_weight")
    w = xp.reshape(_xp_cast(xp, sample_weight, dtype, "sample_weight"), (-1,))
    if w.shape[0] != n_rows:
        raise InvalidDataError(f"sample_weight has {w.shape[0]} entries; expected one per row of X ({n_rows})")
    if not bool(xp.all(xp.isfinite(w)) & xp.all(w >= 0)):
        raise InvalidDataError("sample_weight must be finite and >= 0")
    if not bool(xp.any(w > 0)):
        raise InvalidDataError("sample_weight is all zero; at least one weight must be > 0")
    return w


def check_class_weight(class_weight) -> np.ndarray | None:
    """``class_weight`` as a float64 vector: one finite weight >= 0 per class, at least one > 0.

    A scalar, NaN, a negative weight or all zeros (a loss of 0/0) is refused naming the value.
    """
    if class_weight is None:
        return None
    try:
        cw = np.asarray(class_weight, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"class_weight={class_weight!r} is not a list of numbers; expected one "
                                   "weight >= 0 per class") from None
    if cw.ndim != 1 or cw.size == 0:
        raise InvalidArgumentError(f"class_weight={class_weight!r} has shape {cw.shape}; expected a 1-D list of "
                                   "one weight >= 0 per class")
    bad = ~np.isfinite(cw) | (cw < 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InvalidArgumentError(f"class_weight[{i}]={float(cw[i])!r} is invalid; expected finite weights >= 0")
    if not (cw > 0).any():
        raise InvalidArgumentError("class_weight is all zero; expected at least one weight > 0 (a loss weighted by "
                                   "zeros everywhere is 0/0)")
    return cw
