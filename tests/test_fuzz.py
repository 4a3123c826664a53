"""Mutation fuzzing of everything that reads files from strangers: the model loader, the IDX reader
and the CSV/NPY/NPZ reader. A corrupted file may load (if the damage is harmless) or raise one of our
documented exceptions (:class:`mlpnumpy.errors.MLPNumpyError` subclasses); anything else (a crash, a
bare ValueError from deep inside NumPy, a MemoryError) fails.

Each target runs for ``MLPNUMPY_FUZZ_SECONDS`` seconds (default 5; `.ci/run` sets 20), with a seeded
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
    fuzz(seeds, read_idx, 2, tmp_path, ".idx", budget=BUDGET / 2)

    def bounded(p):  # the official-shape bound (issue 19): never more than max_shape, gzip or not
        out = read_idx(p, max_shape=(2, 3, 4))
        assert out.ndim == 3 and all(d <= m for d, m in zip(out.shape, (2, 3, 4)))
    fuzz(seeds, bounded, 7, tmp_path, ".idx", budget=BUDGET / 2)


def test_fuzz_model_loader(tmp_path):
    io_mod = pytest.importorskip("mlpnumpy.io.model_files")
    from mlpnumpy import MLP
    from mlpnumpy.datasets.preprocessing import Standardizer
    seeds = []
    for i, model in enumerate([MLP([4, 5, 3], seed=0), MLP([4, 6, 6, 2], "tanh", seed=1, batch_norm=True, dropout=0.1)]):
        model.preprocessor = Standardizer().fit(np.random.default_rng(i).standard_normal((10, 4)))
        p = tmp_path / f"m{i}.npz"
        io_mod.save_model(model, p)
        seeds.append(p.read_bytes())
    fuzz(seeds, io_mod.load_model, 3, tmp_path, ".npz")


# ------------------------------------------------------------------- semantic mutations (issue 19)
# Byte flips mostly break the zip or the JSON. These mutate what a valid file *says*: a JSON value
# replaced by a hostile one, an array filled with NaN, infinity or huge numbers. A file that loads
# must then make a model that predicts finite numbers and whose names and metadata fit its outputs.
_HOSTILE = [None, True, -1, 0, 1, 2.5, -5, 1e308, float("nan"), float("inf"), 2 ** 70, "", "abc",
            "\x1b[2J", [], [1, 2], [40000, 40000], ["a"], {}, {"x": 1}]


def _leaves(obj, path=()):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _leaves(v, (*path, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _leaves(v, (*path, i))
    yield path


def _set(obj, path, value):
    for k in path[:-1]:
        obj = obj[k]
    obj[path[-1]] = value


def _semantic_mutant(meta, arrays, rng):
    import copy
    meta, arrays = copy.deepcopy(meta), {k: v.copy() for k, v in arrays.items()}
    for _ in range(rng.integers(1, 3)):
        if rng.random() < 0.6 or not arrays:
            paths = [p for p in _leaves(meta) if p]
            _set(meta, paths[rng.integers(len(paths))], copy.deepcopy(_HOSTILE[rng.integers(len(_HOSTILE))]))
        else:
            key = sorted(arrays)[rng.integers(len(arrays))]
            a = arrays[key]
            if a.size and a.dtype.kind == "f":
                a.reshape(-1)[rng.integers(a.size)] = [np.nan, np.inf, -np.inf, 3e38, -1e30][rng.integers(5)]
    return meta, arrays


def _semantic_fuzz(seed_paths, check, seed, tmp_path, budget):
    import json
    import zipfile
    rng = np.random.default_rng(seed)
    seeds = []
    for p in seed_paths:
        with np.load(p, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        seeds.append((json.loads(arrays.pop("__mlpnumpy__").tobytes()), arrays))
    path = tmp_path / "semantic.npz"
    deadline = time.monotonic() + budget
    runs = 0
    while time.monotonic() < deadline:
        meta, arrays = _semantic_mutant(*seeds[rng.integers(len(seeds))], rng)
        blob = np.frombuffer(json.dumps(meta).encode(), np.uint8)
        with zipfile.ZipFile(path, "w") as zf:
            for key, arr in [("__mlpnumpy__", blob), *arrays.items()]:
                with zf.open(key + ".npy", "w") as f:
                    np.lib.format.write_array(f, arr, allow_pickle=False)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                check(path)
        except MLPNumpyError:
            pass
        except Exception as exc:  # noqa: BLE001 - this is what the fuzzer hunts
            raise AssertionError(f"seed={seed} run={runs}: {type(exc).__name__}: {exc}\nmeta={meta}") from exc
        runs += 1
    assert runs > 10, f"only {runs} inputs in {budget}s"


def _model_seeds(tmp_path, checkpoint=False):
    from mlpnumpy import MLP, io as io_mod
    from mlpnumpy.datasets.preprocessing import Standardizer
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((24, 4)).astype(np.float32), rng.integers(0, 3, 24)
    paths = []
    for i, (model, opt) in enumerate([(MLP([4, 5, 3], "elu", seed=0), "adam"),
                                      (MLP([4, 6, 3], "tanh", seed=1, batch_norm=True, dropout=0.1), "sgd")]):
        model.preprocessor = Standardizer().fit(X)
        model.class_names = ["a", "b", "c"]
        model.metadata = {"image_shape": [2, 2], "pixel_max": 1.0, "input_range": [0.0, 1.0]}
        p = tmp_path / f"seed{i}.npz"
        if checkpoint:
            model.fit(X, y, epochs=2, batch_size=8, optimizer=opt, lr_schedule="cosine", verbose=0)
            io_mod.save_checkpoint(model, p, extra={"config": {"epochs": 4}})
        else:
            io_mod.save_model(model, p)
        paths.append(p)
    return paths, X, y


def _check_loaded(model, X):
    # Finite outputs can be promised only for inputs the file vouches for (any finite weights
    # overflow for some input): the ones the loader probes, 0 and +-1 after preprocessing and the
    # ends of the recorded input range.
    from mlpnumpy.io._filechecks import probe_inputs
    with np.errstate(all="ignore"):
        out = model.forward(probe_inputs(model))
    assert np.isfinite(out).all(), "a loaded model predicts non-finite numbers"
    if model.class_names is not None:
        assert len(model.class_names) in ({model.n_outputs} | ({2} if model.n_outputs == 1 else set()))
    shape = (model.metadata or {}).get("image_shape")
    if shape is not None:
        assert int(np.prod(shape)) == model.n_features_in


def test_fuzz_model_semantics(tmp_path):
    from mlpnumpy import io as io_mod
    paths, X, _ = _model_seeds(tmp_path)
    _semantic_fuzz(paths, lambda p: _check_loaded(io_mod.load_model(p), X), 4, tmp_path, BUDGET / 2)


def test_fuzz_checkpoint_semantics(tmp_path):
    from mlpnumpy import io as io_mod
    paths, X, y = _model_seeds(tmp_path, checkpoint=True)

    def check(p):
        model, state = io_mod.load_checkpoint(p)
        _check_loaded(model, X)
        model.fit(X, y, epochs=1, batch_size=8, optimizer=None,
                  lr_schedule=model.lr_schedule, verbose=0)  # resumes, or raises our own error
        assert all(np.isfinite(w).all() for w in model.get_weights())
    _semantic_fuzz(paths, check, 5, tmp_path, BUDGET / 2)


def test_fuzz_csv_chunks_and_limits(tmp_path):
    from mlpnumpy.datasets import load_array_file
    rng = np.random.default_rng(1)
    wide = ",".join(f"{v:.3f}" for v in rng.standard_normal(3000)) + ",1\n"
    quoted = 'a,"b,c",label\n1,"2",0\n"3\n",4,1\n'
    seeds = [wide.encode(), quoted.encode(), ("x,y,label\n" + "1,2,0\n3,4,1\n" * 50).encode()]

    def target(p):
        X, y = load_array_file(p, max_bytes=1 << 16)
        assert X.nbytes <= 1 << 16 and np.isfinite(X).all() and X.dtype == np.float32
        assert y is None or len(y) == len(X)
    fuzz(seeds, target, 6, tmp_path, ".csv", budget=BUDGET / 2)
