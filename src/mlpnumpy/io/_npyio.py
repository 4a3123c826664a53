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

from ..errors import FileFormatError, InvalidArgumentError, InvalidDataError

__all__ = ["read_npy_header", "read_npy", "load_npy", "load_npz", "max_data_bytes", "DEFAULT_MAX_BYTES",
           "ENV_MAX_BYTES"]

_MAX_DIMS = 32
#: Largest user array accepted, counted in the bytes it takes once converted (a uint8 array read as
#: float32 takes 4x its file's bytes): 4 GiB, or half the machine's memory when that is less.
DEFAULT_MAX_BYTES = 4 << 30
#: Environment variable overriding :data:`DEFAULT_MAX_BYTES` (a number of bytes).
ENV_MAX_BYTES = "MLPNUMPY_MAX_DATA_BYTES"
#: deflate cannot expand past 1032:1 (258-byte matches from 2-bit codes); a member declaring more
#: is lying. Stored members hold exactly their size.
_DEFLATE_MAX_RATIO = 1032


def max_data_bytes(max_bytes: int | None = None) -> int:
    """The size limit on user data: ``max_bytes`` if given, else ``$MLPNUMPY_MAX_DATA_BYTES``, else
    :data:`DEFAULT_MAX_BYTES` capped at half the physical memory."""
    if max_bytes is None:
        env = os.environ.get(ENV_MAX_BYTES)
        if env:
            try:
                max_bytes = int(float(env))
            except ValueError:
                raise InvalidArgumentError(f"${ENV_MAX_BYTES}={env!r} is not a number; expected a size in bytes "
                                           "such as 8e9") from None
            if max_bytes <= 0:
                raise InvalidArgumentError(f"${ENV_MAX_BYTES}={env!r} is invalid; expected a size in bytes > 0")
            return max_bytes
        try:
            half = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
        except (ValueError, OSError, AttributeError):
            half = DEFAULT_MAX_BYTES
        return min(DEFAULT_MAX_BYTES, half) if half > 0 else DEFAULT_MAX_BYTES
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, (int, np.integer)) or max_bytes <= 0:
        raise InvalidArgumentError(f"max_bytes={max_bytes!r} is invalid; expected an integer number of bytes > 0")
    return int(max_bytes)


def _check_limit(where: str, shape: tuple, dtype: np.dtype, out_itemsize: int, limit: int, total: int = 0) -> int:
    """Bytes the array takes once converted; raise if it (plus ``total`` already read) passes ``limit``."""
    count = 1
    for d in shape:
        count *= d
    need = count * max(dtype.itemsize, out_itemsize)
    if total + need > limit:
        conv = f" once converted to {out_itemsize}-byte floats" if out_itemsize > dtype.itemsize else ""
        raise InvalidDataError(f"{where}: holds an array of shape {shape} ({dtype}), {need:,} bytes{conv}"
                               f"{f' ({total + need:,} with the arrays before it)' if total else ''}, more than "
                               f"the limit of {limit:,} bytes on user data; if the file is genuine, raise the limit "
                               f"with max_bytes= or ${ENV_MAX_BYTES}")
    return need


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
    count, nonzero = 1, 1
    for d in shape:
        count *= d
        nonzero *= max(d, 1)
    # NumPy refuses shapes whose non-zero dimensions multiply past its index range even when another
    # dimension is 0: (0, 2**62) holds no data but cannot be made.
    if nonzero * max(dtype.itemsize, 1) >= 2 ** 62:
        raise FileFormatError(f"{where}: the header's shape {tuple(shape)} is absurd (its dimensions multiply past "
                              "2**62 bytes); the file is corrupt")
    return tuple(shape), bool(fortran), dtype, count * dtype.itemsize


def read_npy(f: IO[bytes], available: int, where: str, *, max_bytes: int | None = None,
             out_itemsize: int = 0) -> np.ndarray:
    """Read one ``.npy`` stream holding at most ``available`` bytes (header included).

    With ``max_bytes``, an array taking more than that once converted to ``out_itemsize``-byte
    items is refused from its header (:class:`~mlpnumpy.errors.InvalidDataError`).
    """
    shape, fortran, dtype, nbytes = read_npy_header(f, where)
    if max_bytes is not None:
        _check_limit(where, shape, dtype, out_itemsize, max_bytes)
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


def load_npy(path: str | os.PathLike, *, max_bytes: int | None = None, out_itemsize: int = 0) -> np.ndarray:
    """The array of a ``.npy`` file, bounded by the file's size and by :func:`max_data_bytes`.

    ``out_itemsize``: the item size the caller will convert to (4 for float32), counted in the limit.
    """
    name = os.fspath(path)
    limit = max_data_bytes(max_bytes)
    with open(path, "rb") as f:
        if f.read(4) == b"PK\x03\x04":
            raise FileFormatError(f"{name}: is a zip archive (an .npz), not a .npy file; rename it to .npz")
        f.seek(0)
        return read_npy(f, os.fstat(f.fileno()).st_size, name, max_bytes=limit, out_itemsize=out_itemsize)


def load_npz(path: str | os.PathLike, max_ratio: int = 2000, *, max_bytes: int | None = None,
             out_itemsize: int = 0) -> dict[str, np.ndarray]:
    """Every member of an ``.npz`` archive, as ``{name: array}`` (``.npy`` suffix dropped).

    Before a member is decompressed: its declared size must be one deflate can reach from its
    compressed size (1032:1; exactly its size when stored; ``max_ratio`` for other methods), and all
    members together, counted as ``out_itemsize``-byte items, must fit :func:`max_data_bytes`
    (``max_bytes`` if given). No member is read past its declared size, and two members of one
    name are refused (``np.load`` would silently keep the last).
    """
    name = os.fspath(path)
    limit = max_data_bytes(max_bytes)
    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
            out: dict[str, np.ndarray] = {}
            total = 0
            for info in infos:
                if info.compress_type == zipfile.ZIP_STORED:
                    bound = info.compress_size
                elif info.compress_type == zipfile.ZIP_DEFLATED:
                    bound = info.compress_size * _DEFLATE_MAX_RATIO + 1024
                else:
                    bound = max(info.compress_size, 1) * max_ratio + (1 << 16)
                if info.file_size > bound:
                    raise FileFormatError(f"{name}: member {info.filename!r} claims {info.file_size:,} bytes from "
                                          f"{info.compress_size:,} compressed, more than its compression can "
                                          "expand to; refused as corrupt or a zip bomb")
                key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
                if key in out:
                    raise FileFormatError(f"{name}: holds two arrays named {key!r}; expected distinct names "
                                          "(np.load would silently keep the last)")
                where = f"{name}[{info.filename}]"
                with z.open(info) as f:
                    shape, _, dtype, _ = read_npy_header(f, where)
                    total += _check_limit(where, shape, dtype, out_itemsize, limit, total)
                with z.open(info) as f:
                    out[key] = read_npy(f, info.file_size, where)
            return out
    except (FileFormatError, InvalidDataError):
        raise
    except FileNotFoundError:
        raise
    except Exception as exc:  # noqa: BLE001 - bad zip structure, CRC errors, unsupported compression
        raise FileFormatError(f"{name}: not a valid .npz archive ({type(exc).__name__}: {exc})") from None
