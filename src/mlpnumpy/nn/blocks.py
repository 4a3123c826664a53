"""Residual blocks: ``y = x + f(x)``, a stack of layers with a skip connection around it, usable as one
layer of a :class:`~mlpnumpy.nn.model.Sequential` (He et al., "Deep Residual Learning", 2016).

The block is the one layer that is not purely sequential: its input reaches the output by two paths,
so its backward pass adds the two gradients.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import InvalidArgumentError, InvalidDataError, check_dtype
from .layers import Layer, layer_config, layer_from_config, register_layer

__all__ = ["Residual"]


def _width_in(layer: Layer) -> int | None:
    return getattr(layer, "in_features", None) or getattr(layer, "num_features", None)


class Residual(Layer):
    r"""``y = x + f(x)`` where ``f`` runs ``layers`` in order; ``f`` must keep the width.

    Backward: with :math:`G = dL/dy`, :math:`dL/dx = G + J_f^\top G` -- the identity path's gradient
    plus the one back through ``f`` (the chain rule summed over the two paths); the layers inside fill
    their own parameter gradients as usual.

    Parameters
    ----------
    layers : sequence of Layer (or their configs)
        ``f``, e.g. ``[Dense(64, 64, "relu"), Dense(64, 64)]``.

    Examples
    --------
    >>> Sequential([Dense(2, 64, "relu"), Residual([Dense(64, 64, "relu")]), Dense(64, 3)])  # doctest: +SKIP
    """

    def __init__(self, layers: Sequence[Layer], *, dtype=np.float32):
        self.dtype = check_dtype(dtype)
        built = [layer_from_config(l, self.dtype) if isinstance(l, dict) else l for l in layers]
        if not built:
            raise InvalidArgumentError("layers is empty; a Residual block needs at least one layer in f(x)")
        for l in built:
            if not isinstance(l, Layer):
                raise InvalidArgumentError(f"layers holds {type(l).__name__}; expected mlpnumpy Layer objects")
        self.layers: list[Layer] = built
        width = next((w for w in map(_width_in, built) if w is not None), None)
        if width is not None:
            out = width
            for l in built:
                out = l.output_features(out)
            if out != width:
                raise InvalidArgumentError(f"layers map width {width} to {out}; a Residual block's f(x) must keep "
                                           f"the width (x + f(x) adds them), e.g. Dense({width}, {width})")
        self.width = width

    # ---------------------------------------------------------------- structure
    def parameters(self):
        return [p for l in self.layers for p in l.parameters()]

    def buffers(self):
        return {f"{j}.{k}": v for j, l in enumerate(self.layers) for k, v in l.buffers().items()}

    def named_arrays(self):
        return {f"{j}.{k}": v for j, l in enumerate(self.layers) for k, v in l.named_arrays().items()}

    def build(self, rng, dtype):
        self.dtype = check_dtype(dtype)
        for l in self.layers:
            l.build(rng, dtype)
        if not self.trainable:  # layers drawn just now get the block's flag
            self.trainable = False

    def cast(self, dtype):
        self.dtype = check_dtype(dtype)
        for l in self.layers:
            l.cast(dtype)

    def clear_cache(self):
        for l in self.layers:
            l.clear_cache()

    def apply_arrays(self, fn):
        """Each inner layer's arrays replaced by ``fn(array)`` (see :meth:`Layer.apply_arrays`)."""
        for l in self.layers:
            l.apply_arrays(fn)

    def output_features(self, in_features):
        return in_features

    # ---------------------------------------------------------------- passes
    def forward(self, x, training=False):
        """``x`` (n, d) to ``x + f(x)`` (n, d)."""
        h = x
        for l in self.layers:
            h = l.forward(h, training=training)
        return x + h

    def backward(self, grad_out):
        """``dL/dy`` (n, d) to ``dL/dx = dL/dy + (df/dx)^T dL/dy`` (n, d)."""
        first = self.layers[0]
        first.needs_input_grad = self.needs_input_grad
        try:
            g = grad_out
            for l in reversed(self.layers):
                g = l.backward(g)
        finally:
            first.needs_input_grad = True
        if not self.needs_input_grad:
            return None
        return grad_out + g  # the skip path's gradient plus f's

    # ---------------------------------------------------------------- description
    def get_config(self):
        return {"type": "Residual", "layers": [layer_config(l) for l in self.layers]}

    @classmethod
    def from_config(cls, cfg, dtype=np.float32):
        return cls(**cfg, dtype=dtype)

    @classmethod
    def config_shapes(cls, cfg, size, inner):
        layers = cfg.get("layers")
        if not isinstance(layers, list) or not layers:
            raise InvalidDataError("(Residual) has no list of layers (or nests too deep)")
        return {f"{j}.{k}": shape for j, c in enumerate(layers) for k, shape in inner(j, c).items()}

    def __repr__(self):
        return f"Residual([{', '.join(repr(l) for l in self.layers)}])"


register_layer(Residual)
