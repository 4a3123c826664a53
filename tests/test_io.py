"""Model files and checkpoints: bit-exact round trips, hostile files rejected cheaply, exact resume."""
import json
import tracemalloc
import zipfile

import numpy as np
import pytest

from mlpnumpy import MLP, io
from mlpnumpy.datasets import load
from mlpnumpy.errors import FileFormatError
from mlpnumpy.datasets.preprocessing import Standardizer
from mlpnumpy.optim.schedules import CosineAnnealingLR, OneCycleLR


@pytest.fixture(scope="module")
def digits():
    return load("digits")


def _model(dtype=np.float32, **kw):
    return MLP([64, 24, 16, 10], seed=3, dtype=dtype, **kw)


def _same(a, b):
    wa, wb = a.get_weights(), b.get_weights()
    return len(wa) == len(wb) and all(x.dtype == y.dtype and np.array_equal(x, y) for x, y in zip(wa, wb))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kw", [{}, {"batch_norm": True}, {"dropout": 0.3, "batch_norm": True}])
def test_round_trip_is_bit_exact(tmp_path, digits, dtype, kw):
    m = _model(dtype, **kw)
    m.preprocessor = Standardizer().fit(digits.X_train)
    m.class_names = [f"digit {c}" for c in digits.class_names]
    m.metadata = {"image_shape": [8, 8], "pixel_max": 1.0}
    m.fit(digits.X_train[:300], digits.y_train[:300], epochs=2, optimizer="adam", verbose=0)
    path = tmp_path / "m.npz"
    m.save(path)
    m2 = io.load_model(path)
    assert _same(m, m2)
    assert m2.dtype == np.dtype(dtype) and m2.get_config() == m.get_config()
    assert m2.class_names == m.class_names and m2.metadata == m.metadata
    np.testing.assert_array_equal(m2.preprocessor.mean_, m.preprocessor.mean_)
    np.testing.assert_array_equal(m2.preprocessor.scale_, m.preprocessor.scale_)
    p1, p2 = m.predict_proba(digits.X_test), m2.predict_proba(digits.X_test)
    assert p1.dtype == p2.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(p1, p2)
    # plain numpy can read it without pickle, one array per entry
    with np.load(path, allow_pickle=False) as z:
        assert "layer0.W" in z.files and "preprocessor.mean" in z.files
        meta = json.loads(z["__mlpnumpy__"].tobytes())
    assert meta["format"] == "mlpnumpy-model" and meta["version"] == 1
    assert meta["n_params"] == m.count_params()


