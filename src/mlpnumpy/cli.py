"""The ``mlpnumpy`` command: train, evaluate, predict, demo, gradcheck, info, export, experiment.

``mlpnumpy train`` writes a run folder (model, checkpoint, metrics, history, plots); every error
becomes one line on stderr and exit status 2 (1 for failures at run time), never a traceback.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from . import config as _config
from .errors import DivergenceError, InvalidArgumentError, InvalidDataError, MissingDependencyError, MLPNumpyError

__all__ = ["main", "build_parser", "run_train"]

PROG = "mlpnumpy"


class _UsageError(Exception):
    """Bad command-line arguments (argparse's complaints), reported as one line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse would print usage and exit; we report one line
        raise _UsageError(message)


# ------------------------------------------------------------------------------------------ parser
def _fmt_default(value) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, list):
        return " ".join(map(str, value))
    return "none" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def _default(key: str) -> str:
    """'default: digits 30, synthetic 10, others 20': each data set's recipe where it differs."""
    base = _config.BASE_DEFAULTS[key]
    per = [f"{name} {_fmt_default(recipe[key])}" for name, recipe in _config.DATA_DEFAULTS.items()
           if key in recipe and recipe[key] != base]
    return f"default: {', '.join(per)}, others {_fmt_default(base)}" if per else f"default {_fmt_default(base)}"


def _recipes_epilog() -> str:
    keys = list(dict.fromkeys(k for recipe in _config.DATA_DEFAULTS.values() for k in recipe))
    rows = [["--data", *(_config._flag(k)[2:] for k in keys)]]
    for name, recipe in [*_config.DATA_DEFAULTS.items(), ("FILE", {})]:
        rows.append([name, *(_fmt_default(recipe.get(k, _config.BASE_DEFAULTS[k])) for k in keys)])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    table = "\n".join("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)
    return ("per-data-set defaults (the recipe; --config and flags override it):\n" + table + "\n\n"
            + _FORMATS_HELP)


_FORMATS_HELP = """\
file formats for --data FILE and --test-data FILE (one sample per row):
  .csv  numbers separated by commas; the LAST column is the label unless --label-column says
        otherwise (an index, 0 first and -1 last, or a header name). Labels are class indices
        0..K-1 or text such as cat/dog (the names become the model's class names). A first row
        with a non-numeric feature cell is a header.
  .npy  a 2-D array, the label in its last column (or --label-column INDEX).
  .npz  features in array X (or x), labels in array y (or Y); other names with --x-key/--y-key.
        Features may be images, shape (n, rows, cols)."""

_LABEL_COLUMN_HELP = ("the label column of a .csv/.npy file: an index (0 first, -1 last) or a CSV "
                      "header name (default: the last column)")


def _add_file_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--label-column", metavar="COL", help=_LABEL_COLUMN_HELP)
    p.add_argument("--x-key", metavar="NAME", help="the features' array in a .npz file (default: X, else x)")
    p.add_argument("--y-key", metavar="NAME", help="the labels' array in a .npz file (default: y, else Y)")


def _add_download_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--download", action=argparse.BooleanOptionalAction, default=None,
                   help="download missing mnist/fashion-mnist files (SHA-256 verified, written atomically, "
                        "progress on a terminal; mirror list from $MLPNUMPY_MIRROR if set); --no-download "
                        "forbids it (default: download)")


_DATA_DIR_HELP = ("for mnist/fashion-mnist: the folder holding the four IDX files (or DIR/<name>/), the only "
                  "one searched and the download target (default: search $MLPNUMPY_DATA, ~/.cache/mlpnumpy, "
                  "/usr/share/datasets)")


