"""Random train/held-out splits, stratified by class: the validation split of ``fit`` and the CLI,
and the fixed test split of the embedded digits."""
from __future__ import annotations

import numpy as np

from ..errors import InvalidArgumentError

__all__ = ["held_out_size", "train_val_split"]


def _labels(y: np.ndarray) -> np.ndarray:
    return np.argmax(y, axis=1) if y.ndim == 2 else y


def _per_class_counts(labels: np.ndarray, fraction: float) -> list[tuple[int, int]]:
    """``(class, rows held out)`` per class: ``round(fraction * n_c)``, keeping one row to train on."""
    classes, counts = np.unique(labels, return_counts=True)
    return [(c, min(int(round(fraction * n)), n - 1)) for c, n in zip(classes, counts)]


def held_out_size(y: np.ndarray, fraction: float, stratify: bool) -> int:
    """How many rows :func:`train_val_split` holds out; it depends on ``y`` and ``fraction`` only, so
    a caller can size things (a schedule's steps) before any random draw."""
    n = y.shape[0]
    if not stratify:
        return min(max(1, int(round(fraction * n))), n - 1)
    return sum(k for _, k in _per_class_counts(_labels(y), fraction))


def train_val_split(y: np.ndarray, fraction: float, rng: np.random.Generator, stratify: bool):
    """Sorted indices ``(train, held_out)``: a random ``fraction`` of the rows, drawn from ``rng``.

    With ``stratify`` each class keeps its share (``round(fraction * n_c)`` rows, and at least one
    row to train on). Raises :class:`~mlpnumpy.errors.InvalidArgumentError` when the split would
    leave either side empty.
    """
    n = y.shape[0]
    if n < 2:
        raise InvalidArgumentError(f"holding out fraction={fraction} of the rows needs at least 2 rows; got {n}")
    if not stratify:
        perm = rng.permutation(n)
        k = held_out_size(y, fraction, stratify=False)
        return np.sort(perm[k:]), np.sort(perm[:k])
    labels = _labels(y)
    held = []
    for c, k in _per_class_counts(labels, fraction):
        idx = np.flatnonzero(labels == c)
        held.append(idx[rng.permutation(idx.size)][:k])
    held = np.sort(np.concatenate(held))
    if held.size == 0:
        raise InvalidArgumentError(f"holding out fraction={fraction} of {n} rows leaves no held-out rows (every "
                                   "class keeps at least one row to train on); expected more rows, or a larger fraction")
    mask = np.ones(n, bool)
    mask[held] = False
    return np.flatnonzero(mask), held
