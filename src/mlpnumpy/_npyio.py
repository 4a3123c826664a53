"""Reading ``.npy`` and ``.npz`` files from strangers: no pickle, no code, and never more memory
than the file's own data.

``np.load`` trusts the header: a few hundred bytes that promise an array of 100 GB make it try to
allocate 100 GB, and a damaged header surfaces as whatever exception the parser hit. Here each
header is read with NumPy's own (literal-only) parser, checked against the bytes actually present,
and every failure becomes a :class:`~mlpnumpy.errors.FileFormatError` naming the file.
"""
from __future__ import annotations

import os
import zipfile
from typing import IO

import numpy as np
from numpy.lib import format as npformat

from .errors import FileFormatError

__all__ = ["read_npy_header", "read_npy", "load_npy", "load_npz"]

_MAX_DIMS = 32


def read_npy_header(f: IO[bytes], where: str, kinds: str = "biufcUS") -> tuple[tuple, bool, np.dtype, int]:
    """Parse a ``.npy`` header: ``(shape, fortran_order, dtype, data_bytes)``, checked.

    Only dtypes whose kind is in ``kinds`` are accepted (never object arrays, which need pickle).
    """
    try:
        version = npformat.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = npformat.read_array_header_1_0(f)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = npformat.read_array_header_2_0(f)
        else:
            raise ValueError(f"unsupported .npy version {version}")
    except Exception as exc:  # noqa: BLE001 - any parser failure means a malformed header
        raise FileFormatError(f"{where}: not a valid .npy header ({type(exc).__name__}: {exc})") from None
    dtype = np.dtype(dtype)
    if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None or dtype.kind not in kinds:
        raise FileFormatError(f"{where}: holds dtype {dtype}, which is refused (object arrays would need "
                              "unpickling; only plain numbers are read)")
    if len(shape) > _MAX_DIMS or any((not isinstance(d, int)) or d < 0 for d in shape):
        raise FileFormatError(f"{where}: invalid array shape {shape}")
    count = 1
    for d in shape:
        count *= d
    return tuple(shape), bool(fortran), dtype, count * dtype.itemsize


def read_npy(f: IO[bytes], available: int, where: str) -> np.ndarray:
    """Read one ``.npy`` stream holding at most ``available`` bytes (header included)."""
    shape, fortran, dtype, nbytes = read_npy_header(f, where)
    if nbytes > available:
        raise FileFormatError(f"{where}: the header promises {nbytes} bytes of data (shape {shape}, {dtype}) "
                              f"but the file holds at most {available}; it is truncated or hostile")
    data = f.read(nbytes)
    if len(data) != nbytes:
        raise FileFormatError(f"{where}: truncated: {len(data)} of {nbytes} data bytes present")
    arr = np.frombuffer(data, dtype=dtype)
    if fortran:
        return arr.reshape(shape[::-1]).T
    return arr.reshape(shape)


def load_npy(path: str | os.PathLike) -> np.ndarray:
    name = os.fspath(path)
    with open(path, "rb") as f:
        return read_npy(f, os.fstat(f.fileno()).st_size, name)


def load_npz(path: str | os.PathLike, max_ratio: int = 2000) -> dict[str, np.ndarray]:
    """Every member of an ``.npz`` archive, as ``{name: array}`` (``.npy`` suffix dropped).

    A member's declared size may be at most ``max_ratio`` times its compressed size (zip bombs),
    and no member may be read past the size the archive declares for it.
    """
    name = os.fspath(path)
    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
            out = {}
            for info in infos:
                if info.file_size > max(info.compress_size, 1) * max_ratio + (1 << 16):
                    raise FileFormatError(f"{name}: member {info.filename!r} claims {info.file_size} bytes "
                                          f"from {info.compress_size} compressed; refused as a zip bomb")
                key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
                with z.open(info) as f:
                    out[key] = read_npy(f, info.file_size, f"{name}[{info.filename}]")
            return out
    except FileFormatError:
        raise
    except FileNotFoundError:
        raise
    except Exception as exc:  # noqa: BLE001 - bad zip structure, CRC errors, unsupported compression
        raise FileFormatError(f"{name}: not a valid .npz archive ({type(exc).__name__}: {exc})") from None
