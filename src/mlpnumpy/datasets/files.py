"""Load a user's own data from ``.npy``, ``.npz`` or numeric ``.csv`` files as ``(X, y)``.

Never unpickles (``allow_pickle=False``): a data file cannot run code. Malformed files raise
:class:`~mlpnumpy.errors.FileFormatError` saying where the problem is.
"""
from __future__ import annotations

import csv
import os
from typing import Any

import numpy as np

from ..errors import DataTypeError, FileFormatError, InvalidArgumentError

__all__ = ["load_array_file", "read_csv"]

_FORMATS = (".npy", ".npz", ".csv")


def _labels(y: np.ndarray) -> np.ndarray:
    # Integral labels become int64 class indices; anything else stays float (regression targets).
    if y.dtype.kind in "iub":
        return y.astype(np.int64)
    if y.dtype.kind == "f" and np.all(np.isfinite(y)) and np.all(y == np.round(y)):
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
    if not -n <= label_column < n:
        raise InvalidArgumentError(f"label_column={label_column} is out of range for {where} with "
                                   f"{n} columns; expected -{n}..{n - 1}, a column name, or None")
    keep = np.ones(n, dtype=bool)
    keep[label_column] = False
    return table[:, keep], table[:, label_column]


def _csv_rows(path: str | os.PathLike, delimiter: str) -> list[tuple[int, list[str]]]:
    """Non-blank rows of a CSV file as ``(line number, cells)``, all of the first row's width."""
    name = os.fspath(path)
    rows: list[tuple[int, list[str]]] = []
    try:
        fh = open(path, newline="", encoding="utf-8-sig")  # -sig: tolerate a BOM from spreadsheets
    except IsADirectoryError:
        raise FileFormatError(f"{name}: is a folder, not a CSV file") from None
    with fh:
        try:
            reader = csv.reader(fh, delimiter=delimiter)
            for cells in reader:
                lineno = reader.line_num  # physical line, right even after quoted newlines
                if not cells or all(not c.strip() for c in cells):
                    continue  # blank lines carry no data
                if rows and len(cells) != len(rows[0][1]):
                    raise FileFormatError(f"{name}: line {lineno} has {len(cells)} fields, expected "
                                          f"{len(rows[0][1])} like the first row")
                rows.append((lineno, cells))
        except (UnicodeDecodeError, csv.Error) as exc:
            raise FileFormatError(f"{name}: not a readable UTF-8 CSV file ({exc})") from None
    return rows


def _numbers(rows: list[tuple[int, list[str]]], cols: list[int], name: str, columns: list[str] | None
             ) -> np.ndarray:
    """Cells ``cols`` of every row as a float64 table; a cell that is not a finite number raises."""
    out = np.empty((len(rows), len(cols)), dtype=np.float64)
    for i, (lineno, cells) in enumerate(rows):
        for j, col in enumerate(cols):
            try:
                value = float(cells[col])
            except ValueError:
                value = float("nan")
            if not np.isfinite(value):
                label = f" ({columns[col]!r})" if columns else ""
                raise FileFormatError(f"{name}: line {lineno}, column {col + 1}{label}: "
                                      f"{cells[col]!r} is not a finite number")
            out[i, j] = value
    return out


def read_csv(path: str | os.PathLike, *, delimiter: str = ",", header: bool | None = None
             ) -> tuple[np.ndarray, list[str] | None]:
    """Read a numeric CSV file into a float64 table.

    Parameters
    ----------
    path : str or path-like
    delimiter : str
        Field separator (one character).
    header : bool, optional
        Whether the first row holds column names. Default: yes when any of its cells is not a
        number.

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
    name = os.fspath(path)
    rows = _csv_rows(path, delimiter)
    columns = None
    if rows and (header if header is not None else not all(_is_number(c) for c in rows[0][1])):
        columns = [c.strip() for c in rows.pop(0)[1]]
    if not rows:
        raise FileFormatError(f"{name}: no data rows")
    return _numbers(rows, list(range(len(rows[0][1]))), name, columns), columns


def _is_number(cell: str) -> bool:
    try:
        float(cell)
        return True
    except ValueError:
        return False


def _labelled_csv(path: str | os.PathLike, label_column: int | str | None, delimiter: str,
                  header: bool | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Features and labels of a CSV file; labels may be numbers or text (class names)."""
    name = os.fspath(path)
    rows = _csv_rows(path, delimiter)
    if not rows:
        raise FileFormatError(f"{name}: no data rows")
    first = [c.strip() for c in rows[0][1]]
    n = len(first)
    if isinstance(label_column, str):  # a column name: the first row must be the header
        if header is False or label_column.strip() not in first:
            heads = ", ".join(first) if header is not False else "(no header)"
            raise InvalidArgumentError(f"label_column={label_column!r} is not a column of {name}; "
                                       f"expected one of: {heads}")
        col = first.index(label_column.strip())
        is_header = True
    else:
        col = None
        if label_column is not None:
            if not -n <= label_column < n:
                raise InvalidArgumentError(f"label_column={label_column} is out of range for {name} with "
                                           f"{n} columns; expected -{n}..{n - 1}, a column name, or None")
            col = label_column % n
        is_header = header
        if is_header is None:  # a header has a cell that is not a number outside the label column,
            # or a text label above a column of numeric labels
            is_header = not all(_is_number(c) for i, c in enumerate(first) if i != col) or (
                col is not None and not _is_number(first[col]) and len(rows) > 1
                and all(_is_number(cells[col]) for _, cells in rows[1:]))
    columns = first if is_header else None
    if is_header:
        rows = rows[1:]
    if not rows:
        raise FileFormatError(f"{name}: no data rows")
    X = _numbers(rows, [i for i in range(n) if i != col], name, columns)
    if col is None:
        return X, None
    labels = [cells[col].strip() for _, cells in rows]
    for (lineno, _), label in zip(rows, labels):
        if not label:
            raise FileFormatError(f"{name}: line {lineno}, column {col + 1}: the label is empty")
    if all(_is_number(v) for v in labels):
        return X, _numbers(rows, [col], name, columns)[:, 0]
    return X, np.array(labels, dtype=str)  # class names


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
        For ``.csv``: see :func:`read_csv`; a header is detected when a cell of the first row
        outside the label column is not a number (or its label is text above numeric labels).
    dtype : dtype
        Floating dtype of ``X`` (float32 default).
    max_bytes : int, optional
        Largest array accepted, in bytes once converted to ``dtype``; checked from the file's
        headers before anything is decompressed or allocated. Default
        ``$MLPNUMPY_MAX_DATA_BYTES``, else 4 GiB (at most half the memory); see
        :func:`mlpnumpy._npyio.max_data_bytes`.

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
        X, y = _labelled_csv(path, label_column, delimiter, header)
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
    """A .npy array or a .npz archive's arrays (as a dict), read by :mod:`mlpnumpy._npyio` within
    ``max_bytes`` (counted as ``itemsize``-byte items)."""
    from .._npyio import load_npy, load_npz
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
