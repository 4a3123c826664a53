"""The fast path's training step and forward pass: the reference layers, loss and optimizers, run
through fused kernels on NumPy arrays.

A step does what the reference does (``model.forward``, ``loss.forward``, ``model.backward``,
``optimizer.step``) with these differences, none of which changes the maths:

- a dense layer's bias add and activation are one kernel, written over the layer's own ``z``; its
  derivative and the product with the upstream gradient are one kernel, written over that gradient
  (both arrays belong to the step); ``db`` is a product with a ones vector (a BLAS gemv);
- softmax cross-entropy with integer labels is one kernel (loss, gradient and argmax per row);
- batch normalisation in training is a kernel of three passes forward and two backward, dropout one pass
  (its mask and output from the layer's own draws); where ``fit`` standardises the inputs, the batch's
  rows are gathered and standardised in one pass (:meth:`FastStep.gather`);
- each parameter is updated as soon as its layer's backward is done (its gradient is final then),
  in one kernel over the optimizer's state; plain or momentum SGD folds ``dW = x.T @ dz`` into the
  update, one accumulating gemm (``W <- W - lr x.T dz``) with no gradient array at all.

The layers' caches keep the reference's layout, ``(x, z, a)`` (``z`` None where it was overwritten).

A plain dense network (Dense layers with a known activation but GELU, softmax cross-entropy on integer
labels, SGD or Adam/AdamW, no gradient reader or clipping) runs all of this in two compiled calls a
step instead (:mod:`.whole`), when numba and BLAS's gemm are there; :data:`WHOLE_STEP` turns that off.
When nothing happens between batches, runs of :data:`RUN_BATCHES` such steps take one call
(:meth:`FastStep.run_batches`).
"""
from __future__ import annotations

import math

import numpy as np

from . import _blas, kernels
from ._codes import CODES, IDENTITY

#: parameters from this size up take SGD's update folded into one BLAS gemm; below it the ctypes
#: call's fixed cost outweighs the pass it saves (at batch 128: 10.7 against 5.7 us for a 128 x 10
#: weight, 21.9 against 21.5 us at 8,192 weights, 182 against 312 us at 200,704).
FUSED_FROM = 8192
#: steps between flushes of near-subnormal momentum buffers updated by the gemm (the kernels flush
#: inline): values below ``tiny / eps`` change no update, but subnormal arithmetic is ~100x slower
FLUSH_EVERY = 100
#: run a plain dense network's whole step in two compiled calls when it can (see :mod:`.whole`);
#: False: always the per-layer calls below (the tests of the Python-side fold set it)
WHOLE_STEP = True
#: whole steps run per compiled call when the caller has nothing to do between batches (no callback
#: that needs every batch): the batches' gather, forward, backward and updates without Python in between
#: (:meth:`FastStep.run_batches`); 0: one call pair per batch
RUN_BATCHES = 64

_EMPTY: dict = {}
_ONES: dict = {}


def _empty(dtype) -> np.ndarray:
    e = _EMPTY.get(dtype)
    if e is None:
        e = _EMPTY[dtype] = np.empty(0, dtype)
    return e


def _ones(n: int, dtype) -> np.ndarray:
    key = (n, dtype)
    v = _ONES.get(key)
    if v is None:
        if len(_ONES) > 64:
            _ONES.clear()
        v = _ONES[key] = np.ones(n, dtype)
        v.flags.writeable = False
    return v


_TINY: dict = {}


def _tiny(dtype) -> float:
    """``tiny / eps`` of ``dtype``: state entries below it in size are flushed to 0 by the kernels."""
    t = _TINY.get(dtype)
    if t is None:
        fi = np.finfo(dtype)
        t = _TINY[dtype] = float(fi.tiny / fi.eps)
    return t


def activation_code(act) -> tuple[int, float] | None:
    """``(kernel code, parameter)`` of an activation the kernels know, else None."""
    entry = CODES.get(getattr(act, "name", None))
    if entry is None or type(act).__module__ != "mlpnumpy.nn.activations":
        return None  # a user's own subclass: its reference methods are the truth
    code, attr = entry
    return code, float(getattr(act, attr)) if attr else 0.0


def _is_dense(layer) -> bool:
    from ..nn.layers import Dense
    return type(layer) is Dense


