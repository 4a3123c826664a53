"""Losses, computed from the network's raw outputs (logits), each with its gradient.

``forward(outputs, target)`` returns the mean loss and caches what ``backward`` needs;
``backward()`` returns ``dL/d outputs`` **already divided by the batch size**: this is the one place
in mlpnumpy where the batch mean is taken. Layers only sum over the batch.

Softmax with cross-entropy, and sigmoid with binary cross-entropy, are computed together through
log-sum-exp, which is exact for any logit, and their gradient is ``p - y``.

This is the reference path, each loss as its formula; the fast path's fused softmax cross-entropy
lives in :mod:`mlpnumpy._kernels`.
"""
from __future__ import annotations

import numpy as np

from .._array_api import device_of, is_array, is_numpy, namespace
from .activations import log_softmax, sigmoid, softmax
from ..errors import InvalidArgumentError, InvalidDataError, check_choice, check_in_range, check_positive

__all__ = ["Loss", "CrossEntropy", "BinaryCrossEntropy", "MSE", "MAE", "Huber", "get_loss", "LOSSES",
           "one_hot"]


def one_hot(labels: np.ndarray, n_classes: int, dtype=np.float32) -> np.ndarray:
    """Integer labels of shape ``(n,)`` to a one-hot matrix of shape ``(n, n_classes)``."""
    if not is_numpy(labels):  # any array library: compare each label with 0..K-1
        xp = namespace(labels)
        classes = xp.arange(n_classes, dtype=labels.dtype, device=device_of(labels))
        return xp.astype(labels[:, None] == classes[None, :], dtype)
    out = np.zeros((labels.shape[0], n_classes), dtype=dtype)
    out[np.arange(labels.shape[0]), labels] = 1
    return out


def _on(host: np.ndarray, like, cache: dict):
    """A small host array (class or positive weights) on ``like``'s library, device and dtype, copied
    there once and kept in ``cache``."""
    if is_numpy(like):
        return host.astype(like.dtype)
    key = (id(namespace(like)), str(device_of(like)), str(like.dtype))
    if key not in cache:
        cache.clear()
        xp = namespace(like)
        cache[key] = xp.asarray(host, dtype=like.dtype, device=device_of(like))
    return cache[key]


def _weights(sample_weight, n, dtype):
    if sample_weight is None:
        return None
    if not is_numpy(sample_weight) and is_array(sample_weight):
        xp = namespace(sample_weight)  # validated by fit; kept on its device
        return xp.reshape(xp.astype(sample_weight, dtype), (-1,))
    from .._validation import check_sample_weight
    w = np.asarray(sample_weight, dtype=dtype).reshape(-1)
    if w.shape[0] == n and not np.any(w):  # an all-zero batch is legal inside fit: it carries nothing
        return w
    return check_sample_weight(w, n, dtype)


class Loss:
    """Base class. Subclasses implement ``_forward`` returning per-sample losses and the gradient."""

    name = "loss"
    #: the output transform that turns the model's raw outputs into predictions
    output_transform = "identity"

    def __init__(self):
        self._grad = None
        #: ``outputs.argmax(axis=1)`` of the last forward when the fast path's fused cross-entropy
        #: found it on the way, else None; the fit loop's accuracy reuses it.
        self.predicted = None

    def __call__(self, outputs, target, sample_weight=None) -> float:
        return self.forward(outputs, target, sample_weight)

    def forward(self, outputs: np.ndarray, target: np.ndarray, sample_weight=None) -> float:
        """Mean loss over the batch; caches ``dL/d outputs`` for :meth:`backward`.

        Parameters
        ----------
        outputs : ndarray, shape (n, k)
            Raw network outputs (logits for the classification losses).
        target : ndarray
            Shape ``(n,)`` integer labels or ``(n, k)`` targets (see each loss).
        sample_weight : ndarray, shape (n,), optional
            Non-negative weights; the mean becomes ``sum(w_i l_i) / sum(w_i)``.
        """
        total, n = self._forward_sum(outputs, target, sample_weight)
        return float(total) / n

    def forward_array(self, outputs, target, sample_weight=None):
        """:meth:`forward`'s mean loss as a 0-d array on the outputs' device: the fit loop adds these
        up on the device, so no number comes back to the host per batch."""
        total, n = self._forward_sum(outputs, target, sample_weight)
        return total / n if n != 1 else total

    def _forward_sum(self, outputs, target, sample_weight):
        """``(s, n)``: the mean loss is ``s / n``; caches the gradient for :meth:`backward`."""
        self.predicted = None
        xp = namespace(outputs)
        per_sample, grad = self._forward(outputs, target)
        n, dtype = outputs.shape[0], outputs.dtype
        w = _weights(sample_weight, n, dtype)
        denom = self._normaliser(target, w, n, dtype)
        if denom is None:
            # The batch mean, taken here and only here.
            self._grad = grad / (dtype.type(n) if is_numpy(outputs) else n)
            return xp.sum(per_sample), n
        total = xp.sum(denom)
        if is_numpy(outputs):
            if total <= 0:  # a batch that carries no weight contributes nothing
                self._grad = np.zeros_like(grad)
                return 0.0, 1
        else:  # no branch on a device number: an all-zero weight gives scale 0, so loss and gradient 0
            total = total + xp.astype(total == 0, total.dtype)
        ones = xp.ones(n, dtype=dtype, device=device_of(outputs))
        scale = xp.astype((ones if w is None else w) / total, dtype)
        self._grad = grad * scale[:, None]
        return (np.dot(scale, per_sample) if is_numpy(outputs) else xp.sum(scale * per_sample)), 1

    def backward(self) -> np.ndarray:
        """``dL/d outputs``, shape ``(n, k)``, with the batch mean already applied."""
        if self._grad is None:
            raise InvalidArgumentError("backward called before forward")
        return self._grad

    def _normaliser(self, target, w, n, dtype):
        """What the weighted sum is divided by, per sample (None: the plain mean over n)."""
        return w

    def _forward(self, outputs, target):  # pragma: no cover - abstract
        raise NotImplementedError

    def get_config(self) -> dict:
        return {"name": self.name}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "name")
        return f"{type(self).__name__}({args})"


