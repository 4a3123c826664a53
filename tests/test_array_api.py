"""The reference path on any Array API library (issue 16): the same tests over NumPy, array_api_strict
(its default device, its fake ``device1`` and its ``no_float64`` device, which catch arrays made on the
wrong device and silent float64) and PyTorch CPU tensors, each compared with NumPy's results."""
from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mlpnumpy import MLP
from mlpnumpy._array_api import to_host, uniform
from mlpnumpy.errors import DataTypeError, InvalidArgumentError, InvalidDataError
from mlpnumpy.nn.gradcheck import gradcheck
from mlpnumpy.training.internals import InternalsTracker

ROOT = Path(__file__).resolve().parents[1]


def _strict(device_name=None):
    xs = pytest.importorskip("array_api_strict")
    dev = None if device_name is None else xs.Device(device_name)
    return lambda a: xs.asarray(np.asarray(a), device=dev)


def _torch():
    torch = pytest.importorskip("torch")
    return lambda a: torch.asarray(np.asarray(a))


LIBS = {
    "numpy": lambda: np.asarray,
    "strict": lambda: _strict(),
    "strict-device1": lambda: _strict("device1"),
    "strict-no_float64": lambda: _strict("no_float64"),
    "torch-cpu": _torch,
}
F64_LIBS = [k for k in LIBS if k != "strict-no_float64"]


@pytest.fixture(params=list(LIBS))
def lib(request):
    return request.param, LIBS[request.param]()


def _data(n=96, d=6, k=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64) + (X[:, 1] > 0.5)
    return X, y


def _kind(a) -> str:
    return type(a).__module__.split(".")[0]


@pytest.mark.parametrize("opt", ["sgd", "adam", "rmsprop"])
def test_fit_predict_evaluate_match_numpy(lib, opt):
    name, conv = lib
    X, y = _data()
    ref = MLP([6, 8, 3], seed=3, batch_norm=True, dropout=0.0, path="reference")
    h_ref = ref.fit(X, y, epochs=3, batch_size=20, optimizer=opt, lr=0.05, verbose=0)
    m = MLP([6, 8, 3], seed=3, batch_norm=True)
    h = m.fit(conv(X), conv(y), epochs=3, batch_size=20, optimizer=opt, lr=0.05, verbose=0)
    np.testing.assert_allclose(h.history["loss"], h_ref.history["loss"], rtol=2e-5)
    assert h.history["accuracy"] == pytest.approx(h_ref.history["accuracy"])
    for a, b in zip(m.get_weights(), ref.get_weights()):
        np.testing.assert_allclose(to_host(a), b, rtol=1e-4, atol=1e-5)
    pred = m.predict(conv(X))
    assert _kind(pred) == _kind(conv(X))  # same kind of array back
    np.testing.assert_array_equal(to_host(pred), ref.predict(X))
    np.testing.assert_allclose(to_host(m.predict_proba(conv(X))), ref.predict_proba(X), rtol=1e-4, atol=1e-6)
    assert m.evaluate(conv(X), conv(y)) == ref.evaluate(X, y)
    if name != "numpy":
        assert m.device == m.placement.device and str(m.placement) != "numpy on cpu"


@pytest.mark.parametrize("loss", ["mse", "binary_cross_entropy", "huber"])
def test_other_losses_and_validation_match_numpy(lib, loss):
    name, conv = lib
    X, y = _data()
    Y = np.stack([y == 1, y == 2], axis=1).astype(np.float32)
    ref = MLP([6, 8, 2], seed=4, loss=loss, activations="tanh", path="reference")
    h_ref = ref.fit(X, Y, epochs=2, batch_size=32, validation_split=0.25, verbose=0, clip_grad_norm=0.5)
    m = MLP([6, 8, 2], seed=4, loss=loss, activations="tanh")
    h = m.fit(conv(X), conv(Y), epochs=2, batch_size=32, validation_split=0.25, verbose=0, clip_grad_norm=0.5)
    for key in h_ref.history:
        if key != "seconds":
            np.testing.assert_allclose(h.history[key], h_ref.history[key], rtol=1e-4, atol=1e-6, err_msg=key)


