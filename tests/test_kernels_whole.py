"""The fast path's whole-step kernels (mlpnumpy._kernels.whole): a plain dense network's training step
in two compiled calls, BLAS's gemm called from inside them. They must give the reference path's
model (the bounds of tests/test_paths.py: norm-wise, 1e-12 in float64, a few hundred float32 epsilons
after a whole fit, where per-step differences of an ulp grow with training's own sensitivity), take
exactly the steps they are meant to, and leave every other model to the per-layer path.
"""
import copy

import numpy as np
import pytest

from mlpnumpy import MLP, Sequential
from mlpnumpy._kernels import _blas, step as fast_step
from mlpnumpy.nn.layers import Dense, Dropout
from mlpnumpy.optim.optimizers import SGD, Adam, AdamW

numba_kernels = pytest.importorskip("mlpnumpy._kernels.numba_kernels")
pytestmark = pytest.mark.skipif(not _blas.available, reason="no BLAS gemm found")

OPTIMIZERS = {
    "sgd": lambda: SGD(0.1),
    "sgd_wd": lambda: SGD(0.05, weight_decay=1e-2),
    "momentum": lambda: SGD(0.05, momentum=0.9),
    "momentum_dampening": lambda: SGD(0.05, momentum=0.9, dampening=0.2),
    "momentum_wd": lambda: SGD(0.05, momentum=0.9, weight_decay=1e-3),
    "nesterov_wd": lambda: SGD(0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
    "adam": lambda: Adam(1e-2),
    "adam_l2": lambda: Adam(1e-2, weight_decay=1e-3),
    "adamw_amsgrad": lambda: AdamW(1e-2, amsgrad=True),
}


WORST: dict = {}  # worst norm-wise difference per check and dtype


@pytest.fixture(scope="module", autouse=True)
def _report_worst():
    """With MLPNUMPY_REPORT_DIFFS=1, print the worst difference of each check when the file is done."""
    yield
    import os
    if os.environ.get("MLPNUMPY_REPORT_DIFFS") and WORST:
        print("\nworst norm-wise differences of the whole step (max|a - b| / max|b|):")
        for (what, dt), v in sorted(WORST.items()):
            print(f"  {what:44s} {dt:8s} {v:.3g}  ({v / float(np.finfo(dt).eps):.2f} eps)")


def rel_diff(a, b, what=None):
    a, b = np.asarray(a), np.asarray(b)
    dt = np.dtype(b.dtype).name
    a, b = a.astype(np.float64), b.astype(np.float64)
    v = float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), 1e-300))
    if what:
        WORST[(what, dt)] = max(WORST.get((what, dt), 0.0), v)
    return v


class Calls(dict):
    """Whole-step forwards and backwards, whether one call pair each or a run of them in one call of
    ``step_run`` (counted in ``runs``)."""
    runs = 0


