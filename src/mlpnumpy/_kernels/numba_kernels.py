"""The fast path's element-wise kernels compiled with numba: each one pass over its arrays.

Each kernel fuses what the reference path does in several array operations (bias add and activation;
activation derivative and product; softmax, cross-entropy and its gradient; a whole optimizer
update). They work in the arrays' own dtype (scalars are cast to it first, as NumPy does with Python
scalars), so float32 stays float32. :mod:`.numpy_kernels` holds the same kernels in NumPy, with the
same signatures, for when numba is missing; ``tests/test_paths.py`` pins both to the reference path.

``cache=True`` keeps the compiled code on disk beside this file, so only the first run compiles.
"""
from __future__ import annotations

import math

import numba as nb
import numpy as np
from llvmlite import ir
from numba import prange, types
from numba.extending import intrinsic

from ._codes import ELU, GELU, IDENTITY, LEAKY_RELU, RELU, SIGMOID, TANH

NAME = "numba"
# error_model="numpy": a float division by zero gives inf or nan, as in NumPy, instead of raising
# (and only then does LLVM vectorise a loop that divides)
_jit = nb.njit(cache=True, nogil=True, error_model="numpy")
_pjit = nb.njit(cache=True, nogil=True, parallel=True, error_model="numpy")
#: parameters from this many entries take the parallel update loops (numba's threads over the cores);
#: None: never. ``benchmarks/limits.py`` measures both inside a training epoch on this machine's 2 cores.
PARALLEL_FROM: int | None = None

_GELU_C = math.sqrt(2.0 / math.pi)


_el = nb.njit(cache=True, inline="always", error_model="numpy")


@_jit
def _bias_act_any(z, b, kind, param, out):
    """``z += b`` and ``out = f(z)`` in one pass; ``z`` (n, k), ``b`` (k,) or empty (no bias), ``out``
    (n, k), which may be ``z`` itself when the derivative needs only the output."""
    n, k = z.shape
    t = z.dtype.type
    zero, one, half = t(0), t(1), t(0.5)
    p = t(param)
    c, c3 = t(_GELU_C), t(0.044715)
    has_b = b.shape[0] > 0
    for i in range(n):
        for j in range(k):
            v = z[i, j] + b[j] if has_b else z[i, j]
            z[i, j] = v
            if kind == RELU:
                out[i, j] = zero if v < zero else v
            elif kind == IDENTITY:
                out[i, j] = v
            elif kind == LEAKY_RELU:
                out[i, j] = v if v > zero else v * p
            elif kind == SIGMOID:
                e = math.exp(-abs(v))
                out[i, j] = one / (one + e) if v >= zero else e / (one + e)
            elif kind == TANH:
                out[i, j] = math.tanh(v)
            elif kind == ELU:
                out[i, j] = v if v > zero else p * math.expm1(v)
            else:  # GELU
                out[i, j] = half * v * (one + math.tanh(c * (v + c3 * v * v * v)))


@_jit
def _act_backward_any(g, a, z, kind, param, out):
    """``out = g * f'(z)``, the derivative read from the cached output ``a`` (``z`` for GELU only);
    all (n, k); ``out`` may be ``g`` itself."""
    n, k = g.shape
    t = g.dtype.type
    zero, one, half = t(0), t(1), t(0.5)
    p = t(param)
    c, c3, c33 = t(_GELU_C), t(0.044715), t(3 * 0.044715)
    for i in range(n):
        for j in range(k):
            gv = g[i, j]
            if kind == RELU:
                out[i, j] = gv if a[i, j] > zero else gv * zero
            elif kind == IDENTITY:
                out[i, j] = gv
            elif kind == LEAKY_RELU:
                out[i, j] = gv if a[i, j] > zero else gv * p
            elif kind == SIGMOID:
                av = a[i, j]
                out[i, j] = gv * (av * (one - av))
            elif kind == TANH:
                av = a[i, j]
                out[i, j] = gv * (one - av * av)
            elif kind == ELU:
                av = a[i, j]
                out[i, j] = gv if av > zero else gv * (av + p)
            else:  # GELU
                v = z[i, j]
                th = math.tanh(c * (v + c3 * v * v * v))
                dt = (one - th * th) * c * (one + c33 * v * v)
                out[i, j] = gv * (half * (one + th) + half * v * dt)


