"""The fast path's whole-step kernels: one batch of a plain dense network in two compiled calls.

:class:`~mlpnumpy._kernels.step.FastStep` makes some forty calls a batch (a matrix product, a kernel
or a NumPy operation each, with their Python and dispatch cost: about 240 us a batch at batch 128,
measured, against 650 us of matrix products). When the model is a stack of :class:`Dense` layers
whose activation the kernels know (GELU excepted: its derivative needs the input), the loss is
softmax cross-entropy on integer labels without weights, the optimizer is SGD or Adam/AdamW without
parameter groups, and nothing reads or clips the gradients, :class:`WholeStep` runs the forward pass
and the loss in one call of :func:`numba_kernels.step_forward` and the backward pass with every update
in one of :func:`numba_kernels.step_backward`, into buffers it keeps from batch to batch. Those
kernels call the element-wise kernels and the update rules of the two-call path, and BLAS's gemm
(NumPy's bundled OpenBLAS, as :mod:`._blas`) with the same arguments as NumPy's ``matmul`` and
:func:`._blas.gemm`: the results are the two-call path's. ``tests/test_paths.py`` pins them to the
reference path.

When the caller has nothing to do between two batches (no callback that needs every batch; a
per-batch schedule gives its learning rates ahead), :meth:`WholeStep.run_batches` runs up to
:data:`step.RUN_BATCHES` whole steps in one compiled call, :func:`numba_kernels.step_run`, which also
gathers each batch's rows: the Python between two steps (the loop, the gather's call, the two calls'
dispatch: about 57 us a step, measured on a network whose products cost nothing) is gone, and the
arithmetic is the same, so the model is the per-batch loop's to the last bit.
"""
from __future__ import annotations

import math

import numpy as np

from . import _blas
from ._codes import GELU

__all__ = ["WholeStep", "available"]


def available() -> bool:
    """Whether the whole-step kernels can run: numba's kernels in use and BLAS's gemm found."""
    from . import kernels
    return _blas.available and getattr(kernels(), "NAME", "") == "numba"


