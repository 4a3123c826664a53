"""Training configurations for the command line: per-data-set defaults, TOML files and validation.

A run's configuration is resolved in layers, each overriding the one before: built-in defaults, the
data set's recipe, a ``--config`` TOML file, then the flags given on the command line.
"""
from __future__ import annotations

import math
import os
from typing import Any

from ..errors import FileFormatError, InvalidArgumentError, MissingDependencyError, check_choice

__all__ = ["OPTION_TYPES", "BASE_DEFAULTS", "DATA_DEFAULTS", "RECIPES", "recipe_names", "recipe_for",
           "defaults_for", "load_toml", "validate", "resolve", "check_out_dir", "check_data_file", "check_data_dir",
           "flag"]

#: Every training option and its type: "int", "float", "str", "bool", "ints" (a list of ints),
#: with "?" when None is allowed.
OPTION_TYPES: dict[str, str] = {
    "data": "str", "data_dir": "str?", "test_data": "str?", "hidden": "ints", "activation": "str",
    "init": "str", "optimizer": "str", "lr": "float", "momentum": "float", "schedule": "str",
    "epochs": "int", "batch_size": "int", "dropout": "float", "batch_norm": "bool",
    "weight_decay": "float", "label_smoothing": "float", "validation_split": "float",
    "early_stopping": "int?", "seed": "int", "dtype": "str", "standardize": "bool", "out": "str?",
    "quiet": "bool", "threads": "int?", "track_internals": "bool", "download": "bool",
    "label_column": "str?", "x_key": "str?", "y_key": "str?",
    "l1": "float", "l1_bias": "float", "residual": "bool", "categorical": "str?",
    "recipe": "str", "augment": "str", "input_dropout": "float",
}

BASE_DEFAULTS: dict[str, Any] = {
    "data": "digits", "data_dir": None, "test_data": None, "hidden": [128, 64], "activation": "relu",
    "init": "auto", "optimizer": "adam", "lr": 1e-3, "momentum": 0.0, "schedule": "cosine", "epochs": 20,
    "batch_size": 64, "dropout": 0.0, "batch_norm": False, "weight_decay": 0.0, "label_smoothing": 0.0,
    "validation_split": 0.1, "early_stopping": None, "seed": 0, "dtype": "float32", "standardize": True,
    "out": None, "quiet": False, "threads": None, "track_internals": False, "download": True,
    "label_column": None, "x_key": None, "y_key": None,
    "l1": 0.0, "l1_bias": 0.0, "residual": False, "categorical": None,
    "recipe": "default", "augment": "none", "input_dropout": 0.0,
}

# Fashion-MNIST's default, found on validation accuracy by the sweeps in benchmarks/sweeps/fashion-default*
# (trial 7 of the full-length round, values rounded): 784-512-256-10 as PyTorch's reference recipe, with
# batch normalisation (README, "Fashion-MNIST").
_FASHION_DEFAULT = {"hidden": [512, 256], "epochs": 20, "batch_size": 256, "lr": 2e-3, "schedule": "onecycle",
                    "label_smoothing": 0.13, "dropout": 0.2, "weight_decay": 6.6e-5, "batch_norm": True}
#: Recipes per data set, the defaults of ``mlpnumpy train --data NAME`` (the README gives what each reaches).
DATA_DEFAULTS: dict[str, dict[str, Any]] = {
    # found by benchmarks/sweeps/digits-default (trial 12): test accuracy 0.9916, 0.9833, 0.9805 for seeds 0-2
    "digits": {"hidden": [512], "epochs": 50, "batch_size": 32, "lr": 3.4e-3, "standardize": False,
               "schedule": "cosine", "label_smoothing": 0.13, "dropout": 0.38, "weight_decay": 2e-5},
    "fashion-mnist": _FASHION_DEFAULT,
    "mnist": dict(_FASHION_DEFAULT),  # MNIST takes Fashion-MNIST's recipes (same image size and classes)
    "synthetic": {"hidden": [128], "epochs": 10},
    # 2-D toy sets: 0.98+ test accuracy on the spiral in about 2 s
    **{name: {"hidden": [64, 64], "epochs": 100, "batch_size": 32, "lr": 1e-2, "schedule": "none"}
       for name in ("spiral", "moons", "circles", "xor")},
}

SCHEDULE_CHOICES = ("none", "cosine", "step", "multistep", "exponential", "onecycle", "plateau", "warmup")

