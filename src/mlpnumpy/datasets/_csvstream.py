"""Numeric CSV files read in streaming chunks into one preallocated array.

Reading a CSV row by row into Python lists costs ~28 bytes of memory per byte of file (a 200 MB
one-line file took 5.8 GB). Here a first pass counts the lines (bytes only), the size that many
rows take as ``dtype`` is checked against the data limit, one array is allocated, and blocks of
lines are parsed into it by NumPy's C ``loadtxt``. A block the C parser refuses is parsed again
cell by cell, which is what decides and what names the line and column of a bad cell. Files that
hold a quote character go through the :mod:`csv` module row by row (quoted fields may hold
delimiters and newlines), into the same preallocated array.
"""
from __future__ import annotations

import codecs
import csv
import itertools
import logging
import os
from typing import Any

import numpy as np

from ..io._npyio import ENV_MAX_BYTES, max_data_bytes
from ..errors import FileFormatError, InvalidArgumentError, InvalidDataError

__all__ = ["read_table"]

_log = logging.getLogger("mlpnumpy.datasets")
_BLOCK_BYTES = 4 << 20   # text parsed per loadtxt call
_COUNT_BYTES = 1 << 20   # bytes read per step of the line count
_PIECE_CHARS = 1 << 18   # a line longer than this is parsed in pieces of about this size


def _is_number(cell: str) -> bool:
    try:
        float(cell)
        return True
    except ValueError:
        return False


def _open_text(path, name: str):
    try:
        return open(path, "r", newline="", encoding="utf-8-sig")  # -sig: a BOM from spreadsheets
    except IsADirectoryError:
        raise FileFormatError(f"{name}: is a folder, not a CSV file") from None


def _scan(path, name: str) -> tuple[int, bool]:
    """``(line breaks, needs the csv module)`` from one pass over the bytes, a block at a time.

    The csv module is needed for quotes (quoted fields may hold delimiters and line breaks) and
    for bare carriage returns as line ends; every other file is split at ``\\n`` in binary.
    """
    lines, quoted, bare_cr = 0, False, False
    try:
        fh = open(path, "rb")
    except IsADirectoryError:
        raise FileFormatError(f"{name}: is a folder, not a CSV file") from None
    with fh:
        for block in iter(lambda: fh.read(_COUNT_BYTES), b""):
            nl, cr = block.count(b"\n"), block.count(b"\r")
            lines += nl + cr - block.count(b"\r\n")
            quoted = quoted or b'"' in block
            bare_cr = bare_cr or cr > block.count(b"\r\n") + block.endswith(b"\r")
    return lines, quoted or bare_cr


def _binary_lines(fh) -> Any:
    """``(line number, text)`` of every ``\\n``-ended line of a binary file, decoded as UTF-8.

    Read a block at a time and joined only for a line longer than a block: a one-line file of
    200 MB costs its bytes once and its text once, not the text layer's several copies.
    """
    n, pending = 0, []
    for block in iter(lambda: fh.read(_COUNT_BYTES), b""):
        start = 0
        while True:
            end = block.find(b"\n", start)
            if end < 0:
                pending.append(block[start:])
                break
            n += 1
            if pending:
                pending.append(block[start:end + 1])
                raw = b"".join(pending)
                pending = []
            else:
                raw = block[start:end + 1]
            text = _decode(raw, n)
            del raw  # not kept while the caller works on the line
            yield n, text
            start = end + 1
    if pending and any(pending):
        yield n + 1, _decode(b"".join(pending), n + 1)


def _decode(raw: bytes, n: int) -> str:
    return (raw[3:] if n == 1 and raw.startswith(codecs.BOM_UTF8) else raw).decode("utf-8")


