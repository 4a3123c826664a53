"""The command line as a new user meets it (issue 13, points 4, 5, 7, 8, 10): MNIST downloads, no silent
wrong predictions, one-line errors with exit 2, no option silently ignored, formats documented."""
import argparse
import dataclasses
import hashlib
import http.server
import io as io_module
import json
import threading

import numpy as np
import pytest
from _helpers import isolated_data_dirs  # noqa: F401 - a fixture, used through usefixtures

from mlpnumpy.cli import commands as cli

from mlpnumpy.io import model_files as io
from mlpnumpy.datasets import load, registry
from mlpnumpy.datasets.idx import write_idx

TINY = ["--epochs", "1", "--hidden", "8", "--quiet"]


def _one_line_error(capsys, code, expected_code=2):
    """The stderr of a failed command: exactly one line, 'mlpnumpy: error: ...', no traceback."""
    err = capsys.readouterr().err
    assert code == expected_code, err
    assert err.startswith("mlpnumpy: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


@pytest.fixture(scope="module")
def digits_model(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "digits"
    assert cli.main(["train", "--data", "digits", *TINY, "--out", str(out)]) == 0
    return out / "model.npz"


# ------------------------------------------------------------------ point 4: MNIST downloads from the CLI
IDX_NAMES = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
             "t10k-labels-idx1-ubyte.gz"]


class _Mirror:
    """A static file server on 127.0.0.1 (port 0) that records the paths asked for."""

    def __init__(self, files: dict[str, bytes]):
        self.hits: list[str] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                outer.hits.append(self.path)
                body = files.get(self.path.rsplit("/", 1)[-1])
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/mnist/"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def mnist_mirror(tmp_path, monkeypatch, isolated_data_dirs):  # noqa: F811 - the fixture, by name
    """Tiny MNIST-format files served locally; the registry's digests and sizes are theirs, and
    $MLPNUMPY_MIRROR points the command line at the server."""
    rng = np.random.default_rng(0)
    arrays = [rng.integers(0, 256, (40, 28, 28), dtype=np.uint8), np.arange(40, dtype=np.uint8) % 10,
              rng.integers(0, 256, (20, 28, 28), dtype=np.uint8), np.arange(20, dtype=np.uint8) % 10]
    src = tmp_path / "src"
    src.mkdir()
    files = {}
    for name, arr in zip(IDX_NAMES, arrays):
        write_idx(src / name, arr)
        files[name] = (src / name).read_bytes()
    spec = registry.IDX_DATASETS["mnist"]
    entries = tuple(dataclasses.replace(f, sha256=hashlib.sha256(files[f.filename]).hexdigest(),
                                        size=len(files[f.filename]), also_accept=()) for f in spec.files)
    monkeypatch.setitem(registry.IDX_DATASETS, "mnist", dataclasses.replace(spec, files=entries))
    server = _Mirror(files)
    monkeypatch.setenv("MLPNUMPY_MIRROR", server.url)
    yield server, tmp_path / "cache" / "mlpnumpy" / "mnist"
    server.close()


MNIST_TINY = ["--data", "mnist", *TINY, "--validation-split", "0", "--batch-size", "16"]


def test_train_mnist_downloads_the_missing_files(mnist_mirror, tmp_path, capsys):
    server, cache = mnist_mirror
    out = tmp_path / "run"
    assert cli.main(["train", *MNIST_TINY, "--out", str(out)]) == 0, capsys.readouterr().err
    assert sorted(h.rsplit("/", 1)[-1] for h in server.hits) == sorted(IDX_NAMES)
    assert sorted(p.name for p in cache.iterdir()) == sorted(IDX_NAMES)  # verified files, no temporaries
    m = json.loads((out / "metrics.json").read_text())
    assert m["n_train"] == 40 and m["n_test"] == 20
    n = len(server.hits)
    assert cli.main(["evaluate", str(out / "model.npz"), "--json"]) == 0  # found on disk now
    assert json.loads(capsys.readouterr().out)["n"] == 20 and len(server.hits) == n


def test_no_download_forbids_it_and_names_files_and_folders(mnist_mirror, tmp_path, capsys):
    server, cache = mnist_mirror
    out = tmp_path / "run"
    err = _one_line_error(capsys, cli.main(["train", *MNIST_TINY, "--no-download", "--out", str(out)]))
    assert "train-images-idx3-ubyte.gz" in err and str(cache) in err and "nothing was downloaded" in err
    assert server.hits == [] and not out.exists()


def test_offline_machine_gets_the_files_and_folders(mnist_mirror, tmp_path, monkeypatch, capsys):
    server, cache = mnist_mirror
    server.close()  # nothing listens on the mirror's port any more
    out = tmp_path / "run"
    err = _one_line_error(capsys, cli.main(["train", *MNIST_TINY, "--out", str(out)]))
    assert "could not download" in err and "t10k-labels-idx1-ubyte.gz" in err and str(cache) in err
    assert not out.exists()
    assert not (cache.exists() and any(cache.iterdir()))  # no partial or temporary file left


def test_data_dir_is_the_only_folder_searched_and_the_download_target(mnist_mirror, tmp_path, capsys):
    server, cache = mnist_mirror
    assert cli.main(["train", *MNIST_TINY, "--out", str(tmp_path / "first")]) == 0  # fills the cache
    mine = tmp_path / "mine"
    mine.mkdir()
    err = _one_line_error(capsys, cli.main(["train", *MNIST_TINY, "--data-dir", str(mine), "--no-download",
                                            "--out", str(tmp_path / "r")]))
    assert str(mine) in err and str(cache) not in err  # the cached copy is not used behind its back
    assert cli.main(["train", *MNIST_TINY, "--data-dir", str(mine), "--out", str(tmp_path / "r2")]) == 0
    assert sorted(p.name for p in mine.iterdir()) == sorted(IDX_NAMES)


class _Terminal(io_module.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize("quiet", [False, True])
def test_download_progress_shows_on_a_terminal_unless_quiet(mnist_mirror, tmp_path, monkeypatch, quiet):
    term = _Terminal()
    monkeypatch.setattr("sys.stderr", term)
    args = ["train", "--data", "mnist", "--epochs", "1", "--hidden", "8", "--validation-split", "0",
            *(["--quiet"] if quiet else []), "--out", str(tmp_path / "run")]
    assert cli.main(args) == 0, term.getvalue()
    shown = term.getvalue()
    assert ("train-images-idx3-ubyte.gz" in shown) is not quiet, shown


# ------------------------------------------------------------------ point 5: no silent wrong predictions
def test_the_model_records_its_training_input_range(digits_model):
    meta = io.load_model(digits_model).metadata
    X = load("digits").X_train
    assert meta["input_range"] == [float(X.min()), float(X.max())] == [0.0, 1.0]


def test_predict_warns_in_one_line_when_the_input_is_far_outside_the_training_range(digits_model, tmp_path,
                                                                                      capsys):
    X = load("digits").X_test[:4]
    np.save(tmp_path / "ok.npy", X)
    np.save(tmp_path / "pixels.npy", X * 255)
    capsys.readouterr()
    assert cli.main(["predict", str(digits_model), str(tmp_path / "ok.npy")]) == 0
    assert capsys.readouterr().err == ""
    assert cli.main(["predict", str(digits_model), str(tmp_path / "pixels.npy")]) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("mlpnumpy: warning: ") and "pixels.npy" in err
    assert "[0, 255]" in err and "[0, 1]" in err and "divide by 255" in err


@pytest.mark.parametrize("ext", [".npy", ".csv"])
def test_predict_rejects_a_width_mismatch_naming_both_widths(digits_model, tmp_path, capsys, ext):
    X = load("digits").X_test[:3]
    wide = np.column_stack([X, [1, 2, 3]])
    path = tmp_path / f"wide{ext}"
    np.save(path, wide) if ext == ".npy" else np.savetxt(path, wide, delimiter=",")
    capsys.readouterr()
    err = _one_line_error(capsys, cli.main(["predict", str(digits_model), str(path)]))
    assert "rows have 65 values; the model takes 64" in err and "--label-column" in err
    # the label column dropped on request: the same predictions as the 64 features alone
    np.save(tmp_path / "plain.npy", X)
    assert cli.main(["predict", str(digits_model), str(path), "--label-column", "-1", "--json"]) == 0
    with_label = [r["top"] for r in json.loads(capsys.readouterr().out)]
    assert cli.main(["predict", str(digits_model), str(tmp_path / "plain.npy"), "--json"]) == 0
    assert with_label == [r["top"] for r in json.loads(capsys.readouterr().out)]


# ------------------------------------------------------------------ point 7: one line, exit 2
def test_config_folder(capsys):
    err = _one_line_error(capsys, cli.main(["train", "--config", "."]))
    assert "--config '.'" in err


def test_out_is_an_existing_file(tmp_path, capsys):
    (tmp_path / "README.md").write_text("hi")
    err = _one_line_error(capsys, cli.main(["train", *TINY, "--out", str(tmp_path / "README.md")]))
    assert "--out" in err and "existing file" in err


def test_export_to_a_folder_or_a_missing_folder_names_the_users_path(digits_model, tmp_path, capsys):
    pytest.importorskip("onnx")
    err = _one_line_error(capsys, cli.main(["export", str(digits_model), "--onnx", str(tmp_path)]))
    assert "is a folder" in err and ".tmp" not in err
    err = _one_line_error(capsys, cli.main(["export", str(digits_model), "--onnx", "/nonexistent/dir/x.onnx"]))
    assert "/nonexistent/dir/x.onnx" in err and "does not exist" in err and ".tmp" not in err


def test_predict_on_a_0d_npy(digits_model, tmp_path, capsys):
    np.save(tmp_path / "zero.npy", np.array(3.0))
    err = _one_line_error(capsys, cli.main(["predict", str(digits_model), str(tmp_path / "zero.npy")]))
    assert "0-d" in err and "64" in err


def test_experiment_out_under_a_file(capsys):
    err = _one_line_error(capsys, cli.main(["experiment", "init", "--quick", "--out", "/dev/null/x"]))
    assert "/dev/null" in err


@pytest.mark.parametrize("args", [
    ["--seed", "-1"],
    ["--config", "."],
    ["--data", "digits", "--test-data", "x.csv"],
    ["--lr", "-1"],
    ["--data", "mnist", "--data-dir", "/nonexistent"],
    ["--data", "digits", "--validation-split", "0.0001"],
])
def test_a_run_that_fails_validation_creates_no_folder(tmp_path, capsys, args):
    out = tmp_path / "deep" / "run"
    _one_line_error(capsys, cli.main(["train", *TINY, *args, "--out", str(out)]))
    assert not (tmp_path / "deep").exists()


# ------------------------------------------------------------------ point 8: no option silently ignored
def test_test_data_with_a_named_data_set(capsys, tmp_path):
    err = _one_line_error(capsys, cli.main(["train", "--data", "digits", "--test-data", "x.csv", *TINY,
                                            "--out", str(tmp_path / "r")]))
    assert "--test-data applies to --data FILE" in err


def test_missing_test_data_file(capsys, tmp_path):
    np.savetxt(tmp_path / "t.csv", np.column_stack([np.ones((20, 2)), np.arange(20) % 2]), delimiter=",")
    err = _one_line_error(capsys, cli.main(["train", "--data", str(tmp_path / "t.csv"), "--test-data",
                                            str(tmp_path / "x.csv"), *TINY, "--out", str(tmp_path / "r")]))
    assert "x.csv" in err and not (tmp_path / "r").exists()


@pytest.mark.parametrize("data", ["digits", "mnist"])
def test_data_dir_that_does_not_exist_or_does_not_apply(capsys, tmp_path, data):
    err = _one_line_error(capsys, cli.main(["train", "--data", data, "--data-dir", "/nonexistent", *TINY,
                                            "--out", str(tmp_path / "r")]))
    assert "--data-dir" in err


def test_evaluate_data_dir_that_does_not_exist(digits_model, capsys):
    err = _one_line_error(capsys, cli.main(["evaluate", str(digits_model), "--data", "mnist", "--data-dir",
                                            "/nonexistent"]))
    assert "'/nonexistent' is not an existing folder" in err


def test_demo_epochs_zero_is_refused(capsys, tmp_path):
    err = _one_line_error(capsys, cli.main(["demo", "--epochs", "0", "--quiet", "--out", str(tmp_path / "d")]))
    assert "--epochs=0" in err and not (tmp_path / "d").exists()


# ------------------------------------------------------------------ point 10: formats documented and clear
def _all_parsers():
    parser = cli.build_parser()
    yield "mlpnumpy", parser
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    yield from sub.choices.items()


def test_every_option_has_help_text():
    missing = [f"{name} {a.option_strings or a.dest}" for name, p in _all_parsers() for a in p._actions
               if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction)) and not a.help]
    assert missing == []


