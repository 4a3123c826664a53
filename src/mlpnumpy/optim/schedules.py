"""Learning-rate schedules: rules that set ``optimizer.lr`` as training progresses.

Each follows ``torch.optim.lr_scheduler`` and is tested against it, but works on an mlpnumpy
:class:`~mlpnumpy.optim.optimizers.Optimizer` (one learning rate, ``optimizer.lr``).

Contract with the training loop
-------------------------------
1. ``schedule.begin(optimizer)`` once when a fit starts, before the first optimizer step. The first
   time, it records ``base_lr = optimizer.lr`` and sets ``optimizer.lr`` to the schedule's value at
   0. Calling it again (a continued fit) keeps the progress and re-applies the current learning rate
   to ``optimizer``; only after ``reset()`` does it start over (and ``reset()`` first puts
   ``base_lr`` back into the optimizer, so the next ``begin`` does not take a decayed rate as base).
2. ``schedule.step(metric)``:

   * if ``schedule.interval == "step"``: after every ``optimizer.step(...)`` (once per batch);
   * if ``schedule.interval == "epoch"``: once at the end of every epoch, after validation, with
     ``metric`` the monitored value (e.g. validation loss; ``ReduceLROnPlateau`` needs it, the others
     ignore it).

   ``step`` advances the count by one and sets ``optimizer.lr`` for the next update. So the ``k``-th
   epoch (or batch), counting from 0, runs at ``lr_k``, the value torch's scheduler gives after
   ``k`` calls of ``scheduler.step()``.
3. ``state_dict()`` / ``load_state_dict(d)`` save and restore the progress (plain numbers, strings
   and nested dicts only); hyperparameters are the constructor's, not part of the state.
"""
from __future__ import annotations

import bisect
import inspect
import math
from collections.abc import Callable, Iterable

from ..errors import (InvalidArgumentError, NotFittedError, check_choice, check_in_range,
                     check_positive)

__all__ = ["Schedule", "LambdaLR", "StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR",
           "LinearWarmup", "OneCycleLR", "ReduceLROnPlateau", "SCHEDULES", "get_schedule",
           "schedule_for_run"]

INTERVALS = ("epoch", "step")


