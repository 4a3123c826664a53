"""Layers: each a ``forward(x, training)`` that caches what its backward needs, and a
``backward(grad_out)`` that returns ``grad_in`` and fills the layer's parameter gradients.

Layers **sum** over the batch: the batch mean is taken once, in the loss's backward
(:mod:`mlpnumpy.nn.losses`). No layer writes into the array it is given.

This is the reference path: each layer is its formulas in plain array operations, which is what the
seed's ``forward``/``backward`` run. The fast path (:mod:`mlpnumpy._kernels`) trains the same layers
with fused kernels and is tested equal to this one.
"""
from __future__ import annotations


import numpy as np

from .._array_api import device_of, dtype_name, is_numpy, namespace, uniform, xp_dtype
from .activations import Activation, get_activation
from ..errors import InvalidArgumentError, InvalidDataError, NotFittedError, check_dtype, check_in_range, check_positive
from .initializers import default_gain, get_initializer
from .parameter import Parameter

__all__ = ["Layer", "Dense", "ActivationLayer", "Dropout", "AlphaDropout", "BatchNorm1d", "LayerNorm",
           "layer_config", "layer_from_config", "LAYER_TYPES", "register_layer", "layer_types"]


class Layer:
    """Base class: no parameters, no buffers. Subclasses override what they use."""

    #: whether ``backward`` must compute the gradient with respect to the input; the model turns it
    #: off for the first layer, whose input is the data (one matrix multiply saved per step).
    needs_input_grad = True

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        raise NotImplementedError

    def backward(self, grad_out: np.ndarray) -> np.ndarray | None:
        raise NotImplementedError

    def __call__(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        return self.forward(x, training=training)

    def parameters(self) -> list[Parameter]:
        """Trainable parameters, in a fixed order."""
        return []

    def buffers(self) -> dict[str, np.ndarray]:
        """Non-trainable state saved with the model (batch-norm running statistics)."""
        return {}

    def named_arrays(self) -> dict[str, np.ndarray]:
        """Every parameter and buffer by its name in a model file (``W``, ``running_mean``); a container
        prefixes its layers' names with their index (``0.W``)."""
        return {**{p.name: p.data for p in self.parameters()}, **self.buffers()}

    @property
    def trainable(self) -> bool:
        """False when the layer is frozen: optimizers then leave its parameters as they are (its
        gradients still flow through it to the layers below). Saved with the model."""
        return getattr(self, "_trainable", True)

    @trainable.setter
    def trainable(self, value: bool) -> None:
        if not isinstance(value, (bool, np.bool_)):
            raise InvalidArgumentError(f"trainable={value!r} is not a bool; expected True or False")
        self._trainable = bool(value)
        for p in self.parameters():
            p.trainable = self._trainable

    def build(self, rng: np.random.Generator, dtype: np.dtype) -> None:
        """Give the layer the model's generator and dtype. Values already there (weights set by hand,
        a trained layer) are kept, cast when the dtype differs; layers that draw randomness keep ``rng``."""
        self.cast(dtype)

    def cast(self, dtype) -> None:
        """Convert every parameter and buffer to ``dtype`` (float32 or float64), keeping the values."""
        dtype = check_dtype(dtype)
        for p in self.parameters():
            if dtype_name(p.data.dtype) != dtype.name:
                if is_numpy(p.data):
                    p.data = p.data.astype(dtype)
                    p.grad = np.zeros_like(p.data)
                else:
                    xp = namespace(p.data)
                    p.data = xp.astype(p.data, xp_dtype(xp, dtype))
                    p.grad = xp.zeros_like(p.data)
        for name, b in self.buffers().items():
            if dtype_name(b.dtype) != dtype.name:
                setattr(self, name, b.astype(dtype) if is_numpy(b)
                        else namespace(b).astype(b, xp_dtype(namespace(b), dtype)))
        if hasattr(self, "dtype"):
            self.dtype = dtype

    def apply_arrays(self, fn) -> None:
        """Replace every parameter (and its gradient) and buffer by ``fn(array)``: how
        :meth:`~mlpnumpy.nn.model.Sequential.to` moves a layer to another array library or device."""
        for p in self.parameters():
            p.data = fn(p.data)
            p.grad = fn(p.grad)
        for name, b in self.buffers().items():
            setattr(self, name, fn(b))
        self._cache = None

    def output_features(self, in_features: int) -> int:
        return in_features

    def get_config(self) -> dict:
        """The constructor arguments that rebuild the layer (without its weights), with ``"type"``."""
        return {"type": type(self).__name__}

    @classmethod
    def from_config(cls, cfg: dict, dtype=np.float32) -> "Layer":
        """A layer of this class (weights not set) from ``get_config()`` without its ``"type"``."""
        return cls(**cfg)

    @classmethod
    def config_shapes(cls, cfg: dict, size, inner) -> dict[str, tuple]:
        """The name -> shape of every array a layer of config ``cfg`` holds (parameters, then buffers),
        from the config alone, so that files can be checked before any layer is built.

        ``size(value, what) -> int`` checks one size (``what`` names the config key); ``inner(j, cfg)``
        gives the shapes of a nested layer (a block's ``j``-th). A malformed config raises
        :class:`~mlpnumpy.errors.InvalidDataError` whose message follows the layer's name. Default:
        no arrays (activations, dropout).
        """
        return {}

    def clear_cache(self) -> None:
        """Drop the arrays cached for backward (to free memory after training)."""
        self._cache = None

    def last_input(self):
        """The input of the last training-mode forward pass, when the layer keeps it for backward
        (Dense does), else None: what tools that watch training (the internals tracker) read."""
        return None

    def __repr__(self) -> str:
        cfg = {k: v for k, v in self.get_config().items() if k != "type"}
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in cfg.items())})"


