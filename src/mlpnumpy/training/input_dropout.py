"""Input dropout as train-time augmentation: each epoch, every training row loses a random share of
its features, as a :class:`~mlpnumpy.nn.layers.Dropout` layer before the first dense layer would do
(Hinton et al. 2012; Srivastava et al. 2014 drop 20% of the input pixels), without a layer in the model.

``mlpnumpy train --input-dropout P`` adds :class:`InputDropout` to the callbacks. At the start of each
epoch it draws, from the model's generator, a keep mask for every entry of the training array (each
entry dropped with probability ``P``) and writes into the array that ``fit`` reads its batches from

    x' = c + mask * (x - c) / (1 - P)

where ``c`` is the value the model's preprocessor maps to 0 (the feature means for a
:class:`~mlpnumpy.datasets.preprocessing.Standardizer`, 0 without a preprocessor). After the
preprocessor, ``x'`` is exactly inverted dropout on the model's input: the dropped features are 0 and
the kept ones are scaled by ``1 / (1 - P)``. Each row is seen once per epoch, with a fresh mask each
time, as a dropout layer would draw it. Validation and test rows never change, and nothing changes at
prediction time: the trained model is a plain MLP with no dropout on its inputs (no test-time
augmentation, no extra layer in the model file).

As a layer, the dropout would make the fast path compute the gradient with respect to the first dense
layer's input (the largest product of the backward pass, for 784 inputs) only to multiply it by the
mask and throw it away; rewriting the array once per epoch costs a few passes over it instead.

Drawing from the model's generator keeps a run reproducible from its seed, and an interrupted epoch
that ``fit`` undoes (its generator state goes back to the epoch's start) draws the same masks again.
"""
from __future__ import annotations

import numpy as np

from ..errors import InvalidArgumentError
from .callbacks import Callback

__all__ = ["InputDropout", "input_dropout_center"]


def input_dropout_center(preprocessor, n_features: int, dtype) -> np.ndarray:
    """The input row that ``preprocessor`` maps to zeros: a Standardizer's ``mean_``, zeros for None.

    Other preprocessors are refused (the mask must act on the model's input, which needs a per-feature
    ``(x - c) * s`` map to be moved before the preprocessor)."""
    if preprocessor is None:
        return np.zeros(n_features, dtype)
    from ..datasets.preprocessing import Standardizer
    if type(preprocessor) is not Standardizer or preprocessor.mean_ is None:
        raise InvalidArgumentError(f"input dropout works with a fitted Standardizer or no preprocessor; the "
                                   f"model has {preprocessor!r}")
    if preprocessor.mean_.shape != (n_features,):
        raise InvalidArgumentError(f"the model's Standardizer has {preprocessor.mean_.shape[0]} features; the "
                                   f"training array has {n_features}")
    return preprocessor.mean_.astype(dtype)


class InputDropout(Callback):
    """Drop each input feature of every training row with probability ``p``, anew each epoch.

    Parameters
    ----------
    X : array, shape (n, n_features)
        The training array given to ``fit`` (C-contiguous, of the model's dtype, so that ``fit`` uses
        it without a copy); it is overwritten in place every epoch.
    p : float in (0, 1)
        Drop probability of each entry.
    fresh : bool
        False (default): keep a copy of ``X`` as given and write each epoch's dropped copy of it into
        ``X``; the copy is written back when training ends. True: another callback before this one
        (e.g. :class:`~mlpnumpy.training.augment.RandomShift`) rewrites all of ``X`` at the start of
        every epoch; the mask is then applied to that in place, and no copy is kept.

    The centre ``c`` (module docstring) is read from ``model.preprocessor`` when training begins.
    """

    def __init__(self, X: np.ndarray, p: float, *, fresh: bool = False):
        if isinstance(X, np.ndarray) is False or X.ndim != 2:
            raise InvalidArgumentError(f"X must be a 2-D NumPy array (n, n_features); got "
                                       f"{getattr(X, 'shape', type(X).__name__)}")
        if X.dtype.kind != "f":
            raise InvalidArgumentError(f"X has dtype {X.dtype}; expected the model's float dtype")
        if not X.flags.c_contiguous:
            raise InvalidArgumentError("X is not C-contiguous; fit would train on a copy of it, not on the "
                                       "dropped-out rows (pass np.ascontiguousarray(X))")
        if isinstance(p, bool) or not isinstance(p, (int, float, np.floating)) or not 0 < p < 1:
            raise InvalidArgumentError(f"p={p!r} is invalid; expected a drop probability in (0, 1)")
        self.X, self.p, self.fresh = X, float(p), bool(fresh)
        self.original = None if fresh else X.copy()
        self.center = None

    def on_train_begin(self, logs=None):
        self.center = input_dropout_center(getattr(self.model, "preprocessor", None), self.X.shape[1],
                                           self.X.dtype)

    def on_epoch_begin(self, epoch, logs=None):
        if self.center is None:
            self.on_train_begin()
        X, c = self.X, self.center
        src = X if self.fresh else self.original
        keep = self.model.rng.random(X.shape, dtype=np.float32) >= np.float32(self.p)
        np.subtract(src, c, out=X)                  # x - c
        X *= keep                                   # dropped entries: 0 (then c)
        X *= X.dtype.type(1.0 / (1.0 - self.p))      # kept ones scaled by 1 / (1 - p)
        X += c

    def on_train_end(self, logs=None):
        if self.original is not None:
            self.X[...] = self.original  # the caller's array as it was given

    def __repr__(self) -> str:
        return f"InputDropout(p={self.p:g}, rows={self.X.shape[0]}, features={self.X.shape[1]})"
