"""Data files from strangers (issue 19): memory bounded by what the input honestly is, checked from
headers before anything large is allocated; no silent loss or change; clear errors, never raw ones.

Memory tests never allocate gigabytes: limits are set small through the configurable limit, and
tracemalloc shows that the refusal comes before the allocation.
"""
import gzip
import io
import json
import os
import struct
import tracemalloc
import warnings
import zipfile

import numpy as np
import pytest
from _helpers import isolated_data_dirs  # noqa: F401 - a fixture

from mlpnumpy.io._npyio import load_npy, load_npz, max_data_bytes
from mlpnumpy.datasets import load, load_array_file, write_idx
from mlpnumpy.datasets.idx import read_idx
from mlpnumpy.errors import FileFormatError, InvalidArgumentError, InvalidDataError, MLPNumpyError


def _peak(fn):
    """(result or exception, peak bytes traced) of ``fn()``."""
    tracemalloc.start()
    try:
        try:
            out = fn()
        except MLPNumpyError as exc:
            out = exc
        return out, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# ------------------------------------------------------------------------------------ .npz / .npy
def _zeros_npz(path, n_bytes, key="X"):
    """A deflated .npz of ``n_bytes`` zero bytes (uint8): ~1000x smaller on disk."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        with z.open(f"{key}.npy", "w", force_zip64=True) as f:
            np.lib.format.write_array_header_1_0(f, {"descr": "|u1", "fortran_order": False,
                                                     "shape": (n_bytes // 1000, 1000)})
            chunk = bytes(1 << 20)
            left = n_bytes
            while left:
                f.write(chunk[:min(left, len(chunk))])
                left -= min(left, len(chunk))
    return path


def test_npz_bomb_is_refused_by_the_limit_before_decompression(tmp_path):
    path = _zeros_npz(tmp_path / "bomb.npz", 40_000_000)    # 40 MB of uint8 in ~40 kB
    assert os.path.getsize(path) < 100_000
    # 40 MB of uint8 is 160 MB once float32: over a 100 MB limit though the raw bytes are under it
    out, peak = _peak(lambda: load_array_file(path, dtype=np.float32, max_bytes=100_000_000))
    assert isinstance(out, InvalidDataError), out
    msg = str(out)
    assert str(path) in msg and "(40000, 1000)" in msg and "160,000,000 bytes once converted" in msg
    assert "100,000,000" in msg and "MLPNUMPY_MAX_DATA_BYTES" in msg
    assert peak < 2_000_000  # refused from the header: nothing near 40 MB was allocated


def test_npz_limit_comes_from_the_environment(tmp_path, monkeypatch):
    path = _zeros_npz(tmp_path / "z.npz", 2_000_000)
    monkeypatch.setenv("MLPNUMPY_MAX_DATA_BYTES", "1e6")
    assert max_data_bytes() == 1_000_000
    with pytest.raises(InvalidDataError, match="limit of 1,000,000 bytes"):
        load_npz(path)
    monkeypatch.setenv("MLPNUMPY_MAX_DATA_BYTES", "lots")
    with pytest.raises(InvalidArgumentError, match="MLPNUMPY_MAX_DATA_BYTES='lots' is not a number"):
        load_npz(path)
    monkeypatch.delenv("MLPNUMPY_MAX_DATA_BYTES")
    assert load_npz(path)["X"].shape == (2000, 1000)


def test_npy_limit_counts_the_float_conversion(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((100, 11), np.uint8))
    with pytest.raises(InvalidDataError, match="4,400 bytes once converted"):
        load_array_file(tmp_path / "x.npy", max_bytes=4000)
    X, y = load_array_file(tmp_path / "x.npy", max_bytes=4400)
    assert X.shape == (100, 10)


def _patch_declared_size(path, new_size):
    """Rewrite the central directory's uncompressed size of the first member."""
    data = bytearray(open(path, "rb").read())
    i = data.index(b"PK\x01\x02")
    data[i + 24:i + 28] = struct.pack("<I", new_size)
    open(path, "wb").write(bytes(data))