def test_mlpnumpy_load_and_no_temp_files_left(tmp_path):
    import mlpnumpy
    m = _model()
    m.save(tmp_path / "m.npz")
    assert _same(m, mlpnumpy.load(tmp_path / "m.npz"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]


# ------------------------------------------------------------------------------ hostile files
def _rewrite(src, dst, *, drop=(), add=None, replace=None):
    """Copy the archive ``src`` to ``dst`` with entries dropped, added or replaced (by key)."""
    replace = replace or {}
    with zipfile.ZipFile(src) as zin:
        assert {k + ".npy" for k in [*drop, *replace]} <= set(zin.namelist())
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            key = info.filename[:-4]
            if key in drop:
                continue
            if key in replace:
                with zout.open(info.filename, "w") as f:
                    np.lib.format.write_array(f, replace[key], allow_pickle=True)
            else:
                zout.writestr(info, zin.read(info))
        for key, arr in (add or {}).items():
            with zout.open(key + ".npy", "w") as f:
                np.lib.format.write_array(f, arr, allow_pickle=True)


def _meta_array(meta) -> np.ndarray:
    return np.frombuffer(json.dumps(meta).encode(), np.uint8)


@pytest.fixture
def saved(tmp_path):
    m = _model(batch_norm=True)
    path = tmp_path / "good.npz"
    m.save(path)
    with np.load(path) as z:
        meta = json.loads(z["__mlpnumpy__"].tobytes())
    return path, meta


def _config_with(meta, **changes):
    meta = json.loads(json.dumps(meta))
    for k, v in changes.items():
        meta[k] = v
    return meta


@pytest.mark.parametrize("case", [
    "not_zip", "truncated", "empty", "missing_array", "extra_array", "wrong_shape", "wrong_dtype",
    "int_dtype", "object_dtype", "unknown_version", "json_list", "json_garbage", "unknown_layer",
    "huge_layer", "no_meta", "other_format", "shape_lies", "bad_preprocessor", "non_npy_entry",
])
def test_hostile_files_raise_file_format_error(tmp_path, saved, case):
    good, meta = saved
    bad = tmp_path / "bad.npz"
    cfg = meta["config"]
    if case == "not_zip":
        bad.write_bytes(b"import os; os.system('echo pwned')\n" * 10)
    elif case == "truncated":
        data = good.read_bytes()
        bad.write_bytes(data[: len(data) // 2])
    elif case == "empty":
        bad.write_bytes(b"")
    elif case == "missing_array":
        _rewrite(good, bad, drop={"layer0.W"})
    elif case == "extra_array":
        _rewrite(good, bad, add={"layer9.W": np.zeros(3, np.float32)})
    elif case == "wrong_shape":
        _rewrite(good, bad, replace={"layer0.W": np.zeros((64, 23), np.float32)})
    elif case == "wrong_dtype":
        _rewrite(good, bad, replace={"layer0.W": np.zeros((64, 24), np.float64)})
    elif case == "int_dtype":
        _rewrite(good, bad, replace={"layer0.W": np.zeros((64, 24), np.int32)})
    elif case == "object_dtype":
        obj = np.empty((64, 24), dtype=object)
        _rewrite(good, bad, replace={"layer0.W": obj})
    elif case == "unknown_version":
        _rewrite(good, bad, replace={"__mlpnumpy__": _meta_array(_config_with(meta, version=99))})
    elif case == "json_list":
        _rewrite(good, bad, replace={"__mlpnumpy__": _meta_array([1, 2, 3])})
    elif case == "json_garbage":
        _rewrite(good, bad, replace={"__mlpnumpy__": np.frombuffer(b"{not json", np.uint8)})
    elif case == "unknown_layer":
        cfg2 = json.loads(json.dumps(cfg))
        cfg2["layers"][0]["type"] = "os.system"
        _rewrite(good, bad, replace={"__mlpnumpy__": _meta_array(_config_with(meta, config=cfg2))})
    elif case == "huge_layer":
        cfg2 = json.loads(json.dumps(cfg))
        cfg2["layers"][0]["out_features"] = 10**12
        _rewrite(good, bad, replace={"__mlpnumpy__": _meta_array(_config_with(meta, config=cfg2))})
    elif case == "no_meta":
        _rewrite(good, bad, drop={"__mlpnumpy__"})
    elif case == "other_format":
        _rewrite(good, bad, replace={"__mlpnumpy__": _meta_array(_config_with(meta, format="keras"))})
    elif case == "shape_lies":
        # a .npy header promising far more data than the entry holds
        data = bytearray(good.read_bytes())
        i = data.index(b"'shape': (64, 24)")
        data[i:i + 17] = b"'shape': (64, 99)"
        bad.write_bytes(bytes(data))
    elif case == "bad_preprocessor":
        _rewrite(good, bad, replace={"__mlpnumpy__": _meta_array(_config_with(
            meta, preprocessor={"type": "Standardizer"}))})
    elif case == "non_npy_entry":
        _rewrite(good, bad)
        with zipfile.ZipFile(bad, "a") as z:
            z.writestr("payload.pkl", b"cos\nsystem\n")
    with pytest.raises(FileFormatError):
        io.load_model(bad)


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        io.load_model(tmp_path / "nope.npz")


def test_header_promising_100_gb_is_rejected_cheaply(tmp_path, saved):
    good, _ = saved
    bad = tmp_path / "bomb.npz"
    with zipfile.ZipFile(good) as zin, zipfile.ZipFile(bad, "w") as zout:
        for info in zin.infolist():
            zout.writestr(info, zin.read(info))
        for zinfo in zout.filelist:
            if zinfo.filename == "layer0.W.npy":
                zinfo.file_size = 100 * 2**30  # the central directory now promises 100 GB
    with zipfile.ZipFile(bad) as z:
        assert max(i.file_size for i in z.infolist()) == 100 * 2**30
    tracemalloc.start()
    try:
        with pytest.raises(FileFormatError, match="declare"):
            io.load_model(bad)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 * 2**20


# ------------------------------------------------------------------------------ checkpoints
def _train(model, X, y, epochs, Xv, yv, opt=None, sched=None):
    return model.fit(X, y, epochs=epochs, batch_size=32, optimizer=opt, lr_schedule=sched,
                     validation_data=(Xv, yv), verbose=0)


@pytest.mark.parametrize("recipe", ["sgd_momentum_cosine", "adam_onecycle"])
def test_checkpoint_resume_is_bit_identical(tmp_path, digits, recipe):
    X, y = digits.X_train[:400], digits.y_train[:400]
    Xv, yv = digits.X_test[:100], digits.y_test[:100]
    N, k = 5, 2

    def fresh():
        from mlpnumpy.optim.optimizers import SGD, Adam
        m = MLP([64, 32, 10], seed=7, dropout=0.2, batch_norm=True)
        m.preprocessor = Standardizer().fit(X)
        if recipe == "sgd_momentum_cosine":
            return m, SGD(lr=0.05, momentum=0.9, weight_decay=1e-4), CosineAnnealingLR(T_max=N)
        return m, Adam(lr=3e-3), OneCycleLR(max_lr=3e-3, total_steps=N * 13)

    straight, opt, sched = fresh()
    _train(straight, X, y, N, Xv, yv, opt, sched)

    first, opt, sched = fresh()
    _train(first, X, y, k, Xv, yv, opt, sched)
    io.save_checkpoint(first, tmp_path / "ckpt.npz", extra={"note": "half way"})
    del first
    resumed, state = io.load_checkpoint(tmp_path / "ckpt.npz")
    assert state["extra"] == {"note": "half way"} and resumed.epochs_trained == k
    resumed.rng = resumed.rng  # the generator object is the one dropout holds
    _train(resumed, X, y, N - k, Xv, yv, None, resumed.lr_schedule)
    assert resumed.epochs_trained == N
    assert _same(straight, resumed)
    assert straight.optimizer.lr == resumed.optimizer.lr


@pytest.mark.parametrize("kind", ["sgd", "adam"])
def test_a_checkpoint_keeps_the_parameter_groups(tmp_path, digits, kind):
    """Resuming with per-layer rates and decay goes on exactly as the uninterrupted run (before, the
    groups were dropped: every layer resumed at the base rate)."""
    from mlpnumpy.optim.optimizers import SGD, Adam
    X, y = digits.X_train[:300], digits.y_train[:300]
    Xv, yv = digits.X_test[:60], digits.y_test[:60]

    def fresh():
        m = MLP([64, 32, 16, 10], seed=3)
        opt = SGD(lr=0.05, momentum=0.9) if kind == "sgd" else Adam(lr=3e-3)
        opt.add_param_group({"params": m.layers[0].parameters(), "lr_mult": 0.1})
        opt.add_param_group({"params": m.layers[2].parameters(), "weight_decay": 1e-2})
        return m, opt

    straight, opt = fresh()
    _train(straight, X, y, 4, Xv, yv, opt)
    first, opt = fresh()
    _train(first, X, y, 2, Xv, yv, opt)
    io.save_checkpoint(first, tmp_path / "g.npz")
    resumed, _ = io.load_checkpoint(tmp_path / "g.npz")
    groups = resumed.optimizer.param_groups
    assert [g.get("lr_mult") for g in groups] == [pytest.approx(0.1), None]
    assert [[id(p) for p in g["params"]] for g in groups] == [[id(p) for p in resumed.layers[i].parameters()]
                                                              for i in (0, 2)]
    assert groups[1]["weight_decay"] == 1e-2
    _train(resumed, X, y, 2, Xv, yv)
    assert _same(straight, resumed)
    # a group naming a parameter the model does not have is refused, as is any other bad entry
    meta = json.loads(np.load(tmp_path / "g.npz")["__mlpnumpy__"].tobytes())
    for bad_groups in ([{"params": [99]}], [{"params": [0], "lr_mult": "x"}], [{"params": [0], "momentum": 1}],
                       {"params": [0]}):
        meta["optimizer"]["param_groups"] = bad_groups
        _rewrite(tmp_path / "g.npz", tmp_path / "bad.npz",
                 replace={"__mlpnumpy__": np.frombuffer(json.dumps(meta).encode(), np.uint8)})
        with pytest.raises(FileFormatError, match="param"):
            io.load_checkpoint(tmp_path / "bad.npz")


def test_checkpoint_rejects_mismatched_optimizer_state(tmp_path, digits):
    m = MLP([64, 8, 10], seed=0)
    m.fit(digits.X_train[:64], digits.y_train[:64], epochs=1, optimizer="adam", verbose=0)
    io.save_checkpoint(m, tmp_path / "c.npz")
    bad = tmp_path / "bad.npz"
    with zipfile.ZipFile(tmp_path / "c.npz") as z:
        key = next(n[:-4] for n in z.namelist() if n.startswith("optimizer.state.0."))
    _rewrite(tmp_path / "c.npz", bad, replace={key: np.zeros((3, 3), np.float32)})
    with pytest.raises(FileFormatError):
        io.load_checkpoint(bad)
    # a checkpoint is also a model file
    assert _same(io.load_model(tmp_path / "c.npz"), m)
    # but a model file is not a checkpoint
    m.save(tmp_path / "m.npz")
    with pytest.raises(FileFormatError, match="format"):
        io.load_checkpoint(tmp_path / "m.npz")
