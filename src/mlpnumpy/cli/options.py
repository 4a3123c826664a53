"""The options of ``mlpnumpy train`` (shared by ``mlpnumpy sweep``, which holds them fixed for every
trial) and the argument parser that reports bad arguments as one line.

``commands`` and ``sweep.cli`` both build on this module; neither imports the other's parser.
"""
from __future__ import annotations

import argparse

from . import config as _config

__all__ = ["UsageError", "Parser", "add_train_options", "add_file_options", "add_download_option",
           "recipes_epilog", "fmt_default", "default_help", "FORMATS_HELP", "LABEL_COLUMN_HELP", "DATA_DIR_HELP"]


class UsageError(Exception):
    """Bad command-line arguments (argparse's complaints), reported as one line."""


class Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse would print usage and exit; we report one line
        raise UsageError(message)


def fmt_default(value) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, list):
        return " ".join(map(str, value))
    return "none" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def default_help(key: str) -> str:
    """'default: digits 30, synthetic 10, others 20': each data set's recipe where it differs."""
    base = _config.BASE_DEFAULTS[key]
    per = [f"{name} {fmt_default(recipe[key])}" for name, recipe in _config.DATA_DEFAULTS.items()
           if key in recipe and recipe[key] != base]
    return f"default: {', '.join(per)}, others {fmt_default(base)}" if per else f"default {fmt_default(base)}"


def recipes_epilog() -> str:
    keys = list(dict.fromkeys(k for recipe in _config.DATA_DEFAULTS.values() for k in recipe))
    rows = [["--data", *(_config.flag(k)[2:] for k in keys)]]
    for name, recipe in [*_config.DATA_DEFAULTS.items(), ("FILE", {})]:
        rows.append([name, *(fmt_default(recipe.get(k, _config.BASE_DEFAULTS[k])) for k in keys)])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    table = "\n".join("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)
    return ("per-data-set defaults (the recipe; --config and flags override it):\n" + table + "\n\n"
            + FORMATS_HELP)


FORMATS_HELP = """\
file formats for --data FILE and --test-data FILE (one sample per row):
  .csv  numbers separated by commas; the LAST column is the label unless --label-column says
        otherwise (an index, 0 first and -1 last, or a header name). Labels are class indices
        0..K-1 or text such as cat/dog (the names become the model's class names). A first row
        with a non-numeric feature cell is a header.
  .npy  a 2-D array, the label in its last column (or --label-column INDEX).
  .npz  features in array X (or x), labels in array y (or Y); other names with --x-key/--y-key.
        Features may be images, shape (n, rows, cols)."""

LABEL_COLUMN_HELP = ("the label column of a .csv/.npy file: an index (0 first, -1 last) or a CSV "
                      "header name (default: the last column)")


def add_file_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--label-column", metavar="COL", help=LABEL_COLUMN_HELP)
    p.add_argument("--x-key", metavar="NAME", help="the features' array in a .npz file (default: X, else x)")
    p.add_argument("--y-key", metavar="NAME", help="the labels' array in a .npz file (default: y, else Y)")


def add_download_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--download", action=argparse.BooleanOptionalAction, default=None,
                   help="download missing mnist/fashion-mnist files (SHA-256 verified, written atomically, "
                        "progress on a terminal; mirror list from $MLPNUMPY_MIRROR if set); --no-download "
                        "forbids it (default: download)")


DATA_DIR_HELP = ("for mnist/fashion-mnist: the folder holding the four IDX files (or DIR/<name>/), the only "
                  "one searched and the download target (default: search $MLPNUMPY_DATA, ~/.cache/mlpnumpy, "
                  "/usr/share/datasets)")


def add_train_options(p: argparse.ArgumentParser) -> None:
    a = p.add_argument
    a("--data", help="digits (default, embedded), fashion-mnist, mnist, synthetic, the 2-D toy sets spiral, "
                     "moons, circles, xor, or a labelled "
                     ".npy/.npz/.csv file (formats below)")
    a("--data-dir", metavar="DIR", help=DATA_DIR_HELP)
    add_download_option(p)
    a("--test-data", metavar="FILE", help="labelled test file for --data FILE, same format (default: a "
                                          "seeded, stratified 20%% split of FILE)")
    add_file_options(p)
    a("--hidden", type=int, nargs="*", metavar="N", help=f"hidden layer sizes, e.g. --hidden 512 256 "
                                                         f"({default_help('hidden')})")
    a("--activation", help=f"relu, leaky_relu, tanh, sigmoid, elu, gelu, ... ({default_help('activation')})")
    a("--init", help=f"weight initialiser: auto (He for ReLUs, else Xavier), he_normal, xavier_uniform, ... "
                     f"({default_help('init')})")
    a("--optimizer", help=f"sgd, adam, adamw, rmsprop, adagrad ({default_help('optimizer')})")
    a("--lr", type=float, help=f"learning rate, the peak rate for onecycle ({default_help('lr')})")
    a("--momentum", type=float, help=f"momentum for --optimizer sgd ({default_help('momentum')})")
    a("--schedule", help=f"none, cosine, step, multistep, exponential, onecycle, plateau, warmup "
                         f"({default_help('schedule')})")
    a("--epochs", type=int, help=f"training epochs ({default_help('epochs')})")
    a("--batch-size", type=int, help=f"rows per step ({default_help('batch_size')})")
    a("--dropout", type=float, help=f"dropout rate of the hidden layers, in [0, 1) ({default_help('dropout')})")
    a("--input-dropout", type=float, metavar="P", help="train-time input dropout: each epoch, drop each input "
      "feature of every training row with probability P, in [0, 1) (the model has no dropout layer on its "
      f"inputs) ({default_help('input_dropout')})")
    a("--batch-norm", action=argparse.BooleanOptionalAction, default=None,
      help=f"batch normalisation after each hidden layer ({default_help('batch_norm')})")
    a("--weight-decay", type=float, help=f"L2 penalty, decoupled for adamw ({default_help('weight_decay')})")
    a("--l1", type=float, help=f"L1 penalty l1 * sum|W| on the weights ({default_help('l1')})")
    a("--l1-bias", type=float, help=f"L1 penalty on the biases, apart from --l1 ({default_help('l1_bias')})")
    a("--residual", action=argparse.BooleanOptionalAction, default=None,
      help="make each hidden layer after the first whose width equals its input's a residual block x + f(x) "
           f"(e.g. --hidden 64 64 64) ({default_help('residual')})")
    a("--categorical", metavar="COLS", help="for a .csv --data: its integer-coded categorical columns (indices "
      "or header names, comma-separated), each embedded as a learned vector beside the numeric columns")
    a("--label-smoothing", type=float, help=f"in [0, 1) ({default_help('label_smoothing')})")
    a("--validation-split", type=float, help=f"share of the training rows held out for validation, in [0, 1) "
                                             f"({default_help('validation_split')})")
    a("--early-stopping", type=int, metavar="PATIENCE",
      help="stop after PATIENCE epochs without a better validation loss, keeping the best weights "
           "(default off)")
    a("--seed", type=int, help=f"seed of every random draw, an integer >= 0 ({default_help('seed')})")
    a("--dtype", help=f"float32 or float64 ({default_help('dtype')})")
    a("--standardize", action=argparse.BooleanOptionalAction, default=None,
      help=f"standardise features with training-set statistics, saved with the model "
           f"({default_help('standardize')})")
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
      help="record activation/gradient statistics (mlpnumpy.training.internals)")
