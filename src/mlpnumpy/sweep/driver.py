"""The sweep driver: asks Optuna for trials, runs them on Dask workers, tells Optuna the results.

The study lives in Optuna's RDB storage (SQLite in the sweep folder unless ``storage`` names a
database), so a sweep survives its driver: :func:`run_sweep` with ``resume=`` continues it. Only the
driver touches the storage; workers get a configuration and return an outcome. A worker that dies
mid-trial costs that trial one retry; Ctrl-C records what finished before stopping.
"""
from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import signal
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..cli import config as _config
from ..errors import InvalidArgumentError, MLPNumpyError, require
from . import report
from .report import best_trial
from .objective import preload, run_trial
from .space import SearchSpace, load_space, parse_space

__all__ = ["SweepSpec", "run_sweep", "OBJECTIVES", "SAMPLERS", "PRUNERS"]

#: objective name -> (the per-epoch log it reads, the study's direction)
OBJECTIVES = {"accuracy": ("val_accuracy", "maximize"), "loss": ("val_loss", "minimize")}
SAMPLERS = ("tpe", "random")
PRUNERS = ("median", "hyperband", "none")
SPEC_FILE = "sweep.json"
DB_FILE = "study.db"


@dataclass
class SweepSpec:
    """What a sweep searches and how; written to ``sweep.json`` so ``--resume`` can continue it."""

    base: dict[str, Any]
    space_table: dict[str, Any]
    space_source: str
    objective: str = "accuracy"
    trials: int = 20
    timeout: float | None = None
    sampler: str = "tpe"
    pruner: str = "median"
    study_name: str = ""
    storage: str | None = None  # None: sqlite in the sweep folder
    created: str = field(default_factory=lambda: time.strftime("%Y-%m-%d %H:%M:%S"))

    @property
    def monitor(self) -> str:
        return OBJECTIVES[self.objective][0]

    @property
    def direction(self) -> str:
        return OBJECTIVES[self.objective][1]


def storage_url(spec: SweepSpec, out: Path) -> str:
    return spec.storage or f"sqlite:///{(out / DB_FILE).resolve()}"


def _make_sampler(spec: SweepSpec, n_existing: int = 0, joined: bool = False):
    """The sampler, seeded from ``--seed`` and the trials the study already holds: a new sweep is
    reproducible, and a resumed driver does not draw the first driver's parameters again; a driver that
    joins a study other drivers work on also mixes in its process id."""
    import numpy as np
    import optuna
    entropy = [spec.base["seed"], n_existing, *([os.getpid()] if joined else [])]
    seed = int(np.random.SeedSequence(entropy).generate_state(1)[0])
    if spec.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    # constant_liar: trials still running count as bad guesses, so parallel asks spread out
    return optuna.samplers.TPESampler(seed=seed, constant_liar=True)


def make_pruner(name: str, max_epochs: int):
    """Optuna's median or Hyperband pruner, or none; steps are epochs (1-based)."""
    import optuna
    if name == "median":
        # no verdict on the first epochs (a fifth of them, at least 2): a one-cycle or warm-up schedule
        # starts slowly, and its first epoch says little about where it ends
        return optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=max(2, max_epochs // 5))
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(1, max_epochs), reduction_factor=3)
    return optuna.pruners.NopPruner()


