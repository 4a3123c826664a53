"""``mlpnumpy sweep``: the command line of a hyperparameter sweep.

Every ``mlpnumpy train`` option is accepted and held fixed for all trials; the search space, the
objective, the budget and where trials run are the sweep's own options. Errors are reported by
``mlpnumpy.cli.main`` as one line (exit 2 for bad input, 1 at run time, 130 on Ctrl-C).
"""
from __future__ import annotations

import argparse

from ..errors import InvalidArgumentError, require

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    from ..cli.options import Parser, add_train_options
    from .driver import OBJECTIVES, PRUNERS, SAMPLERS
    p = Parser(prog="mlpnumpy sweep",
                description="Search training options with Optuna (TPE sampler, median or Hyperband pruning) on "
                            "Dask workers: a local cluster with one worker per core, or --scheduler tcp://HOST:PORT. "
                            "Every train option below is fixed for all trials; --space says what varies. Writes "
                            "trials.csv, best.toml, figures and report.html into --out.")
    g = p.add_argument_group("sweep")
    a = g.add_argument
    a("--space", metavar="FILE.toml", help="search space (default: see --show-space)")
    a("--show-space", action="store_true", help="print the default search space and exit")
    a("--objective", choices=list(OBJECTIVES),
      help="validation accuracy (maximised, default) or validation loss (minimised)")
    a("--trials", type=int, help="trials to finish in total (default 20)")
    a("--timeout", type=float, metavar="SECONDS", help="start no new trial after this many seconds")
    a("--scheduler", metavar="tcp://HOST:PORT", help="an existing Dask scheduler (default: a local cluster)")
    a("--workers", type=int, metavar="N", help="worker processes of the local cluster (default: one per core)")
    a("--storage", metavar="URL", help="Optuna RDB storage (default: sqlite study.db in the sweep folder)")
    a("--study-name", help="name of the study in the storage")
    a("--sampler", choices=list(SAMPLERS), help="Optuna sampler (default tpe)")
    a("--pruner", choices=list(PRUNERS), help="Optuna pruner fed each epoch's metric "
      "(default median)")
    a("--figures", action=argparse.BooleanOptionalAction, default=True,
      help="draw the figures into the folder and report.html (default on; needs matplotlib)")
    a("--connect-timeout", type=float, default=10.0, metavar="SECONDS",
      help="how long to wait for --scheduler (default 10)")
    add_train_options(p)  # every train option, fixed for all trials
    sweep_help = {"out": "the sweep folder (default sweeps/<data>-<timestamp>); must be new or empty",
                  "resume": "continue the sweep in DIR (its study and sweep.json); finished trials are kept",
                  "quiet": "no progress lines", "threads": "BLAS threads of each trial (default: one per worker)"}
    for action in p._actions:
        if action.dest in sweep_help:
            action.help = sweep_help[action.dest]
        elif action.dest in ("finetune", "overwrite", "track_internals"):  # one run's; refused below, by name
            action.help = argparse.SUPPRESS
    return p


def main(argv: list[str] | None = None) -> int:
    """Run ``mlpnumpy sweep ARGV``; returns the exit status (errors are raised for the caller)."""
    from ..cli import config as _config
    try:
        ns = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    if ns.show_space:
        from .space import DEFAULT_SPACE_TOML
        print(DEFAULT_SPACE_TOML, end="")
        return 0
    require("optuna", "sweep", "mlpnumpy sweep")
    require("distributed", "sweep", "mlpnumpy sweep")
    for flag in ("finetune", "overwrite"):
        if getattr(ns, flag, None):
            raise InvalidArgumentError(f"--{flag} is a train option for one run; a sweep writes a new folder "
                                       "(--out) or continues one (--resume DIR)")
    if ns.track_internals:
        raise InvalidArgumentError("--track-internals is not recorded by sweeps; run mlpnumpy train --config "
                                   "DIR/best.toml --track-internals on the best trial instead")
    opts = {k: getattr(ns, k, None) for k in _config.OPTION_TYPES if k not in ("out", "quiet")}
    from .driver import run_sweep
    run_sweep(opts, config_file=ns.config, space_path=ns.space, objective=ns.objective, trials=ns.trials,
              timeout=ns.timeout, out=ns.out, resume=ns.resume, scheduler=ns.scheduler, workers=ns.workers,
              storage=ns.storage, sampler=ns.sampler, pruner=ns.pruner, study_name=ns.study_name,
              connect_timeout=ns.connect_timeout, figures=ns.figures, quiet=bool(ns.quiet))
    return 0