OPTIMIZERS = {
    "sgd-nesterov-wd": lambda: __import__("mlpnumpy").optimizers.SGD(0.05, momentum=0.9, nesterov=True,
                                                                    weight_decay=1e-3),
    "adamw-amsgrad": lambda: __import__("mlpnumpy").optimizers.AdamW(0.01, amsgrad=True),
    "rmsprop-centered": lambda: __import__("mlpnumpy").optimizers.RMSprop(0.01, momentum=0.5, centered=True),
    "adagrad": lambda: __import__("mlpnumpy").optimizers.Adagrad(0.05, lr_decay=0.01),
}


@pytest.mark.parametrize("schedule", ["onecycle", "plateau"])
def test_every_optimizer_schedule_l1_and_sample_weight_match_numpy(lib, schedule):
    name, conv = lib
    X, y = _data()
    w = np.random.default_rng(1).random(96).astype(np.float32)
    for opt in OPTIMIZERS.values():
        kw = dict(epochs=3, batch_size=20, lr_schedule=schedule, verbose=0, l1=1e-3)
        ref = MLP([6, 8, 3], seed=7, path="reference")
        h_ref = ref.fit(X, y, sample_weight=w, optimizer=opt(), **kw)
        m = MLP([6, 8, 3], seed=7)
        h = m.fit(conv(X), conv(y), sample_weight=conv(w), optimizer=opt(), **kw)
        np.testing.assert_allclose(h.history["loss"], h_ref.history["loss"], rtol=2e-5)
        np.testing.assert_allclose(h.history["lr"], h_ref.history["lr"], rtol=1e-12)
        np.testing.assert_allclose(to_host(m.layers[-1].W), ref.layers[-1].W, rtol=1e-4, atol=1e-5)


def test_no_host_round_trip_per_batch(monkeypatch):
    """On a device, fit brings numbers back per epoch, not per batch: every conversion of an
    array_api_strict array to a Python number or a NumPy array is counted."""
    xs = pytest.importorskip("array_api_strict")
    Array = type(xs.asarray(0.0))
    calls = {"n": 0}
    for meth in ("__float__", "__int__", "__bool__", "__index__", "__array__", "__dlpack__"):
        original = getattr(Array, meth)

        def counted(self, *a, _original=original, **k):
            calls["n"] += 1
            return _original(self, *a, **k)
        monkeypatch.setattr(Array, meth, counted)
    X, y = _data()
    dev1 = LIBS["strict-device1"]()
    counts = []
    for epochs in (2, 4):
        m = MLP([6, 8, 3], seed=0, dropout=0.2)
        calls["n"] = 0
        m.fit(dev1(X), dev1(y), epochs=epochs, batch_size=4, optimizer="adam", verbose=1)  # 24 batches an epoch
        counts.append(calls["n"])
    per_epoch = (counts[1] - counts[0]) / 2
    # the epoch's loss and accuracy, and one finiteness check per weight array: none per batch
    assert per_epoch <= 2 + len(m.named_arrays()) < 24, counts


def test_dropout_masks_reproducible_and_same_on_every_library(lib):
    name, conv = lib
    X, y = _data()
    runs = []
    for _ in range(2):
        m = MLP([6, 16, 3], seed=5, dropout=0.3, path="reference")
        m.to(conv(X)) if name != "numpy" else None
        runs.append(m.fit(conv(X), conv(y), epochs=2, batch_size=32, verbose=0).history["loss"])
    assert runs[0] == runs[1]  # reproducible from the model's seed on the device
    if name == "numpy":
        return
    xs_u = to_host(uniform(__import__("array_api_compat").array_namespace(conv(X)), (50, 7), 1234))
    np_u = uniform(__import__("array_api_compat.numpy", fromlist=["x"]), (50, 7), 1234)
    np.testing.assert_array_equal(xs_u, np_u)  # the device's numbers are the same on every library
    assert 0.4 < np_u.mean() < 0.6 and np_u.min() >= 0 and np_u.max() < 1


@pytest.mark.parametrize("name", F64_LIBS)
def test_gradcheck_on_device(name):
    conv = LIBS[name]()
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(12, 4)), rng.integers(0, 3, 12)
    m = MLP([4, 5, 3], seed=1, dtype=np.float64, activations="tanh", batch_norm=True, dropout=0.2)
    if name != "numpy":
        m.to(conv(X))
    r = gradcheck(m, conv(X), conv(y), training=True)
    assert r.passed(1e-6), str(r)
    # a wrong derivative is caught on the device too
    from mlpnumpy.nn.activations import Tanh

    class BadTanh(Tanh):
        def backward(self, grad_a, a, z=None):
            return super().backward(grad_a, a, z) * 1.1

    bad = MLP([4, 5, 3], seed=1, dtype=np.float64, activations=[BadTanh(), "identity"])
    if name != "numpy":
        bad.to(conv(X))
    assert not gradcheck(bad, conv(X), conv(y)).passed(1e-4)


