"""Gradient checking: compare a backward pass with central finite differences in float64.

For each entry :math:`\\theta_i`, the numerical derivative is the fourth-order central difference
:math:`(-L(\\theta_i + 2h) + 8L(\\theta_i + h) - 8L(\\theta_i - h) + L(\\theta_i - 2h)) / 12h`
(truncation error :math:`O(h^4)`, so ``h = 1e-4`` leaves only float64 round-off, about
:math:`10^{-12}`). Each array's error is the norm-wise relative error
:math:`\\lVert g - \\hat g \\rVert / (\\lVert g \\rVert + \\lVert \\hat g \\rVert)` (the usual
criterion: below :math:`10^{-7}` the backward pass is right); an element-wise ratio would be dominated
by round-off on entries that are nearly zero. The check runs on float64 copies, since
float32 cannot resolve such small differences.

**Kinks.** ReLU, leaky ReLU, SELU (and ELU with ``alpha != 1``) have no derivative at 0, the hard
sigmoid none at -3 and 3, MAE none where the output equals the target. When a probe ``theta +- 2h`` moves a pre-activation across such a point (it
sat within the step of it), the finite difference mixes the two one-sided slopes and is no derivative:
a correct backward pass then "fails". The check watches every kinked pre-activation during every probe,
counts the entries whose stencil crossed a kink (:attr:`GradcheckResult.kink_entries`), reports the
error without them (:attr:`GradcheckResult.errors_away_from_kinks`) and says so when printed. An
activation of your own declares its non-differentiable points with a ``kinks`` attribute (a tuple).
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import numpy as np

from .._array_api import check_float_dtype, copy_array, device_of, is_array, is_numpy, namespace, to_host
from ..errors import InvalidArgumentError
from .activations import ELU, LeakyReLU, ReLU
from .layers import ActivationLayer, Dense, Layer
from .losses import MAE, Loss, get_loss

__all__ = ["GradcheckResult", "gradcheck", "check_layer", "check_loss", "check_model", "relative_error"]


def relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """Norm-wise :math:`\\lVert a - n \\rVert / (\\lVert a \\rVert + \\lVert n \\rVert)`; 0 when both are 0."""
    denom = np.linalg.norm(analytic) + np.linalg.norm(numeric)
    return float(np.linalg.norm(analytic - numeric) / denom) if denom > 0 else 0.0


@dataclass
class GradcheckResult:
    """Worst relative error overall, and per checked array (``"x"``, ``"0.W"``, ...); ``worst_index``
    is the entry of the worst array with the largest absolute difference.

    ``kink_entries`` counts, per array, the entries whose finite-difference stencil moved a
    pre-activation across a non-differentiable point (their numerical "derivative" is meaningless);
    ``errors_away_from_kinks`` is each array's error with those entries left out.
    """

    max_error: float
    worst: str
    worst_index: tuple
    errors: dict[str, float] = field(default_factory=dict)
    kink_entries: dict[str, int] = field(default_factory=dict)
    errors_away_from_kinks: dict[str, float] = field(default_factory=dict)

    @property
    def hit_kinks(self) -> bool:
        """True when some probe crossed a kink."""
        return any(self.kink_entries.values())

    @property
    def max_error_away_from_kinks(self) -> float:
        """The worst error over the entries whose stencil stayed on one side of every kink."""
        return max(self.errors_away_from_kinks.values(), default=self.max_error)

    def passed(self, tol: float = 1e-7, *, ignore_kinks: bool = False) -> bool:
        """``max_error < tol``; with ``ignore_kinks``, the error away from kinks instead."""
        return (self.max_error_away_from_kinks if ignore_kinks else self.max_error) < tol

    def __str__(self):
        lines = [f"{name:>12}: relative error {err:.3e}" for name, err in self.errors.items()]
        lines.append(f"worst: {self.worst}{list(self.worst_index)} = {self.max_error:.3e}")
        if self.hit_kinks:
            where = ", ".join(f"{k} entries of {name}" if k > 1 else f"1 entry of {name}"
                              for name, k in self.kink_entries.items() if k)
            lines.append(f"kink: the step moved a pre-activation across a non-differentiable point "
                         f"({where}): it sits within the step size of the kink, so the finite difference "
                         f"there is not a derivative. Away from kinks the worst error is "
                         f"{self.max_error_away_from_kinks:.3e}. Check at another point (other inputs or "
                         f"weights), away from the kink.")
        return "\n".join(lines)


def _kinks(activation) -> tuple:
    """The points where ``activation`` has no derivative (empty for smooth ones)."""
    declared = getattr(activation, "kinks", None)
    if declared is not None:
        return tuple(declared)
    if isinstance(activation, LeakyReLU):
        return () if activation.negative_slope == 1.0 else (0.0,)
    if isinstance(activation, ELU):
        return () if activation.alpha == 1.0 else (0.0,)
    if isinstance(activation, ReLU):
        return (0.0,)
    # by name: slopes lambda and lambda*alpha meet at 0; the hard sigmoid's linear piece ends at -3 and 3
    return {"selu": (0.0,), "hard_sigmoid": (-3.0, 3.0)}.get(getattr(activation, "name", None), ())


class _KinkWatch:
    """Remembers on which side of each kink every watched pre-activation lies at the unperturbed
    point, and notes when a probe puts one on another side."""

    def __init__(self):
        self.base, self.crossed = None, False

    def see(self, pre_activations: list[tuple[np.ndarray, tuple]]) -> None:
        sides = [np.sign(to_host(z) - k) for z, kinks in pre_activations for k in kinks]
        if self.base is None:
            self.base = sides
        elif any(not np.array_equal(a, b) for a, b in zip(self.base, sides)):
            self.crossed = True


def _layer_pre_activations(layer, x) -> list:
    """``[(pre-activation, kinks)]`` of a Dense or ActivationLayer with a kinked activation."""
    if isinstance(layer, Dense) and _kinks(layer.activation):
        z = x @ layer.W + (0 if layer.b is None else layer.b)
        return [(z, _kinks(layer.activation))]
    if isinstance(layer, ActivationLayer) and _kinks(layer.activation):
        return [(x, _kinks(layer.activation))]
    return []


def _numeric_grad(f, arr: np.ndarray, h: float, watch: _KinkWatch | None = None):
    """The fourth-order numerical gradient of ``f`` w.r.t. ``arr``, and a boolean mask of the
    entries whose probes crossed a kink (all False without a ``watch``)."""
    g = np.zeros(tuple(arr.shape))  # on the host, whatever library arr belongs to
    kinked = np.zeros(tuple(arr.shape), dtype=bool)
    for i in np.ndindex(*arr.shape):
        g[i], kinked[i] = _stencil(f, arr, i, h, watch)
    return g, kinked


def _stencil(f, arr: np.ndarray, i, h: float, watch: _KinkWatch | None = None) -> tuple[float, bool]:
    old = float(arr[i])  # a number, not a view: torch's arr[i] would follow the probes
    vals = []
    if watch is not None:
        watch.crossed = False
    for step in (2, 1, -1, -2):
        arr[i] = old + step * h
        vals.append(f())
    arr[i] = old
    # differences first: exactly 0 when L does not depend on the entry
    return (8 * (vals[1] - vals[2]) - (vals[0] - vals[3])) / (12 * h), bool(watch is not None and watch.crossed)


def _collect(results: dict[str, tuple]) -> GradcheckResult:
    """``results`` maps a name to ``(analytic, numeric)`` or ``(analytic, numeric, kinked mask)``."""
    errors, worst, kinks, away = {}, ("", (), -1.0), {}, {}
    for name, (a, n, *rest) in results.items():
        errors[name] = e = relative_error(a, n)
        if a.size and e > worst[2]:
            diff = np.abs(a - n)
            worst = (name, tuple(int(v) for v in np.unravel_index(np.argmax(diff), diff.shape)), e)
        mask = rest[0] if rest else np.zeros(np.shape(a), dtype=bool)
        kinks[name] = int(mask.sum())
        away[name] = relative_error(a[~mask], n[~mask]) if kinks[name] else e
    return GradcheckResult(worst[2], worst[0], worst[1], errors, kinks, away)


def _f64(a):
    """A float64 copy of ``a``, in its own array library and on its own device (NumPy for array-likes).

    Raises :class:`~mlpnumpy.errors.DataTypeError` on a device without float64: finite differences
    need it (check on the host instead, after ``model.to("numpy")``).
    """
    if not is_array(a) or is_numpy(a):
        return np.array(a, dtype=np.float64)
    xp = namespace(a)
    check_float_dtype(xp, device_of(a), "float64", arg="gradcheck's dtype", fix="finite differences need float64: check on a device that has it, or on the host after model.to('numpy')")
    return xp.astype(a, xp.float64)


def _like(host: np.ndarray, a):
    """``host`` on ``a``'s library and device."""
    if is_numpy(a):
        return host
    return namespace(a).asarray(host, device=device_of(a))