#: Named recipes besides ``default`` (``--recipe NAME``), each complete in itself (not applied over the
#: default). Fashion-MNIST's were found by the sweeps in benchmarks/sweeps/ (README, "Fashion-MNIST").
#: ``fast``: the earlier default, 0.90 test accuracy in about half the default's time;
#: ``best``: the most accurate plain MLP the sweep found within a few minutes of training, with input
#: dropout 0.1 (train-time only; benchmarks/sweeps/fashion-round3).
RECIPES: dict[str, dict[str, dict[str, Any]]] = {
    "fashion-mnist": {
        "fast": {"hidden": [256, 128], "epochs": 20, "batch_size": 128, "lr": 2e-3, "schedule": "onecycle",
                 "label_smoothing": 0.1},
        "best": {"hidden": [1024, 1024], "epochs": 40, "batch_size": 128, "lr": 7.4e-4, "schedule": "onecycle",
                 "label_smoothing": 0.043, "dropout": 0.32, "weight_decay": 2.5e-4, "input_dropout": 0.1},
    },
}
RECIPES["mnist"] = {name: dict(recipe) for name, recipe in RECIPES["fashion-mnist"].items()}


def recipe_names(data: str) -> list[str]:
    """The recipes ``--recipe`` accepts for data set ``data``: ``default`` and its named ones."""
    return ["default", *RECIPES.get(str(data).lower(), {})]


def recipe_for(data: str, recipe: str = "default") -> dict[str, Any]:
    """The options recipe ``recipe`` of data set ``data`` sets (a copy); raises for an unknown name."""
    name = check_choice("--recipe", recipe, recipe_names(data))
    table = DATA_DEFAULTS if name == "default" else RECIPES[str(data).lower()]
    found = table.get(str(data).lower(), {}) if name == "default" else table[name]
    return {k: (list(v) if isinstance(v, list) else v) for k, v in found.items()}


def defaults_for(data: str, recipe: str = "default") -> dict[str, Any]:
    """The built-in defaults with recipe ``recipe`` of data set ``data`` (a name or a file) applied."""
    cfg = {k: (list(v) if isinstance(v, list) else v) for k, v in BASE_DEFAULTS.items()}
    cfg.update(recipe_for(data, recipe))
    cfg["data"] = data
    cfg["recipe"] = recipe.lower()
    return cfg


def _check_type(key: str, value: Any, where: str) -> Any:
    kind = OPTION_TYPES[key]
    if value is None and kind.endswith("?"):
        return None
    kind = kind.rstrip("?")
    ok = {"int": lambda v: isinstance(v, int) and not isinstance(v, bool),
          "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
          "str": lambda v: isinstance(v, str),
          "bool": lambda v: isinstance(v, bool),
          "ints": lambda v: isinstance(v, list) and all(isinstance(x, int) and not isinstance(x, bool)
                                                         for x in v)}[kind](value)
    if not ok:
        expected = {"ints": "a list of integers", "int": "an integer", "float": "a number",
                    "str": "a string", "bool": "true or false"}[kind]
        raise InvalidArgumentError(f"{where}: {key}={value!r} is invalid; expected {expected}")
    return float(value) if kind == "float" else value


