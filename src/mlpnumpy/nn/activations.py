"""Activation functions: each a forward ``a = f(z)`` and a backward that turns ``dL/da`` into ``dL/dz``.

Derivatives are taken from the cached *output* ``a`` wherever the maths allows (ReLU mask,
``a(1-a)``, ``1-a**2``), so the backward pass never recomputes the forward one. GELU, SiLU and Mish
are the activations whose derivatives need the input ``z``; each says so with ``needs_input = True``.

This is the reference path: each function is its formula in plain array operations, shapes ``(n, k)``
in and out. The fused kernels of the fast path live in :mod:`mlpnumpy._kernels`.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .._array_api import is_array, namespace
from ..errors import InvalidArgumentError, check_choice

__all__ = ["Activation", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Identity", "ELU", "GELU", "SELU",
           "Softplus", "HardSigmoid", "SiLU", "Mish",
           "softmax", "log_softmax", "sigmoid", "get_activation", "ACTIVATIONS"]


class Activation:
    """Base class. Subclasses implement :meth:`forward` and :meth:`backward`.

    Activations hold no per-batch state; the layer that uses one caches ``a`` (and ``z`` when
    ``needs_input``) and passes them back to :meth:`backward`.
    """

    name = "activation"
    needs_input = False  # True when the derivative cannot be written in terms of the output alone

    def forward(self, z: np.ndarray) -> np.ndarray:
        """Return ``a = f(z)``, an array of the same shape and dtype as ``z``."""
        raise NotImplementedError

    def backward(self, grad_a: np.ndarray, a: np.ndarray, z: np.ndarray | None = None) -> np.ndarray:
        """Return ``dL/dz = dL/da * f'(z)`` from the cached output ``a`` (and ``z`` if needed).

        Never writes into ``grad_a``.
        """
        raise NotImplementedError

    def __call__(self, z: np.ndarray) -> np.ndarray:
        return self.forward(z)

    def get_config(self) -> dict:
        return {"name": self.name}

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class ReLU(Activation):
    r"""Rectified linear unit, :math:`f(z) = \max(0, z)`, :math:`f'(z) = [a > 0]`."""

    name = "relu"

    def forward(self, z):
        return namespace(z).maximum(z, 0)

    def backward(self, grad_a, a, z=None):
        # The mask is read from the output: a > 0 exactly where z > 0.
        xp = namespace(grad_a, a)
        return grad_a * xp.astype(a > 0, grad_a.dtype)


class LeakyReLU(Activation):
    r"""Leaky ReLU, :math:`f(z) = z` for :math:`z > 0`, else :math:`\alpha z` (torch's default 0.01)."""

    name = "leaky_relu"

    def __init__(self, negative_slope: float = 0.01):
        if not (np.isfinite(negative_slope) and negative_slope >= 0):
            raise InvalidArgumentError(f"negative_slope={negative_slope!r} is invalid; expected a finite number >= 0")
        self.negative_slope = float(negative_slope)

    def forward(self, z):
        return namespace(z).where(z > 0, z, z * self.negative_slope)

    def backward(self, grad_a, a, z=None):
        # a > 0 iff z > 0 for a positive slope; for slope 0 this is ReLU's mask.
        return namespace(grad_a, a).where(a > 0, grad_a, grad_a * self.negative_slope)

    def get_config(self):
        return {"name": self.name, "negative_slope": self.negative_slope}

    def __repr__(self):
        return f"LeakyReLU(negative_slope={self.negative_slope})"


def sigmoid(z: np.ndarray) -> np.ndarray:
    r"""Logistic function :math:`1 / (1 + e^{-z})`, exact for any finite ``z``, no overflow warning.

    Uses :math:`e^{-|z|}`, which lies in (0, 1], so nothing overflows and no clipping is needed:
    :math:`\sigma(z) = 1/(1+e^{-|z|})` for :math:`z \ge 0` and :math:`e^{-|z|}/(1+e^{-|z|})` otherwise.
    """
    if not is_array(z):  # lists and scalars: NumPy
        z = np.asarray(z)
    xp = namespace(z)
    e = xp.exp(-xp.abs(z))
    return xp.where(z >= 0, 1 / (1 + e), e / (1 + e))


class Sigmoid(Activation):
    r"""Logistic sigmoid, :math:`f'(z) = a (1 - a)`."""

    name = "sigmoid"

    def forward(self, z):
        return sigmoid(z)

    def backward(self, grad_a, a, z=None):
        return grad_a * (a * (1 - a))


class Tanh(Activation):
    r"""Hyperbolic tangent, :math:`f'(z) = 1 - a^2`."""

    name = "tanh"

    def forward(self, z):
        return namespace(z).tanh(z)

    def backward(self, grad_a, a, z=None):
        return grad_a * (1 - a * a)


class Identity(Activation):
    """The identity, for output layers that return logits (the seed called it ``'none'``)."""

    name = "identity"

    def forward(self, z):
        return z

    def backward(self, grad_a, a, z=None):
        return grad_a


class ELU(Activation):
    r"""Exponential linear unit: :math:`z` for :math:`z > 0`, else :math:`\alpha (e^z - 1)`.

    For :math:`z \le 0` the derivative :math:`\alpha e^z` equals :math:`a + \alpha`: read from the output.
    """

    name = "elu"

    def __init__(self, alpha: float = 1.0):
        if not (np.isfinite(alpha) and alpha > 0):
            raise InvalidArgumentError(f"alpha={alpha!r} is invalid; expected a finite number > 0")
        self.alpha = float(alpha)

    def forward(self, z):
        xp = namespace(z)
        return xp.where(z > 0, z, self.alpha * xp.expm1(xp.minimum(z, 0)))

    def backward(self, grad_a, a, z=None):
        return namespace(grad_a, a).where(a > 0, grad_a, grad_a * (a + self.alpha))

    def get_config(self):
        return {"name": self.name, "alpha": self.alpha}

    def __repr__(self):
        return f"ELU(alpha={self.alpha})"


class GELU(Activation):
    r"""Gaussian error linear unit, tanh form (``torch.nn.GELU(approximate="tanh")``).

    :math:`f(z) = \tfrac12 z (1 + \tanh u)`, :math:`u = \sqrt{2/\pi}(z + 0.044715 z^3)`. Its derivative
    needs ``z``, so the layer caches the input for it.
    """

    name = "gelu"
    needs_input = True
    _C = float(np.sqrt(2.0 / np.pi))

    def forward(self, z):
        return 0.5 * z * (1 + namespace(z).tanh(self._C * (z + 0.044715 * z * z * z)))

    def backward(self, grad_a, a, z=None):
        if z is None:
            raise InvalidArgumentError("GELU.backward needs the cached input z")
        c = self._C
        t = namespace(z).tanh(c * (z + 0.044715 * z * z * z))
        dt = (1 - t * t) * c * (1 + (3 * 0.044715) * z * z)
        return grad_a * (0.5 * (1 + t) + 0.5 * z * dt)


class SELU(Activation):
    r"""Scaled exponential linear unit (Klambauer et al., "Self-Normalizing Neural Networks", 2017):
    :math:`\lambda z` for :math:`z > 0`, else :math:`\lambda\alpha(e^z - 1)`, with the paper's
    :math:`\alpha \approx 1.6733`, :math:`\lambda \approx 1.0507` (``torch.nn.SELU``).

    With ``lecun_normal`` weights (``init="auto"`` picks it) and :class:`~mlpnumpy.nn.layers.AlphaDropout`,
    activations keep mean 0 and variance 1 through deep stacks. For :math:`z \le 0` the derivative
    :math:`\lambda\alpha e^z` equals :math:`a + \lambda\alpha`: read from the output.
    """

    name = "selu"
    ALPHA = 1.6732632423543772848170429916717
    SCALE = 1.0507009873554804934193349852946

    def forward(self, z):
        xp = namespace(z)
        return xp.where(z > 0, self.SCALE * z, (self.SCALE * self.ALPHA) * xp.expm1(xp.minimum(z, 0)))

    def backward(self, grad_a, a, z=None):
        return namespace(grad_a, a).where(a > 0, grad_a * self.SCALE, grad_a * (a + self.SCALE * self.ALPHA))


class Softplus(Activation):
    r"""Softplus, :math:`\log(1 + e^z)`, a smooth ReLU (``torch.nn.Softplus()``: ``z`` itself above
    ``threshold`` 20, where the two agree to float64 precision).

    :math:`f'(z) = \sigma(z) = 1 - e^{-a}`: read from the output (``-expm1(-a)``, exact for small ``a``).
    """

    name = "softplus"
    THRESHOLD = 20.0

    def forward(self, z):
        xp = namespace(z)
        return xp.where(z > self.THRESHOLD, z, xp.logaddexp(xp.zeros_like(z), z))

    def backward(self, grad_a, a, z=None):
        # above the threshold f is z itself (a == z): slope 1, as torch
        xp = namespace(grad_a, a)
        return xp.where(a > self.THRESHOLD, grad_a, grad_a * -xp.expm1(-a))


class HardSigmoid(Activation):
    r"""Hard sigmoid, :math:`\min(1, \max(0, z/6 + 1/2))`, as ``torch.nn.Hardsigmoid``: a piecewise-linear
    sigmoid. :math:`f'(z) = 1/6` where :math:`0 < a < 1` (:math:`-3 < z < 3`), else 0: read from the output.
    """

    name = "hard_sigmoid"

    def forward(self, z):
        return namespace(z).clip(z / 6 + 0.5, 0.0, 1.0)

    def backward(self, grad_a, a, z=None):
        xp = namespace(grad_a, a)
        return grad_a * (xp.astype((a > 0) & (a < 1), a.dtype) / 6)


class SiLU(Activation):
    r"""SiLU, also called Swish (Elfwing et al. 2018; Ramachandran et al. 2017): :math:`z\,\sigma(z)`,
    as ``torch.nn.SiLU``. :math:`f'(z) = \sigma(z)(1 + z(1 - \sigma(z)))` needs ``z``: the layer caches it.
    """

    name = "silu"
    needs_input = True

    def forward(self, z):
        return z * sigmoid(z)

    def backward(self, grad_a, a, z=None):
        if z is None:
            raise InvalidArgumentError("SiLU.backward needs the cached input z")
        s = sigmoid(z)
        return grad_a * (s * (1 + z * (1 - s)))


class Mish(Activation):
    r"""Mish (Misra, 2019): :math:`z \tanh(\mathrm{softplus}(z))`, as ``torch.nn.Mish``.

    :math:`f'(z) = \tanh s + z\,(1 - \tanh^2 s)\,\sigma(z)` with :math:`s = \mathrm{softplus}(z)`;
    it needs ``z``: the layer caches it.
    """

    name = "mish"
    needs_input = True

    def forward(self, z):
        xp = namespace(z)
        return z * xp.tanh(xp.logaddexp(xp.zeros_like(z), z))

    def backward(self, grad_a, a, z=None):
        if z is None:
            raise InvalidArgumentError("Mish.backward needs the cached input z")
        xp = namespace(z)
        t = xp.tanh(xp.logaddexp(xp.zeros_like(z), z))
        return grad_a * (t + z * (1 - t * t) * sigmoid(z))


def log_softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    r""":math:`z_i - \log\sum_j e^{z_j}` through log-sum-exp with the row max subtracted: exact for any logits."""
    xp = namespace(z)
    shifted = z - xp.max(z, axis=axis, keepdims=True)
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=axis, keepdims=True))


def softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    r"""Row-wise softmax :math:`e^{z_i} / \sum_j e^{z_j}`, with the row max subtracted so nothing
    overflows; ``z`` of shape ``(n, k)`` gives probabilities of shape ``(n, k)``.

    The cross-entropy loss's gradient is ``softmax(z) - y`` with this very function.
    """
    xp = namespace(z)
    e = xp.exp(z - xp.max(z, axis=axis, keepdims=True))
    return e / xp.sum(e, axis=axis, keepdims=True)


ACTIVATIONS: dict[str, Callable[..., Activation]] = {
    "relu": ReLU, "leaky_relu": LeakyReLU, "sigmoid": Sigmoid, "tanh": Tanh, "identity": Identity,
    "elu": ELU, "gelu": GELU, "selu": SELU, "softplus": Softplus, "hard_sigmoid": HardSigmoid, "silu": SiLU,
    "mish": Mish,
}
# Accepted spellings of the same functions: the seed's 'none', scikit-learn's 'logistic', torch's names.
_ALIASES = {"none": "identity", "linear": "identity", "logistic": "sigmoid", "swish": "silu",
            "hardsigmoid": "hard_sigmoid"}


def get_activation(activation: str | Activation | None) -> Activation:
    """Return an :class:`Activation` from a name, an instance, or ``None`` (the identity).

    Names: ``relu, leaky_relu, sigmoid, tanh, identity, elu, gelu, selu, softplus, hard_sigmoid, silu,
    mish``; also ``'none'``/``'linear'`` for the identity, ``'logistic'`` for the sigmoid, ``'swish'``
    for SiLU and ``'hardsigmoid'``.
    """
    if activation is None:
        return Identity()
    if isinstance(activation, Activation):
        return activation
    if isinstance(activation, type) and issubclass(activation, Activation):
        return activation()
    if isinstance(activation, dict):  # a config from get_config()
        cfg = dict(activation)
        return ACTIVATIONS[check_choice("activation", cfg.pop("name"), ACTIVATIONS)](**cfg)
    if isinstance(activation, str) and activation.lower() in _ALIASES:
        activation = _ALIASES[activation.lower()]
    return ACTIVATIONS[check_choice("activation", activation, ACTIVATIONS)]()
