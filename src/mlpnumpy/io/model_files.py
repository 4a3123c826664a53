"""Model files and training checkpoints: one ``.npz`` archive each, written atomically (by
:mod:`.writer`), read without pickle and validated before anything is allocated.

An archive holds ``__mlpnumpy__`` (JSON metadata as a uint8 array: format, version, the model's
config, class names, preprocessing, ...) and every array on its own: ``layer3.W``,
``layer4.running_mean``, ``preprocessor.mean``, and in checkpoints ``optimizer.state.7.exp_avg``.
"""
from __future__ import annotations

import json
import os
import struct
import zipfile
from typing import Any

import numpy as np

from . import _filechecks
from ._npyio import read_npy_header
from ..errors import FileFormatError, InvalidArgumentError, InvalidDataError, MLPNumpyError
from .writer import (CHECKPOINT_FORMAT, FORMAT_VERSION, META_KEY, MAX_METADATA_BYTES, MODEL_FORMAT,
                     save_checkpoint, save_model)

#: Slack for zip and .npy headers when comparing declared sizes with the file's size.
_HEADER_SLACK = 4096

__all__ = ["save_model", "load_model", "save_checkpoint", "load_checkpoint", "restore_training_state",
           "read_metadata", "FORMAT_VERSION", "MAX_METADATA_BYTES"]


# ---------------------------------------------------------------------------------------- reading
# What zipfile and the .npy header parser raise on malformed input (NotImplementedError: an unknown
# zip version or compression method; RuntimeError: encryption).
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, NotImplementedError,
               RuntimeError, struct.error, KeyError, IndexError, OverflowError, TypeError, SyntaxError)


