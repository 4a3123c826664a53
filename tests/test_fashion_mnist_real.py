"""The real Fashion-MNIST from Debian's package, when installed: counts, shapes, class balance."""
from pathlib import Path

import numpy as np
import pytest

from mlpnumpy.datasets import load, read_idx, verify_file
from mlpnumpy.datasets.registry import IDX_DATASETS

DEBIAN = Path("/usr/share/datasets/fashion-mnist")

pytestmark = pytest.mark.skipif(
    not DEBIAN.is_dir(),
    reason=f"{DEBIAN} not found; install Debian's fashion-mnist package to run this test")


def test_raw_files():
    images = read_idx(DEBIAN / "train-images-idx3-ubyte.gz")
    labels = read_idx(DEBIAN / "train-labels-idx1-ubyte.gz")
    t_images = read_idx(DEBIAN / "t10k-images-idx3-ubyte.gz")
    t_labels = read_idx(DEBIAN / "t10k-labels-idx1-ubyte.gz")
    assert images.shape == (60_000, 28, 28) and images.dtype == np.uint8
    assert t_images.shape == (10_000, 28, 28)
    assert labels.shape == (60_000,) and t_labels.shape == (10_000,)
    np.testing.assert_array_equal(np.bincount(labels, minlength=10), [6_000] * 10)
    np.testing.assert_array_equal(np.bincount(t_labels, minlength=10), [1_000] * 10)
    assert images.max() == 255 and images.min() == 0


def test_files_match_a_known_digest():
    spec = IDX_DATASETS["fashion-mnist"]
    for f in spec.files:
        assert verify_file(DEBIAN / f.filename, (f.sha256, *f.also_accept)), f.filename


def test_load():
    ds = load("fashion-mnist", DEBIAN, download=False)
    assert ds.X_train.shape == (60_000, 784) and ds.X_test.shape == (10_000, 784)
    assert ds.X_train.dtype == np.float32
    assert 0.0 == ds.X_train.min() and ds.X_train.max() == 1.0
    assert ds.class_names[9] == "Ankle boot" and ds.image_shape == (28, 28)
    assert ds.y_train.dtype == np.int64
