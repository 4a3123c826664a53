"""The ``mlpnumpy`` command and the run it starts.

``commands`` parses the options and turns every error into one line and an exit code; ``config``
holds the recipes and validates a whole run's options (flags and TOML) before anything is written;
``run.run_train`` runs the job (resume rules, data, model, fit, evaluation, metrics, figures) in a
run folder that ``_runfolder`` locks; ``demo`` is the seed's flow and figure.
"""
from .commands import build_parser, main

__all__ = ["main", "build_parser"]
