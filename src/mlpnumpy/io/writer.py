"""Writing model files and checkpoints: one ``.npz`` (a stored zip of ``.npy`` arrays and a JSON
header), written atomically, no pickle. Reading them back, with every check, is :mod:`.model_files`.

This module knows models only through their public methods (``get_config``, ``named_arrays``,
``count_params``, the optimizer's ``get_config``/``state_dict``): ``nn.model`` imports it for
``model.save`` and it imports nothing from ``nn``, so the two do not import each other.
"""
from __future__ import annotations

import inspect
import json
import os
import zipfile

import numpy as np

from ._atomic import atomic_write
from ..errors import InvalidArgumentError

__all__ = ["save_model", "save_checkpoint", "FORMAT_VERSION", "MAX_METADATA_BYTES"]

FORMAT_VERSION = 1
META_KEY = "__mlpnumpy__"
MODEL_FORMAT = "mlpnumpy-model"
CHECKPOINT_FORMAT = "mlpnumpy-checkpoint"
#: Largest JSON metadata accepted (the config of any real model is a few kB).
MAX_METADATA_BYTES = 16 * 2**20


# ---------------------------------------------------------------------------------------- writing
def _model_arrays(model) -> dict[str, np.ndarray]:
    """Every parameter and buffer by file name, ``layer{i}.{name}``."""
    return model.named_arrays("layer")


def _preprocessor_entries(model) -> tuple[dict | None, dict[str, np.ndarray]]:
    pre = getattr(model, "preprocessor", None)
    if pre is None:
        return None, {}
    to_dict = getattr(pre, "to_dict", None)
    d = to_dict() if to_dict is not None else None
    if not isinstance(d, dict) or d.get("type") != "Standardizer":
        raise InvalidArgumentError(f"model.preprocessor={pre!r} cannot be saved; expected a "
                                   "mlpnumpy.datasets.preprocessing.Standardizer or None")
    return {"type": "Standardizer"}, {"preprocessor.mean": np.asarray(d["mean"], np.float64),
                                      "preprocessor.scale": np.asarray(d["scale"], np.float64)}


def _model_metadata(model, fmt: str) -> tuple[dict, dict[str, np.ndarray]]:
    pre_meta, pre_arrays = _preprocessor_entries(model)
    class_names = getattr(model, "class_names", None)
    meta = {"format": fmt, "version": FORMAT_VERSION, "config": model.get_config(),
            "class_names": None if class_names is None else [str(c) for c in class_names],
            "preprocessor": pre_meta, "n_params": int(model.count_params()),
            "metadata": getattr(model, "metadata", None)}
    arrays = _model_arrays(model)
    arrays.update(pre_arrays)
    return meta, arrays


def _write_archive(path, meta: dict, arrays: dict[str, np.ndarray]) -> None:
    try:
        blob = json.dumps(meta, allow_nan=True).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(f"cannot save {os.fspath(path)}: the metadata is not JSON-serialisable "
                                   f"({exc}); keep extra= and model.metadata to numbers, strings, lists "
                                   "and dicts") from None
    with atomic_write(path, "wb") as fh:
        # Stored, not deflated: the file's size then bounds every entry's size, which load checks.
        with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
            for name, arr in [(META_KEY, np.frombuffer(blob, np.uint8)), *arrays.items()]:
                with zf.open(name + ".npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, np.ascontiguousarray(arr), allow_pickle=False)


def save_model(model, path) -> None:
    """Write ``model`` to one ``.npz`` file: architecture, weights, buffers, preprocessing, class names.

    Parameters
    ----------
    model : Sequential
    path : str or path-like
        Written atomically (a temporary file renamed over it); no pickle is used.
    """
    from .._array_api import host_model
    model = host_model(model)  # a model on a device is written from a host copy
    meta, arrays = _model_metadata(model, MODEL_FORMAT)
    _write_archive(path, meta, arrays)


def _schedule_to_json(s) -> dict:
    from ..optim.schedules import SCHEDULES, Schedule
    if type(s) not in SCHEDULES.values() or type(s).__name__ == "LambdaLR":
        raise InvalidArgumentError(f"lr_schedule={s!r} cannot be saved in a checkpoint; expected one of "
                                   "the built-in schedules other than LambdaLR")
    args = {}
    for n in inspect.signature(type(s).__init__).parameters:
        if n == "self":
            continue
        v = getattr(s, n)
        if isinstance(v, Schedule):
            v = {"__schedule__": _schedule_to_json(v)}
        elif isinstance(v, tuple):
            v = list(v)
        args[n] = v
    return {"class": type(s).__name__, "args": args, "state": s.state_dict()}


def _param_groups_to_json(opt, params) -> list[dict]:
    """The optimizer's parameter groups with each parameter as its index in ``model.parameters()``."""
    index = {id(p): i for i, p in enumerate(params)}
    groups = []
    for g in opt.param_groups:
        idx = [index.get(id(p)) for p in g["params"]]
        if None in idx:
            raise InvalidArgumentError("cannot save the checkpoint: a parameter group of the optimizer holds a "
                                       "parameter that is not the model's; group only model.parameters()")
        groups.append({"params": idx, **{k: float(g[k]) for k in ("lr_mult", "weight_decay") if k in g}})
    return groups


def save_checkpoint(model, path, *, extra: dict | None = None) -> None:
    """Write a model with everything needed to resume training bit-exactly.

    Besides :func:`save_model`'s content: the optimizer (class, hyperparameters, state), the
    learning-rate schedule (class, arguments, progress), the state of the model's generator (which
    draws shuffles and dropout masks), ``epochs_trained`` and ``extra`` (any JSON-able dict).
    """
    from .._array_api import host_model
    model = host_model(model)  # a model on a device is written from a host copy
    meta, arrays = _model_metadata(model, CHECKPOINT_FORMAT)
    opt = getattr(model, "optimizer", None)
    if opt is not None:
        sd = opt.state_dict()
        hyper = {k: list(v) if isinstance(v, tuple) else v for k, v in opt.get_config().items()}
        state_keys = None
        if sd["state"] is not None:
            state_keys = []
            for i, s in enumerate(sd["state"]):
                state_keys.append(sorted(s))
                for k in s:
                    arrays[f"optimizer.state.{i}.{k}"] = s[k]
        meta["optimizer"] = {"class": type(opt).__name__, "args": hyper, "lr": sd["lr"],
                             "iterations": sd["iterations"], "state_keys": state_keys,
                             "param_groups": _param_groups_to_json(opt, model.parameters())}
    else:
        meta["optimizer"] = None
    sched = getattr(model, "lr_schedule", None)
    meta["lr_schedule"] = None if sched is None else _schedule_to_json(sched)
    meta["rng_state"] = model.rng.bit_generator.state
    meta["epochs_trained"] = int(model.epochs_trained)
    meta["extra"] = extra
    _write_archive(path, meta, arrays)
