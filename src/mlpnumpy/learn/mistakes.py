"""The catalogue of common backprop mistakes, and :func:`diagnose`, which recognises one from a wrong
gradient and says what it is in words.

Generic mistakes are recognised from the numbers alone (a gradient exactly ``n`` times too small, the
negative of the right one, the transpose of it); exercise-specific ones (a missing ReLU mask, ``z``
where the cached output was meant) from the wrong formulas each exercise lists. Every entry is
planted in a solution and caught by ``tests/test_learn.py``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Mistake", "CATALOGUE", "diagnose", "close"]


@dataclass(frozen=True)
class Mistake:
    """One catalogued mistake: a stable ``id``, a short ``title`` and an explanation template."""

    id: str
    title: str
    explain: str


CATALOGUE: dict[str, Mistake] = {m.id: m for m in (
    Mistake("batch_mean_twice", "the batch mean taken twice",
            "d{q} is exactly {n}x too small, and n = {n} is the batch size: the mean over the batch was taken "
            "twice. It belongs in one place only, the loss's backward (the 1/n); layers sum over the batch "
            "(.sum(axis=0), not .mean)."),
    Mistake("batch_mean_missing", "the batch mean left out",
            "d{q} is exactly {n}x too large, and n = {n} is the batch size: the loss is a mean over the "
            "batch, so its gradient carries a 1/n."),
    Mistake("transposed_product", "a transposed product",
            "d{q} has shape {got_shape} but {q} has shape {want_shape}: a transposed product. A gradient has "
            "the shape of what it differentiates; swap the factors and transpose them so the product sums "
            "over the batch axis and leaves {want_shape} (for a weight: inputs.T @ upstream)."),
    Mistake("missing_relu_mask", "a missing ReLU mask",
            "d{q} is right where the unit was active and wrong where it was off: the ReLU mask is missing. "
            "Where a <= 0 a small change of z changes nothing, so the gradient must be 0 there: "
            "multiply by (a > 0)."),
    Mistake("z_for_output", "z used where the cached output was meant",
            "d{q} matches the right formula with the forward's input put where its cached output belongs "
            "(z for a, x for xhat, the logits for the probabilities). Read the derivative from the output "
            "the forward pass cached."),
    Mistake("sign_error", "a sign error",
            "d{q} is exactly the negative of the right gradient: a sign error. Check the minus signs in the "
            "line that computes d{q} (and, for an update, that it moves against the gradient)."),
    Mistake("dropout_scale_missing", "the dropout scale left out",
            "d{q} is right up to the factor 1/(1 - p): backward must scale by the same 1/(1 - p) as forward "
            "(inverted dropout)."),
)}


def close(got: np.ndarray, want: np.ndarray, tol: float = 1e-6) -> bool:
    """Whether ``got`` matches ``want`` within ``tol * (1 + max|want|)`` everywhere (float64 finite
    differences are good to about 1e-9 here, so this leaves room for round-off and nothing else)."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    if got.shape != want.shape:
        return False
    scale = 1.0 + (float(np.max(np.abs(want))) if want.size else 0.0)
    return bool(np.all(np.abs(got - want) <= tol * scale))


def _nonzero(want: np.ndarray) -> bool:
    return want.size > 0 and float(np.max(np.abs(want))) > 1e-6


def diagnose(q: str, got: np.ndarray, want: np.ndarray, *, n: int,
             wrong_formulas: dict[str, np.ndarray] | None = None) -> tuple[str, str] | None:
    """Recognise a catalogued mistake in the gradient ``got`` of quantity ``q`` (``want`` is right).

    Parameters
    ----------
    q : str
        The quantity's name (``"W"`` for ``dW``).
    got, want : ndarray
        The learner's gradient and the right one (float64 finite differences).
    n : int
        The batch size (rows of the exercise's batch).
    wrong_formulas : dict, optional
        ``{mistake id: the gradient that mistake gives}`` for the exercise-specific mistakes.

    Returns
    -------
    (id, message) or None
    """
    got = np.asarray(got, np.float64)
    want = np.asarray(want, np.float64)
    fmt = {"q": q, "n": n, "got_shape": tuple(got.shape), "want_shape": tuple(want.shape)}
    if got.shape != want.shape:
        if got.ndim == 2 and got.shape[::-1] == want.shape:
            return "transposed_product", CATALOGUE["transposed_product"].explain.format(**fmt)
        return None
    if not _nonzero(want) and not wrong_formulas:
        return None
    for mid, value in (wrong_formulas or {}).items():
        value = np.asarray(value, np.float64)
        if value.shape == want.shape and not close(value, want) and close(got, value):
            return mid, CATALOGUE[mid].explain.format(**fmt)
    if not _nonzero(want):
        return None
    if close(got, -want):
        return "sign_error", CATALOGUE["sign_error"].explain.format(**fmt)
    if n > 1 and close(got * n, want):
        return "batch_mean_twice", CATALOGUE["batch_mean_twice"].explain.format(**fmt)
    if n > 1 and close(got, want * n):
        return "batch_mean_missing", CATALOGUE["batch_mean_missing"].explain.format(**fmt)
    if got.ndim == 2 and got.shape[0] == got.shape[1] and close(got.T, want):
        return "transposed_product", CATALOGUE["transposed_product"].explain.format(**fmt)
    return None