@_jit
def bias_act(z, b, kind, param, out):
    """``z += b`` and ``out = f(z)`` in one pass; ``z`` (n, k), ``b`` (k,) or empty (no bias), ``out``
    (n, k), which may be ``z`` itself when the derivative needs only the output. ReLU and the identity
    written over ``z`` (the hot cases) have loops of their own, one store an entry, which the compiler
    vectorises (45 -> 3 us for 128 x 256 in float32); the other activations share one loop."""
    n, k = z.shape
    if b.shape[0] > 0 and z.ctypes.data == out.ctypes.data and (kind == RELU or kind == IDENTITY):
        zero = z.dtype.type(0)
        if kind == RELU:
            for i in range(n):
                for j in range(k):
                    v = z[i, j] + b[j]
                    z[i, j] = zero if v < zero else v
        else:
            for i in range(n):
                for j in range(k):
                    z[i, j] += b[j]
    else:
        _bias_act_any(z, b, kind, param, out)


@_jit
def act_backward(g, a, z, kind, param, out):
    """``out = g * f'(z)``, the derivative read from the cached output ``a`` (``z`` for GELU only);
    all (n, k); ``out`` may be ``g`` itself. ReLU in place has a loop of its own (read and written
    through one array, so that it vectorises: 16 -> 4 us for 128 x 256); the others share one."""
    if kind == RELU and g.ctypes.data == out.ctypes.data:
        n, k = g.shape
        zero = g.dtype.type(0)
        for i in range(n):
            for j in range(k):
                out[i, j] = out[i, j] if a[i, j] > zero else out[i, j] * zero
    else:
        _act_backward_any(g, a, z, kind, param, out)


@_jit
def softmax_xent(z, labels, smoothing, scale, grad, losses, pred):
    """Softmax cross-entropy of logits ``z`` (n, k) against integer ``labels`` (n,) with label
    smoothing, in one pass per row: ``losses`` (n,) gets each row's loss, ``pred`` (n,) its argmax,
    ``grad`` (n, k) ``(softmax(z) - q) / n`` (``scale`` empty) or ``(softmax(z) - q) * scale[i]``."""
    n, k = z.shape
    t = z.dtype.type
    zero = t(0)
    on = t(1.0 - smoothing)
    off = t(smoothing / k)
    nn = t(n)
    weighted = scale.shape[0] > 0
    for i in range(n):
        m = z[i, 0]
        am = 0
        for j in range(1, k):
            if z[i, j] > m:
                m = z[i, j]
                am = j
        s = zero
        ssum = zero
        for j in range(k):
            sj = z[i, j] - m
            e = math.exp(sj)
            grad[i, j] = e
            s += e
            ssum += sj
        y = labels[i]
        losses[i] = math.log(s) - on * (z[i, y] - m) - off * ssum
        pred[i] = am
        for j in range(k):
            q = off + on if j == y else off
            if weighted:
                grad[i, j] = (grad[i, j] / s - q) * scale[i]
            else:
                grad[i, j] = (grad[i, j] / s - q) / nn



# ---- batch normalisation and dropout in training. The reference (nn.layers) computes each in several
# NumPy operations; these give the same numbers in two or three passes: a sum over the batch is NumPy's
# over axis 0 of a C-ordered array, rows added one after the other, each column on its own, and every
# operation is done in the array's dtype in the reference's order (the same roundings).


@_jit
def batchnorm_forward(x, gamma, beta, eps, y, xhat, mean, var, inv_std):
    """Batch normalisation of ``x`` (n, k) with the batch's statistics, in three passes:
    ``mean`` (k,) ``= sum(x) / n``, ``var`` (k,) ``= sum((x - mean)^2) / n`` (biased), ``inv_std`` (k,)
    ``= 1 / sqrt(var + eps)``, ``xhat`` (n, k) ``= (x - mean) * inv_std``, ``y`` (n, k) ``= xhat * gamma
    + beta``. A float32 square that overflows leaves ``var`` infinite: the caller then runs the
    reference, which redoes the statistics in float64."""
    n, k = x.shape
    t = x.dtype.type
    tn = t(n)
    for j in range(k):
        mean[j] = x[0, j]
    for i in range(1, n):
        for j in range(k):
            mean[j] += x[i, j]
    for j in range(k):
        mean[j] = mean[j] / tn
        var[j] = t(0)
    for i in range(n):
        for j in range(k):
            c = x[i, j] - mean[j]
            var[j] += c * c
    te, one = t(eps), t(1)
    for j in range(k):
        var[j] = var[j] / tn
        inv_std[j] = one / t(math.sqrt(var[j] + te))
    for i in range(n):
        for j in range(k):
            h = (x[i, j] - mean[j]) * inv_std[j]
            xhat[i, j] = h
            y[i, j] = h * gamma[j] + beta[j]


