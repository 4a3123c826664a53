"""The two paths, one contract: every piece of the fast path (mlpnumpy._kernels: fused kernels in
numba and in NumPy, the gemm-folded SGD update, the fast training step) gives the reference path's
results.

Tolerances are norm-wise: ``max|fast - ref| <= tol * max|ref|`` over an array, with ``tol`` 1e-12 in
float64 and a few float32 epsilons (ulps of the array's largest entry) in float32. Element-wise ulps
would measure the conditioning of the formulas, not the kernels: where a formula cancels (``1 - a^2``
with ``a`` near 1, GELU's tail), one ulp of difference in a ``tanh`` becomes many ulps of the result in
both paths alike. No check depends on the BLAS kernel: where a matrix product or a sum is computed in
another order, the bound scales with the sum of the absolute terms.
"""
import copy

import numpy as np
import pytest

from mlpnumpy import MLP, Sequential
from mlpnumpy._kernels import _blas, kernels, numpy_kernels, resolve_path, step as fast_step
from mlpnumpy.nn.activations import get_activation
from mlpnumpy.errors import InvalidArgumentError
from mlpnumpy.nn.layers import ActivationLayer, BatchNorm1d, Dense, Dropout
from mlpnumpy.nn.losses import CrossEntropy
from mlpnumpy.optim.optimizers import SGD, Adagrad, Adam, AdamW, RMSprop
from mlpnumpy.nn.parameter import Parameter

try:
    from mlpnumpy._kernels import numba_kernels
    KERNELS = [numpy_kernels, numba_kernels]
except ImportError:  # numba is the optional "fast" extra
    KERNELS = [numpy_kernels]

ACTIVATIONS = ["identity", "relu", "leaky_relu", "sigmoid", "tanh", "elu", "gelu"]
TOL = {np.float64: 1e-12, np.float32: 4 * float(np.finfo(np.float32).eps)}
WORST: dict = {}  # worst norm-wise difference seen per check


@pytest.fixture(scope="module", autouse=True)
def _report_worst():
    """With MLPNUMPY_REPORT_DIFFS=1, print the worst difference of each check when the file is done."""
    yield
    import os
    if os.environ.get("MLPNUMPY_REPORT_DIFFS") and WORST:
        print("\nworst norm-wise differences, fast against reference (max|fast - ref| / max|ref|):")
        for (what, dt), v in sorted(WORST.items()):
            eps = float(np.finfo(dt).eps)
            print(f"  {what:32s} {dt:8s} {v:.3g}  ({v / eps:.2f} eps)")


def assert_close(fast, ref, dtype, what, tol=None):
    """``max|fast - ref| <= tol * max|ref|`` (norm-wise relative), recorded for the summary."""
    fast, ref = np.asarray(fast, np.float64), np.asarray(ref, np.float64)
    assert fast.shape == ref.shape
    scale = float(np.max(np.abs(ref))) if ref.size else 0.0
    diff = float(np.max(np.abs(fast - ref))) if ref.size else 0.0
    rel = diff / scale if scale else diff
    key = (what, np.dtype(dtype).name)
    WORST[key] = max(WORST.get(key, 0.0), rel)
    assert rel <= (tol if tol is not None else TOL[dtype]), f"{what}: {rel:.3g} relative ({dtype.__name__})"


def ids(k):
    return k.NAME


# ---------------------------------------------------------------------- activations
@pytest.mark.parametrize("K", KERNELS, ids=ids)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_bias_and_activation_forward_equals_reference(K, dtype, name, rng):
    act = get_activation(name)
    code, param = fast_step.activation_code(act)
    z0 = (rng.standard_normal((64, 33)) * 4).astype(dtype)
    z0[0, :5] = [0, -0.0, 80, -80, 1e-30]  # zero, saturation, a tiny input
    b = rng.standard_normal(33).astype(dtype)
    ref_z = z0 + b
    ref_a = act.forward(ref_z)
    for same_buffer in (False, True):
        z = z0.copy()
        out = z if same_buffer and not act.needs_input else np.empty_like(z)
        K.bias_act(z, b, code, param, out)
        assert out.dtype == dtype
        np.testing.assert_array_equal(z if out is not z else ref_z, ref_z)  # z + b is one rounding
        assert_close(out, ref_a, dtype, f"forward {name}")


