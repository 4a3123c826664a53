"""``load(name)``: one call from a data set's name to train/test arrays ready for a model.

Images come back scaled to [0, 1] in float32 and flattened to rows, labels as int64 class
indices; every option that changes this is an argument.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import FileFormatError, InvalidArgumentError, check_choice
from .splits import train_val_split
from .download import fetch
from .idx import read_idx
from .paths import verify_found
from .registry import IDX_DATASETS, list_datasets
from .synthetic import make_train_test
from .toy import TOY_DATASETS, make_toy_train_test

__all__ = ["Dataset", "load", "DIGITS_TEST_SIZE", "DIGITS_SEED"]

#: Share of each digit class held out as the "digits" test set, and the seed fixing the split.
DIGITS_TEST_SIZE = 0.2
DIGITS_SEED = 0

# Keyword options each kind of data set accepts on top of load()'s own arguments.
_OPTIONS = {
    "idx": {"mirrors", "checksums", "timeout", "only_data_dir", "verify"},
    "digits": {"test_size", "seed"},
    "synthetic": {"n_train", "n_test", "seed", "n_features", "n_classes", "noise"},
    "toy": {"n_train", "n_test", "seed", "noise"},
}


@dataclass(frozen=True, repr=False)
class Dataset:
    """A train/test pair of arrays with what is needed to interpret them.

    Attributes
    ----------
    X_train : ndarray of shape (n_train, n_features) or (n_train, *image_shape)
    y_train : ndarray of shape (n_train,), int64
    X_test : ndarray of shape (n_test, n_features) or (n_test, *image_shape)
    y_test : ndarray of shape (n_test,), int64
    class_names : list of str
        ``class_names[k]`` is the name of label ``k``.
    name : str
    image_shape : tuple of int or None
        ``(28, 28)``, ``(8, 8)``, or None when samples are not images.
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]
    name: str
    image_shape: tuple[int, ...] | None = None

    @property
    def n_classes(self) -> int:
        """Number of classes, ``len(class_names)``."""
        return len(self.class_names)

    def __repr__(self) -> str:
        return (f"Dataset(name={self.name!r}, X_train={self.X_train.shape} {self.X_train.dtype}, "
                f"X_test={self.X_test.shape}, n_classes={self.n_classes}, "
                f"image_shape={self.image_shape})")


def _check_options(kind: str, name: str, options: dict[str, Any]) -> None:
    unknown = sorted(set(options) - _OPTIONS[kind])
    if unknown:
        raise InvalidArgumentError(f"{unknown[0]}={options[unknown[0]]!r} is not an option of "
                                   f"load({name!r}); expected one of: {', '.join(sorted(_OPTIONS[kind]))}")


def _finish(images: np.ndarray, scale: float, flatten: bool, normalize: bool, dtype: np.dtype
            ) -> np.ndarray:
    X = images.reshape(len(images), -1) if flatten else images
    if not normalize:
        return X
    out = X.astype(dtype)
    np.divide(out, dtype.type(scale), out=out)
    return out


def load(name: str, data_dir: str | os.PathLike | None = None, *, flatten: bool = True,
         normalize: bool = True, dtype: Any = np.float32, download: bool = True,
         progress: bool | None = None, **options: Any) -> Dataset:
    """Load a named data set as train and test arrays.

    Parameters
    ----------
    name : {"mnist", "fashion-mnist", "digits", "synthetic", "spiral", "moons", "circles", "xor"}
        See :func:`list_datasets`.
    data_dir : str or path-like, optional
        For MNIST-format sets: the folder searched first for the four IDX files and the
        preferred download folder (then ``$MLPNUMPY_DATA``, the user cache, system folders).
    flatten : bool
        Images as rows ``(n, 784)`` (default) or as ``(n, 28, 28)``. Ignored by "synthetic".
    normalize : bool
        Scale pixels to [0, 1] in ``dtype`` (default). False returns the raw uint8 pixels (0..255
        for MNIST, 0..16 for digits). Ignored by "synthetic", which is already centred.
    dtype : dtype
        Floating dtype of the features, float32 by default.
    download : bool
        Download missing MNIST-format files.
    progress : bool, optional
        Download progress display; default only when stderr is a terminal.
    **options
        "mnist"/"fashion-mnist": ``mirrors``, ``checksums``, ``timeout``, ``only_data_dir``
        (see :func:`~mlpnumpy.datasets.download.fetch`), ``verify`` (default True, or
        ``$MLPNUMPY_VERIFY_DATA``: ``.gz`` files found on disk must be the official ones, see
        :func:`~mlpnumpy.datasets.paths.verify_found`). "digits": ``test_size`` (default 0.2),
        ``seed`` (default 0). "synthetic": ``n_train`` (1000), ``n_test`` (200), ``seed`` (0),
        ``n_features`` (784), ``n_classes`` (10), ``noise`` (0.5). "spiral", "moons", "circles",
        "xor" (2-D toy sets, :mod:`mlpnumpy.datasets.toy`): ``n_train`` (600), ``n_test`` (300),
        ``seed`` (0), ``noise`` (each set's own default).

    Returns
    -------
    Dataset

    Raises
    ------
    InvalidArgumentError
        Unknown name or option.
    DatasetNotFoundError
        Files missing and not downloadable; the message says where to put them.
    FileFormatError
        A file is corrupt or does not hold what the data set should.
    """
    key = check_choice("name", name, list_datasets())
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise InvalidArgumentError(f"dtype={dtype} is not a floating dtype; expected float32 or float64")
    if key in IDX_DATASETS:
        _check_options("idx", key, options)
        return _load_idx(key, data_dir, flatten, normalize, dtype, download, progress, options)
    if key == "digits":
        _check_options("digits", key, options)
        return _load_digits(flatten, normalize, dtype, **options)
    if key in TOY_DATASETS:
        _check_options("toy", key, options)
        Xtr, ytr, Xte, yte = make_toy_train_test(key, dtype=dtype, **options)
        n_classes = TOY_DATASETS[key][1].get("n_classes", 2)
        return Dataset(Xtr, ytr, Xte, yte, [str(i) for i in range(n_classes)], key, None)
    _check_options("synthetic", key, options)
    n_classes = options.get("n_classes", 10)
    Xtr, ytr, Xte, yte = make_train_test(dtype=dtype, **options)
    return Dataset(Xtr, ytr, Xte, yte, [str(i) for i in range(n_classes)], key, None)


