"""Downloads against a local HTTP server: verified, atomic, mirror fallback, clear offline errors."""
import gzip
import hashlib
import http.server
import socket
import threading
import time

import numpy as np
import pytest
from _helpers import isolated_data_dirs  # noqa: F401 - a fixture, used through pytestmark

from mlpnumpy.datasets import download, fetch, load
from mlpnumpy.datasets.idx import write_idx
from mlpnumpy.errors import DatasetNotFoundError, FileFormatError

FILES = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]


# every test runs on private data folders (no real cache, $MLPNUMPY_DATA or system folders)
pytestmark = pytest.mark.usefixtures("isolated_data_dirs")


@pytest.fixture(scope="module")
def payload(tmp_path_factory):
    """Bytes of four small, valid gzip IDX files, and their arrays."""
    folder = tmp_path_factory.mktemp("src")
    rng = np.random.default_rng(0)
    arrays = [rng.integers(0, 256, (5, 28, 28), dtype=np.uint8),
              rng.integers(0, 10, 5, dtype=np.uint8),
              rng.integers(0, 256, (3, 28, 28), dtype=np.uint8),
              rng.integers(0, 10, 3, dtype=np.uint8)]
    data = {}
    for name, arr in zip(FILES, arrays):
        write_idx(folder / name, arr)
        data[name] = (folder / name).read_bytes()
    return data, arrays


@pytest.fixture
def checksums(payload):
    return {name: hashlib.sha256(b).hexdigest() for name, b in payload[0].items()}