class _Table:
    """Where rows go: the preallocated features, the labels (numbers or text), the row count."""

    def __init__(self, name, n_rows, width, label_col, columns, dtype, limit):
        self.name, self.width, self.label_col, self.columns = name, width, label_col, columns
        self.n_feat = width - (label_col is not None)
        self.dtype = np.dtype(dtype)
        need = n_rows * self.n_feat * self.dtype.itemsize
        if need > limit:
            raise InvalidDataError(
                f"{name}: up to {n_rows:,} rows of {self.n_feat} numbers take {need:,} bytes as {self.dtype}, more "
                f"than the limit of {limit:,} bytes on user data; if the file is genuine, raise the limit with "
                f"max_bytes= or ${ENV_MAX_BYTES}")
        self.X = np.empty((n_rows, self.n_feat), self.dtype)
        self.linenos = np.empty(n_rows, np.int64)  # for messages about labels
        self.labels: list[str] = []
        self.n = 0
        self._big = np.finfo(self.dtype).max

    def column_of(self, j: int) -> int:
        """The file column of feature ``j`` (columns after the label's shift by one)."""
        return j if self.label_col is None or j < self.label_col else j + 1

    def usecols(self) -> list[int] | None:
        """The feature columns for ``loadtxt``: None (all) without a label column."""
        return None if self.label_col is None else [j for j in range(self.width) if j != self.label_col]

    def where(self, lineno: int, col: int) -> str:
        label = f" ({self.columns[col]!r})" if self.columns else ""
        return f"{self.name}: line {lineno}, column {col + 1}{label}"

    def bad_cell(self, lineno: int, col: int, cell: str) -> FileFormatError:
        return FileFormatError(f"{self.where(lineno, col)}: {cell.rstrip(chr(13) + chr(10))!r} is not a finite number")

    def add(self, values: np.ndarray, linenos: list[int]) -> None:
        """Rows of float64 ``values``: finite, and within ``dtype``'s range (else an error naming the column)."""
        if not np.isfinite(values).all():
            r, c = np.argwhere(~np.isfinite(values))[0]
            raise FileFormatError(f"{self.where(linenos[r], self.column_of(c))}: {float(values[r, c])!r} is not a finite "
                                  "number")
        if self.dtype.itemsize < 8 and values.size and (values.max() > self._big or values.min() < -self._big):
            over = np.abs(values) > self._big
            if over.any():
                r, c = np.argwhere(over)[0]
                raise FileFormatError(
                    f"{self.where(linenos[r], self.column_of(c))}: {float(values[r, c])!r} is too large for {self.dtype} "
                    f"(largest {self._big:.4g}); rescale that column or load with dtype=float64")
        k = len(values)
        if self.n + k > len(self.X):  # only if a line count was wrong (a line ending the scan missed)
            grown = np.empty((self.n + k, self.X.shape[1]), self.dtype)
            grown[:self.n] = self.X[:self.n]
            self.X, self.linenos = grown, np.resize(self.linenos, self.n + k)
        self.X[self.n:self.n + k] = values
        self.linenos[self.n:self.n + k] = linenos
        self.n += k


def _parse_rows_exactly(table: _Table, rows: list[tuple[int, list[str]]]) -> None:
    """Cell by cell: what decides, and what names a bad cell."""
    out = np.empty((len(rows), table.n_feat), np.float64)
    cols = [table.column_of(j) for j in range(table.n_feat)]
    for i, (lineno, cells) in enumerate(rows):
        for j, col in enumerate(cols):
            try:
                out[i, j] = float(cells[col])
            except ValueError:
                raise table.bad_cell(lineno, col, cells[col]) from None
    table.add(out, [r[0] for r in rows])
    if table.label_col is not None:
        table.labels.extend(cells[table.label_col].strip() for _, cells in rows)


def _check_width(table: _Table, lineno: int, cells: list[str], width: int) -> None:
    if len(cells) != width:
        raise FileFormatError(f"{table.name}: line {lineno} has {len(cells)} fields, expected {width} like the "
                              "first row")


def _width_error(table: _Table, lineno: int, got: int, width: int) -> FileFormatError:
    return FileFormatError(f"{table.name}: line {lineno} has {got} fields, expected {width} like the first row")


def _cell(text: str, col: int, delimiter: str, width: int) -> str:
    """Cell ``col`` of an unquoted line, without splitting the whole line."""
    if col == width - 1:
        return text.rsplit(delimiter, 1)[-1]
    return text.split(delimiter, col + 1)[col]


def _loadtxt(lines: list[str], delimiter: str, usecols) -> np.ndarray | None:
    """NumPy's C parser on unquoted lines, or None when it refuses them (the exact parse decides)."""
    try:
        return np.loadtxt(lines, delimiter=delimiter, dtype=np.float64, usecols=usecols, comments=None, ndmin=2,
                          quotechar=None)
    except ValueError:
        return None


