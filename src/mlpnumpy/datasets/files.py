"""Load a user's own data from ``.npy``, ``.npz`` or numeric ``.csv`` files as ``(X, y)``.

Never unpickles (``allow_pickle=False``): a data file cannot run code. Malformed files raise
:class:`~mlpnumpy.errors.FileFormatError` saying where the problem is.
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..errors import DataTypeError, FileFormatError, InvalidArgumentError

__all__ = ["load_array_file", "read_csv"]

_FORMATS = (".npy", ".npz", ".csv")


def _labels(y: np.ndarray) -> np.ndarray:
    # Integral labels become int64 class indices; anything else stays float (regression targets).
    # Values int64 cannot hold exactly (1e20, 2**64 - 1) are kept as they are, never wrapped.
    if y.dtype.kind == "u" and y.size and int(y.max()) > np.iinfo(np.int64).max:
        return y
    if y.dtype.kind in "iub":
        return y.astype(np.int64)
    if y.dtype.kind == "f" and np.all(np.isfinite(y)) and np.all(y == np.round(y)) and \
            (not y.size or float(np.abs(y).max()) < 2.0 ** 53):
        return y.astype(np.int64)
    return y


def _split_column(table: np.ndarray, label_column: int | None, where: str
                  ) -> tuple[np.ndarray, np.ndarray | None]:
    if label_column is None:
        return table, None
    if table.ndim != 2:
        raise FileFormatError(f"{where}: expected a 2-D table (rows, columns) to take labels from "
                              f"column {label_column}, got shape {table.shape}; pass "
                              "label_column=None for features only")
    n = table.shape[1]
    if isinstance(label_column, bool) or not isinstance(label_column, (int, np.integer)):
        raise InvalidArgumentError(f"label_column={label_column!r} is not a column index; expected an integer "
                                   "(negative counts from the end) or None")
    if not -n <= label_column < n:
        raise InvalidArgumentError(f"label_column={label_column} is out of range for {where} with "
                                   f"{n} columns; expected -{n}..{n - 1}, a column name, or None")
    keep = np.ones(n, dtype=bool)
    keep[label_column] = False
    return table[:, keep], table[:, label_column]


def read_csv(path: str | os.PathLike, *, delimiter: str = ",", header: bool | None = None
             ) -> tuple[np.ndarray, list[str] | None]:
    """Read a numeric CSV file into a float64 table.

    Parameters
    ----------
    path : str or path-like
    delimiter : str
        Field separator (one character).
    header : bool, optional
        Whether the first row holds column names. Default: only when none of its cells is a
        number (a first row with one odd cell is data, and that cell is reported, never dropped).

    Returns
    -------
    table : ndarray of shape (n_rows, n_columns), float64
    columns : list of str or None
        The header's names.

    Raises
    ------
    FileFormatError
        Empty file, rows of different lengths, or a cell that is not a finite number (the
        message gives its line and column).
    """
    from ._csvstream import read_table
    X, _, columns = read_table(path, delimiter=delimiter, header=header, dtype=np.float64)
    return X, columns


def load_array_file(path: str | os.PathLike, *, label_column: int | str | None = -1,
                    x_key: str | None = None, y_key: str | None = None, delimiter: str = ",",
                    header: bool | None = None, dtype: Any = np.float32, max_bytes: int | None = None
                    ) -> tuple[np.ndarray, np.ndarray | None]:
    """Load features and labels from a ``.npy``, ``.npz`` or ``.csv`` file.

    Parameters
    ----------
    path : str or path-like
        The format is chosen by the extension.
    label_column : int, str or None
        For ``.npy`` and ``.csv``: the column holding the labels (index, negative allowed, or
        a header name for CSV); default the last. ``None``: no labels, ``y`` is None. CSV
        labels may be text ("cat", "dog"): ``y`` then holds those strings.
    x_key, y_key : str, optional
        For ``.npz``: array names. Default: ``X``/``y``, else ``x``/``y``; with no label array
        ``y`` is None.
    delimiter, header
        For ``.csv``: see :func:`read_csv`; a header is detected only when none of the first
        row's cells is a number. The file is read in streaming chunks into one preallocated
        array, whose size is checked against ``max_bytes`` first.
    dtype : dtype
        Floating dtype of ``X`` (float32 default).
    max_bytes : int, optional
        Largest array accepted, in bytes once converted to ``dtype``; checked from the file's
        headers before anything is decompressed or allocated. Default
        ``$MLPNUMPY_MAX_DATA_BYTES``, else 4 GiB (at most half the memory); see
        :func:`mlpnumpy.io._npyio.max_data_bytes`.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features), ``dtype``
        (``.npz`` and ``.npy`` features of higher rank, e.g. images, keep their shape.)
    y : ndarray of shape (n_samples,) or None
        int64 when every label is a whole number, float for other numbers, str (class names)
        when a CSV label or a ``.npz`` label array holds text.

    Raises
    ------
    FileFormatError
        Unknown extension, unreadable or malformed file, object arrays, mismatched lengths.
    """
    name = os.fspath(path)
    ext = os.path.splitext(name)[1].lower()
    if ext not in _FORMATS:
        raise FileFormatError(f"{name}: extension {ext or '(none)'!r} is not supported; expected "
                              f"one of: {', '.join(_FORMATS)}")
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise InvalidArgumentError(f"dtype={dtype} is not a floating dtype; expected float32 or float64")
    if ext == ".csv":
        from ._csvstream import read_table  # streamed into one preallocated array
        X, y, _ = read_table(path, delimiter=delimiter, header=header, label_column=label_column, dtype=dtype,
                             max_bytes=max_bytes)
    elif ext == ".npy":
        table = _np_load(path, name, max_bytes, dtype.itemsize, ext)
        if isinstance(label_column, str):
            raise InvalidArgumentError(f"label_column={label_column!r}: a .npy file has no column "
                                       "names; expected an integer index or None")
        X, y = _split_column(table, label_column, name)
    else:
        X, y = _load_npz(path, name, x_key, y_key, max_bytes, dtype.itemsize)
    if X.dtype.kind not in "biuf":
        raise DataTypeError(f"{name}: features have dtype {X.dtype}; expected numbers")
    if X.ndim == 0:
        raise FileFormatError(f"{name}: the features are a single number (a 0-d array); expected rows of "
                              "features, shape (n_samples, n_features)")
    if X.shape[0] == 0:
        raise FileFormatError(f"{name}: has no data rows (features of shape {X.shape}); expected at least one row")
    if X.ndim == 2 and X.shape[1] == 0:
        raise FileFormatError(f"{name}: has no feature columns{' besides the label column' if y is not None else ''}"
                              f"; expected at least one feature per row")
    if y is not None:
        if y.ndim != 1 or len(y) != len(X):
            raise FileFormatError(f"{name}: labels of shape {y.shape} do not match {len(X)} rows of "
                                  "features; expected shape (n_samples,)")
        if y.dtype.kind not in "biufU":
            raise DataTypeError(f"{name}: labels have dtype {y.dtype}; expected numbers or text")
        y = _labels(y)
    return X.astype(dtype, copy=False), y


def _np_load(path: str | os.PathLike, name: str, max_bytes: int | None = None, itemsize: int = 0,
             ext: str = ".npz") -> Any:
    """A .npy array or a .npz archive's arrays (as a dict), read by :mod:`mlpnumpy.io._npyio` within
    ``max_bytes`` (counted as ``itemsize``-byte items)."""
    from ..io._npyio import load_npy, load_npz
    with open(path, "rb") as f:
        is_zip = f.read(4) == b"PK\x03\x04"
    if is_zip and ext == ".npy":
        raise FileFormatError(f"{name}: is a zip archive (an .npz), not a .npy file; rename it to .npz")
    return load_npz(path, max_bytes=max_bytes, out_itemsize=itemsize) if is_zip else \
        load_npy(path, max_bytes=max_bytes, out_itemsize=itemsize)


def _load_npz(path: str | os.PathLike, name: str, x_key: str | None, y_key: str | None,
              max_bytes: int | None = None, itemsize: int = 0) -> tuple[np.ndarray, np.ndarray | None]:
    archive = _np_load(path, name, max_bytes, itemsize)
    if not isinstance(archive, dict):
        raise FileFormatError(f"{name}: has a .npz extension but holds a single array")
    keys = list(archive)
    held = ", ".join(keys) or "nothing"
    if x_key is None:
        x_key = next((k for k in ("X", "x") if k in keys), None)
        if x_key is None:
            raise FileFormatError(f"{name}: no 'X' or 'x' array; it holds: {held}; pass x_key=")
    elif x_key not in keys:
        raise InvalidArgumentError(f"x_key={x_key!r} is not in {name}; expected one of: {held}")
    if y_key is None:
        y_key = next((k for k in ("y", "Y") if k in keys), None)
    elif y_key not in keys:
        raise InvalidArgumentError(f"y_key={y_key!r} is not in {name}; expected one of: {held}")
    X = archive[x_key]
    y = archive[y_key] if y_key is not None else None
    return X, y