@pytest.mark.parametrize("K", KERNELS, ids=ids)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_backward_equals_reference(K, dtype, name, rng):
    act = get_activation(name)
    code, param = fast_step.activation_code(act)
    z = (rng.standard_normal((64, 33)) * 4).astype(dtype)
    a = act.forward(z)
    g = rng.standard_normal((64, 33)).astype(dtype)
    ref = act.backward(g, a, z)
    out = np.empty_like(g)
    K.act_backward(g, a, z, code, param, out)
    # GELU's derivative recomputes tanh(u): one ulp of a tanh near +-1 (NumPy's and the compiled one
    # may differ by that) is multiplied by up to ~z^3 / 10 in 1 - tanh^2 terms
    assert_close(out, ref, dtype, f"backward {name}", tol=TOL[dtype] * (16 if name == "gelu" else 1))
    g2 = g.copy()
    K.act_backward(g2, a, z, code, param, g2)  # in place over the upstream gradient
    np.testing.assert_array_equal(g2, out)


# ---------------------------------------------------------------------- loss
@pytest.mark.parametrize("K", KERNELS, ids=ids)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_softmax_cross_entropy_equals_reference(K, dtype, smoothing, rng):
    n, k = 40, 10
    z = (rng.standard_normal((n, k)) * 5).astype(dtype)
    z[3] = [1e4, -1e4, 0, 5, 5, 5, 1e4, -3, 2, 1]  # ties at the maximum, a huge spread
    y = rng.integers(0, k, n)
    y[3] = 1  # the true class far below the maximum
    ref_loss = CrossEntropy(label_smoothing=smoothing)
    ref_mean = ref_loss.forward(z, y)
    ref_grad = ref_loss.backward()
    per_ref, _ = ref_loss._forward(z, y)
    grad, losses, pred = np.empty_like(z), np.empty(n, dtype), np.empty(n, np.intp)
    K.softmax_xent(z, y, smoothing, np.empty(0, dtype), grad, losses, pred)
    np.testing.assert_array_equal(pred, z.argmax(axis=1))  # the first maximum, as NumPy's argmax
    assert_close(losses, per_ref, dtype, "cross-entropy loss")
    assert_close(grad, ref_grad, dtype, "cross-entropy gradient")
    assert float(losses.sum()) / n == pytest.approx(ref_mean, rel=TOL[dtype] * 4)
    scale = (rng.random(n) / n).astype(dtype)  # per-row weights
    K.softmax_xent(z, y, smoothing, scale, grad, losses, pred)
    assert_close(grad, ref_grad * dtype(n) * scale[:, None], dtype, "cross-entropy gradient")


def test_fast_step_loss_reports_its_argmax(rng):
    model = MLP([5, 8, 4], seed=0)
    X, y = rng.standard_normal((16, 5)).astype(np.float32), rng.integers(0, 4, 16)
    step = fast_step.FastStep(model, model.loss, SGD(0.1))
    out, _ = step.forward(X, y)
    np.testing.assert_array_equal(model.loss.predicted, out.argmax(axis=1))