class Schedule:
    """Base class: keeps the progress and drives the optimizer; subclasses give the rule.

    A subclass defines :meth:`lr_at` (the learning rate after ``epoch`` calls of ``step``, from
    ``self.base_lr``); stateful rules (:class:`ReduceLROnPlateau`) override ``_start``/``_advance``.

    Attributes
    ----------
    base_lr : float or None
        ``optimizer.lr`` when :meth:`begin` was first called; None before.
    last_epoch : int
        Number of ``step`` calls since the start (epochs or batches, after ``interval``).
    last_lr : float or None
        The learning rate this schedule set last.
    """

    def __init__(self, interval: str = "epoch"):
        self.interval = check_choice("interval", interval, INTERVALS)
        self.optimizer = None
        self._forget()

    # --- the rule -------------------------------------------------------------------------
    def lr_at(self, epoch: int) -> float:  # pragma: no cover - abstract
        """Learning rate after ``epoch`` steps (``epoch = 0``: the start)."""
        raise NotImplementedError

    def _start(self, base_lr: float) -> float:
        self.base_lr = float(base_lr)
        self.last_epoch = 0
        self.last_lr = self.lr_at(0)
        return self.last_lr

    def _advance(self, metric: float | None) -> float:
        self.last_epoch += 1
        self.last_lr = self.lr_at(self.last_epoch)
        return self.last_lr

    def _forget(self) -> None:
        self.base_lr: float | None = None
        self.last_epoch = 0
        self.last_lr: float | None = None

    # --- the contract with the loop -----------------------------------------------------------
    def begin(self, optimizer) -> None:
        """Attach to ``optimizer`` and set its learning rate; see the module docstring."""
        self.optimizer = optimizer
        if self.base_lr is None:
            self._start(optimizer.lr)
        optimizer.lr = self.last_lr

    def step(self, metric: float | None = None) -> None:
        """Advance by one epoch or batch (after ``interval``) and set ``optimizer.lr``."""
        if self.optimizer is None or self.base_lr is None:
            raise NotFittedError(f"{type(self).__name__}.step() was called before begin(optimizer); "
                                 "call schedule.begin(optimizer) once at the start of training")
        self.optimizer.lr = self._advance(metric)

    def reset(self) -> None:
        """Start over on the next :meth:`begin`, restoring the optimizer's base learning rate."""
        if self.optimizer is not None and self.base_lr is not None:
            self.optimizer.lr = self.base_lr
        self._forget()

    # --- persistence -------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """The progress: ``{"name", "base_lr", "last_epoch", "last_lr", ...}`` (plain values only)."""
        return {"name": type(self).__name__, "base_lr": self.base_lr, "last_epoch": self.last_epoch,
                "last_lr": self.last_lr, **self._extra_state()}

    def load_state_dict(self, d: dict) -> None:
        """Restore progress saved by :meth:`state_dict`; sets ``optimizer.lr`` when attached."""
        name = d.get("name") if isinstance(d, dict) else None
        if name != type(self).__name__:
            raise InvalidArgumentError(f"state_dict is for schedule {name!r}; expected one saved by "
                                       f"{type(self).__name__}.state_dict()")
        self.base_lr = None if d["base_lr"] is None else float(d["base_lr"])
        self.last_epoch = int(d["last_epoch"])
        self.last_lr = None if d["last_lr"] is None else float(d["last_lr"])
        self._load_extra_state(d)
        if self.optimizer is not None and self.last_lr is not None:
            self.optimizer.lr = self.last_lr

    def _extra_state(self) -> dict:
        return {}

    def _load_extra_state(self, d: dict) -> None:
        pass

    def __repr__(self) -> str:
        # Constructor arguments are stored verbatim under their own names.
        names = [n for n in inspect.signature(type(self).__init__).parameters if n != "self"]
        return f"{type(self).__name__}({', '.join(f'{n}={getattr(self, n)!r}' for n in names)})"


def _check_factor(arg: str, value) -> float:
    return float(check_positive(arg, value))


class LambdaLR(Schedule):
    r"""``lr = base_lr * lr_lambda(epoch)``, as ``torch.optim.lr_scheduler.LambdaLR``.

    Parameters
    ----------
    lr_lambda : callable
        ``f(epoch: int) -> float``, a factor >= 0 applied to the base learning rate.
    interval : {"epoch", "step"}
    """

    def __init__(self, lr_lambda: Callable[[int], float], interval: str = "epoch"):
        if not callable(lr_lambda):
            raise InvalidArgumentError(f"lr_lambda={lr_lambda!r} is not callable; expected a "
                                       "function epoch -> learning-rate factor")
        super().__init__(interval)
        self.lr_lambda = lr_lambda

    def lr_at(self, epoch: int) -> float:
        return self.base_lr * float(self.lr_lambda(epoch))