# ---------------------------------------------------------------------- forward
def dense_forward(k, layer, x: np.ndarray, code=None) -> np.ndarray:
    """``a = f(x @ W + b)`` with the bias add and ``f`` in one kernel; caches ``(x, z or None, a)``.
    ``code``: :func:`activation_code` of the layer's activation, when the caller has it."""
    if code is None:
        code = activation_code(layer.activation)
    if code is None:
        return layer.forward(x, training=True)
    z = x @ layer.weight.data
    b = _empty(z.dtype) if layer.bias is None else layer.bias.data
    if layer.activation.needs_input:  # GELU: keep z for the derivative
        a = np.empty_like(z)
        k.bias_act(z, b, code[0], code[1], a)
        layer._cache = (x, z, a)
        return a
    if code[0] != IDENTITY or b.shape[0]:
        k.bias_act(z, b, code[0], code[1], z)
    layer._cache = (x, None, z)
    return z


def _takes(x, *arrays) -> bool:
    """Whether the batch-norm and dropout kernels take ``x``: a C-ordered 2-D float32/float64 NumPy array, with
    ``arrays`` (the layer's own) of its dtype."""
    return type(x) is np.ndarray and x.ndim == 2 and x.dtype in (np.float32, np.float64) and x.flags.c_contiguous \
        and x.shape[0] > 0 and all(type(a) is np.ndarray and a.dtype == x.dtype for a in arrays)


def batchnorm_forward(k, layer, x: np.ndarray):
    """A training batch through :class:`BatchNorm1d` in one kernel: the output, the layer's cache
    ``(x_hat, 1/std)`` and its running statistics as its own forward leaves them; None when the kernel
    does not take ``x`` or a float32 square overflowed (the layer's forward then redoes it in float64)."""
    gamma, beta = layer.gamma.data, layer.beta.data
    if not _takes(x, gamma, beta):
        return None
    n, f = x.shape
    y, xhat = np.empty_like(x), np.empty_like(x)
    mean, var, inv_std = np.empty(f, x.dtype), np.empty(f, x.dtype), np.empty(f, x.dtype)
    k.batchnorm_forward(x, gamma, beta, layer.eps, y, xhat, mean, var, inv_std)
    if not np.isfinite(var).all():
        return None
    layer.update_running(mean, var, n)
    layer._cache = (xhat, inv_std)
    return y


def batchnorm_backward(k, layer, g: np.ndarray, owned: bool):
    """``dL/dx`` of :class:`BatchNorm1d` in training from ``g`` (written over it when the step owns
    it), ``dgamma`` and ``dbeta`` in the parameters' gradients; None when the kernel does not take it."""
    cache = layer._cache
    if cache is None or len(cache) != 2 or not _takes(g, cache[0], cache[1], layer.gamma.data) \
            or cache[0].shape != g.shape:
        return None
    xhat, inv_std = cache
    grads = []
    for p in (layer.gamma, layer.beta):
        gr = p.grad
        if type(gr) is not np.ndarray or gr.shape != p.data.shape or gr.dtype != g.dtype:
            gr = p.grad = np.empty_like(p.data)
        grads.append(gr)
    dx = g if owned else np.empty_like(g)
    k.batchnorm_backward(g, xhat, layer.gamma.data, inv_std, dx, grads[0], grads[1])
    return dx


def dropout_forward(k, layer, x: np.ndarray):
    """A training batch through :class:`Dropout` in one kernel: the same draws from the layer's
    generator, the same mask (cached) and output as its own forward; None when it does not take ``x``."""
    if layer.p == 0.0 or layer.rng is None or not _takes(x):
        return None
    u = layer.rng.random(x.shape, dtype=x.dtype)
    y = np.empty_like(x)
    k.dropout_forward(x, u, layer.p, x.dtype.type(1.0 / (1.0 - layer.p)), y)
    layer._mask = u  # now the mask
    return y


def dropout_backward(k, layer, g: np.ndarray, owned: bool):
    """``dL/dx = g * mask`` of :class:`Dropout`, written over ``g`` when the step owns it."""
    mask = layer._mask
    if not owned or mask is None or type(g) is not np.ndarray or mask.shape != g.shape or mask.dtype != g.dtype:
        return None
    np.multiply(g, mask, out=g)
    return g


def standardizer_arrays(pre, X):
    """``(mean, scale)`` of a fitted :class:`~mlpnumpy.datasets.Standardizer` ``pre`` in the dtype of
    the training rows ``X`` (a C-ordered float NumPy array), for kernels that standardise rows as they
    gather them; None for any other preprocessor or array, or without the kernel."""
    from ..datasets.preprocessing import Standardizer
    if type(pre) is not Standardizer or pre.mean_ is None or not hasattr(kernels(), "gather_rows") \
            or not _takes(X) or pre.mean_.shape != (X.shape[1],):
        return None
    return pre.mean_.astype(X.dtype), pre.scale_.astype(X.dtype)


