"""Gradient checking: compare a backward pass with central finite differences in float64.

For each entry :math:`\\theta_i`, the numerical derivative is the fourth-order central difference
:math:`(-L(\\theta_i + 2h) + 8L(\\theta_i + h) - 8L(\\theta_i - h) + L(\\theta_i - 2h)) / 12h`
(truncation error :math:`O(h^4)`, so ``h = 1e-4`` leaves only float64 round-off, about
:math:`10^{-12}`). Each array's error is the norm-wise relative error
:math:`\\lVert g - \\hat g \\rVert / (\\lVert g \\rVert + \\lVert \\hat g \\rVert)` (the usual
criterion: below :math:`10^{-7}` the backward pass is right); an element-wise ratio would be dominated
by round-off on entries that are nearly zero. The check runs on float64 copies, since
float32 cannot resolve such small differences.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np

from .errors import InvalidArgumentError
from .layers import Layer
from .losses import Loss, get_loss

__all__ = ["GradcheckResult", "gradcheck", "check_layer", "check_loss", "check_model", "relative_error"]


def relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """Norm-wise :math:`\\lVert a - n \\rVert / (\\lVert a \\rVert + \\lVert n \\rVert)`; 0 when both are 0."""
    denom = np.linalg.norm(analytic) + np.linalg.norm(numeric)
    return float(np.linalg.norm(analytic - numeric) / denom) if denom > 0 else 0.0


@dataclass
class GradcheckResult:
    """Worst relative error overall, and per checked array (``"x"``, ``"0.W"``, ...); ``worst_index``
    is the entry of the worst array with the largest absolute difference."""

    max_error: float
    worst: str
    worst_index: tuple
    errors: dict[str, float] = field(default_factory=dict)

    def passed(self, tol: float = 1e-7) -> bool:
        return self.max_error < tol

    def __str__(self):
        lines = [f"{name:>12}: relative error {err:.3e}" for name, err in self.errors.items()]
        lines.append(f"worst: {self.worst}{list(self.worst_index)} = {self.max_error:.3e}")
        return "\n".join(lines)


def _numeric_grad(f, arr: np.ndarray, h: float) -> np.ndarray:
    g = np.zeros_like(arr)
    it = np.nditer(arr, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        g[i] = _stencil(f, arr, i, h)
    return g


def _stencil(f, arr: np.ndarray, i, h: float) -> float:
    old = arr[i]
    vals = []
    for step in (2, 1, -1, -2):
        arr[i] = old + step * h
        vals.append(f())
    arr[i] = old
    # differences first: exactly 0 when L does not depend on the entry
    return (8 * (vals[1] - vals[2]) - (vals[0] - vals[3])) / (12 * h)


def _collect(results: dict[str, tuple[np.ndarray, np.ndarray]]) -> GradcheckResult:
    errors, worst = {}, ("", (), -1.0)
    for name, (a, n) in results.items():
        errors[name] = e = relative_error(a, n)
        if a.size and e > worst[2]:
            diff = np.abs(a - n)
            worst = (name, tuple(int(v) for v in np.unravel_index(np.argmax(diff), diff.shape)), e)
    return GradcheckResult(worst[2], worst[0], worst[1], errors)


def _to64(obj):
    """A float64 deep copy of a layer or model (parameters, buffers and caches)."""
    obj = copy.deepcopy(obj)
    from .model import Sequential
    layers = obj.layers if isinstance(obj, Sequential) else [obj]
    for layer in layers:
        layer.cast(np.float64)
    if isinstance(obj, Sequential):
        obj.dtype = np.dtype(np.float64)
    return obj


def check_layer(layer: Layer, x: np.ndarray, *, training: bool = True, h: float = 1e-4,
                seed: int = 0, grad_out: np.ndarray | None = None) -> GradcheckResult:
    """Check a layer's ``dx`` and parameter gradients against finite differences of
    ``L = sum(grad_out * layer.forward(x))`` for a fixed random ``grad_out``.

    Layers that draw randomness (dropout) must be given a fixed mask: they are re-seeded before
    each forward pass with ``seed``.
    """
    layer = _to64(layer)
    x = np.array(x, dtype=np.float64)
    rng = np.random.default_rng(seed)
    reseed = hasattr(layer, "rng") and layer.rng is not None

    def fwd():
        if reseed:
            layer.rng = np.random.default_rng(seed)
        return layer.forward(x, training=training)

    out = fwd()
    G = rng.standard_normal(out.shape) if grad_out is None else np.asarray(grad_out, np.float64)
    # The batch statistics of BatchNorm move when x moves; a forward per probe keeps them consistent.
    dx = layer.backward(G.copy())
    results = {"x": (dx, None)}
    analytic = {p.name: p.grad.copy() for p in layer.parameters()}

    def f():
        return float(np.sum(G * fwd()))
    results["x"] = (dx, _numeric_grad(f, x, h))
    for p in layer.parameters():
        results[p.name] = (analytic[p.name], _numeric_grad(f, p.data, h))
    return _collect(results)


def check_loss(loss, outputs: np.ndarray, target: np.ndarray, *, sample_weight=None,
               h: float = 1e-4) -> GradcheckResult:
    """Check a loss's ``backward`` (the mean over the batch included) against finite differences."""
    loss = get_loss(loss) if not isinstance(loss, Loss) else copy.deepcopy(loss)
    z = np.array(outputs, dtype=np.float64)
    t = np.asarray(target)
    t = t.astype(np.float64) if t.dtype.kind == "f" else t
    loss.forward(z, t, sample_weight)
    g = loss.backward().copy()
    return _collect({"outputs": (g, _numeric_grad(lambda: loss.forward(z, t, sample_weight), z, h))})


def check_model(model, X: np.ndarray, y: np.ndarray, *, h: float = 1e-4, training: bool = False,
                max_entries: int | None = None, seed: int = 0) -> GradcheckResult:
    """Check every parameter gradient of a model (and ``dX``) through its loss.

    ``training=True`` checks the training-mode graph (batch statistics; dropout re-seeded so the
    mask is fixed). ``max_entries`` checks only that many randomly chosen entries per array, for
    big models.
    """
    model = _to64(model)
    X = np.array(X, dtype=np.float64)
    y = np.asarray(y)
    y = y.astype(np.float64) if y.dtype.kind == "f" else y
    has_rng = any(hasattr(l, "rng") for l in model.layers)

    def L():
        if has_rng:
            for l in model.layers:
                if hasattr(l, "rng"):
                    l.rng = np.random.default_rng(seed)
        return model.loss.forward(model.forward(X, training=training), y)

    L()
    dX = model.backward(model.loss.backward(), return_input_grad=True)
    results = {}
    pick = np.random.default_rng(seed)

    def numeric(arr):
        if max_entries is None or arr.size <= max_entries:
            return None, _numeric_grad(L, arr, h)
        flat = pick.choice(arr.size, max_entries, replace=False)
        out = np.full(arr.size, np.nan)
        view = arr.reshape(-1)
        for j in flat:
            out[j] = _stencil(L, view, j, h)
        return flat, out.reshape(arr.shape)

    analytic = [(f"{i}.{p.name}", p.grad.copy(), p) for i, l in enumerate(model.layers) for p in l.parameters()]
    for name, g, p in analytic:
        idx, n = numeric(p.data)
        results[name] = (g, n) if idx is None else (g.reshape(-1)[idx], n.reshape(-1)[idx])
    idx, n = numeric(X)
    results["X"] = (dX, n) if idx is None else (dX.reshape(-1)[idx], n.reshape(-1)[idx])
    return _collect(results)


def gradcheck(obj, *args, **kwargs) -> GradcheckResult:
    """Dispatch: ``gradcheck(layer, x)``, ``gradcheck(loss, outputs, target)``, ``gradcheck(model, X, y)``."""
    from .model import Sequential
    if isinstance(obj, Sequential):
        return check_model(obj, *args, **kwargs)
    if isinstance(obj, Layer):
        return check_layer(obj, *args, **kwargs)
    if isinstance(obj, (Loss, str)):
        return check_loss(obj, *args, **kwargs)
    raise InvalidArgumentError(f"gradcheck got {type(obj).__name__}; expected a model, a layer or a loss")