def test_gradcheck_without_float64_names_the_dtypes():
    conv = LIBS["strict-no_float64"]()
    X, y = _data(12, 4)
    m = MLP([4, 5, 3], seed=1).to(conv(X))
    with pytest.raises(DataTypeError, match="supports float32.*finite differences need float64"):
        gradcheck(m, conv(X), conv(y))


def test_internals_tracker_on_device(lib):
    name, conv = lib
    X, y = _data()
    stats = []
    for c in (np.asarray, conv):
        m = MLP([6, 8, 3], seed=2, path="reference")
        t = InternalsTracker()
        m.fit(c(X), c(y), epochs=2, batch_size=32, verbose=0, callbacks=[t])
        stats.append(t.records["layer0"])
    for key, values in stats[0].items():
        np.testing.assert_allclose(stats[1][key], values, rtol=1e-3, atol=1e-6, err_msg=key)


def test_model_to_moves_optimizer_state_and_files_work(lib, tmp_path):
    name, conv = lib
    X, y = _data()
    ref = MLP([6, 8, 3], seed=6, path="reference")
    ref.fit(X, y, epochs=1, optimizer="adam", verbose=0)
    m = copy.deepcopy(ref).to(conv(X))  # trained state, Adam moments included, moved
    ref.fit(X, y, epochs=1, verbose=0)
    m.fit(conv(X), conv(y), epochs=1, verbose=0)
    np.testing.assert_allclose(to_host(m.layers[0].W), ref.layers[0].W, rtol=1e-4, atol=1e-6)
    m.save(tmp_path / "m.npz")  # from the device through a host copy
    from mlpnumpy.io.model_files import load_model
    back = load_model(tmp_path / "m.npz")
    np.testing.assert_allclose(back.predict_proba(X), to_host(m.predict_proba(conv(X))), rtol=1e-5, atol=1e-6)
    torch = pytest.importorskip("torch")
    from mlpnumpy.integrations.interop import to_torch
    with torch.no_grad():
        out = to_torch(m)(torch.asarray(X)).numpy()
    np.testing.assert_allclose(out, to_host(m.decision_function(conv(X))), rtol=1e-5, atol=1e-5)
    back.to("numpy")
    assert back.placement.is_numpy


def test_optimizer_state_and_divergence_stay_on_device(lib):
    name, conv = lib
    X, y = _data()
    m = MLP([6, 8, 3], seed=0)
    m.fit(conv(X), conv(y), epochs=1, optimizer="adam", verbose=0)
    sd = m.optimizer.state_dict()
    m.optimizer.load_state_dict(sd)  # what an interrupted epoch's restore does
    assert all(_kind(v) == _kind(conv(X)) for st in m.optimizer.state for v in st.values())
    before = [to_host(a).copy() for a in m.get_weights()]
    from mlpnumpy.errors import DivergenceError
    with pytest.raises(DivergenceError, match="back at the weights it had when the epoch began"):
        m.fit(conv(X * 1e30), conv(y), epochs=1, optimizer="sgd", lr=1e30, verbose=0)
    for a, b in zip(m.get_weights(), before):
        np.testing.assert_array_equal(to_host(a), b)
        assert _kind(a) == _kind(conv(X))


def test_mixing_libraries_or_devices_is_one_clear_error():
    X, y = _data()
    strict, dev1 = LIBS["strict"](), LIBS["strict-device1"]()
    m = MLP([6, 8, 3], seed=0).to(dev1(X))
    with pytest.raises(InvalidDataError, match=r"X lives on numpy on cpu but the model lives on "
                                               r"array_api_strict on .*device1"):
        m.predict(X)
    with pytest.raises(InvalidDataError, match=r"CPU_DEVICE.*device1"):
        m.fit(strict(X), strict(y), epochs=1, verbose=0)
    with pytest.raises(InvalidDataError, match=r"y lives on .*CPU_DEVICE.*device1"):
        m.fit(dev1(X), strict(y), epochs=1, verbose=0)
    torch = pytest.importorskip("torch")
    with pytest.raises(InvalidDataError, match="torch on cpu.*array_api_strict"):
        m.evaluate(torch.asarray(X), torch.asarray(y))
    # a trained NumPy model does not silently follow device data: it says how to move it
    t = MLP([6, 8, 3], seed=0)
    t.fit(X, y, epochs=1, verbose=0)
    with pytest.raises(InvalidDataError, match=r"model.to\(X\)"):
        t.fit(torch.asarray(X), torch.asarray(y), epochs=1, verbose=0)
    with pytest.raises(InvalidArgumentError, match="path='fast' runs on NumPy arrays"):
        MLP([6, 8, 3], seed=0, path="fast").fit(torch.asarray(X), torch.asarray(y), epochs=1, verbose=0)


