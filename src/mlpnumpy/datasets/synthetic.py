"""MNIST-shaped synthetic classification data: no download, learnable, reproducible.

Each sample is Gaussian noise; class ``i`` adds +1 to its own band of ``n_features // n_classes``
features, so a linear model can separate the classes and a bug that breaks learning shows.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InvalidArgumentError, check_positive

__all__ = ["make_mnist_like", "make_train_test"]


def _generator(seed: Any) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    try:
        return np.random.default_rng(seed)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"seed={seed!r} is not usable; expected None, an int >= 0, a "
                                   "SeedSequence or a np.random.Generator") from None


def make_mnist_like(n_samples: int, n_features: int = 784, n_classes: int = 10, noise: float = 0.5,
                    seed: Any = None, *, dtype: Any = np.float32) -> tuple[np.ndarray, np.ndarray]:
    """Draw a noisy, linearly separable data set shaped like flattened MNIST.

    .. math:: x = \\varepsilon + \\mathbb{1}_{\\text{band}(y)}, \\quad
              \\varepsilon \\sim \\mathcal{N}(0, \\text{noise}^2 I), \\quad y \\sim U\\{0..C-1\\}

    where ``band(i)`` is features ``[i*w, (i+1)*w)`` with ``w = n_features // n_classes``.

    Parameters
    ----------
    n_samples : int
        Number of rows, >= 0.
    n_features : int
        Columns, >= ``n_classes``.
    n_classes : int
        Number of classes, >= 2.
    noise : float
        Standard deviation of the Gaussian noise, >= 0.
    seed : None, int, SeedSequence or np.random.Generator
        Source of randomness; a Generator is used (and advanced) as is.
    dtype : dtype
        Floating dtype of ``X`` (float32 default). Values are drawn in float64 and then cast,
        so the same seed gives the same data in every dtype.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,), int64
    """
    check_positive("n_samples", n_samples, integer=True, allow_zero=True)
    check_positive("n_features", n_features, integer=True)
    check_positive("n_classes", n_classes, integer=True)
    check_positive("noise", noise, allow_zero=True)
    if n_classes < 2:
        raise InvalidArgumentError(f"n_classes={n_classes} is invalid; expected an integer >= 2")
    if n_features < n_classes:
        raise InvalidArgumentError(f"n_features={n_features} is smaller than n_classes={n_classes}; "
                                   "each class needs at least one feature of its own")
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise InvalidArgumentError(f"dtype={dtype} is not a floating dtype; expected float32 or float64")
    rng = _generator(seed)
    X = rng.normal(0.0, noise, size=(n_samples, n_features))
    y = rng.integers(0, n_classes, size=n_samples, dtype=np.int64)
    width = n_features // n_classes
    cols = y[:, None] * width + np.arange(width)  # (n_samples, width): each row's band
    X[np.arange(n_samples)[:, None], cols] += 1.0
    return X.astype(dtype, copy=False), y


def make_train_test(n_train: int = 1000, n_test: int = 200, seed: Any = 0, **kwargs: Any
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Train and test sets from two independent streams spawned from ``seed``.

    The streams come from ``np.random.SeedSequence(seed).spawn(2)``, so the test set is never a
    copy of the first training rows (the original script reseeded a global RNG for each call and
    evaluated on its own training data).

    Returns
    -------
    X_train : (n_train, n_features), y_train : (n_train,), X_test : (n_test, n_features),
    y_test : (n_test,)
    """
    if isinstance(seed, np.random.Generator):
        train_ss, test_ss = seed.bit_generator.seed_seq.spawn(2)
    else:
        try:
            train_ss, test_ss = np.random.SeedSequence(seed).spawn(2)
        except (TypeError, ValueError):
            raise InvalidArgumentError(f"seed={seed!r} is not usable; expected None, an int >= 0 "
                                       "or a np.random.Generator") from None
    X_train, y_train = make_mnist_like(n_train, seed=np.random.default_rng(train_ss), **kwargs)
    X_test, y_test = make_mnist_like(n_test, seed=np.random.default_rng(test_ss), **kwargs)
    return X_train, y_train, X_test, y_test
