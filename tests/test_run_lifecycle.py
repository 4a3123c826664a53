"""The life of a training run (issue 13, points 2, 3 and 9): Ctrl-C then continue or ``--resume`` is
bit-exact, a run folder belongs to one run, and a finished run can be trained further.

Interrupts are real SIGINTs: ``signal.raise_signal`` from a callback at a chosen batch (deterministic:
the handler runs before the call returns), and one sent from outside at whatever moment it lands.
"""
import csv
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from mlpnumpy import MLP, cli, io
from mlpnumpy.training.callbacks import Callback, ProgressBar
from mlpnumpy.datasets import load

SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")


class InterruptAt(Callback):
    """Sends this process a SIGINT after batch ``batch`` of the fit's epoch ``epoch`` (0-based)."""

    def __init__(self, epoch, batch):
        self.at, self.epoch = (epoch, batch), None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_batch_end(self, batch, logs=None):
        if (self.epoch, batch) == self.at:
            signal.raise_signal(signal.SIGINT)


def _same_history(a: dict, b: dict) -> None:
    assert set(a) == set(b)
    for k in a:
        if k != "seconds":
            assert a[k] == b[k], k


# ------------------------------------------------------------------------------ fit, in process
@pytest.mark.parametrize("schedule", ["cosine", "onecycle"])
def test_interrupted_fit_undoes_the_epoch_and_continues_bit_exactly(schedule):
    ds = load("digits")
    X, y = ds.X_train[:600], ds.y_train[:600]
    kw = dict(batch_size=32, validation_data=(ds.X_test[:200], ds.y_test[:200]), verbose=0)

    def model():
        return MLP([64, 32, 10], seed=3, dropout=0.2, batch_norm=True)

    straight = model()
    h_straight = straight.fit(X, y, epochs=4, optimizer="adam", lr_schedule=schedule, **kw)

    m = model()
    h1 = m.fit(X, y, epochs=4, optimizer="adam", lr_schedule=schedule, callbacks=[InterruptAt(2, 7)], **kw)
    assert h1.interrupted and len(h1) == 2 and m.epochs_trained == 2  # epoch 3 is not counted
    h2 = m.fit(X, y, epochs=2, **kw)  # the optimizer and schedule carry on
    assert not h2.interrupted and m.epochs_trained == 4
    _same_history(h_straight.history, {k: h1.history[k] + h2.history[k] for k in h1.history})
    assert all(np.array_equal(a, b) for a, b in zip(straight.get_weights(), m.get_weights()))
    sa, sb = straight.optimizer.state_dict(), m.optimizer.state_dict()
    assert sa["iterations"] == sb["iterations"] and sa["lr"] == sb["lr"]
    assert all(np.array_equal(u[k], v[k]) for u, v in zip(sa["state"], sb["state"]) for k in u)


def test_progress_counts_epochs_from_where_training_continues():
    ds = load("digits")
    m = MLP([64, 8, 10], seed=0)
    m.fit(ds.X_train, ds.y_train, epochs=3, verbose=0)
    from io import StringIO
    out = StringIO()
    m.fit(ds.X_train, ds.y_train, epochs=2, callbacks=[ProgressBar("epochs", stream=out)], verbose=0)
    assert [line.split(",")[0] for line in out.getvalue().splitlines()] == ["Epoch 4/5", "Epoch 5/5"]


def test_a_second_ctrl_c_stops_at_once_and_leaves_the_model_at_the_epochs_start():
    ds = load("digits")
    m = MLP([64, 16, 10], seed=1)
    m.fit(ds.X_train, ds.y_train, epochs=1, verbose=0)
    before = m.get_weights()
    iterations, rng_state = m.optimizer.iterations, m.rng.bit_generator.state

    class TwoSignals(Callback):
        def on_batch_end(self, batch, logs=None):
            if batch == 5:
                signal.raise_signal(signal.SIGINT)  # the first asks to stop after this batch ...
                signal.raise_signal(signal.SIGINT)  # ... the second raises KeyboardInterrupt here

    with pytest.raises(KeyboardInterrupt):
        m.fit(ds.X_train, ds.y_train, epochs=3, callbacks=[TwoSignals()], verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(before, m.get_weights()))
    assert m.optimizer.iterations == iterations and m.epochs_trained == 1
    assert m.rng.bit_generator.state == rng_state
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


# ------------------------------------------------------------------------- mlpnumpy train, Ctrl-C
COMMON = ["--data", "digits", "--hidden", "16", "--epochs", "4", "--dropout", "0.1", "--schedule", "onecycle"]