class WholeStep:
    """Buffers and calls of the whole-step kernels for one ``fit`` (see the module docstring).

    Built by :meth:`make`, which answers None when the model, loss or optimizer is not one of those
    the kernels run. :meth:`forward` returns None for a batch they do not take (sample weights,
    one-hot targets, another dtype); :meth:`backward_update` False for a step they do not take (the
    first momentum step, which creates the buffers; a frozen parameter): the caller then runs its
    own path, which the caches and gradient this forward leaves work with.
    """

    def __init__(self, layers, codes, loss, opt, kind, params):
        from . import numba_kernels as nk
        self.nk = nk
        self.layers, self.loss, self.opt, self.kind, self.params = layers, loss, opt, kind, params
        self.dtype = layers[0].weight.data.dtype
        self.fp, self.ilp64 = _blas.address(self.dtype)
        self.codes = np.array([c for c, _ in codes], np.int64)
        self.cparams = np.array([p for _, p in codes], np.float64)
        self.empty = np.empty(0, self.dtype)
        self.widths = [l.weight.data.shape[1] for l in layers]
        self._bufs: dict = {}
        self._full = 0
        self._data_seen: list = []
        self._update_seen = self._update_cached = None
        self._gathered = None

    @classmethod
    def make(cls, layers, act_codes, loss, opt, kind):
        """A :class:`WholeStep` for these, or None when the kernels do not run them; ``act_codes``: per
        layer, ``step.activation_code`` of a Dense layer's activation (None: not one the kernels know)."""
        from ..nn.layers import Dense
        from ..nn.losses import CrossEntropy
        if kind not in ("sgd", "adam") or opt.param_groups or not layers or not available():
            return None
        if type(loss) is not CrossEntropy or loss.class_weight is not None:
            return None
        codes, dtype = [], layers[0].weight.data.dtype if type(layers[0]) is Dense else None
        if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
            return None
        for layer, code in zip(layers, act_codes):
            if type(layer) is not Dense:
                return None
            if code is None or code[0] == GELU or layer.activation.needs_input:
                return None
            ps = [layer.weight] + ([] if layer.bias is None else [layer.bias])
            if any(type(p.data) is not np.ndarray or p.data.dtype != dtype or not p.data.flags.c_contiguous
                   or type(p.grad) is not np.ndarray or p.grad.dtype != dtype or not p.grad.flags.c_contiguous
                   for p in ps):
                return None
            codes.append(code)
        params = [p for layer in layers for p in ([layer.weight] + ([] if layer.bias is None else [layer.bias]))]
        return cls(layers, codes, loss, opt, kind, params)

    def _buffers(self, m: int):
        """Per batch size: the activations, the gradients (the loss's last), losses and argmaxes."""
        b = self._bufs.get(m)
        if b is None:
            if len(self._bufs) > 2:  # the full batch and the last, partial one
                self._bufs = {k: v for k, v in self._bufs.items() if k == self._full}
            if not self._full:
                self._full = m
            As = tuple(np.empty((m, k), self.dtype) for k in self.widths)
            Gs = tuple(np.empty((m, k), self.dtype) for k in self.widths)
            b = self._bufs[m] = (As, Gs, np.empty(m, self.dtype), np.empty(m, np.intp))
        return b

    @staticmethod
    def _usable(arrays, dtype) -> bool:
        return all(type(a) is np.ndarray and a.dtype == dtype and a.flags.c_contiguous for a in arrays)

    def forward(self, xb, yb):
        """``(outputs, mean loss)`` of the batch, or None when the kernels do not take it."""
        if type(xb) is not np.ndarray or xb.dtype != self.dtype or xb.ndim != 2 or not xb.flags.c_contiguous \
                or type(yb) is not np.ndarray or yb.ndim != 1 or yb.dtype.kind not in "iu" or xb.shape[0] == 0:
            return None
        if not self._check_params():
            return None
        m = xb.shape[0]
        As, Gs, losses, pred = self._buffers(m)
        total = self.nk.step_forward(self.fp, self.ilp64, xb, self.weights, self.biases, self.codes, self.cparams,
                                     As, yb, self.loss.label_smoothing, self.empty, Gs[-1], losses, pred)
        self._keep(xb, As, Gs, pred)
        return As[-1], total / m

    def _check_params(self) -> bool:
        """Whether the parameters' arrays are ones the kernels take; checked at every call (set_weights
        or a load may replace them), the tuples the kernels get rebuilt when they were."""
        data = [p.data for p in self.params]
        seen = self._data_seen
        if len(data) != len(seen) or not all(a is b for a, b in zip(data, seen)):
            if not self._usable(data, self.dtype):
                return False
            layers, empty = self.layers, self.empty
            self.weights = tuple(layer.weight.data for layer in layers)
            self.biases = tuple(empty if layer.bias is None else layer.bias.data for layer in layers)
            self._data_seen = data
        return True

    def _keep(self, xb, As, Gs, pred) -> None:
        """The layers' caches, the loss's gradient and argmax, as the two-call path leaves them."""
        h = xb
        for layer, a in zip(self.layers, As):
            layer._cache = (h, None, a)
            h = a
        loss = self.loss
        loss.predicted, loss._grad = pred, Gs[-1]
        self._x, self._as, self._gs = xb, As, Gs

    def _update_args(self):
        """The gradients' and the optimizer state's arrays as the backward kernel takes them, or None
        (the caller's path then runs the step: a frozen parameter, the first step). Rebuilt only when
        some array was replaced."""
        opt, params, layers = self.opt, self.params, self.layers
        for p in params:
            if not p.trainable:
                return None
        state = opt.state
        if state is None or opt._unchecked_state or len(state) != len(params):
            return None  # the first step creates the state (or checks a loaded one)
        if self.kind == "sgd":
            keys = ("momentum_buffer",) if opt.momentum else ()
        else:
            keys = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq") if opt.amsgrad else ("exp_avg", "exp_avg_sq")
        seen = [keys, *(p.grad for p in params), *(st.get(k) for st in state for k in keys)]
        if self._update_seen is not None and len(seen) == len(self._update_seen) \
                and all(a is b for a, b in zip(seen, self._update_seen)):
            return self._update_cached
        if not self._usable(seen[1:], self.dtype):
            return None  # a momentum buffer not made yet, a state in another dtype
        empty = self.empty
        gW = tuple(layer.weight.grad for layer in layers)
        gb = tuple(empty if layer.bias is None else layer.bias.grad for layer in layers)
        SW, Sb = [], []
        i = 0
        for li, layer in enumerate(layers):
            SW.append(tuple(state[i][keys[min(j, len(keys) - 1)]] if keys else gW[li] for j in range(3)))
            i += 1
            if layer.bias is not None:
                Sb.append(tuple(state[i][keys[min(j, len(keys) - 1)]] if keys else gb[li] for j in range(3)))
                i += 1
            else:
                Sb.append((empty, empty, empty))
        self._update_cached = (gW, gb, *(tuple(s) for s in zip(*SW)), *(tuple(s) for s in zip(*Sb)))
        self._update_seen = seen
        return self._update_cached

    def backward_update(self, fuse_from: int, flush_every: int, tiny: float) -> bool:
        """Backward and every update of the batch :meth:`forward` took; False (nothing done) when the
        kernels do not take this step. ``fuse_from``, ``flush_every``: as ``step.FUSED_FROM`` and
        ``step.FLUSH_EVERY``; ``tiny``: state entries below it in size are flushed to 0."""
        args = self._update_args()
        if args is None:
            return False
        opt = self.opt
        opt.begin_step(self.params)
        hp = np.array(self._hp(opt.iterations, tiny), np.float64)
        self.nk.step_backward(self.fp, self.ilp64, self._x, self.weights, self.biases, self.codes, self.cparams,
                              self._as, self._gs, *args, self._kind_code, hp, fuse_from, opt.iterations, flush_every)
        return True

    @property
    def _kind_code(self) -> int:
        return 0 if self.kind == "sgd" else 1

    def _hp(self, t: int, tiny: float, lr: float | None = None) -> list:
        """The backward kernel's ``hp`` for iteration ``t`` (Adam's bias corrections depend on it) and
        learning rate ``lr`` (None: the optimizer's)."""
        opt = self.opt
        lr = opt.lr if lr is None else lr
        if self.kind == "sgd":
            return [lr, opt.momentum, 1.0 - opt.dampening, opt.weight_decay, opt.nesterov, tiny]
        b1, b2 = opt.betas
        wd = opt.weight_decay
        return [1 - lr * wd, wd, b1, 1 - b1, b2, 1 - b2, lr / (1 - b1 ** t), math.sqrt(1 - b2 ** t),
                opt.eps, opt.decoupled_weight_decay, opt.amsgrad, tiny]

    def run_batches(self, X, y, idx, m: int, fuse_from: int, flush_every: int, tiny: float, lrs=None,
                    standardize=None):
        """Whole steps over the batches ``X[idx[s m:(s + 1) m]]`` (labels ``y[...]``) in one compiled call
        (:func:`numba_kernels.step_run`): what :meth:`forward` and :meth:`backward_update` do per batch,
        without a return to Python between batches. ``len(idx)`` is a multiple of ``m``; ``lrs``: the
        learning rate of each step (a per-batch schedule's, worked out ahead), None: the optimizer's;
        ``standardize``: ``(mean, scale)`` (d,) in ``X``'s dtype, the rows taken as ``(x - mean) / scale``
        (a :class:`~mlpnumpy.datasets.Standardizer`'s arithmetic), None: as they are.

        Returns ``(sums, correct)``: the loss sum of each step run (float64; a non-finite last one ended
        the run before its backward pass, as the caller's per-batch check would) and the correct
        predictions of the finite steps; or None when the kernels do not take these batches (the caller
        then runs them one by one).
        """
        if type(X) is not np.ndarray or X.dtype != self.dtype or X.ndim != 2 or not X.flags.c_contiguous \
                or type(y) is not np.ndarray or y.ndim != 1 or y.dtype.kind not in "iu" or m <= 0 \
                or idx.shape[0] < m or idx.shape[0] % m or not self._check_params():
            return None
        args = self._update_args()
        if args is None:
            return None
        opt = self.opt
        opt.begin_step(self.params)  # the checks of a step; counted below, once per step run
        it0 = opt.iterations - 1
        steps = idx.shape[0] // m
        if self.kind == "sgd" and lrs is None:
            hps = np.tile(np.array(self._hp(it0 + 1, tiny), np.float64), (steps, 1))
        else:
            hps = np.array([self._hp(it0 + s + 1, tiny, None if lrs is None else lrs[s]) for s in range(steps)],
                           np.float64)
        As, Gs, losses, pred = self._buffers(m)
        xb, yb = self._batch_buffers(m, X.shape[1], y.dtype)
        sums = np.empty(steps, np.float64)
        xmean, xscale = (self.empty, self.empty) if standardize is None else standardize
        ran, correct = self.nk.step_run(self.fp, self.ilp64, X, y, idx, xmean, xscale, xb, yb, self.weights,
                                        self.biases, self.codes, self.cparams, As, Gs, self.loss.label_smoothing,
                                        self.empty, losses, pred, *args, self._kind_code, hps, fuse_from, it0,
                                        flush_every, sums)
        sums = sums[:ran]
        opt.iterations = it0 + ran - (0 if math.isfinite(sums[-1]) else 1)
        self._keep(xb, As, Gs, pred)
        return sums, correct

    def _batch_buffers(self, m: int, d: int, ydtype):
        """The rows and labels :meth:`run_batches` gathers a batch into, kept from call to call."""
        b = self._gathered
        if b is None or b[0].shape != (m, d) or b[1].dtype != ydtype:
            b = self._gathered = (np.empty((m, d), self.dtype), np.empty(m, ydtype))
        return b
