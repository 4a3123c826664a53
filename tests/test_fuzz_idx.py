"""Property tests: whatever bytes read_idx is given, it returns an array or raises FileFormatError."""
import gzip
import io

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlpnumpy.datasets import read_idx
from mlpnumpy.errors import FileFormatError

SETTINGS = settings(max_examples=200, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def _valid(code=0x08, dims=(2, 3)):
    dtype = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[code]
    head = bytes([0, 0, code, len(dims)]) + np.asarray(dims, dtype=">u4").tobytes()
    return head + np.arange(int(np.prod(dims)), dtype=dtype).tobytes()


def _check(data: bytes) -> None:
    try:
        out = read_idx(io.BytesIO(data), max_bytes=1 << 20)
    except FileFormatError:
        return
    assert isinstance(out, np.ndarray)
    assert out.nbytes <= 1 << 20


@SETTINGS
@given(st.binary(max_size=300))
def test_random_bytes(data):
    _check(data)
    _check(gzip.compress(data))


@SETTINGS
@given(st.sampled_from([0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E]),
       st.lists(st.integers(0, 4), min_size=1, max_size=4),
       st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=6),
       st.integers(-40, 40), st.booleans())
def test_mutated_valid_files(code, dims, flips, cut, compress):
    data = bytearray(_valid(code, tuple(dims)))
    for pos, value in flips:
        if data:
            data[pos % len(data)] = value
    data = bytes(data[:cut] if cut < 0 else data + bytes(cut))
    _check(gzip.compress(data) if compress else data)


@SETTINGS
@given(st.binary(min_size=1, max_size=40), st.integers(0, 200))
def test_damaged_gzip(noise, where):
    packed = bytearray(gzip.compress(_valid(0x0C, (3, 5))))
    where %= len(packed)
    packed[where:where + len(noise)] = noise
    _check(bytes(packed))


def test_unmutated_file_reads():
    # Keeps the properties honest: the generator's valid files really do parse.
    assert read_idx(io.BytesIO(_valid(0x0E, (2, 2)))).tolist() == [[0.0, 1.0], [2.0, 3.0]]
    with pytest.raises(FileFormatError):
        read_idx(io.BytesIO(_valid()[:-1]))


@SETTINGS
@given(st.lists(st.integers(0, 6), min_size=1, max_size=4), st.lists(st.integers(0, 6), min_size=1, max_size=4),
       st.booleans(), st.integers(0, 64))
def test_max_shape_bounds_every_file(dims, bound, compress, extra):
    # issue 19: a header's shape is checked against the data set's before any data is read, gzip or not
    data = _valid(0x08, tuple(dims)) + bytes(extra)
    try:
        out = read_idx(io.BytesIO(gzip.compress(data) if compress else data), max_shape=tuple(bound))
    except FileFormatError as exc:
        fits = len(dims) == len(bound) and all(d <= b for d, b in zip(dims, bound))
        assert not fits or extra, exc  # refused only when too large, or with trailing bytes
        return
    assert len(out.shape) == len(bound) and all(d <= b for d, b in zip(out.shape, bound))