# ------------------------------------------------------------------------------------------ cluster
def connect(scheduler: str | None, workers: int | None, connect_timeout: float = 10.0):
    """A Dask client: to ``scheduler`` (``tcp://HOST:PORT``), or to a new ``LocalCluster`` with
    ``workers`` single-threaded worker processes (default one per core). Returns ``(client, cluster)``
    (``cluster`` is None for an existing scheduler)."""
    import dask
    distributed = require("distributed", "sweep", "mlpnumpy sweep")
    if scheduler is not None:
        if "://" not in scheduler and ":" not in scheduler:
            raise InvalidArgumentError(f"--scheduler {scheduler!r} is not an address; expected tcp://HOST:PORT")
        try:
            client = distributed.Client(scheduler, timeout=f"{connect_timeout}s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise InvalidArgumentError(
                f"--scheduler {scheduler}: no Dask scheduler answered within {connect_timeout:g} s "
                f"({type(exc).__name__}: {' '.join(str(exc).split())[:200]}); start one with `dask scheduler` "
                "and `dask worker`, or omit --scheduler for a local cluster") from None
        return client, None
    n = workers or os.cpu_count() or 1
    # Worker processes inherit an ignored SIGINT: Ctrl-C in a terminal reaches the whole process group,
    # and it is the driver's to handle (record what finished, then close the cluster).
    main_thread = threading.current_thread() is threading.main_thread()
    old = signal.signal(signal.SIGINT, signal.SIG_IGN) if main_thread else None
    try:
        # a worker lost mid-trial makes the trial fail at once; the driver then retries it once itself
        with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
            cluster = distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                               host="127.0.0.1", dashboard_address="127.0.0.1:0",
                                               silence_logs=logging.ERROR)
    finally:
        if main_thread and old is not None:
            signal.signal(signal.SIGINT, old)
    return distributed.Client(cluster), cluster


def _threads(client) -> int:
    try:
        return sum(w.get("nthreads", 1) for w in client.scheduler_info()["workers"].values())
    except Exception:  # noqa: BLE001 - a scheduler that stopped answering: no slots this round
        return 0


def _preload_all(client, cfg: dict) -> list[dict]:
    """Load the data on every worker once, before the first trial (errors surface here)."""
    workers = list(client.scheduler_info()["workers"])
    futures = [client.submit(preload, cfg, workers=[w], allow_other_workers=False, pure=False,
                             key=f"mlpnumpy-preload-{i}-{time.time_ns()}") for i, w in enumerate(workers)]
    return client.gather(futures)


# ------------------------------------------------------------------------------------------- study
def _finished(trial) -> bool:
    from optuna.trial import TrialState
    if trial.state in (TrialState.COMPLETE, TrialState.PRUNED):
        return True
    return trial.state == TrialState.FAIL and not trial.user_attrs.get("interrupted")


def _events(client, topic: str) -> dict[int, list[str]]:
    """Trial number -> the workers that started it, from the workers' start events."""
    starts: dict[int, list[str]] = {}
    try:
        for _, msg in client.get_events(topic):
            starts.setdefault(int(msg["trial"]), []).append(msg["worker"])
    except Exception:  # noqa: BLE001 - events are bookkeeping; a trial is recorded without them
        pass
    return starts


def _record(study, trial, res: dict, starts: list[str], monitor: str):
    """Tell the study one trial's outcome, with its curve and bookkeeping as user attributes."""
    from optuna.trial import TrialState
    for step, value in res.get("intermediate", []):
        trial.report(value, step)
    trial.set_user_attr("history", res.get("history") or {})
    trial.set_user_attr("seconds", round(float(res.get("seconds") or 0.0), 3))
    trial.set_user_attr("worker", res.get("worker"))
    trial.set_user_attr("attempts", max(len(starts), int(res.get("attempt", 1))))
    trial.set_user_attr("workers", starts)
    trial.set_user_attr("worker_data_loads", res.get("data_loads"))  # 1: the worker loaded the data once
    if res.get("reason"):
        trial.set_user_attr("reason", res["reason"])
    state = res["state"]
    if state == "complete":
        return study.tell(trial, res["value"])
    return study.tell(trial, state=TrialState.PRUNED if state == "pruned" else TrialState.FAIL)


def _fail(study, trial, reason: str, *, interrupted: bool = False):
    from optuna.trial import TrialState
    reason = " ".join(str(reason).split())
    trial.set_user_attr("reason", reason if len(reason) <= 300 else reason[:297] + "...")
    if interrupted:
        trial.set_user_attr("interrupted", True)
    return study.tell(trial, state=TrialState.FAIL)


