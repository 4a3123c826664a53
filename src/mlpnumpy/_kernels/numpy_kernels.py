"""The fast path's kernels in NumPy, for when numba is missing: the signatures of
:mod:`.numba_kernels`, each written with in-place NumPy operations (``out=``, no new arrays where
one can be reused). They make several passes where numba makes one, but allocate little.
"""
from __future__ import annotations

import numpy as np

from ._codes import ELU, GELU, IDENTITY, LEAKY_RELU, RELU, SIGMOID, TANH

NAME = "numpy"
PARALLEL_FROM = None


def bias_act(z, b, kind, param, out):
    """``z += b`` and ``out = f(z)``; ``out`` may be ``z``."""
    if b.shape[0]:
        z += b
    t = z.dtype.type
    if kind == RELU:
        np.maximum(z, 0, out=out)
    elif kind == IDENTITY:
        if out is not z:
            out[...] = z
    elif kind == LEAKY_RELU:
        np.multiply(z, t(param), out=out, where=z <= 0)
        if out is not z:
            np.copyto(out, z, where=z > 0)
    elif kind == SIGMOID:
        e = np.exp(-np.abs(z))
        pos = z >= 0
        np.divide(1, 1 + e, out=out, where=pos)
        np.divide(e, 1 + e, out=out, where=~pos)
    elif kind == TANH:
        np.tanh(z, out=out)
    elif kind == ELU:
        neg = z <= 0
        np.expm1(np.minimum(z, 0), out=out, where=neg)
        np.multiply(out, t(param), out=out, where=neg)
        if out is not z:
            np.copyto(out, z, where=~neg)
    else:  # GELU
        c = t(np.sqrt(2.0 / np.pi))
        out[...] = t(0.5) * z * (1 + np.tanh(c * (z + t(0.044715) * z * z * z)))


def act_backward(g, a, z, kind, param, out):
    """``out = g * f'(z)`` from the cached output ``a`` (``z`` for GELU); ``out`` may be ``g``."""
    t = g.dtype.type
    if kind == RELU:
        np.multiply(g, a > 0, out=out)
    elif kind == IDENTITY:
        if out is not g:
            out[...] = g
    elif kind == LEAKY_RELU:
        np.multiply(g, np.where(a > 0, t(1), t(param)), out=out)
    elif kind == SIGMOID:
        np.multiply(g, a * (1 - a), out=out)
    elif kind == TANH:
        np.multiply(g, 1 - a * a, out=out)
    elif kind == ELU:
        np.multiply(g, np.where(a > 0, t(1), a + t(param)), out=out)
    else:  # GELU
        c = t(np.sqrt(2.0 / np.pi))
        th = np.tanh(c * (z + t(0.044715) * z * z * z))
        dt = (1 - th * th) * c * (1 + t(3 * 0.044715) * z * z)
        np.multiply(g, t(0.5) * (1 + th) + t(0.5) * z * dt, out=out)


def softmax_xent(z, labels, smoothing, scale, grad, losses, pred):
    """Softmax cross-entropy against integer labels; see :func:`.numba_kernels.softmax_xent`. The row
    maximum is read at each row's argmax and the row sums are products with a ones vector (BLAS
    gemv): both several times faster than NumPy's reductions along a short last axis."""
    n, k = z.shape
    t = z.dtype.type
    rows = np.arange(n)
    pred[...] = z.argmax(axis=1)
    np.subtract(z, z[rows, pred][:, None], out=grad)   # s = z - max
    ones = np.ones(k, z.dtype)
    sy = grad[rows, labels]
    ssum = grad @ ones if smoothing else None
    np.exp(grad, out=grad)
    total = grad @ ones
    np.log(total, out=losses)
    if smoothing:
        losses -= t(1.0 - smoothing) * sy + t(smoothing / k) * ssum
    else:
        losses -= sy
    grad /= total[:, None]
    if smoothing:
        grad -= t(smoothing / k)
        grad[rows, labels] -= t(1.0 - smoothing)
    else:
        grad[rows, labels] -= 1
    if scale.shape[0]:
        grad *= scale[:, None]
    else:
        grad /= t(n)


def sgd(w, g, buf, lr, mu, damp1, wd, nesterov, first, tiny):
    if wd:
        g = g + wd * w
    if mu:
        if first:
            buf[...] = g
        else:
            buf *= mu
            buf += damp1 * g
            np.putmask(buf, np.abs(buf) < tiny, 0)
        d = g + mu * buf if nesterov else buf
    else:
        d = g
    w -= lr * d


def adam(w, g, m, v, vmax, shrink, wd, b1, c1, b2, c2, step_size, sqrt_bc2, eps, decoupled, amsgrad, tiny):
    if decoupled:
        w *= shrink
    elif wd:
        g = g + wd * w
    m *= b1
    m += c1 * g
    v *= b2
    v += c2 * g * g
    np.putmask(m, np.abs(m) < tiny, 0)
    np.putmask(v, v < tiny, 0)
    if amsgrad:
        np.maximum(vmax, v, out=vmax)
        v = vmax
    d = np.sqrt(v)
    d /= sqrt_bc2
    d += eps
    w -= step_size * m / d


def rmsprop(w, g, sq, gavg, buf, lr, alpha, c, eps, wd, mu, centered, tiny):
    if wd:
        g = g + wd * w
    sq *= alpha
    sq += c * g * g
    np.putmask(sq, sq < tiny, 0)
    if centered:
        gavg *= alpha
        gavg += c * g
        np.putmask(gavg, np.abs(gavg) < tiny, 0)
        avg = np.sqrt(sq - gavg * gavg)
    else:
        avg = np.sqrt(sq)
    avg += eps
    if mu:
        buf *= mu
        buf += g / avg
        np.putmask(buf, np.abs(buf) < tiny, 0)
        w -= lr * buf
    else:
        w -= lr * g / avg


def adagrad(w, g, s, clr, eps, wd):
    if wd:
        g = g + wd * w
    s += g * g
    d = np.sqrt(s)
    d += eps
    w -= clr * g / d
