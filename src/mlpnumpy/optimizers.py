"""Optimizers: rules that turn gradients into parameter updates.

The base class validates, keeps per-parameter state and applies the update in place; subclasses
only compute it. Every rule follows ``torch.optim`` (single-tensor path) and is tested against it.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np

from .errors import InvalidArgumentError, check_choice
from . import _blas
from .parameter import Parameter

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "get_optimizer", "OPTIMIZERS"]


def _check(label: str, arg: str, value, low: float = 0.0, high: float | None = None) -> float:
    """Return ``float(value)`` if it is a finite real in ``[low, high)``, else raise like PyTorch.

    The message starts as torch's (``Invalid learning rate: ...``) and then names the argument, the
    value and what is accepted.
    """
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value) \
        and value >= low and (high is None or value < high)
    if not ok:
        accepted = f"a finite number >= {low:g}" if high is None else f"a number in [{low:g}, {high:g})"
        raise InvalidArgumentError(f"Invalid {label}: {arg}={value!r}; expected {accepted}")
    return float(value)


def _axpy(y: np.ndarray, a: float, x: np.ndarray, tmp: np.ndarray) -> None:
    """``y += a * x`` in place without allocating: ``tmp`` receives ``a * x`` (``tmp`` may be ``x``)."""
    np.multiply(x, a, out=tmp)
    y += tmp


class Optimizer:
    """Base class. ``step(params)`` updates every parameter in place from its ``grad``.

    State (momentum buffers, moments) is created lazily on the first step, one entry per parameter
    in the order given, so the same list must be passed on every step. State arrays have the
    parameter's dtype, and ``p.data`` keeps its dtype and identity (views stay valid).

    Besides the state, each parameter gets ``_n_scratch`` scratch arrays of its shape, reused on
    every step so that an update allocates nothing. They are not part of :meth:`state_dict`.

    Parameters
    ----------
    lr : float
        Learning rate, >= 0 (0 is accepted, as in PyTorch). Schedules change ``self.lr`` between
        steps; assigning it is validated the same way.
    weight_decay : float
        Weight-decay coefficient ``lambda``, >= 0. Unless a subclass says otherwise it is an L2
        penalty added to the gradient: ``g <- g + lambda * w``.
    """

    _n_scratch = 1

    def __init__(self, lr: float, weight_decay: float = 0.0):
        self.lr = lr
        self.weight_decay = _check("weight_decay value", "weight_decay", weight_decay)
        self.state: list[dict[str, np.ndarray]] | None = None
        self.iterations = 0
        self._scratch: list[np.ndarray] | None = None
        self._unchecked_state = False

    @property
    def lr(self) -> float:
        return self._lr

    @lr.setter
    def lr(self, value: float) -> None:
        self._lr = _check("learning rate", "lr", value)

    def step(self, params: Sequence[Parameter]) -> None:
        """Apply one update to every parameter in ``params``, in place on ``p.data``."""
        if self.state is None:
            self.state = [self._init_state(p) for p in params]
        elif len(self.state) != len(params):
            raise InvalidArgumentError(
                f"params has {len(params)} parameters but the optimizer state holds {len(self.state)}; "
                "pass the same parameter list on every step, or call reset() first")
        elif self._unchecked_state:  # loaded from a file: check it all before changing anything
            for i, (p, st) in enumerate(zip(params, self.state)):
                for key, v in st.items():
                    if v.shape != p.data.shape:
                        raise InvalidArgumentError(f"optimizer state[{i}][{key!r}] has shape {v.shape}; the "
                                                   f"parameter has {p.data.shape}: the state belongs to another model")
                    st[key] = v.astype(p.data.dtype, copy=False)
            self._unchecked_state = False
        if self._scratch is None:
            self._scratch = [np.empty((self._n_scratch,) + p.data.shape, p.data.dtype) for p in params]
        self.iterations += 1
        for p, state, scratch in zip(params, self.state, self._scratch):
            self._update(p, state, scratch)
        if self.iterations % self.flush_every == 0:
            self._flush_tiny()

    #: steps between flushes of near-subnormal state values (see :meth:`_flush_tiny`)
    flush_every = 100

    def _flush_tiny(self) -> None:
        """Set state entries below ``tiny / eps`` (about 1e-31 in float32) to exactly 0.

        Moments of inputs that are almost always 0 (an image's border pixels) decay geometrically
        into subnormal numbers, on which x86 arithmetic is about 100 times slower: measured here,
        Adam's epoch grew from 0.83 s to 1.39 s over five epochs of Fashion-MNIST. Entries that small
        change no float32 update (they are divided by at least ``eps``), so zeroing them, once every
        :attr:`flush_every` steps, before they can reach the subnormal range, is free of effect.
        """
        for st in self.state:
            for v in st.values():
                if v.dtype.kind == "f":
                    fi = np.finfo(v.dtype)
                    np.putmask(v, np.abs(v) < fi.tiny / fi.eps, 0)

    def _grad(self, p: Parameter, out: np.ndarray) -> np.ndarray:
        """The gradient with the L2 penalty, ``g + lambda * w``, written into ``out``.

        Returns ``p.grad`` itself (never written to) when there is no penalty.
        """
        if not self.weight_decay:
            return p.grad
        np.multiply(p.data, self.weight_decay, out=out)
        out += p.grad
        return out

    def _init_state(self, p: Parameter) -> dict[str, np.ndarray]:
        return {}

    def _update(self, p: Parameter, state: dict, scratch: np.ndarray) -> None:  # pragma: no cover
        raise NotImplementedError

    def reset(self) -> None:
        """Forget all state, as for a fresh run (``lr`` is left as it is)."""
        self.state = None
        self._scratch = None
        self.iterations = 0

    def state_dict(self) -> dict:
        """Everything needed to resume: ``{"lr", "iterations", "state": [{name: ndarray}] or None}``.

        Only numbers, lists, dicts and copies of arrays, so it can be saved without pickle.
        """
        return {"lr": self.lr, "iterations": self.iterations,
                "state": None if self.state is None else [{k: v.copy() for k, v in s.items()}
                                                          for s in self.state]}

    def load_state_dict(self, d: dict) -> None:
        """Restore from :meth:`state_dict`; the next ``step`` continues exactly where it left off."""
        try:
            lr, iterations, state = d["lr"], int(d["iterations"]), d["state"]
            state = None if state is None else [{str(k): np.array(v) for k, v in s.items()}
                                                for s in state]
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise InvalidArgumentError(
                f"state_dict is not an optimizer state ({exc!r}); expected the dict returned by "
                "Optimizer.state_dict()") from None
        self.lr = lr
        self.iterations = iterations
        self.state = state
        self._scratch = None
        self._unchecked_state = state is not None  # checked against the parameters on the next step

    def _hyperparameters(self) -> dict:
        return {"lr": self.lr, **{k: v for k, v in vars(self).items()
                                  if not k.startswith("_") and k not in ("state", "iterations")}}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._hyperparameters().items())
        return f"{type(self).__name__}({args})"


#: parameters from this size up take the fused update (one BLAS gemm). Below it, the ctypes call's
#: fixed cost outweighs the pass it saves. Measured at batch 128, fused against plain: 10.7 against
#: 5.7 us for a 128 x 10 weight, 21.9 against 21.5 us at 8,192 weights, 31.9 against 33.9 us at
#: 16,384, 182 against 312 us at 200,704.
_FUSED_FROM = 8192


class SGD(Optimizer):
    r"""Stochastic gradient descent with optional (Nesterov) momentum, as ``torch.optim.SGD``.

    .. math::

        g_t &= \nabla_w L + \lambda w_{t-1} \\
        b_t &= \mu b_{t-1} + (1 - \tau) g_t \quad (b_1 = g_1) \\
        d_t &= g_t + \mu b_t \ \text{(Nesterov)},\quad d_t = b_t \ \text{(momentum)},
               \quad d_t = g_t \ (\mu = 0) \\
        w_t &= w_{t-1} - \eta d_t

    Momentum as in Sutskever et al., "On the importance of initialization and momentum in deep
    learning" (ICML 2013), in PyTorch's form: the learning rate multiplies the buffer instead of
    entering it, and the first buffer is the gradient itself (no dampening on step 1).

    Parameters
    ----------
    lr : float
        Learning rate ``eta`` >= 0.
    momentum : float
        Momentum factor ``mu`` >= 0.
    dampening : float
        Dampening ``tau`` for the momentum buffer.
    weight_decay : float
        L2 penalty ``lambda`` >= 0.
    nesterov : bool
        Nesterov momentum; needs ``momentum > 0`` and ``dampening == 0``.
    """

    def __init__(self, lr: float = 0.01, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False):
        super().__init__(lr, weight_decay)
        self.momentum = _check("momentum value", "momentum", momentum)
        self.dampening = _check("dampening value", "dampening", dampening, low=-math.inf)
        self.nesterov = bool(nesterov)
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise InvalidArgumentError(
                f"Invalid nesterov setting: Nesterov momentum requires a momentum and zero dampening; "
                f"got nesterov=True, momentum={momentum!r}, dampening={dampening!r}; expected "
                "momentum > 0 and dampening=0")

    def _update(self, p: Parameter, state: dict, scratch: np.ndarray) -> None:
        if p.grad_factors is not None and p.data.size >= _FUSED_FROM and _blas.available \
                and self._fused_update(p, state):
            return
        s = scratch[0]
        g = self._grad(p, s)
        if not self.momentum:
            _axpy(p.data, -self.lr, g, s)
            return
        buf = state.get("momentum_buffer")
        if buf is None:
            buf = state["momentum_buffer"] = g.copy()
        else:
            buf *= self.momentum
            if self.dampening:
                _axpy(buf, 1.0 - self.dampening, g, s)  # g is not needed again: no Nesterov here
            else:
                buf += g
        if self.nesterov:  # w -= lr * (g + mu * b), as two scaled adds
            _axpy(p.data, -self.lr, g, s)
            _axpy(p.data, -self.lr * self.momentum, buf, s)
        else:
            _axpy(p.data, -self.lr, buf, s)


    def _fused_update(self, p: Parameter, state: dict) -> bool:
        """The same update when the gradient is a pending product ``A @ B`` (a dense layer's
        ``x.T @ dz``): one accumulating gemm instead of a gradient array and a pass over it.

        Plain: :math:`w \\leftarrow (1 - \\eta\\lambda) w - \\eta A B`. Momentum (no decay, no
        Nesterov): :math:`b \\leftarrow \\mu b + (1-\\tau) A B`, then :math:`w \\leftarrow w - \\eta b`.
        Returns False when it does not apply; ``tests/test_blas.py`` pins it to the plain path.
        """
        A, B = p.grad_factors
        if not self.momentum:
            return _blas.gemm(-self.lr, A, B, 1.0 - self.lr * self.weight_decay, p.data)
        buf = state.get("momentum_buffer")
        if buf is None or self.nesterov or self.weight_decay:
            return False
        if not _blas.gemm(1.0 - self.dampening, A, B, self.momentum, buf):
            return False
        p.data -= p.data.dtype.type(self.lr) * buf
        return True


class AdamW(Optimizer):
    r"""Adam with decoupled weight decay, as ``torch.optim.AdamW``; :class:`Adam` is this without it.

    .. math::

        w_{t-1} &\leftarrow w_{t-1}(1 - \eta\lambda) \ \text{(decoupled)} \quad\text{or}\quad
            g_t = \nabla_w L + \lambda w_{t-1} \ \text{(L2, Adam)} \\
        m_t &= \beta_1 m_{t-1} + (1 - \beta_1) g_t, \qquad
        v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2 \\
        \hat v_t &= \max(\hat v_{t-1}, v_t) \ \text{(AMSGrad)}, \quad \hat v_t = v_t \ \text{otherwise} \\
        w_t &= w_{t-1} - \frac{\eta}{1 - \beta_1^t}\,
               \frac{m_t}{\sqrt{\hat v_t} / \sqrt{1 - \beta_2^t} + \epsilon}

    Kingma & Ba, "Adam: A Method for Stochastic Optimization" (ICLR 2015); Loshchilov & Hutter,
    "Decoupled Weight Decay Regularization" (ICLR 2019); Reddi et al., "On the Convergence of Adam and
    Beyond" (ICLR 2018) for AMSGrad. As in PyTorch, ``eps`` is added after the bias correction of
    ``v`` (the paper adds it to ``sqrt(v_hat)``), decoupled decay is scaled by ``lr`` (the paper uses
    a separate schedule multiplier), and AMSGrad keeps the maximum of the raw ``v``.

    Parameters
    ----------
    lr : float
        Learning rate ``eta`` >= 0.
    betas : tuple of 2 floats
        Decay rates ``(beta1, beta2)``, each in [0, 1).
    eps : float
        ``epsilon`` >= 0, added to the denominator.
    weight_decay : float
        ``lambda`` >= 0.
    amsgrad : bool
        Use the AMSGrad maximum of the second moment.
    decoupled_weight_decay : bool
        True: shrink the weights directly (AdamW). False: add ``lambda * w`` to the gradient (Adam).
    """

    def __init__(self, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, *, decoupled_weight_decay: bool = True):
        super().__init__(lr, weight_decay)
        self.eps = _check("epsilon value", "eps", eps)
        try:
            beta1, beta2 = betas
        except (TypeError, ValueError):
            raise InvalidArgumentError(f"Invalid betas: betas={betas!r}; expected a pair "
                                       "(beta1, beta2) of numbers in [0, 1)") from None
        self.betas = (_check("beta parameter at index 0", "betas[0]", beta1, 0.0, 1.0),
                      _check("beta parameter at index 1", "betas[1]", beta2, 0.0, 1.0))
        self.amsgrad = bool(amsgrad)
        self.decoupled_weight_decay = bool(decoupled_weight_decay)

    @property
    def _n_scratch(self) -> int:
        # The L2-penalised gradient needs its own buffer because g is read by both moments.
        return 2 if self.weight_decay and not self.decoupled_weight_decay else 1

    def _init_state(self, p: Parameter) -> dict[str, np.ndarray]:
        state = {"grad_sum": np.zeros_like(p.data), "sq_grad_sum": np.zeros_like(p.data)}
        if self.amsgrad:
            state["max_sq_grad_sum"] = np.zeros_like(p.data)
        return state

    def _update(self, p: Parameter, state: dict, scratch: np.ndarray) -> None:
        # The moments are kept without their (1 - beta) factors, n = m / (1 - beta1) and
        # u = v / (1 - beta2), which saves two passes over the weights per step; the factors are
        # folded into the scalars of the final update, so the result is the rule above.
        beta1, beta2 = self.betas
        t = self.iterations
        s = scratch[0]
        if self.decoupled_weight_decay:
            if self.weight_decay:
                p.data *= 1.0 - self.lr * self.weight_decay
            g = p.grad
        else:
            g = self._grad(p, scratch[-1])
        n, u = state["grad_sum"], state["sq_grad_sum"]
        n *= beta1
        n += g                                   # n_t = beta1 n + g
        np.multiply(g, g, out=s)
        u *= beta2
        u += s                                   # u_t = beta2 u + g^2
        if self.amsgrad:
            u = np.maximum(state["max_sq_grad_sum"], u, out=state["max_sq_grad_sum"])
        c1 = (1.0 - beta1) / (1.0 - beta1 ** t)             # m_hat = c1 n
        c2 = math.sqrt((1.0 - beta2) / (1.0 - beta2 ** t))  # sqrt(v_hat) = c2 sqrt(u)
        # w -= lr c1 n / (c2 sqrt(u) + eps) = (lr c1 / c2) n / (sqrt(u) + eps / c2)
        np.sqrt(u, out=s)
        s += self.eps / c2
        np.divide(n, s, out=s)
        s *= self.lr * c1 / c2
        p.data -= s


class Adam(AdamW):
    r"""Adam, as ``torch.optim.Adam``: :class:`AdamW` with the weight decay as an L2 penalty.

    ``weight_decay`` is added to the gradient (``g + lambda * w``) before the moments, so it is
    rescaled by the adaptive denominator; see :class:`AdamW` for the update rule and the papers.
    """

    def __init__(self, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False, *, decoupled_weight_decay: bool = False):
        super().__init__(lr, betas, eps, weight_decay, amsgrad,
                         decoupled_weight_decay=decoupled_weight_decay)


class RMSprop(Optimizer):
    r"""RMSprop, as ``torch.optim.RMSprop``.

    .. math::

        g_t &= \nabla_w L + \lambda w_{t-1} \\
        v_t &= \alpha v_{t-1} + (1 - \alpha) g_t^2 \\
        \bar g_t &= \alpha \bar g_{t-1} + (1 - \alpha) g_t, \quad
            \tilde v_t = v_t - \bar g_t^2 \ \text{(centered)}, \quad \tilde v_t = v_t \ \text{otherwise} \\
        b_t &= \mu b_{t-1} + g_t / (\sqrt{\tilde v_t} + \epsilon), \qquad w_t = w_{t-1} - \eta b_t

    (with ``mu = 0``, simply ``w -= eta * g / (sqrt(v~) + eps)``). Hinton, Lecture 6e of "Neural
    Networks for Machine Learning" (2012); the centered form is Graves, "Generating Sequences With
    Recurrent Neural Networks" (2013). As in PyTorch, ``eps`` is added outside the square root.

    Parameters
    ----------
    lr : float
        Learning rate ``eta`` >= 0.
    alpha : float
        Smoothing constant >= 0.
    eps : float
        ``epsilon`` >= 0.
    weight_decay : float
        L2 penalty ``lambda`` >= 0.
    momentum : float
        Momentum ``mu`` >= 0.
    centered : bool
        Normalise by the estimated variance instead of the raw second moment.
    """

    def __init__(self, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8, weight_decay: float = 0.0,
                 momentum: float = 0.0, centered: bool = False):
        super().__init__(lr, weight_decay)
        self.alpha = _check("alpha value", "alpha", alpha)
        self.eps = _check("epsilon value", "eps", eps)
        self.momentum = _check("momentum value", "momentum", momentum)
        self.centered = bool(centered)

    @property
    def _n_scratch(self) -> int:
        return 2 if self.weight_decay else 1

    def _init_state(self, p: Parameter) -> dict[str, np.ndarray]:
        state = {"square_avg": np.zeros_like(p.data)}
        if self.momentum:
            state["momentum_buffer"] = np.zeros_like(p.data)
        if self.centered:
            state["grad_avg"] = np.zeros_like(p.data)
        return state

    def _update(self, p: Parameter, state: dict, scratch: np.ndarray) -> None:
        a = self.alpha
        s = scratch[0]
        g = self._grad(p, scratch[-1])
        v = state["square_avg"]
        v *= a
        np.multiply(g, g, out=s)
        _axpy(v, 1.0 - a, s, s)
        if self.centered:
            gbar = state["grad_avg"]
            gbar *= a
            _axpy(gbar, 1.0 - a, g, s)
            np.multiply(gbar, gbar, out=s)
            np.subtract(v, s, out=s)
            np.sqrt(s, out=s)
        else:
            np.sqrt(v, out=s)
        s += self.eps
        np.divide(g, s, out=s)
        if self.momentum:
            buf = state["momentum_buffer"]
            buf *= self.momentum
            buf += s
            _axpy(p.data, -self.lr, buf, s)
        else:
            _axpy(p.data, -self.lr, s, s)


class Adagrad(Optimizer):
    r"""Adagrad, as ``torch.optim.Adagrad``.

    .. math::

        g_t &= \nabla_w L + \lambda w_{t-1}, \qquad
        \tilde\eta_t = \frac{\eta}{1 + (t - 1)\,\delta} \\
        s_t &= s_{t-1} + g_t^2 \quad (s_0 = \text{initial\_accumulator\_value}) \\
        w_t &= w_{t-1} - \tilde\eta_t \, \frac{g_t}{\sqrt{s_t} + \epsilon}

    Duchi, Hazan & Singer, "Adaptive Subgradient Methods for Online Learning and Stochastic
    Optimization" (JMLR 2011). The learning-rate decay ``delta`` and the ``eps`` outside the root
    are PyTorch's additions.

    Parameters
    ----------
    lr : float
        Learning rate ``eta`` >= 0.
    lr_decay : float
        ``delta`` >= 0.
    weight_decay : float
        L2 penalty ``lambda`` >= 0.
    initial_accumulator_value : float
        Starting value of the sum of squares, >= 0.
    eps : float
        ``epsilon`` >= 0.
    """

    def __init__(self, lr: float = 1e-2, lr_decay: float = 0.0, weight_decay: float = 0.0,
                 initial_accumulator_value: float = 0.0, eps: float = 1e-10):
        super().__init__(lr, weight_decay)
        self.lr_decay = _check("lr_decay value", "lr_decay", lr_decay)
        self.initial_accumulator_value = _check("initial_accumulator_value value",
                                                "initial_accumulator_value", initial_accumulator_value)
        self.eps = _check("epsilon value", "eps", eps)

    @property
    def _n_scratch(self) -> int:
        return 2 if self.weight_decay else 1

    def _init_state(self, p: Parameter) -> dict[str, np.ndarray]:
        return {"sum": np.full_like(p.data, self.initial_accumulator_value)}

    def _update(self, p: Parameter, state: dict, scratch: np.ndarray) -> None:
        s = scratch[0]
        g = self._grad(p, scratch[-1])
        clr = self.lr / (1.0 + (self.iterations - 1) * self.lr_decay)
        acc = state["sum"]
        np.multiply(g, g, out=s)
        acc += s
        np.sqrt(acc, out=s)
        s += self.eps
        np.divide(g, s, out=s)
        _axpy(p.data, -clr, s, s)


OPTIMIZERS: dict[str, type[Optimizer]] = {
    "sgd": SGD, "adam": Adam, "adamw": AdamW, "rmsprop": RMSprop, "adagrad": Adagrad,
}


def get_optimizer(optimizer: str | Optimizer, lr: float | None = None) -> Optimizer:
    """Return an :class:`Optimizer` from an instance or a name (``"sgd"``, ``"adam"``, ...).

    A name is built with ``lr`` when given, else with the class's default learning rate. An
    instance is returned as is (``lr``, if given, is then assigned to it).

    Raises
    ------
    InvalidArgumentError
        For an unknown name (the message lists the valid ones) or an invalid ``lr``.
    """
    if isinstance(optimizer, Optimizer):
        if lr is not None:
            optimizer.lr = lr
        return optimizer
    name = check_choice("optimizer", optimizer, OPTIMIZERS)
    cls = OPTIMIZERS[name]
    return cls() if lr is None else cls(lr=lr)