@contextlib.contextmanager
def _ctrl_c_as_flag():
    """While the block runs, Ctrl-C sets ``flag["hit"]`` instead of raising KeyboardInterrupt (in the
    main thread; elsewhere the flag is never set): the caller raises it at a point of its choosing, so
    it never lands inside a storage write, a Dask call or a file being written."""
    flag = {"hit": False}
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    previous = signal.signal(signal.SIGINT, lambda signum, frame: flag.__setitem__("hit", True))
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


def _requeue_interrupted(study) -> int:
    """Trials a killed driver left running: recorded as interrupted failures, their parameters queued
    again so the sweep still tries them. Returns how many."""
    from optuna.trial import TrialState
    n = 0
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study._storage.set_trial_user_attr(t._trial_id, "reason", "interrupted: the driver stopped while it ran")
        study._storage.set_trial_user_attr(t._trial_id, "interrupted", True)
        study.tell(t.number, state=TrialState.FAIL)
        study.enqueue_trial(t.params, user_attrs={"requeued_from": t.number}, skip_if_exists=False)
        n += 1
    return n


# -------------------------------------------------------------------------------------------- sweep
def _fmt(v) -> str:
    return "-" if v is None else f"{v:.4f}"


def _new_spec(opts: dict[str, Any], config_file, space_path, **kw) -> tuple[SweepSpec, SearchSpace]:
    given = {k: v for k, v in opts.items() if v is not None and k in _config.OPTION_TYPES}
    base = _config.resolve(given, config_file)
    if base["validation_split"] <= 0:
        raise InvalidArgumentError("--validation-split 0: a sweep is scored on validation data (never the test "
                                   "set); expected --validation-split > 0")
    space = load_space(space_path, base, given)
    spec = SweepSpec(base=base, space_table=space.table, space_source=space.source, **kw)
    return spec, space