def test_train_help_shows_per_data_set_defaults_and_the_formats(capsys):
    assert cli.main(["train", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "(default: digits off, others on)" in out  # --standardize: the digits recipe turns it off
    from mlpnumpy.cli.options import default_help
    epochs = default_help("epochs")  # --epochs: every recipe's own, then the files' default
    assert epochs.startswith("default: digits 50, synthetic 10, ") and epochs.endswith(", others 20")
    assert f"({epochs})" in out
    assert "digits 512 50 32 0.0034 off cosine 0.13 0.38 2e-05" in out  # the recipes table
    assert "the LAST column is the label unless --label-column" in out
    assert "labels in array y (or Y); other names with --x-key/--y-key" in out


def _table(tmp_path, name, header, rows):
    path = tmp_path / name
    path.write_text("\n".join([header, *(",".join(map(str, r)) for r in rows)]) + "\n")
    return path


def _blobs(n=60, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    X = rng.normal(size=(n, 4)) + 3 * y[:, None]
    return X.round(4), y


def test_string_labels_become_class_names(tmp_path, capsys):
    X, y = _blobs()
    names = np.array(["bird", "cat", "dog"])
    path = _table(tmp_path, "pets.csv", "a,b,c,d,animal", [[*x, names[k]] for x, k in zip(X, y)])
    out = tmp_path / "run"
    assert cli.main(["train", "--data", str(path), "--epochs", "10", "--batch-size", "8", "--lr", "0.01",
                     "--hidden", "8", "--quiet", "--out", str(out)]) == 0, capsys.readouterr().err
    model = io.load_model(out / "model.npz")
    assert model.class_names == ["bird", "cat", "dog"]
    assert json.loads((out / "metrics.json").read_text())["test_accuracy"] > 0.9
    capsys.readouterr()
    assert cli.main(["evaluate", str(out / "model.npz"), "--data", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] > 0.9
    np.save(tmp_path / "x.npy", X[:3])
    assert cli.main(["predict", str(out / "model.npz"), str(tmp_path / "x.npy"), "--json"]) == 0
    assert [r["prediction"] for r in json.loads(capsys.readouterr().out)] == ["bird", "cat", "dog"]


def test_label_column_by_index_and_by_name(tmp_path, capsys):
    X, y = _blobs()
    path = _table(tmp_path, "first.csv", "label,a,b,c,d", [[k, *x] for x, k in zip(X, y)])
    for col in ("0", "label"):
        out = tmp_path / f"run-{col}"
        assert cli.main(["train", "--data", str(path), "--label-column", col, *TINY, "--out", str(out)]) == 0
        model = io.load_model(out / "model.npz")
        assert model.n_features_in == 4 and model.class_names == ["0", "1", "2"]
    err = _one_line_error(capsys, cli.main(["train", "--data", str(path), "--label-column", "nope", *TINY,
                                            "--out", str(tmp_path / "bad")]))
    assert "'nope' is not a column" in err and "label, a, b, c, d" in err


def test_npz_array_names_are_chosen_with_flags(tmp_path, capsys):
    X, y = _blobs()
    np.savez(tmp_path / "d.npz", feats=X, target=y)
    err = _one_line_error(capsys, cli.main(["train", "--data", str(tmp_path / "d.npz"), *TINY,
                                            "--out", str(tmp_path / "r0")]))
    assert "feats, target" in err and "--x-key" in err
    out = tmp_path / "r"
    assert cli.main(["train", "--data", str(tmp_path / "d.npz"), "--x-key", "feats", "--y-key", "target", *TINY,
                     "--out", str(out)]) == 0
    assert io.load_model(out / "model.npz").n_features_in == 4
    err = _one_line_error(capsys, cli.main(["train", "--data", str(tmp_path / "d.npz"), "--label-column", "0",
                                            *TINY, "--out", str(tmp_path / "r1")]))
    assert "--label-column applies to .csv and .npy" in err


def test_evaluate_a_model_trained_on_a_file_needs_data(tmp_path, capsys):
    X, y = _blobs()
    path = _table(tmp_path, "hdr.csv", "a,b,c,d,label", [[*x, k] for x, k in zip(X, y)])
    out = tmp_path / "run"
    assert cli.main(["train", "--data", str(path), *TINY, "--out", str(out)]) == 0
    err = _one_line_error(capsys, cli.main(["evaluate", str(out / "model.npz")]))
    assert "--data is required" in err and "hdr.csv" in err and "is not an existing file" not in err
    assert cli.main(["evaluate", str(out / "model.npz"), "--data", str(path)]) == 0


def test_resume_accepts_no_download(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["train", "--data", "digits", *TINY, "--schedule", "none", "--out", str(out)]) == 0
    code = cli.main(["train", "--resume", str(out), "--epochs", "2", "--no-download", "--quiet"])
    assert code == 0, capsys.readouterr().err
    assert json.loads((out / "metrics.json").read_text())["epochs_trained"] == 2


def test_every_flag_the_readme_names_exists():
    import re
    from pathlib import Path
    text = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Train on real images"):text.index("### Fashion-MNIST")]
    named = {f.removeprefix("no-") for f in re.findall(r"(?<![\w-])--(?:\[no-\])?([a-z][a-z-]*)", section)}
    known = {s.lstrip("-").removeprefix("no-") for _, p in _all_parsers() for a in p._actions
             for s in a.option_strings}
    assert {"label-column", "x-key", "y-key", "download", "data-dir"} <= named
    assert sorted(named - known) == []


def test_file_errors_name_the_flags_and_leave_no_folder(tmp_path, capsys):
    X, y = _blobs(10)
    path = _table(tmp_path, "small.csv", "a,b,c,d,animal", [[*x, "cat" if k else "dog"] for x, k in zip(X, y)])
    np.savez(tmp_path / "d.npz", feats=X, y=y)
    cases = [(["--data", str(path), "--label-column", "9"], "--label-column=9 is out of range"),
             (["--data", str(tmp_path / "d.npz")], "pass --x-key"),
             (["--data", str(tmp_path / "d.npz"), "--x-key", "nope"], "--x-key='nope' is not in"),
             (["--data", str(path)], "--validation-split: holding out fraction=0.1 of 8 rows leaves no held-out rows")]
    for args, expected in cases:
        err = _one_line_error(capsys, cli.main(["train", *args, *TINY, "--out", str(tmp_path / "r")]))
        assert expected in err
        assert not (tmp_path / "r").exists()
    one = _table(tmp_path, "one.csv", "a,label", [[1, 0]])
    err = _one_line_error(capsys, cli.main(["train", "--data", str(one), *TINY, "--out", str(tmp_path / "r")]))
    assert "20% of its rows are the test set" in err and not (tmp_path / "r").exists()


def test_text_labels_in_evaluate_and_predict_errors(tmp_path, capsys):
    X, y = _blobs(40)
    path = _table(tmp_path, "pets.csv", "a,b,c,d,animal", [[*x, ["cat", "dog", "eel"][k]] for x, k in zip(X, y)])
    out = tmp_path / "run"
    assert cli.main(["train", "--data", str(path), *TINY, "--validation-split", "0", "--out", str(out)]) == 0
    other = _table(tmp_path, "bird.csv", "a,b,c,d,animal", [[1, 2, 3, 4, "bird"]])
    err = _one_line_error(capsys, cli.main(["evaluate", str(out / "model.npz"), "--data", str(other)]))
    assert "label 'bird' is not one of the model's classes: cat, dog, eel" in err
    err = _one_line_error(capsys, cli.main(["predict", str(out / "model.npz"), str(path)]))
    assert "'cat' is not a finite number" in err and "--label-column" in err
    assert cli.main(["predict", str(out / "model.npz"), str(path), "--label-column", "animal"]) == 0


def test_a_data_set_name_in_capitals_gets_its_recipe():
    from mlpnumpy.cli import config
    assert config.resolve({"data": "DIGITS"})["epochs"] == config.DATA_DEFAULTS["digits"]["epochs"] == 50


def test_gradcheck_rows_beyond_the_data_is_refused(capsys):
    err = _one_line_error(capsys, cli.main(["gradcheck", "--rows", "100000"]))
    assert "--rows=100000" in err and "1..1438" in err  # was: silently 1,438 rows, printed as 100000
