"""IDX reader/writer: exact bytes, round trips, and rejection of every kind of bad file."""
import gzip
import io
import os
import time
import tracemalloc

import numpy as np
import pytest

from mlpnumpy.io._atomic import atomic_write, atomic_write_bytes
from mlpnumpy.datasets import read_idx, write_idx
from mlpnumpy.errors import DataTypeError, FileFormatError, InvalidDataError

DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]
SHAPES = [(5,), (3, 4), (2, 3, 4), (2, 1, 3, 2)]


def _random(shape, dtype, rng):
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)


def header(code, dims):
    return bytes([0, 0, code, len(dims)]) + np.asarray(dims, dtype=">u4").tobytes()


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"rank{len(s)}")
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_round_trip(tmp_path, dtype, shape, compress):
    arr = _random(shape, dtype, np.random.default_rng(0))
    path = tmp_path / ("a.idx.gz" if compress else "a.idx")
    write_idx(path, arr)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == compress
    out = read_idx(path)
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    assert out.shape == shape
    np.testing.assert_array_equal(out, arr)


def test_exact_bytes_big_endian(tmp_path):
    # Hand-written file: int32 shape (2,), values 1 and -2, big-endian.
    raw = b"\x00\x00\x0c\x01" + b"\x00\x00\x00\x02" + b"\x00\x00\x00\x01" + b"\xff\xff\xff\xfe"
    (tmp_path / "h.idx").write_bytes(raw)
    np.testing.assert_array_equal(read_idx(tmp_path / "h.idx"), np.array([1, -2], dtype=np.int32))
    write_idx(tmp_path / "w.idx", np.array([1, -2], dtype=np.int32))
    assert (tmp_path / "w.idx").read_bytes() == raw
    # Little-endian input is written big-endian all the same.
    write_idx(tmp_path / "le.idx", np.array([1, -2], dtype="<i4"))
    assert (tmp_path / "le.idx").read_bytes() == raw


def test_gzip_detected_by_magic_not_extension(tmp_path):
    arr = np.arange(12, dtype=np.uint8).reshape(3, 4)
    write_idx(tmp_path / "plain-name", arr, compress=True)
    write_idx(tmp_path / "fake.gz", arr, compress=False)
    np.testing.assert_array_equal(read_idx(tmp_path / "plain-name"), arr)
    np.testing.assert_array_equal(read_idx(tmp_path / "fake.gz"), arr)


def test_gzip_output_is_reproducible(tmp_path):
    arr = np.arange(100, dtype=np.int16)
    write_idx(tmp_path / "a.gz", arr)
    time.sleep(1.1)  # a gzip mtime field would differ now
    write_idx(tmp_path / "b.gz", arr)
    assert (tmp_path / "a.gz").read_bytes() == (tmp_path / "b.gz").read_bytes()


class _NonSeekable(io.RawIOBase):
    def __init__(self, data):
        self._buf = io.BytesIO(data)

    def readable(self):
        return True

    def readinto(self, b):
        return self._buf.readinto(b)


@pytest.mark.parametrize("compress", [False, True])
def test_file_objects(compress):
    arr = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    data = header(0x0D, arr.shape) + arr.astype(">f4").tobytes()
    if compress:
        data = gzip.compress(data)
    np.testing.assert_array_equal(read_idx(io.BytesIO(data)), arr)
    np.testing.assert_array_equal(read_idx(_NonSeekable(data)), arr)
    with pytest.raises(FileFormatError):
        read_idx(_NonSeekable(data[:-3] if not compress else gzip.compress(
            gzip.decompress(data)[:-3])))


def _bad(tmp_path, data, *, compress=False, **kw):
    path = tmp_path / "bad-file.idx"
    path.write_bytes(gzip.compress(data) if compress else data)
    with pytest.raises(FileFormatError) as info:
        read_idx(path, **kw)
    assert "bad-file.idx" in str(info.value)  # the message names the file
    return str(info.value)


@pytest.mark.parametrize("compress", [False, True])
def test_rejects_bad_files(tmp_path, compress):
    good = header(0x08, (2, 3)) + bytes(range(6))
    assert "two zero bytes" in _bad(tmp_path, b"\x01" + good[1:], compress=compress)
    assert "type code 0x0A" in _bad(tmp_path, good[:2] + b"\x0a" + good[3:], compress=compress)
    assert "rank 0" in _bad(tmp_path, b"\x00\x00\x08\x00", compress=compress)
    assert "rank 200" in _bad(tmp_path, b"\x00\x00\x08\xc8" + bytes(800), compress=compress)
    assert "truncated" in _bad(tmp_path, good[:-1], compress=compress)
    assert "truncated" in _bad(tmp_path, good[:9], compress=compress)  # inside the dimensions
    assert "trailing" in _bad(tmp_path, good + b"\x00", compress=compress)
    assert "empty" in _bad(tmp_path, b"", compress=compress)


def test_rejects_corrupt_gzip(tmp_path):
    data = gzip.compress(header(0x08, (100,)) + bytes(100))
    msg = _bad(tmp_path, data[:12] + bytes(len(data) - 12))
    assert "gzip" in msg
    assert "gzip" in _bad(tmp_path, data[:-10])  # stream cut short


@pytest.mark.parametrize("compress", [False, True])
def test_huge_header_rejected_without_allocating(tmp_path, compress):
    # Promises 25e9 float32 values = 100 GB in a file of a few bytes.
    data = header(0x0D, (50_000, 500_000)) + bytes(64)
    path = tmp_path / "huge.idx"
    path.write_bytes(gzip.compress(data) if compress else data)
    for max_bytes in (None, 1 << 50):  # the default cap, and no effective cap at all
        kw = {} if max_bytes is None else {"max_bytes": max_bytes}
        tracemalloc.start()
        t0 = time.perf_counter()
        try:
            with pytest.raises(FileFormatError, match="100000000000 bytes|truncated"):
                read_idx(path, **kw)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 4 << 20, f"peak allocation {peak} bytes"
        assert time.perf_counter() - t0 < 2.0


def test_max_bytes_cap(tmp_path):
    write_idx(tmp_path / "a.idx", np.zeros(1000, dtype=np.uint8))
    assert read_idx(tmp_path / "a.idx", max_bytes=1000).shape == (1000,)
    with pytest.raises(FileFormatError, match="max_bytes=999"):
        read_idx(tmp_path / "a.idx", max_bytes=999)


def test_zero_sized_dimension(tmp_path):
    write_idx(tmp_path / "e.idx", np.zeros((0, 28, 28), dtype=np.uint8))
    assert read_idx(tmp_path / "e.idx").shape == (0, 28, 28)


def test_write_rejects_unsupported(tmp_path):
    with pytest.raises(DataTypeError, match="int64"):
        write_idx(tmp_path / "x.idx", np.zeros(3, dtype=np.int64))
    with pytest.raises(DataTypeError, match="bool"):
        write_idx(tmp_path / "x.idx", np.zeros(3, dtype=bool))
    with pytest.raises(InvalidDataError, match="ndim=0"):
        write_idx(tmp_path / "x.idx", np.uint8(3))
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_keeps_old_file_on_error(tmp_path):
    target = tmp_path / "f.bin"
    atomic_write_bytes(target, b"old")
    with pytest.raises(RuntimeError):
        with atomic_write(target) as fh:
            fh.write(b"partial new")
            raise RuntimeError("disk on fire")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["f.bin"]  # no temporary file left behind
    atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new"
    assert os.listdir(tmp_path) == ["f.bin"]
    # Same permissions a plain open() would give, not mkstemp's 0600.
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask
