"""What a model file or checkpoint claims, checked against what it holds before any of it is trusted.

:mod:`mlpnumpy.io` reads the archive; the functions here decide whether its content makes a model that
predicts finite numbers and a training state that can continue: layer sizes that chain, finite
parameters, hyperparameters the model's dtype can hold, metadata of the right types, optimizer state of
the right optimizer. Each raises :class:`~mlpnumpy.errors.FileFormatError` naming the file, the field
and what would be accepted.
"""
from __future__ import annotations

import math
import unicodedata
from typing import Any

import numpy as np

from ..errors import FileFormatError

__all__ = ["check_layer_chain", "check_loaded_model", "check_metadata", "check_class_names",
           "check_optimizer_state", "check_rng_state", "check_schedule_state", "check_run_config",
           "check_resume_steps", "printable"]


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_real(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


# ------------------------------------------------------------------------------------- the model
def check_layer_chain(config: dict, name: str) -> None:
    """Every layer's input width equals the previous layer's output width, and there is a Dense layer.

    Run on the config alone (already known to be a list of layer dicts with positive sizes), so a
    file whose layers do not line up is refused before any array is read.
    """
    width, where = None, None
    dense = 0
    for i, cfg in enumerate(config["layers"]):
        kind = cfg.get("type")
        if kind == "Dense":
            n_in, n_out = cfg["in_features"], cfg["out_features"]
            if width is not None and n_in != width:
                raise FileFormatError(f"{name}: layer {i} (Dense) takes in_features={n_in} but {where} gives "
                                      f"{width}; the layer sizes do not line up")
            width, where, dense = n_out, f"layer {i} (Dense)", dense + 1
        elif kind in ("BatchNorm1d", "LayerNorm"):
            n = cfg["num_features"]
            if width is not None and n != width:
                raise FileFormatError(f"{name}: layer {i} ({kind}) has num_features={n} but {where} gives "
                                      f"{width}; the layer sizes do not line up")
            width, where = n, f"layer {i} ({kind})"
        elif kind == "Embedding":
            n_in = cfg.get("in_features")
            if i != 0:
                raise FileFormatError(f"{name}: layer {i} (Embedding) is not the first layer; an Embedding reads "
                                      "the model's input columns")
            cols = cfg.get("columns")
            if not isinstance(cols, list) or len(cols) != len(cfg["dims"]) or \
                    not all(isinstance(c, int) and 0 <= c < n_in for c in cols) or len(set(cols)) != len(cols):
                raise FileFormatError(f"{name}: layer 0 (Embedding) columns={cols!r} are not distinct columns of "
                                      f"its {n_in} inputs, one per table")
            width, where = n_in - len(cols) + sum(cfg["dims"]), "layer 0 (Embedding)"
        elif kind == "Residual":
            sub = {"layers": cfg["layers"]}
            try:
                check_layer_chain(sub, name)
            except FileFormatError as exc:
                if "no Dense layer" not in str(exc):
                    raise
            dims = [c for c in _dense_configs(cfg["layers"])]
            if dims and (dims[0]["in_features"] != dims[-1]["out_features"]
                         or (width is not None and dims[0]["in_features"] != width)):
                raise FileFormatError(f"{name}: layer {i} (Residual) maps width {dims[0]['in_features']} to "
                                      f"{dims[-1]['out_features']} after {where} gives {width}; x + f(x) needs "
                                      "one width")
            dense += len(dims)
    if not dense:
        raise FileFormatError(f"{name}: the model has no Dense layer; a model file holds at least one "
                              "Dense layer (without one its outputs would be its inputs)")


def _dense_configs(layers: list) -> list[dict]:
    """The Dense configs of a layer list in order, those inside Residual blocks included."""
    out = []
    for c in layers:
        if c.get("type") == "Dense":
            out.append(c)
        elif c.get("type") == "Residual":
            out += _dense_configs(c["layers"])
    return out


def _numbers(d: Any, path: str):
    """``(path, value)`` of every real number in a nested config."""
    if isinstance(d, dict):
        for k, v in d.items():
            yield from _numbers(v, f"{path}.{k}")
    elif isinstance(d, (list, tuple)):
        for k, v in enumerate(d):
            yield from _numbers(v, f"{path}[{k}]")
    elif _is_real(d):
        yield path, d


def _check_hyperparameters(model, name: str) -> None:
    """Every numeric hyperparameter (activation, batch norm, dropout, loss) is finite in the model's
    dtype: ELU's ``alpha=1e308`` is a valid float64 but infinity in float32, and NaN predictions."""
    finfo = np.finfo(model.dtype)
    configs = [(f"layer {i}", layer.get_config()) for i, layer in enumerate(model.layers)]
    configs.append(("loss", model.loss.get_config()))
    for where, cfg in configs:
        for path, v in _numbers(cfg, where):
            if not math.isfinite(v) or abs(v) > float(finfo.max) or (v != 0 and abs(v) < float(finfo.tiny)):
                raise FileFormatError(
                    f"{name}: {path}={v!r} is out of range for a {model.dtype} model; expected a finite "
                    f"value of magnitude between {finfo.tiny:.3g} and {finfo.max:.3g} (or 0)")


def _check_arrays(model, name: str) -> None:
    """Parameters and buffers finite; batch-norm running variances >= 0."""
    for i, layer in enumerate(model.layers):
        arrays = layer.named_arrays()
        for key, a in arrays.items():
            if not np.isfinite(a).all():
                bad = int(np.flatnonzero(~np.isfinite(a))[0])
                raise FileFormatError(f"{name}: array 'layer{i}.{key}' holds {a.reshape(-1)[bad]} (flat index "
                                      f"{bad}); a model file holds finite numbers only")
        for key, var in layer.buffers().items():
            if key.split(".")[-1] == "running_var" and (var < 0).any():
                bad = int(np.flatnonzero(var < 0)[0])
                raise FileFormatError(f"{name}: array 'layer{i}.{key}' holds the negative variance "
                                      f"{var[bad]} (index {bad}); expected values >= 0")
    pre = getattr(model, "preprocessor", None)
    if pre is not None:
        for key in ("mean_", "scale_"):
            a = getattr(pre, key, None)
            if a is not None and not np.isfinite(np.asarray(a)).all():
                raise FileFormatError(f"{name}: array 'preprocessor.{key.rstrip('_')}' holds NaN or infinity; "
                                      "expected finite numbers")


def probe_inputs(model) -> np.ndarray:
    """Inputs a loaded model must map to finite outputs: 0 and +-1 in the model's own input space
    (after preprocessing), and the two ends of the training data's range when the file records it;
    an Embedding's columns get valid codes (0, and the largest in the second row)."""
    n = model.n_features_in
    x = np.zeros((3, n), dtype=model.dtype)
    x[1], x[2] = 1, -1
    rng = (getattr(model, "metadata", None) or {}).get("input_range")
    if rng is not None:
        ends = np.array([[rng[0]] * n, [rng[1]] * n], dtype=np.float64)
        pre = getattr(model, "preprocessor", None)
        with np.errstate(all="ignore"):
            if pre is not None:
                ends = (ends - pre.mean_) / pre.scale_
            x = np.concatenate([x, ends.astype(model.dtype)])
    first = model.layers[0]
    if type(first).__name__ == "Embedding":  # codes: 0 and the largest one
        x[:, first.columns] = 0
        x[1, first.columns] = np.asarray(first.cardinalities) - 1
    return x


def _probe(model, name: str) -> None:
    """The model's outputs for :func:`probe_inputs` are finite.

    A last net under the checks above: a file whose every number is in range can still make a model
    that overflows (weights of 1e38 in float32); such a model is refused rather than predicting NaN.
    """
    x = probe_inputs(model)
    with np.errstate(all="ignore"):
        try:
            out = model.forward(x, training=False) if np.isfinite(x).all() else x
        finally:
            for layer in model.layers:
                layer.clear_cache()
    if not np.isfinite(out).all():
        raise FileFormatError(f"{name}: the model's outputs for inputs of 0 and +-1 (and at the ends of its "
                              "recorded input_range) are not finite: its weights or preprocessing overflow the "
                              f"model's {model.dtype}; the file is corrupt or hostile")


def check_loaded_model(model, name: str) -> None:
    """All the checks a model read from a file must pass before it is handed out."""
    _check_hyperparameters(model, name)
    _check_arrays(model, name)
    _probe(model, name)


def check_class_names(names: Any, model, name: str) -> list[str] | None:
    """``class_names``: null, or one distinct string per output (two for a single-output binary model)."""
    if names is None:
        return None
    if not isinstance(names, list) or not all(isinstance(c, str) for c in names):
        raise FileFormatError(f"{name}: class_names is not a list of strings")
    k = model.n_outputs
    ok = {k} | ({2} if k == 1 else set())
    if len(names) not in ok:
        raise FileFormatError(f"{name}: class_names has {len(names)} names but the model has {k} outputs; "
                              f"expected {' or '.join(str(v) for v in sorted(ok))} names")
    if len(set(names)) != len(names):
        dup = next(c for c in names if names.count(c) > 1)
        raise FileFormatError(f"{name}: class_names holds {printable(dup)!r} twice; expected distinct names")
    return list(names)


# Metadata keys the library itself writes and reads back (the rest of model.metadata is the user's).
def _null_or(kind, ok):
    return lambda v: v is None or (kind(v) and ok(v))


_METADATA_FIELDS: dict[str, tuple[Any, str]] = {
    "pixel_max": (_null_or(_is_real, math.isfinite), "null or a finite number"),  # the training data's max
    "invert": (lambda v: v is None or isinstance(v, bool), "true, false or null"),
    "input_range": (lambda v: v is None or (isinstance(v, list) and len(v) == 2 and all(_is_real(x) and
                                            math.isfinite(x) for x in v) and v[0] <= v[1]),
                    "null or [low, high], two finite numbers with low <= high"),
    "label_column": (lambda v: v is None or _is_int(v) or isinstance(v, str), "null, an integer or a name"),
    "x_key": (lambda v: v is None or isinstance(v, str), "null or a string"),
    "y_key": (lambda v: v is None or isinstance(v, str), "null or a string"),
    "data": (lambda v: v is None or isinstance(v, str), "null or a string"),
    "data_kind": (lambda v: v in (None, "dataset", "file"), "null, 'dataset' or 'file'"),
    "data_file": (lambda v: v is None or isinstance(v, str), "null or a string"),
}


def check_metadata(meta: Any, model, name: str) -> dict | None:
    """``model.metadata``: null or an object; the fields mlpnumpy reads back have their types and ranges.

    ``image_shape`` must multiply to the model's input width: a 40000x40000 shape on an 8x8 model
    would make ``predict`` resize an image to 1.6 G pixels.
    """
    if meta is None:
        return None
    if not isinstance(meta, dict):
        raise FileFormatError(f"{name}: metadata is a JSON {type(meta).__name__}; expected an object or null")
    for key, (ok, expected) in _METADATA_FIELDS.items():
        if key in meta and not ok(meta[key]):
            raise FileFormatError(f"{name}: metadata {key}={meta[key]!r} is invalid; expected {expected}")
    shape = meta.get("image_shape")
    if shape is not None:
        n = model.n_features_in
        if not isinstance(shape, list) or not 1 <= len(shape) <= 3 or not all(_is_int(d) and d > 0 for d in shape) \
                or math.prod(shape) != n:
            raise FileFormatError(f"{name}: metadata image_shape={shape!r} is invalid; expected null or a list "
                                  f"of 1 to 3 positive integers whose product is the model's {n} input features")
    return meta


_CONTROL = {c: f"\\x{c:02x}" for c in range(32)} | {0x7F: "\\x7f"}


def printable(text: str) -> str:
    """``text`` with control and format characters (terminal escape codes, bidi overrides) shown as
    escapes, so a string read from a file cannot clear, move or fake what a terminal shows."""
    out = []
    for ch in str(text):
        cat = unicodedata.category(ch)
        if cat in ("Cc", "Cf", "Zl", "Zp") or (cat == "Cs"):
            out.append(_CONTROL.get(ord(ch)) or f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out)


# --------------------------------------------------------------------------------- training state
# Non-negative optimizer buffers: a negative one would make a square root NaN.
_NON_NEGATIVE = {"exp_avg_sq", "max_exp_avg_sq", "square_avg", "sum"}


def check_optimizer_state(opt, params, name: str, iterations: Any = None) -> None:
    """A loaded optimizer's counters and state agree with its class, its settings and the parameters.

    Each parameter's state must hold exactly the buffers this optimizer keeps (a truncated file, or
    an SGD label over Adam's buffers, is refused); buffers are finite, squared averages >= 0.
    """
    cls = type(opt).__name__
    it = opt.iterations if iterations is None else iterations  # as stored, before int() rounded it
    if not _is_int(it) or it < 0:
        raise FileFormatError(f"{name}: optimizer iterations={it!r} is invalid; expected an integer >= 0")
    if opt.state is None:
        return
    for i, (p, st) in enumerate(zip(params, opt.state)):
        required = set(opt.init_state(p))
        allowed = set(required)
        if cls == "SGD" and opt.momentum:
            allowed.add("momentum_buffer")  # made by a parameter's first update (never, for a frozen one)
        have = set(st)
        missing, extra = sorted(required - have), sorted(have - allowed)
        if missing or extra:
            what = (f"lacks {', '.join(map(repr, missing))}" if missing else
                    f"holds {', '.join(map(repr, extra))}, which {cls} does not keep")
            raise FileFormatError(f"{name}: the {cls} state of parameter {i} {what}; expected exactly: "
                                  f"{', '.join(sorted(allowed)) or '(nothing)'}; the checkpoint is truncated or "
                                  "its optimizer does not match its state")
        for key, v in st.items():
            if not np.isfinite(v).all():
                raise FileFormatError(f"{name}: optimizer array 'optimizer.state.{i}.{key}' holds NaN or "
                                      "infinity; expected finite numbers")
            if key in _NON_NEGATIVE and (v < 0).any():
                raise FileFormatError(f"{name}: optimizer array 'optimizer.state.{i}.{key}' holds negative "
                                      "values; it is an average of squares, expected >= 0")


def check_rng_state(rng_state: Any, rng: np.random.Generator, name: str) -> None:
    """A saved ``bit_generator.state``: the model's generator type, integer fields in their ranges."""
    kind = type(rng.bit_generator).__name__
    if not isinstance(rng_state, dict) or rng_state.get("bit_generator") != kind:
        got = rng_state.get("bit_generator") if isinstance(rng_state, dict) else rng_state
        raise FileFormatError(f"{name}: rng_state is for {got!r}; expected the state of a {kind} generator")
    if kind == "PCG64":
        inner = rng_state.get("state")
        fields = {"state.state": inner.get("state") if isinstance(inner, dict) else None,
                  "state.inc": inner.get("inc") if isinstance(inner, dict) else None,
                  "uinteger": rng_state.get("uinteger")}
        for key, v in fields.items():
            if not _is_int(v) or not 0 <= v < 2 ** (128 if key.startswith("state.") else 32):
                raise FileFormatError(f"{name}: rng_state {key}={v!r} is invalid; expected an integer in "
                                      f"[0, 2**{128 if key.startswith('state.') else 32})")
        if rng_state.get("has_uint32") not in (0, 1) or isinstance(rng_state.get("has_uint32"), bool):
            raise FileFormatError(f"{name}: rng_state has_uint32={rng_state.get('has_uint32')!r} is invalid; "
                                  "expected 0 or 1")


def check_schedule_state(sched, name: str) -> None:
    """A loaded schedule's progress: learning rates finite and >= 0 (a cosine schedule ends at 0), or
    null before the first epoch; ``last_epoch`` an integer >= 0."""
    for key in ("base_lr", "last_lr"):
        v = getattr(sched, key, None)
        if v is not None and not (math.isfinite(v) and v >= 0):
            raise FileFormatError(f"{name}: lr schedule {key}={v!r} is invalid; expected a finite number >= 0 "
                                  "(or null before the first epoch)")
    last = getattr(sched, "last_epoch", 0)
    if not _is_int(last) or not 0 <= last <= 2 ** 53:
        raise FileFormatError(f"{name}: lr schedule last_epoch={last!r} is invalid; expected an integer in "
                              "[0, 2**53]")
    if sched.base_lr is not None and hasattr(sched, "lr_at") and getattr(sched, "after", None) is None:
        try:  # the rate at its stored progress must be one it can compute, and a rate
            now = float(sched.lr_at(last))
        except NotImplementedError:  # no closed form (ReduceLROnPlateau follows its metric)
            now = sched.last_lr
        except (ArithmeticError, ValueError, TypeError, AttributeError) as exc:
            raise FileFormatError(f"{name}: lr schedule cannot go on from last_epoch={last} ({exc})") from None
        if not (math.isfinite(now) and now >= 0):
            raise FileFormatError(f"{name}: lr schedule gives lr={now!r} at last_epoch={last}; expected a finite "
                                  "rate >= 0")
    if (sched.base_lr is None) != (sched.last_lr is None):
        raise FileFormatError(f"{name}: lr schedule base_lr={sched.base_lr!r} and last_lr={sched.last_lr!r} "
                              "disagree; expected both set (after the first epoch) or both null")
    inner = getattr(sched, "after", None)
    if inner is not None and hasattr(inner, "state_dict"):
        check_schedule_state(inner, name)


# ------------------------------------------------------------------------------ a run's configuration
def _hidden_of(model) -> list[int]:
    from ..nn.model import dense_layers_in
    dims = [l.out_features for l in dense_layers_in(model.layers)]  # Residual blocks' too
    return dims[:-1]


def _all_layers(layers):
    """Every layer in order, those inside blocks (Residual) included."""
    for layer in layers:
        inner = getattr(layer, "layers", None)
        if isinstance(inner, list):
            yield from _all_layers(inner)
        else:
            yield layer


def _hidden_activation(model) -> str:
    """The hidden layers' activation as ``train --activation`` names it: the first one that is not
    the identity, on a Dense layer or an activation layer of its own (after batch norm)."""
    names = [l.activation.name for l in _all_layers(model.layers) if getattr(l, "activation", None) is not None]
    return next((n for n in names[:-1] if n != "identity"), "identity")  # the last is the output layer's


def check_run_config(cfg: Any, model, name: str) -> dict:
    """The run configuration a checkpoint carries (``extra["config"]``) agrees with its model and
    optimizer; a hand-edited one (other hidden sizes, learning rate, optimizer) is refused.

    Returns the configuration, an object with at least ``epochs`` (an integer >= 1).
    """
    from ..nn.layers import BatchNorm1d, Dropout
    if not isinstance(cfg, dict):
        raise FileFormatError(f"{name}: the stored run configuration is a JSON {type(cfg).__name__}; expected "
                              "an object (the file was not written by mlpnumpy train, or was edited)")
    epochs = cfg.get("epochs")
    if not _is_int(epochs) or epochs < 1:
        raise FileFormatError(f"{name}: the stored run configuration has epochs={epochs!r}; expected an "
                              "integer >= 1")

    def differ(key, stored, actual):
        raise FileFormatError(f"{name}: the stored run configuration says {key}={stored!r} but the checkpoint's "
                              f"{'optimizer' if key in ('optimizer', 'lr', 'momentum') else 'model'} has "
                              f"{actual!r}; the configuration was edited or belongs to another run, refusing to "
                              "resume from it")

    layers = list(_all_layers(model.layers))
    checks = {"hidden": _hidden_of(model), "dtype": str(model.dtype)}
    if checks["hidden"]:  # without hidden layers, batch norm, dropout and activation are unused settings
        from ..nn.layers import AlphaDropout
        drops = [l.p for l in layers if isinstance(l, (Dropout, AlphaDropout))]
        checks.update(batch_norm=any(isinstance(l, BatchNorm1d) for l in layers),
                      dropout=drops[0] if drops else 0.0, activation=_hidden_activation(model))
    for key, actual in checks.items():
        if key in cfg:
            stored = cfg[key]
            same = (list(stored) == actual if isinstance(stored, (list, tuple)) else False) if key == "hidden" \
                else (float(stored) == float(actual) if key == "dropout" and _is_real(stored)
                      else stored == actual)
            if not same:
                differ(key, stored, actual)
    opt = getattr(model, "optimizer", None)
    if opt is not None:
        if "optimizer" in cfg and str(cfg["optimizer"]).lower() != type(opt).__name__.lower():
            differ("optimizer", cfg["optimizer"], type(opt).__name__.lower())
        sched = getattr(model, "lr_schedule", None)
        base = getattr(sched, "base_lr", None) if sched is not None else opt.lr
        if "lr" in cfg and base is not None and not (_is_real(cfg["lr"]) and math.isclose(cfg["lr"], base,
                                                                                           rel_tol=1e-9)):
            differ("lr", cfg["lr"], base)
        if "momentum" in cfg and hasattr(opt, "momentum") and not (
                _is_real(cfg["momentum"]) and math.isclose(cfg["momentum"], opt.momentum, rel_tol=1e-9)):
            differ("momentum", cfg["momentum"], opt.momentum)
    return cfg


def check_resume_steps(model, n_train: int, batch_size: int, name: str) -> None:
    """A resumed run's optimizer has taken ``epochs_trained * ceil(n_train / batch_size)`` steps.

    The stored batch size and validation split decide that count: an edited one no longer matches
    the optimizer's own step counter, and is refused.
    """
    opt = getattr(model, "optimizer", None)
    if opt is None or not model.epochs_trained:
        return
    steps = -(-n_train // batch_size)
    expected = model.epochs_trained * steps
    if opt.iterations != expected:
        raise FileFormatError(
            f"{name}: the optimizer took {opt.iterations} steps in {model.epochs_trained} epochs, but the stored "
            f"batch_size={batch_size} on {n_train} training rows makes {steps} steps per epoch "
            f"({expected} in all); the stored configuration (batch_size, validation_split) was edited or "
            "belongs to another run, refusing to resume from it")