def _fast_block(table: _Table, lines: list[tuple[int, str]], delimiter: str, width: int) -> None:
    """A block of unquoted lines through the C parser; a block it refuses goes cell by cell instead."""
    for n, t in lines:
        if t.count(delimiter) + 1 != width:
            raise _width_error(table, n, t.count(delimiter) + 1, width)
    values = _loadtxt([t for _, t in lines], delimiter, table.usecols())
    if values is None or values.shape != (len(lines), table.n_feat):
        _parse_rows_exactly(table, [(n, t.split(delimiter)) for n, t in lines])
        return
    table.add(values, [n for n, _ in lines])
    if table.label_col is not None:
        table.labels.extend(_cell(t, table.label_col, delimiter, width).strip() for _, t in lines)


def _wide_line(table: _Table, lineno: int, text: str, delimiter: str, width: int) -> None:
    """One very long unquoted line (a one-line CSV of millions of values), parsed piece by piece so
    that the parser's own buffers stay small: the line itself and one float64 row are what it costs."""
    if text.count(delimiter) + 1 != width:
        raise _width_error(table, lineno, text.count(delimiter) + 1, width)
    col = table.label_col
    row = np.empty(table.n_feat, np.float64)
    pos, cell = 0, 0
    while cell < width:
        end = text.find(delimiter, pos + _PIECE_CHARS)
        end = len(text) if end < 0 else end
        piece = text[pos:end]
        k = piece.count(delimiter) + 1
        use = [j for j in range(k) if cell + j != col]
        if use:
            first = cell + use[0] - (1 if col is not None and col < cell + use[0] else 0)
            vals = _loadtxt([piece], delimiter, use)
            if vals is None or vals.shape != (1, len(use)):
                cells = piece.split(delimiter)
                vals = np.empty((1, len(use)))
                for i, j in enumerate(use):
                    try:
                        vals[0, i] = float(cells[j])
                    except ValueError:
                        raise table.bad_cell(lineno, cell + j, cells[j]) from None
            row[first:first + len(use)] = vals[0]
        pos, cell = end + 1, cell + k
    table.add(row[None, :], [lineno])
    if col is not None:
        table.labels.append(_cell(text, col, delimiter, width).strip())


def _first_row_is_header(text: str, delimiter: str) -> bool:
    """True when none of the cells parses as a number; stops at the first one that does."""
    pos = 0
    while True:
        end = text.find(delimiter, pos)
        if _is_number(text[pos:] if end < 0 else text[pos:end]):
            return False
        if end < 0:
            return True
        pos = end + 1


def read_table(path: str | os.PathLike, *, delimiter: str = ",", header: bool | None = None,
               label_column: int | str | None = None, dtype: Any = np.float64, max_bytes: int | None = None
               ) -> tuple[np.ndarray, np.ndarray | None, list[str] | None]:
    """Read a CSV file of numbers (and one label column of numbers or text) in streaming chunks.

    Parameters
    ----------
    path : str or path-like
    delimiter : str
        One character.
    header : bool, optional
        Whether the first row names the columns. Default: only when it clearly does, that is when
        none of its cells is a number (a first row with one odd cell is data, and its bad cell is
        reported, never dropped). The decision is logged on the ``mlpnumpy.datasets`` logger.
    label_column : int, str or None
        The column holding labels (an index, negative allowed, or a header name); None: none.
    dtype : float32 or float64
        Of the features; a value beyond its range is an error naming its line and column.
    max_bytes : int, optional
        Limit on the features' size (see :func:`mlpnumpy.io._npyio.max_data_bytes`), checked before
        the array is allocated.

    Returns
    -------
    X : ndarray of shape (n_rows, n_features), ``dtype``
    labels : ndarray of shape (n_rows,) or None
        float64 when every label is a number, else str.
    columns : list of str or None
        The header's names.
    """
    name = os.fspath(path)
    if not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in '"\r\n':
        raise InvalidArgumentError(f"delimiter={delimiter!r} is invalid; expected one character other than a "
                                   "quote or a line break, such as ',' or ';'")
    limit = max_data_bytes(max_bytes)
    n_lines, quoted = _scan(path, name)
    with (_open_text(path, name) if quoted else open(path, "rb")) as fh:
        if quoted:
            reader = csv.reader(fh, delimiter=delimiter)
            rows = ((reader.line_num, cells) for cells in reader)
            blank = lambda c: not c or not any(x.strip() for x in c)  # noqa: E731
        else:
            rows = _binary_lines(fh)  # (line number, text): cells are split only where needed
            blank = lambda t: not t or t.isspace()  # noqa: E731 - no copy of a long line
        try:
            first = next(((n, c) for n, c in rows if not blank(c)), None)
            if first is None:
                raise FileFormatError(f"{name}: no data rows")
            return _read_rows(name, first, rows, quoted, n_lines, delimiter, header, label_column, dtype, limit)
        except (csv.Error, UnicodeDecodeError) as exc:
            raise FileFormatError(f"{name}: not a readable UTF-8 CSV file ({exc})") from None


