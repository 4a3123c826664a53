"""L1 penalties on a model's weights and, separately, on its biases: ``fit(..., l1=, l1_bias=)``.

The L2 penalty lives in the optimizers (``weight_decay``), as in torch. L1 is a term of the loss,
:math:`\\lambda_1 \\sum |W| + \\lambda_b \\sum |b|`, whose (sub)gradient :math:`\\lambda\\,\\mathrm{sign}(w)`
is added to each parameter's gradient after the backward pass and before clipping and the update,
exactly what ``loss + l1 * w.abs().sum()`` gives in torch (``sign(0) = 0``).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import check_positive
from .parameter import Parameter

__all__ = ["is_weight", "is_bias", "l1_penalty", "add_l1_grad", "check_l1"]


def is_weight(p: Parameter) -> bool:
    """A Dense layer's weight matrix ``W`` (inside Residual blocks too)."""
    return p.name == "W"


def is_bias(p: Parameter) -> bool:
    """A Dense layer's bias ``b``. Normalisation layers' ``gamma``/``beta`` and embedding tables are
    neither weights nor biases here: no L1 reaches them."""
    return p.name == "b"


def check_l1(l1: float, l1_bias: float) -> tuple[float, float]:
    """Both coefficients as floats >= 0, or an error naming the argument."""
    return float(check_positive("l1", l1, allow_zero=True)), float(check_positive("l1_bias", l1_bias,
                                                                                  allow_zero=True))


def l1_penalty(params: Sequence[Parameter], l1: float, l1_bias: float = 0.0) -> float:
    r""":math:`\lambda_1 \sum_W |W| + \lambda_b \sum_b |b|` over the trainable ``params`` (float64 sum)."""
    total = 0.0
    for p in params:
        lam = l1 if is_weight(p) else l1_bias if is_bias(p) else 0.0
        if lam and p.trainable:
            total += lam * float(np.abs(p.data).sum(dtype=np.float64))
    return total


def add_l1_grad(params: Sequence[Parameter], l1: float, l1_bias: float = 0.0) -> None:
    r"""``p.grad += lambda * sign(p.data)`` for the weights (``l1``) and biases (``l1_bias``), in place."""
    for p in params:
        lam = l1 if is_weight(p) else l1_bias if is_bias(p) else 0.0
        if lam and p.trainable:
            if isinstance(p.grad, np.ndarray):
                p.grad += p.grad.dtype.type(lam) * np.sign(p.data)
            else:  # any Array API library, on its device
                from .._array_api import namespace
                p.grad += lam * namespace(p.data).sign(p.data)
