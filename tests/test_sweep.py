"""mlpnumpy sweep: Optuna's search on Dask workers (local cluster and a real one), faults, the sweep
folder and its report in a headless browser, and the scikit-learn drop-in under joblib's Dask backend.

Loopback only; every process a test starts is stopped by it, also when it fails.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

optuna = pytest.importorskip("optuna", reason="the sweep extra (optuna) is not installed")
distributed = pytest.importorskip("distributed", reason="the sweep extra (dask[distributed]) is not installed")

from mlpnumpy.cli.commands import main  # noqa: E402
from mlpnumpy.errors import InvalidArgumentError  # noqa: E402
from mlpnumpy.sweep import objective, space as space_mod  # noqa: E402

PY = sys.executable
# Small trials: the digits, a small network, few epochs.
SMALL_SPACE = """
hidden = { choices = [[32, 32], [48, 48]] }
residual = { choices = [false, true] }
lr = { low = 1e-3, high = 3e-2, log = true }
activation = { choices = ["relu", "tanh"] }
epochs = 4
l1 = 1e-5
augment = "shift"
"""
# Trials long enough (half a second on an idle machine) to be caught running on a worker.
SLOW_SPACE = """
hidden = { choices = [[384, 384], [320, 320]] }
lr = { low = 1e-3, high = 1e-2, log = true }
optimizer = "sgd"
momentum = 0.9
epochs = 15
batch_size = 16
"""
SINGLE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _space(tmp_path: Path, text: str, name: str = "space.toml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


# ------------------------------------------------------------------------------------- unit level
def test_default_space_parses_and_momentum_is_drawn_for_sgd_only():
    from mlpnumpy.cli import config
    base = config.resolve({"data": "digits"})
    sp = space_mod.load_space(None, base)
    assert {"hidden", "lr", "optimizer", "momentum", "batch_size"} <= set(sp.dims)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    seen = set()
    for _ in range(30):
        trial = study.ask()
        opts = sp.suggest(trial)
        cfg = sp.config(opts)  # every drawn combination is one train accepts
        assert ("momentum" in opts) == (opts["optimizer"] == "sgd")
        assert 1 <= len(cfg["hidden"]) <= 3 and 32 <= cfg["hidden"][0] <= 512
        seen.add(opts["optimizer"])
        study.tell(trial, 0.0)
    assert seen == {"adam", "adamw", "sgd"}


def test_show_space_prints_the_default_space(capsys):
    tomllib = space_mod._load_tomllib()  # tomllib, or tomli on Python 3.10
    assert main(["sweep", "--show-space"]) == 0
    assert tomllib.loads(capsys.readouterr().out) == tomllib.loads(space_mod.DEFAULT_SPACE_TOML)


def test_trials_see_the_training_rows_only_never_the_test_set():
    from mlpnumpy.cli import config
    from mlpnumpy.datasets import load
    cfg = config.resolve({"data": "digits"})
    d = objective.prepared_data(cfg)
    ds = load("digits")
    assert set(d) == {"X_train", "y_train", "X_val", "y_val", "n_classes", "name", "categorical", "image_shape"}
    assert len(d["X_train"]) + len(d["X_val"]) == len(ds.X_train)
    from mlpnumpy.datasets.splits import held_out_size
    assert len(d["X_val"]) == held_out_size(ds.y_train, 0.1, stratify=True)  # 10% of train's rows
    rows = {r.tobytes() for r in ds.X_train}
    assert all(r.tobytes() in rows for r in d["X_val"])


def test_report_of_a_loss_sweep_takes_the_lowest_loss(tmp_path):
    """The sweep folder from a study alone: best.toml is the minimum for --objective loss, trials.csv
    holds every trial with its curve, report.html sorts ascending."""
    from mlpnumpy.cli import config
    from mlpnumpy.sweep import report
    from mlpnumpy.sweep.driver import SweepSpec
    base = config.resolve({"data": "digits"})
    sp = space_mod.parse_space({"lr": {"low": 1e-3, "high": 1e-1, "log": True}}, base)
    spec = SweepSpec(base=base, space_table=sp.table, space_source="t", objective="loss", study_name="l")
    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.RandomSampler(seed=0))
    for value in (0.7, 0.3, 0.5):
        trial = study.ask()
        cfg = sp.config(sp.suggest(trial))
        trial.set_user_attr("config", cfg)
        trial.set_user_attr("history", {"loss": [1.0, value], "val_loss": [1.1, value]})
        trial.report(1.1, 1)
        trial.report(value, 2)
        study.tell(trial, value)
    summary = report.write_all(tmp_path, study, spec, sp, wall_seconds=1.0)
    assert summary["best_trial"] == 1 and summary["best_value"] == 0.3
    best = (tmp_path / "best.toml").read_text()
    assert f"lr = {study.trials[1].params['lr']!r}" in best and "val_loss = 0.3" in best
    rows = _read_csv(tmp_path / "trials.csv")
    assert [r["val_loss"] for r in rows] == ["0.7", "0.3", "0.5"] and rows[1]["val_loss_epoch1"] == "1.1"
    assert 'data-direction="minimize"' in (tmp_path / "report.html").read_text()


def test_a_diverging_trial_is_pruned_with_its_reason_and_pruning_stops_training():
    from mlpnumpy.cli import config
    cfg = config.resolve({"data": "digits", "optimizer": "sgd", "lr": 1e4, "epochs": 3, "hidden": [16],
                          "standardize": True})
    task = {"number": 0, "attempt": 1, "cfg": cfg, "monitor": "val_accuracy", "direction": "maximize",
            "study_name": "unit", "pruner": optuna.pruners.NopPruner(), "snapshot": [], "topic": "t"}
    res = objective.run_trial(task)
    assert res["state"] == "pruned"
    assert res["reason"].startswith("diverged")
    ok = objective.run_trial({**task, "cfg": config.resolve({"data": "digits", "epochs": 2, "hidden": [16]})})
    assert ok["state"] == "complete" and 0 < ok["value"] <= 1
    assert [s for s, _ in ok["intermediate"]] == [1, 2]
    # a pruner's verdict stops the training itself: one epoch run of the five planned
    cut = objective.run_trial({**task, "pruner": optuna.pruners.ThresholdPruner(lower=2.0),
                               "cfg": config.resolve({"data": "digits", "epochs": 5, "hidden": [16]})})
    assert cut["state"] == "pruned" and "pruned by the ThresholdPruner at epoch 1" in cut["reason"]
    assert len(cut["history"]["val_accuracy"]) == 1 and len(cut["intermediate"]) == 1


@pytest.mark.parametrize("make_pruner", [
    lambda: optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1),
    lambda: optuna.pruners.HyperbandPruner(min_resource=1, max_resource=6, reduction_factor=3),
])
def test_worker_side_pruning_decides_as_optuna_does_in_the_study(make_pruner):
    """The worker's mirror study (snapshot of finished trials, same name and numbers) prunes exactly
    when the pruner would in the real study."""
    rng = np.random.default_rng(0)
    study = optuna.create_study(study_name="mirror", direction="maximize", pruner=make_pruner(),
                                sampler=optuna.samplers.RandomSampler(seed=0))
    decisions_real, decisions_mirror = [], []
    for number in range(14):
        curve = np.cumsum(rng.uniform(0, 0.2, 6))
        snapshot = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,
                                                            optuna.trial.TrialState.PRUNED))
        real = study.ask()
        assert real.number == number
        mirror = objective._mirror_trial({"study_name": "mirror", "direction": "maximize", "pruner": make_pruner(),
                                          "snapshot": snapshot, "number": number})
        pruned = False
        for step, v in enumerate(curve, start=1):
            real.report(float(v), step)
            mirror.report(float(v), step)
            a, b = real.should_prune(), mirror.should_prune()
            decisions_real.append(a)
            decisions_mirror.append(b)
            if a:
                pruned = True
                break
        if pruned:
            study.tell(real, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(real, float(curve[-1]))
    assert decisions_mirror == decisions_real
    assert any(decisions_real)  # the pruner did prune: the comparison covers both answers


# ------------------------------------------------------------------------------- local cluster
@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory):
    """One small sweep on a LocalCluster of 2 worker processes (shared by the tests that read it)."""
    tmp = tmp_path_factory.mktemp("sweep")
    space = _space(tmp, SMALL_SPACE)
    out = tmp / "s1"
    t0 = time.perf_counter()
    rc = main(["sweep", "--data", "digits", "--space", str(space), "--trials", "6", "--workers", "2",
               "--out", str(out), "--study-name", "local", "--quiet"])
    return {"rc": rc, "out": out, "tmp": tmp, "seconds": time.perf_counter() - t0}


def test_local_cluster_sweep_records_every_trial_and_best_toml_reruns(local_sweep):
    out = local_sweep["out"]
    assert local_sweep["rc"] == 0
    rows = _read_csv(out / "trials.csv")
    assert [int(r["number"]) for r in rows] == list(range(6))
    assert all(r["state"] in ("COMPLETE", "PRUNED") for r in rows)
    for r in rows:  # the per-epoch metric is recorded, and the final value is the last epoch's
        curve = [float(r[f"val_accuracy_epoch{e}"]) for e in range(1, 5) if r[f"val_accuracy_epoch{e}"]]
        assert len(curve) == int(r["epochs"]) >= 1
        assert r["worker"].startswith("tcp://127.0.0.1:") and float(r["seconds"]) > 0
    assert len({r["worker"] for r in rows}) == 2  # both workers ran trials
    study = optuna.load_study(study_name="local", storage=f"sqlite:///{out / 'study.db'}")
    assert len(study.trials) == 6
    # data loaded once per worker: every trial found it already loaded by the worker's first load
    assert {t.user_attrs["worker_data_loads"] for t in study.trials} == {1}

    best = max((t for t in study.trials if t.state.name == "COMPLETE"), key=lambda t: t.value)
    assert f"trial {best.number}" in (out / "best.toml").read_text()
    run = local_sweep["tmp"] / "rerun"
    # one BLAS thread, as on the Dask workers: the same arithmetic, so the same metric exactly
    assert main(["train", "--config", str(out / "best.toml"), "--threads", "1", "--out", str(run), "--quiet"]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["validation_accuracy"] == best.value
    assert {"optimization_history.png", "param_importances.png", "parallel_coordinate.png",
            "best_curves.png", "report.html", "sweep.json"} <= {p.name for p in out.iterdir()}


def test_resume_refuses_to_change_what_the_sweep_searches(local_sweep, capsys):
    out = local_sweep["out"]
    before = sorted(p.name for p in out.iterdir())
    for args, flag in ((["--lr", "0.1"], "--lr"), (["--pruner", "hyperband"], "--pruner"),
                       (["--space", "x.toml"], "--space")):
        assert main(["sweep", "--resume", str(out), *args]) == 2
        err = capsys.readouterr().err
        assert f"{flag} cannot be changed" in err and err.count("\n") == 1
    assert sorted(p.name for p in out.iterdir()) == before


# ------------------------------------------------------------------------- a real Dask cluster
def _wait(predicate, timeout: float, what: str, step: float = 0.02):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _stop(procs) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=10)


@contextmanager
def dask_cluster(tmp: Path, n_workers: int = 2):
    """``dask scheduler`` and ``dask worker`` processes on 127.0.0.1; all stopped on exit."""
    env = {**os.environ, **SINGLE_THREAD}
    sched_file = tmp / "scheduler.json"
    procs, logs = [], []

    def start(args, name):
        log = open(tmp / f"{name}.log", "w")
        logs.append(log)
        procs.append(subprocess.Popen([PY, *args], stdout=log, stderr=subprocess.STDOUT, env=env))
        return procs[-1]

    try:
        # allowed-failures 0: a task whose worker dies fails at once, so the driver's own retry is what
        # runs it again (with Dask's default of 3 the scheduler would reschedule it silently)
        env["DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES"] = "0"
        # --dashboard-address too: without it the HTTP endpoints listen on every interface, not loopback
        start(["-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
               "--dashboard-address", "127.0.0.1:0", "--scheduler-file", str(sched_file)], "scheduler")
        del env["DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES"]
        _wait(lambda: sched_file.is_file() and sched_file.stat().st_size > 0, 60, "the scheduler file")
        address = json.loads(sched_file.read_text())["address"]
        workers = [start(["-m", "distributed.cli.dask_worker", address, "--host", "127.0.0.1", "--nthreads", "1",
                          "--no-nanny", "--no-dashboard", "--dashboard-address", "127.0.0.1:0", "--name", f"w{i}"], f"worker{i}") for i in range(n_workers)]
        client = distributed.Client(address, timeout="30s", set_as_default=False)
        try:
            client.wait_for_workers(n_workers, timeout=60)
            yield address, client, workers
        finally:
            client.close()
    finally:
        _stop(procs)
        for log in logs:
            log.close()


def _sweep_cmd(*args) -> list[str]:
    return [PY, "-m", "mlpnumpy", "sweep", *map(str, args)]


def _popen_sweep(args, log: Path):
    fh = open(log, "w")
    return subprocess.Popen(_sweep_cmd(*args), stdout=fh, stderr=subprocess.STDOUT, env={**os.environ, **SINGLE_THREAD}), fh


def _starts(client, study_name: str) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for _, msg in client.get_events(f"mlpnumpy-sweep-{study_name}"):
        out.setdefault(int(msg["trial"]), []).append(msg["worker"])
    return out


def _finished_rows(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [r for r in _read_csv(path) if r["state"] in ("COMPLETE", "PRUNED")]


def test_real_cluster_worker_sigkill_and_driver_sigkill_then_resume(tmp_path):
    space = _space(tmp_path, SLOW_SPACE)
    with dask_cluster(tmp_path) as (address, client, workers):
        pids = client.run(os.getpid)  # worker address -> pid (the processes this test started)
        assert sorted(pids.values()) == sorted(p.pid for p in workers)

        # ---- 1. a worker SIGKILLed mid-trial: the sweep finishes, the killed trial is accounted for
        out = tmp_path / "killworker"
        proc, log = _popen_sweep(["--data", "digits", "--space", space, "--trials", 5, "--scheduler", address, "--pruner", "none",
                                  "--no-figures", "--study-name", "kw", "--out", out], tmp_path / "sweep1.log")
        try:
            _wait(lambda: len(_finished_rows(out / "trials.csv")) >= 2, 90, "two finished trials")

            def running_trial():  # (worker, trial) for a trial that started on its worker in the last 0.1 s
                now = time.time()  # (a trial takes half a second or more: far from done when the kill lands)
                fresh = {(int(m["trial"]), m["worker"]) for t, m in client.get_events("mlpnumpy-sweep-kw")
                         if now - t < 0.1}
                for w, keys in client.processing().items():
                    for k in keys:
                        if str(k).startswith("mlpnumpy-trial-") and (int(str(k).split("-")[2]), w) in fresh:
                            return w, int(str(k).split("-")[2])
                return None

            victim, killed_trial = _wait(running_trial, 60, "a trial running on a worker")
            before = {r["number"]: r for r in _finished_rows(out / "trials.csv")}
            os.kill(pids[victim], signal.SIGKILL)
            print(f"SIGKILLed worker {victim} (pid {pids[victim]}) while it ran trial {killed_trial}; "
                  f"{len(before)} trials had finished")
            rc = proc.wait(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
            log.close()
        text = (tmp_path / "sweep1.log").read_text()
        print(text)
        assert rc == 0, text
        rows = {r["number"]: r for r in _read_csv(out / "trials.csv")}
        assert sorted(map(int, rows)) == list(range(5))
        assert all(r["state"] in ("COMPLETE", "PRUNED", "FAIL") for r in rows.values())
        for n, r in before.items():  # nothing finished is lost or changed
            assert rows[n]["state"] == r["state"] and rows[n]["val_accuracy"] == r["val_accuracy"]
        k = rows[str(killed_trial)]
        print(f"killed trial {killed_trial}: state {k['state']}, attempts {k['attempts']}, worker {k['worker']}, "
              f"reason {k['reason']!r}")
        if k["state"] == "FAIL":
            assert "worker" in k["reason"]
        else:  # retried once by the driver, on the surviving worker
            assert int(k["attempts"]) == 2 and k["worker"] != victim
            assert f"trial {killed_trial}: its worker died" in text and "retrying it once" in text

        # ---- 2. the driver SIGKILLed mid-sweep, then --resume: no finished trial runs again
        out2 = tmp_path / "killdriver"
        args = ["--data", "digits", "--space", space, "--trials", 4, "--scheduler", address, "--pruner", "none", "--no-figures", "--study-name", "kd",
                "--out", out2]
        proc, log = _popen_sweep(args, tmp_path / "sweep2.log")
        try:
            _wait(lambda: len(_finished_rows(out2 / "trials.csv")) >= 2, 90, "two finished trials")

            def one_running():  # a trial started on a worker and not finished: the driver dies mid-trial
                done = {int(r["number"]) for r in _finished_rows(out2 / "trials.csv")}
                return set(_starts(client, "kd")) - done

            _wait(one_running, 60, "a running trial")
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
            log.close()
        before = {r["number"]: r for r in _finished_rows(out2 / "trials.csv")}
        print(f"SIGKILLed the driver after {len(before)} finished trials")
        res = subprocess.run(_sweep_cmd("--resume", out2, "--scheduler", address), capture_output=True, text=True,
                             timeout=180, env={**os.environ, **SINGLE_THREAD})
        print(res.stdout, res.stderr)
        assert res.returncode == 0, res.stderr
        assert f"{len(before)} already finished" in res.stdout
        rows = {r["number"]: r for r in _read_csv(out2 / "trials.csv")}
        finished = [r for r in rows.values() if r["state"] in ("COMPLETE", "PRUNED")]
        assert len(finished) == 4
        for n, r in before.items():
            assert rows[n]["state"] == r["state"] and rows[n]["val_accuracy"] == r["val_accuracy"]
        starts = _starts(client, "kd")
        for n in before:  # started once, by the first driver: the resumed one did not repeat it
            assert len(starts[int(n)]) == 1
        # what the killed driver left running is recorded as interrupted, and its parameters are tried again
        interrupted = [r for r in rows.values() if r["state"] == "FAIL"]
        assert interrupted and all(r["reason"].startswith("interrupted") for r in interrupted)
        assert "queued again" in res.stdout
        params = lambda r: (r["param_hidden"], r["param_lr"])  # noqa: E731
        assert {params(r) for r in interrupted} <= {params(r) for r in finished}
        # and the resumed sampler does not draw the finished trials' parameters again
        new = [r for r in finished if r["number"] not in before]
        assert not {params(r) for r in new} & {params(r) for r in before.values()}

        # ---- 3. Ctrl-C on the driver: what finished is recorded, the running trial marked, exit 130
        out3 = tmp_path / "ctrlc"
        proc, log = _popen_sweep(["--data", "digits", "--space", space, "--trials", 20, "--scheduler", address,
                                  "--pruner", "none", "--no-figures", "--study-name", "cc", "--out", out3], tmp_path / "sweep3.log")
        try:
            _wait(lambda: len(_finished_rows(out3 / "trials.csv")) >= 1, 90, "a finished trial")
            proc.send_signal(signal.SIGINT)
            rc = proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
            log.close()
        text = (tmp_path / "sweep3.log").read_text()
        assert rc == 130, text
        assert "mlpnumpy: error: interrupted" in text and f"--resume {out3}" in text
        rows = _read_csv(out3 / "trials.csv")
        assert [r["state"] for r in rows].count("COMPLETE") >= 1
        assert all(r["state"] == "COMPLETE" or r["reason"].startswith("interrupted") for r in rows), \
            [(r["number"], r["state"], r["reason"]) for r in rows]
        assert (out3 / "report.html").is_file()


def test_unreachable_scheduler_is_one_error_exit_2_nothing_written(tmp_path, capsys):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "never"
    rc = main(["sweep", "--data", "digits", "--scheduler", f"tcp://127.0.0.1:{port}", "--connect-timeout", "1",
               "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.count("\n") == 1 and "no Dask scheduler answered" in err and f"127.0.0.1:{port}" in err
    assert not out.exists()


@pytest.mark.parametrize("text, message", [
    ("lrr = { low = 1e-3, high = 1e-1 }", "option 'lrr' is not one of"),
    ("lr = { low = 1e-1, high = 1e-3 }", "is an empty range"),
    ("dropout = { low = 0.5, high = 0.1 }", "is an empty range"),
    ("lr = { low = 0.0, high = 1e-1, log = true }", "includes values <= 0"),
    ("weight_decay = { low = 0, high = 1e-2, log = true }", "includes values <= 0"),
    ("activation = { choices = ['relu', 'rleu'] }", "'rleu' is not one of"),
    ("seed = { low = 0, high = 3 }", "cannot be set in a search space"),
    ("lr = { low = 0.0, high = 1e-1 }", "--lr=0.0 is invalid"),
])
def test_bad_space_is_one_error_exit_2_nothing_written(tmp_path, capsys, text, message):
    space = _space(tmp_path, text)
    out = tmp_path / "never"
    rc = main(["sweep", "--data", "digits", "--space", str(space), "--out", str(out), "--workers", "1"])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert err.startswith("mlpnumpy: error: ") and err.count("\n") == 1 and message in err, err
    assert str(space) in err
    assert not out.exists()


def test_bad_storage_or_used_folder_is_one_error_exit_2_nothing_written(tmp_path, capsys):
    out = tmp_path / "never"
    rc = main(["sweep", "--data", "digits", "--storage", "nosuchdb://x/y", "--out", str(out), "--workers", "1"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "--storage 'nosuchdb://x/y' cannot be opened" in err, err
    assert not out.exists()
    used = tmp_path / "used"
    used.mkdir()
    (used / "notes.txt").write_text("mine")
    rc = main(["sweep", "--data", "digits", "--out", str(used), "--workers", "1"])
    err = capsys.readouterr().err
    assert rc == 2 and "already holds files" in err and f"--resume {used}" in err, err
    assert [p.name for p in used.iterdir()] == ["notes.txt"]
    rc = main(["sweep", "--resume", str(tmp_path / "nothing-here")])
    assert rc == 2 and "sweep.json does not exist" in capsys.readouterr().err


def test_space_errors_are_raised_before_any_cluster_starts(tmp_path):
    from mlpnumpy.sweep.driver import run_sweep
    with pytest.raises(InvalidArgumentError, match="empty range"):
        run_sweep({"data": "digits"}, space_path=_space(tmp_path, "epochs = { low = 5, high = 2 }"),
                  out=tmp_path / "x", scheduler="tcp://127.0.0.1:9")  # never contacted


# ------------------------------------------------------------------------------ report in a browser
CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)
CHROME_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--enable-logging=stderr",
                "--v=0", "--window-size=1280,2000", "--hide-scrollbars"]


def _chromium(page: Path, tmp: Path, *extra) -> subprocess.CompletedProcess:
    profile = tmp / f"profile-{time.time_ns()}"
    return subprocess.run([CHROMIUM, *CHROME_FLAGS, f"--user-data-dir={profile}", *extra, page.as_uri()],
                          capture_output=True, text=True, timeout=90)


def _console_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs Debian's chromium)")
def test_report_html_renders_in_headless_chromium(local_sweep, tmp_path):
    from PIL import Image
    # the check can fail: a page with a console error and an uncaught exception is caught by it
    bad = tmp_path / "bad.html"
    bad.write_text("<!doctype html><html><head><link rel='icon' href='data:,'></head><body>x"
                   "<script>console.error('boom'); throw new Error('uncaught');</script></body></html>")
    assert len(_console_lines(_chromium(bad, tmp_path, "--dump-dom").stderr)) == 2

    page = local_sweep["out"] / "report.html"
    dom_run = _chromium(page, tmp_path, "--dump-dom")
    assert dom_run.returncode == 0, dom_run.stderr[-2000:]
    assert _console_lines(dom_run.stderr) == [], _console_lines(dom_run.stderr)
    dom = dom_run.stdout
    assert dom.count('src="data:image/png;base64,') == 4  # the four figures, inline
    assert "http://" not in dom and "https://" not in dom  # nothing fetched from anywhere
    body = dom.split('id="trials"')[1].split("<tbody>")[1].split("</tbody>")[0]
    assert body.count("<tr") == 6
    # the table's script ran: sorted by the objective, best first (the HTML is in trial order)
    assert 'data-sorted="yes"' in dom and 'aria-sort="descending"' in dom
    first_row = body.split("</tr>")[0]
    assert 'class="best"' in first_row

    shot = tmp_path / "report.png"
    shot_run = _chromium(page, tmp_path, f"--screenshot={shot}")
    assert shot.is_file(), shot_run.stderr[-2000:]
    img = np.asarray(Image.open(shot).convert("RGB"), dtype=np.int16)
    assert img.shape[0] >= 1000 and img.shape[1] >= 1000
    colours = len(np.unique(img.reshape(-1, 3), axis=0))
    dark = np.mean(img.sum(axis=2) < 300)
    assert colours > 50 and 0.001 < dark < 0.6  # text, figure lines and colours on a white page


# ------------------------------------------------------------------ scikit-learn under joblib's dask
@pytest.mark.filterwarnings("ignore:Stochastic Optimizer")
def test_sklearn_searches_under_joblib_dask_backend_equal_the_local_runs():
    joblib = pytest.importorskip("joblib")
    model_selection = pytest.importorskip("sklearn.model_selection")
    from mlpnumpy.datasets import load
    from mlpnumpy.sklearn import MLPClassifier
    d = load("digits")
    X, y = d.X_train[:400], d.y_train[:400]
    grid = {"hidden_layer_sizes": [(16,), (32,)], "alpha": [1e-4, 1e-2]}
    est = MLPClassifier(max_iter=15, random_state=0, solver="adam")
    searches = {"grid": lambda **kw: model_selection.GridSearchCV(est, grid, cv=2, **kw),
                "random": lambda **kw: model_selection.RandomizedSearchCV(est, grid, n_iter=3, cv=2, random_state=0,
                                                                           **kw)}
    local = {name: make().fit(X, y) for name, make in searches.items()}
    # threads in this process (in-process transport, no socket): what joblib's backend does is the same
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        for name, make in searches.items():
            with distributed.get_task_stream(client) as ts, joblib.parallel_backend("dask"):
                remote = make(n_jobs=-1).fit(X, y)
            assert len(ts.data) > 0  # the fits ran as Dask tasks (joblib batches them into a few tasks)
            np.testing.assert_allclose(remote.cv_results_["mean_test_score"],
                                       local[name].cv_results_["mean_test_score"])
            assert remote.best_params_ == local[name].best_params_


def test_sweep_help_lists_no_option_of_one_run_but_names_it_when_given(capsys, tmp_path):
    assert main(["sweep", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--hidden" in out and "--space" in out
    assert not {"--finetune", "--overwrite", "--track-internals"} & set(out.split())
    for flag in ("--finetune", "--overwrite"):
        assert main(["sweep", "--data", "digits", "--out", str(tmp_path / "s"), flag]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"{flag} is a train option for one run" in err


def test_ctrl_c_in_the_sweep_loop_is_a_flag_the_loop_acts_on():
    # the races the Ctrl-C test above hit under load: SIGINT right after study.ask() left a RUNNING
    # trial the driver did not know of, and one inside a Dask or storage call could hang the clean-up;
    # in the loop Ctrl-C only sets a flag, which the loop turns into KeyboardInterrupt between steps
    import os
    import signal as _signal

    from mlpnumpy.sweep.driver import _ctrl_c_as_flag
    steps = []
    with _ctrl_c_as_flag() as hit:
        steps.append("asked")
        os.kill(os.getpid(), _signal.SIGINT)
        steps.append("recorded")
        assert hit["hit"]
    assert steps == ["asked", "recorded"]
    assert _signal.getsignal(_signal.SIGINT) is _signal.default_int_handler  # restored
    with _ctrl_c_as_flag() as hit:
        pass
    assert not hit["hit"]