def _add_train_options(p: argparse.ArgumentParser) -> None:
    a = p.add_argument
    a("--data", help="digits (default, embedded), fashion-mnist, mnist, synthetic, the 2-D toy sets spiral, "
                     "moons, circles, xor, or a labelled "
                     ".npy/.npz/.csv file (formats below)")
    a("--data-dir", metavar="DIR", help=_DATA_DIR_HELP)
    _add_download_option(p)
    a("--test-data", metavar="FILE", help="labelled test file for --data FILE, same format (default: a "
                                          "seeded, stratified 20%% split of FILE)")
    _add_file_options(p)
    a("--hidden", type=int, nargs="*", metavar="N", help=f"hidden layer sizes, e.g. --hidden 512 256 "
                                                         f"({_default('hidden')})")
    a("--activation", help=f"relu, leaky_relu, tanh, sigmoid, elu, gelu, ... ({_default('activation')})")
    a("--init", help=f"weight initialiser: auto (He for ReLUs, else Xavier), he_normal, xavier_uniform, ... "
                     f"({_default('init')})")
    a("--optimizer", help=f"sgd, adam, adamw, rmsprop, adagrad ({_default('optimizer')})")
    a("--lr", type=float, help=f"learning rate, the peak rate for onecycle ({_default('lr')})")
    a("--momentum", type=float, help=f"momentum for --optimizer sgd ({_default('momentum')})")
    a("--schedule", help=f"none, cosine, step, multistep, exponential, onecycle, plateau, warmup "
                         f"({_default('schedule')})")
    a("--epochs", type=int, help=f"training epochs ({_default('epochs')})")
    a("--batch-size", type=int, help=f"rows per step ({_default('batch_size')})")
    a("--dropout", type=float, help=f"dropout rate of the hidden layers, in [0, 1) ({_default('dropout')})")
    a("--batch-norm", action=argparse.BooleanOptionalAction, default=None,
      help=f"batch normalisation after each hidden layer ({_default('batch_norm')})")
    a("--weight-decay", type=float, help=f"L2 penalty, decoupled for adamw ({_default('weight_decay')})")
    a("--l1", type=float, help=f"L1 penalty l1 * sum|W| on the weights ({_default('l1')})")
    a("--l1-bias", type=float, help=f"L1 penalty on the biases, apart from --l1 ({_default('l1_bias')})")
    a("--residual", action=argparse.BooleanOptionalAction, default=None,
      help="make each hidden layer after the first whose width equals its input's a residual block x + f(x) "
           f"(e.g. --hidden 64 64 64) ({_default('residual')})")
    a("--categorical", metavar="COLS", help="for a .csv --data: its integer-coded categorical columns (indices "
      "or header names, comma-separated), each embedded as a learned vector beside the numeric columns")
    a("--label-smoothing", type=float, help=f"in [0, 1) ({_default('label_smoothing')})")
    a("--validation-split", type=float, help=f"share of the training rows held out for validation, in [0, 1) "
                                             f"({_default('validation_split')})")
    a("--early-stopping", type=int, metavar="PATIENCE",
      help="stop after PATIENCE epochs without a better validation loss, keeping the best weights "
           "(default off)")
    a("--seed", type=int, help=f"seed of every random draw, an integer >= 0 ({_default('seed')})")
    a("--dtype", help=f"float32 or float64 ({_default('dtype')})")
    a("--standardize", action=argparse.BooleanOptionalAction, default=None,
      help=f"standardise features with training-set statistics, saved with the model "
           f"({_default('standardize')})")
    a("--recipe", metavar="NAME", help="the data set's recipe the other options start from: default, or for "
      "fashion-mnist and mnist also fast (the earlier default, about half the time) and best (the most "
      "accurate found, a few minutes) (default: default)")
    a("--augment", metavar="KIND", help="train-time augmentation of image data: none, or shift (each epoch "
      "moves every training image by up to 2 pixels each way, drawn from the seed) (default none)")
    a("--config", metavar="FILE.toml", help="options from a TOML file; flags override it")
    a("--out", metavar="DIR", help="run folder (default runs/<data>-<timestamp>)")
    a("--resume", metavar="DIR", help="continue the run in DIR from its checkpoint.npz (an interrupted "
      "run finishes bit-exactly)")
    a("--finetune", action="store_true", help="with --resume DIR --epochs N: train a finished run on to N "
      "epochs with a new schedule over the epochs added (--lr and --schedule may change)")
    a("--overwrite", action="store_true", help="clear the --out folder first when it holds another run")
    a("--quiet", action=argparse.BooleanOptionalAction, default=None,
      help="no progress output (--no-quiet turns it back on when resuming a quiet run)")
    a("--threads", type=int, help="BLAS threads (through threadpoolctl; default: the BLAS's own)")
    a("--track-internals", action="store_true", default=None,
      help="record activation/gradient statistics (mlpnumpy.internals)")


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    parser = _Parser(prog=PROG, description="Multi-layer perceptrons from scratch in NumPy.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    _add_train_options(sub.add_parser("train", help="train a model and write a run folder",
                                      epilog=_recipes_epilog(),
                                      formatter_class=argparse.RawDescriptionHelpFormatter))

    p = sub.add_parser("evaluate", help="loss and accuracy of a saved model on a data set",
                       epilog=_FORMATS_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="a model file written by mlpnumpy (run folder's model.npz)")
    p.add_argument("--data", help="data set name (its test split) or a labelled .npy/.npz/.csv file "
                                  "(default: the model's data set; required for a model trained on a file)")
    p.add_argument("--data-dir", metavar="DIR", help=_DATA_DIR_HELP)
    _add_download_option(p)
    _add_file_options(p)
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")

    p = sub.add_parser("predict", help="class probabilities for .npy/.csv rows or PNG/JPEG images")
    p.add_argument("model", help="a model file written by mlpnumpy (run folder's model.npz)")
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help=".npy or .csv rows of features (exactly the model's input width) or PNG/JPEG images")
    p.add_argument("--top", type=int, default=3, metavar="K", help="show the K most likely classes (default 3)")
    p.add_argument("--label-column", metavar="COL",
                   help="drop this column of .csv/.npy inputs first (an index, 0 first and -1 last, or a "
                        "CSV header name); without it every column is a feature")
    p.add_argument("--invert", action="store_true", help="invert image pixels (dark strokes on white)")
    p.add_argument("--json", action="store_true", help="print a JSON list instead of text")

    p = sub.add_parser("demo", help="the seed's flow on the embedded digits, with its figure")
    p.add_argument("--out", default=None, metavar="DIR", help="run folder (default runs/demo)")
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default 40)")
    p.add_argument("--seed", type=int, default=None, help="seed, an integer >= 0 (default 42)")
    p.add_argument("--quiet", action="store_true", default=None, help="no progress output")

    p = sub.add_parser("gradcheck", help="finite-difference check of a small float64 model")
    p.add_argument("--hidden", type=int, nargs="*", default=[16], metavar="N",
                   help="hidden layer sizes (default 16)")
    p.add_argument("--activation", default="tanh", help="activation of the hidden layers (default tanh)")
    p.add_argument("--batch-norm", action="store_true", help="add batch normalisation (checked in training mode)")
    p.add_argument("--rows", type=int, default=8, metavar="N",
                   help="digits rows in the checked batch (default 8)")

    sub.add_parser("info", help="versions, BLAS, threads and where the data sets are")

    p = sub.add_parser("export", help="export a model to ONNX")
    p.add_argument("model", help="a model file written by mlpnumpy (run folder's model.npz)")
    p.add_argument("--onnx", required=True, metavar="OUT",
                   help="the .onnx file to write (its folder must exist; needs the onnx extra)")

    sub.add_parser("experiment", help="run a named experiment (mlpnumpy.experiments)", add_help=False)
    sub.add_parser("learn", help="practice backprop: exercises you write, graded (mlpnumpy.learn)", add_help=False)
    sub.add_parser("sweep", help="hyperparameter sweep: Optuna's search on Dask workers (mlpnumpy.sweep)",
                   add_help=False)
    return parser