@pytest.fixture
def count_calls(monkeypatch):
    calls = Calls(forward=0, backward=0)
    real_f, real_b, real_run = numba_kernels.step_forward, numba_kernels.step_backward, numba_kernels.step_run

    def f(*a):
        calls["forward"] += 1
        return real_f(*a)

    def b(*a):
        calls["backward"] += 1
        return real_b(*a)

    def run(*a):
        ran, correct = real_run(*a)
        sums = a[-1]
        calls.runs += 1
        calls["forward"] += ran
        calls["backward"] += ran - (0 if np.isfinite(sums[ran - 1]) else 1)
        return ran, correct
    monkeypatch.setattr(numba_kernels, "step_forward", f)
    monkeypatch.setattr(numba_kernels, "step_backward", b)
    monkeypatch.setattr(numba_kernels, "step_run", run)
    return calls


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("fused_from", [8192, 0], ids=["plain_update", "gemm_folded"])
@pytest.mark.parametrize("opt", list(OPTIMIZERS))
def test_whole_step_fit_equals_reference(dtype, fused_from, opt, rng, monkeypatch, count_calls):
    monkeypatch.setattr(fast_step, "FUSED_FROM", fused_from)  # 0: every weight takes the folded update
    X = rng.standard_normal((200, 6)).astype(dtype)
    y = rng.integers(0, 4, 200)
    ref = MLP([6, 9, 7, 4], "relu", seed=0, dtype=dtype)
    fast = copy.deepcopy(ref)
    ha = ref.fit(X, y, epochs=16, batch_size=32, optimizer=OPTIMIZERS[opt](), verbose=0, path="reference")
    hb = fast.fit(X, y, epochs=16, batch_size=32, optimizer=OPTIMIZERS[opt](), verbose=0, path="fast")
    # 112 steps: the first creates the optimizer state on the per-layer path, the others are whole steps
    assert count_calls == {"forward": 112, "backward": 111}
    # the folded update with weight decay sums the decay in another order (as tests/test_paths.py);
    # measured 31 eps (float64) and 28 eps (float32) here
    eps = float(np.finfo(dtype).eps)
    tol = 1e-12 if dtype == np.float64 else (64 if fused_from == 0 and opt == "sgd_wd" else 256) * eps
    for wa, wb in zip(ref.get_weights(), fast.get_weights()):
        assert rel_diff(wb, wa, f"fit vs reference, {opt} ({'folded' if fused_from == 0 else 'plain'})") <= tol
    assert hb.history["loss"][-1] == pytest.approx(ha.history["loss"][-1], rel=tol)
    assert hb.history["accuracy"] == ha.history["accuracy"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("act", ["identity", "relu", "leaky_relu", "sigmoid", "tanh", "elu"])
def test_whole_step_every_activation_no_bias_and_label_smoothing(dtype, act, rng, count_calls):
    X = rng.standard_normal((96, 5)).astype(dtype)
    y = rng.integers(0, 3, 96)

    def model():
        return Sequential([Dense(5, 8, act), Dense(8, 6, act, bias=False), Dense(6, 3)],
                          loss="cross_entropy", seed=1, dtype=dtype)
    ref = model()
    ref.loss.label_smoothing = 0.1
    fast = copy.deepcopy(ref)
    ref.fit(X, y, epochs=10, batch_size=32, optimizer=Adam(1e-2), verbose=0, path="reference")
    fast.fit(X, y, epochs=10, batch_size=32, optimizer=Adam(1e-2), verbose=0, path="fast")
    assert count_calls["backward"] == 29
    tol = 1e-12 if dtype == np.float64 else 256 * float(np.finfo(np.float32).eps)
    for wa, wb in zip(ref.get_weights(), fast.get_weights()):
        assert rel_diff(wb, wa, f"fit vs reference, {act}, Adam") <= tol


@pytest.mark.parametrize("opt", ["sgd", "momentum", "adam"])
def test_whole_step_equals_the_per_layer_fast_path(opt, rng, monkeypatch):
    # the same kernels and gemm calls, in one compiled call: the same model to the last bits but for
    # the bias gradient, summed row after row there (as the reference) and by gemv on the per-layer path
    X = rng.standard_normal((300, 20)).astype(np.float32)
    y = rng.integers(0, 5, 300)
    a = MLP([20, 128, 70, 5], seed=2)  # 20 x 128 = 2,560 and 128 x 70 = 8,960: one weight takes the fold
    b = copy.deepcopy(a)
    a.fit(X, y, epochs=5, batch_size=64, optimizer=OPTIMIZERS[opt](), verbose=0, path="fast")
    monkeypatch.setattr(fast_step, "WHOLE_STEP", False)
    b.fit(X, y, epochs=5, batch_size=64, optimizer=OPTIMIZERS[opt](), verbose=0, path="fast")
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        assert rel_diff(wa, wb, f"whole vs per-layer fast path, {opt}") <= 64 * float(np.finfo(np.float32).eps)


def test_models_the_whole_step_does_not_take_run_per_layer(rng, count_calls):
    X = rng.standard_normal((64, 6)).astype(np.float32)
    y = rng.integers(0, 3, 64)
    MLP([6, 8, 3], "gelu", seed=0).fit(X, y, epochs=1, batch_size=32, verbose=0)  # GELU keeps z
    MLP([6, 8, 3], seed=0, loss="mse").fit(X, np.eye(3, dtype=np.float32)[y], epochs=1, batch_size=32,
                                          verbose=0)
    Sequential([Dense(6, 8, "relu"), Dropout(0.5), Dense(8, 3)], loss="cross_entropy", seed=0).fit(
        X, y, epochs=1, batch_size=32, verbose=0)
    MLP([6, 8, 3], seed=0).fit(X, y, epochs=1, batch_size=32, verbose=0, sample_weight=np.ones(64))
    MLP([6, 8, 3], seed=0).fit(X, y, epochs=1, batch_size=32, verbose=0, clip_grad_norm=1.0)
    assert count_calls == {"forward": 0, "backward": 0}
    MLP([6, 8, 3], seed=0).fit(X, y, epochs=1, batch_size=32, verbose=0)
    assert count_calls == {"forward": 2, "backward": 1}


def test_frozen_parameter_and_replaced_weights_leave_the_whole_step(rng, count_calls):
    X = rng.standard_normal((128, 6))
    y = rng.integers(0, 3, 128)
    ref = MLP([6, 8, 3], seed=0, dtype=np.float64)
    ref.layers[0].weight.trainable = False
    fast = copy.deepcopy(ref)
    ref.fit(X, y, epochs=2, batch_size=32, verbose=0, path="reference")
    fast.fit(X, y, epochs=2, batch_size=32, verbose=0, path="fast")
    assert count_calls["backward"] == 0  # a frozen parameter: the per-layer path, which skips it
    for wa, wb in zip(ref.get_weights(), fast.get_weights()):
        assert rel_diff(wb, wa) <= 1e-12
    # the weights replaced between two fits (set_weights, a load): the next fit trains the new ones
    m = MLP([6, 8, 3], seed=0, dtype=np.float64)
    m.fit(X, y, epochs=1, batch_size=32, verbose=0, path="fast")
    m2 = copy.deepcopy(m)
    new = [w * 0.5 for w in m.get_weights()]
    m.set_weights(new)
    m2.set_weights(new)
    m.fit(X, y, epochs=1, batch_size=32, verbose=0, path="fast")
    m2.fit(X, y, epochs=1, batch_size=32, verbose=0, path="reference")
    for wa, wb in zip(m2.get_weights(), m.get_weights()):
        assert rel_diff(wb, wa) <= 1e-12


def test_gemm_from_compiled_code_matches_numpy(rng):
    for dtype in (np.float32, np.float64):
        fp, ilp64 = _blas.address(dtype)
        A = rng.standard_normal((7, 5)).astype(dtype)
        B = rng.standard_normal((5, 3)).astype(dtype)
        C = np.empty((7, 3), dtype)
        numba_kernels.step_forward  # compiled with the module
        W = (B,)
        out = (C,)
        labels = np.zeros(7, np.int64)
        grad, losses, pred = np.empty((7, 3), dtype), np.empty(7, dtype), np.empty(7, np.intp)
        numba_kernels.step_forward(fp, ilp64, A, W, (np.empty(0, dtype),), np.array([0]), np.array([0.0]), out,
                                   labels, 0.0, np.empty(0, dtype), grad, losses, pred)
        np.testing.assert_allclose(C, A @ B, rtol=1e-5 if dtype == np.float32 else 1e-13)


# ---- runs of whole steps in one compiled call (step_run), when nothing happens between two batches


def _fit_pair(monkeypatch, make_model, make_optimizer, X, y, run_length, **fit):
    """The same model fitted with runs of ``run_length`` batches per call and one call pair per batch."""
    a, b = make_model(), make_model()
    monkeypatch.setattr(fast_step, "RUN_BATCHES", run_length)
    ha = a.fit(X, y, verbose=0, path="fast", optimizer=make_optimizer(), **fit)
    monkeypatch.setattr(fast_step, "RUN_BATCHES", 0)
    hb = b.fit(X, y, verbose=0, path="fast", optimizer=make_optimizer(), **fit)
    return a, ha, b, hb


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("opt", list(OPTIMIZERS))
@pytest.mark.parametrize("shuffle", [True, False])
def test_runs_of_steps_equal_the_step_by_step_loop_to_the_bit(dtype, opt, shuffle, rng, monkeypatch,
                                                               count_calls):
    # the same kernels and gemm calls in the same order, and the loop's own arithmetic for the epoch's
    # loss and accuracy: the same model, history and optimizer state to the last bit, in runs of 3
    # batches (several runs an epoch, the partial last batch alone) and in runs of a whole epoch
    X = rng.standard_normal((230, 7)).astype(dtype)
    y = rng.integers(0, 4, 230)
    for run_length in (3, 64):
        count_calls.runs = 0
        a, ha, b, hb = _fit_pair(monkeypatch, lambda: MLP([7, 12, 9, 4], seed=3, dtype=dtype), OPTIMIZERS[opt], X, y,
                                 run_length, epochs=4, batch_size=32, shuffle=shuffle)
        # 230 rows: 7 full batches of 32 and one of 6; the first step creates the optimizer state alone
        assert count_calls.runs == (2 + 3 * 3 if run_length == 3 else 1 + 3)
        for wa, wb in zip(a.get_weights(), b.get_weights()):
            np.testing.assert_array_equal(wa, wb)
        assert ha.history["loss"] == hb.history["loss"]
        assert ha.history["accuracy"] == hb.history["accuracy"]
        assert a.optimizer.iterations == b.optimizer.iterations == 4 * 8
        for sa, sb in zip(a.optimizer.state, b.optimizer.state):
            for key in sa:
                np.testing.assert_array_equal(sa[key], sb[key])


def _diverging_data(rng):
    return rng.standard_normal((640, 6)).astype(np.float32), rng.integers(0, 3, 640)


def _model_about_to_diverge(monkeypatch, run_length, X, y):
    """A model whose optimizer state exists (runs can start at once), with a learning rate of 1e36."""
    monkeypatch.setattr(fast_step, "RUN_BATCHES", run_length)
    m = MLP([6, 16, 3], seed=0)
    m.fit(X[:64], y[:64], epochs=1, batch_size=32, optimizer=SGD(1e-3), verbose=0)
    m.optimizer.lr = 1e36
    return m


@pytest.mark.parametrize("on_nonfinite", ["raise", "warn"])
def test_a_loss_that_turns_non_finite_inside_a_run_is_caught_at_its_batch(on_nonfinite, rng, monkeypatch,
                                                                          count_calls):
    # a learning rate that overflows the float32 weights: the run stops at the first non-finite loss,
    # before that step's update; the same batch is named and the same weights restored as step by step
    from mlpnumpy.errors import DivergenceError
    X, y = _diverging_data(rng)
    results = []
    for run_length in (64, 0):
        m = _model_about_to_diverge(monkeypatch, run_length, X, y)
        start = [w.copy() for w in m.get_weights()]
        logs = None
        if on_nonfinite == "raise":
            with pytest.raises(DivergenceError) as err:
                m.fit(X, y, epochs=2, batch_size=32, verbose=0)
            message = str(err.value)
        else:
            with pytest.warns(RuntimeWarning) as rec:
                logs = m.fit(X, y, epochs=2, batch_size=32, verbose=0, on_nonfinite="warn").history
            message = str(rec[0].message)
            assert logs["loss"] and all(np.isfinite(logs["loss"]))  # the batches before the bad one
            logs = {k: v for k, v in logs.items() if k != "seconds"}
        results.append((message, logs, m.optimizer.iterations))
        for w0, w in zip(start, m.get_weights()):
            np.testing.assert_array_equal(w0, w)  # back at the weights the epoch began with
    assert count_calls.runs == 2  # the warm-up's second batch, then the diverging epoch
    (ma, la, ia), (mb, lb, ib) = results
    assert "batch" in ma and ma == mb and la == lb and ia == ib
    assert "batch 1," not in ma  # a later batch than the first of the run: the run ended inside


def test_runs_leave_room_for_what_happens_between_batches(rng, count_calls):
    # a callback that needs every batch, sample weights: batch by batch; schedules, a progress bar: runs
    import io

    from mlpnumpy.training.callbacks import LambdaCallback, ProgressBar
    X = rng.standard_normal((256, 6)).astype(np.float32)
    y = rng.integers(0, 3, 256)
    seen = []
    MLP([6, 8, 3], seed=0).fit(X, y, epochs=2, batch_size=32, verbose=0,
                               callbacks=[LambdaCallback(on_batch_end=lambda b, logs: seen.append(b))])
    assert seen == list(range(8)) * 2
    MLP([6, 8, 3], seed=0).fit(X, y, epochs=2, batch_size=32, verbose=0, sample_weight=np.ones(256))
    assert count_calls.runs == 0
    MLP([6, 8, 3], seed=0).fit(X, y, epochs=2, batch_size=32, verbose=0, lr_schedule="cosine")
    MLP([6, 8, 3], seed=0).fit(X, y, epochs=2, batch_size=32, verbose=0, lr_schedule="onecycle")
    assert count_calls.runs == 4
    out = io.StringIO()
    MLP([6, 8, 3], seed=0).fit(X, y, epochs=2, batch_size=32, verbose=0, callbacks=[ProgressBar("bar", out)])
    assert count_calls.runs == 6
    assert "8/8" in out.getvalue()  # the bar still reaches the epoch's last batch


@pytest.mark.parametrize("opt", ["sgd", "momentum", "adam"])
@pytest.mark.parametrize("schedule", ["onecycle", "step_cosine"])
def test_runs_with_a_per_batch_schedule_equal_the_step_by_step_loop(opt, schedule, rng, monkeypatch, count_calls):
    # the run's learning rates are the schedule's, worked out ahead: the same model, history, optimizer
    # learning rate and schedule state to the last bit as batch by batch
    from mlpnumpy.optim.schedules import CosineAnnealingLR
    X = rng.standard_normal((300, 7)).astype(np.float32)
    y = rng.integers(0, 4, 300)

    def sched():
        return "onecycle" if schedule == "onecycle" else CosineAnnealingLR(T_max=40, interval="step")
    results = []
    for run_length in (4, 0):
        monkeypatch.setattr(fast_step, "RUN_BATCHES", run_length)
        m = MLP([7, 12, 4], seed=1)
        h = m.fit(X, y, epochs=4, batch_size=32, verbose=0, optimizer=OPTIMIZERS[opt](), lr_schedule=sched())
        results.append((m.get_weights(), h.history["loss"], h.history["accuracy"], m.optimizer.lr,
                        m.lr_schedule.state_dict()))
    assert count_calls.runs > 0
    (wa, la, aa, lra, sa), (wb, lb, ab, lrb, sb) = results
    for a, b in zip(wa, wb):
        np.testing.assert_array_equal(a, b)
    assert la == lb and aa == ab and lra == lrb and sa == sb


def test_a_run_that_diverges_leaves_the_schedule_where_the_batch_loop_would(rng, monkeypatch, count_calls):
    from mlpnumpy.optim.schedules import CosineAnnealingLR
    X, y = _diverging_data(rng)
    results = []
    for run_length in (64, 0):
        m = _model_about_to_diverge(monkeypatch, run_length, X, y)
        sched = CosineAnnealingLR(T_max=1000, interval="step")
        with pytest.warns(RuntimeWarning, match="diverged"):
            m.fit(X, y, epochs=2, batch_size=32, verbose=0, lr_schedule=sched, on_nonfinite="warn")
        results.append((sched.state_dict(), m.optimizer.lr))
    assert count_calls.runs >= 2
    assert results[0] == results[1]
    assert results[0][0]["last_epoch"] > 0


def _standardised_model(X, dims, **kw):
    from mlpnumpy.datasets.preprocessing import Standardizer
    model = MLP(dims, seed=3, dtype=X.dtype, **kw)
    model.preprocessor = Standardizer().fit(X)
    return model


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["plain", "batch_norm_dropout"])
@pytest.mark.parametrize("shuffle", [True, False])
def test_rows_standardised_as_they_are_gathered_equal_the_transformed_batches_to_the_bit(dtype, kind, shuffle, rng,
                                                                                       monkeypatch, count_calls):
    # (x - mean) / scale in the fast path's gather (in the runs, and per batch) is Standardizer.transform's
    # arithmetic, the same operations in the same dtype: the same model as with the transform per batch
    X = (rng.standard_normal((230, 7)) * 3 + 5).astype(dtype)
    y = rng.integers(0, 4, 230)
    extra = {"batch_norm": True, "dropout": 0.2} if kind == "batch_norm_dropout" else {}
    fit = dict(epochs=3, batch_size=32, shuffle=shuffle, verbose=0, path="fast")
    fused = _standardised_model(X, [7, 12, 9, 4], **extra)
    hf = fused.fit(X, y, optimizer=Adam(1e-2), **fit)
    assert count_calls.runs == (0 if extra else 1 + 2)  # BN and dropout: the per-layer path
    monkeypatch.setattr(fast_step, "RUN_BATCHES", 0)
    per_batch = _standardised_model(X, [7, 12, 9, 4], **extra)
    hp = per_batch.fit(X, y, optimizer=Adam(1e-2), **fit)
    monkeypatch.setattr(fast_step, "standardizer_arrays", lambda pre, X: None)
    transformed = _standardised_model(X, [7, 12, 9, 4], **extra)
    ht = transformed.fit(X, y, optimizer=Adam(1e-2), **fit)
    for wf, wp, wt in zip(fused.get_weights(), per_batch.get_weights(), transformed.get_weights()):
        np.testing.assert_array_equal(wf, wt)
        np.testing.assert_array_equal(wp, wt)
    assert hf.history["loss"] == hp.history["loss"] == ht.history["loss"]


def test_gather_rows_kernel_equals_standardizer_transform(rng):
    from mlpnumpy.datasets.preprocessing import Standardizer
    for dtype in (np.float32, np.float64):
        X = (rng.standard_normal((50, 9)) * 4 - 2).astype(dtype)
        X[:, 3] = 7.0  # a constant feature: scale 1
        pre = Standardizer().fit(X)
        idx = rng.permutation(50)[:17]
        mean, scale = fast_step.standardizer_arrays(pre, X)
        out = np.empty((17, 9), dtype)
        numba_kernels.gather_rows(X, idx, mean, scale, out)
        np.testing.assert_array_equal(out, pre.transform(X[idx]))
        numba_kernels.gather_rows(X, idx, X[:0, 0], X[:0, 0], out)  # empty mean: the rows as they are
        np.testing.assert_array_equal(out, X[idx])
    # any other preprocessor, or rows the kernel does not take: None (the caller transforms per batch)
    assert fast_step.standardizer_arrays(object(), X) is None
    assert fast_step.standardizer_arrays(pre, X.astype(np.float16)) is None
    assert fast_step.standardizer_arrays(pre, np.asfortranarray(X)) is None
    assert fast_step.standardizer_arrays(Standardizer(), X) is None  # not fitted