# ---------------------------------------------------------------------- optimizers
OPTIMIZERS = {
    "sgd": lambda: SGD(0.05),
    "sgd_decay": lambda: SGD(0.05, weight_decay=0.01),
    "sgd_momentum": lambda: SGD(0.05, momentum=0.9),
    "sgd_dampening": lambda: SGD(0.05, momentum=0.9, dampening=0.3, weight_decay=0.01),
    "sgd_nesterov": lambda: SGD(0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
    "adam": lambda: Adam(1e-2),
    "adam_l2": lambda: Adam(1e-2, weight_decay=0.01),
    "adam_amsgrad": lambda: Adam(1e-2, amsgrad=True),
    "adamw": lambda: AdamW(1e-2, weight_decay=0.05),
    "adamw_amsgrad": lambda: AdamW(1e-2, weight_decay=0.05, amsgrad=True),
    "rmsprop": lambda: RMSprop(1e-3),
    "rmsprop_all": lambda: RMSprop(1e-3, momentum=0.9, centered=True, weight_decay=0.01),
    "rmsprop_momentum": lambda: RMSprop(1e-3, momentum=0.5),
    "rmsprop_centered": lambda: RMSprop(1e-3, centered=True),
    "adagrad": lambda: Adagrad(0.05),
    "adagrad_all": lambda: Adagrad(0.05, lr_decay=0.01, weight_decay=0.01, initial_accumulator_value=0.1),
}


@pytest.mark.parametrize("K", KERNELS, ids=ids)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(OPTIMIZERS))
@pytest.mark.parametrize("parallel", [False, True])
def test_optimizer_update_equals_reference_over_100_steps(K, dtype, name, parallel, rng, monkeypatch):
    monkeypatch.setattr(fast_step, "kernels", lambda: K)
    if parallel:  # numba's loops over both cores, which large parameters take
        if K is numpy_kernels or dtype != np.float32:  # (float32 alone: compiling them is slow)
            pytest.skip("parallel loops: the NumPy kernels have none; numba's are tested in float32")
        monkeypatch.setattr(K, "PARALLEL_FROM", 0)
    size = (40, 30)
    w0 = rng.standard_normal(size).astype(dtype)
    # the parallel loops run the serial loops' element function: 20 steps show they split it right
    grads = [rng.standard_normal(size).astype(dtype) for _ in range(20 if parallel else 100)]
    ref_p, fast_p = Parameter(w0.copy()), Parameter(w0.copy())
    ref_o, fast_o = OPTIMIZERS[name](), OPTIMIZERS[name]()
    for g in grads:
        ref_p.grad = g
        ref_o.step([ref_p])
        fast_p.grad = g.copy()
        fast_o.begin_step([fast_p])
        fast_step.update(K, fast_o, fast_p, fast_o.state[0])
        assert_close(fast_p.data, ref_p.data, dtype, f"update {name}")
    for key, v in ref_o.state[0].items():
        assert_close(fast_o.state[0][key], v, dtype, f"state {name}")
    assert fast_p.data.dtype == dtype


@pytest.mark.parametrize("K", KERNELS, ids=ids)
@pytest.mark.parametrize("make,key", [(lambda: Adam(lr=1e-3), "exp_avg"),
                                      (lambda: SGD(lr=0.1, momentum=0.9), "momentum_buffer"),
                                      (lambda: RMSprop(lr=1e-3, momentum=0.9), "momentum_buffer")])
def test_fast_kernels_flush_near_subnormal_state_without_changing_updates(K, make, key):
    # an input that is always 0 leaves a moment that decays geometrically towards subnormal numbers,
    # on which x86 arithmetic is ~100x slower; the kernels zero entries below tiny/eps on the way
    tiny = np.finfo(np.float32).tiny
    ref_p, fast_p = Parameter(np.ones(4, np.float32)), Parameter(np.ones(4, np.float32))
    ref_o, fast_o = make(), make()
    for t in range(900):
        g = np.array([1e-3, 1e-3, 0.0, 0.0] if t == 0 else [1e-3, 0.0, 0.0, 0.0], np.float32)
        ref_p.grad, fast_p.grad = g, g.copy()
        ref_o.step([ref_p])
        fast_o.begin_step([fast_p])
        fast_step.update(K, fast_o, fast_p, fast_o.state[0])
    s_fast, s_ref = fast_o.state[0][key], ref_o.state[0][key]
    assert s_fast[1] == 0.0 and s_fast[0] != 0.0  # the decayed entry is exactly 0
    assert 0 < abs(s_ref[1]) < 1e-30 or s_ref[1] == 0.0  # the reference keeps the maths as written
    assert not np.any((s_fast != 0) & (np.abs(s_fast) < tiny))  # no subnormals left
    np.testing.assert_allclose(fast_p.data, ref_p.data, rtol=1e-6)  # the updates did not change


