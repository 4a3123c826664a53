"""The search space of a sweep: which ``mlpnumpy train`` options vary, over which ranges or choices.

A space is a TOML table whose keys are training options (as in ``--config`` files). Each value is a
fixed value, a range ``{low = .., high = .., log = true, step = ..}`` or ``{choices = [..]}``; the
hidden sizes take ``{layers = .., units = ..}`` or choices of lists. Every value a space can produce is
checked against :func:`mlpnumpy.cli.config.validate` before anything runs.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

from ..cli import config as _config
from ..errors import FileFormatError, InvalidArgumentError, MissingDependencyError

__all__ = ["Dimension", "SearchSpace", "DEFAULT_SPACE_TOML", "SEARCHABLE", "load_space", "parse_space"]

#: Every training option a space may vary, in the order they are suggested (the optimizer before its
#: momentum, which only SGD takes). The others (the data and how it is read, the seed, the validation
#: split the objective is measured on, where results go) are the same for every trial.
SEARCHABLE = ("hidden", "activation", "init", "optimizer", "lr", "momentum", "schedule", "epochs", "batch_size",
              "dropout", "batch_norm", "weight_decay", "label_smoothing", "early_stopping", "dtype", "standardize",
              "l1", "l1_bias", "residual", "augment")

#: The space used when ``--space`` is not given (``mlpnumpy sweep --show-space`` prints it).
DEFAULT_SPACE_TOML = """\
# The default search space of `mlpnumpy sweep`. Keys are `mlpnumpy train` options; a value is fixed,
# a range {low, high, log, step} or {choices = [...]}. Epochs come from the data set's recipe or --epochs.
hidden = { layers = { low = 1, high = 3 }, units = { low = 32, high = 512, log = true } }
activation = { choices = ["relu", "gelu", "tanh", "leaky_relu"] }
optimizer = { choices = ["adam", "adamw", "sgd"] }
lr = { low = 1e-4, high = 3e-2, log = true }
momentum = { low = 0.0, high = 0.95 }        # suggested only when the optimizer is sgd
batch_size = { choices = [32, 64, 128, 256] }
schedule = { choices = ["none", "cosine", "onecycle"] }
dropout = { low = 0.0, high = 0.5 }
weight_decay = { low = 1e-6, high = 1e-2, log = true }
label_smoothing = { low = 0.0, high = 0.2 }
batch_norm = { choices = [false, true] }
"""


def _load_tomllib():
    try:
        import tomllib
    except ModuleNotFoundError:  # Python < 3.11
        try:
            import tomli as tomllib
        except ModuleNotFoundError:
            raise MissingDependencyError("--space needs Python 3.11+ (tomllib) or the package 'tomli'; "
                                         "install it with: pip install 'mlpnumpy[sweep]'") from None
    return tomllib


@dataclass
class Dimension:
    """One searched quantity: an Optuna parameter named ``name``.

    ``kind`` is ``"float"``, ``"int"`` or ``"categorical"``; ranges have ``low``/``high`` (inclusive),
    ``log`` and ``step``; categorical ones have ``choices`` (TOML lists of hidden sizes are held as
    strings like ``"256-128"``, as Optuna's choices must be scalars).
    """

    name: str
    kind: str
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: tuple = ()

    def suggest(self, trial) -> Any:
        """Draw this dimension's value from an Optuna ``trial``."""
        if self.kind == "categorical":
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), step=int(self.step or 1),
                                     log=self.log)
        return trial.suggest_float(self.name, float(self.low), float(self.high), step=self.step, log=self.log)

    def extremes(self) -> list:
        """The values the dimension's bounds can produce: both ends of a range, every choice."""
        return list(self.choices) if self.kind == "categorical" else [self.low, self.high]


def _hidden_key(sizes) -> str:
    return "-".join(str(int(s)) for s in sizes)


def _hidden_from_key(key: str) -> list[int]:
    return [int(s) for s in key.split("-")] if key else []