def _to64(obj):
    """A float64 deep copy of a layer or model (parameters, buffers and caches)."""
    obj = copy.deepcopy(obj)
    from .model import Sequential
    layers = obj.layers if isinstance(obj, Sequential) else [obj]
    for p in [p for layer in layers for p in layer.parameters()][:1]:
        if not is_numpy(p.data):
            check_float_dtype(namespace(p.data), device_of(p.data), "float64",
                              arg="gradcheck's dtype", fix="finite differences need float64: check on a device that has it, or on the host after model.to('numpy')")
    for layer in layers:
        layer.cast(np.float64)
    if isinstance(obj, Sequential):
        obj.dtype = np.dtype(np.float64)
    return obj


def _param_names(layer: Layer) -> list[str]:
    """Each parameter's name in the layer's :meth:`~Layer.named_arrays` (``W``; ``0.W`` inside a
    Residual block), so that no two results share a key."""
    by_array = {id(a): k for k, a in layer.named_arrays().items()}
    return [by_array.get(id(p.data), p.name) for p in layer.parameters()]


def check_layer(layer: Layer, x: np.ndarray, *, training: bool = True, h: float = 1e-4,
                seed: int = 0, grad_out: np.ndarray | None = None) -> GradcheckResult:
    """Check a layer's ``dx`` and parameter gradients against finite differences of
    ``L = sum(grad_out * layer.forward(x))`` for a fixed random ``grad_out``.

    Layers that draw randomness (dropout) must be given a fixed mask: they are re-seeded before
    each forward pass with ``seed``.
    """
    layer = _to64(layer)
    x = _f64(x)
    rng = np.random.default_rng(seed)
    reseed = hasattr(layer, "rng") and layer.rng is not None

    def fwd():
        if reseed:
            layer.rng = np.random.default_rng(seed)
        return layer.forward(x, training=training)

    out = fwd()
    G = rng.standard_normal(tuple(out.shape)) if grad_out is None else np.asarray(to_host(grad_out), np.float64)
    G = _like(G, x)
    # The batch statistics of BatchNorm move when x moves; a forward per probe keeps them consistent.
    dx = to_host(layer.backward(copy_array(G)))
    results = {"x": (dx, None)}
    names = _param_names(layer)
    analytic = {names[i]: np.array(to_host(p.grad)) for i, p in enumerate(layer.parameters())}

    watch = _KinkWatch()

    def f():
        out = fwd()
        watch.see(_layer_pre_activations(layer, x))
        return float(namespace(out).sum(G * out))
    f()  # the unperturbed point: where each pre-activation lies relative to its kinks
    results["x"] = (dx, *_numeric_grad(f, x, h, watch))
    for i, p in enumerate(layer.parameters()):
        results[names[i]] = (analytic[names[i]], *_numeric_grad(f, p.data, h, watch))
    return _collect(results)


