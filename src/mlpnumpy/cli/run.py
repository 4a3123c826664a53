"""One training run, as ``mlpnumpy train`` makes it: the resume rules, the data, the model, the fit,
the evaluation, the metrics and the figures, written to a run folder (:mod:`mlpnumpy.cli._runfolder`
keeps its lock and its files' rules). The command line (:mod:`mlpnumpy.cli`) parses options and calls
:func:`run_train`; ``mlpnumpy demo`` and the sweeps call it too.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from . import config as _config
from ..errors import InvalidArgumentError, InvalidDataError, MissingDependencyError, MLPNumpyError

__all__ = ["run_train", "load_data", "build_optimizer", "build_schedule", "threads", "dataset_options",
           "file_options", "label_column", "labelled_file", "PROG"]

PROG = "mlpnumpy"


@contextlib.contextmanager
def _said(logger_name: str, say):
    """Print the INFO messages of ``logger_name`` through ``say`` while the block runs."""
    import logging
    logger = logging.getLogger(logger_name)

    class _Say(logging.Handler):
        def emit(self, record):
            say(record.getMessage())
    handler, level = _Say(logging.INFO), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def load_data(cfg: dict[str, Any]) -> dict[str, Any]:
    """Train and test arrays for ``cfg["data"]`` (a name or a file), flattened, in ``cfg["dtype"]``,
    with what the model file should record about them (``metadata``)."""
    data = _load_arrays(cfg)
    if cfg["validation_split"] > 0:  # the split run_train makes, tried here: before its folder exists
        _split(data["y_train"], cfg["validation_split"], [cfg["seed"], 1], "--validation-split")
    return data


def _load_arrays(cfg: dict[str, Any]) -> dict[str, Any]:
    from .. import datasets
    name, dtype = cfg["data"], np.dtype(cfg["dtype"])
    if name in datasets.list_datasets():  # config.validate lower-cased it and checked the options
        ds = datasets.load(name, cfg["data_dir"], dtype=dtype, **dataset_options(name, cfg["data_dir"],
                                                                                    cfg["download"],
                                                                                    cfg["quiet"], cfg["seed"]))
        return {"name": ds.name, "X_train": ds.X_train, "y_train": ds.y_train, "X_test": ds.X_test,
                "y_test": ds.y_test, "class_names": list(ds.class_names),
                "image_shape": None if ds.image_shape is None else list(ds.image_shape), "pixel_max": 1.0,
                "split": None, "metadata": {"data_kind": "dataset", "input_range": _value_range(ds.X_train)}}
    opts = file_options(cfg)
    X, y, image_shape = labelled_file(name, dtype, **opts)
    split = None
    if cfg["test_data"] is not None:
        Xt, yt, _ = labelled_file(cfg["test_data"], dtype, **opts)
        if Xt.shape[1] != X.shape[1]:
            raise InvalidDataError(f"--test-data has {Xt.shape[1]} features; --data has {X.shape[1]}")
    else:
        Xt = yt = None
    (y, yt), class_names = _class_indices([y, yt], [name, cfg["test_data"]])
    if Xt is None:
        split = {"test_fraction": 0.2, "generator": [cfg["seed"], 2]}
        tr, te = _split(y, 0.2, split["generator"], f"--data {name!r} (without --test-data, 20% of its rows "
                                                     "are the test set)")
        X, Xt, y, yt = X[tr], X[te], y[tr], y[te]
    categorical = None if cfg.get("categorical") is None else _categorical_columns(cfg, X, Xt)
    return {"name": Path(name).stem, "X_train": X, "y_train": y, "X_test": Xt, "y_test": yt,
            "class_names": class_names, "image_shape": image_shape, "categorical": categorical,
            "pixel_max": float(X.max()) if image_shape is not None else None, "split": split,
            "metadata": {"data_kind": "file", "data_file": name, "input_range": _value_range(X),
                         "label_column": cfg["label_column"], "x_key": cfg["x_key"], "y_key": cfg["y_key"]}}


def _categorical_columns(cfg: dict[str, Any], X: np.ndarray, Xt: np.ndarray) -> dict[int, int]:
    """``--categorical COLS`` as ``{feature column: number of categories}``.

    COLS are CSV columns as ``--label-column`` names them (indices, 0 first and -1 last, or header
    names), separated by commas; the features are the CSV's columns without the label's.
    """
    import csv
    path, n_csv = cfg["data"], X.shape[1] + 1
    with open(path, newline="", encoding="utf-8", errors="replace") as fh:
        first = next(csv.reader(fh), [])

    def numeric(cell):
        try:
            float(cell)
            return True
        except ValueError:
            return False
    header = [c.strip() for c in first] if first and not all(numeric(c) for c in first) else None

    def csv_index(token: str, flag: str) -> int:
        try:
            i = int(token)
        except ValueError:
            if header is None or token not in header:
                raise InvalidArgumentError(f"{flag} {token!r} is neither a column index nor a header name of "
                                           f"{path}" + (f" ({', '.join(header)})" if header else "")) from None
            return header.index(token)
        if not -n_csv <= i < n_csv:
            raise InvalidArgumentError(f"{flag} {i} is out of range; {path} has {n_csv} columns")
        return i % n_csv

    label = csv_index(str(cfg["label_column"]), "--label-column") if cfg["label_column"] is not None else n_csv - 1
    out: dict[int, int] = {}
    for token in (t.strip() for t in cfg["categorical"].split(",")):
        if not token:
            raise InvalidArgumentError(f"--categorical {cfg['categorical']!r} has an empty entry; expected "
                                       "columns separated by commas, e.g. --categorical 0,3 or color,size")
        c = csv_index(token, "--categorical")
        if c == label:
            raise InvalidArgumentError(f"--categorical {token}: column {c} is the label column")
        f = c - (c > label)  # its index among the features
        codes = np.concatenate([X[:, f], Xt[:, f]])
        if not (np.isfinite(codes).all() and (codes == np.rint(codes)).all() and codes.min() >= 0):
            bad = codes[~(np.isfinite(codes) & (codes == np.rint(codes)) & (codes >= 0))][0]
            raise InvalidDataError(f"--categorical {token}: column {c} holds {bad!r}; expected integer codes "
                                   "0, 1, 2, ... (encode text categories as integers first)")
        out[f] = int(codes.max()) + 1
    return out


def _split(y: np.ndarray, fraction: float, seed: list[int], what: str) -> tuple[np.ndarray, np.ndarray]:
    """A stratified split of the rows (train_val_split), its refusal naming the option behind it."""
    from ..training.fitting import train_val_split
    try:
        return train_val_split(y, fraction, np.random.default_rng(seed), stratify=True)
    except InvalidArgumentError as exc:
        raise InvalidArgumentError(f"{what}: {exc}") from None


def dataset_options(name: str, data_dir, download, quiet, seed) -> dict[str, Any]:
    """Keyword options of ``datasets.load`` for a named set, as the command line's flags ask."""
    from ..datasets.registry import IDX_DATASETS
    if name in IDX_DATASETS:
        # a progress bar on a terminal unless --quiet; an explicit --data-dir is the only folder used
        return {"download": download is not False, "progress": False if quiet else None,
                "only_data_dir": data_dir is not None}
    from ..datasets.toy import TOY_DATASETS
    return {"seed": seed} if name == "synthetic" or name in TOY_DATASETS else {}


