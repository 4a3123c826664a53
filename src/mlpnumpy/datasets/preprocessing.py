"""Feature scaling fitted on training data only, then applied unchanged to any other split.

Statistics computed on the test set would leak it into the model; ``fit`` sees the training
rows, ``transform`` reuses what was learned there.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import check_X
from ..errors import InvalidArgumentError, InvalidDataError, NotFittedError

__all__ = ["Standardizer"]

#: Rows are converted to float64 this many elements at a time (1 MiB of float64): the statistics
#: are exact float64 sums, yet a float32 training set is never copied whole (Fashion-MNIST's
#: 60,000 x 784 would need 376 MB more).
_CHUNK_ELEMENTS = 2**17


def _check_X(X: Any, arg: str = "X") -> np.ndarray:
    # float inputs keep their dtype, integers become float32; errors as everywhere else
    return check_X(X, None, arg=arg)


def _mean_std64(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column means and (population) standard deviations of ``X`` (n, d), both float64 of shape (d,).

    Two passes over row blocks converted into one reused float64 buffer: the sums, then the
    squared deviations from the mean (the two-pass formula, free of the cancellation that
    ``E[x^2] - E[x]^2`` suffers). Extra memory is one block, not a float64 copy of ``X``.
    """
    n, d = X.shape
    rows = max(1, min(n, _CHUNK_ELEMENTS // d))
    buf = np.empty((rows, d), dtype=np.float64)
    total = np.zeros(d, dtype=np.float64)
    for start in range(0, n, rows):
        block = buf[:min(rows, n - start)]
        np.copyto(block, X[start:start + rows], casting="same_kind")
        total += block.sum(axis=0)
    mean = total / n
    squares = np.zeros(d, dtype=np.float64)
    for start in range(0, n, rows):
        block = buf[:min(rows, n - start)]
        np.subtract(X[start:start + rows], mean, out=block)
        np.square(block, out=block)
        squares += block.sum(axis=0)
    return mean, np.sqrt(squares / n)


class Standardizer:
    """Centre each feature and divide by its standard deviation, as learned from the training set.

    .. math:: z = (x - \\mu) / s, \\qquad s = \\sigma \\text{ if } \\sigma > 0 \\text{ else } 1

    Statistics are computed in float64 (block by block: a float32 training set is not copied
    to float64 whole) and applied in the input's dtype (float32 in gives float32 out). A constant feature gets ``scale_ = 1``, so it maps to 0 instead of dividing
    by zero.

    Attributes
    ----------
    mean_ : ndarray of shape (n_features,), float64
    scale_ : ndarray of shape (n_features,), float64
    n_features_in_ : int
    """

    def __init__(self) -> None:
        self.mean_: np.ndarray | None = None
        self.scale_: np.ndarray | None = None
        self.n_features_in_: int | None = None

    def __repr__(self) -> str:
        state = f"n_features_in_={self.n_features_in_}" if self.mean_ is not None else "unfitted"
        return f"Standardizer({state})"

    def fit(self, X: Any) -> "Standardizer":
        """Learn ``mean_`` and ``scale_`` from training rows ``X`` of shape (n_samples, n_features)."""
        X = _check_X(X)
        if len(X) == 0:
            raise InvalidDataError("X has 0 rows; expected at least one training sample to fit on")
        mean, std = _mean_std64(X)  # float64 statistics without a float64 copy of X
        # A feature whose spread is at rounding level relative to its magnitude is constant; its
        # float64 std is noise, and dividing by it would blow that noise up.
        tiny = 10 * np.finfo(np.float64).eps * np.maximum(np.abs(mean), 1.0)
        self.mean_ = mean
        self.scale_ = np.where(std > tiny, std, 1.0)
        self.n_features_in_ = X.shape[1]
        return self

    def _check_fitted(self, X: Any, arg: str) -> np.ndarray:
        if self.mean_ is None:
            raise NotFittedError("this Standardizer is not fitted yet; call fit(X_train) first")
        X = _check_X(X, arg)
        if X.shape[1] != self.n_features_in_:
            raise InvalidDataError(f"{arg} has {X.shape[1]} features, but the Standardizer was fitted "
                                   f"on {self.n_features_in_}")
        return X

    def transform(self, X: Any) -> np.ndarray:
        """``(X - mean_) / scale_`` in X's float dtype; shape (n_samples, n_features)."""
        X = self._check_fitted(X, "X")
        Z = X - self.mean_.astype(X.dtype)
        Z /= self.scale_.astype(X.dtype)  # in place: one array the size of X, not two
        return Z

    def fit_transform(self, X: Any) -> np.ndarray:
        """``fit(X)`` then ``transform(X)``."""
        return self.fit(X).transform(X)

    def inverse_transform(self, Z: Any) -> np.ndarray:
        """``Z * scale_ + mean_``: back to the original units, in Z's float dtype."""
        Z = self._check_fitted(Z, "Z")
        return Z * self.scale_.astype(Z.dtype) + self.mean_.astype(Z.dtype)

    def to_dict(self) -> dict[str, Any]:
        """Fitted state as plain values: ``{"type", "mean": ndarray, "scale": ndarray}``.

        Arrays are float64 copies; ``from_dict`` accepts them as lists too (e.g. after JSON).
        """
        if self.mean_ is None:
            raise NotFittedError("this Standardizer is not fitted yet; nothing to save")
        return {"type": "Standardizer", "mean": self.mean_.copy(), "scale": self.scale_.copy()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Standardizer":
        """Rebuild a fitted Standardizer from :meth:`to_dict`'s output, validating it."""
        if not isinstance(d, dict) or d.get("type") != "Standardizer":
            got = d.get("type") if isinstance(d, dict) else type(d).__name__
            raise InvalidArgumentError(f"d['type']={got!r} is not 'Standardizer'; expected the "
                                       "output of Standardizer.to_dict()")
        try:
            mean = np.asarray(d["mean"], dtype=np.float64)
            scale = np.asarray(d["scale"], dtype=np.float64)
        except KeyError as exc:
            raise InvalidArgumentError(f"d has no {exc.args[0]!r} entry; expected 'mean' and "
                                       "'scale'") from None
        except (TypeError, ValueError):
            raise InvalidArgumentError("d['mean'] and d['scale'] must be lists or arrays of "
                                       "numbers") from None
        if mean.ndim != 1 or mean.shape != scale.shape:
            raise InvalidArgumentError(f"d['mean'] shape {mean.shape} and d['scale'] shape "
                                       f"{scale.shape} must be equal 1-D shapes (n_features,)")
        if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(scale)) and np.all(scale > 0)):
            raise InvalidArgumentError("d['mean'] must be finite and d['scale'] finite and > 0")
        obj = cls()
        obj.mean_, obj.scale_, obj.n_features_in_ = mean, scale, len(mean)
        return obj
