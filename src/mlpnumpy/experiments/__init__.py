"""Experiments that show why the textbook advice holds: ``mlpnumpy experiment NAME``.

``init`` (weight scales x activations through 10 layers), ``activations`` (one digits model per
activation and seed, plain SGD, gradients per layer), ``optimizers`` (seven optimizers, each at its
tuned learning rate, on digits and on the Rosenbrock surface) and ``diagnostics`` (the initial loss,
overfitting one batch, update-to-weight ratios). Each writes PNG figures and a JSON of its numbers into
``--out`` and prints a table.
"""
from __future__ import annotations

import argparse
import importlib

from ._digits import digits_problem

__all__ = ["EXPERIMENTS", "digits_problem", "main", "run"]

#: name -> (module, one-line description)
EXPERIMENTS = {
    "init": ("init_study", "weight scale x activation through 10 layers: histograms, stds, gradient norms"),
    "activations": ("activations_study", "the same digits MLP trained with each activation function "
                                         "(plain SGD, several seeds, gradient per layer)"),
    "optimizers": ("optimizers_study", "SGD ... AdamW, each at its tuned learning rate, on digits and on the "
                                       "Rosenbrock surface"),
    "diagnostics": ("diagnostics", "checks before trusting a run: initial loss ~ ln K, overfitting one batch, "
                                   "update-to-weight ratios"),
}


def run(name: str, out=None, *, quick: bool = False, seed: int = 0, print_fn=print) -> dict:
    """Run experiment ``name`` into ``out`` (default ``runs/experiment-<name>``); return its JSON dict."""
    from ..errors import check_choice
    name = check_choice("experiment", name, EXPERIMENTS)
    module = importlib.import_module(f".{EXPERIMENTS[name][0]}", __name__)
    return module.run(out or f"runs/experiment-{name}", quick=quick, seed=seed, print_fn=print_fn)


class _Parser(argparse.ArgumentParser):
    """argparse's complaints as the library's own error: ``mlpnumpy`` prints it as one line, exit 2."""

    def error(self, message):
        from ..errors import InvalidArgumentError
        raise InvalidArgumentError(f"{self.prog.removeprefix('mlpnumpy ')}: {message}")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mlpnumpy experiment",
                                     description="Run a teaching experiment; writes figures and a JSON of "
                                                 "its numbers.")
    sub = parser.add_subparsers(dest="name", metavar="NAME", required=True, parser_class=_Parser)
    for name, (_, help_text) in EXPERIMENTS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--out", metavar="DIR", default=f"runs/experiment-{name}",
                       help="output folder (default: %(default)s)")
        p.add_argument("--seed", type=int, default=0, help="seed of every random draw (default: 0)")
        p.add_argument("--quick", action="store_true", help="a smaller, faster run (for tests and smoke checks)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point for ``mlpnumpy experiment ...``; returns the exit status."""
    from ..cli.config import check_out_dir
    args = _parser().parse_args(argv)
    check_out_dir(args.out)  # before any work: a bad --out is one line, exit 2
    run(args.name, args.out, quick=args.quick, seed=args.seed)
    return 0
