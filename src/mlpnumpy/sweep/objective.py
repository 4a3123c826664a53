"""What a Dask worker runs for a sweep: one trial's training, pruned by Optuna after every epoch.

The worker never touches the study's storage. The driver sends the trial's configuration with a
snapshot of the finished trials; the pruner decides on an in-memory mirror of the study holding that
snapshot (same study name, same trial numbers, so Hyperband's brackets agree with the driver's).
Data sets are loaded once per worker process and kept for the trials that follow.
"""
from __future__ import annotations

import math
import os
import threading
import time
import warnings
from typing import Any

import numpy as np

from ..training.callbacks import Callback
from ..errors import DivergenceError, MLPNumpyError

__all__ = ["run_trial", "preload", "prepared_data", "PruningCallback", "data_loads"]

_LOCK = threading.Lock()
_SPLITS: dict[tuple, dict] = {}  # (data options, validation split) -> the split arrays
_KEEP = 2  # data sets a worker keeps loaded
_LOADS = 0  # data sets this process has read from disk (the test pins it at one per worker)


def data_loads() -> int:
    """How many times this process has loaded a data set."""
    return _LOADS


def _data_key(cfg: dict) -> str:
    """What decides the loaded arrays: every option no trial varies (the data, how it is read, the
    seed of its splits), and the dtype."""
    from .space import SEARCHABLE
    skip = {"out", "quiet", "threads", "track_internals", "validation_split"}
    return repr(sorted((k, v) for k, v in cfg.items() if (k not in SEARCHABLE and k not in skip) or k == "dtype"))


def prepared_data(cfg: dict[str, Any]) -> dict[str, Any]:
    """The training and validation arrays of ``cfg``, loaded once per process and split as
    ``mlpnumpy train`` splits them (:func:`mlpnumpy.datasets.splits.train_val_split` with the generator
    ``[seed, 1]``), so that a trial's validation metric is the one ``train`` reports.

    Returns a dict with ``X_train``, ``y_train``, ``X_val``, ``y_val`` (shapes ``(n, d)`` and
    ``(n,)``), ``n_classes``, ``name``, ``categorical`` (``{column: categories}`` or None) and
    ``image_shape``. The test split is never returned: sweeps do not see it.
    """
    global _LOADS
    from ..cli.run import load_data as _load_data
    from ..datasets.splits import train_val_split
    key = (_data_key(cfg), cfg["validation_split"])
    with _LOCK:
        split = _SPLITS.get(key)
        if split is None:
            while len(_SPLITS) >= _KEEP:  # a long-lived worker serving sweep after sweep: the oldest goes
                _SPLITS.pop(next(iter(_SPLITS)))
            data = _load_data(cfg)  # the test rows are dropped with it: only the split is kept
            X, y = data["X_train"], data["y_train"]
            tr, va = train_val_split(y, cfg["validation_split"], np.random.default_rng([cfg["seed"], 1]),
                                     stratify=True)
            split = _SPLITS[key] = {"X_train": X[tr], "y_train": y[tr], "X_val": X[va], "y_val": y[va],
                                    "n_classes": len(data["class_names"]), "name": data["name"],
                                    "categorical": data.get("categorical"), "image_shape": data.get("image_shape")}
            _LOADS += 1
    return dict(split)


def _worker_name() -> str:
    try:
        from distributed import get_worker
        return get_worker().address
    except (ImportError, ValueError):  # not inside a Dask worker (tests, a local call)
        return f"local:{os.getpid()}"


def preload(cfg: dict[str, Any]) -> dict[str, Any]:
    """Load (or find already loaded) the sweep's data on this worker; what the driver runs once per
    worker before the first trial, so a missing data set is reported before anything is written."""
    d = prepared_data(cfg)
    return {"worker": _worker_name(), "pid": os.getpid(), "rows": int(len(d["X_train"]) + len(d["X_val"])),
            "data_loads": _LOADS}


class PruningCallback(Callback):
    """Reports ``monitor`` to an Optuna trial after every epoch and stops training when the pruner
    says so, or when the metric is not finite (a diverging trial)."""

    def __init__(self, trial, monitor: str):
        self.trial, self.monitor = trial, monitor
        self.intermediate: list[tuple[int, float]] = []
        self.pruned_reason: str | None = None

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        step = epoch + 1
        if value is None or not math.isfinite(value):
            self.pruned_reason = f"diverged: {self.monitor} is {value} at epoch {step}"
            self.model.stop_training = True
            return
        value = float(value)
        self.intermediate.append((step, value))
        self.trial.report(value, step)
        if self.trial.should_prune():
            self.pruned_reason = (f"pruned by the {type(self.trial.study.pruner).__name__} at epoch {step} "
                                  f"({self.monitor} {value:.4f})")
            self.model.stop_training = True