@_jit
def batchnorm_backward(g, xhat, gamma, inv_std, dx, dgamma, dbeta):
    """Batch normalisation's backward pass in training, in two passes: ``dgamma = sum(g xhat)``,
    ``dbeta = sum(g)`` (k,), and with ``d = g gamma``, ``dx = (n d - sum(d) - xhat sum(d xhat)) inv_std /
    n`` (n, k), through the batch's statistics. ``g``, ``xhat``, ``dx`` (n, k); ``dx`` may be ``g``."""
    n, k = g.shape
    t = g.dtype.type
    s1 = np.empty(k, g.dtype)
    s2 = np.empty(k, g.dtype)
    for j in range(k):
        d = g[0, j] * gamma[j]
        dgamma[j] = g[0, j] * xhat[0, j]
        dbeta[j] = g[0, j]
        s1[j] = d
        s2[j] = d * xhat[0, j]
    for i in range(1, n):
        for j in range(k):
            d = g[i, j] * gamma[j]
            dgamma[j] += g[i, j] * xhat[i, j]
            dbeta[j] += g[i, j]
            s1[j] += d
            s2[j] += d * xhat[i, j]
    tn = t(n)
    c = np.empty(k, g.dtype)
    for j in range(k):
        c[j] = inv_std[j] / tn
    for i in range(n):
        for j in range(k):
            dx[i, j] = ((tn * (g[i, j] * gamma[j]) - s1[j]) - xhat[i, j] * s2[j]) * c[j]


@_jit
def gather_rows(X, idx, mean, scale, out):
    """``out[i] = X[idx[i]]``, standardised as ``(X[idx[i]] - mean) / scale`` when ``mean`` and ``scale``
    (d,) are not empty (the Standardizer's arithmetic, in ``X``'s dtype): a batch's rows in one pass.
    ``X`` (n, d), ``idx`` (m,) of valid rows, ``out`` (m, d)."""
    d = X.shape[1]
    if mean.shape[0] > 0:
        for i in range(idx.shape[0]):
            r = idx[i]
            for j in range(d):
                out[i, j] = (X[r, j] - mean[j]) / scale[j]
    else:
        for i in range(idx.shape[0]):
            r = idx[i]
            for j in range(d):
                out[i, j] = X[r, j]


@_jit
def dropout_forward(x, u, p, keep, y):
    """Inverted dropout from the uniform draws ``u`` (n, k): ``u`` becomes the mask (``keep`` where
    ``u >= p``, else 0) and ``y = x * mask``; all (n, k), ``y`` may be ``x``."""
    n, k = x.shape
    t = x.dtype.type
    pt, kt, zero = t(p), t(keep), t(0)
    for i in range(n):
        for j in range(k):
            m = kt if u[i, j] >= pt else zero
            u[i, j] = m
            y[i, j] = x[i, j] * m


# ---- optimizers: each whole update in one pass over a flat parameter. The element function holds
# the rule, written in the reference's order of operations (same roundings); a serial and a
# parallel loop run it.


@_el
def _sgd_el(w, g, b, lr, mu, damp1, wd, nesterov, first, tiny):
    if wd != 0:
        g = g + wd * w
    if mu != 0:
        b = g if first else mu * b + damp1 * g
        if -tiny < b < tiny:
            b = b - b  # 0 in b's own type
        d = g + mu * b if nesterov else b
    else:
        d = g
    return w - lr * d, b


@_jit
def _sgd_serial(w, g, buf, lr, mu, damp1, wd, nesterov, first, tiny):
    t = w.dtype.type
    lr, mu, damp1, wd, tiny = t(lr), t(mu), t(damp1), t(wd), t(tiny)
    if mu != 0:
        for i in range(w.shape[0]):
            w[i], buf[i] = _sgd_el(w[i], g[i], buf[i], lr, mu, damp1, wd, nesterov, first, tiny)
    else:
        for i in range(w.shape[0]):
            w[i], _ = _sgd_el(w[i], g[i], g[i], lr, mu, damp1, wd, nesterov, first, tiny)


