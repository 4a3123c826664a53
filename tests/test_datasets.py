"""load(), the folder search order, digits, synthetic data and user files."""
import numpy as np
import pytest
from _helpers import isolated_data_dirs  # noqa: F401 - a fixture, used through pytestmark

from mlpnumpy.datasets import (Dataset, find_files, list_datasets, load, load_array_file,
                               make_mnist_like, search_dirs, write_idx)
from mlpnumpy.errors import (DatasetNotFoundError, DataTypeError, FileFormatError,
                             InvalidArgumentError)

NAMES = {"train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
         "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte"}


# every test runs on private data folders (no real cache, $MLPNUMPY_DATA or system folders)
pytestmark = pytest.mark.usefixtures("isolated_data_dirs")


def write_fake(folder, *, n_train=6, n_test=4, seed=0, gz=True):
    """Write four small MNIST-format files; return the arrays written."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, n_train, dtype=np.uint8),
        "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for role, arr in arrays.items():
        write_idx(folder / (NAMES[role] + (".gz" if gz else "")), arr)
    return arrays


def test_list_datasets():
    assert list_datasets() == ["mnist", "fashion-mnist", "digits", "synthetic", "spiral", "moons", "circles", "xor"]


@pytest.mark.parametrize("gz", [True, False])
def test_load_idx_from_data_dir(tmp_path, gz):
    arrays = write_fake(tmp_path / "d", gz=gz)
    ds = load("fashion-mnist", tmp_path / "d", download=False)
    assert isinstance(ds, Dataset)
    assert ds.X_train.shape == (6, 784) and ds.X_train.dtype == np.float32
    assert ds.X_test.shape == (4, 784)
    assert ds.y_train.dtype == np.int64 and ds.y_train.shape == (6,)
    np.testing.assert_array_equal(ds.y_train, arrays["train_labels"])
    np.testing.assert_allclose(ds.X_train, arrays["train_images"].reshape(6, -1) / 255.0, rtol=1e-6)
    assert 0.0 <= ds.X_train.min() and ds.X_train.max() <= 1.0
    assert ds.image_shape == (28, 28) and ds.name == "fashion-mnist"
    assert ds.class_names[0] == "T-shirt/top" and ds.class_names[9] == "Ankle boot"


def test_flatten_normalize_dtype(tmp_path):
    arrays = write_fake(tmp_path)
    raw = load("mnist", tmp_path, flatten=False, normalize=False, download=False)
    assert raw.X_train.dtype == np.uint8 and raw.X_train.shape == (6, 28, 28)
    np.testing.assert_array_equal(raw.X_test, arrays["test_images"])
    d64 = load("mnist", tmp_path, flatten=False, dtype=np.float64, download=False)
    assert d64.X_train.dtype == np.float64 and d64.X_train.shape == (6, 28, 28)
    np.testing.assert_array_equal(d64.X_train, arrays["train_images"] / 255.0)
    assert load("mnist", tmp_path, download=False).class_names == [str(i) for i in range(10)]


def test_search_order_data_dir_then_env_then_cache(tmp_path, monkeypatch):
    env_root = tmp_path / "env"
    from_env = write_fake(env_root / "mnist", seed=1)
    from_cache = write_fake(tmp_path / "cache" / "mlpnumpy" / "mnist", seed=2)
    write_fake(tmp_path / "system" / "mnist", seed=3)
    # Nothing set: the user cache beats the system folder.
    np.testing.assert_array_equal(load("mnist", download=False).y_train, from_cache["train_labels"])
    monkeypatch.setenv("MLPNUMPY_DATA", str(env_root))
    np.testing.assert_array_equal(load("mnist", download=False).y_train, from_env["train_labels"])
    from_arg = write_fake(tmp_path / "arg", seed=4)
    np.testing.assert_array_equal(load("mnist", tmp_path / "arg", download=False).y_train,
                                  from_arg["train_labels"])
    dirs = search_dirs("mnist", tmp_path / "arg")
    assert dirs.index(tmp_path / "arg") < dirs.index(env_root / "mnist") \
        < dirs.index(tmp_path / "cache" / "mlpnumpy" / "mnist") < dirs.index(tmp_path / "system" / "mnist")


def test_system_folder_is_used(tmp_path):
    write_fake(tmp_path / "system" / "fashion-mnist")
    assert find_files("fashion-mnist")["train_images"].parent == tmp_path / "system" / "fashion-mnist"
    assert find_files("mnist") is None


def test_incomplete_folder_is_skipped(tmp_path):
    write_fake(tmp_path / "a")
    (tmp_path / "a" / "t10k-labels-idx1-ubyte.gz").unlink()
    good = write_fake(tmp_path / "cache" / "mlpnumpy" / "mnist", seed=5)
    np.testing.assert_array_equal(load("mnist", tmp_path / "a", download=False).y_test,
                                  good["test_labels"])


def test_missing_without_download_says_where(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        load("mnist", tmp_path / "nowhere", download=False)
    msg = str(info.value)
    for needed in ("train-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", "MLPNUMPY_DATA",
                   str(tmp_path / "nowhere"), str(tmp_path / "cache" / "mlpnumpy" / "mnist"),
                   str(tmp_path / "system" / "mnist")):
        assert needed in msg


def test_wrong_content_is_rejected(tmp_path):
    write_fake(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.full(6, 11, dtype=np.uint8))
    with pytest.raises(FileFormatError, match="label 11"):
        load("mnist", tmp_path, download=False)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(5, dtype=np.uint8))
    with pytest.raises(FileFormatError, match="expected 6 uint8 labels"):
        load("mnist", tmp_path, download=False)


def test_bad_names_and_options():
    with pytest.raises(InvalidArgumentError, match="'mnsit' is not one of: mnist"):
        load("mnsit")
    with pytest.raises(InvalidArgumentError, match="n_trian"):
        load("synthetic", n_trian=10)
    with pytest.raises(InvalidArgumentError, match="dtype=int32"):
        load("synthetic", dtype=np.int32)


def test_digits_split():
    ds = load("digits")
    assert ds.X_train.shape[1] == 64 and ds.image_shape == (8, 8)
    n = len(ds.y_train) + len(ds.y_test)
    assert n == 1797
    assert 0.19 < len(ds.y_test) / n < 0.21
    # Stratified: every class is held out in (nearly) the same proportion.
    share = np.bincount(ds.y_test, minlength=10) / (np.bincount(ds.y_train, minlength=10)
                                                    + np.bincount(ds.y_test, minlength=10))
    assert np.all(np.abs(share - 0.2) < 0.01)
    assert ds.X_train.dtype == np.float32 and ds.X_train.max() == 1.0 and ds.X_train.min() == 0.0
    again = load("digits")
    np.testing.assert_array_equal(again.X_test, ds.X_test)  # the split is fixed
    raw = load("digits", normalize=False, flatten=False)
    assert raw.X_train.shape[1:] == (8, 8) and raw.X_train.max() == 16
    # Disjoint: no test image appears in the training set.
    train_rows = {r.tobytes() for r in raw.X_train.reshape(len(raw.X_train), -1)}
    dup = sum(r.tobytes() in train_rows for r in raw.X_test.reshape(len(raw.X_test), -1))
    assert dup <= 2  # digits has a couple of genuinely identical images; a leak would give ~359
    other = load("digits", seed=1)
    assert not np.array_equal(other.y_test, ds.y_test)


def test_make_mnist_like_structure():
    X, y = make_mnist_like(4000, seed=0, noise=0.5)
    assert X.shape == (4000, 784) and X.dtype == np.float32 and y.dtype == np.int64
    assert set(np.unique(y)) == set(range(10))
    # Class 3's band (features 234..311) is brighter by +1; the rest is zero-mean noise of sd 0.5.
    band = X[y == 3][:, 234:312]
    assert abs(band.mean() - 1.0) < 0.05
    assert abs(X[y == 3][:, :234].mean()) < 0.05
    assert abs(X[y == 3][:, :234].std() - 0.5) < 0.02
    # Same seed, same data; float64 draws the same values.
    X2, y2 = make_mnist_like(4000, seed=0, dtype=np.float64)
    np.testing.assert_array_equal(y2, y)
    np.testing.assert_allclose(X2, X, rtol=1e-6)
    Xg, _ = make_mnist_like(5, n_features=20, n_classes=4, seed=np.random.default_rng(0))
    assert Xg.shape == (5, 20)
    with pytest.raises(InvalidArgumentError, match="n_features=3"):
        make_mnist_like(5, n_features=3, n_classes=4)


def test_synthetic_has_no_leak():
    ds = load("synthetic", n_train=500, n_test=100, seed=0)
    assert ds.X_train.shape == (500, 784) and ds.X_test.shape == (100, 784)
    train_rows = {r.tobytes() for r in ds.X_train}
    assert not any(r.tobytes() in train_rows for r in ds.X_test)
    # The original bug: the test set was the first rows of the training set.
    assert not np.allclose(ds.X_test[:5], ds.X_train[:5])
    same = load("synthetic", n_train=500, n_test=100, seed=0)
    np.testing.assert_array_equal(same.X_test, ds.X_test)
    assert not np.array_equal(load("synthetic", n_train=10, n_test=5, seed=1).X_test,
                              load("synthetic", n_train=10, n_test=5, seed=0).X_test)


# --- user files ----------------------------------------------------------------------------

def test_npy_and_npz(tmp_path):
    table = np.array([[0.5, 1.0, 2], [1.5, 2.0, 0]])
    np.save(tmp_path / "t.npy", table)
    X, y = load_array_file(tmp_path / "t.npy")
    np.testing.assert_array_equal(X, table[:, :2])
    assert X.dtype == np.float32 and y.dtype == np.int64 and y.tolist() == [2, 0]
    X, y = load_array_file(tmp_path / "t.npy", label_column=0)
    assert y.dtype == np.float64 and y.tolist() == [0.5, 1.5]  # non-integral: kept as targets
    X, y = load_array_file(tmp_path / "t.npy", label_column=None)
    assert X.shape == (2, 3) and y is None
    np.savez(tmp_path / "a.npz", x=np.ones((3, 2, 2)), y=np.array([1, 2, 3]))
    X, y = load_array_file(tmp_path / "a.npz", dtype=np.float64)
    assert X.shape == (3, 2, 2) and X.dtype == np.float64 and y.tolist() == [1, 2, 3]
    np.savez(tmp_path / "b.npz", feats=np.ones((3, 2)), target=np.arange(3))
    with pytest.raises(FileFormatError, match="feats, target"):
        load_array_file(tmp_path / "b.npz")
    X, y = load_array_file(tmp_path / "b.npz", x_key="feats", y_key="target")
    assert y.tolist() == [0, 1, 2]
    np.savez(tmp_path / "c.npz", X=np.ones((3, 2)), y=np.arange(4))
    with pytest.raises(FileFormatError, match="do not match 3 rows"):
        load_array_file(tmp_path / "c.npz")


def test_pickle_is_refused(tmp_path):
    np.save(tmp_path / "o.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    with pytest.raises(FileFormatError, match="unpickling"):
        load_array_file(tmp_path / "o.npy", label_column=None)
    np.savez(tmp_path / "o.npz", X=np.array([{"a": 1}], dtype=object))
    with pytest.raises(FileFormatError, match="unpickling"):
        load_array_file(tmp_path / "o.npz")


def test_csv(tmp_path):
    (tmp_path / "h.csv").write_text("a,b,label\n1,2,0\n\n3,4.5,1\n")
    X, y = load_array_file(tmp_path / "h.csv")
    np.testing.assert_array_equal(X, [[1, 2], [3, 4.5]])
    assert y.tolist() == [0, 1] and y.dtype == np.int64
    X, y = load_array_file(tmp_path / "h.csv", label_column="a")
    assert y.tolist() == [1, 3] and X.tolist() == [[2, 0], [4.5, 1]]
    (tmp_path / "n.csv").write_text("1;2\n3;4\n")
    X, y = load_array_file(tmp_path / "n.csv", delimiter=";")
    assert X.tolist() == [[1], [3]] and y.tolist() == [2, 4]


def test_csv_errors_say_where(tmp_path):
    (tmp_path / "bad.csv").write_text("a,b,label\n1,2,0\n3,oops,1\n")
    with pytest.raises(FileFormatError, match=r"line 3, column 2 \('b'\): 'oops' is not"):
        load_array_file(tmp_path / "bad.csv")
    (tmp_path / "ragged.csv").write_text("1,2,3\n4,5\n")
    with pytest.raises(FileFormatError, match="line 2 has 2 fields, expected 3"):
        load_array_file(tmp_path / "ragged.csv")
    (tmp_path / "nan.csv").write_text("1,2\nnan,3\n")
    with pytest.raises(FileFormatError, match="line 2, column 1"):
        load_array_file(tmp_path / "nan.csv")
    (tmp_path / "empty.csv").write_text("a,b\n")
    with pytest.raises(FileFormatError, match="no data rows"):
        load_array_file(tmp_path / "empty.csv")
    (tmp_path / "bin.csv").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(FileFormatError):
        load_array_file(tmp_path / "bin.csv")
    (tmp_path / "ok.csv").write_text("a,b\n1,2\n")
    with pytest.raises(InvalidArgumentError, match="label_column='nope' .* expected one of: a, b"):
        load_array_file(tmp_path / "ok.csv", label_column="nope")
    with pytest.raises(FileFormatError, match="'.txt' is not supported"):
        load_array_file(tmp_path / "x.txt")
    (tmp_path / "junk.npy").write_bytes(b"not numpy at all")
    with pytest.raises(FileFormatError, match="junk.npy"):
        load_array_file(tmp_path / "junk.npy")
    np.save(tmp_path / "s.npy", np.array([["a", "b"]]))
    with pytest.raises(DataTypeError):
        load_array_file(tmp_path / "s.npy")


def test_embedded_digits_equal_scikit_learns():
    sk = pytest.importorskip("sklearn.datasets")
    from mlpnumpy.datasets.loader import _embedded_digits
    images, target = _embedded_digits()
    b = sk.load_digits()
    assert np.array_equal(images, b.images) and np.array_equal(target, b.target)
