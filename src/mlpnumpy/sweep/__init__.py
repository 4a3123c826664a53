"""Hyperparameter sweeps: ``mlpnumpy sweep``, Optuna's search run on Dask workers.

``space`` reads the search space, ``objective`` is what a worker runs for one trial, ``driver`` asks
and tells Optuna and hands trials to Dask, ``report`` writes the sweep folder, ``cli`` is the command.
Needs the ``sweep`` extra: ``pip install 'mlpnumpy[sweep]'`` (optuna, dask[distributed]).
"""
from __future__ import annotations

__all__ = ["run_sweep", "load_space", "DEFAULT_SPACE_TOML"]


def __getattr__(name):  # optuna and dask are imported only when a sweep runs
    if name == "run_sweep":
        from .driver import run_sweep
        return run_sweep
    if name in ("load_space", "DEFAULT_SPACE_TOML"):
        from . import space
        return getattr(space, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
