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
from numba import prange

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


@_jit
def bias_act(z, b, kind, param, out):
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
def act_backward(g, a, z, kind, param, out):
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



# ---- optimizers: each whole update in one pass over a flat parameter. The element function holds
# the rule, written in the reference's order of operations (same roundings); a serial and a
# parallel loop run it.
_el = nb.njit(cache=True, inline="always", error_model="numpy")


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