@pytest.mark.skipif(not _blas.available, reason="NumPy's BLAS gemm symbol not found")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["sgd", "sgd_decay", "sgd_momentum", "sgd_dampening"])
def test_sgd_folded_into_gemm_equals_reference(dtype, name, rng, monkeypatch):
    # W <- W - lr x.T dz in one accumulating gemm, against the reference's dW = x.T @ dz then the update;
    # the product's rounding depends on the BLAS kernel, so the bound scales with sum |x| |dz|
    monkeypatch.setattr(fast_step, "FUSED_FROM", 0)
    x = rng.standard_normal((32, 20)).astype(dtype)
    w0 = rng.standard_normal((20, 12)).astype(dtype)
    ref_p, fast_p = Parameter(w0.copy()), Parameter(w0.copy())
    ref_o, fast_o = OPTIMIZERS[name](), OPTIMIZERS[name]()
    K = kernels()
    for _ in range(100):
        dz = rng.standard_normal((32, 12)).astype(dtype)
        ref_p.grad = x.T @ dz
        ref_o.step([ref_p])
        fast_o.begin_step([fast_p])
        fast_step.update(K, fast_o, fast_p, fast_o.state[0], (x.T, dz))
        # (weight decay is folded as (1 - lr wd) w - lr x.T dz: the same sum in another order)
        assert_close(fast_p.data, ref_p.data, dtype, f"gemm-folded {name}", tol=TOL[dtype] * 64)


# ---------------------------------------------------------------------- layers and whole steps
def _models(dtype, seed=0):
    """One model per layer kind, each on both paths (identical weights)."""
    models = {f"dense_{a}": lambda a=a: MLP([6, 9, 7, 4], a, seed=seed, dtype=dtype) for a in ACTIVATIONS}
    models["batch_norm"] = lambda: MLP([6, 9, 7, 4], seed=seed, dtype=dtype, batch_norm=True)
    models["dropout"] = lambda: MLP([6, 9, 7, 4], "tanh", seed=seed, dtype=dtype, dropout=0.3)
    models["no_bias_activation_layer"] = lambda: Sequential(
        [Dense(6, 9, None, bias=False), ActivationLayer("gelu"), Dense(9, 4, "sigmoid")], seed=seed, dtype=dtype)
    models["mse"] = lambda: MLP([6, 9, 4], "elu", seed=seed, dtype=dtype, loss="mse")
    return models


@pytest.mark.parametrize("K", KERNELS, ids=ids)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", list(_models(np.float64)))
def test_forward_and_gradients_of_every_layer_equal_reference(K, dtype, kind, rng, monkeypatch):
    monkeypatch.setattr(fast_step, "kernels", lambda: K)
    X = rng.standard_normal((32, 6)).astype(dtype)
    y = rng.standard_normal((32, 4)).astype(dtype) if kind == "mse" else rng.integers(0, 4, 32)
    ref = _models(dtype)[kind]()
    fast = copy.deepcopy(ref)
    out_ref = ref.forward(X, training=True)
    ref.loss.forward(out_ref, y)
    ref.backward(ref.loss.backward())
    step = fast_step.FastStep(fast, fast.loss, SGD(0.0), keep_grads=True)  # lr 0: grads only
    out_fast, _ = step.forward(X, y)
    assert_close(out_fast, out_ref, dtype, "forward (model)", tol=TOL[dtype] * 16)
    step.backward_update()
    for (i, pr), pf in zip(enumerate(ref.parameters()), fast.parameters()):
        # a sum over the batch in another order (db by gemv): bounded by the sum of |terms|
        assert_close(pf.grad, pr.grad, dtype, "gradient (model)", tol=TOL[dtype] * 64)
    assert all(pf.grad.dtype == dtype for pf in fast.parameters())


FIT_OPTIMIZERS = ["sgd", "sgd_momentum", "adam", "rmsprop_all", "adagrad_all", "adamw_amsgrad"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind,opt", [(kind, FIT_OPTIMIZERS[i % len(FIT_OPTIMIZERS)])
                                      for i, kind in enumerate(_models(np.float64))])