@_pjit
def _sgd_parallel(w, g, buf, lr, mu, damp1, wd, nesterov, first, tiny):
    t = w.dtype.type
    lr, mu, damp1, wd, tiny = t(lr), t(mu), t(damp1), t(wd), t(tiny)
    if mu != 0:
        for i in prange(w.shape[0]):
            w[i], buf[i] = _sgd_el(w[i], g[i], buf[i], lr, mu, damp1, wd, nesterov, first, tiny)
    else:
        for i in prange(w.shape[0]):
            w[i], _ = _sgd_el(w[i], g[i], g[i], lr, mu, damp1, wd, nesterov, first, tiny)


def sgd(w, g, buf, lr, mu, damp1, wd, nesterov, first, tiny):
    """SGD with weight decay and (Nesterov) momentum on flat arrays, one pass:
    ``g' = g + wd w``; ``b = g'`` (first step) or ``mu b + damp1 g'``; ``w -= lr (g' + mu b)`` (Nesterov),
    ``lr b`` (momentum) or ``lr g'``. ``buf`` is a 1-entry scratch array without momentum.
    Momentum entries below ``tiny`` in size become 0 (no subnormal numbers)."""
    f = _sgd_parallel if PARALLEL_FROM is not None and w.shape[0] >= PARALLEL_FROM else _sgd_serial
    f(w, g, buf, lr, mu, damp1, wd, nesterov, first, tiny)


@_el
def _adam_el(w, g, m, v, vmax, shrink, wd, b1, c1, b2, c2, step_size, sqrt_bc2, eps, decoupled, amsgrad, tiny):
    if decoupled:
        w = w * shrink
    elif wd != 0:
        g = g + wd * w
    m = b1 * m + c1 * g
    v = b2 * v + c2 * g * g
    if -tiny < m < tiny:
        m = m - m
    if v < tiny:
        v = v - v
    vh = v
    if amsgrad:
        vmax = vmax if vmax > v else v
        vh = vmax
    return w - step_size * m / (math.sqrt(vh) / sqrt_bc2 + eps), m, v, vmax


@_jit
def _adam_serial(w, g, m, v, vmax, shrink, wd, b1, c1, b2, c2, step_size, sqrt_bc2, eps, decoupled, amsgrad,
                 tiny):
    t = w.dtype.type
    shrink, wd, b1, c1, b2, c2 = t(shrink), t(wd), t(b1), t(c1), t(b2), t(c2)
    step_size, sqrt_bc2, eps, tiny = t(step_size), t(sqrt_bc2), t(eps), t(tiny)
    if amsgrad:
        for i in range(w.shape[0]):
            w[i], m[i], v[i], vmax[i] = _adam_el(w[i], g[i], m[i], v[i], vmax[i], shrink, wd, b1, c1, b2, c2,
                                                 step_size, sqrt_bc2, eps, decoupled, True, tiny)
    else:
        for i in range(w.shape[0]):
            w[i], m[i], v[i], _ = _adam_el(w[i], g[i], m[i], v[i], v[i], shrink, wd, b1, c1, b2, c2,
                                           step_size, sqrt_bc2, eps, decoupled, False, tiny)


@_pjit
def _adam_parallel(w, g, m, v, vmax, shrink, wd, b1, c1, b2, c2, step_size, sqrt_bc2, eps, decoupled, amsgrad,
                   tiny):
    t = w.dtype.type
    shrink, wd, b1, c1, b2, c2 = t(shrink), t(wd), t(b1), t(c1), t(b2), t(c2)
    step_size, sqrt_bc2, eps, tiny = t(step_size), t(sqrt_bc2), t(eps), t(tiny)
    if amsgrad:
        for i in prange(w.shape[0]):
            w[i], m[i], v[i], vmax[i] = _adam_el(w[i], g[i], m[i], v[i], vmax[i], shrink, wd, b1, c1, b2, c2,
                                                 step_size, sqrt_bc2, eps, decoupled, True, tiny)
    else:
        for i in prange(w.shape[0]):
            w[i], m[i], v[i], _ = _adam_el(w[i], g[i], m[i], v[i], v[i], shrink, wd, b1, c1, b2, c2,
                                           step_size, sqrt_bc2, eps, decoupled, False, tiny)