class CrossEntropy(Loss):
    r"""Softmax cross-entropy from logits, as ``torch.nn.CrossEntropyLoss``.

    Per sample: :math:`l = -\sum_c y_c \log p_c` with :math:`\log p = z - \mathrm{logsumexp}(z)`,
    exact for any logits; gradient :math:`p - y`.

    Parameters
    ----------
    label_smoothing : float in [0, 1)
        Target becomes :math:`(1-\varepsilon) y + \varepsilon / K`.
    class_weight : array of shape (K,), optional
        Weight of each class; the mean is weighted by the weight of each sample's true class (for
        probability targets, by :math:`\sum_c w_c y_c`), as torch does.

    Targets are integer labels ``(n,)`` or one-hot/probability rows ``(n, K)``.
    """

    name = "cross_entropy"
    output_transform = "softmax"

    def __init__(self, label_smoothing: float = 0.0, class_weight=None):
        super().__init__()
        self.label_smoothing = check_in_range("label_smoothing", label_smoothing, 0.0, 1.0)
        from .._validation import check_class_weight
        self.class_weight = check_class_weight(class_weight)  # one finite weight >= 0 per class, one > 0

    def _dense_target(self, target, k, dtype):
        if target.ndim == 1:
            return one_hot(target, k, dtype)
        return target if target.dtype == dtype else namespace(target).astype(target, dtype)

    def _forward(self, outputs, target):
        """Per-sample losses ``(n,)`` and the gradient ``(n, K)`` before the batch mean."""
        k = outputs.shape[1]
        if self.class_weight is not None and self.class_weight.shape[0] != k:
            raise InvalidDataError(f"class_weight has {self.class_weight.shape[0]} entries; "
                                   f"expected one per class ({k})")
        y = self._dense_target(target, k, outputs.dtype)        # q: one-hot or probability rows
        xp = namespace(outputs)
        if self.label_smoothing:
            eps = outputs.dtype.type(self.label_smoothing) if is_numpy(outputs) else self.label_smoothing
            y = y * (1 - eps) + eps / k
        logp = log_softmax(outputs)                             # log p = z - logsumexp(z)
        if self.class_weight is None:
            per_sample = -xp.sum(y * logp, axis=1)              # l = -sum_c q_c log p_c
            grad = softmax(outputs) - y                         # dl/dz = p - q
            return per_sample, grad
        # torch: each class term is weighted by w_c; the mean divides by sum of w_{y_i}.
        cw = _on(self.class_weight, outputs, self.__dict__.setdefault("_placed", {}))
        wy = y * cw
        per_sample = -xp.sum(wy * logp, axis=1)
        grad = softmax(outputs) * xp.sum(wy, axis=1, keepdims=True) - wy
        return per_sample, grad

    def _normaliser(self, target, w, n, dtype):
        if self.class_weight is None:
            return w
        # torch divides the weighted sum by the sum of the true classes' weights w_{y_i}.
        y = self._dense_target(target, self.class_weight.shape[0], dtype)
        wy = y @ _on(self.class_weight, y, self.__dict__.setdefault("_placed", {}))
        return wy if w is None else wy * w

    def get_config(self):
        return {"name": self.name, "label_smoothing": self.label_smoothing,
                "class_weight": None if self.class_weight is None else self.class_weight.tolist()}


