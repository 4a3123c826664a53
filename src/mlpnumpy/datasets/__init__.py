"""Data sets: MNIST-format files (read, found, downloaded), scikit-learn's digits, synthetic
data, 2-D toy problems (spiral, moons, circles, XOR, sine), and the user's own
``.npy``/``.npz``/``.csv`` files.

``load(name)`` returns a :class:`Dataset` of train/test arrays; the rest are the pieces it uses.
"""
from .download import download, download_file, fetch, file_sha256, verify_file
from .files import load_array_file, read_csv
from .idx import read_idx, write_idx
from .loader import Dataset, load
from .paths import find_files, search_dirs
from .registry import DATASETS, FASHION_MNIST_CLASSES, list_datasets
from .synthetic import make_mnist_like, make_train_test
from .toy import make_circles, make_moons, make_sine, make_spiral, make_xor

__all__ = [
    "Dataset", "load", "list_datasets", "DATASETS", "FASHION_MNIST_CLASSES",
    "read_idx", "write_idx", "find_files", "search_dirs", "fetch", "download", "download_file",
    "file_sha256", "verify_file", "load_array_file", "read_csv", "make_mnist_like",
    "make_train_test", "make_spiral", "make_moons", "make_circles", "make_xor", "make_sine",
]