def _load_idx(name: str, data_dir, flatten, normalize, dtype, download, progress, options) -> Dataset:
    spec = IDX_DATASETS[name]
    verify = options.pop("verify", None)
    paths = fetch(name, data_dir, download=download, progress=progress, **options)
    # Found files are checked against the official digests (once, cached), and every header against
    # the official shapes, before any data is decompressed.
    verify_found(name, paths, checksums=options.get("checksums"), verify=verify)
    shapes = {f.role: f.shape or None for f in spec.files}
    arrays = {role: read_idx(path, max_shape=shapes[role]) for role, path in paths.items()}
    n_classes = len(spec.class_names)
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        img_path, lbl_path = paths[f"{split}_images"], paths[f"{split}_labels"]
        if images.dtype != np.uint8 or images.ndim != 3:
            raise FileFormatError(f"{img_path}: expected uint8 images of shape (n, rows, cols), got "
                                  f"{images.dtype} of shape {images.shape}")
        if labels.dtype != np.uint8 or labels.ndim != 1 or len(labels) != len(images):
            raise FileFormatError(f"{lbl_path}: expected {len(images)} uint8 labels, one per image in "
                                  f"{img_path.name}, got {labels.dtype} of shape {labels.shape}")
        if labels.size and labels.max() >= n_classes:
            raise FileFormatError(f"{lbl_path}: label {int(labels.max())} is out of range for "
                                  f"{name}; expected 0..{n_classes - 1}")
    if arrays["train_images"].shape[1:] != arrays["test_images"].shape[1:]:
        raise FileFormatError(f"{paths['test_images']}: images of shape "
                              f"{arrays['test_images'].shape[1:]} differ from the training images "
                              f"{arrays['train_images'].shape[1:]}")

    def X(role):
        return _finish(arrays[role], 255.0, flatten, normalize, dtype)

    return Dataset(X("train_images"), arrays["train_labels"].astype(np.int64), X("test_images"),
                   arrays["test_labels"].astype(np.int64), list(spec.class_names), name,
                   tuple(arrays["train_images"].shape[1:]))


def _embedded_digits() -> tuple[np.ndarray, np.ndarray]:
    """The UCI digits (1,797 images 8x8, values 0..16) as scikit-learn ships them, embedded in the
    package (``data/digits.npz``, 45 kB) so the default needs neither scikit-learn nor a download."""
    from importlib import resources
    with resources.files("mlpnumpy.datasets").joinpath("data/digits.npz").open("rb") as f:
        with np.load(f, allow_pickle=False) as z:
            return z["images"].astype(np.uint8), z["target"].astype(np.int64)


def _load_digits(flatten, normalize, dtype, test_size: float = DIGITS_TEST_SIZE,
                 seed: int = DIGITS_SEED) -> Dataset:
    if not 0 < test_size < 1:
        raise InvalidArgumentError(f"test_size={test_size!r} is out of range; expected a number in (0, 1)")
    images, y = _embedded_digits()
    train, test = train_val_split(y, test_size, np.random.default_rng(seed), stratify=True)
    return Dataset(_finish(images[train], 16.0, flatten, normalize, dtype), y[train],
                   _finish(images[test], 16.0, flatten, normalize, dtype), y[test],
                   [str(d) for d in range(10)], "digits", (8, 8))
