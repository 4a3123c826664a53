"""Callbacks: hooks the fit loop calls at the start and end of training, of each epoch and after each
batch, with Keras's names (``on_epoch_end(epoch, logs)``), plus the :class:`History` every fit returns.
"""
from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Iterable

from ..errors import InvalidArgumentError, check_choice, check_positive

__all__ = ["Callback", "CallbackList", "History", "ProgressBar", "MonitorCallback", "EarlyStopping", "ModelCheckpoint",
           "CSVLogger", "TerminateOnNaN", "LearningRateScheduler", "LambdaCallback"]


class Callback:
    """Base class; every hook does nothing. ``self.model`` is set before ``on_train_begin``.

    ``every_batch``: whether ``on_batch_end`` must come after every batch (the default). A callback
    that only shows progress sets it False: the fast path may then run several batches in one
    compiled call and call it once after them, with the last batch's index.
    """

    model = None
    every_batch = True

    def set_model(self, model) -> None:
        self.model = model

    def on_train_begin(self, logs: dict | None = None) -> None: ...
    def on_train_end(self, logs: dict | None = None) -> None: ...
    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None: ...
    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None: ...
    def on_batch_end(self, batch: int, logs: dict | None = None) -> None: ...


class CallbackList(Callback):
    """Calls each hook on every callback in order."""

    def __init__(self, callbacks: Iterable[Callback]):
        self.callbacks = list(callbacks)
        for cb in self.callbacks:
            if not isinstance(cb, Callback):
                raise InvalidArgumentError(f"callbacks holds {type(cb).__name__}; expected Callback objects")

    def set_model(self, model):
        for cb in self.callbacks:
            cb.set_model(model)

    def on_train_begin(self, logs=None):
        for cb in self.callbacks:
            cb.on_train_begin(logs)

    def on_train_end(self, logs=None):
        for cb in self.callbacks:
            cb.on_train_end(logs)

    def on_epoch_begin(self, epoch, logs=None):
        for cb in self.callbacks:
            cb.on_epoch_begin(epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        for cb in self.callbacks:
            cb.on_epoch_end(epoch, logs)

    def on_batch_end(self, batch, logs=None):
        for cb in self.callbacks:
            cb.on_batch_end(batch, logs)


class History(list, Callback):
    """What ``fit`` returns: a list of the per-epoch training losses (as the seed returned), with every
    recorded metric by name in ``history`` (Keras's spelling) and the epoch numbers in ``epoch``.

    ``interrupted`` is True when training stopped on Ctrl-C (the unfinished epoch undone, so not in
    the history); ``stopped_epoch`` names the epoch an early stop happened at (or None).
    """

    def __init__(self):
        super().__init__()
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []
        self.interrupted = False
        self.stopped_epoch = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        self.epoch.append(epoch)
        for k, v in logs.items():
            self.history.setdefault(k, []).append(v)
        self.append(logs.get("loss", float("nan")))

    def __repr__(self):
        return f"History(epochs={len(self)}, keys={list(self.history)})"


def _fmt_logs(logs: dict, keys=("loss", "accuracy", "val_loss", "val_accuracy", "mse", "r2",
                                 "val_mse", "val_r2")) -> str:
    return ", ".join(f"{k}: {logs[k]:.4f}" for k in keys if k in logs and logs[k] is not None)


class ProgressBar(Callback):
    """A live progress bar per epoch (batches, ETA, running loss and accuracy) on a terminal; on a
    file or pipe, one summary line at about ten evenly spaced epochs (``mode="auto"``).

    Epochs are counted from the model's ``epochs_trained`` when training starts: a fit that continues
    a model trained for 10 epochs, for 10 more, shows "Epoch 11/20" to "Epoch 20/20".

    Parameters
    ----------
    mode : {"auto", "bar", "lines", "epochs"}
        ``"bar"`` always draws the bar, ``"lines"`` prints the ~10 summary lines, ``"epochs"`` one
        line per epoch.
    stream : file object, default ``sys.stdout``
    """

    every_batch = False  # it draws at most every 0.1 s: after a run of batches is as good

    def __init__(self, mode: str = "auto", stream=None, width: int = 30):
        self.mode = check_choice("mode", mode, ["auto", "bar", "lines", "epochs"])
        self.stream = stream
        self.width = width

    def on_train_begin(self, logs=None):
        self._out = self.stream or sys.stdout
        mode = self.mode
        if mode == "auto":
            mode = "bar" if getattr(self._out, "isatty", lambda: False)() else "lines"
        self._mode = mode
        self._first = int(getattr(self.model, "epochs_trained", 0) or 0)  # epochs before this fit
        self._total = self._first + (self.params["epochs"] if hasattr(self, "params") else 0)
        self._open_line = False

    def on_epoch_begin(self, epoch, logs=None):
        self._t0 = time.perf_counter()
        self._epoch = epoch
        self._last_draw = 0.0

    def on_batch_end(self, batch, logs=None):
        if self._mode != "bar":
            return
        now = time.perf_counter()
        n = self.params["steps"]
        if now - self._last_draw < 0.1 and batch + 1 < n:
            return
        self._last_draw = now
        done = (batch + 1) / n
        elapsed = now - self._t0
        eta = elapsed / done - elapsed
        fill = int(self.width * done)
        bar = "=" * max(fill - 1, 0) + (">" if fill < self.width else "=") + "." * (self.width - fill)
        self._out.write(f"\rEpoch {self._first + self._epoch + 1}/{self._total} [{bar}] {batch + 1}/{n} "
                        f"ETA {eta:4.1f}s  {_fmt_logs(logs or {})}   ")
        self._out.flush()
        self._open_line = True

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        total, number = self._total, self._first + epoch + 1
        line = f"Epoch {number}/{total}, {_fmt_logs(logs)}, {logs.get('seconds', 0.0):.2f}s"
        if self._mode == "bar":
            self._out.write("\r" + line + " " * 20 + "\n")
            self._open_line = False
        elif self._mode == "epochs" or number % max(1, total // 10) == 0 or number == total \
                or epoch == 0:
            # max(1, ...): the seed divided by epochs // 10, which is 0 below ten epochs.
            self._out.write(line + "\n")
        self._out.flush()

    def on_train_end(self, logs=None):
        if self._open_line:  # an interrupted epoch's bar: end its line
            self._out.write("\n")
            self._out.flush()
            self._open_line = False


class MonitorCallback(Callback):
    """What :class:`EarlyStopping` and :class:`ModelCheckpoint` share (Keras's ``MonitorCallback``):
    one log key watched in one direction, and :meth:`is_improvement`, the one test of "better".

    Parameters
    ----------
    monitor : str
        A key of the epoch logs (``"val_loss"``, ``"val_accuracy"``, ``"loss"``, ...).
    mode : {"auto", "min", "max"}
        ``"auto"``: maximise names containing ``acc``/``r2``, minimise the rest.
    min_delta : float >= 0
        How much better than the best a value must be to count.
    """

    def __init__(self, monitor: str = "val_loss", mode: str = "auto", min_delta: float = 0.0):
        if not isinstance(monitor, str) or not monitor:
            raise InvalidArgumentError(f"monitor={monitor!r} is not a log key; expected a name such as "
                                       "'val_loss' or 'loss'")
        self.monitor = monitor
        self.mode = check_choice("mode", mode, ["auto", "min", "max"])
        self.min_delta = float(check_positive("min_delta", min_delta, allow_zero=True))
        self.best_epoch = None
        self.reset_monitor()

    @property
    def sign(self) -> int:
        """+1 when larger is better, -1 when smaller is."""
        mode = self.mode
        if mode == "auto":
            mode = "max" if ("acc" in self.monitor or "r2" in self.monitor) else "min"
        return 1 if mode == "max" else -1

    def reset_monitor(self) -> None:
        """Forget the best value seen (a new fit starts watching afresh)."""
        self.best = -math.inf * self.sign
        self.best_epoch = None

    def is_improvement(self, value, best=None) -> bool:
        """Whether ``value`` beats ``best`` (default: the best so far) by more than ``min_delta``."""
        best = self.best if best is None else best
        if self.sign > 0:
            return value > best + self.min_delta
        return value < best - self.min_delta


class EarlyStopping(MonitorCallback):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs.

    With ``restore_best_weights=True`` the model ends with the weights of its best epoch. Its state
    is reset at ``on_train_begin``, so one instance can serve several fits, unless
    :meth:`load_state_dict` gave it a state to go on from (a resumed run's). ``monitor``, ``mode``
    and ``min_delta`` are :class:`MonitorCallback`'s.
    """

    def __init__(self, monitor: str = "val_loss", patience: int = 5, min_delta: float = 0.0,
                 mode: str = "auto", restore_best_weights: bool = False, verbose: bool = False):
        self.patience = int(check_positive("patience", patience, integer=True, allow_zero=True))
        super().__init__(monitor, mode, min_delta)
        self.restore_best_weights, self.verbose = restore_best_weights, verbose
        self.stopped_epoch = self.best_weights = None
        self.wait, self._start, self._loaded = 0, 0, None

    def state_dict(self) -> dict:
        """The watch so far, plain values only: ``{"best", "best_epoch", "wait", "stopped_epoch"}``,
        epochs (0-based) counted over the model's whole training (``epochs_trained``), not this fit.
        The best weights (with ``restore_best_weights``) are ``self.best_weights``; save them beside it."""
        stopped = None if self.stopped_epoch is None else self._start + self.stopped_epoch
        if self.best_epoch is None:
            return {"best": None, "wait": self.wait, "best_epoch": None, "stopped_epoch": stopped}
        return {"best": float(self.best), "wait": self.wait, "best_epoch": self._start + self.best_epoch,
                "stopped_epoch": stopped}

    def load_state_dict(self, state: dict, best_weights=None) -> None:
        """Make the next fit go on from ``state`` (from :meth:`state_dict`) and ``best_weights``
        instead of starting afresh, as a training run continued from a checkpoint should."""
        try:
            loaded = {"best": None if state["best"] is None else float(state["best"]), "wait": int(state["wait"]),
                      **{k: None if state.get(k) is None else int(state[k]) for k in ("best_epoch",
                                                                                      "stopped_epoch")}}
            if (loaded["best"] is None) != (loaded["best_epoch"] is None):
                raise ValueError("best and best_epoch must be both set or both None")
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidArgumentError(f"state={state!r} is not an EarlyStopping state ({exc!r}); expected "
                                       "the dict returned by EarlyStopping.state_dict()") from None
        self._loaded = (loaded, None if best_weights is None else list(best_weights))

    def on_train_begin(self, logs=None):
        self.reset_monitor()
        self.best_weights = None
        self.wait = 0
        self.stopped_epoch = None
        self._start = int(getattr(self.model, "epochs_trained", 0) or 0)  # epochs before this fit
        if self._loaded is not None:  # a continued run: go on watching from its state
            state, self.best_weights = self._loaded
            self._loaded = None
            self.wait = state["wait"]
            if state["best_epoch"] is not None:
                self.best, self.best_epoch = state["best"], state["best_epoch"] - self._start
            if state["stopped_epoch"] is not None:
                self.stopped_epoch = state["stopped_epoch"] - self._start

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None:  # an error at the first epoch's end: a watch that never sees its key never stops
            hint = "; pass validation data (validation_split or validation_data) to get val_ keys" \
                if self.monitor.startswith("val_") else ""
            raise InvalidArgumentError(f"EarlyStopping: monitor={self.monitor!r} is not in the epoch's logs; expected "
                                       f"one of: {', '.join(logs or {}) or '(no keys)'}{hint}")
        if self.is_improvement(value) or self.best_epoch is None:
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            return
        self.wait += 1
        if self.wait >= max(self.patience, 1):  # Keras: stop after `patience` epochs without improvement
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.restore_best_weights and self.best_weights is not None:
            self.model.set_weights(self.best_weights)
        if self.verbose and self.stopped_epoch is not None:
            print(f"Early stopping at epoch {self._start + self.stopped_epoch + 1}; best {self.monitor} "
                  f"{self.best:.4f} at epoch {self._start + self.best_epoch + 1}")


class ModelCheckpoint(MonitorCallback):
    """Save the model after each epoch (or only when ``monitor`` improves), atomically.

    Parameters
    ----------
    filepath : str
        May contain ``{epoch}`` and any log key, e.g. ``"ckpt-{epoch:03d}-{val_loss:.3f}.npz"``.
    save_best_only : bool
    include_optimizer : bool
        Also store the optimizer, schedule, generator state and epoch, so training can resume
        bit-exactly (:func:`mlpnumpy.io.load_checkpoint`).
    """

    def __init__(self, filepath, monitor: str = "val_loss", save_best_only: bool = False, mode: str = "auto",
                 include_optimizer: bool = True):
        super().__init__(monitor, mode)
        self.filepath = os.fspath(filepath)
        self.save_best_only = save_best_only
        self.include_optimizer = include_optimizer

    def on_train_begin(self, logs=None):
        self.reset_monitor()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.save_best_only:
            value = logs.get(self.monitor)
            if value is None or not (self.best_epoch is None or self.is_improvement(value)):
                return
            self.best, self.best_epoch = value, epoch
        # the model saves itself (Sequential.save), so callbacks need not know the file format
        self.model.save(self.filepath.format(epoch=epoch + 1, **logs), include_optimizer=self.include_optimizer)


class CSVLogger(Callback):
    """Append each epoch's logs as a row of a CSV file (header from the keys seen so far); the file is
    rewritten atomically each epoch, so a killed run leaves a whole file.

    Parameters
    ----------
    filename : path
    separator : str
    before : dict of per-epoch lists, optional
        Logs of epochs trained before this fit (a resumed run's, as ``History.history``): written
        first, and the file is written at ``on_train_begin`` already.
    first_epoch : int
        The ``epoch`` column's number for the first row (Keras's 0; a run folder's ``history.csv``
        counts from 1). Rows are numbered in order.
    """

    def __init__(self, filename, separator: str = ",", *, before: dict | None = None, first_epoch: int = 0):
        self.filename, self.sep = os.fspath(filename), separator
        self.before = None if before is None else {k: list(v) for k, v in before.items()}
        self.first_epoch = int(check_positive("first_epoch", first_epoch, integer=True, allow_zero=True))

    def on_train_begin(self, logs=None):
        self.rows = self.rows_of(self.before or {})
        if self.before is not None:
            self._write()

    def on_epoch_end(self, epoch, logs=None):
        self.rows.append(dict(logs or {}))
        self._write()

    @staticmethod
    def rows_of(history: dict) -> list[dict]:
        """Per-epoch rows of ``{key: [value per epoch]}`` (a shorter list leaves its later rows empty)."""
        n = max((len(v) for v in history.values()), default=0)
        return [{k: v[i] for k, v in history.items() if i < len(v)} for i in range(n)]

    def _write(self) -> None:
        self.write(self.filename, self.rows, self.sep, self.first_epoch)

    @staticmethod
    def write(filename, rows: list[dict], separator: str = ",", first_epoch: int = 0) -> None:
        """Write ``rows`` (one dict of logs per epoch) as the CSV file ``filename``, atomically."""
        rows = [{"epoch": first_epoch + i, **r} for i, r in enumerate(rows)]
        keys = list(dict.fromkeys(["epoch", *(k for r in rows for k in r)]))
        lines = [separator.join(keys)] + [separator.join("" if r.get(k) is None else repr(r.get(k)) for k in keys)
                                          for r in rows]
        from ..io._atomic import atomic_write_bytes
        atomic_write_bytes(os.fspath(filename), ("\n".join(lines) + "\n").encode())


class TerminateOnNaN(Callback):
    """Stop training when an epoch's loss is NaN or infinite."""

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            print(f"Epoch {epoch + 1}: invalid loss {loss}, terminating training")
            self.model.stop_training = True


class LearningRateScheduler(Callback):
    """Set the optimizer's learning rate at each epoch's start from ``schedule(epoch, lr) -> lr``."""

    def __init__(self, schedule):
        if not callable(schedule):
            raise InvalidArgumentError("schedule must be callable as schedule(epoch, lr) -> lr")
        self.schedule = schedule

    def on_epoch_begin(self, epoch, logs=None):
        opt = self.model.optimizer
        lr = float(self.schedule(epoch, opt.lr))
        if not math.isfinite(lr) or lr <= 0:
            raise InvalidArgumentError(f"LearningRateScheduler returned lr={lr!r}; expected a finite number > 0")
        opt.lr = lr


class LambdaCallback(Callback):
    """A callback from plain functions: ``LambdaCallback(on_epoch_end=lambda epoch, logs: ...)``."""

    def __init__(self, **hooks):
        for name, fn in hooks.items():
            if not name.startswith("on_") or not hasattr(Callback, name):
                raise InvalidArgumentError(f"LambdaCallback got unknown hook {name!r}")
            setattr(self, name, fn)
