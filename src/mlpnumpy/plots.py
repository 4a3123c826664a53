"""Figures of a training run written straight to PNG files: learning curves, weight histograms, the
confusion matrix, misclassified images and the seed's figure.

matplotlib is optional (``pip install 'mlpnumpy[plot]'``); it is imported on first use with the Agg
backend, so no window ever opens, and every figure is closed once saved.
"""
from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from ._atomic import atomic_write
from .errors import InvalidArgumentError, require

__all__ = ["plot_history", "plot_weight_histograms", "plot_confusion_matrix", "plot_misclassified",
           "plot_seed_figure"]

DPI = 100


def _subplots(*args, figsize, layout=None, **kwargs):
    """A figure and its axes, drawn by the Agg canvas without pyplot: no global backend switch, no
    window, nothing left open (a notebook's or GUI's own backend is untouched).

    ``layout="constrained"`` lets matplotlib make room for titles at draw time (needed where axes
    keep a fixed aspect, as images do); otherwise :func:`_save` applies ``tight_layout``."""
    require("matplotlib", "plot", "Plotting")
    from matplotlib.figure import Figure
    fig = Figure(figsize=figsize, layout=layout)
    return fig, fig.subplots(*args, **kwargs)


def _integer_epochs(ax) -> None:
    """Ticks on whole epochs only (a 3-epoch run would otherwise get ticks at 0.5, 1.5, ...; a
    1-epoch run, at 0.95, 0.96, ...: ``min_n_ticks=1`` keeps the integer rule for it too)."""
    from matplotlib.ticker import MaxNLocator
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))


def _save(fig, path, dpi: int = DPI) -> str:
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
    return _save(fig, path)


def plot_weight_histograms(model, path, bins: int = 50) -> str:
    """A histogram of the weights ``W`` of every Dense layer, one panel each; returns ``path``."""
    from .layers import Dense
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
    return _save(fig, path)


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
    return _save(fig, path)


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
    return _save(fig, path)


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
    return _save(fig, path, dpi=150)