def test_a_declared_size_deflate_cannot_reach_is_refused(tmp_path):
    path = tmp_path / "r.npz"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        buf = io.BytesIO()
        np.save(buf, np.arange(2000, dtype=np.float64))
        z.writestr("X.npy", buf.getvalue())
    comp = zipfile.ZipFile(path).infolist()[0].compress_size
    _patch_declared_size(path, comp * 1500)  # under the old 2000:1 cap, over deflate's 1032:1
    with pytest.raises(FileFormatError, match="more than its compression can expand to"):
        load_npz(path)


def test_duplicate_npz_members_are_refused(tmp_path):
    path = tmp_path / "dup.npz"
    with zipfile.ZipFile(path, "w") as z:
        for v in (1.0, 2.0):
            buf = io.BytesIO()
            np.save(buf, np.full((3, 2), v))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # zipfile may warn about the duplicate
                z.writestr("X.npy", buf.getvalue())
    with pytest.raises(FileFormatError, match="two arrays named 'X'"):
        load_array_file(path)


def test_zip_named_npy_and_absurd_npy_shape_are_clear_errors(tmp_path):
    np.savez(tmp_path / "a.npz", X=np.zeros((2, 3)))
    os.rename(tmp_path / "a.npz", tmp_path / "a.npy")
    with pytest.raises(FileFormatError, match="zip archive .*rename it to .npz"):
        load_array_file(tmp_path / "a.npy")
    with pytest.raises(FileFormatError, match="zip archive"):
        load_npy(tmp_path / "a.npy")
    with open(tmp_path / "b.npy", "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f8", "fortran_order": False, "shape": (0, 2 ** 62)})
    with pytest.raises(FileFormatError, match="absurd"):
        load_array_file(tmp_path / "b.npy")


# ------------------------------------------------------------------------------------ IDX files
def _idx_header(dims, code=0x08):
    return bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)


def test_gzip_idx_bounded_by_the_official_shape_before_decompressing(tmp_path):
    # 1 MB of zeros gzips to ~1 kB; the header declares 2000 images where the data set has 60000 of
    # 28x28: with max_shape the header is refused before a byte of data is decompressed.
    body = gzip.compress(_idx_header((70000, 28, 28)) + bytes(1 << 20))
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(body)
    out, peak = _peak(lambda: read_idx(path, max_shape=(60000, 28, 28)))
    assert isinstance(out, FileFormatError), out
    assert "(70000, 28, 28)" in str(out) and "at most (60000, 28, 28)" in str(out)
    assert peak < 500_000
    with pytest.raises(FileFormatError, match="at most"):
        read_idx(io.BytesIO(_idx_header((5, 28, 28, 1)) + bytes(5 * 784)), max_shape=(60000, 28, 28))
    write_idx(tmp_path / "ok.gz", np.zeros((7, 28, 28), np.uint8))
    assert read_idx(tmp_path / "ok.gz", max_shape=(60000, 28, 28)).shape == (7, 28, 28)


NAMES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]


def _fake_mnist(folder, n=5, gz=True, images_dims=None):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    arrays = [rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n, dtype=np.uint8)] * 2
    for name, arr in zip(NAMES, arrays):
        write_idx(folder / (name + (".gz" if gz else "")), arr)
    return folder


