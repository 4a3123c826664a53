"""Mutation fuzzing of everything that reads files from strangers: the model loader, the IDX reader
and the CSV/NPY/NPZ reader. A corrupted file may load (if the damage is harmless) or raise one of our
documented exceptions (:class:`mlpnumpy.errors.MLPNumpyError` subclasses); anything else (a crash, a
bare ValueError from deep inside NumPy, a MemoryError) fails.

Each target runs for ``MLPNUMPY_FUZZ_SECONDS`` seconds (default 5; CI sets 60), with a seeded
generator, so a failure prints the seed and iteration that reproduce it.
"""
import io
import os
import time
import warnings

import numpy as np
import pytest

from mlpnumpy.errors import MLPNumpyError

BUDGET = float(os.environ.get("MLPNUMPY_FUZZ_SECONDS", "5"))


def mutate(data: bytes, rng: np.random.Generator) -> bytes:
    """One random corruption: flip bytes, cut, duplicate, insert, or overwrite with extremes."""
    b = bytearray(data)
    kind = rng.integers(6)
    if kind == 0 and b:                                   # flip a few bytes
        for _ in range(rng.integers(1, 8)):
            b[rng.integers(len(b))] = rng.integers(256)
    elif kind == 1 and b:                                 # truncate
        b = b[:rng.integers(len(b))]
    elif kind == 2 and b:                                 # duplicate a slice
        i, j = sorted(rng.integers(0, len(b), 2))
        b[j:j] = b[i:j]
    elif kind == 3:                                       # insert random bytes
        i = rng.integers(len(b) + 1)
        b[i:i] = rng.integers(0, 256, rng.integers(1, 64), dtype=np.uint8).tobytes()
    elif kind == 4 and len(b) > 8:                        # 0xFF run: huge sizes in headers
        i = rng.integers(len(b) - 4)
        b[i:i + 4] = b"\xff\xff\xff\x7f"
    else:                                                 # append garbage
        b += rng.integers(0, 256, rng.integers(1, 32), dtype=np.uint8).tobytes()
    return bytes(b)


def fuzz(seed_files: list[bytes], target, seed: int, tmp_path, suffix: str, budget: float = BUDGET):
    rng = np.random.default_rng(seed)
    path = tmp_path / f"fuzz{suffix}"
    deadline = time.monotonic() + budget
    runs = outcomes_ok = 0
    while time.monotonic() < deadline:
        data = seed_files[rng.integers(len(seed_files))]
        for _ in range(rng.integers(1, 4)):
            data = mutate(data, rng)
        path.write_bytes(data)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a loaded-but-odd file may warn; only exceptions matter
                target(path)
            outcomes_ok += 1
        except MLPNumpyError:
            pass
        except Exception as exc:  # noqa: BLE001 - this is what the fuzzer hunts
            raise AssertionError(f"seed={seed} run={runs}: {type(exc).__name__}: {exc}") from exc
        runs += 1
    assert runs > 20, f"only {runs} inputs in {budget}s"
    return runs, outcomes_ok


def test_fuzz_csv_npy_npz(tmp_path):
    from mlpnumpy.datasets import load_array_file
    rng = np.random.default_rng(0)
    X = rng.standard_normal((6, 3)).round(3)
    y = rng.integers(0, 3, 6)
    csv = "a,b,c,label\n" + "\n".join(",".join(map(str, [*r, l])) for r, l in zip(X, y))
    buf = io.BytesIO()
    np.save(buf, np.column_stack([X, y]))
    npy = buf.getvalue()
    buf = io.BytesIO()
    np.savez(buf, X=X, y=y)
    npz = buf.getvalue()
    for data, suffix in [(csv.encode(), ".csv"), (npy, ".npy"), (npz, ".npz")]:  # one budget shared
        fuzz([data], lambda p: load_array_file(p), 1, tmp_path, suffix, budget=BUDGET / 3)


def test_fuzz_idx(tmp_path):
    from mlpnumpy.datasets import read_idx, write_idx
    seeds = []
    for arr in [np.arange(24, dtype=np.uint8).reshape(2, 3, 4), np.linspace(0, 1, 10, dtype=np.float32),
                np.arange(-6, 6, dtype=np.int16).reshape(3, 4)]:
        for gz in (False, True):
            p = tmp_path / f"seed{len(seeds)}{'.gz' if gz else ''}"
            write_idx(p, arr)
            seeds.append(p.read_bytes())
    fuzz(seeds, read_idx, 2, tmp_path, ".idx")


def test_fuzz_model_loader(tmp_path):
    io_mod = pytest.importorskip("mlpnumpy.io")
    from mlpnumpy import MLP
    from mlpnumpy.preprocessing import Standardizer
    seeds = []
    for i, model in enumerate([MLP([4, 5, 3], seed=0), MLP([4, 6, 6, 2], "tanh", seed=1, batch_norm=True, dropout=0.1)]):
        model.preprocessor = Standardizer().fit(np.random.default_rng(i).standard_normal((10, 4)))
        p = tmp_path / f"m{i}.npz"
        io_mod.save_model(model, p)
        seeds.append(p.read_bytes())
    fuzz(seeds, io_mod.load_model, 3, tmp_path, ".npz")