def _layer_kernels() -> dict:
    """Per layer type, the fast path's ``(forward, backward)`` of its training pass."""
    from ..nn.layers import BatchNorm1d, Dropout
    return {BatchNorm1d: (batchnorm_forward, batchnorm_backward), Dropout: (dropout_forward, dropout_backward)}


def forward(model, X: np.ndarray, training: bool = False) -> np.ndarray:
    """The model's raw outputs for ``X`` (n, features) on the fast path: dense layers through
    :func:`dense_forward`, every other layer through its own (reference) forward."""
    k = kernels()
    out = X
    for layer in model.layers:
        if _is_dense(layer) and out.dtype == layer.weight.data.dtype:
            out = dense_forward(k, layer, out)
        else:
            out = layer.forward(out, training=training)
    return out


# ---------------------------------------------------------------------- optimizer updates
def optimizer_kind(opt) -> str | None:
    """Which fused update runs ``opt``'s rule: ``"sgd"``, ``"adam"``, ``"rmsprop"``, ``"adagrad"``, or
    None for a rule of the user's own (a subclass that overrides ``_update``), which runs as written."""
    from ..optim.optimizers import SGD, Adagrad, AdamW, RMSprop
    for cls, kind in ((SGD, "sgd"), (AdamW, "adam"), (RMSprop, "rmsprop"), (Adagrad, "adagrad")):
        if isinstance(opt, cls) and type(opt)._update is cls._update:
            return kind
    return None


_UNSET = object()


def update(k, opt, p, state: dict, factors=None, kind=_UNSET) -> None:
    """One parameter's update by ``opt``'s rule in one kernel; ``factors = (A, B)`` when its gradient
    is the product ``A @ B`` not yet formed (SGD may fold it into a gemm; others form it first).
    A frozen parameter (``trainable`` False) is left alone; one in a parameter group gets its rates.
    ``kind`` is :func:`optimizer_kind`'s answer, when the caller already has it."""
    if not p.trainable:
        return
    if kind is _UNSET:
        kind = optimizer_kind(opt)
    fn = _UPDATES.get(kind, _reference_update)
    groups = getattr(opt, "_group_of", None)
    if groups and id(p) in groups:
        with opt.hyperparameters_for(p):
            fn(k, opt, p, state, factors)
    else:
        fn(k, opt, p, state, factors)


def _sgd_update(k, opt, p, state, factors):
    w = p.data
    tiny = _tiny(w.dtype)
    if factors is not None and _fused_sgd(opt, p, state, factors, tiny):
        return
    _form(p, factors)
    mu = opt.momentum
    buf = state.get("momentum_buffer")
    first = False
    if mu and buf is None:
        buf = state["momentum_buffer"] = np.empty_like(w)
        first = True
    k.sgd(w.reshape(-1), p.grad.reshape(-1), buf.reshape(-1) if mu else _scratch1(w.dtype),
          opt.lr, mu, 1 - opt.dampening, opt.weight_decay, opt.nesterov, first, tiny)


def _adam_update(k, opt, p, state, factors):
    _form(p, factors)
    w = p.data
    b1, b2 = opt.betas
    t = opt.iterations
    lr, wd = opt.lr, opt.weight_decay
    vmax = state["max_exp_avg_sq"].reshape(-1) if opt.amsgrad else _scratch1(w.dtype)
    k.adam(w.reshape(-1), p.grad.reshape(-1), state["exp_avg"].reshape(-1), state["exp_avg_sq"].reshape(-1),
           vmax, 1 - lr * wd, wd, b1, 1 - b1, b2, 1 - b2, lr / (1 - b1 ** t), math.sqrt(1 - b2 ** t), opt.eps,
           opt.decoupled_weight_decay, opt.amsgrad, _tiny(w.dtype))


def _rmsprop_update(k, opt, p, state, factors):
    _form(p, factors)
    w = p.data
    s1 = _scratch1(w.dtype)
    k.rmsprop(w.reshape(-1), p.grad.reshape(-1), state["square_avg"].reshape(-1),
              state["grad_avg"].reshape(-1) if opt.centered else s1,
              state["momentum_buffer"].reshape(-1) if opt.momentum else s1,
              opt.lr, opt.alpha, 1 - opt.alpha, opt.eps, opt.weight_decay, opt.momentum, opt.centered,
              _tiny(w.dtype))


