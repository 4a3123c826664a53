"""The seed's names, kept working: ``MLPNumpy`` and ``ActivationFunctions``.

``MLPNumpy`` is an :class:`~mlpnumpy.nn.model.MLP` with the seed's step-by-step methods
(``compute_loss``, ``compute_loss_gradient``, ``update_weights``). They run the reference path, and a
step through them is exactly one plain-SGD step of ``fit(..., path="reference")`` on the same batch,
bit for bit, whatever the shapes and the CPU: ``compute_loss_gradient`` is the loss's backward (where
the batch mean is taken; the seed divided in each layer instead), and ``update_weights`` runs
:class:`~mlpnumpy.optim.optimizers.SGD`'s own update. ``fit``'s fast path (the default for NumPy arrays)
makes the same step within float rounding (``tests/test_seed_compat.py``).
"""
from __future__ import annotations

import numpy as np

from .nn import activations as _act
from .nn.losses import one_hot
from .nn.model import MLP
from .optim.optimizers import SGD

__all__ = ["MLPNumpy", "ActivationFunctions"]


class ActivationFunctions:
    """The seed's static helpers, computed stably (no clipping needed for the sigmoid)."""

    relu = staticmethod(lambda z: np.maximum(z, 0))
    relu_derivative = staticmethod(lambda z: (np.asarray(z) > 0).astype(np.asarray(z).dtype))
    sigmoid = staticmethod(_act.sigmoid)
    sigmoid_derivative = staticmethod(lambda z: _act.sigmoid(z) * (1 - _act.sigmoid(z)))
    tanh = staticmethod(np.tanh)
    tanh_derivative = staticmethod(lambda z: 1 - np.tanh(z) ** 2)
    softmax = staticmethod(lambda z: _act.softmax(np.asarray(z)))


class MLPNumpy(MLP):
    """The seed's class: ``MLPNumpy(layer_dims, activations)``, float32 by default.

    ``activations`` as in the seed: one name per layer (``'none'`` for the logits), default ReLU
    hidden layers and a linear output.
    """

    def __init__(self, layer_dims, activations=None, *, init="auto", seed=None, dtype=np.float32, **kwargs):
        super().__init__(layer_dims, activations, init=init, seed=seed, dtype=dtype, **kwargs)

    @staticmethod
    def _dense(y_true, n_classes, dtype):
        y_true = np.asarray(y_true)
        return one_hot(y_true.astype(np.int64), n_classes, dtype) if y_true.ndim == 1 else y_true.astype(dtype)

    def compute_loss(self, y_true, y_pred) -> float:
        """Mean cross-entropy of probabilities ``y_pred`` ``(n, K)`` against labels ``(n,)`` or one-hot.

        Probabilities of exactly 0 are floored at the smallest normal number of their dtype
        (the seed clipped at 1e-15, which changed the loss of confident correct predictions).
        """
        y_pred = np.asarray(y_pred)
        y = self._dense(y_true, y_pred.shape[1], y_pred.dtype)
        logp = np.log(np.maximum(y_pred, np.finfo(y_pred.dtype).tiny))
        return float(-np.mean(np.sum(y * logp, axis=1)))

    def compute_loss_gradient(self, y_true, y_pred) -> np.ndarray:
        """Gradient of the mean cross-entropy with respect to the logits: ``(p - y) / n``."""
        y_pred = np.asarray(y_pred)
        y = self._dense(y_true, y_pred.shape[1], y_pred.dtype)
        return (y_pred - y) / y_pred.dtype.type(y_pred.shape[0])

    def update_weights(self, lr: float) -> None:
        """One plain SGD step, ``w -= lr * dw``, on every parameter.

        It is taken by :class:`~mlpnumpy.optim.optimizers.SGD`'s reference update, the code ``fit``'s
        reference path runs, so the two are the same by construction, not by a copy of the formula.
        """
        SGD(lr=lr).step(self.parameters())