class Server:
    """http.server on 127.0.0.1, port 0. ``routes[path] = bytes | int (status) | ("short", bytes)``."""

    def __init__(self):
        self.routes, self.hits = {}, []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                outer.hits.append(self.path)
                body = outer.routes.get(self.path, 404)
                if isinstance(body, int):
                    self.send_error(body)
                    return
                short = isinstance(body, tuple)
                data = body[1] if short else body
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                # "short": announce the full length, send half, hang up.
                self.wfile.write(data[:len(data) // 2] if short else data)
                self.close_connection = True

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()

    def url(self, prefix):
        return f"http://127.0.0.1:{self.httpd.server_port}/{prefix}/"

    def serve(self, prefix, files):
        for name, body in files.items():
            self.routes[f"/{prefix}/{name}"] = body

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_good_download_then_cached(tmp_path, server, payload, checksums):
    data, arrays = payload
    server.serve("m", data)
    dest = tmp_path / "dl"
    ds = load("mnist", dest, mirrors=[server.url("m")], checksums=checksums, timeout=5)
    np.testing.assert_array_equal(ds.y_train, arrays[1])
    np.testing.assert_array_equal(ds.X_test.reshape(3, 28, 28), arrays[2] / np.float32(255))
    assert _leftovers(dest) == sorted(FILES)  # verified files only, no temporaries
    for name in FILES:
        assert (dest / name).read_bytes() == data[name]
    n = len(server.hits)
    assert n == 4
    load("mnist", dest, mirrors=[server.url("m")], checksums=checksums)
    assert len(server.hits) == n  # found on disk: nothing downloaded again


def test_corrupted_file_is_rejected_and_removed(tmp_path, server, payload, checksums):
    data = dict(payload[0])
    bad = bytearray(data[FILES[0]])
    bad[len(bad) // 2] ^= 0xFF
    data[FILES[0]] = bytes(bad)
    server.serve("m", data)
    dest = tmp_path / "dl"
    with pytest.raises(FileFormatError, match="SHA-256 mismatch"):
        download("mnist", dest, mirrors=[server.url("m")], checksums=checksums, timeout=5)
    assert FILES[0] not in _leftovers(dest)
    assert not [p for p in _leftovers(dest) if p.startswith(".")]  # no temporaries


def test_registry_digest_guards_real_names(tmp_path, server, payload):
    # Without overridden checksums the real MNIST digests and sizes apply: fake data fails.
    server.serve("m", payload[0])
    with pytest.raises(FileFormatError, match="expected at most|bytes, the file has"):
        download("mnist", tmp_path / "dl", mirrors=[server.url("m")], timeout=5)
    assert _leftovers(tmp_path / "dl") == []


@pytest.mark.parametrize("how", ["short-read", "short-file"])
def test_truncated_download(tmp_path, server, payload, checksums, how):
    data = dict(payload[0])
    full = data[FILES[0]]
    data[FILES[0]] = ("short", full) if how == "short-read" else full[:-20]
    server.serve("m", data)
    dest = tmp_path / "dl"
    expected = "truncated: got" if how == "short-read" else "SHA-256 mismatch"
    with pytest.raises(FileFormatError, match=expected):
        download("mnist", dest, mirrors=[server.url("m")], checksums=checksums, timeout=5)
    assert FILES[0] not in _leftovers(dest)
    assert not [p for p in _leftovers(dest) if p.startswith(".")]


def test_404_falls_through_to_next_mirror(tmp_path, server, payload, checksums):
    server.serve("good", payload[0])
    paths = download("mnist", tmp_path / "dl", mirrors=[server.url("bad"), server.url("good")],
                     checksums=checksums, timeout=5)
    assert set(paths) == {"train_images", "train_labels", "test_images", "test_labels"}
    assert server.hits[:2] == ["/bad/" + FILES[0], "/good/" + FILES[0]]


def test_corrupt_mirror_falls_through_to_good_one(tmp_path, server, payload, checksums):
    server.serve("good", payload[0])
    server.serve("evil", {n: b"\x1f\x8b junk" for n in FILES})
    download("mnist", tmp_path / "dl", mirrors=[server.url("evil"), server.url("good")],
             checksums=checksums, timeout=5)
    assert (tmp_path / "dl" / FILES[0]).read_bytes() == payload[0][FILES[0]]


def test_404_everywhere_is_a_clear_error(tmp_path, server, checksums):
    with pytest.raises(DatasetNotFoundError) as info:
        download("mnist", tmp_path / "dl", mirrors=[server.url("a"), server.url("b")],
                 checksums=checksums, timeout=5)
    msg = str(info.value)
    assert "404" in msg and server.url("a") in msg and server.url("b") in msg
    assert "MLPNUMPY_DATA" in msg


def _closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_offline_lists_files_and_folders(tmp_path, checksums, monkeypatch):
    monkeypatch.setenv("MLPNUMPY_MIRROR", f"http://127.0.0.1:{_closed_port()}/x/")
    t0 = time.perf_counter()
    with pytest.raises(DatasetNotFoundError) as info:
        load("fashion-mnist", tmp_path / "dl", checksums=checksums, timeout=2)
    assert time.perf_counter() - t0 < 5
    msg = str(info.value)
    for needed in FILES + ["MLPNUMPY_DATA", str(tmp_path / "dl"),
                           str(tmp_path / "cache" / "mlpnumpy" / "fashion-mnist"),
                           str(tmp_path / "system" / "fashion-mnist")]:
        assert needed in msg
    assert not [p for p in _leftovers(tmp_path / "dl") if p.endswith(".gz") or p.startswith(".")]


def test_silent_server_times_out(tmp_path, checksums):
    # Accepts connections (the kernel's backlog) but never answers.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        url = f"http://127.0.0.1:{s.getsockname()[1]}/"
        t0 = time.perf_counter()
        with pytest.raises(DatasetNotFoundError, match="timed out"):
            download("mnist", tmp_path / "dl", mirrors=[url], checksums=checksums, timeout=0.5)
        assert time.perf_counter() - t0 < 5


def test_env_mirror_and_cache_destination(tmp_path, server, payload, checksums, monkeypatch):
    server.serve("env", payload[0])
    monkeypatch.setenv("MLPNUMPY_MIRROR", server.url("env"))
    paths = fetch("mnist", checksums=checksums, timeout=5)
    cache = tmp_path / "cache" / "mlpnumpy" / "mnist"
    assert paths["train_images"] == cache / FILES[0]
    monkeypatch.setenv("MLPNUMPY_DATA", str(tmp_path / "shared"))
    paths = fetch("fashion-mnist", checksums=checksums, timeout=5)
    assert paths["test_labels"] == tmp_path / "shared" / "fashion-mnist" / FILES[3]


def test_gzip_of_download_is_intact(tmp_path, server, payload, checksums):
    server.serve("m", payload[0])
    paths = download("mnist", tmp_path / "dl", mirrors=server.url("m"), checksums=checksums)
    assert gzip.decompress(paths["train_labels"].read_bytes())[:4] == b"\x00\x00\x08\x01"


@pytest.mark.parametrize("with_tqdm", [True, False])
def test_progress_display(tmp_path, server, payload, checksums, monkeypatch, capsys, with_tqdm):
    if not with_tqdm:
        monkeypatch.setitem(__import__("sys").modules, "tqdm.auto", None)  # import now fails
    server.serve("m", payload[0])
    download("mnist", tmp_path / "dl", mirrors=server.url("m"), checksums=checksums, progress=True)
    err = capsys.readouterr().err
    assert "train-images-idx3-ubyte.gz" in err
    if not with_tqdm:
        assert "100%" in err
    download("mnist", tmp_path / "dl2", mirrors=server.url("m"), checksums=checksums, progress=False)
    assert capsys.readouterr().err == ""