def test_unsupported_dtype_names_the_dtypes_that_work():
    xs = pytest.importorskip("array_api_strict")
    X, _ = _data()
    nf = LIBS["strict-no_float64"]()
    with pytest.raises(DataTypeError, match="dtype=float64 is not supported by array_api_strict.*no_float64.*"
                                            "supports float32"):
        MLP([6, 8, 3], dtype=np.float64).to(xs, device=xs.Device("no_float64"))
    with pytest.raises(DataTypeError, match="float64 is not supported.*supports float32"):
        MLP([6, 8, 3], dtype=np.float64).fit(nf(X), nf(np.arange(96) % 3), epochs=1, verbose=0)
    # float32 works there, and nothing silently turns float64
    m = MLP([6, 8, 3], seed=0)
    m.to(nf(X))
    assert str(m.predict_proba(nf(X)).dtype).endswith("float32")


def test_model_to_accepts_a_library_and_its_device_spelling():
    torch = pytest.importorskip("torch")
    xs = pytest.importorskip("array_api_strict")
    X = torch.zeros(2, 3)
    m = MLP([3, 4, 2], seed=0).to(torch, device="cpu")  # a string, where tensors report torch.device
    assert _kind(m.predict(X)) == "torch"
    m.to("array_api_strict", device=xs.Device("device1"))
    assert m.predict(xs.zeros((2, 3), device=xs.Device("device1"))).device == xs.Device("device1")
    m.to(X, device="cpu")
    assert _kind(m.predict(X)) == "torch"
    assert m.to("numpy").placement.is_numpy and isinstance(m.predict(np.zeros((2, 3))), np.ndarray)
    with pytest.raises(InvalidArgumentError, match="not an importable array library"):
        m.to("no_such_array_library")


def test_auto_picks_fast_for_numpy_and_reference_otherwise():
    from mlpnumpy._kernels import resolve_path
    torch = pytest.importorskip("torch")
    assert resolve_path("auto", np.zeros(2)) == "fast"
    assert resolve_path("auto", torch.zeros(2)) == "reference"


def test_gpu_script_dry_run(capsys):
    """benchmarks/gpu.py's code, run on the CPU with tiny data (in this process: no second start-up)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("gpu_bench", ROOT / "benchmarks" / "gpu.py")
    gpu = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu)
    assert gpu.main(["--dry-run", "--epochs", "1"]) == 0
    r = capsys.readouterr()
    for what in ("mlpnumpy+numpy (cpu, ref)", "mlpnumpy+torch (cpu)", "torch native", "batch 128", "batch 4096",
                 "test acc"):
        assert what in r.out, (what, r.out)


_SKLEARN_SCRIPT = r"""
import os, sys, warnings
import numpy as np
import sklearn
from mlpnumpy._array_api import to_host
from mlpnumpy.sklearn import MLPClassifier, MLPRegressor
warnings.simplefilter("ignore")
libs = sys.argv[1:]
rng = np.random.default_rng(0)
X = rng.normal(size=(120, 5)).astype(np.float32)
y = (X[:, 0] > 0).astype(np.int64) + (X[:, 1] > 0.3)
yr = X[:, :2].sum(1).astype(np.float32)
kw = dict(hidden_layer_sizes=(8,), max_iter=4, random_state=0)
refs = [MLPClassifier(solver="sgd", learning_rate_init=0.1, **kw).fit(X, y),
        MLPClassifier(**kw).fit(X, y > 0), MLPRegressor(**kw).fit(X, yr)]
import array_api_strict as xs
convs = {"strict-device1": lambda a: xs.asarray(a, device=xs.Device("device1")),
         "strict-no_float64": lambda a: xs.asarray(a, device=xs.Device("no_float64"))}