def _mirror_trial(task: dict):
    """An Optuna trial numbered as the driver's, in an in-memory study holding the snapshot."""
    import optuna
    from optuna.trial import TrialState, create_trial
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study = optuna.create_study(study_name=task["study_name"], direction=task["direction"],
                                    pruner=task["pruner"], sampler=optuna.samplers.RandomSampler(seed=0))
        by_number = {t.number: t for t in task["snapshot"]}
        for n in range(task["number"]):
            # gaps (running or failed trials) are held by empty failed trials, which no pruner reads
            study.add_trial(by_number.get(n) or create_trial(state=TrialState.FAIL))
        trial = study.ask()
    if trial.number != task["number"]:  # pragma: no cover - guards the numbering the pruner relies on
        raise RuntimeError(f"mirror trial numbered {trial.number}, expected {task['number']}")
    return trial


def _floats(history: dict) -> dict[str, list]:
    return {k: [None if v is None else float(v) for v in vals] for k, vals in history.items()}


def run_trial(task: dict[str, Any]) -> dict[str, Any]:
    """Train one trial as ``mlpnumpy train`` would (same split, model, optimizer and schedule) and
    return its outcome; never raises for a trial that diverges or is pruned.

    Parameters
    ----------
    task : dict
        ``number``, ``attempt``, ``cfg`` (a validated configuration), ``monitor`` (``"val_accuracy"``
        or ``"val_loss"``), ``direction``, ``study_name``, ``pruner``, ``snapshot`` (finished
        ``FrozenTrial`` objects) and ``topic`` (the Dask event topic for start events).

    Returns
    -------
    dict
        ``state`` (``"complete"``, ``"pruned"`` or ``"fail"``), ``value`` (the validation metric after
        training, as ``train``'s metrics.json reports it), ``intermediate`` ``[(epoch, value), ...]``,
        ``history`` (per-epoch logs), ``reason``, ``seconds``, ``worker``, ``pid``, ``data_loads``.
    """
    from ..training.callbacks import EarlyStopping
    from ..cli.run import build_optimizer, build_schedule, threads as _threads
    from ..nn.model import MLP
    from ..datasets.preprocessing import Standardizer

    t0 = time.perf_counter()
    worker = _worker_name()
    try:  # a start event per attempt: how the driver counts a trial rerun after its worker died
        from distributed import get_worker
        get_worker().log_event(task["topic"], {"trial": task["number"], "worker": worker, "pid": os.getpid()})
    except (ImportError, ValueError):
        pass
    out: dict[str, Any] = {"number": task["number"], "attempt": task["attempt"], "worker": worker,
                           "pid": os.getpid(), "state": "fail", "value": None, "intermediate": [],
                           "history": {}, "reason": None}
    cfg = task["cfg"]
    monitor = task["monitor"]
    callback = None
    try:
        d = prepared_data(cfg)
        Xtr, ytr = d["X_train"], d["y_train"]
        model = MLP([Xtr.shape[1], *cfg["hidden"], d["n_classes"]], cfg["activation"], init=cfg["init"],
                    seed=cfg["seed"], dtype=cfg["dtype"], batch_norm=cfg["batch_norm"], dropout=cfg["dropout"],
                    residual=cfg["residual"], categorical=d["categorical"],
                    loss={"name": "cross_entropy", "label_smoothing": cfg["label_smoothing"]})
        if cfg["standardize"]:
            model.preprocessor = Standardizer().fit(Xtr)
            for f in d["categorical"] or {}:  # category codes pass through unscaled, as in train
                model.preprocessor.mean_[f], model.preprocessor.scale_[f] = 0.0, 1.0
        steps = -(-len(Xtr) // cfg["batch_size"])
        optimizer, schedule = build_optimizer(cfg), build_schedule(cfg, steps)
        callback = PruningCallback(_mirror_trial(task), monitor)
        # the callbacks that change training, in train's order (--augment shift draws from the model's
        # generator at each epoch's start, before anything else does)
        from ..training.augment import data_callbacks
        callbacks = data_callbacks(cfg["augment"], cfg["input_dropout"], Xtr, d["image_shape"])
        if cfg["early_stopping"] is not None:
            callbacks.append(EarlyStopping("val_loss", patience=cfg["early_stopping"], restore_best_weights=True))
        callbacks.append(callback)
        # a diverging trial overflows on its way to the non-finite loss fit stops at: no warning per trial
        with _threads(cfg["threads"]), np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            history = model.fit(Xtr, ytr, epochs=cfg["epochs"], batch_size=cfg["batch_size"], optimizer=optimizer,
                                lr_schedule=schedule, validation_data=(d["X_val"], d["y_val"]),
                                callbacks=callbacks, verbose=0, l1=cfg["l1"], l1_bias=cfg["l1_bias"])
        out["history"] = _floats(history.history)
        if callback.pruned_reason is not None:
            out.update(state="pruned", reason=callback.pruned_reason)
        else:
            final = model.evaluate(d["X_val"], d["y_val"], return_dict=True)[monitor[len("val_"):]]
            if math.isfinite(final):
                out.update(state="complete", value=float(final))
            else:
                out.update(state="pruned", reason=f"diverged: final {monitor} is {final}")
    except DivergenceError as exc:
        out.update(state="pruned", reason=f"diverged: {exc}")
    except MLPNumpyError as exc:
        out.update(state="fail", reason=f"{type(exc).__name__}: {exc}")
    if callback is not None:
        out["intermediate"] = callback.intermediate
    out["seconds"] = time.perf_counter() - t0
    out["data_loads"] = _LOADS
    return out