# ------------------------------------------------------------------------------------------- data
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


def _load_data(cfg: dict[str, Any]) -> dict[str, Any]:
    """Train and test arrays for ``cfg["data"]`` (a name or a file), flattened, in ``cfg["dtype"]``,
    with what the model file should record about them (``metadata``)."""
    data = _load_arrays(cfg)
    if cfg["validation_split"] > 0:  # the split run_train makes, tried here: before its folder exists
        _split(data["y_train"], cfg["validation_split"], [cfg["seed"], 1], "--validation-split")
    return data


def _load_arrays(cfg: dict[str, Any]) -> dict[str, Any]:
    from . import datasets
    name, dtype = cfg["data"], np.dtype(cfg["dtype"])
    if name in datasets.list_datasets():  # config.validate lower-cased it and checked the options
        ds = datasets.load(name, cfg["data_dir"], dtype=dtype, **_dataset_options(name, cfg["data_dir"],
                                                                                    cfg["download"],
                                                                                    cfg["quiet"], cfg["seed"]))
        return {"name": ds.name, "X_train": ds.X_train, "y_train": ds.y_train, "X_test": ds.X_test,
                "y_test": ds.y_test, "class_names": list(ds.class_names),
                "image_shape": None if ds.image_shape is None else list(ds.image_shape), "pixel_max": 1.0,
                "split": None, "metadata": {"data_kind": "dataset", "input_range": _value_range(ds.X_train)}}
    opts = _file_options(cfg)
    X, y, image_shape = _labelled_file(name, dtype, **opts)
    split = None
    if cfg["test_data"] is not None:
        Xt, yt, _ = _labelled_file(cfg["test_data"], dtype, **opts)
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
    from .training import train_val_split
    try:
        return train_val_split(y, fraction, np.random.default_rng(seed), stratify=True)
    except InvalidArgumentError as exc:
        raise InvalidArgumentError(f"{what}: {exc}") from None


