"""Metrics computed from raw outputs and targets: accuracy, confusion matrix, per-class precision and
recall for classification; MSE, MAE and R² for regression."""
from __future__ import annotations

import numpy as np

__all__ = ["accuracy", "confusion_matrix", "precision_recall", "r2_score", "mean_squared_error",
           "mean_absolute_error", "compute"]


def _labels(y: np.ndarray) -> np.ndarray:
    return np.argmax(y, axis=1) if y.ndim == 2 else y


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Fraction of equal labels; ``y_true`` may be one-hot ``(n, K)`` or labels ``(n,)``."""
    return float(np.mean(_labels(np.asarray(y_true)) == np.asarray(y_pred)))


def confusion_matrix(y_true, y_pred, n_classes: int) -> np.ndarray:
    """``C[i, j]`` = number of samples of true class ``i`` predicted as ``j``; shape ``(K, K)``."""
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (_labels(np.asarray(y_true)), np.asarray(y_pred)), 1)
    return cm


def precision_recall(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-class precision ``C[i,i]/sum_j C[j,i]`` and recall ``C[i,i]/sum_j C[i,j]`` (0 when undefined)."""
    tp = np.diag(cm).astype(np.float64)
    pred, true = cm.sum(axis=0), cm.sum(axis=1)
    precision = np.divide(tp, pred, out=np.zeros_like(tp), where=pred > 0)
    recall = np.divide(tp, true, out=np.zeros_like(tp), where=true > 0)
    return precision, recall


def mean_squared_error(y_true, y_pred) -> float:
    d = np.asarray(y_pred, np.float64) - np.asarray(y_true, np.float64).reshape(np.shape(y_pred))
    return float(np.mean(d * d))


def mean_absolute_error(y_true, y_pred) -> float:
    d = np.asarray(y_pred, np.float64) - np.asarray(y_true, np.float64).reshape(np.shape(y_pred))
    return float(np.mean(np.abs(d)))


def r2_score(y_true, y_pred) -> float:
    """Coefficient of determination, averaged uniformly over outputs (scikit-learn's default)."""
    yt = np.asarray(y_true, np.float64).reshape(np.shape(y_pred))
    yp = np.asarray(y_pred, np.float64)
    if yt.ndim == 1:
        yt, yp = yt[:, None], yp[:, None]
    return r2_from_sums(np.sum((yt - yp) ** 2, axis=0), np.sum((yt - yt.mean(axis=0)) ** 2, axis=0))


def r2_from_sums(ss_res: np.ndarray, ss_tot: np.ndarray) -> float:
    """R² per output from residual and total sums of squares, averaged; a constant target scores 1
    when predicted exactly and 0 otherwise (scikit-learn's convention)."""
    ss_res, ss_tot = np.atleast_1d(ss_res), np.atleast_1d(ss_tot)
    r2 = np.where(ss_tot > 0, 1 - ss_res / np.where(ss_tot > 0, ss_tot, 1), np.where(ss_res == 0, 1.0, 0.0))
    return float(np.mean(r2))


def compute(loss_name: str, outputs: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """The metrics that fit a loss: accuracy for classification (element-wise for multi-label),
    MSE and R² for regression."""
    from .._array_api import is_numpy
    if not is_numpy(outputs):
        return _compute_xp(loss_name, outputs, y)
    if loss_name == "cross_entropy":
        return {"accuracy": accuracy(y, np.argmax(outputs, axis=1))}
    if loss_name == "binary_cross_entropy":
        return {"accuracy": float(np.mean((outputs > 0) == (y.reshape(outputs.shape) > 0.5)))}
    return {"mse": mean_squared_error(y, outputs), "r2": r2_score(y, outputs)}


def _compute_xp(loss_name: str, outputs, y) -> dict[str, float]:
    """:func:`compute` for arrays of any Array API library, on their device: only the numbers come back."""
    from .._array_api import namespace, to_host
    xp = namespace(outputs, y)
    n = outputs.shape[0]
    if loss_name == "cross_entropy":
        labels = xp.argmax(y, axis=1) if y.ndim == 2 else y
        hits = xp.astype(xp.argmax(outputs, axis=1) == labels, xp.int64)
        return {"accuracy": int(xp.sum(hits)) / n}
    if loss_name == "binary_cross_entropy":
        hits = xp.astype((outputs > 0) == (xp.reshape(y, outputs.shape) > 0.5), xp.int64)
        return {"accuracy": int(xp.sum(hits)) / (n * outputs.shape[1])}
    yt = xp.reshape(y, outputs.shape)
    d = outputs - yt
    sse = to_host(xp.sum(d * d, axis=0)).astype(np.float64)
    dm = yt - xp.mean(yt, axis=0)
    sst = to_host(xp.sum(dm * dm, axis=0)).astype(np.float64)
    return {"mse": float(np.sum(sse)) / (n * outputs.shape[1]), "r2": r2_from_sums(sse, sst)}