def adam(w, g, m, v, vmax, shrink, wd, b1, c1, b2, c2, step_size, sqrt_bc2, eps, decoupled, amsgrad, tiny):
    """Adam/AdamW on flat arrays, one pass: decay (decoupled: ``w *= shrink``; else ``g += wd w``),
    ``m = b1 m + c1 g``, ``v = b2 v + c2 g g`` (``c = 1 - beta``), AMSGrad's running maximum in ``vmax``
    (a 1-entry scratch array without AMSGrad), ``w -= step_size m / (sqrt(v) / sqrt_bc2 + eps)``.
    Moments below ``tiny`` in size become 0."""
    f = _adam_parallel if PARALLEL_FROM is not None and w.shape[0] >= PARALLEL_FROM else _adam_serial
    f(w, g, m, v, vmax, shrink, wd, b1, c1, b2, c2, step_size, sqrt_bc2, eps, decoupled, amsgrad, tiny)


@_el
def _rmsprop_el(w, g, sq, ga, b, lr, alpha, c, eps, wd, mu, centered, tiny):
    if wd != 0:
        g = g + wd * w
    sq = alpha * sq + c * g * g
    if sq < tiny:
        sq = sq - sq
    if centered:
        ga = alpha * ga + c * g
        if -tiny < ga < tiny:
            ga = ga - ga
        avg = math.sqrt(sq - ga * ga) + eps
    else:
        avg = math.sqrt(sq) + eps
    if mu != 0:
        b = mu * b + g / avg
        if -tiny < b < tiny:
            b = b - b  # 0 in b's own type
        return w - lr * b, sq, ga, b
    return w - lr * g / avg, sq, ga, b


@_jit
def _rmsprop_serial(w, g, sq, gavg, buf, lr, alpha, c, eps, wd, mu, centered, tiny):
    t = w.dtype.type
    lr, alpha, c, eps, wd, mu, tiny = t(lr), t(alpha), t(c), t(eps), t(wd), t(mu), t(tiny)
    if centered and mu != 0:
        for i in range(w.shape[0]):
            w[i], sq[i], gavg[i], buf[i] = _rmsprop_el(w[i], g[i], sq[i], gavg[i], buf[i], lr, alpha, c, eps, wd,
                                                       mu, True, tiny)
    elif centered:
        for i in range(w.shape[0]):
            w[i], sq[i], gavg[i], _ = _rmsprop_el(w[i], g[i], sq[i], gavg[i], g[i], lr, alpha, c, eps, wd,
                                                  mu, True, tiny)
    elif mu != 0:
        for i in range(w.shape[0]):
            w[i], sq[i], _, buf[i] = _rmsprop_el(w[i], g[i], sq[i], g[i], buf[i], lr, alpha, c, eps, wd,
                                                 mu, False, tiny)
    else:
        for i in range(w.shape[0]):
            w[i], sq[i], _, _ = _rmsprop_el(w[i], g[i], sq[i], g[i], g[i], lr, alpha, c, eps, wd,
                                            mu, False, tiny)


@_pjit
def _rmsprop_parallel(w, g, sq, gavg, buf, lr, alpha, c, eps, wd, mu, centered, tiny):
    t = w.dtype.type
    lr, alpha, c, eps, wd, mu, tiny = t(lr), t(alpha), t(c), t(eps), t(wd), t(mu), t(tiny)
    if centered and mu != 0:
        for i in prange(w.shape[0]):
            w[i], sq[i], gavg[i], buf[i] = _rmsprop_el(w[i], g[i], sq[i], gavg[i], buf[i], lr, alpha, c, eps, wd,
                                                       mu, True, tiny)
    elif centered:
        for i in prange(w.shape[0]):
            w[i], sq[i], gavg[i], _ = _rmsprop_el(w[i], g[i], sq[i], gavg[i], g[i], lr, alpha, c, eps, wd,
                                                  mu, True, tiny)
    elif mu != 0:
        for i in prange(w.shape[0]):
            w[i], sq[i], _, buf[i] = _rmsprop_el(w[i], g[i], sq[i], g[i], buf[i], lr, alpha, c, eps, wd,
                                                 mu, False, tiny)
    else:
        for i in prange(w.shape[0]):
            w[i], sq[i], _, _ = _rmsprop_el(w[i], g[i], sq[i], g[i], g[i], lr, alpha, c, eps, wd,
                                            mu, False, tiny)


