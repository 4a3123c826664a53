"""Figures of a training run written straight to PNG files: learning curves, weight histograms, the
confusion matrix, misclassified images, the seed's figure, and decision boundaries of 2-input models.

matplotlib is optional (``pip install 'mlpnumpy[plot]'``); it is imported on first use with the Agg
backend, so no window ever opens, and every figure is closed once saved.
"""
from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from ..io._atomic import atomic_write
from ..errors import InvalidArgumentError, require

__all__ = ["save_figure", "plot_history", "plot_weight_histograms", "plot_confusion_matrix",
           "plot_misclassified",
           "plot_seed_figure", "plot_decision_boundary", "plot_boundary_grid"]

DPI = 100


def _subplots(*args, figsize, layout=None, **kwargs):
    """A figure and its axes, drawn by the Agg canvas without pyplot: no global backend switch, no
    window, nothing left open (a notebook's or GUI's own backend is untouched).

    ``layout="constrained"`` lets matplotlib make room for titles at draw time (needed where axes
    keep a fixed aspect, as images do); otherwise :func:`save_figure` applies ``tight_layout``."""
    require("matplotlib", "plot", "Plotting")
    from matplotlib.figure import Figure
    fig = Figure(figsize=figsize, layout=layout)
    return fig, fig.subplots(*args, **kwargs)


def _integer_epochs(ax) -> None:
    """Ticks on whole epochs only (a 3-epoch run would otherwise get ticks at 0.5, 1.5, ...; a
    1-epoch run, at 0.95, 0.96, ...: ``min_n_ticks=1`` keeps the integer rule for it too)."""
    from matplotlib.ticker import MaxNLocator
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))


def save_figure(fig, path, dpi: int = DPI) -> str:
    """Write ``fig`` as a PNG, atomically (a temporary file renamed into place)."""
    path = os.fspath(path)
    from matplotlib.layout_engine import ConstrainedLayoutEngine
    if not isinstance(fig.get_layout_engine(), ConstrainedLayoutEngine):  # that one lays out at draw
        fig.tight_layout()
    with atomic_write(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=dpi)
    return path


def _history_dict(history) -> dict:
    h = getattr(history, "history", history)
    if not isinstance(h, dict):
        raise InvalidArgumentError("history must be a History or a dict of per-epoch lists like "
                                   "{'loss': [...], 'val_loss': [...]}")
    return h


def plot_history(history, path) -> str:
    """Loss and accuracy per epoch, training and validation, side by side; returns ``path``.

    Parameters
    ----------
    history : History or dict
        Per-epoch lists under ``loss``, ``accuracy``, ``val_loss``, ``val_accuracy`` (any subset).
    path : str or path-like
        PNG file, 1100x400 pixels.
    """
    h = _history_dict(history)
    fig, axes = _subplots(1, 2, figsize=(11, 4))
    for ax, metric in zip(axes, ("loss", "accuracy")):
        for key, label in ((metric, "train"), ("val_" + metric, "validation")):
            values = h.get(key)
            if values:
                ax.plot(np.arange(1, len(values) + 1), values, marker="o", markersize=3, label=label)
        ax.set_xlabel("epoch")
        _integer_epochs(ax)
        ax.set_ylabel(metric)
        ax.set_title(metric.capitalize())
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    return save_figure(fig, path)


def plot_weight_histograms(model, path, bins: int = 50) -> str:
    """A histogram of the weights ``W`` of every Dense layer, one panel each; returns ``path``."""
    from ..nn.layers import Dense
    dense = [(i, l) for i, l in enumerate(model.layers) if isinstance(l, Dense)]
    if not dense:
        raise InvalidArgumentError("model has no Dense layer; there are no weights to plot")
    n = len(dense)
    fig, axes = _subplots(1, n, figsize=(3.6 * n + 0.4, 3.2), squeeze=False)
    for ax, (i, layer) in zip(axes[0], dense):
        ax.hist(layer.W.ravel(), bins=bins, alpha=0.8)
        ax.set_title(f"layer {i}: Dense {layer.in_features}x{layer.out_features}", fontsize=9)
        ax.set_xlabel("weight")
        ax.grid(True, alpha=0.3)
    axes[0][0].set_ylabel("count")
    return save_figure(fig, path)


