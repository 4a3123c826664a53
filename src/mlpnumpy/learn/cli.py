"""``mlpnumpy learn``: list, start, check, hint, solution, finale.

Exit status: 0 all right, 1 the learner's code is not right yet (or failed), 2 a usage error; every
error is one line on stderr.
"""
from __future__ import annotations

import argparse
import sys

from ..cli.options import Parser, UsageError  # one line, exit 2, no usage dump
from ..errors import MLPNumpyError

__all__ = ["main"]

PROG = "mlpnumpy learn"


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog=PROG, description="Practice backprop: write the backward passes, mlpnumpy grades them.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    s = sub.add_parser("list", help="the exercises, in order (with --dir: which you have done)")
    s.add_argument("--dir", default=None, help="mark the exercises whose files in DIR pass their check")
    s = sub.add_parser("start", help="write DIR/NAME.py: the forward given, the backward for you to write")
    s.add_argument("name")
    s.add_argument("--dir", default=".", help="folder for your exercise files (default: here)")
    s = sub.add_parser("check", help="grade DIR/NAME.py against float64 central differences")
    s.add_argument("name")
    s.add_argument("--dir", default=".")
    s.add_argument("--hint", type=int, choices=(1, 2, 3), help="1: shapes, 2: index sums, 3: worked solution")
    s.add_argument("--seed", type=int, default=0, help="draws the inputs")
    s = sub.add_parser("hint", help="a hint for NAME: 1 shapes, 2 index sums, 3 the worked solution")
    s.add_argument("name")
    s.add_argument("level", type=int, nargs="?", default=1, choices=(1, 2, 3))
    s = sub.add_parser("solution", help="print a whole solution file for NAME (it passes check)")
    s.add_argument("name")
    s = sub.add_parser("finale", help="train the embedded digits with your dense and activation layers")
    s.add_argument("--dir", default=".")
    s.add_argument("--activation", default="relu", help="relu (default), tanh or sigmoid: your file of that name")
    s.add_argument("--hidden", type=int, default=128)
    s.add_argument("--epochs", type=int, default=30)
    s.add_argument("--lr", type=float, default=0.1)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", default=None, help="where the internals plot goes (default: DIR)")
    return p


def _run(argv: list[str]) -> int:
    from . import check, finale, hint, list_exercises, solution, start
    try:
        ns = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    if ns.command is None:
        build_parser().print_help()
        return 2
    if ns.command == "list":
        print(list_exercises(ns.dir))
        if ns.dir is None:
            print("\nStart with: mlpnumpy learn start gates --dir practice")
        return 0
    if ns.command == "start":
        path = start(ns.name, ns.dir)
        where = "" if ns.dir == "." else f" --dir {ns.dir}"
        print(f"wrote {path}: write backward in it, then run: mlpnumpy learn check {ns.name.lower()}{where}")
        return 0
    if ns.command == "check":
        return check(ns.name, dir=ns.dir, hint=ns.hint, seed=ns.seed).exit_code
    if ns.command == "hint":
        print(hint(ns.name, ns.level))
        return 0
    if ns.command == "solution":
        print(solution(ns.name), end="")
        return 0
    return finale(ns.dir, activation=ns.activation, hidden=ns.hidden, epochs=ns.epochs, lr=ns.lr,
                  seed=ns.seed, out=ns.out).exit_code


def _fail(message, code: int) -> int:
    print(f"{PROG}: error: {' '.join(str(message).split())}", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    """Run ``mlpnumpy learn`` with ``argv`` (the words after ``learn``); returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return _run(argv)
    except UsageError as exc:
        return _fail(exc, 2)
    except (MLPNumpyError, FileNotFoundError, FileExistsError) as exc:
        text = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        return _fail(text, 2)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
