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
import warnings
from typing import Any

import numpy as np

from . import config as _config
from ..errors import DivergenceError, InvalidArgumentError, InvalidDataError, MLPNumpyError
from .options import DATA_DIR_HELP, FORMATS_HELP, Parser, UsageError, add_download_option, add_file_options, add_train_options, recipes_epilog
from .run import (PROG, dataset_options as _dataset_options, file_options as _file_options,
                  label_column as _label_column, labelled_file as _labelled_file, run_train)

__all__ = ["main", "build_parser", "run_train"]


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__
    parser = Parser(prog=PROG, description="Multi-layer perceptrons from scratch in NumPy.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    add_train_options(sub.add_parser("train", help="train a model and write a run folder",
                                      epilog=recipes_epilog(),
                                      formatter_class=argparse.RawDescriptionHelpFormatter))

    p = sub.add_parser("evaluate", help="loss and accuracy of a saved model on a data set",
                       epilog=FORMATS_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="a model file written by mlpnumpy (run folder's model.npz)")
    p.add_argument("--data", help="data set name (its test split) or a labelled .npy/.npz/.csv file "
                                  "(default: the model's data set; required for a model trained on a file)")
    p.add_argument("--data-dir", metavar="DIR", help=DATA_DIR_HELP)
    add_download_option(p)
    add_file_options(p)
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


# ---------------------------------------------------------------------------------------- training


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
    from .. import datasets
    from ..datasets.registry import IDX_DATASETS
    if name.lower() in datasets.list_datasets():
        name = name.lower()
        for flag in ("label_column", "x_key", "y_key"):
            if getattr(ns, flag) is not None:
                raise InvalidArgumentError(f"{_config.flag(flag)} applies to --data FILE, not to the data set "
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
    from .. import datasets
    from ..io.model_files import load_model
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
    from ..errors import FileFormatError, require
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
    from ..datasets import load_array_file
    from ..datasets.files import _split_column
    from ..errors import FileFormatError
    ext = os.path.splitext(path)[1].lower()
    if ext in (".png", ".jpg", ".jpeg", ".bmp", ".gif"):
        if label_column is not None:
            raise InvalidArgumentError(f"--label-column applies to .csv and .npy inputs, not to the image {path}")
        return _read_image(path, meta, invert)
    if not os.path.isfile(path):
        raise InvalidArgumentError(f"INPUT {path!r} is not an existing file")
    column = _label_column(label_column)
    if ext == ".npy":
        from ..io._npyio import load_npy
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
    from ..io.model_files import load_model
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
            from ..io._filechecks import printable  # names come from the model file: no escape codes
            tops = ", ".join(f"{printable(t['class'])} {t['probability']:.3f}" for t in r["top"])
            print(f"{printable(r['input'])}[{r['row']}]: {printable(r['prediction'])}  ({tops})")
    return 0


def _cmd_gradcheck(ns) -> int:
    from ..datasets import load
    from ..nn.gradcheck import check_model
    from ..nn.model import MLP
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
    from .. import __version__, datasets
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
    from .._kernels import describe
    print(describe())
    return 0


def _cmd_export(ns) -> int:
    from ..io.model_files import load_model
    from ..integrations.onnx_export import check_output_file, export_onnx  # export: MissingDependencyError without onnx
    check_output_file(ns.onnx, "--onnx")
    export_onnx(load_model(ns.model), ns.onnx)
    print(f"wrote {ns.onnx}")
    return 0


def _cmd_experiment(rest: list[str]) -> int:
    from ..experiments import main as experiments_main
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
            from ..learn.cli import main as learn_main
            return int(learn_main(argv[1:]) or 0)
        if argv and argv[0] == "sweep":
            from ..sweep.cli import main as sweep_main
            return int(sweep_main(argv[1:]) or 0)
        try:
            ns = build_parser().parse_args(argv)
        except SystemExit as exc:  # --help, --version
            return int(exc.code or 0)
        if ns.command is None:
            build_parser().print_help()
            return 2
        return _COMMANDS[ns.command](ns)
    except UsageError as exc:
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