def _interrupt_fit_at(monkeypatch, epoch, batch):
    """Make the next fit get a SIGINT after ``batch`` of its ``epoch`` (a real signal, raised here)."""
    from mlpnumpy.training import fitting as training
    real_fit = training.fit

    def fit(model, X, y, **kw):
        monkeypatch.setattr(training, "fit", real_fit)  # only the first fit is interrupted
        kw["callbacks"] = [*kw.get("callbacks", ()), InterruptAt(epoch, batch)]
        return real_fit(model, X, y, **kw)
    monkeypatch.setattr(training, "fit", fit)


def _rows(path):
    with open(path) as fh:
        return [{k: v for k, v in r.items() if k != "seconds"} for r in csv.DictReader(fh)]


def _assert_same_run(a, b):
    """Two run folders hold the same training, bit for bit (wall times aside)."""
    ma, mb = (json.loads((d / "metrics.json").read_text()) for d in (a, b))
    for key in ("train_loss", "train_accuracy", "validation_loss", "validation_accuracy", "test_loss",
                "test_accuracy", "epochs_trained", "confusion_matrix"):
        assert ma[key] == mb[key], key
    _same_history(ma["history"], mb["history"])
    assert _rows(a / "history.csv") == _rows(b / "history.csv")
    wa, wb = (io.load_model(d / "model.npz").get_weights() for d in (a, b))
    assert all(np.array_equal(x, y) for x, y in zip(wa, wb))


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    out = tmp_path_factory.mktemp("straight") / "run"
    assert cli.main(["train", *COMMON, "--quiet", "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize("epoch,batch", [(0, 3), (2, 20)])
def test_ctrl_c_mid_epoch_then_resume_equals_the_uninterrupted_run(straight, tmp_path, monkeypatch, capsys,
                                                                    epoch, batch):
    out = tmp_path / "run"
    _interrupt_fit_at(monkeypatch, epoch, batch)
    assert cli.main(["train", *COMMON, "--out", str(out)]) == 130  # not quiet: --resume keeps that
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"train --resume {out}" in err
    # the interrupted epoch is not recorded: the folder holds `epoch` whole epochs
    m = json.loads((out / "metrics.json").read_text())
    assert m["interrupted"] is True and m["epochs_trained"] == epoch
    assert len(_rows(out / "history.csv")) == epoch
    assert io.load_checkpoint(out / "checkpoint.npz")[0].epochs_trained == epoch

    assert cli.main(["train", "--resume", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"epochs {epoch + 1} to 4" in printed and f"Epoch {epoch + 1}/4," in printed
    assert "Epoch 1/" not in printed or epoch == 0
    _assert_same_run(straight, out)
    assert json.loads((out / "metrics.json").read_text())["interrupted"] is False


def test_ctrl_c_while_the_folder_is_written_leaves_a_folder_resume_finishes(straight, tmp_path, monkeypatch,
                                                                             capsys):
    from mlpnumpy.plots import figures as plots
    out = tmp_path / "run"

    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt  # what Ctrl-C raises once training is over
    monkeypatch.setattr(plots, "plot_confusion_matrix", ctrl_c)
    assert cli.main(["train", *COMMON, "--out", str(out)]) == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"train --resume {out}" in err
    assert not (out / "metrics.json").exists() and not (out / ".lock").exists()
    monkeypatch.undo()

    assert cli.main(["train", "--resume", str(out), "--overwrite"]) == 2
    assert "--overwrite would delete the checkpoint" in capsys.readouterr().err
    # options repeated with the run's own values are no change (as a user retyping the command does)
    assert cli.main(["train", "--resume", str(out), "--data", "digits", "--hidden", "16"]) == 0
    assert "Training is over (4 epochs)" in capsys.readouterr().out
    _assert_same_run(straight, out)
    assert (out / "confusion.png").is_file()
    # now finished: resuming again is refused, and the message says how to train further
    assert cli.main(["train", "--resume", str(out)]) == 2
    err = capsys.readouterr().err
    assert "is finished after 4 epochs" in err and "--finetune --epochs N" in err


def test_a_real_sigint_to_python_dash_m_then_resume_is_bit_exact(tmp_path):
    args = ["--data", "digits", "--hidden", "64", "--epochs", "30", "--batch-size", "16", "--dropout", "0.1"]
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-m", "mlpnumpy", "train", *args, "--quiet", "--out", str(out)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if (out / "history.csv").is_file() and len((out / "history.csv").read_text().splitlines()) >= 2:
            break  # an epoch is done: training is under way
        time.sleep(0.01)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGINT)  # lands wherever it lands: mid-batch, validation, a checkpoint write
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err.count("\n") == 1 and err.startswith("mlpnumpy: ") and "--resume" in err
    assert io.load_checkpoint(out / "checkpoint.npz")[0].epochs_trained >= 1

    assert cli.main(["train", "--resume", str(out), "--quiet"]) == 0
    assert cli.main(["train", *args, "--quiet", "--out", str(tmp_path / "straight")]) == 0
    _assert_same_run(tmp_path / "straight", out)


# ------------------------------------------------------------------------ one run per folder
FAST = ["--data", "digits", "--hidden", "8", "--epochs", "1", "--quiet"]


def test_a_folder_holding_another_run_is_refused_and_overwrite_replaces_it(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["train", *FAST, "--track-internals", "--seed", "1", "--out", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert "internals.png" in before and ".lock" not in before  # the lock goes with the run
    capsys.readouterr()
    assert cli.main(["train", *FAST, "--seed", "2", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds another run" in err and "--resume" in err and "--overwrite" in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # untouched

    assert cli.main(["train", *FAST, "--seed", "2", "--out", str(out), "--overwrite"]) == 0
    assert json.loads((out / "metrics.json").read_text())["seed"] == 2
    assert not (out / "internals.png").exists()  # the earlier run's figure went with it


def test_overwrite_never_clears_a_folder_with_other_files(tmp_path, capsys):
    out = tmp_path / "mixed"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    (out / "model.npz").write_bytes(b"not a model")
    (out / "data").mkdir()
    for extra in ([], ["--overwrite"]):
        assert cli.main(["train", *FAST, "--out", str(out), *extra]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "notes.txt" in err and "data/" in err
    assert sorted(p.name for p in out.iterdir()) == ["data", "model.npz", "notes.txt"]
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "notes.txt").write_text("mine")
    assert cli.main(["train", *FAST, "--out", str(plain)]) == 2
    assert "not empty and not a run folder" in capsys.readouterr().err


def test_overwrite_clears_the_files_a_runs_metrics_list(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "metrics.json").write_text(json.dumps({"files": {"report": "report.html", "up": "../x.txt"}}))
    for name in ("report.html", "model.npz", ".model.npz.k2j4h.tmp"):  # the last: a killed write's
        (out / name).write_text("old")
    assert cli.main(["train", *FAST, "--out", str(out), "--overwrite"]) == 0
    assert not (out / "report.html").exists() and not (out / ".model.npz.k2j4h.tmp").exists()
    assert json.loads((out / "metrics.json").read_text())["epochs_trained"] == 1
    assert not (tmp_path / "x.txt").exists()


def test_a_folder_being_written_is_refused_and_a_dead_owners_lock_is_taken_over(tmp_path, capsys):
    from mlpnumpy import _runfolder
    out = tmp_path / "run"
    out.mkdir()
    with _runfolder.lock(out):  # as another live train would hold it
        assert (out / ".lock").read_text().strip() == str(os.getpid())
        assert cli.main(["train", *FAST, "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"being written by another mlpnumpy train (pid {os.getpid()})" in err
        (out / "history.csv").write_text("epoch,loss\n")  # the live run's files: --overwrite leaves them
        assert cli.main(["train", *FAST, "--out", str(out), "--overwrite"]) == 2
        assert "being written" in capsys.readouterr().err and (out / "history.csv").is_file()
    (out / "history.csv").unlink()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (out / ".lock").write_text(f"{dead.pid}\n")  # left behind by a process that died
    assert cli.main(["train", *FAST, "--out", str(out)]) == 0
    assert not (out / ".lock").exists() and (out / "metrics.json").is_file()


def test_two_trains_into_one_folder_started_together_one_wins(tmp_path):
    out = tmp_path / "same"
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    procs = [subprocess.Popen([sys.executable, "-m", "mlpnumpy", "train", *FAST, "--epochs", "3", "--seed",
                               str(seed), "--out", str(out)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for seed in (1, 2)]
    results = [(p.wait(timeout=120), p.communicate()[1]) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    winner = next(seed for seed, (code, _) in zip((1, 2), results) if code == 0)
    loser_err = next(err for code, err in results if code == 2)
    assert loser_err.count("\n") == 1 and loser_err.startswith("mlpnumpy: error: --out ")
    m = json.loads((out / "metrics.json").read_text())
    assert m["seed"] == winner
    model = io.load_model(out / "model.npz")  # the model is the winner's too
    ds = load("digits")
    assert model.evaluate(ds.X_test, ds.y_test, return_dict=True)["accuracy"] == m["test_accuracy"]


# ------------------------------------------------------------------- training a finished run on
def test_a_finished_run_is_trained_on_with_finetune(tmp_path, capsys):
    out = tmp_path / "run"
    base = ["--data", "digits", "--hidden", "16", "--schedule", "cosine", "--lr", "0.002"]
    assert cli.main(["train", *base, "--epochs", "3", "--quiet", "--out", str(out)]) == 0
    first = _rows(out / "history.csv")
    w3 = io.load_model(out / "model.npz").get_weights()
    capsys.readouterr()
    # stretching the laid-out cosine is still refused, and the message names the way that works
    assert cli.main(["train", "--resume", str(out), "--epochs", "5"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "add --finetune" in err
    assert cli.main(["train", "--resume", str(out), "--epochs", "5", "--finetune", "--lr", "0.001"]) == 0
    rows = _rows(out / "history.csv")
    assert len(rows) == 5 and rows[:3] == first
    # a new cosine over epochs 4-5 from the new rate: 0.001, then half of it
    assert [float(r["lr"]) for r in rows[3:]] == pytest.approx([0.001, 0.0005], rel=1e-12)
    m = json.loads((out / "metrics.json").read_text())
    assert m["epochs_trained"] == 5 and m["schedule_starts"] == [0, 3] and m["config"]["lr"] == 0.001
    assert not all(np.array_equal(a, b) for a, b in zip(w3, io.load_model(out / "model.npz").get_weights()))
    # and once more, with a different schedule
    assert cli.main(["train", "--resume", str(out), "--epochs", "6", "--finetune", "--schedule", "none"]) == 0
    assert float(_rows(out / "history.csv")[5]["lr"]) == 0.001
    assert json.loads((out / "metrics.json").read_text())["schedule_starts"] == [0, 3, 5]


def test_finetune_needs_resume_and_more_epochs(tmp_path, capsys):
    assert cli.main(["train", *FAST, "--finetune", "--out", str(tmp_path / "x")]) == 2
    assert "--finetune trains an earlier run further" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
    out = tmp_path / "run"
    assert cli.main(["train", *FAST, "--out", str(out)]) == 0
    assert cli.main(["train", "--resume", str(out), "--finetune", "--epochs", "1"]) == 2
    assert "expected --epochs N with N > 1" in capsys.readouterr().err
    assert cli.main(["train", "--resume", str(out), "--finetune", "--epochs", "2", "--hidden", "9"]) == 2
    assert "--hidden cannot be changed" in capsys.readouterr().err


def test_an_interrupted_finetune_resumes_bit_exactly(tmp_path, monkeypatch):
    import shutil
    base = ["--data", "digits", "--hidden", "16", "--schedule", "onecycle", "--epochs", "2", "--quiet"]
    assert cli.main(["train", *base, "--out", str(tmp_path / "a")]) == 0
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    more = ["--epochs", "4", "--finetune"]
    assert cli.main(["train", "--resume", str(tmp_path / "a"), *more]) == 0
    _interrupt_fit_at(monkeypatch, 1, 7)
    assert cli.main(["train", "--resume", str(tmp_path / "b"), *more]) == 130
    assert cli.main(["train", "--resume", str(tmp_path / "b")]) == 0  # finishes the finetune's plan
    _assert_same_run(tmp_path / "a", tmp_path / "b")


# ------------------------------------------------------------------------------- early stopping
def test_early_stopping_watch_survives_ctrl_c_and_resume(tmp_path, monkeypatch):
    # Adam at a high rate on digits: the validation loss is lowest at epoch 7 (0-based) and the run
    # stops at 10; a watch started afresh after an interruption in epoch 8 would run on past 10 and
    # end with other weights.
    args = ["--data", "digits", "--hidden", "32", "--epochs", "12", "--lr", "0.02", "--schedule", "none",
            "--early-stopping", "3", "--quiet"]
    assert cli.main(["train", *args, "--out", str(tmp_path / "straight")]) == 0
    straight = json.loads((tmp_path / "straight" / "metrics.json").read_text())
    stop = straight["early_stopped_epoch"]
    best = int(np.argmin(straight["history"]["val_loss"]))
    assert stop is not None and best < stop - 1  # an interruption between the two is possible
    out = tmp_path / "run"
    _interrupt_fit_at(monkeypatch, best + 1, 4)
    assert cli.main(["train", *args, "--out", str(out)]) == 130
    assert cli.main(["train", "--resume", str(out)]) == 0
    _assert_same_run(tmp_path / "straight", out)
    assert json.loads((out / "metrics.json").read_text())["early_stopped_epoch"] == stop
    # the run stopped early: it is finished, and --resume says so
    assert cli.main(["train", "--resume", str(out)]) == 2