@dataclass
class SearchSpace:
    """The parsed space: fixed options, searched options (``dims`` by option), and where it came from.

    ``base`` is the resolved configuration every trial starts from (:func:`mlpnumpy.cli.config.resolve`).
    """

    base: dict[str, Any]
    fixed: dict[str, Any] = field(default_factory=dict)
    dims: dict[str, list[Dimension]] = field(default_factory=dict)
    source: str = "default space"
    table: dict[str, Any] = field(default_factory=dict)  # the TOML table as read, for sweep.json

    @property
    def max_epochs(self) -> int:
        d = self.dims.get("epochs")
        return int(d[0].high if d[0].kind != "categorical" else max(d[0].choices)) if d else int(
            self.config({})["epochs"])

    def suggest(self, trial) -> dict[str, Any]:
        """Draw one trial's options from Optuna's ``trial`` (define-by-run: momentum is drawn only
        when the trial's optimizer is SGD). Returns ``{option: value}`` of the searched options."""
        opts: dict[str, Any] = {}
        for key in SEARCHABLE:
            if key not in self.dims:
                continue
            if key == "momentum" and opts.get("optimizer", self.fixed.get("optimizer", self.base["optimizer"])) != "sgd":
                continue
            values = [d.suggest(trial) for d in self.dims[key]]
            opts[key] = _combine(key, values, self.dims[key])
        return opts

    def config(self, opts: dict[str, Any]) -> dict[str, Any]:
        """The full, validated training configuration of a trial with searched options ``opts``."""
        cfg = {k: (list(v) if isinstance(v, list) else v) for k, v in self.base.items()}
        cfg.update(self.fixed)
        cfg.update(opts)
        if "optimizer" in opts and str(opts["optimizer"]).lower() != "sgd":
            cfg["momentum"] = 0.0  # a searched momentum belongs to the SGD trials only
        return _config.validate(cfg)

    def describe(self) -> list[str]:
        lines = []
        for key, dims in self.dims.items():
            parts = []
            for d in dims:
                if d.kind == "categorical":
                    parts.append(f"{d.name} in {list(d.choices)}")
                else:
                    parts.append(f"{d.name} in [{d.low}, {d.high}]{' log' if d.log else ''}")
            lines.append(f"{key}: " + ", ".join(parts))
        return lines


def _combine(key: str, values: list, dims: list[Dimension]) -> Any:
    if key != "hidden":
        return values[0]
    if len(dims) == 1:  # choices of whole lists
        return _hidden_from_key(values[0])
    layers, units = values
    return [int(units)] * int(layers)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _range(where: str, name: str, spec: dict, kind: str) -> Dimension:
    """A range dimension from ``{low, high, log, step}``, with each way it can be wrong named."""
    unknown = sorted(set(spec) - {"low", "high", "log", "step"})
    if unknown:
        raise InvalidArgumentError(f"{where}: {name} has {unknown[0]!r}; a range takes low, high, log, step "
                                   "(or give {choices = [...]})")
    if "low" not in spec or "high" not in spec:
        raise InvalidArgumentError(f"{where}: {name} = {spec!r} needs both low and high")
    low, high, log, step = spec["low"], spec["high"], spec.get("log", False), spec.get("step")
    check = _is_int if kind == "int" else _is_num
    for bound, v in (("low", low), ("high", high)):
        if not check(v) or not math.isfinite(v):
            raise InvalidArgumentError(f"{where}: {name}.{bound} = {v!r} is invalid; expected a finite "
                                       f"{'integer' if kind == 'int' else 'number'}")
    if not isinstance(log, bool):
        raise InvalidArgumentError(f"{where}: {name}.log = {log!r} is invalid; expected true or false")
    if high < low:
        raise InvalidArgumentError(f"{where}: {name} = [{low}, {high}] is an empty range; expected low <= high")
    if log and low <= 0:
        raise InvalidArgumentError(f"{where}: {name} = [{low}, {high}] with log = true includes values <= 0; "
                                   "a log-uniform range needs low > 0 (or set log = false)")
    if step is not None:
        if not check(step) or step <= 0:
            raise InvalidArgumentError(f"{where}: {name}.step = {step!r} is invalid; expected a positive "
                                       f"{'integer' if kind == 'int' else 'number'}")
        if log:
            raise InvalidArgumentError(f"{where}: {name} has both log = true and step; Optuna takes one of them")
    return Dimension(name, kind, low, high, log, step)


