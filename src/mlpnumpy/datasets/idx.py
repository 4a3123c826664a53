"""Read and write IDX files, the format of MNIST and Fashion-MNIST, raw or gzip-compressed.

The reader treats every file as hostile: the header is checked against the data actually present
before anything large is allocated, so a few bytes promising 100 GB are rejected at once.
"""
from __future__ import annotations

import gzip
import io
import math
import os
import stat
import zlib
from typing import IO, Any

import numpy as np

from ..io._atomic import atomic_write
from ..errors import DataTypeError, FileFormatError, InvalidArgumentError, InvalidDataError

__all__ = ["read_idx", "write_idx", "IDX_DTYPES", "MAX_RANK", "DEFAULT_MAX_BYTES"]

#: IDX type code -> big-endian NumPy dtype.
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8"),
}
_CODES = {dt.newbyteorder("="): code for code, dt in IDX_DTYPES.items()}
#: Highest rank accepted; NumPy itself cannot hold more dimensions than this.
MAX_RANK = 32
#: Default cap on the data a header may promise (4 GiB); raise it for genuinely larger files.
DEFAULT_MAX_BYTES = 4 << 30
_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20  # first allocation for streams of unknown length; grows by doubling


class _Prefixed(io.RawIOBase):
    """A stream that replays ``prefix`` and then continues with ``stream``.

    Lets the reader sniff the gzip magic of a non-seekable file object without losing bytes.
    """

    def __init__(self, prefix: bytes, stream: IO[bytes]):
        self._prefix, self._stream = prefix, stream

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        if self._prefix:
            n = min(len(b), len(self._prefix))
            b[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        if hasattr(self._stream, "readinto"):  # straight into the caller's buffer: no copy
            return self._stream.readinto(b) or 0
        data = self._stream.read(len(b))
        b[:len(data)] = data
        return len(data)


def _remaining_size(stream: IO[bytes]) -> int | None:
    """Bytes left in a seekable raw stream, or None when the stream cannot tell."""
    try:
        st = os.fstat(stream.fileno())
        if not stat.S_ISREG(st.st_mode):  # pipes and devices report a size of 0
            return None
        return st.st_size - stream.tell()
    except (OSError, AttributeError, ValueError, io.UnsupportedOperation):
        pass  # not a real file (BytesIO, sockets, wrappers): ask the stream itself
    try:
        if not stream.seekable():
            return None
        pos = stream.tell()
        end = stream.seek(0, io.SEEK_END)
        stream.seek(pos)
        return end - pos
    except (OSError, AttributeError, ValueError, io.UnsupportedOperation):
        return None


def _read_exact(stream: IO[bytes], n: int, what: str, name: str) -> bytes:
    data = stream.read(n)
    if len(data) != n:
        raise FileFormatError(f"{name}: truncated IDX file; the {what} needs {n} bytes, "
                              f"found {len(data)}")
    return data


def _read_payload(stream: IO[bytes], nbytes: int, known: int | None, name: str) -> np.ndarray:
    """Read exactly ``nbytes`` into a uint8 array, growing the buffer only as data arrives."""
    # With a known remaining size the header has been checked already, so allocate once;
    # otherwise (gzip, pipes) start small and double, so memory follows the real data.
    cap = nbytes if known is not None else min(nbytes, _CHUNK)
    buf = np.empty(cap, dtype=np.uint8)
    filled = 0
    while filled < nbytes:
        if filled == buf.size:
            bigger = np.empty(min(nbytes, 2 * buf.size), dtype=np.uint8)
            bigger[:filled] = buf[:filled]
            buf = bigger
        view = memoryview(buf)[filled:]
        got = stream.readinto(view) if hasattr(stream, "readinto") else None
        if got is None:  # file objects without readinto (or non-blocking ones)
            chunk = stream.read(buf.size - filled)
            got = len(chunk)
            buf[filled:filled + got] = np.frombuffer(chunk, dtype=np.uint8)
        if got == 0:
            raise FileFormatError(f"{name}: truncated IDX file; the header promises {nbytes} "
                                  f"bytes of data, found only {filled}")
        filled += got
    return buf


def _stream_name(source: Any) -> str:
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    return str(getattr(source, "name", None) or f"<{type(source).__name__}>")


def read_idx(source: str | os.PathLike | IO[bytes], *,
             max_bytes: int = DEFAULT_MAX_BYTES, max_shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Read an IDX file (raw or gzip-compressed, detected by its magic bytes).

    The header is two zero bytes, a type code, the rank ``r``, then ``r`` big-endian uint32
    dimensions; the data follows in C order, big-endian.

    Parameters
    ----------
    source : str, path-like or binary file object
        The file. A file object is read from its current position and not closed.
    max_bytes : int
        Largest data size a header may promise (default 4 GiB). Headers promising more are
        rejected before any allocation.
    max_shape : tuple of int, optional
        The largest shape the file may hold: same rank, each dimension at most this (MNIST's
        training images: ``(60000, 28, 28)``). Checked on the header, so a gzip member that would
        expand past what the data set can be is refused before it is decompressed.

    Returns
    -------
    ndarray of shape ``(d_1, ..., d_r)``
        In native byte order: uint8, int8, int16, int32, float32 or float64.

    Raises
    ------
    FileFormatError
        Bad magic bytes, unknown type code, rank 0 or above :data:`MAX_RANK`, data larger than
        ``max_bytes``, truncated data, trailing bytes or a corrupt gzip stream. The message names
        the file.
    """
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, (int, np.integer)) or max_bytes < 0:
        raise InvalidArgumentError(f"max_bytes={max_bytes!r} is invalid; expected an integer >= 0")
    if max_shape is not None:
        max_shape = tuple(max_shape)
        if not all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d >= 0 for d in max_shape):
            raise InvalidArgumentError(f"max_shape={max_shape!r} is invalid; expected a tuple of integers >= 0")
    name = _stream_name(source)
    if isinstance(source, (str, os.PathLike)):
        try:
            with open(source, "rb") as fh:
                return _read(fh, name, int(max_bytes), max_shape)
        except IsADirectoryError:
            raise FileFormatError(f"{name}: is a folder, not an IDX file") from None
    if not hasattr(source, "read"):
        raise DataTypeError(f"source={source!r} is neither a path nor a binary file object")
    return _read(source, name, int(max_bytes), max_shape)


def _read(raw: IO[bytes], name: str, max_bytes: int, max_shape: tuple[int, ...] | None = None) -> np.ndarray:
    head = raw.read(2)
    if not isinstance(head, bytes):
        raise DataTypeError(f"{name}: read() returned {type(head).__name__}; open the file in "
                            "binary mode ('rb')")
    if head == _GZIP_MAGIC:
        try:
            with gzip.GzipFile(fileobj=_Prefixed(head, raw), mode="rb") as gz:
                return _parse(gz, name, max_bytes, known=None, max_shape=max_shape)
        except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
            raise FileFormatError(f"{name}: corrupt gzip stream ({exc})") from None
    # BufferedReader turns the short reads a raw stream may return into full reads.
    return _parse(io.BufferedReader(_Prefixed(head, raw), _CHUNK), name, max_bytes,
                  known=_remaining_size(raw), prefix_len=len(head), max_shape=max_shape)


def _parse(stream: IO[bytes], name: str, max_bytes: int, known: int | None,
           prefix_len: int = 0, max_shape: tuple[int, ...] | None = None) -> np.ndarray:
    if known is not None:
        known += prefix_len
    magic = stream.read(4)
    if len(magic) < 4 or magic[0] != 0 or magic[1] != 0:
        raise FileFormatError(f"{name}: not an IDX file; it must start with two zero bytes, a "
                              f"type code and a rank, got {magic.hex(' ') or 'an empty file'}")
    code, rank = magic[2], magic[3]
    if code not in IDX_DTYPES:
        valid = ", ".join(f"0x{c:02X} ({IDX_DTYPES[c].name})" for c in IDX_DTYPES)
        raise FileFormatError(f"{name}: unknown IDX type code 0x{code:02X}; expected one of: {valid}")
    if not 1 <= rank <= MAX_RANK:
        raise FileFormatError(f"{name}: IDX rank {rank} is not supported; expected 1..{MAX_RANK}")
    dims = tuple(int(d) for d in np.frombuffer(_read_exact(stream, 4 * rank, "dimension list",
                                                           name), dtype=">u4"))
    dtype = IDX_DTYPES[code]
    nbytes = math.prod(dims) * dtype.itemsize  # Python ints: no overflow for absurd dims
    header = 4 + 4 * rank
    # NumPy refuses shapes whose non-zero dimensions multiply past its index range, even when
    # another dimension is 0; such a header describes no real file.
    if math.prod(d for d in dims if d) * dtype.itemsize >= 2 ** 62:
        raise FileFormatError(f"{name}: the header's shape {dims} is absurd (its dimensions multiply "
                              "past 2**62 bytes); the file is corrupt")
    if max_shape is not None and (len(dims) != len(max_shape) or any(d > m for d, m in zip(dims, max_shape))):
        raise FileFormatError(f"{name}: the header declares shape {dims}; this file may hold at most "
                              f"{max_shape} (same rank, no dimension larger); refused before reading its data")
    if nbytes > max_bytes:
        raise FileFormatError(f"{name}: the header promises {nbytes} bytes of data (shape {dims}, "
                              f"{dtype.name}), more than max_bytes={max_bytes}; pass a larger "
                              "max_bytes if the file is genuine")
    if known is not None and known - header != nbytes:
        what = "truncated" if known - header < nbytes else "has trailing bytes"
        raise FileFormatError(f"{name}: IDX file {what}; the header (shape {dims}, {dtype.name}) "
                              f"promises {nbytes} bytes of data, the file holds {known - header}")
    data = _read_payload(stream, nbytes, known, name)
    if stream.read(1):
        raise FileFormatError(f"{name}: IDX file has trailing bytes after the {nbytes} bytes of "
                              f"data the header (shape {dims}, {dtype.name}) promises")
    arr = data[:nbytes].view(dtype).reshape(dims)
    return arr.astype(dtype.newbyteorder("="), copy=dtype.itemsize > 1)


def write_idx(path: str | os.PathLike, array: Any, compress: bool | None = None) -> None:
    """Write ``array`` as an IDX file, atomically.

    Parameters
    ----------
    path : str or path-like
        Destination; replaced only once the whole file is written.
    array : array_like of shape ``(d_1, ..., d_r)``, 1 <= r <= MAX_RANK
        dtype uint8, int8, int16, int32, float32 or float64; each dimension < 2**32.
    compress : bool, optional
        gzip the file. Default: only when ``path`` ends in ``.gz``.

    Raises
    ------
    DataTypeError
        The dtype has no IDX type code (e.g. int64, bool); cast it first.
    InvalidDataError
        Rank 0, rank above :data:`MAX_RANK` or a dimension too large for the header.
    """
    arr = np.asarray(array)
    native = arr.dtype.newbyteorder("=") if arr.dtype.byteorder in "<>" else arr.dtype
    if native not in _CODES:
        valid = ", ".join(dt.newbyteorder("=").name for dt in IDX_DTYPES.values())
        raise DataTypeError(f"array.dtype={arr.dtype} cannot be stored in IDX; expected one of: "
                            f"{valid}; cast the array first (e.g. labels.astype(np.uint8))")
    if not 1 <= arr.ndim <= MAX_RANK:
        raise InvalidDataError(f"array.ndim={arr.ndim} is not supported by IDX; expected 1..{MAX_RANK}")
    if any(d >= 2 ** 32 for d in arr.shape):
        raise InvalidDataError(f"array.shape={arr.shape} has a dimension >= 2**32, too large for IDX")
    if compress is None:
        compress = os.fspath(path).endswith(".gz")
    code = _CODES[native]
    header = bytes([0, 0, code, arr.ndim]) + np.asarray(arr.shape, dtype=">u4").tobytes()
    payload = np.ascontiguousarray(arr, dtype=IDX_DTYPES[code]).reshape(-1).view(np.uint8)
    with atomic_write(path, "wb") as fh:
        # mtime=0 and an empty stored name make the gzip bytes reproducible for a given array.
        out = gzip.GzipFile(filename="", mode="wb", fileobj=fh, mtime=0) if compress else fh
        try:
            out.write(header)
            out.write(memoryview(payload))
        finally:
            if compress:
                out.close()