class Dense(Layer):
    r"""Fully connected layer, :math:`z = xW + b`, :math:`a = f(z)`.

    Parameters
    ----------
    in_features, out_features : int
        Sizes of the input and output; ``W`` has shape ``(in_features, out_features)``, ``b`` shape
        ``(out_features,)``.
    activation : str, Activation or None
        Applied to ``z``; ``None`` means the identity (the layer returns ``z``).
    init : str or callable
        Weight initialiser name (:mod:`mlpnumpy.nn.initializers`), ``"auto"`` (He for the ReLU family,
        Xavier otherwise), or a callable ``init(shape, fan_in, fan_out, rng, dtype, gain)``.
    rng : numpy.random.Generator, optional
        Draws the weights now; otherwise they are drawn when a model calls :meth:`build`.
    dtype : numpy dtype
        float32 (default) or float64.
    bias : bool
        Whether to learn ``b``; a layer followed by batch norm needs none (the norm removes it).

    Notes
    -----
    Backward, for an upstream gradient ``G = dL/da`` of shape ``(n, out)``:
    ``dz = G * f'(z)`` (from the cached output), ``dW = x.T @ dz`` (shape ``(in, out)``),
    ``db = dz.sum(0)``, ``dx = dz @ W.T`` (shape ``(n, in)``). The sums over the batch are sums: the
    mean was already taken by the loss.
    """

    def __init__(self, in_features: int, out_features: int, activation=None, init="auto", *,
                 rng: np.random.Generator | None = None, dtype=np.float32, bias: bool = True):
        check_positive("in_features", in_features, integer=True)
        check_positive("out_features", out_features, integer=True)
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.activation: Activation = get_activation(activation)
        self.init_fn, self.init_name = get_initializer(init, self.activation.name)
        self.dtype = check_dtype(dtype)
        self.use_bias = bool(bias)
        self.weight = Parameter(np.zeros((self.in_features, self.out_features), self.dtype), "W")
        self.bias = Parameter(np.zeros(self.out_features, self.dtype), "b") if self.use_bias else None
        self._cache = None
        self._built = False
        if rng is not None:
            self.build(rng, self.dtype)

    def build(self, rng, dtype):
        if self._built:  # weights set by hand or trained: keep them
            self.cast(dtype)
            return
        self.dtype = check_dtype(dtype)
        gain = default_gain(self.init_name, self.activation.name)
        W = self.init_fn((self.in_features, self.out_features), self.in_features, self.out_features,
                         rng, self.dtype, gain=gain)
        self.weight = Parameter(np.asarray(W, dtype=self.dtype), "W", self.trainable)
        self.bias = Parameter(np.zeros(self.out_features, self.dtype), "b", self.trainable) if self.use_bias else None
        self._built = True

    # The seed's names: layer.W, layer.b, layer.dW, layer.db.
    @property
    def W(self) -> np.ndarray:
        return self.weight.data

    @W.setter
    def W(self, value) -> None:
        self.weight.assign(value, "W")
        self._built = True  # a model must not redraw weights the user chose

    @property
    def b(self) -> np.ndarray | None:
        return None if self.bias is None else self.bias.data

    @b.setter
    def b(self, value) -> None:
        if self.bias is None:
            raise InvalidArgumentError("this Dense layer has bias=False; it has no b to set")
        value = np.asarray(value)
        if value.shape == (1, self.out_features):  # the seed kept b as a row
            value = value.reshape(-1)
        self.bias.assign(value, "b")

    @property
    def dW(self) -> np.ndarray:
        return self.weight.grad

    @property
    def db(self) -> np.ndarray | None:
        return None if self.bias is None else self.bias.grad

    def parameters(self):
        return [self.weight] if self.bias is None else [self.weight, self.bias]

    def output_features(self, in_features):
        return self.out_features

    def forward(self, x, training=False):
        """``a = f(x @ W + b)``: ``x`` (n, in) to ``a`` (n, out); caches ``x``, ``z`` and ``a``."""
        z = x @ self.weight.data
        if self.bias is not None:
            z = z + self.bias.data
        a = self.activation.forward(z)
        self._cache = (x, z, a)
        return a

    @classmethod
    def from_config(cls, cfg, dtype=np.float32):
        from .initializers import INITIALIZERS
        init = cfg.get("init", "auto")
        # the weights are loaded next, so an initialiser saved by name only matters for the record
        return cls(cfg["in_features"], cfg["out_features"], activation=cfg["activation"],
                   init=init if init in INITIALIZERS else "zeros", dtype=dtype, bias=cfg.get("bias", True))

    @classmethod
    def config_shapes(cls, cfg, size, inner):
        n_in, n_out = size(cfg.get("in_features"), "in_features"), size(cfg.get("out_features"), "out_features")
        return {"W": (n_in, n_out), **({"b": (n_out,)} if cfg.get("bias", True) else {})}

    def last_input(self):
        """``x`` (n, in) of the last forward pass, or None."""
        return None if self._cache is None else self._cache[0]

    def last_pre_activation(self):
        """``z = x @ W + b`` (n, out) of the last forward pass, or None (also when a fast path kept
        only the output)."""
        return None if self._cache is None else self._cache[1]

    def backward(self, grad_out):
        """``grad_out = dL/da`` (n, out) to ``dL/dx`` (n, in); fills ``dW`` (in, out) and ``db`` (out,)."""
        if self._cache is None:
            raise NotFittedError("Dense.backward called before forward; call forward(x) first")
        x, z, a = self._cache
        dz = self.activation.backward(grad_out, a, z)       # dL/dz = f'(z) * dL/da
        self.weight.grad = x.T @ dz                         # dL/dW, summed over the batch
        if self.bias is not None:
            self.bias.grad = namespace(dz).sum(dz, axis=0)  # dL/db
        if not self.needs_input_grad:
            return None
        return dz @ self.weight.data.T                      # dL/dx

    def __repr__(self):
        return (f"Dense({self.in_features}, {self.out_features}, activation={self.activation.name!r}, "
                f"init={self.init_name!r})")

    def get_config(self):
        return {"type": "Dense", "in_features": self.in_features, "out_features": self.out_features,
                "activation": self.activation.get_config(), "init": self.init_name, "bias": self.use_bias}