def run_sweep(opts: dict[str, Any], *, config_file=None, space_path=None, objective: str | None = None,
              trials: int | None = None, timeout: float | None = None, out=None, resume=None,
              scheduler: str | None = None, workers: int | None = None, storage: str | None = None,
              sampler: str | None = None, pruner: str | None = None, study_name: str | None = None,
              connect_timeout: float = 10.0, figures: bool = True, quiet: bool = False,
              print_fn=print) -> dict[str, Any]:
    """Run (or continue) a sweep and write its folder; returns a summary dict.

    Parameters
    ----------
    opts : dict
        ``mlpnumpy train`` options held fixed for every trial (``None``: not given).
    config_file, space_path : path, optional
        A ``--config`` TOML of fixed options; the search space TOML (default
        :data:`~mlpnumpy.sweep.space.DEFAULT_SPACE_TOML`).
    objective : {"accuracy", "loss"}, default "accuracy"
        Validation accuracy (maximised) or validation loss (minimised); the test set is never used.
    trials, timeout : budget
        Trials to finish in total (default 20), and seconds after which no new trial starts.
    out, resume : path
        The sweep folder to create, or the folder of a sweep to continue.
    scheduler, workers : Dask
        ``tcp://HOST:PORT`` of an existing scheduler, or the worker processes of a local cluster.
    storage : str, optional
        An Optuna RDB storage URL (default: SQLite ``study.db`` in the sweep folder).
    sampler, pruner : str
        ``"tpe"`` (default) or ``"random"``; ``"median"`` (default), ``"hyperband"`` or ``"none"``.
    figures : bool
        Draw the figures (matplotlib); without them ``report.html`` still holds the table.
    """
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    say = (lambda *a, **k: None) if quiet else print_fn
    if trials is not None and trials < 1:
        raise InvalidArgumentError(f"--trials {trials} is invalid; expected an integer >= 1")
    if timeout is not None and not (math.isfinite(timeout) and timeout > 0):
        raise InvalidArgumentError(f"--timeout {timeout} is invalid; expected seconds > 0")

    # ---- everything checked before anything is written
    if resume is not None:
        out = Path(resume)
        spec_path = out / SPEC_FILE
        if not spec_path.is_file():
            raise InvalidArgumentError(f"--resume {resume!r}: {spec_path} does not exist; expected a sweep folder "
                                       "written by mlpnumpy sweep")
        fixed = {"--config": config_file, "--space": space_path, "--storage": storage, "--objective": objective,
                 "--sampler": sampler, "--pruner": pruner, "--study-name": study_name,
                 **{_config.flag(k): v for k, v in opts.items()}}
        given = [flag for flag, v in fixed.items() if v is not None]
        if given:
            what = given[0]
            raise InvalidArgumentError(f"--resume continues a sweep as configured; {what} cannot be changed (only "
                                       "--trials, --timeout, --scheduler, --workers, --quiet)")
        raw = json.loads(spec_path.read_text())
        spec = SweepSpec(**raw)
        if trials is not None:
            spec.trials = trials
        if timeout is not None:
            spec.timeout = timeout
        space = parse_space(spec.space_table, spec.base, spec.space_source)
    else:
        objective, sampler, pruner = objective or "accuracy", sampler or "tpe", pruner or "median"
        if objective not in OBJECTIVES:
            raise InvalidArgumentError(f"--objective={objective!r} is not one of: {', '.join(OBJECTIVES)}")
        if sampler not in SAMPLERS:
            raise InvalidArgumentError(f"--sampler={sampler!r} is not one of: {', '.join(SAMPLERS)}")
        if pruner not in PRUNERS:
            raise InvalidArgumentError(f"--pruner={pruner!r} is not one of: {', '.join(PRUNERS)}")
        spec, space = _new_spec(opts, config_file, space_path, objective=objective, trials=trials or 20,
                                timeout=timeout, sampler=sampler, pruner=pruner, storage=storage)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        spec.study_name = study_name or f"sweep-{Path(spec.base['data']).stem}-{stamp}"
        out = Path(out or f"sweeps/{Path(spec.base['data']).stem}-{stamp}")
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise InvalidArgumentError(f"--out {str(out)!r} already holds files; choose a new folder, or continue "
                                       f"the sweep there with --resume {out}")
    if workers is not None and (scheduler is not None or workers < 1):
        raise InvalidArgumentError(f"--workers {workers} is invalid; expected an integer >= 1, and no --scheduler "
                                   "(an existing cluster has its own workers)")
    user_storage, existing = None, {}
    if spec.storage is not None:  # a database named by the user: reachable before anything is written
        user_storage = _open_storage(spec.storage)
        if resume is None:
            existing = {s.study_name: s.direction.name.lower()
                        for s in optuna.get_all_study_summaries(user_storage, include_best_trial=False)}
            if existing.get(spec.study_name, spec.direction) != spec.direction:
                raise InvalidArgumentError(
                    f"--study-name {spec.study_name!r} in --storage is a study that {existing[spec.study_name]}s; "
                    f"this sweep would {spec.direction} {spec.monitor}: choose the same --objective or another "
                    "--study-name")

    client, cluster = connect(scheduler, workers, connect_timeout)
    try:
        trial_cfg = space.config({})
        try:
            loaded = _preload_all(client, trial_cfg)
        except MLPNumpyError as exc:
            raise type(exc)(f"the Dask workers could not load the data: {exc}") from None
        where = scheduler or f"a local Dask cluster of {len(loaded)} worker process{'es' if len(loaded) != 1 else ''}"

        # ---- the sweep folder and the study
        out.mkdir(parents=True, exist_ok=True)
        storage_obj = user_storage or _open_storage(storage_url(spec, out))
        pruner_obj = make_pruner(spec.pruner, space.max_epochs)
        if resume is None:
            # a database given with --storage may already hold the study: this driver then joins it, and
            # the budget counts the trials every driver finished
            study = optuna.create_study(storage=storage_obj, study_name=spec.study_name, direction=spec.direction,
                                        pruner=pruner_obj, load_if_exists=spec.storage is not None)
            study.sampler = _make_sampler(spec, len(study.get_trials(deepcopy=False)),
                                          joined=spec.study_name in existing)
            _write_spec(out, spec)
            requeued = 0
        else:
            study = optuna.load_study(storage=storage_obj, study_name=spec.study_name, pruner=pruner_obj)
            study.sampler = _make_sampler(spec, len(study.get_trials(deepcopy=False)))
            requeued = _requeue_interrupted(study)
            _write_spec(out, spec)
        done = sum(_finished(t) for t in study.get_trials(deepcopy=False))
        again = f", {requeued} interrupted trial{'s' if requeued != 1 else ''} queued again" if requeued else ""
        say(f"Sweep {spec.study_name}: {spec.trials} trials ({done} already finished{again}), "
            f"{spec.objective} on validation data ({spec.monitor}, {spec.direction}), {spec.sampler} sampler, "
            f"{spec.pruner} pruner; {where}; data {loaded[0]['rows'] if loaded else '?'} rows loaded once per "
            f"worker; folder {out}/")
        summary = _loop(client, study, space, spec, out, say, done, figures)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return summary


