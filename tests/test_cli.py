"""The command line end to end on the embedded digits, in-process and as ``python -m mlpnumpy``."""
import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from mlpnumpy.cli import commands as cli

from mlpnumpy.io import model_files as io
from mlpnumpy.datasets import load

Image = pytest.importorskip("PIL.Image")

FAST = ["--epochs", "3", "--hidden", "32", "--quiet"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "digits"
    assert cli.main(["train", "--data", "digits", *FAST, "--out", str(out)]) == 0
    return out


def test_train_writes_the_run_folder(run):
    for name in ("model.npz", "checkpoint.npz", "metrics.json", "history.csv", "curves.png", "weights.png",
                 "confusion.png", "misclassified.png"):
        assert (run / name).is_file(), name
    with Image.open(run / "curves.png") as im:
        assert im.size == (1100, 400)
    for name in ("weights.png", "confusion.png", "misclassified.png"):
        with Image.open(run / name) as im:
            im.load()
            assert im.size[0] > 100 and im.size[1] > 100
    rows = list(csv.DictReader(open(run / "history.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "lr"} <= set(rows[0])
    assert not [p for p in os.listdir(run) if p.endswith(".tmp")]


def test_metrics_agree_with_the_saved_model(run):
    m = json.loads((run / "metrics.json").read_text())
    model = io.load_model(run / "model.npz")
    ds = load("digits")
    res = model.evaluate(ds.X_test, ds.y_test, return_dict=True)
    assert res["accuracy"] == m["test_accuracy"]
    assert res["loss"] == pytest.approx(m["test_loss"], rel=1e-6)
    assert m["epochs_trained"] == 3 and m["interrupted"] is False
    assert m["config"]["hidden"] == [32] and m["seed"] == 0
    assert np.array(m["confusion_matrix"]).sum() == len(ds.y_test)
    assert set(m["per_class"]) == set(ds.class_names)
    assert m["versions"]["numpy"] == np.__version__
    assert model.metadata["image_shape"] == [8, 8]


def test_resume_continues_bit_exactly(tmp_path):
    common = ["--data", "digits", "--hidden", "16", "--quiet", "--schedule", "none", "--dropout", "0.1"]
    assert cli.main(["train", *common, "--epochs", "4", "--out", str(tmp_path / "straight")]) == 0
    assert cli.main(["train", *common, "--epochs", "2", "--out", str(tmp_path / "split")]) == 0
    assert cli.main(["train", "--resume", str(tmp_path / "split"), "--epochs", "4", "--quiet"]) == 0
    a = io.load_model(tmp_path / "straight" / "model.npz")
    b = io.load_model(tmp_path / "split" / "model.npz")
    assert all(np.array_equal(x, y) for x, y in zip(a.get_weights(), b.get_weights()))
    rows = list(csv.DictReader(open(tmp_path / "split" / "history.csv")))
    assert len(rows) == 4
    m = json.loads((tmp_path / "split" / "metrics.json").read_text())
    assert m["resumed"] is True and m["epochs_trained"] == 4


def test_config_file_and_flags_override_it(tmp_path):
    toml = tmp_path / "run.toml"
    toml.write_text('data = "digits"\nhidden = [20]\nepochs = 5\nbatch-size = 64\noptimizer = "sgd"\nlr = 0.1\n')
    out = tmp_path / "cfg"
    assert cli.main(["train", "--config", str(toml), "--epochs", "2", "--quiet", "--out", str(out)]) == 0
    cfg = json.loads((out / "metrics.json").read_text())["config"]
    assert cfg["hidden"] == [20] and cfg["batch_size"] == 64 and cfg["optimizer"] == "sgd"
    assert cfg["epochs"] == 2


def test_evaluate_and_predict(run, tmp_path, capsys):
    capsys.readouterr()
    assert cli.main(["evaluate", str(run / "model.npz"), "--data", "digits", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["accuracy"] == json.loads((run / "metrics.json").read_text())["test_accuracy"]

    ds = load("digits")
    np.save(tmp_path / "rows.npy", ds.X_test[:3])
    assert cli.main(["predict", str(run / "model.npz"), str(tmp_path / "rows.npy"), "--json", "--top", "2"]) == 0
    recs = json.loads(capsys.readouterr().out)
    model = io.load_model(run / "model.npz")
    assert [r["prediction"] for r in recs] == [str(c) for c in model.predict(ds.X_test[:3])]
    assert all(len(r["top"]) == 2 and r["top"][0]["probability"] >= r["top"][1]["probability"] for r in recs)

    # an 8x8 digit saved as a 32x32 PNG: resized back to 8x8 and classified
    img = (ds.X_test[0].reshape(8, 8) * 255).astype(np.uint8)
    Image.fromarray(img).resize((32, 32), Image.NEAREST).save(tmp_path / "digit.png")
    assert cli.main(["predict", str(run / "model.npz"), str(tmp_path / "digit.png"), "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)[0]
    assert rec["prediction"] in model.class_names and 0 < rec["top"][0]["probability"] <= 1
    assert cli.main(["predict", str(run / "model.npz"), str(tmp_path / "rows.npy")]) == 0
    assert "rows.npy[0]" in capsys.readouterr().out


def test_info_and_gradcheck(capsys):
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert "numpy" in out and "data digits: embedded" in out
    assert cli.main(["gradcheck"]) == 0
    out = capsys.readouterr().out
    assert "PASS" in out and "0.W" in out


@pytest.mark.parametrize("args", [
    ["train", "--lr", "-1"],
    ["train", "--activation", "rleu"],
    ["train", "--data", "nosuchfile.npy"],
    ["train", "--epochs", "zero"],
    ["train", "--bogus-flag"],
    ["evaluate", "nosuchmodel.npz", "--data", "digits"],
    ["frobnicate"],
])
def test_bad_arguments_give_one_line(args, capsys):
    code = cli.main(args)
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("mlpnumpy: error: ") and err.count("\n") == 1 and "Traceback" not in err


def test_bad_activation_message_names_the_choices(capsys):
    cli.main(["train", "--activation", "rleu"])
    assert "activation='rleu' is not one of: relu" in capsys.readouterr().err


def test_hostile_model_file_is_one_line(tmp_path, capsys):
    (tmp_path / "evil.npz").write_bytes(b"PK\x03\x04 not really a zip")
    assert cli.main(["predict", str(tmp_path / "evil.npz"), "x.npy"]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_python_dash_m_subprocess(tmp_path):
    out = tmp_path / "sub"
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    r = subprocess.run([sys.executable, "-m", "mlpnumpy", "train", "--data", "digits", "--epochs", "2",
                        "--hidden", "16", "--out", str(out)], capture_output=True, text=True, env=env,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert "Test accuracy" in r.stdout and "Epoch 2/2" in r.stdout
    assert (out / "model.npz").is_file()
    r = subprocess.run([sys.executable, "-m", "mlpnumpy", "train", "--lr", "-1"], capture_output=True,
                       text=True, env=env, timeout=60)
    assert r.returncode == 2 and "Traceback" not in r.stderr and r.stderr.startswith("mlpnumpy: error:")


def test_track_internals_lands_in_metrics_and_a_plot(tmp_path):
    out = tmp_path / "int"
    assert cli.main(["train", "--data", "digits", *FAST, "--track-internals", "--out", str(out)]) == 0
    m = json.loads((out / "metrics.json").read_text())
    keys = [k for k in m["history"] if k.startswith("internals/")]
    assert any(k.endswith("act_std") for k in keys) and any(k.endswith("dead_frac") for k in keys)
    assert all(len(m["history"][k]) == 3 for k in keys)
    with Image.open(out / "internals.png") as im:
        im.load()


def test_ctrl_c_during_train_still_writes_the_run_folder(tmp_path):
    import signal
    import time
    out = tmp_path / "interrupted"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "mlpnumpy", "train", "--data", "digits", "--epochs", "500",
                             "--hidden", "64", "--quiet", "--out", str(out)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    # history.csv is written when training starts (header only) and after every epoch (issue 13.2):
    # wait for a first epoch's row
    while not ((out / "history.csv").exists() and len((out / "history.csv").read_text().splitlines()) > 1) \
            and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert "Traceback" not in stderr
    assert proc.returncode == 130  # issue 13.2: an interrupted run does not exit 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["interrupted"] is True and 1 <= m["epochs_trained"] < 500
    assert io.load_model(out / "model.npz").n_features_in == 64