def _value_range(X: np.ndarray) -> list[float] | None:
    return [float(X.min()), float(X.max())] if X.size else None


def label_column(value: str | None) -> int | str | None:
    """``--label-column``'s text as load_array_file takes it: an index, or a CSV header name."""
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return value


def file_options(opts) -> dict[str, Any]:
    label = label_column(opts.get("label_column"))
    return {"label_column": -1 if label is None else label, "x_key": opts.get("x_key"),
            "y_key": opts.get("y_key")}


def labelled_file(path: str, dtype, *, label_column=-1, x_key=None, y_key=None
                   ) -> tuple[np.ndarray, np.ndarray, list | None]:
    from ..datasets import load_array_file
    if not os.path.isfile(path):
        raise InvalidArgumentError(f"{path!r} is not an existing file")
    try:
        X, y = load_array_file(path, dtype=dtype, label_column=label_column, x_key=x_key, y_key=y_key)
    except MLPNumpyError as exc:  # the library names its arguments; the user typed flags
        raise type(exc)(re.sub(r"\b(label_column|x_key|y_key)=", lambda m: _config.flag(m[1]) + "=",
                               str(exc))) from None
    if y is None:
        raise InvalidDataError(f"{path}: has no labels; expected a label column (--label-column) or a 'y' "
                               "array (--y-key)")
    from .._validation import check_class_labels
    check_class_labels(y, path)  # the label that is out of range, before any class list is built
    if y.dtype.kind not in "iuU" or (y.dtype.kind != "U" and y.size and y.min() < 0):
        raise InvalidDataError(f"{path}: labels must be class indices 0..K-1 or class names; got dtype "
                               f"{y.dtype}")
    image_shape = list(X.shape[1:]) if X.ndim == 3 else None
    return X.reshape(len(X), -1), y, image_shape


