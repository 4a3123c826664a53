"""Decision boundaries of 2-input classifiers: the class a model predicts at every point of a grid
over the data, once (:func:`decision_grid`) or every few epochs while it trains
(:class:`BoundarySnapshots`). :mod:`mlpnumpy.plots` draws them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..training.callbacks import Callback
from ..errors import InvalidArgumentError, check_positive

__all__ = ["BoundaryGrid", "grid_for", "decision_grid", "BoundarySnapshots", "log_epochs"]


def log_epochs(epochs: int, n: int = 8) -> list[int]:
    """About ``n`` epochs from 1 to ``epochs``, spaced evenly on a log scale (always 1 and ``epochs``)."""
    check_positive("epochs", epochs, integer=True)
    return sorted({int(round(e)) for e in np.geomspace(1, epochs, n)})


@dataclass
class BoundaryGrid:
    """The plane a boundary is drawn on and the model's answers on it.

    Attributes
    ----------
    xx, yy : ndarray of shape (resolution, resolution)
        Grid coordinates (``np.meshgrid`` of the two axes).
    classes : ndarray of shape (resolution, resolution), int64
        The predicted class at each grid point.
    confidence : ndarray of shape (resolution, resolution)
        The predicted class's probability there (1/K on a boundary between K classes, 1 far from it).
    """

    xx: np.ndarray
    yy: np.ndarray
    classes: np.ndarray
    confidence: np.ndarray


def grid_for(X, resolution: int = 200, margin: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """A ``resolution`` x ``resolution`` grid covering the rows of ``X`` (n, 2), widened on each side
    by ``margin`` times the data's extent; returns ``(xx, yy)``."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != 2 or X.shape[0] == 0:
        raise InvalidArgumentError(f"X has shape {X.shape}; expected (n, 2) points, n >= 1")
    check_positive("resolution", resolution, integer=True)
    check_positive("margin", margin, allow_zero=True)
    lo, hi = X.min(axis=0), X.max(axis=0)
    pad = np.maximum(hi - lo, 1e-3) * margin + (hi == lo)  # a flat axis still gets some width
    xs = np.linspace(lo[0] - pad[0], hi[0] + pad[0], resolution)
    ys = np.linspace(lo[1] - pad[1], hi[1] + pad[1], resolution)
    return np.meshgrid(xs, ys)


def decision_grid(model, X, resolution: int = 200, margin: float = 0.1) -> BoundaryGrid:
    """The class ``model`` predicts at every point of :func:`grid_for` ``(X, resolution, margin)``.

    Parameters
    ----------
    model : Sequential
        A classifier with 2 inputs: cross-entropy (softmax, K outputs) or binary cross-entropy with one
        output (class 1 where the sigmoid exceeds 1/2). Its preprocessing is applied, as in ``predict``.
    X : array of shape (n, 2)
        The points the grid must cover (usually the training data).

    Raises
    ------
    InvalidArgumentError
        The model does not take 2 inputs, or is not a classifier.
    """
    if model.n_features_in != 2:
        raise InvalidArgumentError(f"model takes {model.n_features_in} inputs; a decision boundary is drawn "
                                   "for models with 2 inputs")
    if type(model.layers[0]).__name__ == "Embedding":
        raise InvalidArgumentError("model's first layer is an Embedding: its inputs hold category codes, not a "
                                   "plane a decision boundary can be drawn on")
    kind = model.loss.output_transform
    if not (kind == "softmax" or (kind == "sigmoid" and model.n_outputs == 1)):
        raise InvalidArgumentError(f"model has loss {model.loss.name!r} with {model.n_outputs} output(s); a "
                                   "decision boundary needs a classifier (cross_entropy, or "
                                   "binary_cross_entropy with one output)")
    xx, yy = grid_for(X, resolution, margin)
    P = model.predict_proba(np.column_stack([xx.ravel(), yy.ravel()]).astype(model.dtype))
    if kind == "sigmoid":
        P = np.column_stack([1 - P[:, 0], P[:, 0]])
    classes = P.argmax(axis=1)
    return BoundaryGrid(xx, yy, classes.reshape(xx.shape), P.max(axis=1).reshape(xx.shape))


class BoundarySnapshots(Callback):
    """Records the decision boundary every ``every`` epochs (and after the last one), to show how it
    forms: ``plots.plot_boundary_grid(snapshots, X, y, path)`` draws them side by side.

    Parameters
    ----------
    X : array of shape (n, 2)
        Points the grid covers (the training data).
    every : int or sequence of int
        Epochs between snapshots (epoch 1 is always recorded), or the epochs to record, e.g.
        :func:`log_epochs` ``(100)`` = 1, 2, 4, 7, 14, 27, 52, 100 (the boundary changes most early on).
    resolution : int
        Grid points per axis (100 keeps each snapshot cheap: 10,000 predictions).

    Attributes
    ----------
    snapshots : list of (epoch, BoundaryGrid)
        Epochs count from 1, as in every figure.
    """

    def __init__(self, X, every: int = 10, resolution: int = 100, margin: float = 0.1):
        self.X = np.asarray(X)
        grid_for(self.X, resolution, margin)  # checks X, resolution and margin now
        if isinstance(every, (list, tuple, np.ndarray)):
            self.at = {check_positive("every[i]", int(e), integer=True) for e in every}
            self.every = None
        else:
            self.every = check_positive("every", every, integer=True)
            self.at = set()
        self.resolution, self.margin = resolution, margin
        self.snapshots: list[tuple[int, BoundaryGrid]] = []
        self.model = None

    def on_train_begin(self, logs=None):
        self.snapshots = []
        self._last = None

    def on_epoch_end(self, epoch, logs=None):
        n = self.model.epochs_trained  # counts on across fits, from 1
        self._last = n
        if n in self.at or (self.every is not None and (n == 1 or n % self.every == 0)):
            self._take(n)

    def on_train_end(self, logs=None):
        if self._last is not None and (not self.snapshots or self.snapshots[-1][0] != self._last):
            self._take(self._last)

    def _take(self, epoch: int) -> None:
        self.snapshots.append((epoch, decision_grid(self.model, self.X, self.resolution, self.margin)))