def _dataset_options(name: str, data_dir, download, quiet, seed) -> dict[str, Any]:
    """Keyword options of ``datasets.load`` for a named set, as the command line's flags ask."""
    from .datasets.registry import IDX_DATASETS
    if name in IDX_DATASETS:
        # a progress bar on a terminal unless --quiet; an explicit --data-dir is the only folder used
        return {"download": download is not False, "progress": False if quiet else None,
                "only_data_dir": data_dir is not None}
    from .datasets.toy import TOY_DATASETS
    return {"seed": seed} if name == "synthetic" or name in TOY_DATASETS else {}


def _value_range(X: np.ndarray) -> list[float] | None:
    return [float(X.min()), float(X.max())] if X.size else None


def _label_column(value: str | None) -> int | str | None:
    """``--label-column``'s text as load_array_file takes it: an index, or a CSV header name."""
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return value


def _file_options(opts) -> dict[str, Any]:
    label = _label_column(opts.get("label_column"))
    return {"label_column": -1 if label is None else label, "x_key": opts.get("x_key"),
            "y_key": opts.get("y_key")}


def _labelled_file(path: str, dtype, *, label_column=-1, x_key=None, y_key=None
                   ) -> tuple[np.ndarray, np.ndarray, list | None]:
    from .datasets import load_array_file
    if not os.path.isfile(path):
        raise InvalidArgumentError(f"{path!r} is not an existing file")
    try:
        X, y = load_array_file(path, dtype=dtype, label_column=label_column, x_key=x_key, y_key=y_key)
    except MLPNumpyError as exc:  # the library names its arguments; the user typed flags
        raise type(exc)(re.sub(r"\b(label_column|x_key|y_key)=", lambda m: _config._flag(m[1]) + "=",
                               str(exc))) from None
    if y is None:
        raise InvalidDataError(f"{path}: has no labels; expected a label column (--label-column) or a 'y' "
                               "array (--y-key)")
    from ._validation import check_class_labels
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


# ---------------------------------------------------------------------------------------- training
def _build_schedule(cfg: dict, steps_per_epoch: int):
    from .schedules import schedule_for_run
    return schedule_for_run(cfg["schedule"], epochs=cfg["epochs"], steps_per_epoch=steps_per_epoch, lr=cfg["lr"])


def _build_optimizer(cfg: dict):
    from .optimizers import OPTIMIZERS
    cls = OPTIMIZERS[cfg["optimizer"]]
    kwargs = {"lr": cfg["lr"], "weight_decay": cfg["weight_decay"]}
    if cfg["optimizer"] == "sgd":
        kwargs["momentum"] = cfg["momentum"]
    return cls(**kwargs)


def _history_rows(history: dict[str, list]) -> list[dict]:
    n = len(history.get("loss", []))
    return [{"epoch": i + 1, **{k: v[i] for k, v in history.items() if i < len(v)}} for i in range(n)]


def _write_history_csv(path: Path, history: dict[str, list]) -> None:
    from ._atomic import atomic_write
    keys = ["epoch", *history]
    with atomic_write(path, "w") as fh:
        fh.write(",".join(keys) + "\n")
        for row in _history_rows(history):
            fh.write(",".join("" if row.get(k) is None else repr(row[k]) for k in keys) + "\n")


def _write_json(path: Path, obj) -> None:
    from ._atomic import atomic_write
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
    from ._atomic import atomic_write
    from .callbacks import Callback
    from .io import save_checkpoint

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
            _write_history_csv(out / "history.csv", hist)

    return RunFolder()


def _read_best_weights(folder: Path, model) -> list[np.ndarray]:
    """The early-stopping best weights a run folder keeps beside its checkpoint, checked against ``model``."""
    from .errors import FileFormatError
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