def _class_indices(ys: list[np.ndarray | None], paths: list[str | None]
                   ) -> tuple[list[np.ndarray | None], list[str]]:
    """Labels of the train and test files as int64 class indices, and the class names.

    Text labels become indices into their sorted names; numeric labels are the indices themselves.
    """
    given = [(y, p) for y, p in zip(ys, paths) if y is not None]
    kinds = {y.dtype.kind == "U" for y, _ in given}
    if len(kinds) > 1:
        raise InvalidDataError(f"{paths[0]} and {paths[1]}: one file's labels are text, the other's numbers; "
                               "expected the same kind of labels in both")
    if kinds == {True}:
        names = np.unique(np.concatenate([y for y, _ in given]))
        return [None if y is None else np.searchsorted(names, y).astype(np.int64) for y in ys], \
            [str(n) for n in names]
    n_classes = int(max(int(y.max()) for y, _ in given)) + 1
    return [None if y is None else y.astype(np.int64) for y in ys], [str(c) for c in range(n_classes)]


def build_schedule(cfg: dict, steps_per_epoch: int):
    from ..optim.schedules import schedule_for_run
    return schedule_for_run(cfg["schedule"], epochs=cfg["epochs"], steps_per_epoch=steps_per_epoch, lr=cfg["lr"])


def build_optimizer(cfg: dict):
    from ..optim.optimizers import OPTIMIZERS
    cls = OPTIMIZERS[cfg["optimizer"]]
    kwargs = {"lr": cfg["lr"], "weight_decay": cfg["weight_decay"]}
    if cfg["optimizer"] == "sgd":
        kwargs["momentum"] = cfg["momentum"]
    return cls(**kwargs)


def _write_json(path: Path, obj) -> None:
    from ..io._atomic import atomic_write
    with atomic_write(path, "w") as fh:
        json.dump(obj, fh, indent=2, default=_json_default)
        fh.write("\n")


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"{type(o).__name__} is not JSON-serialisable")


def _merge(before: dict[str, list], new: dict[str, list]) -> dict[str, list]:
    """Per-epoch logs of an earlier fit (a resumed run's) followed by those of this one."""
    n_before, n_new = len(before.get("loss", [])), len(new.get("loss", []))
    out = {k: list(v) for k, v in before.items()}
    for k in dict.fromkeys([*before, *new]):
        out.setdefault(k, [None] * n_before).extend(new.get(k, [None] * n_new))
    return out


def _run_callback(out: Path, extra_base: dict, history_before: dict, early_stopping=None):
    from ..io._atomic import atomic_write
    from ..training.callbacks import Callback
    from ..io.model_files import save_checkpoint

    class RunFolder(Callback):
        """The checkpoint (for --resume) and history.csv, both written atomically, at every epoch
        boundary: when training starts and after each whole epoch. An interrupted epoch is undone by
        fit and never reaches on_epoch_end, so the checkpoint is always a boundary to redo it from.
        With early stopping, its watch goes into the checkpoint and its best weights into
        best_weights.npz. Runs after the other callbacks, so it records the logs they add to."""

        def on_train_begin(self, logs=None):
            self.logs: dict[str, list] = {}
            self._best = None
            self._save()

        def on_epoch_end(self, epoch, logs=None):
            # Own record of the logs: the fit loop's History may run after this callback.
            n = len(self.logs.get("loss", []))
            for k, v in (logs or {}).items():
                self.logs.setdefault(k, [None] * n).append(v)
            self._save()

        def _save(self):
            hist = _merge(history_before, self.logs)
            extra = {**extra_base, "history": hist}
            if early_stopping is not None:
                extra["early_stopping"] = early_stopping.state_dict()
                best = early_stopping.best_weights
                if best is not None and best is not self._best:  # a new best epoch: before the checkpoint
                    with atomic_write(out / "best_weights.npz", "wb") as fh:
                        np.savez(fh, *best)
                    self._best = best
            save_checkpoint(self.model, out / "checkpoint.npz", extra=extra)

    return RunFolder()