class BinaryCrossEntropy(Loss):
    r"""Sigmoid + binary cross-entropy from logits, as ``torch.nn.BCEWithLogitsLoss``.

    Per element: :math:`l = \max(z, 0) - z y + \log(1 + e^{-|z|})`, exact for any logit; gradient
    :math:`\sigma(z) - y`. The mean runs over every element (samples and outputs), as torch's does.
    Targets have the outputs' shape ``(n, k)`` (multi-label), or ``(n,)`` when ``k == 1``.

    Parameters
    ----------
    pos_weight : array of shape (k,), optional
        Weight of the positive term of each output, as torch's ``pos_weight``.
    """

    name = "binary_cross_entropy"
    output_transform = "sigmoid"

    def __init__(self, pos_weight=None):
        super().__init__()
        self.pos_weight = None if pos_weight is None else np.asarray(pos_weight, dtype=np.float64)

    def _forward(self, outputs, target):
        y = _as_target(target, outputs)
        z = outputs
        xp = namespace(z)
        log1pexp = xp.log1p(xp.exp(-xp.abs(z)))  # log(1 + e^{-|z|}), never overflows
        if self.pos_weight is None:
            per = xp.maximum(z, 0) - z * y + log1pexp
            grad = sigmoid(z) - y
        else:
            pw = _on(self.pos_weight, z, self.__dict__.setdefault("_placed", {}))
            log_sig = -(xp.maximum(-z, 0) + log1pexp)       # log sigma(z)
            log_1m_sig = -(xp.maximum(z, 0) + log1pexp)     # log(1 - sigma(z))
            per = -(pw * y * log_sig + (1 - y) * log_1m_sig)
            s = sigmoid(z)
            grad = -(pw * y * (1 - s) - (1 - y) * s)
        k = outputs.shape[1]
        # per-sample loss = mean over outputs; gradient scaled to match.
        return xp.mean(per, axis=1), grad / (z.dtype.type(k) if is_numpy(z) else k)

    def get_config(self):
        return {"name": self.name,
                "pos_weight": None if self.pos_weight is None else self.pos_weight.tolist()}


class MSE(Loss):
    r"""Mean squared error, :math:`\frac{1}{nk}\sum (\hat y - y)^2`, as ``torch.nn.MSELoss``."""

    name = "mse"

    def _forward(self, outputs, target):
        diff = outputs - _as_target(target, outputs)
        k = outputs.shape[1]
        xp = namespace(outputs)
        return xp.mean(diff * diff, axis=1), diff * (outputs.dtype.type(2.0 / k) if is_numpy(outputs) else 2.0 / k)


class MAE(Loss):
    r"""Mean absolute error, :math:`\frac{1}{nk}\sum |\hat y - y|`, as ``torch.nn.L1Loss``."""

    name = "mae"

    def _forward(self, outputs, target):
        diff = outputs - _as_target(target, outputs)
        k = outputs.shape[1]
        xp = namespace(outputs)
        return xp.mean(xp.abs(diff), axis=1), xp.sign(diff) / (outputs.dtype.type(k) if is_numpy(outputs) else k)


class Huber(Loss):
    r"""Huber loss, as ``torch.nn.HuberLoss``: :math:`\tfrac12 d^2` for :math:`|d| \le \delta`, else
    :math:`\delta(|d| - \tfrac12\delta)`."""

    name = "huber"

    def __init__(self, delta: float = 1.0):
        super().__init__()
        self.delta = check_positive("delta", delta)

    def _forward(self, outputs, target):
        d = outputs - _as_target(target, outputs)
        xp = namespace(outputs)
        delta = outputs.dtype.type(self.delta) if is_numpy(outputs) else self.delta
        ad = xp.abs(d)
        small = ad <= delta
        per = xp.where(small, 0.5 * d * d, delta * (ad - 0.5 * delta))
        grad = xp.where(small, d, delta * xp.sign(d))
        k = outputs.shape[1]
        return xp.mean(per, axis=1), grad / (outputs.dtype.type(k) if is_numpy(outputs) else k)

    def get_config(self):
        return {"name": self.name, "delta": self.delta}


def _as_target(target, outputs):
    """``target`` reshaped to the outputs' shape, in their dtype."""
    xp = namespace(outputs, target)
    y = xp.reshape(target, outputs.shape)
    return y if y.dtype == outputs.dtype else xp.astype(y, outputs.dtype)


LOSSES = {"cross_entropy": CrossEntropy, "binary_cross_entropy": BinaryCrossEntropy, "mse": MSE,
          "mae": MAE, "huber": Huber}
_ALIASES = {"categorical_crossentropy": "cross_entropy", "ce": "cross_entropy", "bce": "binary_cross_entropy",
            "log_loss": "cross_entropy", "squared_error": "mse", "l1": "mae"}


def get_loss(loss) -> Loss:
    """Return a :class:`Loss` from an instance, a name or a config dict.

    Names: ``cross_entropy, binary_cross_entropy, mse, mae, huber`` (aliases ``ce``, ``bce``,
    ``squared_error``, ``l1``, ``log_loss``).
    """
    if isinstance(loss, Loss):
        return loss
    if isinstance(loss, dict):
        cfg = dict(loss)
        return LOSSES[check_choice("loss", cfg.pop("name"), LOSSES)](**cfg)
    if isinstance(loss, str) and loss.lower() in _ALIASES:
        loss = _ALIASES[loss.lower()]
    return LOSSES[check_choice("loss", loss, LOSSES)]()


def output_transform(name: str, outputs: np.ndarray) -> np.ndarray:
    """Apply a loss's output transform (``softmax``, ``sigmoid`` or ``identity``) to raw outputs."""
    if name == "softmax":
        return softmax(outputs)
    if name == "sigmoid":
        return sigmoid(outputs)
    return outputs