def _threads(n):
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
    from . import _filechecks, _runfolder
    from .io import load_checkpoint
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
            f"--resume continues a run as configured; {'--config' if config_file else _config._flag(changed[0])} "
            f"cannot be changed (only {', '.join(_config._flag(k) for k in sorted(allowed))}"
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
    from . import __version__, _runfolder, metrics as M, plots
    from .callbacks import EarlyStopping
    from .io import save_model
    from .model import MLP
    from .preprocessing import Standardizer
    from .training import train_val_split

    t_start = time.perf_counter()
    state_extra = None
    if finetune and resume is None:
        raise InvalidArgumentError("--finetune trains an earlier run further; expected it with --resume DIR")
    if resume is not None:
        model, state_extra, cfg = _resume(resume, cli_opts, config_file, finetune)
    else:
        cfg = _config.resolve(cli_opts, config_file)
    if cfg["track_internals"]:
        from . import internals
    out = Path(cfg["out"] or f"runs/{Path(cfg['data']).stem}-{time.strftime('%Y%m%d-%H%M%S')}")
    cfg["out"] = str(out)
    say = (lambda *a, **k: None) if cfg["quiet"] else print_fn
    resume_here = resume is not None and out.resolve() == Path(resume).resolve()
    if overwrite and resume_here:
        raise InvalidArgumentError(f"--overwrite would delete the checkpoint --resume {resume} continues from; "
                                   "omit --overwrite, or write the continued run elsewhere with --out DIR")
    _runfolder.check_out(out, overwrite=overwrite, resume_here=resume_here)  # before the data loads

    with _threads(cfg["threads"]), contextlib.ExitStack() as held:
        with _said("mlpnumpy.datasets", say):  # what was decided about the data: a CSV's header row
            data = _load_data(cfg)
        from .augment import augmentation_for, check_augment
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
            optimizer, schedule = _build_optimizer(cfg), _build_schedule(cfg, steps)
            remaining = cfg["epochs"]
        else:
            if model.n_features_in != Xtr.shape[1]:
                raise InvalidDataError(f"the data has {Xtr.shape[1]} features; the checkpoint's model takes "
                                       f"{model.n_features_in}")
            from ._filechecks import check_resume_steps
            check_resume_steps(model, len(Xtr), cfg["batch_size"], str(Path(resume) / "checkpoint.npz"))
            optimizer, schedule = None, model.lr_schedule
            history_before = state_extra.get("history") or {}
            schedule_starts = list(state_extra.get("schedule_starts") or [0])
            remaining = cfg["epochs"] - model.epochs_trained  # 0: trained, but the folder was not finished
            if finetune:  # a new schedule over the epochs added, from the trained weights and optimizer
                schedule = _build_schedule({**cfg, "epochs": remaining}, steps)
                model.lr_schedule = schedule
                schedule_starts.append(model.epochs_trained)
        extra = {"config": cfg, "split": split, "mlpnumpy": __version__,
                 "schedule_starts": [0] if resume is None else schedule_starts}
        callbacks, early = [], None
        augment = augmentation_for(cfg["augment"], Xtr, data["image_shape"])  # --augment shift: RandomShift
        if augment is not None:
            callbacks.append(augment)
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
            from .boundary import BoundarySnapshots, log_epochs
            boundaries = BoundarySnapshots(Xtr, every=log_epochs(cfg["epochs"]))
            callbacks.append(boundaries)
        callbacks.append(_run_callback(out, extra, history_before, early))
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
        _write_history_csv(out / "history.csv", full_history)
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


def _train_opts(ns: argparse.Namespace) -> dict[str, Any]:
    return {k: getattr(ns, k, None) for k in _config.OPTION_TYPES}


# -------------------------------------------------------------------------------------- commands
def _cmd_train(ns) -> int:
    m = run_train(_train_opts(ns), config_file=ns.config, resume=ns.resume, overwrite=ns.overwrite,
                  finetune=ns.finetune)
    if m["interrupted"]:
        out = m["config"]["out"]
        print(f"{PROG}: interrupted: {out} holds {m['epochs_trained']} whole epochs; finish the run with: "
              f"{PROG} train --resume {out}", file=sys.stderr)
        return 130
    return 0


def _cmd_demo(ns) -> int:
    from .demo import run_demo
    run_demo(out=ns.out or "runs/demo", epochs=40 if ns.epochs is None else ns.epochs,
             seed=42 if ns.seed is None else ns.seed, quiet=bool(ns.quiet))
    return 0