def _read_best_weights(folder: Path, model) -> list[np.ndarray]:
    """The early-stopping best weights a run folder keeps beside its checkpoint, checked against ``model``."""
    from ..errors import FileFormatError
    path = folder / "best_weights.npz"
    expected = model.get_weights()
    try:
        with np.load(path, allow_pickle=False) as npz:
            weights = [npz[f"arr_{i}"] for i in range(len(npz.files))]
    except (OSError, ValueError, KeyError) as exc:
        raise FileFormatError(f"{path}: the early-stopping best weights cannot be read ({exc}); the checkpoint "
                              "needs them to resume") from None
    if len(weights) != len(expected) or any(w.shape != e.shape or w.dtype != e.dtype
                                            for w, e in zip(weights, expected)):
        raise FileFormatError(f"{path}: {len(weights)} arrays that do not match the checkpoint's model "
                              f"({len(expected)} arrays); expected the best weights of this run")
    return weights


def threads(n):
    if n is None:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        raise MissingDependencyError("--threads needs the optional package 'threadpoolctl'; install it "
                                     "with: pip install 'mlpnumpy[perf]'") from None
    return threadpool_limits(limits=n)


@contextlib.contextmanager
def _finish_hint(out: Path):
    """A Ctrl-C (KeyboardInterrupt) in the block says how to finish the run in ``out``."""
    try:
        yield
    except KeyboardInterrupt:
        raise KeyboardInterrupt(f"interrupted; finish the run with: {PROG} train --resume {out}") from None


_RESUMABLE = {"epochs", "quiet", "threads", "out", "data_dir", "download"}


_FINETUNABLE = _RESUMABLE | {"lr", "schedule"}


_LENGTH_FREE = ("none", "plateau", "exponential")  # schedules not laid out for the run's length


def _resume(resume, cli_opts: dict[str, Any], config_file, finetune: bool) -> tuple[Any, dict, dict]:
    """The checkpoint's model, its ``extra`` and the configuration to go on with, for ``--resume DIR``
    (with ``--finetune``: a new schedule from the trained weights), after every check that needs no data."""
    from ..io import _filechecks
    from . import _runfolder
    from ..io.model_files import load_checkpoint
    ckpt = Path(resume) / "checkpoint.npz"
    if not ckpt.is_file():
        raise InvalidArgumentError(f"--resume {resume!r}: {ckpt} does not exist; expected a run folder "
                                   "written by mlpnumpy train")
    allowed = _FINETUNABLE if finetune else _RESUMABLE
    model, state = load_checkpoint(ckpt)
    extra = state["extra"] or {}
    if "config" not in extra:
        raise InvalidArgumentError(f"{ckpt} was not written by mlpnumpy train (no configuration)")
    cfg = dict(_filechecks.check_run_config(extra["config"], model, str(ckpt)))  # agrees with the model
    # an option given again with the run's own value (--data fashion-mnist) changes nothing
    changed = sorted(k for k, v in cli_opts.items() if v is not None and k not in allowed and cfg.get(k) != v)
    if changed or config_file is not None:
        raise InvalidArgumentError(
            f"--resume continues a run as configured; {'--config' if config_file else _config.flag(changed[0])} "
            f"cannot be changed (only {', '.join(_config.flag(k) for k in sorted(allowed))}"
            f"{'' if finetune else '; with --finetune also --lr and --schedule'})")
    planned, done = cfg["epochs"], model.epochs_trained
    cfg.update({k: v for k, v in cli_opts.items() if v is not None and k in allowed})
    epochs, schedule = cfg["epochs"], cfg["schedule"]
    finished = _runfolder.finished_metrics(Path(resume), done)
    if finetune:
        if epochs <= done:
            raise InvalidArgumentError(
                f"--finetune --epochs {epochs}: the run already has {done} epochs; expected --epochs N "
                f"with N > {done} (the {schedule!r} schedule starts anew over the epochs added)")
    elif epochs != planned and schedule not in _LENGTH_FREE:
        raise InvalidArgumentError(
            f"--epochs {epochs}: the run was planned for {planned} epochs and its {schedule!r} schedule was "
            f"laid out for that length; add --finetune to train on from epoch {done} with a new {schedule!r} "
            f"schedule over the epochs added (--lr and --schedule may change too), or omit --epochs to "
            "finish the planned run")
    elif finished is not None and (epochs <= done or finished.get("early_stopped_epoch") is not None):
        how = "stopped early" if epochs > done else "is finished"
        raise InvalidArgumentError(
            f"--resume: the run in {resume} {how} after {done} epochs; to train it further add "
            + (f"--epochs N with N > {done}" if schedule in _LENGTH_FREE and epochs <= done
               else f"--finetune --epochs N with N > {done} (a new {schedule!r} schedule over the epochs added)"))
    elif epochs < done:
        raise InvalidArgumentError(f"--epochs {epochs}: the run already has {done} epochs; expected "
                                   f"--epochs N with N >= {done}")
    cfg["out"] = cfg["out"] if cli_opts.get("out") else str(resume)
    return model, extra, _config.validate(cfg)