def test_fit_on_both_paths_gives_the_same_model(dtype, kind, opt, rng):
    X = rng.standard_normal((200, 6)).astype(dtype)
    y = rng.standard_normal((200, 4)).astype(dtype) if kind == "mse" else rng.integers(0, 4, 200)
    ref = _models(dtype)[kind]()
    fast = copy.deepcopy(ref)
    ha = ref.fit(X, y, epochs=16, batch_size=32, optimizer=OPTIMIZERS[opt](), verbose=0, path="reference")
    hb = fast.fit(X, y, epochs=16, batch_size=32, optimizer=OPTIMIZERS[opt](), verbose=0, path="fast")
    # 112 steps; differences of a few ulps per step grow with training's own sensitivity (measured
    # here: 7 eps in float32, 6 in float64; the bounds leave room for other CPUs' BLAS rounding)
    tol = 1e-12 if dtype == np.float64 else 256 * float(np.finfo(np.float32).eps)
    for wa, wb in zip(ref.get_weights(), fast.get_weights()):
        assert_close(wb, wa, dtype, "weights after 112 fit steps", tol=tol)
    assert hb.history["loss"][-1] == pytest.approx(ha.history["loss"][-1], rel=tol)
    np.testing.assert_allclose(fast.predict_proba(X), ref.predict_proba(X), rtol=tol * 10, atol=tol * 10)


@pytest.mark.parametrize("opt", ["sgd_nesterov", "adamw", "rmsprop_centered", "adagrad"])
def test_fit_with_numpy_kernels_gives_the_reference_model(opt, rng, monkeypatch):
    # numba is optional: without it the fast path runs the same kernels written in NumPy
    import mlpnumpy._kernels as kernels_pkg
    monkeypatch.setattr(kernels_pkg, "_kernels", numpy_kernels)
    X, y = rng.standard_normal((200, 6)), rng.integers(0, 4, 200)
    ref = MLP([6, 9, 7, 4], "tanh", seed=0, dtype=np.float64)
    fast = copy.deepcopy(ref)
    ref.fit(X, y, epochs=4, batch_size=32, optimizer=OPTIMIZERS[opt](), verbose=0, path="reference")
    fast.fit(X, y, epochs=4, batch_size=32, optimizer=OPTIMIZERS[opt](), verbose=0, path="fast")
    for wa, wb in zip(ref.get_weights(), fast.get_weights()):
        assert_close(wb, wa, np.float64, "weights after 28 fit steps (NumPy kernels)")


def test_fast_step_with_a_gradient_reading_callback_and_clipping_equals_reference(rng):
    from mlpnumpy.training.callbacks import Callback

    class ReadsGrads(Callback):
        def on_train_begin(self, logs=None):
            self.norms = []

        def on_batch_end(self, batch, logs=None):
            self.norms.append(float(np.linalg.norm(self.model.layers[0].dW)))

    X, y = rng.standard_normal((96, 6)), rng.integers(0, 4, 96)
    runs = []
    for path in ("reference", "fast"):
        m = MLP([6, 9, 4], seed=1, dtype=np.float64)
        cb = ReadsGrads()
        m.fit(X, y, epochs=3, batch_size=32, lr=0.5, clip_grad_norm=0.5, callbacks=[cb], verbose=0, path=path)
        runs.append((m.get_weights(), cb.norms))
    np.testing.assert_allclose(runs[1][1], runs[0][1], rtol=1e-12)
    for wa, wb in zip(runs[0][0], runs[1][0]):
        assert_close(wb, wa, np.float64, "weights with clipping")


# ---------------------------------------------------------------------- the in-place-X hazard
@pytest.mark.parametrize("path", ["reference", "fast"])
def test_editing_X_after_backward_does_not_change_dW(path, rng):
    # the old fast path left dW as the pending product x.T @ dz: editing X afterwards changed dW
    X = rng.standard_normal((16, 5)).astype(np.float32)
    y = rng.integers(0, 3, 16)
    model = MLP([5, 8, 3], seed=0)
    if path == "reference":
        model.loss.forward(model.forward(X, training=True), y)
        model.backward(model.loss.backward())
    else:
        step = fast_step.FastStep(model, model.loss, SGD(0.0), keep_grads=True)
        step.forward(X, y)
        step.backward_update()
    dW = model.layers[0].dW.copy()
    X *= 3.0
    X[0] = 1e6
    np.testing.assert_array_equal(model.layers[0].dW, dW)
    assert type(model.layers[0].weight.grad) is np.ndarray