class ActivationLayer(Layer):
    """An activation as a layer of its own, for models built by hand with ``Sequential``."""

    def __init__(self, activation):
        self.activation = get_activation(activation)
        self._cache = None

    def forward(self, x, training=False):
        """``a = f(x)``, ``x`` and ``a`` of shape (n, k); caches ``a`` (and ``x`` when needed)."""
        a = self.activation.forward(x)
        self._cache = (x if self.activation.needs_input else None, a)
        return a

    def backward(self, grad_out):
        """``dL/da`` (n, k) to ``dL/dx = f'(x) * dL/da`` (n, k)."""
        z, a = self._cache
        return self.activation.backward(grad_out, a, z)

    def get_config(self):
        return {"type": "ActivationLayer", "activation": self.activation.get_config()}

    def __repr__(self):
        return f"ActivationLayer({self.activation.name!r})"


class Dropout(Layer):
    r"""Inverted dropout: in training, zero each unit with probability ``p`` and scale the rest by
    :math:`1/(1-p)`; in evaluation, the identity. The mask is drawn from the model's generator.

    Parameters
    ----------
    p : float
        Drop probability in [0, 1).
    """

    def __init__(self, p: float = 0.5, *, rng: np.random.Generator | None = None):
        self.p = check_in_range("p", p, 0.0, 1.0)
        self.rng = rng
        self._mask = None

    def build(self, rng, dtype):
        self.rng = rng

    def forward(self, x, training=False):
        """``x * mask / (1 - p)`` in training, ``x`` otherwise; ``x`` (n, k), the mask (n, k) cached."""
        if not training or self.p == 0.0:
            self._mask = None
            return x
        if self.rng is None:
            raise NotFittedError("Dropout has no generator; put it in a model or pass rng=")
        if not is_numpy(x):  # drawn on the device from a seed the model's generator draws
            xp = namespace(x)
            u = uniform(xp, x.shape, int(self.rng.integers(2**63)), device_of(x), x.dtype)
            self._mask = xp.astype(u >= self.p, x.dtype) * (1.0 / (1.0 - self.p))
            return x * self._mask
        keep = x.dtype.type(1.0 / (1.0 - self.p))
        self._mask = (self.rng.random(x.shape, dtype=x.dtype if x.dtype in (np.float32, np.float64)
                                      else np.float64) >= self.p) * keep
        self._mask = self._mask.astype(x.dtype, copy=False)
        return x * self._mask

    def backward(self, grad_out):
        """``dL/dy`` (n, k) to ``dL/dx = dL/dy * mask / (1 - p)`` (n, k): the kept units pass it on."""
        return grad_out if self._mask is None else grad_out * self._mask

    def get_config(self):
        return {"type": "Dropout", "p": self.p}