def _choices(where: str, name: str, spec: dict, option: str) -> Dimension:
    if set(spec) != {"choices"}:
        extra = sorted(set(spec) - {"choices"})
        raise InvalidArgumentError(f"{where}: {name} mixes choices with {extra[0]!r}; give either "
                                   "{choices = [...]} or a range {low, high}")
    choices = spec["choices"]
    if not isinstance(choices, list) or not choices:
        raise InvalidArgumentError(f"{where}: {name}.choices = {choices!r} is empty; expected a non-empty list")
    if option == "hidden":
        for c in choices:
            if not (isinstance(c, list) and all(_is_int(x) for x in c)):
                raise InvalidArgumentError(f"{where}: hidden choice {c!r} is invalid; expected lists of layer "
                                           "sizes like [256, 128]")
        return Dimension(name, "categorical", choices=tuple(_hidden_key(c) for c in choices))
    for c in choices:
        if not isinstance(c, (bool, int, float, str)):
            raise InvalidArgumentError(f"{where}: {name} choice {c!r} is invalid; expected numbers, strings or "
                                       "booleans")
    if len(set(map(repr, choices))) != len(choices):
        raise InvalidArgumentError(f"{where}: {name}.choices = {choices!r} repeats a value")
    return Dimension(name, "categorical", choices=tuple(choices))


def _dimension(where: str, name: str, spec: dict, option: str) -> Dimension:
    if "choices" in spec:
        return _choices(where, name, spec, option)
    kind = _config.OPTION_TYPES[option].rstrip("?")
    if kind not in ("int", "float"):
        raise InvalidArgumentError(f"{where}: {name} = {spec!r}: a {kind} option takes {{choices = [...]}}, "
                                   "not a range")
    return _range(where, name, spec, kind)


def _hidden_dims(where: str, spec: dict) -> list[Dimension]:
    if "choices" in spec:
        return [_choices(where, "hidden", spec, "hidden")]
    unknown = sorted(set(spec) - {"layers", "units"})
    if unknown or not {"layers", "units"} <= set(spec):
        raise InvalidArgumentError(f"{where}: hidden = {spec!r} is invalid; expected "
                                   "{layers = {low, high}, units = {low, high, log}} or {choices = [[256, 128], ...]}")
    dims = []
    for part in ("layers", "units"):
        value = spec[part]
        sub = value if isinstance(value, dict) else {"choices": [value]}
        d = _dimension(where, f"hidden_{part}", sub, "epochs")  # both parts are positive integers
        if d.kind == "categorical" and not all(_is_int(c) for c in d.choices):
            raise InvalidArgumentError(f"{where}: hidden.{part} = {value!r} is invalid; expected integers")
        lowest = min(d.extremes())
        if lowest < (0 if part == "layers" else 1):
            raise InvalidArgumentError(f"{where}: hidden.{part} = {value!r} includes {lowest}; expected "
                                       f"{'>= 0 layers' if part == 'layers' else 'layer sizes >= 1'}")
        dims.append(d)
    return dims