def run_train(cli_opts: dict[str, Any], *, config_file=None, resume=None, overwrite: bool = False,
              finetune: bool = False, seed_figure: bool = False, print_fn=print) -> dict:
    """Train as ``mlpnumpy train`` does and write the run folder; returns the metrics dict.

    The folder ``--out`` must be new or empty, or the run being resumed; ``overwrite=True`` first clears
    a folder that holds nothing but another run's files. It is locked while the run writes it.
    ``metrics["interrupted"]`` is True after Ctrl-C: the folder then holds the whole epochs trained.
    """
    from .. import __version__
    from . import _runfolder
    from ..nn import metrics as M
    from ..plots import figures as plots
    from ..training.callbacks import CSVLogger, EarlyStopping
    from ..io.model_files import save_model
    from ..nn.model import MLP
    from ..datasets.preprocessing import Standardizer
    from ..training.fitting import train_val_split

    t_start = time.perf_counter()
    state_extra = None
    if finetune and resume is None:
        raise InvalidArgumentError("--finetune trains an earlier run further; expected it with --resume DIR")
    if resume is not None:
        model, state_extra, cfg = _resume(resume, cli_opts, config_file, finetune)
    else:
        cfg = _config.resolve(cli_opts, config_file)
    if cfg["track_internals"]:
        from ..training import internals
    out = Path(cfg["out"] or f"runs/{Path(cfg['data']).stem}-{time.strftime('%Y%m%d-%H%M%S')}")
    cfg["out"] = str(out)
    say = (lambda *a, **k: None) if cfg["quiet"] else print_fn
    resume_here = resume is not None and out.resolve() == Path(resume).resolve()
    if overwrite and resume_here:
        raise InvalidArgumentError(f"--overwrite would delete the checkpoint --resume {resume} continues from; "
                                   "omit --overwrite, or write the continued run elsewhere with --out DIR")
    _runfolder.check_out(out, overwrite=overwrite, resume_here=resume_here)  # before the data loads

    with threads(cfg["threads"]), contextlib.ExitStack() as held:
        with _said("mlpnumpy.datasets", say):  # what was decided about the data: a CSV's header row
            data = load_data(cfg)
        from ..training.augment import check_augment, data_callbacks
        check_augment(cfg["augment"], data["image_shape"])  # before anything is written
        out.mkdir(parents=True, exist_ok=True)  # only once the data is known to load
        held.enter_context(_runfolder.lock(out))  # one run per folder: another train gets exit 2
        _runfolder.check_out(out, overwrite=overwrite, resume_here=resume_here, ours=True)  # again, ours now
        if overwrite:
            _runfolder.clear(out)
        Xtr, ytr = data["X_train"], data["y_train"]
        split = {"validation_split": cfg["validation_split"], "generator": [cfg["seed"], 1],
                 "test": data["split"]}
        Xva = yva = None
        if cfg["validation_split"] > 0:
            tr, va = train_val_split(ytr, cfg["validation_split"], np.random.default_rng(split["generator"]),
                                     stratify=True)
            Xtr, Xva, ytr, yva = Xtr[tr], Xtr[va], ytr[tr], ytr[va]
        n_classes = len(data["class_names"])
        steps = -(-len(Xtr) // cfg["batch_size"])
        history_before: dict[str, list] = {}
        if resume is None:
            model = MLP([Xtr.shape[1], *cfg["hidden"], n_classes], cfg["activation"], init=cfg["init"],
                        seed=cfg["seed"], dtype=cfg["dtype"], batch_norm=cfg["batch_norm"],
                        dropout=cfg["dropout"], residual=cfg["residual"], categorical=data.get("categorical"),
                        loss={"name": "cross_entropy", "label_smoothing": cfg["label_smoothing"]})
            model.class_names = data["class_names"]
            model.metadata = {"data": data["name"], "image_shape": data["image_shape"],
                              "pixel_max": data["pixel_max"], "invert": False, **data["metadata"]}
            if cfg["standardize"]:
                model.preprocessor = Standardizer().fit(Xtr)
                for f in data.get("categorical") or {}:  # codes pass through unscaled
                    model.preprocessor.mean_[f], model.preprocessor.scale_[f] = 0.0, 1.0
            optimizer, schedule = build_optimizer(cfg), build_schedule(cfg, steps)
            remaining = cfg["epochs"]
        else:
            if model.n_features_in != Xtr.shape[1]:
                raise InvalidDataError(f"the data has {Xtr.shape[1]} features; the checkpoint's model takes "
                                       f"{model.n_features_in}")
            from ..io._filechecks import check_resume_steps
            check_resume_steps(model, len(Xtr), cfg["batch_size"], str(Path(resume) / "checkpoint.npz"))
            optimizer, schedule = None, model.lr_schedule
            history_before = state_extra.get("history") or {}
            schedule_starts = list(state_extra.get("schedule_starts") or [0])
            remaining = cfg["epochs"] - model.epochs_trained  # 0: trained, but the folder was not finished
            if finetune:  # a new schedule over the epochs added, from the trained weights and optimizer
                schedule = build_schedule({**cfg, "epochs": remaining}, steps)
                model.lr_schedule = schedule
                schedule_starts.append(model.epochs_trained)
        extra = {"config": cfg, "split": split, "mlpnumpy": __version__,
                 "schedule_starts": [0] if resume is None else schedule_starts}
        early = None
        callbacks = data_callbacks(cfg["augment"], cfg["input_dropout"], Xtr, data["image_shape"])
        if cfg["early_stopping"] is not None:
            early = EarlyStopping("val_loss", patience=cfg["early_stopping"], restore_best_weights=True)
            watch = None if resume is None or finetune else state_extra.get("early_stopping")
            if watch is not None:  # go on watching as the uninterrupted run would (--finetune: afresh)
                early.load_state_dict(watch, None if watch.get("best_epoch") is None
                                      else _read_best_weights(Path(resume), model))
                if watch.get("stopped_epoch") is not None:
                    remaining = 0  # it had stopped early: only the folder is left to write
            callbacks.append(early)
        if cfg["track_internals"]:
            callbacks.append(internals.InternalsTracker())
        boundaries = None
        if Xtr.shape[1] == 2 and not data.get("categorical"):  # a 2-D problem: record the boundary as it forms
            from ..plots.boundary import BoundarySnapshots, log_epochs
            boundaries = BoundarySnapshots(Xtr, every=log_epochs(cfg["epochs"]))
            callbacks.append(boundaries)
        callbacks.append(_run_callback(out, extra, history_before, early))
        # history.csv after the checkpoint at every boundary, the earlier epochs of a resumed run first
        callbacks.append(CSVLogger(out / "history.csv", before=history_before, first_epoch=1))
        say(f"Training {model.__class__.__name__} {[model.n_features_in, *cfg['hidden'], n_classes]} on "
            f"{data['name']}: {len(Xtr)} train / {0 if Xva is None else len(Xva)} validation / "
            f"{len(data['X_test'])} test rows; {cfg['optimizer']} lr {cfg['lr']:g}, schedule "
            f"{cfg['schedule']}, " + (f"{remaining} epochs" if resume is None else
                                     f"epochs {model.epochs_trained + 1} to {cfg['epochs']}")
            + f" of batch {cfg['batch_size']}")
        held.enter_context(_finish_hint(out))  # from here on, Ctrl-C leaves a folder --resume can finish
        t_fit = time.perf_counter()
        interrupted, new_logs = False, {}
        if remaining > 0:
            history = model.fit(Xtr, ytr, epochs=remaining, batch_size=cfg["batch_size"], optimizer=optimizer,
                                lr=cfg["lr"] if finetune else None, lr_schedule=schedule,
                                validation_data=None if Xva is None else (Xva, yva),
                                callbacks=callbacks, verbose=0 if cfg["quiet"] else 1,
                                l1=cfg["l1"], l1_bias=cfg["l1_bias"])
            interrupted, new_logs = history.interrupted, history.history
        else:  # trained, but stopped (Ctrl-C) while writing the folder: write it now
            say(f"Training is over ({model.epochs_trained} epochs); writing the rest of the run folder")
            if early is not None:  # its state and best weights, as at the end of the training
                early.set_model(model)
                early.on_train_begin()
                early.on_train_end()
        fit_seconds = time.perf_counter() - t_fit
        full_history = _merge(history_before, new_logs)

        # ---- the run folder
        save_model(model, out / "model.npz")
        results = {"train": model.evaluate(Xtr, ytr, return_dict=True)}
        if Xva is not None:
            results["validation"] = model.evaluate(Xva, yva, return_dict=True)
        results["test"] = model.evaluate(data["X_test"], data["y_test"], return_dict=True)
        y_pred = model.predict(data["X_test"])
        cm = M.confusion_matrix(data["y_test"], y_pred, n_classes)
        precision, recall = M.precision_recall(cm)
        files = {"model": "model.npz", "checkpoint": "checkpoint.npz", "metrics": "metrics.json",
                 "history": "history.csv"}
        CSVLogger.write(out / "history.csv", CSVLogger.rows_of(full_history), first_epoch=1)
        plot_error = None
        try:
            plots.plot_history(full_history, out / "curves.png")
            plots.plot_weight_histograms(model, out / "weights.png")
            plots.plot_confusion_matrix(cm, data["class_names"], out / "confusion.png")
            files.update(curves="curves.png", weights="weights.png", confusion="confusion.png")
            if data["image_shape"] is not None and len(data["image_shape"]) == 2:
                plots.plot_misclassified(data["X_test"], data["y_test"], y_pred, data["class_names"],
                                         data["image_shape"], out / "misclassified.png")
                files["misclassified"] = "misclassified.png"
            if model.n_features_in == 2 and type(model.layers[0]).__name__ != "Embedding":
                plots.plot_decision_boundary(model, data["X_test"], data["y_test"], out / "boundary.png",
                                             class_names=data["class_names"],
                                             title=f"Decision boundary on the {len(data['X_test'])} test points")
                files["boundary"] = "boundary.png"
                if boundaries is not None and len(boundaries.snapshots) > 1:
                    plots.plot_boundary_grid(boundaries, Xtr, ytr, out / "boundary_epochs.png",
                                             class_names=data["class_names"])
                    files["boundary_epochs"] = "boundary_epochs.png"
            if seed_figure and full_history.get("loss"):
                plots.plot_seed_figure(full_history["loss"], model.layers[0].W, out / "mlp_result.png")
                files["seed_figure"] = "mlp_result.png"
            if cfg["track_internals"] and full_history.get("loss"):
                internals.plot_internals(full_history, out / "internals.png")
                files["internals"] = "internals.png"
        except MissingDependencyError as exc:
            plot_error = str(exc)
        metrics = {
            "data": data["name"], "n_train": len(Xtr), "n_validation": 0 if Xva is None else len(Xva),
            "n_test": len(data["X_test"]),
            **{f"{split_name}_{k}": v for split_name, r in results.items() for k, v in r.items()},
            "results": results,
            "per_class": {name: {"precision": float(p), "recall": float(r)}
                          for name, p, r in zip(data["class_names"], precision, recall)},
            "confusion_matrix": cm.tolist(), "epochs_trained": model.epochs_trained,
            "interrupted": bool(interrupted), "schedule_starts": extra["schedule_starts"],
            "early_stopped_epoch": None if early is None else early.state_dict()["stopped_epoch"],
            "fit_seconds": fit_seconds, "wall_seconds": time.perf_counter() - t_start,
            "seed": cfg["seed"], "config": cfg, "split": split, "n_params": model.count_params(),
            "versions": {"mlpnumpy": __version__, "numpy": np.__version__,
                         "python": sys.version.split()[0]},
            "files": files, "plot_error": plot_error, "resumed": resume is not None,
            "history": full_history,  # per-epoch logs, internals statistics included when tracked
        }
        _write_json(out / "metrics.json", metrics)
    if interrupted:
        say(f"Interrupted: the unfinished epoch was undone; the run folder holds {model.epochs_trained} "
            "whole epochs.")
    if plot_error:
        print(f"{PROG}: warning: no plots: {plot_error}", file=sys.stderr)
    say(f"Test accuracy {metrics['test_accuracy']:.4f} (loss {metrics['test_loss']:.4f}) after "
        f"{model.epochs_trained} epochs, {metrics['wall_seconds']:.1f}s; files in {out}/")
    return metrics
