"""What each named data set is: its files, their checksums, where to download them, its classes.

Pure data, no I/O. Download mirrors and checksums live here so that tests (and users behind a
proxy or with a private copy) can point them elsewhere.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["IdxFile", "IdxDatasetSpec", "IDX_DATASETS", "DATASETS", "FASHION_MNIST_CLASSES",
           "list_datasets"]


@dataclass(frozen=True)
class IdxFile:
    """One file of an IDX data set: its role, its (gzip) file name, size and SHA-256."""

    role: str        # "train_images", "train_labels", "test_images" or "test_labels"
    filename: str    # as served by the mirrors, gzip-compressed
    sha256: str      # of the file as the mirrors serve it
    size: int        # bytes of the .gz file, a cheap first check against truncation
    # Digests of known repackagings of the same data, accepted by verify_file. Debian's
    # fashion-mnist package re-gzips the files without the stored file name (24 or 23 bytes
    # shorter), so its bytes differ from the mirrors' while the decompressed IDX data is equal.
    also_accept: tuple[str, ...] = ()
    # The array the file holds, (rows, 28, 28) or (rows,): a bound checked on the IDX header before a
    # found file's data is read (gunzipped copies have no digest here; this bounds them).
    shape: tuple[int, ...] = ()


@dataclass(frozen=True)
class IdxDatasetSpec:
    """An MNIST-format data set: four IDX files and the mirrors that serve them."""

    name: str
    files: tuple[IdxFile, ...]
    mirrors: tuple[str, ...]
    class_names: tuple[str, ...]
    image_shape: tuple[int, int] = (28, 28)
    description: str = ""


ROLES = ("train_images", "train_labels", "test_images", "test_labels")

# SHA-256 of the files as the mirrors distribute them (the same bytes on every official mirror).
_MNIST = IdxDatasetSpec(
    name="mnist",
    files=(
        IdxFile("train_images", "train-images-idx3-ubyte.gz",
                "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", 9912422, shape=(60000, 28, 28)),
        IdxFile("train_labels", "train-labels-idx1-ubyte.gz",
                "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", 28881, shape=(60000,)),
        IdxFile("test_images", "t10k-images-idx3-ubyte.gz",
                "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", 1648877, shape=(10000, 28, 28)),
        IdxFile("test_labels", "t10k-labels-idx1-ubyte.gz",
                "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", 4542, shape=(10000,)),
    ),
    mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/",
             "http://yann.lecun.com/exdb/mnist/"),
    class_names=tuple(str(d) for d in range(10)),
    description="MNIST handwritten digits (LeCun, Cortes, Burges): 60,000 + 10,000 images 28x28",
)

FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                         "Shirt", "Sneaker", "Bag", "Ankle boot")

_FASHION_MNIST = IdxDatasetSpec(
    name="fashion-mnist",
    files=(
        IdxFile("train_images", "train-images-idx3-ubyte.gz",
                "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84", 26421880,
                ("b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",), shape=(60000, 28, 28)),
        IdxFile("train_labels", "train-labels-idx1-ubyte.gz",
                "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845", 29515,
                ("0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",), shape=(60000,)),
        IdxFile("test_images", "t10k-images-idx3-ubyte.gz",
                "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073", 4422102,
                ("cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",), shape=(10000, 28, 28)),
        IdxFile("test_labels", "t10k-labels-idx1-ubyte.gz",
                "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5", 5148,
                ("8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",), shape=(10000,)),
    ),
    mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    class_names=FASHION_MNIST_CLASSES,
    description="Fashion-MNIST (Zalando Research): 60,000 + 10,000 clothing images 28x28",
)

#: MNIST-format data sets by name.
IDX_DATASETS: dict[str, IdxDatasetSpec] = {s.name: s for s in (_MNIST, _FASHION_MNIST)}

#: Every name :func:`mlpnumpy.datasets.load` accepts, with a one-line description.
DATASETS: dict[str, str] = {
    "mnist": _MNIST.description,
    "fashion-mnist": _FASHION_MNIST.description,
    "digits": "UCI handwritten digits (as scikit-learn ships them, embedded): 1,797 images 8x8, fixed stratified split",
    "synthetic": "Gaussian noise with one bright band per class, MNIST-shaped; no download",
    "spiral": "2-D toy: three interleaved spiral arms (CS231n), 600 + 300 points; no download",
    "moons": "2-D toy: two interleaving half circles, 600 + 300 points; no download",
    "circles": "2-D toy: a small circle inside a large one, 600 + 300 points; no download",
    "xor": "2-D toy: class 1 where x1 and x2 have different signs, 600 + 300 points; no download",
}


def list_datasets() -> list[str]:
    """Names accepted by :func:`mlpnumpy.datasets.load`, e.g. ``["mnist", "fashion-mnist", ...]``."""
    return list(DATASETS)