def check_loss(loss, outputs: np.ndarray, target: np.ndarray, *, sample_weight=None,
               h: float = 1e-4) -> GradcheckResult:
    """Check a loss's ``backward`` (the mean over the batch included) against finite differences."""
    loss = get_loss(loss) if not isinstance(loss, Loss) else copy.deepcopy(loss)
    z = _f64(outputs)
    t = target if is_array(target) and not is_numpy(target) else np.asarray(target)
    t = _f64(t) if namespace(t).isdtype(t.dtype, "real floating") else t
    loss.forward(z, t, sample_weight)
    g = np.array(to_host(loss.backward()))
    watch = _KinkWatch() if isinstance(loss, MAE) else None  # |z - t| has no derivative at z = t

    def f():
        if watch is not None:
            watch.see([(z - namespace(t).reshape(t, z.shape), (0.0,))])
        return loss.forward(z, t, sample_weight)
    f()
    return _collect({"outputs": (g, *_numeric_grad(f, z, h, watch))})


def check_model(model, X: np.ndarray, y: np.ndarray, *, h: float = 1e-4, training: bool = False,
                max_entries: int | None = None, seed: int = 0) -> GradcheckResult:
    """Check every parameter gradient of a model (and ``dX``) through its loss.

    ``training=True`` checks the training-mode graph (batch statistics; dropout re-seeded so the
    mask is fixed). ``max_entries`` checks only that many randomly chosen entries per array, for
    big models.
    """
    model = _to64(model)
    model.check_placement(X)
    X = _f64(X)
    y = y if is_array(y) and not is_numpy(y) else np.asarray(y)
    y = _f64(y) if namespace(y).isdtype(y.dtype, "real floating") else y
    has_rng = any(hasattr(l, "rng") for l in model.layers)

    watched = [i for i, l in enumerate(model.layers)
               if isinstance(l, (Dense, ActivationLayer)) and _kinks(l.activation)]
    watch = _KinkWatch() if watched else None

    def L():
        if has_rng:
            for l in model.layers:
                if hasattr(l, "rng"):
                    l.rng = np.random.default_rng(seed)
        if watch is None:
            return model.loss.forward(model.forward(X, training=training), y)
        out, hidden = model.forward(X, training=training, return_hidden=True)
        watch.see([(hidden[i]["z"] if "z" in hidden[i] else hidden[i]["x"], _kinks(model.layers[i].activation))
                   for i in watched])
        return model.loss.forward(out, y)

    L()
    dX = np.array(to_host(model.backward(model.loss.backward(), return_input_grad=True)))
    results = {}
    pick = np.random.default_rng(seed)

    def numeric(arr):
        if max_entries is None or math.prod(arr.shape) <= max_entries:
            return None, *_numeric_grad(L, arr, h, watch)
        flat = pick.choice(math.prod(arr.shape), max_entries, replace=False)
        size = math.prod(arr.shape)
        out = np.full(size, np.nan)
        kinked = np.zeros(size, dtype=bool)
        for j in flat:  # probed through its index in arr (a device array's reshape may be a copy)
            out[j], kinked[j] = _stencil(L, arr, np.unravel_index(j, tuple(arr.shape)), h, watch)
        return flat, out.reshape(tuple(arr.shape)), kinked.reshape(tuple(arr.shape))

    def entry(g, idx, n, kinked):
        if idx is None:
            return g, n, kinked
        return g.reshape(-1)[idx], n.reshape(-1)[idx], kinked.reshape(-1)[idx]

    analytic = [(f"{i}.{name}", np.array(to_host(p.grad)), p) for i, l in enumerate(model.layers)
                for name, p in zip(_param_names(l), l.parameters())]
    for name, g, p in analytic:
        results[name] = entry(g, *numeric(p.data))
    codes = getattr(model.layers[0], "columns", None) if type(model.layers[0]).__name__ == "Embedding" else None
    if codes:  # an Embedding's categorical columns are codes, not differentiable: check the others
        idx = np.flatnonzero(~np.isin(np.arange(math.prod(X.shape)) % X.shape[1], codes))
        probes = [_stencil(L, X, np.unravel_index(j, tuple(X.shape)), h, watch) for j in idx]
        results["X"] = (dX.reshape(-1)[idx], np.array([v for v, _ in probes]), np.array([k for _, k in probes]))
    else:
        results["X"] = entry(dX, *numeric(X))
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
