"""The training driver: the one epoch/batch loop every fit runs (``mlpnumpy.fit`` and the
scikit-learn estimators' stochastic solvers), with the work of an epoch passed in.

The driver owns what the two used to do each on their own: the callbacks (their ``params``, model
and hooks, per-batch hooks only for callbacks that define one), the learning-rate schedule's steps,
Ctrl-C, the epoch's time and rate in the logs, and putting the model back at the epoch's start when
training diverges or is interrupted. What a batch computes (forward, loss, backward, update) stays
with the caller, as in Keras's ``fit`` with ``CallbackList``.
"""
from __future__ import annotations

import signal
import threading
import time
import warnings
from typing import Callable

import numpy as np

from .._array_api import namespace
from .callbacks import Callback, CallbackList, ProgressBar
from ..errors import DivergenceError

__all__ = ["TrainingDriver", "all_finite"]


def all_finite(a) -> bool:
    """Whether every entry of ``a`` (an array of any Array API library) is finite."""
    if isinstance(a, np.ndarray):
        return bool(np.isfinite(a).all())
    xp = namespace(a)
    return bool(xp.all(xp.isfinite(a)))


class _Boundary:
    """The training state at an epoch boundary: parameters and buffers, optimizer state and rate,
    schedule progress, the generator's state and ``epochs_trained``. ``restore()`` puts it all back,
    so an interrupted epoch is undone and a later fit redoes it exactly as an uninterrupted run would."""

    def __init__(self, model, opt, schedule):
        self.model, self.opt, self.schedule = model, opt, schedule
        self.weights = model.get_weights()
        self.opt_state = opt.state_dict()
        self.schedule_state = None if schedule is None else schedule.state_dict()
        self.rng_state = model.rng.bit_generator.state
        self.epochs_trained = model.epochs_trained

    def restore(self) -> None:
        self.model.set_weights(self.weights)
        self.opt.load_state_dict(self.opt_state)
        if self.schedule is not None:
            self.schedule.load_state_dict(self.schedule_state)
        self.opt.lr = self.opt_state["lr"]
        self.model.rng.bit_generator.state = self.rng_state  # in place: dropout layers share it
        self.model.epochs_trained = self.epochs_trained


class _Interrupt:
    """Turns the first Ctrl-C into a flag the loop reads after the current batch (and between
    epochs); a second one raises KeyboardInterrupt as usual. Either way the unfinished epoch is
    undone: the model ends at ``boundary``, the start of the epoch, never part-way through one."""

    def __init__(self):
        self.requested = False
        self.boundary: _Boundary | None = None
        self._old = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._old = signal.getsignal(signal.SIGINT)
            signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, exc_type, exc, tb):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
        if exc_type is KeyboardInterrupt and self.boundary is not None:
            self.boundary.restore()  # the second Ctrl-C may land mid-step: back to the epoch's start
        return False


class _NoFlag:
    """scikit-learn's rule for Ctrl-C: no handler; the KeyboardInterrupt ends the epochs, the
    driver warns and finishes the fit."""

    requested = False
    boundary = None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        return False