def _eval_data(name: str, ns, model) -> tuple[np.ndarray, np.ndarray, str]:
    from . import datasets
    from .datasets.registry import IDX_DATASETS
    if name.lower() in datasets.list_datasets():
        name = name.lower()
        for flag in ("label_column", "x_key", "y_key"):
            if getattr(ns, flag) is not None:
                raise InvalidArgumentError(f"{_config._flag(flag)} applies to --data FILE, not to the data set "
                                           f"{name!r}")
        if ns.data_dir is not None:
            if name not in IDX_DATASETS:
                raise InvalidArgumentError(f"--data-dir applies to --data {' or '.join(IDX_DATASETS)}, not to "
                                           f"{name!r}")
            _config.check_data_dir("--data-dir", ns.data_dir)
        ds = datasets.load(name, ns.data_dir, dtype=model.dtype,
                           **_dataset_options(name, ns.data_dir, ns.download, False, 0))
        return ds.X_test, ds.y_test, f"{ds.name} test split"
    if ns.data_dir is not None:
        raise InvalidArgumentError(f"--data-dir applies to --data {' or '.join(IDX_DATASETS)}, not to a file")
    _config.check_data_file("--data", name)
    meta = model.metadata or {}
    opts = {k: getattr(ns, k) if getattr(ns, k) is not None else meta.get(k)
            for k in ("label_column", "x_key", "y_key")}  # as in training unless given
    X, y, _ = _labelled_file(name, model.dtype, **_file_options(opts))
    if y.dtype.kind == "U":  # class names: the model's own indices
        index = {c: i for i, c in enumerate(model.class_names or [])}
        unknown = sorted({str(c) for c in np.unique(y)} - set(index))
        if unknown:
            raise InvalidDataError(f"{name}: label {unknown[0]!r} is not one of the model's classes: "
                                   f"{', '.join(index) or '(the model has no class names)'}")
        y = np.array([index[c] for c in y], dtype=np.int64)
    return X, y.astype(np.int64), name


def _cmd_evaluate(ns) -> int:
    from . import datasets
    from .io import load_model
    model = load_model(ns.model)
    meta = getattr(model, "metadata", None) or {}
    data = ns.data
    if data is None:
        trained_on = meta.get("data")
        if meta.get("data_kind") == "file" or (trained_on and trained_on not in datasets.list_datasets()):
            raise InvalidArgumentError(f"--data is required: {ns.model} was trained on the file "
                                       f"{meta.get('data_file') or trained_on!r}; pass --data FILE with labelled "
                                       "rows in the same format")
        if not trained_on:
            raise InvalidArgumentError("--data is required (the model file does not name its data set)")
        data = trained_on
    X, y, what = _eval_data(data, ns, model)
    res = model.evaluate(X, y, return_dict=True)
    if ns.json:
        print(json.dumps({**{k: float(v) for k, v in res.items()}, "n": int(len(X)), "data": what}))
    else:
        print(f"{what}: " + ", ".join(f"{k} {v:.4f}" for k, v in res.items()) + f"  ({len(X)} rows)")
    return 0


def _read_image(path: str, meta: dict, invert: bool) -> np.ndarray:
    from .errors import FileFormatError, require
    Image = require("PIL.Image", "images", "Reading images")
    shape = meta.get("image_shape")
    if not shape or len(shape) != 2:
        raise InvalidArgumentError(f"{path}: this model was not trained on images (no image_shape in its "
                                   "file); pass .npy or .csv rows instead")
    try:
        with warnings.catch_warnings():
            # Pillow warns above ~89 M pixels and refuses above twice that: both are refused here
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                im = im.convert("L").resize((int(shape[1]), int(shape[0])), Image.BILINEAR)
                pixels = np.asarray(im, dtype=np.float64) / 255.0
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise FileFormatError(f"{path}: the image is too large to read safely ({exc}); expected a picture about "
                              f"{int(shape[1])}x{int(shape[0])} pixels") from None
    except (OSError, ValueError) as exc:
        raise FileFormatError(f"{path}: not a readable image ({exc})") from None
    if invert != bool(meta.get("invert")):
        pixels = 1.0 - pixels
    return (pixels * float(meta.get("pixel_max") or 1.0)).reshape(1, -1)