def rmsprop(w, g, sq, gavg, buf, lr, alpha, c, eps, wd, mu, centered, tiny):
    """RMSprop on flat arrays, one pass: ``g += wd w``; ``sq = alpha sq + c g g`` (``c = 1 - alpha``);
    centered: ``gavg = alpha gavg + c g``, ``avg = sqrt(sq - gavg^2) + eps``, else ``sqrt(sq) + eps``;
    ``buf = mu buf + g / avg`` and ``w -= lr buf`` (momentum) or ``w -= lr g / avg``. ``gavg`` and
    ``buf`` are 1-entry scratch arrays when unused."""
    f = _rmsprop_parallel if PARALLEL_FROM is not None and w.shape[0] >= PARALLEL_FROM else _rmsprop_serial
    f(w, g, sq, gavg, buf, lr, alpha, c, eps, wd, mu, centered, tiny)


@_el
def _adagrad_el(w, g, s, clr, eps, wd):
    if wd != 0:
        g = g + wd * w
    s = s + g * g
    return w - clr * g / (math.sqrt(s) + eps), s


@_jit
def _adagrad_serial(w, g, s, clr, eps, wd):
    t = w.dtype.type
    clr, eps, wd = t(clr), t(eps), t(wd)
    for i in range(w.shape[0]):
        w[i], s[i] = _adagrad_el(w[i], g[i], s[i], clr, eps, wd)


@_pjit
def _adagrad_parallel(w, g, s, clr, eps, wd):
    t = w.dtype.type
    clr, eps, wd = t(clr), t(eps), t(wd)
    for i in prange(w.shape[0]):
        w[i], s[i] = _adagrad_el(w[i], g[i], s[i], clr, eps, wd)


def adagrad(w, g, s, clr, eps, wd):
    """Adagrad on flat arrays, one pass: ``g += wd w``, ``s += g g``, ``w -= clr g / (sqrt(s) + eps)``."""
    f = _adagrad_parallel if PARALLEL_FROM is not None and w.shape[0] >= PARALLEL_FROM else _adagrad_serial
    f(w, g, s, clr, eps, wd)


# ---- the whole training step of a plain dense network in two calls (forward with the loss; backward
# with every update), BLAS's gemm called from inside the compiled code: a step of the fast path is
# then two dispatches instead of some forty NumPy and kernel calls, each with its Python cost.
# Only for Dense layers whose activation needs no input (not GELU), softmax cross-entropy on integer
# labels and SGD or Adam/AdamW (step.WholeStep decides); every piece is the kernel above or the
# element function of the update, so the results are the two-call path's own.
#
# The gemm is NumPy's bundled OpenBLAS cblas_?gemm (found by _blas), called through its address, a
# plain integer argument: nothing process-specific is compiled in, so cache=True keeps working.

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112


