"""Data sets: MNIST-format files (read, found, downloaded), scikit-learn's digits, synthetic
data, and the user's own ``.npy``/``.npz``/``.csv`` files.

``load(name)`` returns a :class:`Dataset` of train/test arrays; the rest are the pieces it uses.
"""
from .download import download, download_file, fetch, file_sha256, verify_file
from .files import load_array_file, read_csv
from .idx import read_idx, write_idx
from .loader import Dataset, load
from .paths import find_files, search_dirs
from .registry import DATASETS, FASHION_MNIST_CLASSES, list_datasets
from .synthetic import make_mnist_like, make_train_test

__all__ = [
    "Dataset", "load", "list_datasets", "DATASETS", "FASHION_MNIST_CLASSES",
    "read_idx", "write_idx", "find_files", "search_dirs", "fetch", "download", "download_file",
    "file_sha256", "verify_file", "load_array_file", "read_csv", "make_mnist_like",
    "make_train_test",
]