def load_toml(path) -> dict[str, Any]:
    """Read a TOML file of training options (keys as the flags: ``batch-size`` or ``batch_size``)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python < 3.11
        try:
            import tomli as tomllib
        except ModuleNotFoundError:
            raise MissingDependencyError("--config needs Python 3.11+ (tomllib) or the package 'tomli'; "
                                         "install it with: pip install tomli") from None
    name = os.fspath(path)
    try:
        with open(name, "rb") as fh:
            raw = tomllib.load(fh)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise FileFormatError(f"{name}: not valid TOML ({exc})") from None
    except OSError as exc:  # a folder, a missing or unreadable file: one line naming --config
        raise InvalidArgumentError(f"--config {name!r}: {exc.strerror or exc}; expected a readable "
                                   "TOML file") from None
    table = raw.get("train", raw) if isinstance(raw.get("train"), dict) else raw
    out = {}
    for key, value in table.items():
        k = key.replace("-", "_")
        if k not in OPTION_TYPES:
            raise InvalidArgumentError(f"{name}: option {key!r} is not one of: "
                                       f"{', '.join(o.replace('_', '-') for o in OPTION_TYPES)}")
        if k == "hidden" and isinstance(value, int) and not isinstance(value, bool):
            value = [value]
        if k == "label_column" and isinstance(value, int) and not isinstance(value, bool):
            value = str(value)  # an index; the flag's value is text too
        out[k] = _check_type(k, value, name)
    return out


def flag(key: str) -> str:
    return "--" + key.replace("_", "-")


def _positive(cfg, key, integer=False, allow_zero=False):
    v = cfg[key]
    good = math.isfinite(v) and (v > 0 or (allow_zero and v == 0))
    if not good or (integer and int(v) != v):
        bound = ">= 0" if allow_zero else "> 0"
        raise InvalidArgumentError(f"{flag(key)}={v!r} is invalid; expected a finite "
                                   f"{'integer' if integer else 'number'} {bound}")


def _fraction(cfg, key):
    v = cfg[key]
    if not (math.isfinite(v) and 0 <= v < 1):
        raise InvalidArgumentError(f"{flag(key)}={v!r} is out of range; expected a number in [0, 1)")


def validate(cfg: dict[str, Any]) -> dict[str, Any]:
    """Check every option's type and range; return ``cfg`` with names lower-cased."""
    from ..nn.activations import ACTIVATIONS
    from ..nn.initializers import INITIALIZERS
    from ..optim.optimizers import OPTIMIZERS
    for key in OPTION_TYPES:  # options added since a checkpoint was written take their defaults
        cfg[key] = _check_type(key, cfg.get(key, BASE_DEFAULTS.get(key)), "configuration")
    cfg["activation"] = check_choice("--activation", cfg["activation"], ACTIVATIONS)
    cfg["init"] = check_choice("--init", cfg["init"], ["auto", *INITIALIZERS])
    cfg["optimizer"] = check_choice("--optimizer", cfg["optimizer"], OPTIMIZERS)
    cfg["schedule"] = check_choice("--schedule", cfg["schedule"], SCHEDULE_CHOICES)
    cfg["dtype"] = check_choice("--dtype", cfg["dtype"], ["float32", "float64"])
    from ..training.augment import AUGMENTATIONS
    cfg["augment"] = check_choice("--augment", cfg["augment"], AUGMENTATIONS)
    cfg["recipe"] = check_choice("--recipe", cfg["recipe"], recipe_names(cfg["data"]))
    for h in cfg["hidden"]:
        if h <= 0 or h > 1_000_000:
            raise InvalidArgumentError(f"--hidden {h} is invalid; expected layer sizes in 1..1000000")
    _positive(cfg, "lr")
    _positive(cfg, "epochs", integer=True)
    _positive(cfg, "batch_size", integer=True)
    _positive(cfg, "momentum", allow_zero=True)
    _positive(cfg, "weight_decay", allow_zero=True)
    _positive(cfg, "l1", allow_zero=True)
    _positive(cfg, "l1_bias", allow_zero=True)
    hidden = cfg["hidden"]
    if cfg["residual"] and not any(a == b for a, b in zip(hidden, hidden[1:])):
        raise InvalidArgumentError(f"--residual needs two consecutive hidden layers of equal width (x + f(x)); "
                                   f"--hidden {' '.join(map(str, hidden)) or '(none)'} has none; expected e.g. "
                                   "--hidden 64 64 64")
    for key in ("dropout", "input_dropout", "label_smoothing", "validation_split"):
        _fraction(cfg, key)
    if cfg["input_dropout"] > 0 and cfg["categorical"] is not None:
        raise InvalidArgumentError("--input-dropout would drop and rescale the integer codes of the "
                                   "--categorical columns; expected --input-dropout 0 with --categorical")
    if cfg["early_stopping"] is not None:
        _positive(cfg, "early_stopping", integer=True, allow_zero=True)
        if cfg["validation_split"] == 0:
            raise InvalidArgumentError("--early-stopping needs validation data; expected "
                                       "--validation-split > 0")
    if cfg["schedule"] == "plateau" and cfg["validation_split"] == 0:
        raise InvalidArgumentError("--schedule plateau follows the validation loss; expected "
                                   "--validation-split > 0")
    if cfg["threads"] is not None:
        _positive(cfg, "threads", integer=True)
    if cfg["momentum"] and cfg["optimizer"] != "sgd":
        raise InvalidArgumentError(f"--momentum applies to --optimizer sgd, not {cfg['optimizer']!r}")
    _positive(cfg, "seed", integer=True, allow_zero=True)
    _check_data_options(cfg)
    if cfg["out"] is not None:
        check_out_dir(cfg["out"])
    return cfg