def _adagrad_update(k, opt, p, state, factors):
    _form(p, factors)
    clr = opt.lr / (1 + (opt.iterations - 1) * opt.lr_decay)
    k.adagrad(p.data.reshape(-1), p.grad.reshape(-1), state["sum"].reshape(-1), clr, opt.eps, opt.weight_decay)


def _reference_update(k, opt, p, state, factors):
    _form(p, factors)
    opt._update(p, state)


_UPDATES = {"sgd": _sgd_update, "adam": _adam_update, "rmsprop": _rmsprop_update, "adagrad": _adagrad_update}
_SCRATCH: dict = {}


def _scratch1(dtype) -> np.ndarray:
    """A 1-entry array for a kernel's unused state argument (its value is never used)."""
    s = _SCRATCH.get(dtype)
    if s is None:
        s = _SCRATCH[dtype] = np.zeros(1, dtype)
    return s


def _form(p, factors) -> None:
    if factors is not None:
        A, B = factors
        np.matmul(A, B, out=p.grad)


def _fused_sgd(opt, p, state, factors, tiny) -> bool:
    """SGD's update with ``dW = A @ B`` folded into one accumulating gemm; False when it does not
    apply (small weights, Nesterov, momentum with weight decay, no usable BLAS)."""
    w = p.data
    if w.size < FUSED_FROM or not _blas.available:
        return False
    A, B = factors
    if not opt.momentum:  # w <- (1 - lr wd) w - lr A B
        return _blas.gemm(-opt.lr, A, B, 1.0 - opt.lr * opt.weight_decay, w)
    buf = state.get("momentum_buffer")
    if buf is None or opt.nesterov or opt.weight_decay:
        return False
    if not _blas.gemm(1.0 - opt.dampening, A, B, opt.momentum, buf):  # b <- mu b + (1 - tau) A B
        return False
    if opt.iterations % FLUSH_EVERY == 0:
        np.putmask(buf, np.abs(buf) < tiny, 0)
    w -= w.dtype.type(opt.lr) * buf
    return True