@intrinsic
def _call_gemm(typingctx, fptr, order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
    """``fptr(order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)``: cblas_?gemm at address
    ``fptr``; the pointers ``a``, ``b``, ``c`` come as integers (``arr.ctypes.data``), the other
    arguments in the C types of their numba types (int32 enums, int32 or int64 sizes, the float type)."""
    rest = (order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
    pointers = (7, 9, 12)

    def codegen(context, builder, signature, args):
        voidp = ir.IntType(8).as_pointer()
        lltys = [voidp if i in pointers else context.get_value_type(t) for i, t in enumerate(rest)]
        fn = builder.inttoptr(args[0], ir.FunctionType(ir.VoidType(), lltys).as_pointer())
        vals = [builder.inttoptr(v, voidp) if i in pointers else v for i, v in enumerate(args[1:])]
        builder.call(fn, vals)
        return context.get_dummy_value()
    return types.void(fptr, *rest), codegen


@_jit
def _gemm(fp, ilp64, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c):
    """Row-major ``C (m, n) <- alpha op(A) op(B) + beta C``; ``ta``/``tb`` True: that operand is read
    transposed; ``ilp64``: the library takes 64-bit sizes."""
    o, t1, t2 = np.int32(_ROW_MAJOR), np.int32(_TRANS if ta else _NO_TRANS), np.int32(_TRANS if tb else _NO_TRANS)
    if ilp64:
        _call_gemm(fp, o, t1, t2, np.int64(m), np.int64(n), np.int64(k), alpha, a.ctypes.data, np.int64(lda),
                   b.ctypes.data, np.int64(ldb), beta, c.ctypes.data, np.int64(n))
    else:
        _call_gemm(fp, o, t1, t2, np.int32(m), np.int32(n), np.int32(k), alpha, a.ctypes.data, np.int32(lda),
                   b.ctypes.data, np.int32(ldb), beta, c.ctypes.data, np.int32(n))


@_jit
def step_forward(fp, ilp64, x, Ws, bs, codes, params, As, labels, smoothing, scale, grad, losses, pred):
    """The forward pass and the loss of one batch: per layer ``As[l] = f(h @ Ws[l] + bs[l])`` (gemm,
    then :func:`bias_act` over it), then :func:`softmax_xent` of the last into ``grad``, ``losses`` and
    ``pred``. ``x`` (m, d) and every ``As[l]`` (m, k_l) C-contiguous; returns the losses' sum in float64."""
    h = x
    for li in range(len(Ws)):
        W, a = Ws[li], As[li]
        t = W.dtype.type
        _gemm(fp, ilp64, False, False, h.shape[0], W.shape[1], W.shape[0], t(1), h, h.shape[1], W, W.shape[1],
              t(0), a)
        if codes[li] != IDENTITY or bs[li].shape[0]:
            bias_act(a, bs[li], codes[li], params[li], a)
        h = a
    softmax_xent(h, labels, smoothing, scale, grad, losses, pred)
    s = 0.0
    for i in range(losses.shape[0]):
        s += losses[i]
    return s


@_jit
def step_backward(fp, ilp64, x, Ws, bs, codes, params, As, Gs, gWs, gbs, S1W, S2W, S3W, S1b, S2b, S3b,
                  kind, hp, fuse_from, iteration, flush_every):
    """Backward through every layer and each parameter's update as soon as its gradient is final.

    ``Gs[l]`` (m, k_l): the gradient with respect to layer ``l``'s output (``Gs[-1]``: the loss's,
    from :func:`step_forward`), overwritten by ``dz``; ``gWs``/``gbs`` receive ``dW``/``db`` (``db``
    summed row after row, as ``dz.sum(0)``); ``S1..S3`` the optimizer's state per weight and bias.
    ``kind`` 0: SGD, ``hp = (lr, momentum, 1 - dampening, weight_decay, nesterov, tiny)``, state
    ``S1`` the momentum buffers (filled: the first step runs elsewhere); a weight from ``fuse_from``
    entries (without Nesterov, and without weight decay under momentum) takes its update folded into
    the gemm, as step._fused_sgd, its buffer flushed every ``flush_every`` iterations.
    ``kind`` 1: Adam, ``hp = (shrink, wd, b1, 1 - b1, b2, 1 - b2, step_size, sqrt_bc2, eps, decoupled,
    amsgrad, tiny)``, state ``exp_avg``, ``exp_avg_sq``, ``max_exp_avg_sq`` (or any array unused)."""
    L = len(Ws)
    for li in range(L - 1, -1, -1):
        W, dz, gW, gb, b = Ws[li], Gs[li], gWs[li], gbs[li], bs[li]
        t = W.dtype.type
        h = x if li == 0 else As[li - 1]
        m = dz.shape[0]
        kin, kout = W.shape
        if codes[li] != IDENTITY:
            act_backward(dz, As[li], As[li], codes[li], params[li], dz)
        if b.shape[0]:
            for j in range(kout):
                gb[j] = dz[0, j]
            for i in range(1, m):
                for j in range(kout):
                    gb[j] += dz[i, j]
        if li > 0:  # dx = dz @ W.T, before the update changes W
            _gemm(fp, ilp64, False, True, m, kin, kout, t(1), dz, kout, W, kout, t(0), Gs[li - 1])
        w, g = W.reshape(-1), gW.reshape(-1)
        if kind == 0:
            lr, mu, damp1, wd, nesterov, tiny = hp[0], hp[1], hp[2], hp[3], hp[4] != 0, hp[5]
            if w.shape[0] >= fuse_from and not (mu != 0 and (nesterov or wd != 0)):
                if mu == 0:  # w <- (1 - lr wd) w - lr h.T dz
                    _gemm(fp, ilp64, True, False, kin, kout, m, t(-lr), h, kin, dz, kout, t(1.0 - lr * wd), W)
                else:  # buf <- mu buf + (1 - tau) h.T dz; w -= lr buf
                    B = S1W[li]
                    _gemm(fp, ilp64, True, False, kin, kout, m, t(damp1), h, kin, dz, kout, t(mu), B)
                    buf = B.reshape(-1)
                    tt = t(tiny)
                    if iteration % flush_every == 0:
                        for i in range(buf.shape[0]):
                            if abs(buf[i]) < tt:
                                buf[i] = 0
                    lrt = t(lr)
                    for i in range(w.shape[0]):
                        w[i] -= lrt * buf[i]
            else:
                _gemm(fp, ilp64, True, False, kin, kout, m, t(1), h, kin, dz, kout, t(0), gW)
                _sgd_serial(w, g, S1W[li].reshape(-1), lr, mu, damp1, wd, nesterov, False, tiny)
            if b.shape[0]:
                _sgd_serial(b, gb, S1b[li], lr, mu, damp1, wd, nesterov, False, tiny)
        else:
            _gemm(fp, ilp64, True, False, kin, kout, m, t(1), h, kin, dz, kout, t(0), gW)
            decoupled, amsgrad = hp[9] != 0, hp[10] != 0
            _adam_serial(w, g, S1W[li].reshape(-1), S2W[li].reshape(-1), S3W[li].reshape(-1), hp[0], hp[1], hp[2],
                         hp[3], hp[4], hp[5], hp[6], hp[7], hp[8], decoupled, amsgrad, hp[11])
            if b.shape[0]:
                _adam_serial(b, gb, S1b[li], S2b[li], S3b[li], hp[0], hp[1], hp[2], hp[3], hp[4], hp[5], hp[6],
                             hp[7], hp[8], decoupled, amsgrad, hp[11])


# step_run's own names for the two (a caller replacing the module's attributes, as the tests' call
# counters do, must not change what step_run compiles against)
_step_forward, _step_backward = step_forward, step_backward


@_jit
def step_run(fp, ilp64, X, y, idx, xmean, xscale, xb, yb, Ws, bs, codes, params, As, Gs, smoothing, scale, losses,
             pred, gWs, gbs, S1W, S2W, S3W, S1b, S2b, S3b, kind, hps, fuse_from, iteration, flush_every, sums):
    """Several whole steps in one call, each :func:`step_forward` then :func:`step_backward`.

    Step ``s`` takes the rows ``X[idx[s m:(s + 1) m]]`` and their labels ``y[...]``, gathered into
    ``xb`` (m, d) and ``yb`` (m,) first, ``m = xb.shape[0]``; ``len(idx)`` is a multiple of ``m``. The
    rows are standardised on the way, ``(x - xmean) / xscale``, unless ``xmean`` is empty (:func:`gather_rows`).
    ``hps[s]``: step ``s``'s hyper-parameters as :func:`step_backward`'s ``hp``; its iteration is
    ``iteration + s + 1``. ``sums[s]`` receives the step's loss sum (float64). A step whose loss sum is
    not finite ends the run before its backward pass and its predictions are counted. Returns ``(steps
    run, correct predictions)``; the steps run include the one whose loss ended the run."""
    m = xb.shape[0]
    steps = idx.shape[0] // m
    correct = 0
    for s in range(steps):
        o = s * m
        for i in range(m):
            yb[i] = y[idx[o + i]]
        gather_rows(X, idx[o:o + m], xmean, xscale, xb)
        total = _step_forward(fp, ilp64, xb, Ws, bs, codes, params, As, yb, smoothing, scale, Gs[-1], losses, pred)
        sums[s] = total
        if not math.isfinite(total):
            return s + 1, correct
        for i in range(m):
            if pred[i] == yb[i]:
                correct += 1
        _step_backward(fp, ilp64, xb, Ws, bs, codes, params, As, Gs, gWs, gbs, S1W, S2W, S3W, S1b, S2b, S3b,
                       kind, hps[s], fuse_from, iteration + s + 1, flush_every)
    return steps, correct