class BatchNorm1d(Layer):
    r"""Batch normalisation over features, as ``torch.nn.BatchNorm1d`` (Ioffe & Szegedy, 2015).

    Training: :math:`\hat x = (x - \mu_B)/\sqrt{\sigma_B^2 + \epsilon}`, :math:`y = \gamma \hat x + \beta`
    with the batch's biased variance; running statistics move by ``momentum`` toward the batch mean
    and the *unbiased* batch variance (torch's convention). Evaluation uses the running statistics.

    Parameters
    ----------
    num_features : int
    eps : float
    momentum : float
        Weight of the new batch in the running averages (torch's meaning, not Keras's).
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, *, dtype=np.float32):
        check_positive("num_features", num_features, integer=True)
        check_positive("eps", eps)
        self.momentum = check_in_range("momentum", momentum, 0.0, 1.0, high_open=False)
        self.num_features, self.eps = int(num_features), float(eps)
        self.dtype = check_dtype(dtype)
        n = self.num_features
        self.gamma = Parameter(np.ones(n, self.dtype), "gamma")
        self.beta = Parameter(np.zeros(n, self.dtype), "beta")
        self.running_mean = np.zeros(n, self.dtype)
        self.running_var = np.ones(n, self.dtype)
        self._cache = None

    def parameters(self):
        return [self.gamma, self.beta]

    def buffers(self):
        return {"running_mean": self.running_mean, "running_var": self.running_var}

    def forward(self, x, training=False):
        """``x`` (n, num_features) to ``gamma * x_hat + beta`` (n, num_features); caches ``x_hat`` and
        ``1/sqrt(var + eps)`` (num_features,)."""
        if training:
            xp = namespace(x)
            n = x.shape[0]
            mean = xp.mean(x, axis=0)
            xc = x - mean
            with np.errstate(over="ignore"):
                var = xp.mean(xc * xc, axis=0)
            if is_numpy(x) and not np.isfinite(var).all():
                # inputs near 1e30 overflow float32 squares: redo the statistics in float64
                x64 = x.astype(np.float64)
                xc64 = x64 - x64.mean(axis=0)
                var64 = np.mean(xc64 * xc64, axis=0)
                var = np.minimum(var64, np.finfo(x.dtype).max).astype(x.dtype)
                inv_std64 = 1.0 / np.sqrt(var64 + self.eps)
                inv_std = inv_std64.astype(x.dtype)
                xhat = (xc64 * inv_std64).astype(x.dtype)
            else:
                inv_std = 1.0 / xp.sqrt(var + self.eps)
                xhat = xc * inv_std
            self.update_running(mean, var, n)
            self._cache = (xhat, inv_std)
        else:
            xp = namespace(x)
            inv_std = 1.0 / xp.sqrt(self.running_var + self.eps)
            xhat = (x - self.running_mean) * inv_std
            self._cache = (xhat, inv_std, "eval")
        return xhat * self.gamma.data + self.beta.data

    def update_running(self, mean, var, n: int) -> None:
        """Move the running statistics toward a training batch's ``mean`` and biased ``var``
        (num_features,) of ``n`` rows: ``running = (1 - momentum) running + momentum batch``, with the
        unbiased variance ``var n / (n - 1)``, kept finite."""
        xp = namespace(mean)
        m = self.running_mean.dtype.type(self.momentum) if is_numpy(mean) else self.momentum
        self.running_mean *= 1 - m
        self.running_mean += m * mean
        self.running_var *= 1 - m
        # A batch of one has no unbiased variance; torch refuses it, we keep the biased one (0).
        new_var = self.running_var + m * var * (n / max(n - 1, 1))
        if is_numpy(mean):
            with np.errstate(over="ignore"):
                np.minimum(new_var, np.finfo(var.dtype).max, out=self.running_var)
        else:
            self.running_var[...] = xp.clip(new_var, max=float(xp.finfo(var.dtype).max))

    def backward(self, grad_out):
        """``dL/dy`` (n, num_features) to ``dL/dx`` (n, num_features); fills ``dgamma`` and ``dbeta``
        (num_features,)."""
        xhat, inv_std = self._cache[0], self._cache[1]
        xp = namespace(grad_out)
        self.gamma.grad = xp.sum(grad_out * xhat, axis=0)
        self.beta.grad = xp.sum(grad_out, axis=0)
        dxhat = grad_out * self.gamma.data
        if len(self._cache) == 3:  # evaluation mode: statistics are constants
            return dxhat * inv_std
        n = grad_out.shape[0]
        # d/dx of (x - mean)/std through the batch statistics (Ioffe & Szegedy 2015, section 3).
        return (inv_std / n) * (n * dxhat - xp.sum(dxhat, axis=0) - xhat * xp.sum(dxhat * xhat, axis=0))

    @classmethod
    def from_config(cls, cfg, dtype=np.float32):
        return cls(cfg["num_features"], cfg.get("eps", 1e-5), cfg.get("momentum", 0.1), dtype=dtype)

    @classmethod
    def config_shapes(cls, cfg, size, inner):
        n = size(cfg.get("num_features"), "num_features")
        return {k: (n,) for k in ("gamma", "beta", "running_mean", "running_var")}

    def get_config(self):
        return {"type": "BatchNorm1d", "num_features": self.num_features, "eps": self.eps,
                "momentum": self.momentum}


class AlphaDropout(Layer):
    r"""Alpha dropout for SELU networks (Klambauer et al. 2017), as ``torch.nn.AlphaDropout``: dropped
    units are set to SELU's negative saturation :math:`\alpha' = -\lambda\alpha`, then an affine map
    :math:`a x + b` restores mean 0 and variance 1, so self-normalisation survives; the identity in
    evaluation.

    .. math::

        y = a\,(m \odot x + \alpha'(1 - m)) + b, \quad m_i \sim \mathrm{Bernoulli}(1 - p), \quad
        a = ((1 - p)(1 + p\,\alpha'^2))^{-1/2}, \quad b = -a\,\alpha' p

    Backward: :math:`dL/dx = a\,m \odot dL/dy`.

    Parameters
    ----------
    p : float
        Drop probability in [0, 1).
    """

    ALPHA_PRIME = -1.7580993408473766  # -SELU.SCALE * SELU.ALPHA, as torch writes it

    def __init__(self, p: float = 0.5, *, rng: np.random.Generator | None = None):
        self.p = check_in_range("p", p, 0.0, 1.0)
        self.rng = rng
        self._scale = None

    def build(self, rng, dtype):
        self.rng = rng

    def affine(self) -> tuple[float, float]:
        """``(a, b)`` of the docstring for this ``p``."""
        p, ap = self.p, self.ALPHA_PRIME
        a = ((1 - p) * (1 + p * ap * ap)) ** -0.5
        return a, -a * ap * p

    def forward(self, x, training=False):
        if not training or self.p == 0.0:
            self._scale = None
            return x
        if self.rng is None:
            raise NotFittedError("AlphaDropout has no generator; put it in a model or pass rng=")
        a, b = self.affine()
        if not is_numpy(x):  # drawn on the device from a seed the model's generator draws
            xp = namespace(x)
            keep = uniform(xp, x.shape, int(self.rng.integers(2**63)), device_of(x), x.dtype) >= self.p
            self._scale = xp.astype(keep, x.dtype) * a
            return self._scale * x + xp.where(keep, xp.full_like(x, b), xp.full_like(x, a * self.ALPHA_PRIME + b))
        t = x.dtype.type
        keep = self.rng.random(x.shape, dtype=x.dtype) >= self.p
        self._scale = keep * t(a)                        # dy/dx: a where kept, 0 where dropped
        return self._scale * x + np.where(keep, t(b), t(a * self.ALPHA_PRIME + b))

    def backward(self, grad_out):
        return grad_out if self._scale is None else grad_out * self._scale

    def get_config(self):
        return {"type": "AlphaDropout", "p": self.p}


class LayerNorm(Layer):
    r"""Layer normalisation over the features of each row (Ba, Kiros & Hinton, 2016), as
    ``torch.nn.LayerNorm(num_features)``: the same in training and evaluation, whatever the batch.

    .. math::

        \mu = \tfrac1D \textstyle\sum_j x_j, \quad \sigma^2 = \tfrac1D \sum_j (x_j - \mu)^2, \quad
        \hat x = (x - \mu)/\sqrt{\sigma^2 + \epsilon}, \quad y = \gamma \odot \hat x + \beta

    Backward, per row, with :math:`g = \gamma \odot dL/dy`:
    :math:`dL/dx = \frac{1}{D\sqrt{\sigma^2+\epsilon}}(D g - \sum_j g_j - \hat x \sum_j g_j \hat x_j)`;
    :math:`dL/d\gamma = \sum_{\text{rows}} dL/dy \odot \hat x`, :math:`dL/d\beta = \sum_{\text{rows}} dL/dy`.

    Parameters
    ----------
    num_features : int
        ``D``, the width of the rows normalised.
    eps : float
        Added to the variance, > 0.
    elementwise_affine : bool
        Learn ``gamma`` and ``beta`` (True, as torch's default) or use 1 and 0.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, elementwise_affine: bool = True, *,
                 dtype=np.float32):
        check_positive("num_features", num_features, integer=True)
        check_positive("eps", eps)
        self.num_features, self.eps = int(num_features), float(eps)
        self.elementwise_affine = bool(elementwise_affine)
        self.dtype = check_dtype(dtype)
        n = self.num_features
        self.gamma = Parameter(np.ones(n, self.dtype), "gamma") if self.elementwise_affine else None
        self.beta = Parameter(np.zeros(n, self.dtype), "beta") if self.elementwise_affine else None
        self._cache = None

    def parameters(self):
        return [self.gamma, self.beta] if self.elementwise_affine else []

    def forward(self, x, training=False):
        """``x`` (n, D) to ``y`` (n, D); caches ``x_hat`` and ``1/sqrt(var + eps)`` (n, 1)."""
        xp = namespace(x)
        mean = xp.mean(x, axis=1, keepdims=True)
        xc = x - mean
        var = xp.mean(xc * xc, axis=1, keepdims=True)
        inv_std = 1 / xp.sqrt(var + self.eps)
        xhat = xc * inv_std
        self._cache = (xhat, inv_std)
        if not self.elementwise_affine:
            return xhat
        return xhat * self.gamma.data + self.beta.data

    def backward(self, grad_out):
        if self._cache is None:
            raise NotFittedError("LayerNorm.backward called before forward; call forward(x) first")
        xhat, inv_std = self._cache
        xp = namespace(grad_out)
        if self.elementwise_affine:
            self.gamma.grad = xp.sum(grad_out * xhat, axis=0)
            self.beta.grad = xp.sum(grad_out, axis=0)
            g = grad_out * self.gamma.data
        else:
            g = grad_out
        D = g.shape[1]
        return (inv_std / D) * (D * g - xp.sum(g, axis=1, keepdims=True)
                                - xhat * xp.sum(g * xhat, axis=1, keepdims=True))

    @classmethod
    def from_config(cls, cfg, dtype=np.float32):
        return cls(**cfg, dtype=dtype)

    @classmethod
    def config_shapes(cls, cfg, size, inner):
        n = size(cfg.get("num_features"), "num_features")
        return {k: (n,) for k in ("gamma", "beta")} if cfg.get("elementwise_affine", True) else {}

    def get_config(self):
        return {"type": "LayerNorm", "num_features": self.num_features, "eps": self.eps,
                "elementwise_affine": self.elementwise_affine}




LAYER_TYPES: dict[str, type[Layer]] = {}
"""Every layer class files can hold, by the ``"type"`` of its config: io, exporters and
:func:`layer_from_config` ask the class (``from_config``, ``config_shapes``) instead of keeping tables."""


def register_layer(cls: type[Layer]) -> type[Layer]:
    """Make a layer class known by its name to model files and :func:`layer_from_config` (a decorator)."""
    LAYER_TYPES[cls.__name__] = cls
    return cls


for _cls in (Dense, ActivationLayer, Dropout, BatchNorm1d, AlphaDropout, LayerNorm):
    register_layer(_cls)


def layer_config(layer: Layer) -> dict:
    """``layer.get_config()``, with ``"trainable": False`` when the layer is frozen (so files keep it)."""
    cfg = layer.get_config()
    if not layer.trainable:
        cfg["trainable"] = False
    return cfg


def layer_types() -> dict[str, type[Layer]]:
    """:data:`LAYER_TYPES`: every layer class of the package (``mlpnumpy/__init__`` loads the modules
    that register theirs, blocks and embedding, so this module needs not import them)."""
    return LAYER_TYPES


def layer_from_config(cfg: dict, dtype=np.float32) -> Layer:
    """Rebuild a layer (without its weights) from :func:`layer_config` / :meth:`Layer.get_config`."""
    layer_types()
    cfg = dict(cfg)
    trainable = cfg.pop("trainable", True)
    if not isinstance(trainable, bool):
        raise InvalidDataError(f"layer config trainable={trainable!r} is not true or false")
    layer = _layer_from_config(cfg, dtype)
    if not trainable:
        layer.trainable = False
    return layer


def _layer_from_config(cfg: dict, dtype) -> Layer:
    kind = cfg.pop("type", None)
    if not isinstance(kind, str) or kind not in LAYER_TYPES:
        raise InvalidDataError(f"layer type {kind!r} is not one of: {', '.join(LAYER_TYPES)}")
    return LAYER_TYPES[kind].from_config(cfg, dtype)