def plot_confusion_matrix(cm, class_names: Sequence[str] | None, path) -> str:
    """The confusion matrix ``cm[i, j]`` (true ``i``, predicted ``j``) as a heat map with counts."""
    cm = np.asarray(cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise InvalidArgumentError(f"cm has shape {cm.shape}; expected a square (K, K) matrix")
    k = cm.shape[0]
    names = [str(c) for c in class_names] if class_names is not None else [str(i) for i in range(k)]
    if len(names) != k:
        raise InvalidArgumentError(f"class_names has {len(names)} names; cm has {k} classes")
    side = max(4.0, 0.55 * k + 2.5)
    fig, ax = _subplots(figsize=(side, side))
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(k))
    ax.set_yticks(range(k))
    ax.set_xticklabels(names, rotation=45, ha="right", fontsize=8)
    ax.set_yticklabels(names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("Confusion matrix")
    if k <= 30:
        threshold = cm.max() / 2 if cm.size else 0
        for i in range(k):
            for j in range(k):
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if cm[i, j] > threshold else "black")
    return save_figure(fig, path)


def plot_misclassified(X, y_true, y_pred, class_names: Sequence[str] | None, image_shape, path,
                       max_images: int = 25) -> str:
    """A grid of up to ``max_images`` misclassified images titled ``true / predicted``.

    Parameters
    ----------
    X : array, shape (n, prod(image_shape)) or (n, *image_shape)
    y_true, y_pred : arrays of shape (n,)
    image_shape : (height, width)
    """
    X = np.asarray(X)
    y_true, y_pred = np.asarray(y_true).ravel(), np.asarray(y_pred).ravel()
    if image_shape is None or len(image_shape) != 2:
        raise InvalidArgumentError(f"image_shape={image_shape!r} is not (height, width)")
    h, w = (int(v) for v in image_shape)
    if X.shape[0] != y_true.shape[0] or y_true.shape != y_pred.shape or X[0].size != h * w:
        raise InvalidArgumentError(f"X {X.shape}, y_true {y_true.shape} and y_pred {y_pred.shape} do not "
                                   f"match each other and image_shape {image_shape}")
    wrong = np.flatnonzero(y_true != y_pred)[:max_images]

    def name(c):
        return class_names[int(c)] if class_names is not None and 0 <= int(c) < len(class_names) else str(c)

    cols = max(1, min(5, len(wrong)))
    rows = max(1, -(-len(wrong) // cols))
    # constrained layout: tight_layout cannot see that the square images leave their cells' height
    # unused, and put each row's titles over the images of the row above
    fig, axes = _subplots(rows, cols, figsize=(max(2.0 * cols, 3.2), 2.2 * rows + 0.3), squeeze=False,
                          layout="constrained")
    for ax in axes.ravel():
        ax.axis("off")
    for ax, i in zip(axes.ravel(), wrong):
        ax.imshow(X[i].reshape(h, w), cmap="gray")  # bright strokes on a dark ground, as stored
        ax.set_title(f"{name(y_true[i])} / {name(y_pred[i])}", fontsize=8)
    if len(wrong) == 0:
        axes[0][0].text(0.5, 0.5, "no misclassified images", ha="center", va="center")
    fig.suptitle("Misclassified (true / predicted)", fontsize=10)
    return save_figure(fig, path)


def plot_seed_figure(losses, first_layer_W, path) -> str:
    """The seed's figure: the training-loss curve and the first layer's weight histogram, 1800x600
    (the seed's 12x4 inches at 150 dpi). ``losses[i]`` is epoch ``i + 1``'s loss, so epochs count
    from 1 as in every other figure (the seed's own plot counted from 0)."""
    fig, axes = _subplots(1, 2, figsize=(12, 4))
    losses = list(losses)
    axes[0].plot(np.arange(1, len(losses) + 1), losses)
    axes[0].set_xlabel("Epoch")
    _integer_epochs(axes[0])
    axes[0].set_ylabel("Loss")
    axes[0].set_title("Training Loss")
    axes[0].grid(True)
    axes[1].hist(np.asarray(first_layer_W).ravel(), bins=50, alpha=0.7)
    axes[1].set_xlabel("Weight Value")
    axes[1].set_ylabel("Frequency")
    axes[1].set_title("First Layer Weight Distribution")
    axes[1].grid(True)
    return save_figure(fig, path, dpi=150)


def _draw_boundary(ax, grid, X, y, n_classes: int, class_names=None, legend: bool = True) -> None:
    """Filled class regions of ``grid`` (a :class:`~mlpnumpy.plots.boundary.BoundaryGrid`), paler where the
    model is less sure, and the points ``X`` coloured by their true class ``y`` on top."""
    from matplotlib.colors import to_rgba
    colors = [to_rgba(f"C{k % 10}") for k in range(n_classes)]
    # each grid cell gets its class's colour, mixed with white by how unsure the model is there
    rgb = np.array([c[:3] for c in colors])[grid.classes]
    floor = 1.0 / n_classes
    sure = np.clip((grid.confidence - floor) / (1 - floor), 0, 1)[..., None]
    img = 1 - (0.25 + 0.35 * sure) * (1 - rgb)
    extent = (grid.xx[0, 0], grid.xx[0, -1], grid.yy[0, 0], grid.yy[-1, 0])
    ax.imshow(img, origin="lower", extent=extent, aspect="auto", interpolation="nearest")
    if n_classes > 1:  # the boundary itself: where the predicted class changes
        ax.contour(grid.xx, grid.yy, grid.classes, levels=np.arange(n_classes - 1) + 0.5, colors="k",
                   linewidths=0.8)
    y = np.asarray(y).ravel()
    for k in range(n_classes):
        pts = X[y == k]
        name = class_names[k] if class_names is not None else str(k)
        ax.scatter(pts[:, 0], pts[:, 1], s=10, color=colors[k], edgecolors="k", linewidths=0.3, label=name)
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    if legend:
        ax.legend(fontsize=7, loc="upper right", markerscale=1.5, framealpha=0.8)


def _check_points(X, y) -> tuple[np.ndarray, np.ndarray]:
    X, y = np.asarray(X), np.asarray(y).ravel()
    if X.ndim != 2 or X.shape[1] != 2 or X.shape[0] != y.shape[0]:
        raise InvalidArgumentError(f"X {X.shape} and y {y.shape} are not (n, 2) points with n labels")
    return X, y


def plot_decision_boundary(model, X, y, path, *, class_names: Sequence[str] | None = None,
                           resolution: int = 200, title: str | None = None) -> str:
    """The classes a 2-input classifier predicts over the plane (filled regions, paler where it is
    unsure, the boundary drawn in black) with the points ``X`` (n, 2) coloured by their labels ``y``
    on top; returns ``path`` (PNG, 600x560 pixels).

    See :func:`mlpnumpy.plots.boundary.decision_grid` for the models accepted.
    """
    from .boundary import decision_grid
    X, y = _check_points(X, y)
    grid = decision_grid(model, X, resolution)
    k = max(model.n_outputs if model.loss.output_transform == "softmax" else 2, int(y.max(initial=0)) + 1)
    names = list(class_names) if class_names is not None else getattr(model, "class_names", None)
    fig, ax = _subplots(figsize=(6, 5.6))
    _draw_boundary(ax, grid, X, y, k, names)
    acc = float(np.mean(model.predict(X.astype(model.dtype)).reshape(-1) == y))
    ax.set_title(title or f"Decision boundary (accuracy on these points {acc:.3f})", fontsize=10)
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")
    return save_figure(fig, path)


def plot_boundary_grid(snapshots, X, y, path, *, class_names: Sequence[str] | None = None,
                       cols: int = 4) -> str:
    """Decision boundaries over training, one panel per snapshot of a
    :class:`~mlpnumpy.plots.boundary.BoundarySnapshots` (or a list of ``(epoch, BoundaryGrid)``; a text in
    place of the epoch is the panel's title, to compare models), the points on each; returns ``path``."""
    snaps = list(getattr(snapshots, "snapshots", snapshots))
    if not snaps:
        raise InvalidArgumentError("snapshots is empty; train with a BoundarySnapshots callback first")
    X, y = _check_points(X, y)
    k = max(int(max(int(g.classes.max()) for _, g in snaps)) + 1, int(y.max(initial=0)) + 1)
    cols = max(1, min(cols, len(snaps)))
    rows = -(-len(snaps) // cols)
    fig, axes = _subplots(rows, cols, figsize=(3.0 * cols, 2.9 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for i, (ax, (epoch, grid)) in enumerate(zip(axes.ravel(), snaps)):
        ax.axis("on")
        _draw_boundary(ax, grid, X, y, k, class_names, legend=i == 0)
        ax.set_title(epoch if isinstance(epoch, str) else f"epoch {epoch}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    return save_figure(fig, path)