def _open_storage(url: str):
    import optuna
    try:
        kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
        return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
    except Exception as exc:  # noqa: BLE001 - SQLAlchemy's many errors become one line
        raise InvalidArgumentError(f"--storage {url!r} cannot be opened ({type(exc).__name__}: "
                                   f"{' '.join(str(exc).split())[:200]}); expected an Optuna RDB URL such as "
                                   "sqlite:///study.db or postgresql://user@host/db") from None


def _write_spec(out: Path, spec: SweepSpec) -> None:
    from ..io._atomic import atomic_write
    with atomic_write(out / SPEC_FILE, "w") as fh:
        json.dump(asdict(spec), fh, indent=2)
        fh.write("\n")


def _loop(client, study, space: SearchSpace, spec: SweepSpec, out: Path, say, done: int,
          figures: bool = True) -> dict[str, Any]:
    """Ask, submit, wait, tell, until the budget is spent; on Ctrl-C record what finished and stop."""
    import distributed
    from distributed import KilledWorker
    from optuna.trial import TrialState
    t0 = time.perf_counter()
    deadline = None if spec.timeout is None else t0 + spec.timeout
    topic = f"mlpnumpy-sweep-{spec.study_name}"
    running: dict[Any, tuple] = {}  # future -> (trial, attempt, cfg)
    untold: dict[int, Any] = {}  # trial number -> trial: asked and not told yet, wherever it is
    no_workers_since = None

    def submit(trial, attempt: int, cfg: dict) -> None:
        snapshot = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
        task = {"number": trial.number, "attempt": attempt, "cfg": cfg, "monitor": spec.monitor,
                "direction": spec.direction, "study_name": spec.study_name, "pruner": study.pruner,
                "snapshot": snapshot, "topic": topic}
        fut = client.submit(run_trial, task, key=f"mlpnumpy-trial-{trial.number}-{attempt}-{time.time_ns()}",
                            pure=False)
        running[fut] = (trial, attempt, cfg)

    def counts() -> tuple[int, int]:
        """Trials finished in the study, and trials running for another driver sharing it (the budget
        counts both)."""
        trials = study.get_trials(deepcopy=False)
        return (sum(_finished(t) for t in trials),
                sum(t.state == TrialState.RUNNING and t.number not in untold for t in trials))

    def progress(frozen) -> None:
        nonlocal done
        untold.pop(frozen.number, None)
        done = counts()[0]
        best = best_trial(study)
        value = "-" if frozen.value is None else f"{spec.monitor} {frozen.value:.4f}"
        why = frozen.user_attrs.get("reason")
        say(f"[{done}/{spec.trials}] trial {frozen.number} {frozen.state.name.lower()}: {value}"
            f"{f' ({why})' if why and frozen.state != TrialState.COMPLETE else ''}, "
            f"{frozen.user_attrs.get('seconds', 0):.1f}s on {frozen.user_attrs.get('worker', '?')}; best "
            + (f"{best.value:.4f} (trial {best.number})" if best is not None else "none yet"))
        report.write_trials_csv(out, study, spec.monitor)
        if best is not None and best.number == frozen.number:
            report.write_best_toml(out, study, spec)

    interrupted = False
    ctrl_c = contextlib.ExitStack()
    try:
        # Ctrl-C is acted on between two steps of the loop below, at most a second after it came
        hit = ctrl_c.enter_context(_ctrl_c_as_flag())
        while True:
            if hit["hit"]:
                raise KeyboardInterrupt
            done, elsewhere = counts()
            slots = _threads(client)
            if slots == 0:
                no_workers_since = no_workers_since or time.perf_counter()
                if time.perf_counter() - no_workers_since > 120 and running:
                    raise RuntimeError("no Dask worker has been connected for 120 s; start workers or rerun with "
                                       f"--resume {out}")
            else:
                no_workers_since = None
            while (len(running) < max(slots, 1) and done + elsewhere + len(untold) < spec.trials
                   and (deadline is None or time.perf_counter() < deadline)):
                if hit["hit"]:
                    raise KeyboardInterrupt
                trial = study.ask()
                untold[trial.number] = trial
                try:
                    opts = space.suggest(trial)
                    cfg = space.config(opts)
                except MLPNumpyError as exc:  # a combination train rejects: recorded, not run
                    progress(_fail(study, trial, f"invalid configuration: {exc}"))
                    continue
                trial.set_user_attr("config", cfg)
                submit(trial, 1, cfg)
            if not running:
                break
            try:
                finished, _ = distributed.wait(list(running), timeout=1.0, return_when="FIRST_COMPLETED")
            except (TimeoutError, distributed.TimeoutError):
                continue
            starts = _events(client, topic) if finished else {}
            for fut in finished:
                trial, attempt, cfg = running.pop(fut)
                try:
                    res = fut.result()
                except KilledWorker as exc:
                    if attempt == 1:
                        say(f"trial {trial.number}: its worker died while running it; retrying it once")
                        submit(trial, 2, cfg)
                        continue
                    progress(_fail(study, trial, f"worker lost twice: {exc}"))
                    continue
                except Exception as exc:  # noqa: BLE001 - a bug in one trial does not stop the sweep
                    progress(_fail(study, trial, f"{type(exc).__name__}: {exc}"))
                    continue
                res["attempt"] = attempt
                progress(_record(study, trial, res, starts.get(trial.number, []), spec.monitor))
    except KeyboardInterrupt:
        interrupted = True
        say(f"Interrupted: {done} finished trials recorded; continue with: mlpnumpy sweep --resume {out}")
        raise
    finally:
        ctrl_c.close()  # Ctrl-C raises again (a second one stops the clean-up below)
        for fut in running:
            fut.cancel()
        why = "Ctrl-C on the driver" if interrupted else "the driver stopped on an error"
        for trial in untold.values():  # running, or asked a moment before the stop: recorded as interrupted
            try:
                _fail(study, trial, f"interrupted: {why}", interrupted=True)
            except (ValueError, RuntimeError):  # told just before the stop: already recorded
                pass
        wall = time.perf_counter() - t0
        summary = report.write_all(out, study, spec, space, wall_seconds=wall, interrupted=interrupted,
                                   figures=figures)
    best = best_trial(study)
    if best is not None:
        say(f"Best: trial {best.number}, {spec.monitor} {best.value:.4f}; {summary['counts']}; {wall:.1f}s; "
            f"files in {out}/ (mlpnumpy train --config {out}/best.toml re-runs it)")
    else:
        say(f"No trial completed; {summary['counts']}; files in {out}/")
    return summary
