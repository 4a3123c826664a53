"""Small 2-D toy problems for learning what a network does: spiral, moons, circles, XOR, and a 1-D
sine regression. Seeded, any size, no download; each point is a row ``(x1, x2)`` you can plot.

``load("spiral")`` (and ``mlpnumpy train --data spiral``) uses :func:`make_toy_train_test`, which
draws the train and test sets from two independent streams spawned from one seed.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InvalidArgumentError, check_choice, check_positive
from .synthetic import _generator

__all__ = ["make_spiral", "make_moons", "make_circles", "make_xor", "make_sine", "make_toy_train_test",
           "TOY_DATASETS"]


def _check(n_samples: int, noise: float, dtype) -> np.dtype:
    check_positive("n_samples", n_samples, integer=True, allow_zero=True)
    check_positive("noise", noise, allow_zero=True)
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise InvalidArgumentError(f"dtype={dtype} is not a floating dtype; expected float32 or float64")
    return dtype


def _balanced_labels(n_samples: int, n_classes: int, rng: np.random.Generator) -> np.ndarray:
    """``n_samples`` labels as equal as can be (the first ``n % K`` classes get one more), shuffled."""
    y = np.arange(n_samples, dtype=np.int64) % n_classes
    rng.shuffle(y)
    return y


def make_spiral(n_samples: int = 300, n_classes: int = 3, noise: float = 0.2, seed: Any = None, *,
                turns: float = 1.0, dtype: Any = np.float32) -> tuple[np.ndarray, np.ndarray]:
    r"""Interleaved spiral arms, one per class (the CS231n spiral): no linear model separates them.

    A point of class :math:`k` at radius :math:`r \sim U(0, 1)` lies at angle
    :math:`\theta = 2\pi(\text{turns}\cdot r + k/K) + \varepsilon`, :math:`\varepsilon \sim N(0, \text{noise}^2)`,
    i.e. :math:`x = (r\cos\theta, r\sin\theta)`.

    Parameters
    ----------
    n_samples : int
        Rows, >= 0; the classes get ``n // K`` or ``n // K + 1`` rows each.
    n_classes : int
        Arms, >= 2.
    noise : float
        Standard deviation of the angle's noise in radians, >= 0.
    seed : None, int or np.random.Generator
    turns : float
        How many times each arm winds round, > 0.
    dtype : float32 (default) or float64
        Drawn in float64 and cast: the same seed gives the same points in every dtype.

    Returns
    -------
    X : ndarray of shape (n_samples, 2), inside the unit disc (up to the noise)
    y : ndarray of shape (n_samples,), int64 in ``0..n_classes-1``
    """
    dtype = _check(n_samples, noise, dtype)
    check_positive("n_classes", n_classes, integer=True)
    check_positive("turns", turns)
    if n_classes < 2:
        raise InvalidArgumentError(f"n_classes={n_classes} is invalid; expected an integer >= 2")
    rng = _generator(seed)
    y = _balanced_labels(n_samples, n_classes, rng)
    r = rng.uniform(0.0, 1.0, n_samples)
    theta = 2 * np.pi * (turns * r + y / n_classes) + rng.normal(0.0, noise, n_samples)
    X = np.stack([r * np.cos(theta), r * np.sin(theta)], axis=1)
    return X.astype(dtype), y


def make_moons(n_samples: int = 300, noise: float = 0.1, seed: Any = None, *,
               dtype: Any = np.float32) -> tuple[np.ndarray, np.ndarray]:
    r"""Two interleaving half circles (as ``sklearn.datasets.make_moons``), Gaussian noise added.

    Class 0: :math:`(\cos t, \sin t)`; class 1: :math:`(1 - \cos t, \tfrac12 - \sin t)`, :math:`t \sim U(0, \pi)`;
    then :math:`N(0, \text{noise}^2)` on each coordinate.

    Returns
    -------
    X : ndarray of shape (n_samples, 2)
    y : ndarray of shape (n_samples,), int64 in {0, 1}
    """
    dtype = _check(n_samples, noise, dtype)
    rng = _generator(seed)
    y = _balanced_labels(n_samples, 2, rng)
    t = rng.uniform(0.0, np.pi, n_samples)
    X = np.where(y[:, None] == 0, np.stack([np.cos(t), np.sin(t)], 1),
                 np.stack([1 - np.cos(t), 0.5 - np.sin(t)], 1))
    X = X + rng.normal(0.0, noise, X.shape)
    return X.astype(dtype), y


def make_circles(n_samples: int = 300, noise: float = 0.05, factor: float = 0.5, seed: Any = None, *,
                 dtype: Any = np.float32) -> tuple[np.ndarray, np.ndarray]:
    r"""A small circle (class 1, radius ``factor``) inside a large one (class 0, radius 1), plus
    :math:`N(0, \text{noise}^2)` on each coordinate: separable by radius, not by any line.

    Returns
    -------
    X : ndarray of shape (n_samples, 2)
    y : ndarray of shape (n_samples,), int64 in {0, 1}
    """
    dtype = _check(n_samples, noise, dtype)
    if not (np.isfinite(factor) and 0 < factor < 1):
        raise InvalidArgumentError(f"factor={factor!r} is out of range; expected a number in (0, 1)")
    rng = _generator(seed)
    y = _balanced_labels(n_samples, 2, rng)
    t = rng.uniform(0.0, 2 * np.pi, n_samples)
    r = np.where(y == 1, factor, 1.0)
    X = np.stack([r * np.cos(t), r * np.sin(t)], 1) + rng.normal(0.0, noise, (n_samples, 2))
    return X.astype(dtype), y


def make_xor(n_samples: int = 300, noise: float = 0.0, seed: Any = None, *,
             dtype: Any = np.float32) -> tuple[np.ndarray, np.ndarray]:
    r"""XOR: points uniform in :math:`[-1, 1]^2`, class 1 where the two signs differ (:math:`x_1 x_2 < 0`).

    The label is taken before ``noise`` (Gaussian, per coordinate) moves the points, so with noise some
    points cross the axes and the classes overlap. A single layer cannot learn it; one hidden layer can.

    Returns
    -------
    X : ndarray of shape (n_samples, 2)
    y : ndarray of shape (n_samples,), int64 in {0, 1}
    """
    dtype = _check(n_samples, noise, dtype)
    rng = _generator(seed)
    X = rng.uniform(-1.0, 1.0, (n_samples, 2))
    y = (X[:, 0] * X[:, 1] < 0).astype(np.int64)
    X = X + rng.normal(0.0, noise, X.shape)
    return X.astype(dtype), y


def make_sine(n_samples: int = 200, noise: float = 0.1, seed: Any = None, *, low: float = -np.pi,
              high: float = np.pi, dtype: Any = np.float32) -> tuple[np.ndarray, np.ndarray]:
    r"""A 1-D regression problem: :math:`y = \sin x + \varepsilon`, :math:`x \sim U(\text{low}, \text{high})`,
    :math:`\varepsilon \sim N(0, \text{noise}^2)`. For ``MLP(..., loss="mse")``.

    Returns
    -------
    X : ndarray of shape (n_samples, 1)
    y : ndarray of shape (n_samples, 1), the same dtype
    """
    dtype = _check(n_samples, noise, dtype)
    if not (np.isfinite(low) and np.isfinite(high) and low < high):
        raise InvalidArgumentError(f"low={low!r}, high={high!r} is not an interval; expected finite low < high")
    rng = _generator(seed)
    x = rng.uniform(low, high, (n_samples, 1))
    y = np.sin(x) + rng.normal(0.0, noise, x.shape)
    return x.astype(dtype), y.astype(dtype)


#: The classification sets :func:`mlpnumpy.datasets.load` serves, with their default options.
TOY_DATASETS: dict[str, tuple] = {
    "spiral": (make_spiral, {"noise": 0.2, "n_classes": 3}),
    "moons": (make_moons, {"noise": 0.1}),
    "circles": (make_circles, {"noise": 0.05}),
    "xor": (make_xor, {"noise": 0.0}),
}


def make_toy_train_test(name: str, n_train: int = 600, n_test: int = 300, seed: Any = 0, **kwargs: Any
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Train and test sets of toy set ``name`` from two independent streams spawned from ``seed``.

    Returns
    -------
    X_train : (n_train, 2), y_train : (n_train,), X_test : (n_test, 2), y_test : (n_test,)
    """
    name = check_choice("name", name, TOY_DATASETS)
    make, defaults = TOY_DATASETS[name]
    try:
        train_ss, test_ss = np.random.SeedSequence(seed).spawn(2)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"seed={seed!r} is not usable; expected None or an int >= 0") from None
    opts = {**defaults, **kwargs}
    Xtr, ytr = make(n_train, seed=np.random.default_rng(train_ss), **opts)
    Xte, yte = make(n_test, seed=np.random.default_rng(test_ss), **opts)
    return Xtr, ytr, Xte, yte