def _read_rows(name, first, rows, quoted, n_lines, delimiter, header, label_column, dtype, limit):
    first_line, first_row = first  # cells (quoted files) or the line's text
    width = len(first_row) if quoted else first_row.count(delimiter) + 1

    def names():
        return [c.strip() for c in (first_row if quoted else first_row.split(delimiter))]
    if isinstance(label_column, str):  # a column name: the first row must be the header
        cells = names()
        if header is False or label_column.strip() not in cells:
            heads = ", ".join(cells) if header is not False else "(no header)"
            raise InvalidArgumentError(f"label_column={label_column!r} is not a column of {name}; expected one "
                                       f"of: {heads}")
        col, is_header = cells.index(label_column.strip()), True
    else:
        col = None
        if label_column is not None:
            if isinstance(label_column, bool) or not isinstance(label_column, (int, np.integer)):
                raise InvalidArgumentError(f"label_column={label_column!r} is not a column index or name; expected "
                                           "an integer, a header name or None")
            if not -width <= label_column < width:
                raise InvalidArgumentError(f"label_column={label_column} is out of range for {name} with {width} "
                                           f"columns; expected -{width}..{width - 1}, a column name, or None")
            col = int(label_column) % width
        if header is not None:
            is_header = header
        elif quoted:
            is_header = not any(_is_number(c) for c in first_row)
        else:
            is_header = _first_row_is_header(first_row, delimiter)
        if header is None:
            _log.info("%s: first row %s", name, "taken as the header (none of its cells is a number)" if is_header
                      else "read as data (a header would have no numbers)")
    columns = names() if is_header else None
    if columns is not None and len(set(columns)) != len(columns):
        dup = next(c for c in columns if columns.count(c) > 1)
        raise FileFormatError(f"{name}: the header names column {dup!r} twice; expected distinct column names")
    if width == 1 and col is not None:
        raise FileFormatError(f"{name}: has only the label column; expected at least one feature column besides it")
    n_rows = max(n_lines + 1 - (1 if is_header else 0), 1)
    table = _Table(name, n_rows, width, col, columns, dtype, limit)
    pending = [] if is_header else [(first_line, first_row)]
    if quoted:
        block = pending
        for n, c in rows:
            if not c or not any(x.strip() for x in c):
                continue
            _check_width(table, n, c, width)
            block.append((n, c))
            if len(block) >= 4096:
                _parse_rows_exactly(table, block)
                block = []
        if block:
            _check_width(table, block[0][0], block[0][1], width)
            _parse_rows_exactly(table, block)
    else:
        block, size = [], 0
        for n, text in itertools.chain(pending, rows):
            if not text or text.isspace():
                continue
            if len(text) > _PIECE_CHARS:
                if block:
                    _fast_block(table, block, delimiter, width)
                    block, size = [], 0
                _wide_line(table, n, text, delimiter, width)
                continue
            block.append((n, text))
            size += len(text)
            if size >= _BLOCK_BYTES:
                _fast_block(table, block, delimiter, width)
                block, size = [], 0
        if block:
            _fast_block(table, block, delimiter, width)
    if table.n == 0:
        raise FileFormatError(f"{name}: no data rows")
    X = table.X[:table.n]
    if col is None:
        return X, None, columns
    labels, lines = table.labels, table.linenos

    def at(i):
        return f"{name}: line {lines[i]}, column {col + 1}"
    for i, lab in enumerate(labels):
        if not lab:
            raise FileFormatError(f"{at(i)}: the label is empty")
    numeric = [_is_number(v) for v in labels]
    if all(numeric):
        y = np.array([float(v) for v in labels], dtype=np.float64)
        if not np.isfinite(y).all():
            i = int(np.flatnonzero(~np.isfinite(y))[0])
            raise FileFormatError(f"{at(i)}: label {labels[i]!r} is not a finite number")
        return X, y, columns
    if any(numeric):
        i, j = numeric.index(True), numeric.index(False)
        raise FileFormatError(f"{name}: column {col + 1} mixes numeric labels ({labels[i]!r}, line {lines[i]}) and "
                              f"text labels ({labels[j]!r}, line {lines[j]}); expected one kind (is the first row a "
                              "header? pass header=True)")
    return X, np.array(labels, dtype=str), columns