class StepLR(Schedule):
    r"""Decay by ``gamma`` every ``step_size`` epochs: ``lr = base_lr * gamma ** (epoch // step_size)``.

    As ``torch.optim.lr_scheduler.StepLR`` (closed form; torch multiplies step by step).
    """

    def __init__(self, step_size: int, gamma: float = 0.1, interval: str = "epoch"):
        self.step_size = check_positive("step_size", step_size, integer=True)
        self.gamma = _check_factor("gamma", gamma)
        super().__init__(interval)

    def lr_at(self, epoch: int) -> float:
        return self.base_lr * self.gamma ** (epoch // self.step_size)


class MultiStepLR(Schedule):
    r"""Decay by ``gamma`` at each milestone: ``lr = base_lr * gamma ** #{m in milestones: m <= epoch}``.

    As ``torch.optim.lr_scheduler.MultiStepLR``; a milestone listed twice decays twice, as in torch.
    """

    def __init__(self, milestones: Iterable[int], gamma: float = 0.1, interval: str = "epoch"):
        try:
            milestones = list(milestones)
        except TypeError:
            raise InvalidArgumentError(f"milestones={milestones!r} is not a list; expected a list of "
                                       "positive integers") from None
        self.milestones = sorted(check_positive("milestones", m, integer=True) for m in milestones)
        self.gamma = _check_factor("gamma", gamma)
        super().__init__(interval)

    def lr_at(self, epoch: int) -> float:
        return self.base_lr * self.gamma ** bisect.bisect_right(self.milestones, epoch)


class ExponentialLR(Schedule):
    r"""``lr = base_lr * gamma ** epoch``, as ``torch.optim.lr_scheduler.ExponentialLR``."""

    def __init__(self, gamma: float, interval: str = "epoch"):
        self.gamma = _check_factor("gamma", gamma)
        super().__init__(interval)

    def lr_at(self, epoch: int) -> float:
        return self.base_lr * self.gamma ** epoch


class CosineAnnealingLR(Schedule):
    r"""Cosine annealing without restarts, as ``torch.optim.lr_scheduler.CosineAnnealingLR``.

    .. math::  \eta_e = \eta_{min} + \tfrac12 (\eta_{base} - \eta_{min})
               \left(1 + \cos\frac{\pi e}{T_{max}}\right)

    Loshchilov & Hutter, "SGDR: Stochastic Gradient Descent with Warm Restarts" (ICLR 2017). Past
    ``T_max`` the cosine continues (rising again), as in torch.
    """

    def __init__(self, T_max: int, eta_min: float = 0.0, interval: str = "epoch"):  # noqa: N803
        self.T_max = check_positive("T_max", T_max, integer=True)
        self.eta_min = float(check_positive("eta_min", eta_min, allow_zero=True))
        super().__init__(interval)

    def lr_at(self, epoch: int) -> float:
        return self.eta_min + (self.base_lr - self.eta_min) * (1 + math.cos(math.pi * epoch / self.T_max)) / 2


class LinearWarmup(Schedule):
    r"""Linear warm-up for ``warmup`` epochs (or steps), then hand over to ``after``.

    .. math::  \eta_e = \eta_{base}\left(s + (1 - s)\frac{e}{W}\right) \ (e < W), \qquad
               \eta_e = \text{after}(e - W) \ (e \ge W)

    where ``after`` starts from the same base learning rate (``after=None``: constant
    ``base_lr``). This is torch's ``SequentialLR([LinearLR(start_factor=s, total_iters=W), after],
    milestones=[W])``; Goyal et al., "Accurate, Large Minibatch SGD" (2017) for gradual warm-up.

    Parameters
    ----------
    warmup : int
        Number of epochs (or steps) ``W`` >= 1 of warm-up.
    start_factor : float
        ``s`` in (0, 1]: the first learning rate is ``s * base_lr`` (torch's ``LinearLR`` default 1/3).
    after : Schedule, callable or None
        The schedule that follows; a callable is wrapped in :class:`LambdaLR`.
    interval : {"epoch", "step"} or None
        Defaults to ``after.interval`` (``"epoch"`` without ``after``); must agree with it.
    """

    def __init__(self, warmup: int, start_factor: float = 1.0 / 3, after: Schedule | Callable | None = None,
                 interval: str | None = None):
        self.warmup = check_positive("warmup", warmup, integer=True)
        self.start_factor = check_in_range("start_factor", start_factor, 0.0, 1.0, low_open=True,
                                           high_open=False)
        if after is not None and not isinstance(after, Schedule):
            if not callable(after):
                raise InvalidArgumentError(f"after={after!r} is not a schedule; expected a Schedule, "
                                           "a callable epoch -> factor, or None")
            after = LambdaLR(after, interval=interval or "epoch")
        if interval is None:
            interval = after.interval if after is not None else "epoch"
        if after is not None and after.interval != interval:
            raise InvalidArgumentError(f"interval={interval!r} differs from after.interval="
                                       f"{after.interval!r}; expected both to count the same unit")
        self.after = after
        super().__init__(interval)

    def lr_at(self, epoch: int) -> float:
        return self.base_lr * (self.start_factor + (1.0 - self.start_factor) * epoch / self.warmup)

    def _start(self, base_lr: float) -> float:
        if self.after is not None:
            self.after._forget()
        return super()._start(base_lr)

    def _advance(self, metric: float | None) -> float:
        self.last_epoch += 1
        e = self.last_epoch - self.warmup
        if e < 0:
            self.last_lr = self.lr_at(self.last_epoch)
        elif self.after is None:
            self.last_lr = self.base_lr
        elif e == 0:
            self.last_lr = self.after._start(self.base_lr)
        else:
            self.last_lr = self.after._advance(metric)
        return self.last_lr

    def _forget(self) -> None:
        super()._forget()
        if getattr(self, "after", None) is not None:
            self.after._forget()

    def _extra_state(self) -> dict:
        return {"after": None if self.after is None else self.after.state_dict()}

    def _load_extra_state(self, d: dict) -> None:
        if self.after is not None:
            if d.get("after") is None:
                self.after._forget()
            else:
                self.after.load_state_dict(d["after"])


class OneCycleLR(Schedule):
    r"""The 1cycle policy, as ``torch.optim.lr_scheduler.OneCycleLR`` with ``cycle_momentum=False``.

    From ``initial = max_lr / div_factor`` up to ``max_lr`` over the first ``pct_start`` of
    ``total_steps``, then down to ``initial / final_div_factor`` (``three_phase``: back to
    ``initial`` first, then down), each phase annealed by cosine
    ``end + (start - end)(1 + cos(pi p)) / 2`` or linearly in its fraction ``p``. Smith & Topin,
    "Super-Convergence" (2018). Phase boundaries are torch's (``pct_start * total_steps - 1``, ...).

    The optimizer's own learning rate is ignored (``max_lr`` sets the scale), and momentum is not
    cycled: torch's ``cycle_momentum=False``. Stepping more than ``total_steps`` times raises, as in
    torch. One difference: the rate set by the ``total_steps``-th step (after the last update of
    the cycle, so never used by it) is the final rate, where torch extrapolates past the end of the
    last phase (a negative rate for the linear three-phase cycle).

    Parameters
    ----------
    max_lr : float
        Peak learning rate > 0.
    total_steps : int
        Length of the cycle >= 1, usually ``epochs * batches_per_epoch``.
    pct_start : float
        Fraction of the cycle spent increasing, in [0, 1].
    anneal_strategy : {"cos", "linear"}
    div_factor, final_div_factor : float
        > 0; see above.
    three_phase : bool
    interval : {"step", "epoch"}
        Default ``"step"``: the cycle counts optimizer steps.
    """

    def __init__(self, max_lr: float, total_steps: int, pct_start: float = 0.3, anneal_strategy: str = "cos",
                 div_factor: float = 25.0, final_div_factor: float = 1e4, three_phase: bool = False,
                 interval: str = "step"):
        self.max_lr = float(check_positive("max_lr", max_lr))
        self.total_steps = check_positive("total_steps", total_steps, integer=True)
        self.pct_start = check_in_range("pct_start", pct_start, 0.0, 1.0, high_open=False)
        self.anneal_strategy = check_choice("anneal_strategy", anneal_strategy, ("cos", "linear"))
        self.div_factor = float(check_positive("div_factor", div_factor))
        self.final_div_factor = float(check_positive("final_div_factor", final_div_factor))
        self.three_phase = bool(three_phase)
        super().__init__(interval)
        initial = self.max_lr / self.div_factor
        low = initial / self.final_div_factor
        up = self.pct_start * self.total_steps - 1
        if self.three_phase:
            self._phases = [(up, initial, self.max_lr), (2 * up, self.max_lr, initial),
                            (self.total_steps - 1, initial, low)]
        else:
            self._phases = [(up, initial, self.max_lr), (self.total_steps - 1, self.max_lr, low)]
        start = 0.0
        for end, _, _ in self._phases:
            if end == start:
                raise InvalidArgumentError(
                    f"pct_start={pct_start!r} with total_steps={total_steps!r} gives a phase of no "
                    "steps; expected pct_start * total_steps != 1 and a cycle of more than one step")
            start = end

    def lr_at(self, epoch: int) -> float:
        if epoch > self.total_steps:
            raise InvalidArgumentError(
                f"OneCycleLR was stepped {epoch} times but total_steps={self.total_steps}; expected "
                "total_steps >= the number of optimizer steps (epochs * batches per epoch)")
        start = 0.0
        for i, (end, lr_from, lr_to) in enumerate(self._phases):
            if epoch <= end or i == len(self._phases) - 1:
                # Clamped: torch extrapolates the value after the last step (never used for an
                # update), which the linear three-phase cycle drives below zero.
                pct = min((epoch - start) / (end - start), 1.0)
                if self.anneal_strategy == "cos":
                    return lr_to + (lr_from - lr_to) / 2.0 * (math.cos(math.pi * pct) + 1)
                return (lr_to - lr_from) * pct + lr_from
            start = end
        raise AssertionError("unreachable")  # pragma: no cover


class ReduceLROnPlateau(Schedule):
    r"""Cut the learning rate when a monitored metric stops improving, as torch's ``ReduceLROnPlateau``.

    After more than ``patience`` epochs without improvement, ``lr <- max(lr * factor, min_lr)``
    (skipped if that changes it by no more than ``eps``), then ``cooldown`` epochs pass before bad
    epochs count again. "Improvement" in mode ``min``: ``metric < best * (1 - threshold)`` (``rel``)
    or ``metric < best - threshold`` (``abs``); mode ``max`` mirrors it. A NaN metric never improves.

    Parameters
    ----------
    mode : {"min", "max"}
    factor : float
        In [0, 1).
    patience : int
        >= 0.
    threshold : float
        >= 0.
    threshold_mode : {"rel", "abs"}
    cooldown : int
        >= 0.
    min_lr : float
        >= 0.
    eps : float
        >= 0.
    interval : {"epoch", "step"}
        ``step(metric)`` must be given the metric either way.
    """

    def __init__(self, mode: str = "min", factor: float = 0.1, patience: int = 10, threshold: float = 1e-4,
                 threshold_mode: str = "rel", cooldown: int = 0, min_lr: float = 0.0, eps: float = 1e-8,
                 interval: str = "epoch"):
        self.mode = check_choice("mode", mode, ("min", "max"))
        self.factor = check_in_range("factor", factor, 0.0, 1.0)
        self.patience = check_positive("patience", patience, integer=True, allow_zero=True)
        self.threshold = float(check_positive("threshold", threshold, allow_zero=True))
        self.threshold_mode = check_choice("threshold_mode", threshold_mode, ("rel", "abs"))
        self.cooldown = check_positive("cooldown", cooldown, integer=True, allow_zero=True)
        self.min_lr = float(check_positive("min_lr", min_lr, allow_zero=True))
        self.eps = float(check_positive("eps", eps, allow_zero=True))
        super().__init__(interval)

    def _forget(self) -> None:
        super()._forget()
        self.best = math.inf if self.mode == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0

    def _start(self, base_lr: float) -> float:
        self._forget()
        self.base_lr = self.last_lr = float(base_lr)
        return self.last_lr

    def lr_at(self, epoch: int) -> float:  # pragma: no cover - depends on the metric history
        raise NotImplementedError("ReduceLROnPlateau has no closed form; it follows the metric")

    def _is_better(self, a: float) -> bool:
        if self.threshold_mode == "rel":
            scale = 1.0 - self.threshold if self.mode == "min" else 1.0 + self.threshold
            target = self.best * scale
        else:
            target = self.best - self.threshold if self.mode == "min" else self.best + self.threshold
        return a < target if self.mode == "min" else a > target

    def _advance(self, metric: float | None) -> float:
        if metric is None:
            raise InvalidArgumentError("ReduceLROnPlateau.step(metric) got metric=None; expected the "
                                       "monitored value (e.g. validation loss) every epoch")
        current = float(metric)
        self.last_epoch += 1
        if self._is_better(current):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            new_lr = max(self.last_lr * self.factor, self.min_lr)
            if self.last_lr - new_lr > self.eps:
                self.last_lr = new_lr
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        return self.last_lr

    def _extra_state(self) -> dict:
        return {"best": self.best, "num_bad_epochs": self.num_bad_epochs,
                "cooldown_counter": self.cooldown_counter}

    def _load_extra_state(self, d: dict) -> None:
        self.best = float(d["best"])
        self.num_bad_epochs = int(d["num_bad_epochs"])
        self.cooldown_counter = int(d["cooldown_counter"])


SCHEDULES: dict[str, type[Schedule]] = {
    "step": StepLR, "multistep": MultiStepLR, "exponential": ExponentialLR, "cosine": CosineAnnealingLR,
    "warmup": LinearWarmup, "onecycle": OneCycleLR, "plateau": ReduceLROnPlateau, "lambda": LambdaLR,
}


def get_schedule(schedule: str | Schedule | Callable[[int], float], **kwargs) -> Schedule:
    """Return a :class:`Schedule` from an instance, a name in :data:`SCHEDULES`, or a callable.

    A name is built with ``kwargs`` (``get_schedule("cosine", T_max=50)``); a plain callable
    ``f(epoch) -> factor`` becomes ``LambdaLR(f, **kwargs)``; an instance is returned as is.

    Raises
    ------
    InvalidArgumentError
        For an unknown name (the message lists the valid ones), or kwargs given with an instance.
    """
    if isinstance(schedule, Schedule):
        if kwargs:
            raise InvalidArgumentError(f"schedule={schedule!r} is already built, so the options "
                                       f"{sorted(kwargs)} cannot be applied; expected no options")
        return schedule
    if callable(schedule) and not isinstance(schedule, type):
        return LambdaLR(schedule, **kwargs)
    name = check_choice("schedule", schedule, SCHEDULES)
    try:
        return SCHEDULES[name](**kwargs)
    except TypeError as exc:  # a required setting is missing or misspelt
        raise InvalidArgumentError(f"schedule={name!r} cannot be built from {kwargs or 'no options'} ({exc}); "
                                   f"pass an instance such as {SCHEDULES[name].__name__}(...), or let fit "
                                   "derive the settings from the run (schedule_for_run)") from None


def schedule_for_run(name: str, *, epochs: int, steps_per_epoch: int, lr: float) -> Schedule | None:
    """A schedule named ``name`` with settings derived from the length of a run.

    ``cosine``: anneal to 0 over all epochs; ``step``: x0.1 every third of the run; ``multistep``:
    x0.1 at 1/2 and 3/4; ``exponential``: x0.9 per epoch; ``onecycle``: per step, peaking at ``lr``;
    ``plateau``: halve after 2 epochs without improvement; ``warmup``: linear warm-up for a tenth of
    the run, then cosine. ``none`` gives None. The CLI's ``--schedule`` and ``fit(lr_schedule="...")``
    both use this.
    """
    e = max(1, int(epochs))
    if name == "none":
        return None
    name = check_choice("schedule", name, ["none", *[k for k in SCHEDULES if k != "lambda"]])
    if name == "cosine":
        return CosineAnnealingLR(T_max=e)
    if name == "step":
        return StepLR(step_size=max(1, e // 3), gamma=0.1)
    if name == "multistep":
        return MultiStepLR(milestones=sorted({max(1, e // 2), max(1, 3 * e // 4)}), gamma=0.1)
    if name == "exponential":
        return ExponentialLR(gamma=0.9)
    if name == "onecycle":
        return OneCycleLR(max_lr=lr, total_steps=max(2, e * steps_per_epoch))
    if name == "plateau":
        return ReduceLROnPlateau(factor=0.5, patience=2)
    warm = max(1, e // 10)
    return LinearWarmup(warmup=warm, after=CosineAnnealingLR(T_max=max(1, e - warm)))