@pytest.mark.usefixtures("isolated_data_dirs")
def test_found_gz_files_must_be_the_official_ones(tmp_path, monkeypatch):
    monkeypatch.delenv("MLPNUMPY_VERIFY_DATA")
    d = _fake_mnist(tmp_path / "d")
    with pytest.raises(FileFormatError) as info:
        load("mnist", d, download=False)
    msg = str(info.value)
    assert "train-images-idx3-ubyte.gz: its SHA-256 is" in msg and "not that of the official mnist" in msg
    assert "440fcabf73cc" in msg and "MLPNUMPY_VERIFY_DATA=0" in msg
    # explicit opt-outs: the private copy's own digests, verify=False, the environment
    from mlpnumpy.datasets.download import file_sha256
    sums = {n + ".gz": file_sha256(d / (n + ".gz")) for n in NAMES}
    assert load("mnist", d, download=False, checksums=sums).X_train.shape == (5, 784)
    assert load("mnist", d, download=False, verify=False).X_train.shape == (5, 784)
    monkeypatch.setenv("MLPNUMPY_VERIFY_DATA", "0")
    assert load("mnist", d, download=False).X_train.shape == (5, 784)


@pytest.mark.usefixtures("isolated_data_dirs")
def test_digests_are_computed_once_and_cached(tmp_path, monkeypatch):
    import importlib
    paths = importlib.import_module("mlpnumpy.datasets.paths")
    monkeypatch.delenv("MLPNUMPY_VERIFY_DATA")
    d = _fake_mnist(tmp_path / "d")
    from mlpnumpy.datasets.download import file_sha256
    sums = {n + ".gz": file_sha256(d / (n + ".gz")) for n in NAMES}
    calls = []
    real = paths.file_sha256
    monkeypatch.setattr(paths, "file_sha256", lambda p: calls.append(p) or real(p))
    paths._VERIFIED.clear()
    load("mnist", d, download=False, checksums=sums)
    assert len(calls) == 4
    load("mnist", d, download=False, checksums=sums)
    assert len(calls) == 4                       # this process remembers
    paths._VERIFIED.clear()
    load("mnist", d, download=False, checksums=sums)
    assert len(calls) == 4                       # and so does the cache file, across processes
    assert json.loads(paths.cache_dir("verified.json").read_text())
    write_idx(d / (NAMES[1] + ".gz"), np.ones(5, np.uint8))  # changed file: hashed again, refused
    with pytest.raises(FileFormatError, match="train-labels-idx1-ubyte.gz: its SHA-256"):
        load("mnist", d, download=False, checksums=sums)
    assert len(calls) == 5


@pytest.mark.usefixtures("isolated_data_dirs")
def test_gunzipped_files_are_bounded_by_the_official_shapes(tmp_path):
    d = tmp_path / "d"
    _fake_mnist(d, gz=False)
    (d / NAMES[0]).write_bytes(_idx_header((5, 28, 29)) + bytes(5 * 28 * 29))
    with pytest.raises(FileFormatError, match=r"\(5, 28, 29\).*at most \(60000, 28, 28\)"):
        load("mnist", d, download=False)


# ------------------------------------------------------------------------------------ CSV
def test_csv_is_refused_by_the_limit_before_its_array_is_allocated(tmp_path):
    path = tmp_path / "big.csv"
    path.write_text("1,2,3,4,0\n" * 500_000)
    # 500,000 rows x 4 features x 4 bytes = 8,000,000 bytes as float32
    out, peak = _peak(lambda: load_array_file(path, max_bytes=1_000_000))
    assert isinstance(out, InvalidDataError), out
    assert "500,001 rows of 4 numbers take 8,000,016 bytes as float32" in str(out) and "1,000,000" in str(out)
    assert peak < 3_000_000  # the line count reads 1 MB blocks; the 8 MB array was never made
    X, y = load_array_file(path, max_bytes=9_000_000)
    assert X.shape == (500_000, 4) and X.dtype == np.float32 and (y == 0).all()


