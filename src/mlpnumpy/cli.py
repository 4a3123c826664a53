"""The ``mlpnumpy`` command: train, evaluate, predict, demo, gradcheck, info, export, experiment.

``mlpnumpy train`` writes a run folder (model, checkpoint, metrics, history, plots); every error
becomes one line on stderr and exit status 2 (1 for failures at run time), never a traceback.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
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
def _add_train_options(p: argparse.ArgumentParser) -> None:
    a = p.add_argument
    a("--data", help="fashion-mnist, mnist, digits (default, embedded), synthetic, or a .npy/.npz/.csv file")
    a("--data-dir", help="folder holding the MNIST-format files")
    a("--test-data", help="test file for --data PATH (default: a seeded 20%% split of PATH)")
    a("--hidden", type=int, nargs="*", metavar="N", help="hidden layer sizes, e.g. --hidden 512 256")
    a("--activation", help="relu, leaky_relu, tanh, sigmoid, elu, gelu, ...")
    a("--init", help="weight initialiser (auto, he_normal, xavier_uniform, ...)")
    a("--optimizer", help="sgd, adam, adamw, rmsprop, adagrad")
    a("--lr", type=float, help="learning rate (peak rate for onecycle)")
    a("--momentum", type=float, help="momentum for --optimizer sgd")
    a("--schedule", help="none, cosine, step, multistep, exponential, onecycle, plateau, warmup")
    a("--epochs", type=int)
    a("--batch-size", type=int)
    a("--dropout", type=float)
    a("--batch-norm", action=argparse.BooleanOptionalAction, default=None)
    a("--weight-decay", type=float)
    a("--label-smoothing", type=float)
    a("--validation-split", type=float)
    a("--early-stopping", type=int, metavar="PATIENCE")
    a("--seed", type=int)
    a("--dtype", help="float32 (default) or float64")
    a("--standardize", action=argparse.BooleanOptionalAction, default=None,
      help="standardise features with training-set statistics (default on)")
    a("--config", metavar="FILE.toml", help="options from a TOML file; flags override it")
    a("--out", help="run folder (default runs/<data>-<timestamp>)")
    a("--resume", metavar="DIR", help="continue the run in DIR from its checkpoint.npz")
    a("--quiet", action="store_true", default=None, help="no progress output")
    a("--threads", type=int, help="BLAS threads (through threadpoolctl)")
    a("--track-internals", action="store_true", default=None,
      help="record activation/gradient statistics (mlpnumpy.internals)")


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    parser = _Parser(prog=PROG, description="Multi-layer perceptrons from scratch in NumPy.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    _add_train_options(sub.add_parser("train", help="train a model and write a run folder"))

    p = sub.add_parser("evaluate", help="loss and accuracy of a saved model on a data set")
    p.add_argument("model")
    p.add_argument("--data", help="data set name (its test split) or a labelled .npy/.npz/.csv file")
    p.add_argument("--data-dir")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("predict", help="class probabilities for .npy/.csv rows or PNG/JPEG images")
    p.add_argument("model")
    p.add_argument("inputs", nargs="+", metavar="INPUT")
    p.add_argument("--top", type=int, default=3, metavar="K")
    p.add_argument("--invert", action="store_true", help="invert image pixels (dark strokes on white)")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("demo", help="the seed's flow on the embedded digits, with its figure")
    p.add_argument("--out", default=None)
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--quiet", action="store_true", default=None)

    p = sub.add_parser("gradcheck", help="finite-difference check of a small float64 model")
    p.add_argument("--hidden", type=int, nargs="*", default=[16], metavar="N")
    p.add_argument("--activation", default="tanh")
    p.add_argument("--batch-norm", action="store_true")
    p.add_argument("--rows", type=int, default=8)

    sub.add_parser("info", help="versions, BLAS, threads and where the data sets are")

    p = sub.add_parser("export", help="export a model to ONNX")
    p.add_argument("model")
    p.add_argument("--onnx", required=True, metavar="OUT")

    sub.add_parser("experiment", help="run a named experiment (mlpnumpy.experiments)", add_help=False)
    return parser


# ------------------------------------------------------------------------------------------- data
def _load_data(cfg: dict[str, Any]) -> dict[str, Any]:
    """Train and test arrays for ``cfg["data"]`` (a name or a file), flattened, in ``cfg["dtype"]``."""
    from . import datasets
    name, dtype = cfg["data"], np.dtype(cfg["dtype"])
    if name.lower() in datasets.list_datasets():
        kwargs = {"download": False} if name.lower() in ("mnist", "fashion-mnist") else {}
        if name.lower() == "synthetic":
            kwargs["seed"] = cfg["seed"]
        ds = datasets.load(name.lower(), cfg["data_dir"], dtype=dtype, **kwargs)
        return {"name": ds.name, "X_train": ds.X_train, "y_train": ds.y_train, "X_test": ds.X_test,
                "y_test": ds.y_test, "class_names": list(ds.class_names),
                "image_shape": None if ds.image_shape is None else list(ds.image_shape), "pixel_max": 1.0,
                "split": None}
    if not os.path.isfile(name):
        raise InvalidArgumentError(f"--data={name!r} is neither a data set ({', '.join(datasets.list_datasets())}) "
                                   "nor an existing .npy/.npz/.csv file")
    X, y, image_shape = _labelled_file(name, dtype)
    split = None
    if cfg["test_data"] is not None:
        Xt, yt, _ = _labelled_file(cfg["test_data"], dtype)
        if Xt.shape[1] != X.shape[1]:
            raise InvalidDataError(f"--test-data has {Xt.shape[1]} features; --data has {X.shape[1]}")
    else:
        from .training import train_val_split
        split = {"test_fraction": 0.2, "generator": [cfg["seed"], 2]}
        tr, te = train_val_split(y, 0.2, np.random.default_rng(split["generator"]), stratify=True)
        X, Xt, y, yt = X[tr], X[te], y[tr], y[te]
    n_classes = int(max(y.max(), yt.max())) + 1
    return {"name": Path(name).stem, "X_train": X, "y_train": y, "X_test": Xt, "y_test": yt,
            "class_names": [str(c) for c in range(n_classes)], "image_shape": image_shape,
            "pixel_max": float(X.max()) if image_shape is not None else None, "split": split}


def _labelled_file(path: str, dtype) -> tuple[np.ndarray, np.ndarray, list | None]:
    from .datasets import load_array_file
    if not os.path.isfile(path):
        raise InvalidArgumentError(f"{path!r} is not an existing file")
    X, y = load_array_file(path, dtype=dtype)
    if y is None:
        raise InvalidDataError(f"{path}: has no labels; expected a label column or a 'y' array")
    if y.dtype.kind not in "iu" or (y.size and y.min() < 0):
        raise InvalidDataError(f"{path}: labels must be class indices 0..K-1; got dtype {y.dtype}")
    image_shape = list(X.shape[1:]) if X.ndim == 3 else None
    return X.reshape(len(X), -1), y.astype(np.int64), image_shape


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


def _run_callback(out: Path, extra_base: dict, history_before: dict):
    from .callbacks import Callback
    from .io import save_checkpoint

    class RunFolder(Callback):
        """Each epoch: the checkpoint (for --resume) and history.csv, both written atomically."""

        def on_train_begin(self, logs=None):
            self.logs: dict[str, list] = {}

        def on_epoch_end(self, epoch, logs=None):
            # Own record of the logs: the fit loop's History may run after this callback.
            n = len(self.logs.get("loss", []))
            for k, v in (logs or {}).items():
                self.logs.setdefault(k, [None] * n).append(v)
            hist = _merge(history_before, self.logs)
            save_checkpoint(self.model, out / "checkpoint.npz", extra={**extra_base, "history": hist})
            _write_history_csv(out / "history.csv", hist)

    return RunFolder()


def _threads(n):
    if n is None:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        raise MissingDependencyError("--threads needs the optional package 'threadpoolctl'; install it "
                                     "with: pip install 'mlpnumpy[perf]'") from None
    return threadpool_limits(limits=n)


_RESUMABLE = {"epochs", "quiet", "threads", "out", "data_dir"}


def run_train(cli_opts: dict[str, Any], *, config_file=None, resume=None, seed_figure: bool = False,
              print_fn=print) -> dict:
    """Train as ``mlpnumpy train`` does and write the run folder; returns the metrics dict."""
    from . import __version__, metrics as M, plots
    from .callbacks import EarlyStopping
    from .io import load_checkpoint, save_model
    from .model import MLP
    from .preprocessing import Standardizer
    from .training import train_val_split

    t_start = time.perf_counter()
    state_extra = None
    if resume is not None:
        ckpt = Path(resume) / "checkpoint.npz"
        if not ckpt.is_file():
            raise InvalidArgumentError(f"--resume {resume!r}: {ckpt} does not exist; expected a run folder "
                                       "written by mlpnumpy train")
        changed = sorted(k for k, v in cli_opts.items() if v is not None and k not in _RESUMABLE)
        if changed or config_file is not None:
            raise InvalidArgumentError(f"--resume continues a run as configured; "
                                       f"{'--config' if config_file else _config._flag(changed[0])} cannot "
                                       f"be changed (only --epochs, --quiet, --threads, --out, --data-dir)")
        model, state = load_checkpoint(ckpt)
        state_extra = state["extra"] or {}
        if "config" not in state_extra:
            raise InvalidArgumentError(f"{ckpt} was not written by mlpnumpy train (no configuration)")
        cfg = dict(state_extra["config"])
        planned = cfg["epochs"]
        cfg.update({k: v for k, v in cli_opts.items() if v is not None and k in _RESUMABLE})
        if cfg["epochs"] != planned and cfg["schedule"] not in ("none", "plateau", "exponential"):
            raise InvalidArgumentError(
                f"--epochs {cfg['epochs']}: the run was planned for {planned} epochs and its "
                f"{cfg['schedule']!r} schedule was laid out for that length; --resume finishes the planned "
                f"run (omit --epochs), or start a new run with --epochs {cfg['epochs']}")
        cfg["out"] = cfg["out"] if cli_opts.get("out") else str(resume)
        cfg = _config.validate(cfg)
    else:
        cfg = _config.resolve(cli_opts, config_file)
    if cfg["track_internals"]:
        from . import internals
    out = Path(cfg["out"] or f"runs/{Path(cfg['data']).stem}-{time.strftime('%Y%m%d-%H%M%S')}")
    cfg["out"] = str(out)
    say = (lambda *a, **k: None) if cfg["quiet"] else print_fn

    with _threads(cfg["threads"]):
        data = _load_data(cfg)
        out.mkdir(parents=True, exist_ok=True)  # only once the data is known to load
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
                        dropout=cfg["dropout"],
                        loss={"name": "cross_entropy", "label_smoothing": cfg["label_smoothing"]})
            model.class_names = data["class_names"]
            model.metadata = {"data": data["name"], "image_shape": data["image_shape"],
                              "pixel_max": data["pixel_max"], "invert": False}
            if cfg["standardize"]:
                model.preprocessor = Standardizer().fit(Xtr)
            optimizer, schedule = _build_optimizer(cfg), _build_schedule(cfg, steps)
            remaining = cfg["epochs"]
        else:
            if model.n_features_in != Xtr.shape[1]:
                raise InvalidDataError(f"the data has {Xtr.shape[1]} features; the checkpoint's model takes "
                                       f"{model.n_features_in}")
            optimizer, schedule = None, model.lr_schedule
            history_before = state_extra.get("history") or {}
            remaining = cfg["epochs"] - model.epochs_trained
            if remaining <= 0:
                raise InvalidArgumentError(f"--resume: the run already has {model.epochs_trained} epochs; "
                                           f"pass --epochs N with N > {model.epochs_trained} to train more")
        extra = {"config": cfg, "split": split, "mlpnumpy": __version__}
        callbacks = [_run_callback(out, extra, history_before)]
        if cfg["early_stopping"] is not None:
            callbacks.append(EarlyStopping("val_loss", patience=cfg["early_stopping"],
                                           restore_best_weights=True))
        if cfg["track_internals"]:
            callbacks.append(internals.InternalsTracker())
        say(f"Training {model.__class__.__name__} {[model.n_features_in, *cfg['hidden'], n_classes]} on "
            f"{data['name']}: {len(Xtr)} train / {0 if Xva is None else len(Xva)} validation / "
            f"{len(data['X_test'])} test rows; {cfg['optimizer']} lr {cfg['lr']:g}, schedule "
            f"{cfg['schedule']}, {remaining} epochs of batch {cfg['batch_size']}")
        t_fit = time.perf_counter()
        history = model.fit(Xtr, ytr, epochs=remaining, batch_size=cfg["batch_size"], optimizer=optimizer,
                            lr_schedule=schedule, validation_data=None if Xva is None else (Xva, yva),
                            callbacks=callbacks, verbose=0 if cfg["quiet"] else 1)
        fit_seconds = time.perf_counter() - t_fit
        full_history = _merge(history_before, history.history)

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
            if seed_figure:
                plots.plot_seed_figure(full_history["loss"], model.layers[0].W, out / "mlp_result.png")
                files["seed_figure"] = "mlp_result.png"
            if cfg["track_internals"]:
                internals.plot_internals(history, out / "internals.png")
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
            "interrupted": bool(history.interrupted),
            "early_stopped_epoch": next((c.stopped_epoch for c in callbacks if isinstance(c, EarlyStopping)
                                         and c.stopped_epoch is not None), None),
            "fit_seconds": fit_seconds, "wall_seconds": time.perf_counter() - t_start,
            "seed": cfg["seed"], "config": cfg, "split": split, "n_params": model.count_params(),
            "versions": {"mlpnumpy": __version__, "numpy": np.__version__,
                         "python": sys.version.split()[0]},
            "files": files, "plot_error": plot_error, "resumed": resume is not None,
            "history": full_history,  # per-epoch logs, internals statistics included when tracked
        }
        _write_json(out / "metrics.json", metrics)
    if history.interrupted:
        say("Interrupted: training stopped after the current batch; the run folder was still written.")
    if plot_error:
        print(f"{PROG}: warning: no plots: {plot_error}", file=sys.stderr)
    say(f"Test accuracy {metrics['test_accuracy']:.4f} (loss {metrics['test_loss']:.4f}) after "
        f"{model.epochs_trained} epochs, {metrics['wall_seconds']:.1f}s; files in {out}/")
    return metrics


def _train_opts(ns: argparse.Namespace) -> dict[str, Any]:
    return {k: getattr(ns, k, None) for k in _config.OPTION_TYPES}


# -------------------------------------------------------------------------------------- commands
def _cmd_train(ns) -> int:
    run_train(_train_opts(ns), config_file=ns.config, resume=ns.resume)
    return 0


def _cmd_demo(ns) -> int:
    from .demo import run_demo
    run_demo(out=ns.out or "runs/demo", epochs=ns.epochs or 40, seed=42 if ns.seed is None else ns.seed,
             quiet=bool(ns.quiet))
    return 0


def _eval_data(name: str, data_dir, dtype) -> tuple[np.ndarray, np.ndarray, str]:
    from . import datasets
    if name.lower() in datasets.list_datasets():
        kwargs = {"download": False} if name.lower() in ("mnist", "fashion-mnist") else {}
        ds = datasets.load(name.lower(), data_dir, dtype=dtype, **kwargs)
        return ds.X_test, ds.y_test, f"{ds.name} test split"
    X, y, _ = _labelled_file(name, dtype)
    return X, y, name


def _cmd_evaluate(ns) -> int:
    from .io import load_model
    model = load_model(ns.model)
    data = ns.data or (getattr(model, "metadata", None) or {}).get("data")
    if not data:
        raise InvalidArgumentError("--data is required (the model file does not name its data set)")
    X, y, what = _eval_data(data, ns.data_dir, model.dtype)
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
        with Image.open(path) as im:
            im = im.convert("L").resize((int(shape[1]), int(shape[0])), Image.BILINEAR)
            pixels = np.asarray(im, dtype=np.float64) / 255.0
    except (OSError, ValueError) as exc:
        raise FileFormatError(f"{path}: not a readable image ({exc})") from None
    if invert != bool(meta.get("invert")):
        pixels = 1.0 - pixels
    return (pixels * float(meta.get("pixel_max") or 1.0)).reshape(1, -1)


def _read_rows(path: str, n_features: int, meta: dict, invert: bool) -> np.ndarray:
    from .datasets import read_csv
    from .errors import FileFormatError
    ext = os.path.splitext(path)[1].lower()
    if ext in (".png", ".jpg", ".jpeg", ".bmp", ".gif"):
        return _read_image(path, meta, invert)
    if not os.path.isfile(path):
        raise InvalidArgumentError(f"INPUT {path!r} is not an existing file")
    if ext == ".npy":
        from ._npyio import load_npy
        X = load_npy(path)  # FileFormatError for anything malformed or hostile, never a huge allocation
    elif ext == ".csv":
        X, _ = read_csv(path)
    else:
        raise InvalidArgumentError(f"INPUT {path!r}: extension {ext or '(none)'!r} is not one of: .npy, .csv, "
                                   ".png, .jpg, .jpeg")
    X = np.asarray(X)
    if X.dtype.kind not in "biuf":
        raise FileFormatError(f"{path}: holds {X.dtype} values; expected numbers")
    if X.ndim == 1:
        X = X.reshape(1, -1)
    elif X.ndim > 2:
        X = X.reshape(X.shape[0], -1)
    if X.shape[1] == n_features + 1:  # a label column, as training files have
        X = X[:, :-1]
    if X.shape[1] != n_features:
        raise InvalidDataError(f"{path}: rows have {X.shape[1]} values; the model takes {n_features}")
    return X


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
        X = _read_rows(path, model.n_features_in, meta, ns.invert)
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
            tops = ", ".join(f"{t['class']} {t['probability']:.3f}" for t in r["top"])
            print(f"{r['input']}[{r['row']}]: {r['prediction']}  ({tops})")
    return 0


def _cmd_gradcheck(ns) -> int:
    from .datasets import load
    from .gradcheck import check_model
    from .model import MLP
    if ns.rows < 1:
        raise InvalidArgumentError(f"--rows={ns.rows} is invalid; expected an integer >= 1")
    ds = load("digits", dtype=np.float64)
    model = MLP([64, *ns.hidden, 10], ns.activation, seed=0, dtype=np.float64, batch_norm=ns.batch_norm)
    res = check_model(model, ds.X_train[:ns.rows], ds.y_train[:ns.rows], training=ns.batch_norm)
    print(f"gradcheck of MLP {[64, *ns.hidden, 10]} ({ns.activation}, float64) on {ns.rows} digits rows:")
    for name, err in res.errors.items():
        print(f"  {name:>10}: relative error {err:.3e}  {'ok' if err < 1e-7 else 'FAIL'}")
    ok = res.passed(1e-7)
    print(f"{'PASS' if ok else 'FAIL'}: worst {res.worst} = {res.max_error:.3e} (tolerance 1e-07)")
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
    return 0


def _cmd_export(ns) -> int:
    from .io import load_model
    from .onnx_export import export_onnx  # raises MissingDependencyError without the onnx extra
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
    except FileNotFoundError as exc:
        return _fail(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else exc, 2)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except Exception as exc:  # noqa: BLE001 - one line, not a traceback; MLPNUMPY_DEBUG=1 shows it
        if os.environ.get("MLPNUMPY_DEBUG"):
            raise
        return _fail(f"{type(exc).__name__}: {exc} (set MLPNUMPY_DEBUG=1 for the traceback)", 1)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