def parse_space(table: dict[str, Any], base: dict[str, Any], where: str = "space",
                given: dict[str, Any] | None = None) -> SearchSpace:
    """Check a space table against the training options and return a :class:`SearchSpace`.

    Parameters
    ----------
    table : dict
        The TOML table (keys as ``batch-size`` or ``batch_size``; a ``[space]`` table is also read).
    base : dict
        The resolved configuration trials start from.
    where : str
        Named in every error (the file's path).
    given : dict, optional
        Options given explicitly on the command line; searching one of them is an error.

    Raises
    ------
    InvalidArgumentError
        An unknown or unsearchable option, an empty range, a log range that includes 0, a choice or
        bound that ``mlpnumpy train`` would reject.
    """
    if isinstance(table.get("space"), dict):
        table = table["space"]
    space = SearchSpace(base=base, source=where, table=table)
    for raw_key, spec in table.items():
        key = raw_key.replace("-", "_")
        if key not in _config.OPTION_TYPES:
            raise InvalidArgumentError(f"{where}: option {raw_key!r} is not one of: "
                                       f"{', '.join(k.replace('_', '-') for k in SEARCHABLE)}")
        if key not in SEARCHABLE:
            raise InvalidArgumentError(f"{where}: {raw_key!r} cannot be set in a search space; it is the same "
                                       f"for every trial: give it as {_config.flag(key)}")
        if given and key in given:
            raise InvalidArgumentError(f"{where}: {raw_key!r} is in the space and also given as "
                                       f"{_config.flag(key)}; keep one of them")
        if isinstance(spec, dict):
            space.dims[key] = _hidden_dims(where, spec) if key == "hidden" else [_dimension(where, key, spec, key)]
        else:
            if key == "hidden" and _is_int(spec):
                spec = [spec]
            space.fixed[key] = spec
    _check_reachable(space, where)
    return space


def _at(space: SearchSpace, key: str, values: list) -> dict[str, Any]:
    """Options with ``key``'s dimensions at ``values`` (a momentum comes with the SGD it needs)."""
    opts = {key: _combine(key, values, space.dims[key])}
    if key == "momentum":
        opts["optimizer"] = "sgd"
    return opts


def _check_reachable(space: SearchSpace, where: str) -> None:
    """Every fixed value and every bound or choice must make a configuration ``train`` accepts, with
    the other searched options at some of their own bounds or choices (options that constrain each
    other, like ``residual`` and ``hidden``, are checked together)."""
    optimizers = (space.dims["optimizer"][0].choices if "optimizer" in space.dims
                  else [space.fixed.get("optimizer", space.base["optimizer"])])
    if "momentum" in space.dims and "sgd" not in [str(o).lower() for o in optimizers]:
        raise InvalidArgumentError(f"{where}: momentum is searched but no trial uses optimizer 'sgd' "
                                   "(momentum applies to sgd only); add 'sgd' to the optimizer choices")
    first = {}
    for key, dims in space.dims.items():
        if key != "momentum":
            first.update(_at(space, key, [d.extremes()[0] for d in dims]))
    others = [_at(space, key, [v if j == i else dd.extremes()[0] for j, dd in enumerate(dims)])
              for key, dims in space.dims.items() for i, d in enumerate(dims) for v in d.extremes()]
    try:
        space.config(first)
    except InvalidArgumentError as exc:
        if not space.dims:
            raise InvalidArgumentError(f"{where}: {exc}") from None
    for key, dims in space.dims.items():
        for i, d in enumerate(dims):
            for v in d.extremes():
                mine = _at(space, key, [v if j == i else dd.extremes()[0] for j, dd in enumerate(dims)])
                error = None
                for other in [{}, *others]:
                    if any(k in mine for k in other):
                        continue
                    try:
                        space.config({**first, **other, **mine})
                        break
                    except InvalidArgumentError as exc:
                        error = error or exc
                else:
                    raise InvalidArgumentError(f"{where}: {d.name} = {v!r} cannot be trained: {error}") from None


def load_space(path: str | os.PathLike | None, base: dict[str, Any],
               given: dict[str, Any] | None = None) -> SearchSpace:
    """Read and check a space file (``None``: :data:`DEFAULT_SPACE_TOML`)."""
    tomllib = _load_tomllib()
    if path is None:
        return parse_space(tomllib.loads(DEFAULT_SPACE_TOML), base, "default space", given)
    name = os.fspath(path)
    if not os.path.isfile(name):
        raise InvalidArgumentError(f"--space {name!r} is not an existing file; expected a TOML search space")
    try:
        with open(name, "rb") as fh:
            table = tomllib.load(fh)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise FileFormatError(f"{name}: not valid TOML ({exc})") from None
    return parse_space(table, base, name, given)