@pytest.mark.parametrize("piece,block", [(1 << 18, 4 << 20), (7, 64)])
def test_csv_parsed_in_chunks_equals_the_reference(tmp_path, monkeypatch, piece, block):
    import mlpnumpy.datasets._csvstream as cs
    monkeypatch.setattr(cs, "_PIECE_CHARS", piece)
    monkeypatch.setattr(cs, "_BLOCK_BYTES", block)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 9)).round(5)
    y = rng.integers(0, 3, 40)
    table = np.column_stack([X[:, :4], y, X[:, 4:]])
    lines = [",".join(repr(float(v)) if j != 4 else str(int(v)) for j, v in enumerate(r)) for r in table]
    (tmp_path / "t.csv").write_text("\n".join(lines[:20]) + "\n\n" + "\r\n".join(lines[20:]) + "\n")
    Xr, yr = load_array_file(tmp_path / "t.csv", label_column=4, dtype=np.float64)
    np.testing.assert_array_equal(Xr, X)
    np.testing.assert_array_equal(yr, y)
    # one very long line (the 200 MB one-line CSV, scaled down), label in the middle
    wide = rng.normal(size=5000).round(4)
    cells = [repr(float(v)) for v in wide]
    cells.insert(2500, "7")
    (tmp_path / "w.csv").write_text(",".join(cells) + "\n")
    Xw, yw = load_array_file(tmp_path / "w.csv", label_column=2500, dtype=np.float64)
    np.testing.assert_array_equal(Xw[0], wide)
    assert yw.tolist() == [7]
    cells[4000] = "oops"
    (tmp_path / "w.csv").write_text(",".join(cells) + "\n")
    with pytest.raises(FileFormatError, match=r"line 1, column 4001: 'oops' is not a finite number"):
        load_array_file(tmp_path / "w.csv", label_column=2500)


@pytest.mark.parametrize("first", ["1,\x00,3,0", "1,0x10,3,0", "1,2,abc,0"])
def test_a_first_row_with_one_odd_cell_is_data_reported_not_dropped(tmp_path, first):
    (tmp_path / "h.csv").write_text(first + "\n4,5,6,1\n7,8,9,0\n")
    with pytest.raises(FileFormatError, match="line 1, column [23]: .* is not a finite number"):
        load_array_file(tmp_path / "h.csv")


def test_quoted_newline_in_the_first_row_is_not_a_header(tmp_path):
    (tmp_path / "q.csv").write_text('"1\n",2,0\n4,5,1\n')
    X, y = load_array_file(tmp_path / "q.csv")  # its cells are numbers: data, not a header
    assert X.tolist() == [[1, 2], [4, 5]] and y.tolist() == [0, 1]
    (tmp_path / "ok.csv").write_text('a,"b, the second",label\n"1",2,0\n4,5,1\n')
    X, y = load_array_file(tmp_path / "ok.csv", label_column="label")
    assert X.tolist() == [[1, 2], [4, 5]] and y.tolist() == [0, 1]


def test_the_header_decision_is_logged(tmp_path, caplog):
    (tmp_path / "h.csv").write_text("a,b,label\n1,2,0\n")
    with caplog.at_level("INFO", logger="mlpnumpy.datasets"):
        load_array_file(tmp_path / "h.csv")
    assert "first row taken as the header" in caplog.text


def test_duplicate_csv_column_names_are_refused(tmp_path):
    (tmp_path / "d.csv").write_text("a,a,label\n1,2,0\n")
    with pytest.raises(FileFormatError, match="names column 'a' twice"):
        load_array_file(tmp_path / "d.csv", label_column="label")


def test_a_value_that_overflows_float32_names_its_column(tmp_path):
    (tmp_path / "o.csv").write_text("a,big,label\n1,2,0\n3,1e39,1\n")
    with pytest.raises(FileFormatError, match=r"line 3, column 2 \('big'\): 1e\+39 is too large for float32"):
        load_array_file(tmp_path / "o.csv")
    X, _ = load_array_file(tmp_path / "o.csv", dtype=np.float64)
    assert X[1, 1] == 1e39


def test_csv_label_column_errors(tmp_path):
    (tmp_path / "l.csv").write_text("0\n1\n")
    with pytest.raises(FileFormatError, match="only the label column"):
        load_array_file(tmp_path / "l.csv")
    (tmp_path / "m.csv").write_text("1,2\n3,4\n")
    with pytest.raises(InvalidArgumentError, match="label_column=True is not a column index"):
        load_array_file(tmp_path / "m.csv", label_column=True)
    (tmp_path / "x.csv").write_text("1,2,label\n3,4,0\n")
    with pytest.raises(FileFormatError, match="mixes numeric labels .* and text labels .*header=True"):
        load_array_file(tmp_path / "x.csv")