def _read_rows(path: str, n_features: int, meta: dict, invert: bool, label_column: str | None = None
               ) -> np.ndarray:
    """Rows of features from an image, .npy or .csv file: exactly ``n_features`` values each.

    Every column is a feature unless ``label_column`` names one to drop: a file one column wider
    than the model is refused, never trimmed by guess.
    """
    from .datasets import load_array_file
    from .datasets.files import _split_column
    from .errors import FileFormatError
    ext = os.path.splitext(path)[1].lower()
    if ext in (".png", ".jpg", ".jpeg", ".bmp", ".gif"):
        if label_column is not None:
            raise InvalidArgumentError(f"--label-column applies to .csv and .npy inputs, not to the image {path}")
        return _read_image(path, meta, invert)
    if not os.path.isfile(path):
        raise InvalidArgumentError(f"INPUT {path!r} is not an existing file")
    column = _label_column(label_column)
    if ext == ".npy":
        from ._npyio import load_npy
        X = np.asarray(load_npy(path))  # FileFormatError for anything malformed or hostile, never a huge allocation
        if isinstance(column, str):
            raise InvalidArgumentError(f"--label-column {column!r}: a .npy file has no column names; expected "
                                       "an index such as -1")
        if column is not None:
            X = _split_column(X, column, path)[0]
    elif ext == ".csv":
        try:
            X, _ = load_array_file(path, label_column=column, dtype=np.float64)
        except FileFormatError as exc:
            if column is None and "is not a finite number" in str(exc):
                raise FileFormatError(f"{exc} (a label column? name it with --label-column to drop it)") from None
            raise
    else:
        raise InvalidArgumentError(f"INPUT {path!r}: extension {ext or '(none)'!r} is not one of: .npy, .csv, "
                                   ".png, .jpg, .jpeg")
    if X.dtype.kind not in "biuf":
        raise FileFormatError(f"{path}: holds {X.dtype} values; expected numbers")
    if X.ndim == 0:
        raise InvalidDataError(f"{path}: holds a single number (a 0-d array); expected rows of {n_features} "
                               f"values, shape (n, {n_features}) or ({n_features},)")
    if X.ndim == 1:
        X = X.reshape(1, -1)
    elif X.ndim > 2:
        X = X.reshape(X.shape[0], -1)
    if X.shape[1] != n_features:
        hint = (" (a label column? name it with --label-column to drop it)"
                if X.shape[1] == n_features + 1 and column is None else "")
        raise InvalidDataError(f"{path}: rows have {X.shape[1]} values; the model takes {n_features}{hint}")
    return X


def _check_range(path: str, X: np.ndarray, meta: dict) -> None:
    """One warning line when the input's values lie far outside those the model was trained on."""
    trained = meta.get("input_range")
    if not trained or X.size == 0:
        return
    lo, hi = float(trained[0]), float(trained[1])
    width = max(hi - lo, 1e-12)
    xlo, xhi = float(np.min(X)), float(np.max(X))
    if xhi > hi + width or xlo < lo - width:
        hint = "; 0-255 pixels for a model trained on 0-1 pixels: divide by 255" if hi <= 1 < xhi <= 255 else ""
        print(f"{PROG}: warning: {path}: values span [{xlo:g}, {xhi:g}], far outside the training data's "
              f"[{lo:g}, {hi:g}]; the predictions are unreliable: scale the input as the training data "
              f"was{hint}", file=sys.stderr)


def _cmd_predict(ns) -> int:
    from .io import load_model
    if ns.top < 1:
        raise InvalidArgumentError(f"--top={ns.top} is invalid; expected an integer >= 1")
    model = load_model(ns.model)
    meta = getattr(model, "metadata", None) or {}
    names = model.class_names or [str(i) for i in range(model.n_outputs)]
    k = min(ns.top, len(names))
    records = []
    for path in ns.inputs:
        X = _read_rows(path, model.n_features_in, meta, ns.invert, ns.label_column)
        _check_range(path, X, meta)
        P = model.predict_proba(X.astype(model.dtype))
        for i, p in enumerate(P):
            order = np.argsort(-p, kind="stable")[:k]
            records.append({"input": path, "row": i, "prediction": names[order[0]],
                            "top": [{"class": names[j], "index": int(j), "probability": float(p[j])}
                                    for j in order]})
    if ns.json:
        print(json.dumps(records))
    else:
        for r in records:
            from ._filechecks import printable  # names come from the model file: no escape codes
            tops = ", ".join(f"{printable(t['class'])} {t['probability']:.3f}" for t in r["top"])
            print(f"{printable(r['input'])}[{r['row']}]: {printable(r['prediction'])}  ({tops})")
    return 0


def _cmd_gradcheck(ns) -> int:
    from .datasets import load
    from .gradcheck import check_model
    from .model import MLP
    ds = load("digits", dtype=np.float64)
    if not 1 <= ns.rows <= len(ds.X_train):
        raise InvalidArgumentError(f"--rows={ns.rows} is invalid; expected an integer in 1..{len(ds.X_train)} "
                                   "(the digits training rows)")
    model = MLP([64, *ns.hidden, 10], ns.activation, seed=0, dtype=np.float64, batch_norm=ns.batch_norm)
    res = check_model(model, ds.X_train[:ns.rows], ds.y_train[:ns.rows], training=ns.batch_norm)
    print(f"gradcheck of MLP {[64, *ns.hidden, 10]} ({ns.activation}, float64) on {ns.rows} digits rows:")
    for name, err in res.errors.items():
        kinks = res.kink_entries.get(name, 0)
        away = res.errors_away_from_kinks.get(name, err)
        verdict = "ok" if err < 1e-7 else ("ok away from the kink" if away < 1e-7 else "FAIL")
        note = f"  ({kinks} entries at a kink; {away:.3e} without them)" if kinks else ""
        print(f"  {name:>10}: relative error {err:.3e}  {verdict}{note}")
    ok = res.passed(1e-7, ignore_kinks=True)  # a finite difference across a kink is no derivative
    if res.hit_kinks:
        print("kink: a finite-difference step moved a pre-activation across the activation's kink (0 for "
              "ReLU; it sat within the step of it); those entries' differences are not derivatives, so the "
              "verdict leaves them out (docs/09-gradient-checking-pitfalls.md)")
    print(f"{'PASS' if ok else 'FAIL'}: worst {res.worst} = {res.max_error:.3e}"
          f"{f', {res.max_error_away_from_kinks:.3e} away from kinks' if res.hit_kinks else ''} (tolerance 1e-07)")
    return 0 if ok else 1


