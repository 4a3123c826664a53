"""Train-time data augmentation: every epoch sees the training images moved by a few pixels.

``mlpnumpy train --augment shift`` (the ``best`` Fashion-MNIST recipe) adds :class:`RandomShift` to the
callbacks. At the start of each epoch it draws, for every training image, a shift ``(dy, dx)`` with
``|dy|, |dx| <= max_shift`` from the model's generator, and writes the shifted originals into the
training array that ``fit`` reads its batches from; pixels moved in from outside the image are 0 (the
background of MNIST-style images). Only the training rows change: validation and test images never do,
and nothing changes at prediction time (no test-time augmentation).

Drawing from the model's generator keeps a run reproducible from its seed, and an interrupted epoch
that ``fit`` undoes (its generator state goes back to the epoch's start) draws the same shifts again.
"""
from __future__ import annotations

import numpy as np

from .callbacks import Callback
from ..errors import InvalidArgumentError, check_choice

__all__ = ["AUGMENTATIONS", "shift_images", "RandomShift", "check_augment", "augmentation_for",
           "data_callbacks"]

#: What ``--augment`` accepts.
AUGMENTATIONS = ("none", "shift")


def shift_images(images: np.ndarray, dy: np.ndarray, dx: np.ndarray, out: np.ndarray | None = None
                 ) -> np.ndarray:
    """Each image moved by its own whole-pixel offset, with zeros moved in at the edges.

    Parameters
    ----------
    images : array, shape (n, rows, cols)
    dy, dx : int arrays, shape (n,)
        Offsets down and right (negative: up and left); ``out[i, r, c] = images[i, r - dy[i], c - dx[i]]``
        where that pixel exists, else 0.
    out : array, shape (n, rows, cols), optional
        Where to write (not ``images`` itself); a new array when omitted.

    Returns
    -------
    array, shape (n, rows, cols), ``images.dtype``
    """
    n, rows, cols = images.shape
    dy, dx = np.asarray(dy), np.asarray(dx)
    if dy.shape != (n,) or dx.shape != (n,):
        raise InvalidArgumentError(f"dy and dx have shapes {dy.shape} and {dx.shape}; expected ({n},), one "
                                   "offset per image")
    if out is None:
        out = np.empty_like(images)
    elif out is images or np.shares_memory(out, images):
        raise InvalidArgumentError("out shares memory with images; expected a separate array")
    out.fill(0)
    # one sliced copy per distinct offset: at most (2s+1)^2 copies, each over all the images that share it
    for a, b in set(zip(dy.tolist(), dx.tolist())):
        sel = np.flatnonzero((dy == a) & (dx == b))
        if abs(a) >= rows or abs(b) >= cols:
            continue  # moved out entirely: all background
        src = images[sel][:, max(0, -a):rows - max(0, a), max(0, -b):cols - max(0, b)]
        out[sel, max(0, a):rows - max(0, -a), max(0, b):cols - max(0, -b)] = src
    return out


class RandomShift(Callback):
    """Shift every training image by a random whole-pixel offset at the start of each epoch.

    Parameters
    ----------
    X : array, shape (n, rows * cols)
        The training array given to ``fit`` (C-contiguous, of the model's dtype, so that ``fit`` uses
        it without a copy); it is overwritten in place every epoch with shifted copies of its
        content at construction time.
    image_shape : (rows, cols)
    max_shift : int
        Largest offset in each direction (default 2 pixels: 25 possible offsets, (0, 0) included).
    """

    def __init__(self, X: np.ndarray, image_shape, max_shift: int = 2):
        rows, cols = (int(s) for s in image_shape)
        if X.ndim != 2 or X.shape[1] != rows * cols:
            raise InvalidArgumentError(f"X has shape {X.shape}; expected (n, {rows * cols}) images of shape "
                                       f"{rows}x{cols}")
        if not X.flags.c_contiguous:
            raise InvalidArgumentError("X is not C-contiguous; fit would train on a copy of it, not on the "
                                       "shifted images (pass np.ascontiguousarray(X))")
        if isinstance(max_shift, bool) or not isinstance(max_shift, (int, np.integer)) or not \
                0 < max_shift < min(rows, cols):
            raise InvalidArgumentError(f"max_shift={max_shift!r} is invalid; expected an integer in "
                                       f"1..{min(rows, cols) - 1}")
        self.X, self.shape, self.max_shift = X, (rows, cols), int(max_shift)
        self.original = X.reshape(-1, rows, cols).copy()

    def on_epoch_begin(self, epoch, logs=None):
        rng = self.model.rng  # the model's own generator: the run's seed decides the shifts
        n = self.original.shape[0]
        dy = rng.integers(-self.max_shift, self.max_shift + 1, size=n)
        dx = rng.integers(-self.max_shift, self.max_shift + 1, size=n)
        shift_images(self.original, dy, dx, out=self.X.reshape(-1, *self.shape))

    def on_train_end(self, logs=None):
        self.X.reshape(-1, *self.shape)[...] = self.original  # the caller's array as it was given

    def __repr__(self) -> str:
        return f"RandomShift(max_shift={self.max_shift}, images={self.original.shape[0]}x{self.shape})"


def check_augment(name: str, image_shape) -> str:
    """``--augment NAME`` checked against the data: ``shift`` needs images (``image_shape`` (rows, cols)).

    Returns the name, lower-cased."""
    name = check_choice("--augment", name, AUGMENTATIONS)
    if name != "none" and (image_shape is None or len(image_shape) != 2):
        raise InvalidArgumentError(f"--augment {name} moves images; this data has no image shape (it is a "
                                   "table of features); expected --augment none")
    return name


def augmentation_for(name: str, X: np.ndarray, image_shape) -> RandomShift | None:
    """The callback of ``--augment NAME`` for the training array ``X`` (None for ``"none"``)."""
    return None if check_augment(name, image_shape) == "none" else RandomShift(X, image_shape)


def data_callbacks(augment: str, input_dropout: float, X: np.ndarray, image_shape) -> list:
    """The callbacks that rewrite the training rows each epoch, in the order ``mlpnumpy train`` and a
    sweep's trials both run them: ``--augment shift`` first (it rewrites every row from the originals),
    then ``--input-dropout P`` on what the shift wrote."""
    shift = augmentation_for(augment, X, image_shape)
    callbacks = [] if shift is None else [shift]
    if input_dropout > 0:
        from .input_dropout import InputDropout
        callbacks.append(InputDropout(X, input_dropout, fresh=shift is not None))
    return callbacks