# ---------------------------------------------------------------------- the switch
def test_path_switch_keyword_env_and_auto(monkeypatch):
    monkeypatch.delenv("MLPNUMPY_PATH", raising=False)
    X = np.zeros((2, 3))
    assert resolve_path(None, X) == "fast"
    assert resolve_path("auto", X, [1, 2]) == "reference"  # not a NumPy array: the reference path
    assert resolve_path("reference", X) == "reference"
    monkeypatch.setenv("MLPNUMPY_PATH", "reference")
    assert resolve_path(None, X) == "reference"
    assert resolve_path("fast", X) == "fast"  # the keyword wins over the environment
    monkeypatch.setenv("MLPNUMPY_PATH", "turbo")
    with pytest.raises(InvalidArgumentError, match="MLPNUMPY_PATH='turbo'"):
        resolve_path(None, X)
    with pytest.raises(InvalidArgumentError, match="path"):
        MLP([3, 2], path="turbo")


@pytest.mark.parametrize("path", ["reference", "fast"])
def test_fit_takes_the_path_it_is_given(path, rng, monkeypatch):
    calls = []
    monkeypatch.setattr(fast_step.FastStep, "backward_update",
                        lambda self, real=fast_step.FastStep.backward_update: calls.append(1) or real(self))
    X, y = rng.standard_normal((40, 3)), rng.integers(0, 2, 40)
    MLP([3, 4, 2], seed=0).fit(X, y, epochs=1, batch_size=20, verbose=0, path=path)
    assert bool(calls) == (path == "fast")
    calls.clear()
    monkeypatch.setenv("MLPNUMPY_PATH", path)
    MLP([3, 4, 2], seed=0).fit(X, y, epochs=1, batch_size=20, verbose=0)
    assert bool(calls) == (path == "fast")
    calls.clear()
    MLP([3, 4, 2], seed=0, path="reference").fit(X, y, epochs=1, batch_size=20, verbose=0)
    assert not calls  # the model's own path wins over the environment


def test_info_says_which_path_and_kernels(capsys, monkeypatch):
    from mlpnumpy.cli import commands as cli
    monkeypatch.setenv("MLPNUMPY_PATH", "reference")
    monkeypatch.setenv("MLPNUMPY_NUMBA", "0")
    assert cli.main(["info"]) == 0
    line = [l for l in capsys.readouterr().out.splitlines() if l.startswith("training path:")]
    assert line and "reference (MLPNUMPY_PATH=reference)" in line[0] and "NumPy (MLPNUMPY_NUMBA=0)" in line[0]
    monkeypatch.delenv("MLPNUMPY_PATH")
    monkeypatch.delenv("MLPNUMPY_NUMBA")
    assert cli.main(["info"]) == 0
    line = [l for l in capsys.readouterr().out.splitlines() if l.startswith("training path:")][0]
    assert "training path: fast (MLPNUMPY_PATH unset: auto)" in line
    assert ("numba" in line) == (len(KERNELS) == 2)


# ---------------------------------------------------------------------- batch norm and dropout kernels
LAYER_KERNELS = [K for K in KERNELS if hasattr(K, "batchnorm_forward")]