# ---------------------------------------------------------------------- the step
class FastStep:
    """Forward, loss, backward and update of one batch on the fast path (see the module docstring).

    Parameters
    ----------
    model : Sequential
    loss : Loss
    optimizer : Optimizer
    keep_grads : bool
        Fill every ``p.grad`` before updating (callbacks that read gradients, gradient clipping); the
        updates then come after the whole backward pass.
    clip : callable or None
        ``clip(params)``, called between the backward pass and the updates.
    """

    def __init__(self, model, loss, optimizer, *, keep_grads: bool = False, clip=None):
        from ..nn.losses import CrossEntropy
        self.k = kernels()
        self.model, self.loss, self.opt = model, loss, optimizer
        self.layers = list(model.layers)
        self.params = model.parameters()
        self.keep_grads = keep_grads or clip is not None
        self.clip = clip
        self.kind = optimizer_kind(optimizer)
        # per layer, in backward order: the layer, its kernel code (a plain Dense layer whose activation
        # the kernels know) or None, its own (forward, backward) kernels or None (batch norm, dropout), its
        # parameters with their index in the optimizer's state list
        plan, i = [], 0
        own = _layer_kernels() if hasattr(self.k, "batchnorm_forward") else {}
        for li, layer in enumerate(self.layers):
            ps = layer.parameters()
            code = activation_code(layer.activation) if _is_dense(layer) else None
            weight = getattr(layer, "weight", None) if code is not None else None
            # batch norm and dropout through their kernels (numba's; without numba, their own NumPy passes)
            plan.append((li, layer, code, own.get(type(layer)), [(i + j, p, p is weight) for j, p in enumerate(ps)]))
            i += len(ps)
        self.forward_plan = [(layer, code, fb) for _, layer, code, fb, _ in plan]
        self.backward_plan = plan[::-1]
        self.fused_loss = type(loss) is CrossEntropy and loss.class_weight is None
        self._g = None
        self._owned = False
        # a plain dense network: the whole step in two compiled calls (see .whole), when it takes the batch
        from .whole import WholeStep
        self.whole = None if self.keep_grads or not WHOLE_STEP else \
            WholeStep.make(self.layers, [code for _, code, _ in self.forward_plan], loss, optimizer, self.kind)
        self._whole_pending = False

    def forward(self, xb: np.ndarray, yb: np.ndarray, wb=None):
        """Raw outputs ``(n, k)`` and the batch's mean loss; the gradient is kept for :meth:`backward_update`."""
        if self.whole is not None and wb is None:
            res = self.whole.forward(xb, yb)
            if res is not None:
                self._g, self._owned, self._whole_pending = self.loss._grad, True, True
                return res
        self._whole_pending = False
        k, out = self.k, xb
        for layer, code, own in self.forward_plan:
            if code is not None and out.dtype == layer.weight.data.dtype:
                out = dense_forward(k, layer, out, code)
            else:
                y = None if own is None else own[0](k, layer, out)
                out = layer.forward(out, training=True) if y is None else y
        loss = self.loss
        if self.fused_loss and wb is None and yb.ndim == 1 and out.dtype.kind == "f":
            n = out.shape[0]
            grad = np.empty_like(out)
            losses = np.empty(n, out.dtype)
            pred = np.empty(n, np.intp)
            self.k.softmax_xent(out, yb, loss.label_smoothing, _empty(out.dtype), grad, losses, pred)
            loss.predicted, loss._grad = pred, grad
            self._g, self._owned = grad, True
            return out, float(losses.sum(dtype=np.float64)) / n
        lval = loss.forward(out, yb, wb)
        self._g, self._owned = loss._grad, False
        return out, lval

    def run_batches(self, X: np.ndarray, y: np.ndarray, idx: np.ndarray, m: int, lrs=None, standardize=None):
        """Whole steps over the batches ``X[idx[s m:(s + 1) m]]``, labels ``y[...]``, in one compiled call
        (:meth:`.whole.WholeStep.run_batches`; ``lrs``: each step's learning rate, None: the
        optimizer's; ``standardize``: :func:`standardizer_arrays`' pair, the rows standardised as they
        are gathered): ``(loss sums per step, correct predictions)``, or None when the whole-step
        kernels do not take them (the caller then runs :meth:`forward` and :meth:`backward_update` per
        batch)."""
        if self.whole is None or not RUN_BATCHES:
            return None
        self._whole_pending = False
        return self.whole.run_batches(X, y, idx, m, FUSED_FROM, FLUSH_EVERY, _tiny(self.whole.dtype), lrs,
                                      standardize)

    def gather(self, X: np.ndarray, idx: np.ndarray, standardize) -> np.ndarray:
        """The rows ``X[idx]`` standardised with :func:`standardizer_arrays`' pair, in one pass: what
        ``Standardizer.transform(X[idx])`` gives, without its two intermediate arrays."""
        out = np.empty((idx.shape[0], X.shape[1]), X.dtype)
        self.k.gather_rows(X, idx, standardize[0], standardize[1], out)
        return out

    def backward_update(self) -> None:
        """Backward through every layer and one update per parameter."""
        if self._whole_pending:
            self._whole_pending = False
            if self.whole.backward_update(FUSED_FROM, FLUSH_EVERY, _tiny(self.whole.dtype)):
                return
        k, opt, kind = self.k, self.opt, self.kind
        opt.begin_step(self.params)
        state = opt.state
        g, owned = self._g, self._owned
        keep = self.keep_grads
        pending = []  # (state index, param) when the updates wait for the whole backward
        for li, layer, code, own, params in self.backward_plan:
            need_dx = li > 0
            if code is not None and layer._cache is not None and layer._cache[2].dtype == g.dtype:
                g, owned, factors = self._dense_backward(layer, code, g, owned, need_dx)
            else:
                out = None if own is None else own[1](k, layer, g, owned)
                if out is None:
                    layer.needs_input_grad = need_dx
                    try:
                        out = layer.backward(g)
                    finally:
                        layer.needs_input_grad = True
                owned = owned if out is g else True
                g, factors = out, None
            for j, p, is_weight in params:
                f = factors if is_weight else None
                if keep:
                    _form(p, f)
                    pending.append((j, p))
                else:
                    update(k, opt, p, state[j], f, kind)
        if pending:
            if self.clip is not None:
                self.clip([p for p in self.params if p.trainable])
            for j, p in pending:
                update(k, opt, p, state[j], None, kind)

    def _dense_backward(self, layer, code, g, owned, need_dx):
        """``dz`` in one kernel (over ``g`` when the step owns it), ``db`` by gemv, ``dx``; ``dW`` is
        returned as the factors ``(x.T, dz)`` for the update to form or fold."""
        x, z, a = layer._cache
        code, param = code
        if code == IDENTITY:
            dz = g
        else:
            dz = g if owned else np.empty_like(g)
            self.k.act_backward(g, a, a if z is None else z, code, param, dz)
        if layer.bias is not None:
            np.matmul(_ones(dz.shape[0], dz.dtype), dz, out=layer.bias.grad)
        dx = dz @ layer.weight.data.T if need_dx else None  # before the update changes W
        return dx, True, (x.T, dz)