try:
    import torch
    convs["torch-cpu"] = torch.asarray
except ImportError:
    pass
for name in libs:
    if name not in convs:
        print("SKIP", name); continue
    c = convs[name]
    with sklearn.config_context(array_api_dispatch=True):
        ests = [MLPClassifier(solver="sgd", learning_rate_init=0.1, **kw).fit(c(X), c(y)),
                MLPClassifier(**kw).fit(c(X), c((y > 0).astype(np.int64))), MLPRegressor(**kw).fit(c(X), c(yr))]
        for est, ref, target in zip(ests, refs, [y, (y > 0).astype(np.int64), yr]):
            assert type(est.coefs_[0]) is type(c(X)), type(est.coefs_[0])
            np.testing.assert_allclose(est.loss_curve_, ref.loss_curve_, rtol=1e-5)
            pred = est.predict(c(X))
            assert type(pred) is type(c(X))  # the input's kind of array back, on its device
            assert str(getattr(pred, "device", "")) == str(getattr(c(X), "device", ""))
            np.testing.assert_allclose(to_host(pred), ref.predict(X), rtol=1e-4, atol=1e-5)
            if hasattr(est, "predict_proba"):
                np.testing.assert_allclose(to_host(est.predict_proba(c(X))), ref.predict_proba(X), atol=1e-5)
            if name != "strict-no_float64":  # scikit-learn 1.9's accuracy_score/r2_score cast to float64 there
                assert abs(float(est.score(c(X), c(target))) - ref.score(X, target)) < 1e-4
        try:
            MLPClassifier(solver="lbfgs", **kw).fit(c(X), c(y))
        except ValueError as exc:
            assert "solver='lbfgs' is not supported" in str(exc), exc
        else:
            raise AssertionError("lbfgs on a device was accepted")
    print("OK", name)
"""


def test_sklearn_array_api_dispatch():
    """scikit-learn's convention: with array_api_dispatch=True the drop-in fits and predicts on the input's
    library and device and returns that kind of array (stochastic solvers; run in a child process, as
    scikit-learn needs SCIPY_ARRAY_API=1 before scipy is imported)."""
    pytest.importorskip("sklearn")
    pytest.importorskip("array_api_strict")
    env = {**os.environ, "SCIPY_ARRAY_API": "1", "PYTHONPATH": str(ROOT / "src")}
    libs = ["strict-device1", "strict-no_float64", "torch-cpu"]
    r = subprocess.run([sys.executable, "-c", _SKLEARN_SCRIPT, *libs], capture_output=True, text=True, env=env,
                       timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "OK strict-device1" in r.stdout and "OK strict-no_float64" in r.stdout, r.stdout
    assert "OK torch-cpu" in r.stdout or "SKIP torch-cpu" in r.stdout, r.stdout


def test_embedding_and_residual_blocks_on_device(lib):
    name, conv = lib
    rng = np.random.default_rng(0)
    X = np.c_[rng.normal(size=(60, 3)), rng.integers(0, 4, 60), rng.integers(0, 3, 60)].astype(np.float32)
    y = rng.integers(0, 3, 60)
    for kw in ({"categorical": {3: 4, 4: 3}}, {"residual": True, "batch_norm": True}):
        dims = [5, 8, 3] if "categorical" in kw else [5, 8, 8, 3]
        ref = MLP(dims, seed=1, path="reference", **kw).fit(X, y, epochs=2, batch_size=16, verbose=0)
        got = MLP(dims, seed=1, **kw).fit(conv(X), conv(y), epochs=2, batch_size=16, verbose=0)
        np.testing.assert_allclose(got.history["loss"], ref.history["loss"], rtol=1e-5)
    m = MLP([5, 8, 3], seed=1, categorical={3: 4, 4: 3})
    m.fit(conv(X), conv(y), epochs=1, verbose=0)
    bad = X.copy()
    bad[3, 3] = 7
    with pytest.raises(InvalidDataError, match=r"categorical column 3 holds 7 \(row 3\)"):
        m.predict(conv(bad))
    if name in F64_LIBS:  # the embedding tables' gradients, checked on the device
        m64 = MLP([5, 8, 3], seed=1, categorical={3: 4, 4: 3}, dtype=np.float64)
        if name != "numpy":
            m64.to(conv(X.astype(np.float64)))
        assert gradcheck(m64, conv(X.astype(np.float64)), conv(y)).passed(1e-6, ignore_kinks=True)