class _Archive:
    """The validated directory of an archive: every entry's name, dtype and shape, read from headers
    only; :meth:`array` then reads one entry's data."""

    def __init__(self, path):
        self.name = os.fspath(path)
        try:
            size = os.path.getsize(self.name)
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise FileFormatError(f"{self.name}: cannot be read ({exc})") from None
        try:
            self._zf = zipfile.ZipFile(self.name, "r")
        except FileNotFoundError:
            raise
        except _ZIP_ERRORS as exc:
            raise FileFormatError(f"{self.name}: not a mlpnumpy model file (not a valid .npz/zip "
                                  f"archive, or truncated: {exc})") from None
        try:
            self._index(size)
        except BaseException:
            self._zf.close()
            raise

    def _index(self, size: int) -> None:
        infos = self._zf.infolist()
        declared = sum(i.file_size for i in infos)
        # A header can promise any size; refuse before reading what the file cannot hold.
        if declared > size + _HEADER_SLACK or any(i.compress_size > size for i in infos):
            raise FileFormatError(f"{self.name}: its zip entries declare {declared:,} bytes but the file "
                                  f"has {size:,}; refusing a corrupt or hostile archive")
        self.entries: dict[str, tuple[zipfile.ZipInfo, np.dtype, tuple, bool, int]] = {}
        for info in infos:
            if not info.filename.endswith(".npy") or info.is_dir():
                raise FileFormatError(f"{self.name}: unexpected entry {info.filename!r}; a model file "
                                      "holds only .npy arrays")
            key = info.filename[:-4]
            if key in self.entries:
                raise FileFormatError(f"{self.name}: entry {info.filename!r} appears twice")
            self.entries[key] = self._header(info)

    def _header(self, info: zipfile.ZipInfo):
        where = f"{self.name}: entry {info.filename!r}"
        try:
            with self._zf.open(info) as f:
                shape, fortran, dtype, nbytes = read_npy_header(f, where, kinds="biuf")
                offset = f.tell()
        except _ZIP_ERRORS as exc:
            raise FileFormatError(f"{where} is not a valid .npy array ({exc})") from None
        if offset + nbytes != info.file_size:
            raise FileFormatError(f"{where} declares shape {shape} ({nbytes:,} bytes of {dtype}) but holds "
                                  f"{info.file_size - offset:,} bytes of data; the file is truncated or corrupt")
        return info, dtype, shape, fortran, offset

    def shape(self, key: str) -> tuple | None:
        entry = self.entries.get(key)
        return None if entry is None else entry[2]

    def dtype(self, key: str) -> np.dtype | None:
        entry = self.entries.get(key)
        return None if entry is None else entry[1]

    def array(self, key: str) -> np.ndarray:
        info, dtype, shape, fortran, offset = self.entries[key]
        nbytes = info.file_size - offset
        try:
            with self._zf.open(info) as f:
                f.read(offset)
                buf = f.read(nbytes)
        except _ZIP_ERRORS as exc:
            raise FileFormatError(f"{self.name}: entry {info.filename!r} cannot be read ({exc}); the file "
                                  "is truncated or corrupt") from None
        if len(buf) != nbytes:
            raise FileFormatError(f"{self.name}: entry {info.filename!r} is truncated")
        arr = np.frombuffer(buf, dtype=dtype)
        arr = arr.reshape(shape[::-1]).T if fortran else arr.reshape(shape)
        return np.array(arr, order="C")  # writable, native layout

    def close(self) -> None:
        self._zf.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _read_meta(ar: _Archive, formats: tuple[str, ...]) -> dict:
    if META_KEY not in ar.entries:
        raise FileFormatError(f"{ar.name}: no {META_KEY!r} entry; not a mlpnumpy model file")
    dtype, shape = ar.dtype(META_KEY), ar.shape(META_KEY)
    if dtype != np.uint8 or len(shape) != 1 or shape[0] > MAX_METADATA_BYTES:
        raise FileFormatError(f"{ar.name}: the {META_KEY!r} entry is not JSON bytes (dtype {dtype}, "
                              f"shape {shape})")
    try:
        meta = json.loads(ar.array(META_KEY).tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise FileFormatError(f"{ar.name}: the metadata is not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise FileFormatError(f"{ar.name}: the metadata is a JSON {type(meta).__name__}; expected an object")
    fmt, version = meta.get("format"), meta.get("version")
    if fmt not in formats:
        raise FileFormatError(f"{ar.name}: format {fmt!r} is not one of: {', '.join(formats)}")
    if version != FORMAT_VERSION:
        raise FileFormatError(f"{ar.name}: format version {version!r} is not supported; this mlpnumpy "
                              f"reads version {FORMAT_VERSION} (upgrade mlpnumpy to read newer files)")
    return meta


def read_metadata(path) -> dict:
    """The JSON metadata of a model or checkpoint file (format, config, class names, ...), validated
    but without loading any weights."""
    with _Archive(path) as ar:
        return _read_meta(ar, (MODEL_FORMAT, CHECKPOINT_FORMAT))


def _int(v: Any, what: str, name: str) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
        raise FileFormatError(f"{name}: {what}={v!r} is not a positive integer")
    return v


def _expected_shapes(config: Any, name: str) -> tuple[str, dict[str, tuple]]:
    """The dtype and the name -> shape of every array a model config implies, computed from the
    config alone so that sizes can be checked against the file before any layer is built."""
    if not isinstance(config, dict) or not isinstance(config.get("layers"), list) or not config["layers"]:
        raise FileFormatError(f"{name}: the model config has no list of layers")
    dtype = config.get("dtype", "float32")
    if dtype not in ("float32", "float64"):
        raise FileFormatError(f"{name}: dtype={dtype!r} is not one of: float32, float64")
    shapes: dict[str, tuple] = {}
    for i, cfg in enumerate(config["layers"]):
        _layer_shapes(cfg, f"layer{i}", f"layer {i}", name, shapes)
    return dtype, shapes


def _layer_shapes(cfg: Any, key: str, where: str, name: str, shapes: dict[str, tuple], depth: int = 0) -> None:
    """Add the arrays one layer config implies to ``shapes`` (keys ``{key}.W``, ...), as the layer's
    class declares them (:meth:`~mlpnumpy.nn.layers.Layer.config_shapes`); a Residual block's layers
    are ``{key}.{j}``."""
    from ..nn.layers import layer_types
    if not isinstance(cfg, dict):
        raise FileFormatError(f"{name}: {where} config is a {type(cfg).__name__}; expected an object")
    kind, types = cfg.get("type"), layer_types()
    if not isinstance(kind, str) or kind not in types:
        raise FileFormatError(f"{name}: {where} has type {kind!r}; expected one of: {', '.join(types)}")

    def inner(j: int, sub: Any) -> dict[str, tuple]:
        if depth > 8:
            raise FileFormatError(f"{name}: {where} ({kind}) has no list of layers (or nests too deep)")
        found: dict[str, tuple] = {}
        _layer_shapes(sub, f"{key}.{j}", f"{where}.{j}", name, found, depth + 1)
        return {k[len(f'{key}.{j}.'):]: v for k, v in found.items()}  # the block names them by j

    try:
        own = types[kind].config_shapes(cfg, lambda v, what: _int(v, f"{where} {what}", name), inner)
    except InvalidDataError as exc:
        raise FileFormatError(f"{name}: {where} {exc}") from None
    shapes.update({f"{key}.{k}": v for k, v in own.items()})


def _check_arrays(ar: _Archive, dtype: str, expected: dict[str, tuple], allowed_extra) -> None:
    for key, shape in expected.items():
        got = ar.shape(key)
        if got is None:
            raise FileFormatError(f"{ar.name}: array {key!r} is missing")
        if got != shape:
            raise FileFormatError(f"{ar.name}: array {key!r} has shape {got}; the config says {shape}")
        if ar.dtype(key) != np.dtype(dtype):
            raise FileFormatError(f"{ar.name}: array {key!r} has dtype {ar.dtype(key)}; the model is {dtype}")
    extra = [k for k in ar.entries if k not in expected and k != META_KEY and not allowed_extra(k)]
    if extra:
        raise FileFormatError(f"{ar.name}: unexpected arrays {', '.join(sorted(extra)[:5])}; the file does "
                              "not match its config")


def _build_model(ar: _Archive, meta: dict, allowed_extra=lambda k: False):
    from ..nn.model import Sequential
    from ..datasets.preprocessing import Standardizer
    config = meta.get("config")
    dtype, expected = _expected_shapes(config, ar.name)
    _filechecks.check_layer_chain(config, ar.name)
    pre_meta = meta.get("preprocessor")
    if pre_meta is not None:
        if not isinstance(pre_meta, dict) or pre_meta.get("type") != "Standardizer":
            raise FileFormatError(f"{ar.name}: preprocessor {pre_meta!r} is not supported; expected a "
                                  "Standardizer or null")
        n = ar.shape("preprocessor.mean")
        if n is None or len(n) != 1:
            raise FileFormatError(f"{ar.name}: array 'preprocessor.mean' is missing or not 1-D")
        expected["preprocessor.mean"] = expected["preprocessor.scale"] = n
    _check_arrays(ar, dtype, {k: v for k, v in expected.items() if not k.startswith("preprocessor.")},
                  lambda k: (pre_meta is not None and k in ("preprocessor.mean", "preprocessor.scale"))
                  or allowed_extra(k))
    try:
        model = Sequential.from_config(config)
    except (MLPNumpyError, KeyError, TypeError, ValueError, OverflowError) as exc:
        raise FileFormatError(f"{ar.name}: the model config cannot be rebuilt ({exc})") from None
    # The config was checked against the file; the model built from it must hold the same arrays.
    want = {k: a.shape for k, a in model.named_arrays("layer").items()}
    if want != {k: v for k, v in expected.items() if not k.startswith("preprocessor.")}:
        raise FileFormatError(f"{ar.name}: the arrays in the file do not match the rebuilt model")
    for key, target in model.named_arrays("layer").items():
        np.copyto(target, ar.array(key))
    if pre_meta is not None:
        if ar.dtype("preprocessor.mean") != np.float64 or ar.dtype("preprocessor.scale") != np.float64 \
                or ar.shape("preprocessor.scale") != ar.shape("preprocessor.mean"):
            raise FileFormatError(f"{ar.name}: the preprocessor arrays must be float64 of equal shape")
        if ar.shape("preprocessor.mean") != (model.n_features_in,):
            raise FileFormatError(f"{ar.name}: the preprocessor has {ar.shape('preprocessor.mean')[0]} "
                                  f"features; the model takes {model.n_features_in}")
        try:
            model.preprocessor = Standardizer.from_dict({"type": "Standardizer",
                                                         "mean": ar.array("preprocessor.mean"),
                                                         "scale": ar.array("preprocessor.scale")})
        except MLPNumpyError as exc:
            raise FileFormatError(f"{ar.name}: invalid preprocessor ({exc})") from None
    model.class_names = _filechecks.check_class_names(meta.get("class_names"), model, ar.name)
    model.metadata = _filechecks.check_metadata(meta.get("metadata"), model, ar.name)
    _filechecks.check_loaded_model(model, ar.name)
    return model


def load_model(path):
    """Read a model written by :func:`save_model` (or the model inside a checkpoint).

    Nothing is unpickled or executed. Sizes declared by the archive, the ``.npy`` headers and the
    config are checked against each other and against the file's size before anything is built.

    Raises
    ------
    FileFormatError
        Not a model file, truncated, of another version, or inconsistent in any way.
    FileNotFoundError
        ``path`` does not exist.
    """
    with _Archive(path) as ar:
        meta = _read_meta(ar, (MODEL_FORMAT, CHECKPOINT_FORMAT))
        return _build_model(ar, meta, allowed_extra=lambda k: meta["format"] == CHECKPOINT_FORMAT
                            and k.startswith("optimizer."))


# ------------------------------------------------------------------------------------- checkpoints
def _schedule_from_json(d: Any, name: str):
    from ..optim.schedules import SCHEDULES
    classes = {c.__name__: c for c in SCHEDULES.values() if c.__name__ != "LambdaLR"}
    if not isinstance(d, dict) or not isinstance(d.get("class"), str) or d["class"] not in classes \
            or not isinstance(d.get("args"), dict):
        raise FileFormatError(f"{name}: the saved lr schedule is not one of: {', '.join(classes)}")
    args = {k: _schedule_from_json(v["__schedule__"], name) if isinstance(v, dict) and "__schedule__" in v
            else v for k, v in d["args"].items()}
    try:
        s = classes[d["class"]](**args)
        s.load_state_dict(d["state"])
    except (MLPNumpyError, KeyError, TypeError, ValueError, OverflowError) as exc:
        raise FileFormatError(f"{name}: the saved lr schedule cannot be rebuilt ({exc})") from None
    return s


def _param_groups_from_json(ar: _Archive, opt, groups: Any, params) -> None:
    """Add the saved parameter groups (parameters by index) to ``opt``, every entry checked."""
    params = list(params)
    if not isinstance(groups, list):
        raise FileFormatError(f"{ar.name}: the optimizer's param_groups is not a list")
    for g in groups:
        idx = g.get("params") if isinstance(g, dict) else None
        if not isinstance(idx, list) or set(g) - {"params", "lr_mult", "weight_decay"} or not all(
                isinstance(i, int) and not isinstance(i, bool) and 0 <= i < len(params) for i in idx):
            raise FileFormatError(f"{ar.name}: invalid parameter group {str(g)[:80]}; expected parameter "
                                  f"indices below {len(params)} and lr_mult/weight_decay")
        try:
            opt.add_param_group({"params": [params[i] for i in idx],
                                 **{k: g[k] for k in ("lr_mult", "weight_decay") if k in g}})
        except (MLPNumpyError, TypeError, ValueError) as exc:
            raise FileFormatError(f"{ar.name}: invalid parameter group ({exc})") from None


def _optimizer_from_json(ar: _Archive, d: Any, n_params: int, params):
    from ..optim.optimizers import OPTIMIZERS
    classes = {c.__name__: c for c in OPTIMIZERS.values()}
    if not isinstance(d, dict) or not isinstance(d.get("class"), str) or d["class"] not in classes \
            or not isinstance(d.get("args"), dict):
        raise FileFormatError(f"{ar.name}: the saved optimizer is not one of: {', '.join(classes)}")
    args = {k: tuple(v) if isinstance(v, list) else v for k, v in d["args"].items()}
    try:
        opt = classes[d["class"]](**args)
    except (MLPNumpyError, TypeError, ValueError, OverflowError) as exc:
        raise FileFormatError(f"{ar.name}: the saved optimizer cannot be rebuilt ({exc})") from None
    keys = d.get("state_keys")
    state = None
    if keys is not None:
        if not isinstance(keys, list) or len(keys) != n_params or \
                not all(isinstance(k, list) and all(isinstance(x, str) for x in k) for k in keys):
            raise FileFormatError(f"{ar.name}: the optimizer state does not match the model's "
                                  f"{n_params} parameters")
        state = []
        for i, (ks, p) in enumerate(zip(keys, params)):
            entry = {}
            for k in ks:
                key = f"optimizer.state.{i}.{k}"
                if ar.shape(key) != p.data.shape or ar.dtype(key) != p.data.dtype:
                    raise FileFormatError(f"{ar.name}: optimizer array {key!r} is missing or does not "
                                          f"match parameter {i} ({p.data.shape}, {p.data.dtype})")
                entry[k] = ar.array(key)
            state.append(entry)
    _param_groups_from_json(ar, opt, d.get("param_groups", []), params)
    expected = {f"optimizer.state.{i}.{k}" for i, ks in enumerate(keys or []) for k in ks}
    stray = [k for k in ar.entries if k.startswith("optimizer.") and k not in expected]
    if stray:
        raise FileFormatError(f"{ar.name}: unexpected arrays {', '.join(sorted(stray)[:5])}")
    try:
        opt.load_state_dict({"lr": d.get("lr"), "iterations": d.get("iterations"), "state": state})
    except (MLPNumpyError, OverflowError) as exc:
        raise FileFormatError(f"{ar.name}: invalid optimizer state ({exc})") from None
    return opt


def load_checkpoint(path):
    """Read a checkpoint written by :func:`save_checkpoint`.

    Returns
    -------
    model : Sequential
        With its weights, preprocessing, optimizer, schedule, generator state and
        ``epochs_trained`` restored: ``model.fit(X, y, optimizer=None,
        lr_schedule=model.lr_schedule, ...)`` continues as if training had never stopped.
    state : dict
        ``{"optimizer", "lr_schedule", "rng_state", "epochs_trained", "extra"}``.
    """
    with _Archive(path) as ar:
        meta = _read_meta(ar, (CHECKPOINT_FORMAT,))
        model = _build_model(ar, meta, allowed_extra=lambda k: k.startswith("optimizer."))
        opt = None
        if meta.get("optimizer") is not None:
            opt = _optimizer_from_json(ar, meta["optimizer"], len(model.parameters()), model.parameters())
            _filechecks.check_optimizer_state(opt, model.parameters(), ar.name, meta["optimizer"].get("iterations"))
        elif any(k.startswith("optimizer.") for k in ar.entries):
            raise FileFormatError(f"{ar.name}: optimizer arrays without an optimizer")
    sched = None if meta.get("lr_schedule") is None else _schedule_from_json(meta["lr_schedule"], ar.name)
    if sched is not None:
        _filechecks.check_schedule_state(sched, ar.name)
    if meta.get("rng_state") is not None:
        _filechecks.check_rng_state(meta["rng_state"], model.rng, ar.name)
    epochs = meta.get("epochs_trained", 0)
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 0:
        raise FileFormatError(f"{ar.name}: epochs_trained={epochs!r} is not an integer >= 0")
    extra = meta.get("extra")
    if extra is not None and not isinstance(extra, dict):
        raise FileFormatError(f"{ar.name}: extra is a {type(extra).__name__}; expected an object")
    state = {"optimizer": opt, "lr_schedule": sched, "rng_state": meta.get("rng_state"),
             "epochs_trained": epochs, "extra": extra}
    restore_training_state(model, state, name=ar.name)
    return model, state


def restore_training_state(model, state: dict, *, name: str = "checkpoint") -> None:
    """Put a checkpoint's optimizer, schedule, generator state and epoch count into ``model``."""
    model.optimizer = state.get("optimizer")
    model.lr_schedule = state.get("lr_schedule")
    if model.lr_schedule is not None and model.optimizer is not None:
        model.lr_schedule.optimizer = model.optimizer
    rng_state = state.get("rng_state")
    if rng_state is not None:
        # Set in place: dropout layers hold this same generator object.
        try:
            if rng_state.get("bit_generator") != type(model.rng.bit_generator).__name__:
                raise ValueError(f"bit generator {rng_state.get('bit_generator')!r}")
            model.rng.bit_generator.state = rng_state
        except (AttributeError, TypeError, ValueError, KeyError) as exc:
            raise FileFormatError(f"{name}: invalid generator state ({exc})") from None
    model.epochs_trained = int(state.get("epochs_trained") or 0)

