"""Weight initialisers: functions ``init(shape, fan_in, fan_out, rng, dtype, gain) -> ndarray``.

The formulas and gains follow ``torch.nn.init`` (He et al. 2015; Glorot & Bengio 2010; LeCun 1998).
``init="auto"`` picks He for the ReLU family and Xavier for everything else, as the seed did.

Gains, when a :class:`~mlpnumpy.nn.layers.Dense` layer picks them (see :func:`default_gain`):
He uses ``calculate_gain`` of its ReLU-family activation (sqrt(2) for ReLU, torch's default
otherwise); Xavier uses ``calculate_gain`` for ``sigmoid`` (1) and ``tanh`` (5/3) and Glorot's plain
formula (gain 1) for everything else, which is what the classic initialisation study compares.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..errors import check_choice

__all__ = ["calculate_gain", "he_normal", "he_uniform", "xavier_normal", "xavier_uniform",
           "lecun_normal", "zeros", "normal", "default_gain", "get_initializer", "auto_initializer", "INITIALIZERS"]


def calculate_gain(activation: str, param: float | None = None) -> float:
    """The recommended gain for an activation, as ``torch.nn.init.calculate_gain``.

    ``identity``/``sigmoid``: 1; ``tanh``: 5/3; ``relu``: sqrt(2); ``leaky_relu``: sqrt(2/(1+slope^2))
    with torch's default slope 0.01; ``elu``/``gelu``: torch has no entry, we use 1 (Xavier) as it does
    for unknown linear-like functions.
    """
    if activation in ("relu",):
        return float(np.sqrt(2.0))
    if activation == "leaky_relu":
        slope = 0.01 if param is None else param
        return float(np.sqrt(2.0 / (1 + slope ** 2)))
    if activation == "tanh":
        return 5.0 / 3
    return 1.0


def he_normal(shape, fan_in, fan_out, rng, dtype, gain=float(np.sqrt(2.0))):
    r"""He/Kaiming normal: :math:`W \sim N(0, \mathrm{gain}^2 / \mathrm{fan\_in})` (He et al., 2015)."""
    return (rng.standard_normal(shape) * (gain / np.sqrt(fan_in))).astype(dtype)


def he_uniform(shape, fan_in, fan_out, rng, dtype, gain=float(np.sqrt(2.0))):
    r"""He/Kaiming uniform: :math:`W \sim U(-b, b)`, :math:`b = \mathrm{gain}\sqrt{3/\mathrm{fan\_in}}`."""
    bound = gain * np.sqrt(3.0 / fan_in)
    return rng.uniform(-bound, bound, shape).astype(dtype)


def xavier_normal(shape, fan_in, fan_out, rng, dtype, gain=1.0):
    r"""Glorot/Xavier normal: :math:`W \sim N(0, \mathrm{gain}^2 \cdot 2/(\mathrm{fan\_in}+\mathrm{fan\_out}))`."""
    return (rng.standard_normal(shape) * (gain * np.sqrt(2.0 / (fan_in + fan_out)))).astype(dtype)


def xavier_uniform(shape, fan_in, fan_out, rng, dtype, gain=1.0):
    r"""Glorot/Xavier uniform: :math:`U(-b, b)`, :math:`b = \mathrm{gain}\sqrt{6/(\mathrm{fan\_in}+\mathrm{fan\_out})}`."""
    bound = gain * np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-bound, bound, shape).astype(dtype)


def lecun_normal(shape, fan_in, fan_out, rng, dtype, gain=1.0):
    r"""LeCun normal: :math:`W \sim N(0, 1/\mathrm{fan\_in})` (LeCun et al., 1998)."""
    return (rng.standard_normal(shape) * (gain / np.sqrt(fan_in))).astype(dtype)


def zeros(shape, fan_in, fan_out, rng, dtype, gain=1.0):
    """All zeros (for biases, or to show why symmetric weights cannot learn)."""
    return np.zeros(shape, dtype=dtype)


def normal(std: float) -> Callable:
    """An initialiser drawing :math:`N(0, \\mathrm{std}^2)` whatever the fan, for experiments."""
    def init(shape, fan_in, fan_out, rng, dtype, gain=1.0):
        return (rng.standard_normal(shape) * std).astype(dtype)
    init.__name__ = f"normal({std})"
    return init


INITIALIZERS: dict[str, Callable] = {
    "he_normal": he_normal, "he_uniform": he_uniform, "xavier_normal": xavier_normal,
    "xavier_uniform": xavier_uniform, "lecun_normal": lecun_normal, "zeros": zeros,
}
_ALIASES = {"he": "he_normal", "kaiming_normal": "he_normal", "kaiming_uniform": "he_uniform",
            "xavier": "xavier_normal", "glorot_normal": "xavier_normal",
            "glorot_uniform": "xavier_uniform"}
_RELU_FAMILY = ("relu", "leaky_relu", "elu", "gelu", "silu", "mish", "softplus")


def auto_initializer(activation_name: str) -> str:
    """The seed's rule: He for the ReLU family, Xavier (normal) otherwise; and LeCun normal for SELU,
    which self-normalises only from weights of variance ``1/fan_in`` (Klambauer et al. 2017)."""
    if activation_name == "selu":
        return "lecun_normal"
    return "he_normal" if activation_name in _RELU_FAMILY else "xavier_normal"


def default_gain(init_name: str, activation_name: str) -> float:
    """The gain a Dense layer gives ``init_name`` in front of ``activation_name`` (module docstring)."""
    if init_name.startswith("he"):
        return calculate_gain(activation_name) if activation_name in ("relu", "leaky_relu") \
            else float(np.sqrt(2.0))
    if init_name.startswith("xavier") and activation_name in ("sigmoid", "tanh"):
        return calculate_gain(activation_name)
    return 1.0


def get_initializer(init: str | Callable, activation_name: str = "identity") -> tuple[Callable, str]:
    """Return ``(function, name)`` for an initialiser name, ``"auto"`` or a callable.

    Names: ``auto, he_normal, he_uniform, xavier_normal, xavier_uniform, lecun_normal, zeros``
    (aliases ``he``, ``xavier``, ``glorot_*``, ``kaiming_*``).
    """
    if callable(init):
        return init, getattr(init, "__name__", "custom")
    if isinstance(init, str) and init.lower() in _ALIASES:
        init = _ALIASES[init.lower()]
    name = check_choice("init", init, ["auto", *INITIALIZERS])
    if name == "auto":
        name = auto_initializer(activation_name)
    return INITIALIZERS[name], name