def _check_data_options(cfg: dict[str, Any]) -> None:
    """Every data option applies to the data given (none is silently ignored) and names what exists."""
    from ..datasets.registry import IDX_DATASETS, list_datasets
    data = cfg["data"]
    is_name = data.lower() in list_datasets()
    if is_name:
        cfg["data"] = data.lower()
        for key in ("test_data", "label_column", "x_key", "y_key", "categorical"):
            if cfg[key] is not None:
                raise InvalidArgumentError(f"{flag(key)} applies to --data FILE, not to the data set "
                                           f"{cfg['data']!r} (which brings its own test split and labels)")
    else:
        check_data_file("--data", data)
        exts = {os.path.splitext(data)[1].lower()}
        if cfg["test_data"] is not None:
            check_data_file("--test-data", cfg["test_data"])
            exts.add(os.path.splitext(cfg["test_data"])[1].lower())
        if cfg["label_column"] is not None and not exts & {".csv", ".npy"}:
            raise InvalidArgumentError(f"--label-column applies to .csv and .npy files; {data!r} is a .npz "
                                       "archive (choose its arrays with --x-key/--y-key)")
        if cfg["categorical"] is not None and exts != {".csv"}:
            raise InvalidArgumentError(f"--categorical applies to .csv files; {data!r} is not one (an .npy/.npz "
                                       "file's categorical columns can be embedded from Python: "
                                       "MLP(..., categorical={column: n_categories}))")
        for key in ("x_key", "y_key"):
            if cfg[key] is not None and ".npz" not in exts:
                raise InvalidArgumentError(f"{flag(key)} applies to .npz archives; {data!r} is not one "
                                           "(choose a CSV or .npy label column with --label-column)")
    if cfg["data_dir"] is not None:
        if cfg["data"] not in IDX_DATASETS:
            raise InvalidArgumentError(f"--data-dir applies to --data {' or '.join(IDX_DATASETS)}, not to "
                                       f"{cfg['data']!r}")
        check_data_dir("--data-dir", cfg["data_dir"])


def check_data_file(flag: str, path: str) -> None:
    """Raise unless ``path`` is an existing ``.npy``, ``.npz`` or ``.csv`` file."""
    from ..datasets.registry import list_datasets
    ext = os.path.splitext(path)[1].lower()
    if not os.path.isfile(path):
        named = f"neither a data set ({', '.join(list_datasets())}) nor " if flag == "--data" else ""
        raise InvalidArgumentError(f"{flag}={path!r} is {named}an existing .npy/.npz/.csv file")
    if ext not in (".npy", ".npz", ".csv"):
        raise InvalidArgumentError(f"{flag}={path!r}: extension {ext or '(none)'!r} is not one of: "
                                   ".npy, .npz, .csv")


def check_data_dir(flag: str, path: str) -> None:
    """Raise unless ``path`` is an existing folder (an explicit data folder is never skipped silently)."""
    if not os.path.isdir(path):
        what = "a file" if os.path.exists(path) else "not an existing folder"
        raise InvalidArgumentError(f"{flag} {path!r} is {what}; expected the folder holding the data "
                                   "files (create it first, or omit the option to use the usual places)")


def check_out_dir(path: str, flag: str = "--out") -> None:
    """Raise unless ``path`` is an existing writable folder or one that can be created.

    Checked before anything is written, so a run that fails validation leaves no folder behind.
    """
    p = os.path.abspath(os.path.expanduser(os.fspath(path)))
    if os.path.exists(p):
        if not os.path.isdir(p):
            raise InvalidArgumentError(f"{flag} {os.fspath(path)!r} is an existing file; expected a folder "
                                       "(new or existing)")
        if not os.access(p, os.W_OK | os.X_OK):
            raise InvalidArgumentError(f"{flag} {os.fspath(path)!r} is a folder this user cannot write to; "
                                       "expected a writable folder")
        return
    parent = os.path.dirname(p)
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise InvalidArgumentError(f"{flag} {os.fspath(path)!r} cannot be created: {parent} is a file, not a "
                                   "folder; expected a folder path")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InvalidArgumentError(f"{flag} {os.fspath(path)!r} cannot be created: {parent} is not writable; "
                                   "expected a folder path this user can write to")


def resolve(cli: dict[str, Any], config_file=None) -> dict[str, Any]:
    """Defaults, then the data set's recipe, then ``config_file``, then the explicit flags ``cli``
    (entries that are None were not given)."""
    from_file = load_toml(config_file) if config_file is not None else {}
    given = {k: v for k, v in cli.items() if v is not None and k in OPTION_TYPES}
    data = given.get("data", from_file.get("data", BASE_DEFAULTS["data"]))
    recipe = given.get("recipe", from_file.get("recipe", BASE_DEFAULTS["recipe"]))
    if not isinstance(recipe, str):
        raise InvalidArgumentError(f"recipe={recipe!r} is invalid; expected one of: "
                                   f"{', '.join(recipe_names(data))}")
    cfg = defaults_for(data, recipe)
    cfg.update(from_file)
    cfg.update(given)
    return validate(cfg)
