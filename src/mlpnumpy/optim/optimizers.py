"""Optimizers: rules that turn gradients into parameter updates.

The base class validates, keeps per-parameter state and applies the update in place; subclasses
only compute it. Every rule follows ``torch.optim`` (single-tensor path) and is tested against it.

This is the reference path: each ``_update`` is the rule of its docstring, line by line. The fast
path (:mod:`mlpnumpy._kernels`) runs each whole update in one fused pass over the same state, and
``tests/test_paths.py`` pins the two together.
"""
from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence

import numpy as np

from .._array_api import copy_array, device_of, is_array, is_numpy, namespace, to_device
from ..errors import InvalidArgumentError, check_choice, check_number
from ..nn.parameter import Parameter

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "get_optimizer", "OPTIMIZERS"]


class Optimizer:
    """Base class. ``step(params)`` updates every parameter in place from its ``grad``.

    State (momentum buffers, moments) is created lazily on the first step, one entry per parameter
    in the order given, so the same list must be passed on every step. State arrays have the
    parameter's dtype, and ``p.data`` keeps its dtype and identity (views stay valid).

    Parameters
    ----------
    lr : float
        Learning rate, >= 0 (0 is accepted, as in PyTorch). Schedules change ``self.lr`` between
        steps; assigning it is validated the same way.
    weight_decay : float
        Weight-decay coefficient ``lambda``, >= 0. Unless a subclass says otherwise it is an L2
        penalty added to the gradient: ``g <- g + lambda * w``.

    Notes
    -----
    A parameter with ``trainable`` False (a frozen layer's) is skipped: neither it nor its state
    changes, as torch skips a parameter with ``requires_grad=False``. Parameters in a group added by
    :meth:`add_param_group` take that group's learning-rate multiplier and weight decay.
    """

    def __init__(self, lr: float, weight_decay: float = 0.0):
        self.lr = lr
        self.weight_decay = check_number("weight_decay", weight_decay, label="weight_decay value")
        self.state: list[dict[str, np.ndarray]] | None = None
        self.iterations = 0
        self._unchecked_state = False
        self._param_groups: list[dict] = []
        self._group_of: dict[int, dict] = {}

    # ---------------------------------------------------------------- parameter groups
    @property
    def param_groups(self) -> list[dict]:
        """The groups added by :meth:`add_param_group` (parameters not in one use the defaults)."""
        return self.__dict__.get("_param_groups", [])  # [] for an optimizer pickled before groups existed

    def add_param_group(self, group: dict) -> None:
        """Give some parameters their own learning rate and weight decay, as torch's parameter groups.

        Parameters
        ----------
        group : dict
            ``"params"``: the parameters (e.g. ``model.layers[0].parameters()``); then any of
            ``"lr_mult"`` (the group's rate is ``lr_mult * lr``, so schedules scale every group
            alike), ``"lr"`` (torch's form: stored as ``lr_mult = lr / self.lr``, the rate now) and
            ``"weight_decay"``.

        Examples
        --------
        >>> opt = SGD(lr=0.1, momentum=0.9)
        >>> opt.add_param_group({"params": model.layers[0].parameters(), "lr_mult": 0.1})  # doctest: +SKIP
        """
        if not isinstance(group, dict) or "params" not in group:
            raise InvalidArgumentError(f"group={group!r} is not a parameter group; expected a dict with "
                                       "'params' and any of 'lr_mult', 'lr', 'weight_decay'")
        unknown = sorted(set(group) - {"params", "lr_mult", "lr", "weight_decay"})
        if unknown:
            raise InvalidArgumentError(f"group has the key {unknown[0]!r}; expected 'params' and any of "
                                       "'lr_mult', 'lr', 'weight_decay'")
        if "lr" in group and "lr_mult" in group:
            raise InvalidArgumentError("group gives both 'lr' and 'lr_mult'; expected one of them")
        params = list(group["params"])
        from ..nn.parameter import Parameter
        for p in params:
            if not isinstance(p, Parameter):
                raise InvalidArgumentError(f"group['params'] holds {type(p).__name__}; expected Parameter "
                                           "objects, e.g. layer.parameters()")
            if id(p) in self._group_of:
                raise InvalidArgumentError(f"{p!r} is already in a parameter group; a parameter belongs to "
                                           "one group")
        entry: dict = {"params": params}
        if "lr" in group:
            lr = check_number("group['lr']", group["lr"], label="learning rate")
            if self.lr == 0:
                raise InvalidArgumentError("group['lr'] cannot be made relative to lr=0; give 'lr_mult' instead")
            entry["lr_mult"] = lr / self.lr
        elif "lr_mult" in group:
            entry["lr_mult"] = check_number("group['lr_mult']", group["lr_mult"], label="lr_mult value")
        if "weight_decay" in group:
            entry["weight_decay"] = check_number("group['weight_decay']", group["weight_decay"],
                                                 label="weight_decay value")
        self._param_groups.append(entry)
        for p in params:
            self._group_of[id(p)] = entry

    @contextlib.contextmanager
    def hyperparameters_for(self, p: Parameter):
        """While the block runs, ``self.lr`` and ``self.weight_decay`` are ``p``'s group's (both paths
        update one parameter inside it)."""
        groups = getattr(self, "_group_of", None)  # None in an optimizer pickled before groups existed
        group = groups.get(id(p)) if groups else None
        if group is None:
            yield
            return
        lr, wd = self._lr, self.weight_decay
        self._lr = lr * group.get("lr_mult", 1.0)
        self.weight_decay = group.get("weight_decay", wd)
        try:
            yield
        finally:
            self._lr, self.weight_decay = lr, wd

    @property
    def lr(self) -> float:
        return self._lr

    @lr.setter
    def lr(self, value: float) -> None:
        self._lr = check_number("lr", value, label="learning rate")

    def step(self, params: Sequence[Parameter]) -> None:
        """Apply one update to every parameter in ``params``, in place on ``p.data``."""
        self.begin_step(params)
        for p, state in zip(params, self.state):
            if not p.trainable:  # frozen: left as it is, state included
                continue
            with self.hyperparameters_for(p):
                self._update(p, state)

    def begin_step(self, params: Sequence[Parameter]) -> None:
        """What every step does before the updates (the fast path calls it too): create the state
        on the first step, check a loaded one against the parameters, count the step."""
        if self.state is None:
            self.state = [self.init_state(p) for p in params]
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
                    if is_numpy(p.data):
                        st[key] = v.astype(p.data.dtype, copy=False)
                    else:  # a state loaded on the host joins its parameter's device
                        st[key] = to_device(v, namespace(p.data), device_of(p.data), p.data.dtype)
            self._unchecked_state = False
        self.iterations += 1

    def _grad(self, p: Parameter) -> np.ndarray:
        """The gradient with the L2 penalty, ``g + lambda * w`` (``p.grad`` itself when there is none)."""
        if not self.weight_decay:
            return p.grad
        return p.grad + self.weight_decay * p.data

    def init_state(self, p: Parameter) -> dict[str, np.ndarray]:
        """The fresh per-parameter state this rule keeps for ``p`` (its names and zeroed arrays, e.g.
        Adam's ``exp_avg``/``exp_avg_sq``); what a checkpoint's saved state is checked against."""
        return {}

    def _update(self, p: Parameter, state: dict) -> None:  # pragma: no cover
        raise NotImplementedError

    def reset(self) -> None:
        """Forget all state, as for a fresh run (``lr`` is left as it is)."""
        self.state = None
        self.iterations = 0

    def apply_arrays(self, fn) -> None:
        """Replace every state array by ``fn(array)`` (how ``model.to`` moves the optimizer too)."""
        if self.state is not None:
            self.state = [{k: fn(v) for k, v in st.items()} for st in self.state]

    def state_dict(self) -> dict:
        """Everything needed to resume: ``{"lr", "iterations", "state": [{name: ndarray}] or None}``.

        Only numbers, lists, dicts and copies of arrays, so it can be saved without pickle.
        """
        return {"lr": self.lr, "iterations": self.iterations,
                "state": None if self.state is None else [{k: copy_array(v) for k, v in s.items()}
                                                          for s in self.state]}

    def load_state_dict(self, d: dict) -> None:
        """Restore from :meth:`state_dict`; the next ``step`` continues exactly where it left off."""
        try:
            lr, iterations, state = d["lr"], int(d["iterations"]), d["state"]
            state = None if state is None else [{str(k): np.array(v) if is_numpy(v) or not is_array(v)
                                                 else copy_array(v) for k, v in s.items()} for s in state]
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise InvalidArgumentError(
                f"state_dict is not an optimizer state ({exc!r}); expected the dict returned by "
                "Optimizer.state_dict()") from None
        self.lr = lr
        self.iterations = iterations
        self.state = None if state is None else [self._upgrade_state(st) for st in state]
        self._unchecked_state = state is not None  # checked against the parameters on the next step

    def _upgrade_state(self, state: dict) -> dict:
        """A state entry saved by an older mlpnumpy, in today's names and meaning (as is by default)."""
        return state

    def get_config(self) -> dict:
        """The constructor arguments that rebuild this optimizer (``type(opt)(**opt.get_config())``),
        learning rate included; the state is :meth:`state_dict`'s."""
        return {"lr": self.lr, **{k: v for k, v in vars(self).items()
                                  if not k.startswith("_") and k not in ("state", "iterations")}}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


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
        self.momentum = check_number("momentum", momentum, label="momentum value")
        self.dampening = check_number("dampening", dampening, low=-math.inf, label="dampening value")
        self.nesterov = bool(nesterov)
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise InvalidArgumentError(
                f"Invalid nesterov setting: Nesterov momentum requires a momentum and zero dampening; "
                f"got nesterov=True, momentum={momentum!r}, dampening={dampening!r}; expected "
                "momentum > 0 and dampening=0")

    def _update(self, p: Parameter, state: dict) -> None:
        g = self._grad(p)                                             # g = dL/dw + lambda w
        if self.momentum:
            buf = state.get("momentum_buffer")
            if buf is None:                                           # b_1 = g_1
                buf = state["momentum_buffer"] = copy_array(g)
            else:                                                     # b = mu b + (1 - tau) g
                buf[...] = self.momentum * buf + (1 - self.dampening) * g
            d = g + self.momentum * buf if self.nesterov else buf
        else:
            d = g
        p.data -= self.lr * d                                         # w -= eta d


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
        self.eps = check_number("eps", eps, label="epsilon value")
        try:
            beta1, beta2 = betas
        except (TypeError, ValueError):
            raise InvalidArgumentError(f"Invalid betas: betas={betas!r}; expected a pair "
                                       "(beta1, beta2) of numbers in [0, 1)") from None
        self.betas = (check_number("betas[0]", beta1, 0.0, 1.0, label="beta parameter at index 0"),
                      check_number("betas[1]", beta2, 0.0, 1.0, label="beta parameter at index 1"))
        self.amsgrad = bool(amsgrad)
        self.decoupled_weight_decay = bool(decoupled_weight_decay)

    def init_state(self, p: Parameter) -> dict[str, np.ndarray]:
        xp = namespace(p.data)
        state = {"exp_avg": xp.zeros_like(p.data), "exp_avg_sq": xp.zeros_like(p.data)}
        if self.amsgrad:
            state["max_exp_avg_sq"] = xp.zeros_like(p.data)
        return state

    def _upgrade_state(self, state: dict) -> dict:
        # mlpnumpy before the two paths kept m / (1 - beta1) and v / (1 - beta2) under other names
        if "grad_sum" not in state:
            return state
        b1, b2 = self.betas
        new = {"exp_avg": (1 - b1) * state["grad_sum"], "exp_avg_sq": (1 - b2) * state["sq_grad_sum"]}
        if "max_sq_grad_sum" in state:
            new["max_exp_avg_sq"] = (1 - b2) * state["max_sq_grad_sum"]
        return new

    def _update(self, p: Parameter, state: dict) -> None:
        beta1, beta2 = self.betas
        t = self.iterations
        if self.decoupled_weight_decay:
            if self.weight_decay:
                p.data *= 1 - self.lr * self.weight_decay              # w *= 1 - eta lambda
            g = p.grad
        else:
            g = self._grad(p)                                         # g += lambda w
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m[...] = beta1 * m + (1 - beta1) * g                          # m_t
        v[...] = beta2 * v + (1 - beta2) * g * g                      # v_t
        if self.amsgrad:
            vmax = state["max_exp_avg_sq"]
            vmax[...] = namespace(v).maximum(vmax, v)                 # v^_t = max(v^_{t-1}, v_t)
            v = vmax
        bias_correction1 = 1 - beta1 ** t
        bias_correction2 = 1 - beta2 ** t
        denom = namespace(v).sqrt(v) / math.sqrt(bias_correction2) + self.eps
        p.data -= (self.lr / bias_correction1) * m / denom


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
        self.alpha = check_number("alpha", alpha, label="alpha value")
        self.eps = check_number("eps", eps, label="epsilon value")
        self.momentum = check_number("momentum", momentum, label="momentum value")
        self.centered = bool(centered)

    def init_state(self, p: Parameter) -> dict[str, np.ndarray]:
        xp = namespace(p.data)
        state = {"square_avg": xp.zeros_like(p.data)}
        if self.momentum:
            state["momentum_buffer"] = xp.zeros_like(p.data)
        if self.centered:
            state["grad_avg"] = xp.zeros_like(p.data)
        return state

    def _update(self, p: Parameter, state: dict) -> None:
        a = self.alpha
        g = self._grad(p)
        xp = namespace(g)
        v = state["square_avg"]
        v[...] = a * v + (1 - a) * g * g                              # v_t
        if self.centered:
            gbar = state["grad_avg"]
            gbar[...] = a * gbar + (1 - a) * g                        # g-bar_t
            avg = xp.sqrt(v - gbar * gbar) + self.eps
        else:
            avg = xp.sqrt(v) + self.eps
        if self.momentum:
            buf = state["momentum_buffer"]
            buf[...] = self.momentum * buf + g / avg                  # b_t
            p.data -= self.lr * buf
        else:
            p.data -= self.lr * g / avg


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
        self.lr_decay = check_number("lr_decay", lr_decay, label="lr_decay value")
        self.initial_accumulator_value = check_number("initial_accumulator_value", initial_accumulator_value,
                                                      label="initial_accumulator_value value")
        self.eps = check_number("eps", eps, label="epsilon value")

    def init_state(self, p: Parameter) -> dict[str, np.ndarray]:
        return {"sum": namespace(p.data).full_like(p.data, self.initial_accumulator_value)}

    def _update(self, p: Parameter, state: dict) -> None:
        g = self._grad(p)
        clr = self.lr / (1 + (self.iterations - 1) * self.lr_decay)   # decayed eta_t
        acc = state["sum"]
        acc += g * g                                                  # s_t = s_{t-1} + g^2
        p.data -= clr * g / (namespace(acc).sqrt(acc) + self.eps)


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