@pytest.mark.skipif(not LAYER_KERNELS, reason="numba's batch-norm and dropout kernels need numba")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 5), (7, 1), (64, 33), (257, 130)])
def test_batchnorm_kernels_equal_the_layer(dtype, shape, rng):
    # the sums over the batch add rows in NumPy's order for axis 0 (the same bits, measured) except
    # where NumPy sums one column pairwise (a single feature): bounded by the sum of |terms| there
    K = LAYER_KERNELS[0]
    ref = BatchNorm1d(shape[1], dtype=dtype)
    ref.gamma.data[:] = rng.uniform(0.5, 2.0, shape[1])
    ref.beta.data[:] = rng.standard_normal(shape[1])
    fast = copy.deepcopy(ref)
    x = (rng.standard_normal(shape) * 2 + 1).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    tol = TOL[dtype] * 16
    for step in range(3):  # the running statistics over three batches
        y_ref = ref.forward(x, training=True)
        y_fast = fast_step.batchnorm_forward(K, fast, x)
        assert_close(y_fast, y_ref, dtype, "batch norm forward", tol)
        assert_close(fast._cache[0], ref._cache[0], dtype, "batch norm x_hat", tol)
        assert_close(fast._cache[1], ref._cache[1], dtype, "batch norm 1/std", tol)
        assert_close(fast.running_mean, ref.running_mean, dtype, "batch norm running mean", tol)
        assert_close(fast.running_var, ref.running_var, dtype, "batch norm running var", tol)
        dx_ref = ref.backward(g)
        dx_fast = fast_step.batchnorm_backward(K, fast, g.copy(), owned=True)
        assert_close(dx_fast, dx_ref, dtype, "batch norm dx", tol)
        assert_close(fast.gamma.grad, ref.gamma.grad, dtype, "batch norm dgamma", tol)
        assert_close(fast.beta.grad, ref.beta.grad, dtype, "batch norm dbeta", tol)
        assert fast.gamma.grad.dtype == fast.beta.grad.dtype == dx_fast.dtype == dtype
        x = x * dtype(1.5) + dtype(0.25)


@pytest.mark.skipif(not LAYER_KERNELS, reason="numba's batch-norm and dropout kernels need numba")
def test_batchnorm_kernel_leaves_an_overflowing_batch_to_the_layer(rng):
    # float32 squares past 3.4e38: the kernel's variance is infinite, it declines (running statistics
    # untouched) and the layer redoes the statistics in float64, as on the reference path
    K = LAYER_KERNELS[0]
    model = MLP([4, 6, 3], seed=0, batch_norm=True)
    X = (rng.standard_normal((16, 4)) * 1e20).astype(np.float32)
    bn = model.layers[1]
    before = bn.running_var.copy()
    h = model.layers[0].forward(X, training=True)
    assert fast_step.batchnorm_forward(K, bn, h) is None
    np.testing.assert_array_equal(bn.running_var, before)
    ref = copy.deepcopy(model)
    out_ref = ref.forward(X, training=True)
    out_fast, _ = fast_step.FastStep(model, model.loss, SGD(0.0)).forward(X, rng.integers(0, 3, 16))
    assert np.isfinite(out_fast).all()
    assert_close(out_fast, out_ref, np.float32, "batch norm overflow", TOL[np.float32] * 16)


@pytest.mark.skipif(not LAYER_KERNELS, reason="numba's batch-norm and dropout kernels need numba")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("p", [0.1, 0.2, 0.5, 0.9])
def test_dropout_kernel_draws_and_drops_as_the_layer(dtype, p, rng):
    # the same draws from the layer's generator, so the same mask, output, gradient and generator state
    K = LAYER_KERNELS[0]
    ref, fast = Dropout(p, rng=np.random.default_rng(7)), Dropout(p, rng=np.random.default_rng(7))
    x = rng.standard_normal((33, 17)).astype(dtype)
    g = rng.standard_normal((33, 17)).astype(dtype)
    y_ref = ref.forward(x, training=True)
    y_fast = fast_step.dropout_forward(K, fast, x)
    np.testing.assert_array_equal(y_fast, y_ref)
    np.testing.assert_array_equal(fast._mask, ref._mask)
    assert y_fast.dtype == fast._mask.dtype == dtype
    np.testing.assert_array_equal(fast_step.dropout_backward(K, fast, g.copy(), owned=True), ref.backward(g))
    assert fast_step.dropout_backward(K, fast, g, owned=False) is None  # not the step's: the layer's own
    assert fast.rng.random() == ref.rng.random()
    assert fast_step.dropout_forward(K, Dropout(0.0, rng=np.random.default_rng(7)), x) is None