class TrainingDriver:
    """Runs epochs of caller-given work between the callbacks, the schedule and Ctrl-C.

    Parameters
    ----------
    model : Sequential
        What the callbacks see (``callback.model``); ``model.stop_training`` ends training.
    callbacks : sequence of Callback
        Called in order; give a :class:`~mlpnumpy.training.callbacks.History` last so that it records the
        keys the others add.
    optimizer
        Anything with an ``lr`` attribute; schedules set it. With ``interrupt="undo"`` also
        ``state_dict``/``load_state_dict``/``reset``/``state`` (an mlpnumpy optimizer).
    params : dict
        ``{"epochs", "steps", "batch_size", "samples"}``, given to every callback as ``params``.
    schedule : schedule, optional
        Stepped after every batch (``interval == "step"``, by :meth:`step_done`) or after every
        epoch with the value of its ``monitor`` (``val_loss`` by default, else ``loss``).
    begin_schedule : bool
        Call ``schedule.begin(optimizer)`` after the callbacks' ``on_train_begin``.
    interrupt : {"undo", "warn"}
        ``"undo"``: the first Ctrl-C stops after the batch and the unfinished epoch is undone
        (weights, optimizer, schedule, generator, ``epochs_trained``). ``"warn"``: scikit-learn's
        rule, a ``UserWarning`` and the fit ends where it is.
    on_device : bool
        Arrays live on another library's device: a progress bar then moves per epoch, since its
        per-batch numbers would each be a host round trip.
    history : History, optional
        Its ``interrupted`` is set when Ctrl-C ends training.
    """

    def __init__(self, model, callbacks, optimizer, *, params: dict, schedule=None, begin_schedule: bool = True,
                 interrupt: str = "undo", on_device: bool = False, history=None):
        self.model, self.opt, self.schedule = model, optimizer, schedule
        self.begin_schedule = begin_schedule
        self.callbacks = CallbackList(callbacks)
        for c in self.callbacks.callbacks:
            c.params = dict(params)
        self.callbacks.set_model(model)
        # only callbacks that define on_batch_end are called per batch (the hot path skips the rest)
        self.batch_hooks = CallbackList([c for c in self.callbacks.callbacks
                                         if (type(c).on_batch_end is not Callback.on_batch_end
                                             or "on_batch_end" in vars(c))
                                         and not (on_device and isinstance(c, ProgressBar))])
        self._undo = interrupt == "undo"
        self.history = history
        self._guard = None
        self._cut = False
        self._schedule_saved = None

    @property
    def per_batch(self) -> bool:
        """Whether some callback wants a call after every batch."""
        return bool(self.batch_hooks.callbacks)

    @property
    def epoch_start(self):
        """The epoch's starting state (``weights``, optimizer, ...) with ``interrupt="undo"``."""
        return None if self._guard is None else self._guard.boundary

    @property
    def batches_may_run(self) -> bool:
        """Whether several batches may run between two calls of :meth:`step_done`: no per-batch hook
        needs every batch (see ``Callback.every_batch``). A per-batch schedule is stepped ahead by
        :meth:`learning_rates_ahead` then."""
        return all(not getattr(c, "every_batch", True) for c in self.batch_hooks.callbacks)

    def learning_rates_ahead(self, k: int) -> list[float] | None:
        """The learning rates of the next ``k`` batches, the per-batch schedule stepped ahead to the
        last of them (:meth:`step_done` after the run steps it once more, as after every batch);
        None without a per-batch schedule. Undo with :meth:`rewind_schedule`."""
        sched = self.schedule
        if sched is None or sched.interval != "step":
            return None
        self._schedule_saved = sched.state_dict()
        lrs = []
        for i in range(k):
            lrs.append(float(self.opt.lr))
            if i + 1 < k:
                sched.step()
        return lrs

    def rewind_schedule(self, done: int) -> None:
        """Back to the schedule saved by :meth:`learning_rates_ahead`, then stepped after ``done``
        batches, as the batch-by-batch loop would have left it."""
        sched = self.schedule
        sched.load_state_dict(self._schedule_saved)
        for _ in range(done):
            sched.step()

    def step_done(self, batch: int, logs: Callable[[], dict] | None = None) -> bool:
        """After a batch's update: step a per-batch schedule, call the per-batch hooks with
        ``logs()`` (built only when some callback asks) and say whether training must stop now
        (Ctrl-C)."""
        if self.schedule is not None and self.schedule.interval == "step":
            self.schedule.step()
        if self.batch_hooks.callbacks:
            self.batch_hooks.on_batch_end(batch, logs() if logs is not None else {})
        self._cut = self._guard.requested  # the epoch ends unfinished (and is undone)
        return self._cut

    def diverged(self, epoch: int, batch: int, what: str, on_nonfinite: str = "raise") -> None:
        """Put the model back to the weights (and batch-norm statistics) it had when the epoch began,
        reset an optimizer state the bad values reached, then raise
        :class:`~mlpnumpy.errors.DivergenceError` or (``on_nonfinite="warn"``) warn; training stops."""
        self.model.set_weights(self.epoch_start.weights)
        opt = self.opt
        if opt.state is not None and not all(all_finite(v) for st in opt.state for v in st.values()):
            opt.reset()
        self.model.stop_training = True
        msg = (f"training diverged at epoch {epoch + 1}, batch {batch + 1}: {what}; the model is back at the "
               "weights it had when the epoch began. Lower the learning rate, scale the inputs, or clip gradients "
               "(clip_grad_norm=1.0)")
        if on_nonfinite == "raise":
            raise DivergenceError(msg)
        warnings.warn(msg, RuntimeWarning, stacklevel=5)

    def run(self, epochs: int, run_epoch: Callable[[int], dict | None], *,
            after_epoch: Callable[[int, dict], bool] | None = None,
            finish: Callable[[], None] | None = None) -> None:
        """Train for up to ``epochs`` epochs.

        Parameters
        ----------
        run_epoch : callable ``(epoch) -> logs or None``
            One pass over the batches, calling :meth:`step_done` after each update. Returns the
            epoch's logs (``loss``, metrics, ``val_*``), or None to end training (diverged, no data).
            The driver adds ``lr`` (the rate the epoch started with) and ``seconds`` when absent.
        after_epoch : callable ``(epoch, logs) -> bool``, optional
            Runs after the callbacks' ``on_epoch_end``; True ends training (a convergence test).
        finish : callable, optional
            Runs after the last epoch, before the callbacks' ``on_train_end`` (restoring best weights).
        """
        model, cbs, schedule = self.model, self.callbacks, self.schedule
        model.stop_training = False
        with (_Interrupt() if self._undo else _NoFlag()) as guard:
            self._guard = guard
            try:
                cbs.on_train_begin({})
                if schedule is not None and self.begin_schedule:
                    schedule.begin(self.opt)
                self._epochs(epochs, run_epoch, after_epoch)
            except KeyboardInterrupt:
                if self._undo:
                    raise
                warnings.warn("Training interrupted by user.")
            guard.boundary = None
            if finish is not None:
                finish()
            cbs.on_train_end({})
        self._guard = None

    def _epochs(self, epochs, run_epoch, after_epoch) -> None:
        model, cbs, schedule, guard = self.model, self.callbacks, self.schedule, self._guard
        for epoch in range(epochs):
            if guard.requested:  # Ctrl-C during the last epoch's validation or callbacks
                self._mark_interrupted()
                return
            if self._undo:
                guard.boundary = _Boundary(model, self.opt, schedule)
            cbs.on_epoch_begin(epoch, {})
            t0 = time.perf_counter()
            lr_used = self.opt.lr
            self._cut = False
            logs = run_epoch(epoch)
            if self._cut:
                # Not recorded as an epoch: the model goes back to the epoch's start, so its weights,
                # epochs_trained and History describe whole epochs, and training on (or --resume from
                # the last epoch's checkpoint) redoes this epoch bit for bit.
                guard.boundary.restore()
                self._mark_interrupted()
                return
            if logs is None:
                return
            logs.setdefault("lr", lr_used)
            logs.setdefault("seconds", time.perf_counter() - t0)
            if schedule is not None and schedule.interval == "epoch":
                schedule.step(logs.get(getattr(schedule, "monitor", "val_loss"), logs["loss"]))
            cbs.on_epoch_end(epoch, logs)
            if after_epoch is not None and after_epoch(epoch, logs):
                return
            if model.stop_training:
                return

    def _mark_interrupted(self) -> None:
        self.model.stop_training = True
        if self.history is not None:
            self.history.interrupted = True