def _cmd_info(ns) -> int:
    from . import __version__, datasets
    print(f"mlpnumpy {__version__}")
    print(f"numpy {np.__version__}, python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    try:
        import threadpoolctl
        for pool in threadpoolctl.threadpool_info():
            print(f"BLAS: {pool.get('internal_api')} {pool.get('version')} ({pool.get('user_api')}), "
                  f"{pool.get('num_threads')} threads, {pool.get('filepath')}")
    except ImportError:
        try:
            cfg = np.show_config(mode="dicts")
            blas = cfg.get("Build Dependencies", {}).get("blas", {})
            print(f"BLAS: {blas.get('name')} {blas.get('version')} (install threadpoolctl for thread counts)")
        except Exception:  # noqa: BLE001 - older NumPy has no dicts mode; info is best-effort
            print("BLAS: unknown (install threadpoolctl)")
    for name in datasets.list_datasets():
        if name in ("mnist", "fashion-mnist"):
            found = datasets.find_files(name)
            where = str(next(iter(found.values())).parent) if found else "not found (mlpnumpy can download it)"
        elif name == "digits":
            where = "embedded in the package"
        else:
            where = "generated on demand"
        print(f"data {name}: {where}")
    from ._kernels import describe
    print(describe())
    return 0


def _cmd_export(ns) -> int:
    from .io import load_model
    from .onnx_export import check_output_file, export_onnx  # export: MissingDependencyError without onnx
    check_output_file(ns.onnx, "--onnx")
    export_onnx(load_model(ns.model), ns.onnx)
    print(f"wrote {ns.onnx}")
    return 0


def _cmd_experiment(rest: list[str]) -> int:
    from .experiments import main as experiments_main
    return int(experiments_main(rest) or 0)


_COMMANDS = {"train": _cmd_train, "demo": _cmd_demo, "evaluate": _cmd_evaluate, "predict": _cmd_predict,
             "gradcheck": _cmd_gradcheck, "info": _cmd_info, "export": _cmd_export}


def _fail(message: str, code: int) -> int:
    print(f"{PROG}: error: {' '.join(str(message).split())}", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] == "experiment":
            return _cmd_experiment(argv[1:])
        if argv and argv[0] == "learn":
            from .learn.cli import main as learn_main
            return int(learn_main(argv[1:]) or 0)
        if argv and argv[0] == "sweep":
            from .sweep.cli import main as sweep_main
            return int(sweep_main(argv[1:]) or 0)
        try:
            ns = build_parser().parse_args(argv)
        except SystemExit as exc:  # --help, --version
            return int(exc.code or 0)
        if ns.command is None:
            build_parser().print_help()
            return 2
        return _COMMANDS[ns.command](ns)
    except _UsageError as exc:
        return _fail(exc, 2)
    except DivergenceError as exc:
        return _fail(exc, 1)
    except MLPNumpyError as exc:
        return _fail(exc, 2)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, FileExistsError, PermissionError) as exc:
        # a path the user gave that cannot be used: bad input (a full disk stays a run-time failure)
        return _fail(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else exc, 2)
    except KeyboardInterrupt as exc:
        return _fail(str(exc) or "interrupted", 130)
    except BrokenPipeError:  # the reader went away (`mlpnumpy info | head`): stop quietly, as SIGPIPE would
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as exc:  # noqa: BLE001 - one line, not a traceback; MLPNUMPY_DEBUG=1 shows it
        if os.environ.get("MLPNUMPY_DEBUG"):
            raise
        return _fail(f"{type(exc).__name__}: {exc} (set MLPNUMPY_DEBUG=1 for the traceback)", 1)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