# ------------------------------------------------------------------------------------ classes
@pytest.mark.parametrize("content,label", [("1,2,0\n3,4,1000000000000\n", "1000000000000"),
                                           ("1,2,0\n3,4,1e20\n", "100000000000000000000")])
def test_a_huge_label_is_named_before_any_class_list_is_built(tmp_path, capsys, content, label):
    from mlpnumpy.cli import commands as cli
    (tmp_path / "d.csv").write_text(content)
    assert cli.main(["train", "--data", str(tmp_path / "d.csv"), "--epochs", "1", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert f"label {label} is out of range" in err and "0..9,999" in err and err.count("\n") == 1
    assert not (tmp_path / "r").exists()


def test_uint64_labels_are_reported_unwrapped(tmp_path):
    from mlpnumpy._validation import check_class_labels
    np.save(tmp_path / "u.npy", np.array([[1, 2, 0], [3, 4, 2 ** 64 - 1]], dtype=np.uint64))
    X, y = load_array_file(tmp_path / "u.npy")
    assert y.dtype == np.uint64 and int(y[1]) == 2 ** 64 - 1  # not wrapped to -1
    with pytest.raises(InvalidDataError, match="label 18446744073709551615 is out of range"):
        check_class_labels(y, "u.npy")


def test_the_class_cap_is_configurable(tmp_path, monkeypatch, capsys):
    from mlpnumpy.cli import commands as cli
    from mlpnumpy._validation import check_class_labels
    rng = np.random.default_rng(0)
    np.savetxt(tmp_path / "d.csv", np.column_stack([rng.normal(size=(30, 2)), np.arange(30) % 8]), delimiter=",")
    monkeypatch.setenv("MLPNUMPY_MAX_CLASSES", "5")
    assert cli.main(["train", "--data", str(tmp_path / "d.csv"), "--epochs", "1", "--out", str(tmp_path / "r")]) == 2
    assert "label 7 is out of range; class labels must be integers 0..4" in capsys.readouterr().err
    with pytest.raises(InvalidDataError, match="name 3 different classes, more than the cap of 2"):
        check_class_labels(np.array(["a", "b", "c"]), "f.csv", cap=2)
    with pytest.raises(InvalidDataError, match="label -1 is negative"):
        check_class_labels(np.array([0, -1]), "f.csv")
    monkeypatch.setenv("MLPNUMPY_MAX_CLASSES", "many")
    with pytest.raises(InvalidArgumentError, match="MLPNUMPY_MAX_CLASSES='many' is not an integer"):
        check_class_labels(np.array([0, 1]), "f.csv")


# ------------------------------------------------------------------------------------ raw errors
def test_one_hot_targets_must_be_probability_rows():
    from mlpnumpy import MLP
    X = np.zeros((4, 3), np.float32)
    m = MLP([3, 2], seed=0)
    with pytest.raises(InvalidDataError, match=r"y\[1, 0\]=5.0 is not a probability"):
        m.fit(X, np.array([[1, 0], [5.0, 0], [0, 1], [0, 1]]), epochs=1, verbose=0)
    with pytest.raises(InvalidDataError, match="row 0 sums to 0.5"):
        m.fit(X, np.array([[0.5, 0], [1, 0], [0, 1], [0, 1]]), epochs=1, verbose=0)
    m.fit(X, np.array([[0.9, 0.1], [1, 0], [0, 1], [0.2, 0.8]]), epochs=1, verbose=0)  # soft labels are fine


@pytest.mark.parametrize("cw,what", [(0, "shape ()"), ([0, 0], "all zero"), ([1, -1], r"class_weight\[1\]=-1.0"),
                                     ([1, float("nan")], r"class_weight\[1\]=nan")])
def test_class_weight_is_checked_with_a_clear_error(cw, what):
    from mlpnumpy import MLP
    with pytest.raises(InvalidArgumentError, match=what):
        MLP([3, 2], seed=0, loss={"name": "cross_entropy", "class_weight": cw})


def test_raw_errors_of_odd_array_files_are_clear(tmp_path):
    np.savez(tmp_path / "s.npz", X=np.float64(3), y=np.array([1]))
    np.save(tmp_path / "zero.npy", np.zeros((0, 3)))
    np.save(tmp_path / "label_only.npy", np.zeros((4, 1)))
    np.save(tmp_path / "ok.npy", np.zeros((4, 3)))
    for path, kw, err, what in [("s.npz", {}, FileFormatError, "a single number"),
                                ("zero.npy", {}, FileFormatError, "no data rows"),
                                ("label_only.npy", {}, FileFormatError, "no feature columns besides the label column"),
                                ("ok.npy", {"label_column": True}, InvalidArgumentError,
                                 "label_column=True is not a column index")]:
        with pytest.raises(err, match=what):
            load_array_file(tmp_path / path, **kw)


def test_a_tiny_file_blames_the_test_split_not_validation_split(tmp_path, capsys):
    from mlpnumpy.cli import commands as cli
    (tmp_path / "three.csv").write_text("1,2,0\n3,4,1\n5,6,0\n")
    assert cli.main(["train", "--data", str(tmp_path / "three.csv"), "--epochs", "1",
                     "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "20% of its rows are the test set" in err and "validation_split" not in err and "validation rows" not in err


def test_a_png_bomb_is_a_clear_exit_2(tmp_path, capsys):
    pytest.importorskip("PIL")
    import zlib
    from mlpnumpy import MLP, cli
    m = MLP([64, 10], seed=0)
    m.metadata = {"image_shape": [8, 8], "pixel_max": 1.0}
    m.save(tmp_path / "m.npz")

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    w = h = 20000  # 400 M pixels in 390 kB
    comp = zlib.compressobj(9)
    row = b"\x00" + bytes(w)
    data = b"".join(comp.compress(row) for _ in range(h)) + comp.flush()
    (tmp_path / "bomb.png").write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
                                        + chunk(b"IDAT", data) + chunk(b"IEND", b""))
    assert cli.main(["predict", str(tmp_path / "m.npz"), str(tmp_path / "bomb.png")]) == 2
    err = capsys.readouterr().err
    assert "bomb.png: the image is too large to read safely" in err and err.count("\n") == 1


def test_a_validation_set_with_an_unseen_class_is_refused():
    pytest.importorskip("sklearn")
    from mlpnumpy.sklearn import MLPClassifier
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(30, 4)), np.arange(30) % 3
    with pytest.raises(InvalidDataError, match="validation_data holds class 3, which the training targets do not"):
        MLPClassifier(max_iter=2, random_state=0).fit(X, y, validation_data=(X[:4], np.array([0, 1, 2, 3])))


def test_train_says_what_it_decided_about_a_csv_header(tmp_path, capsys):
    from mlpnumpy.cli import commands as cli
    rows = "".join(f"{i % 7},{i % 5},{i % 2}\n" for i in range(20))
    (tmp_path / "h.csv").write_text("a,b,label\n" + rows)
    assert cli.main(["train", "--data", str(tmp_path / "h.csv"), "--epochs", "1", "--out", str(tmp_path / "r")]) == 0
    assert "h.csv: first row taken as the header (none of its cells is a number)" in capsys.readouterr().out
    (tmp_path / "n.csv").write_text(rows)
    assert cli.main(["train", "--data", str(tmp_path / "n.csv"), "--epochs", "1", "--out", str(tmp_path / "r2")]) == 0
    assert "n.csv: first row read as data" in capsys.readouterr().out
