"""Practice mode: write the backward passes yourself and let mlpnumpy grade them.

``mlpnumpy learn list`` shows the exercises; ``learn start NAME`` writes a file with the forward pass
given and the backward a stub; ``learn check NAME`` compares each gradient with float64 central
differences and names common mistakes; ``learn finale`` trains the embedded digits with your layers.
From Python (a notebook too)::

    from mlpnumpy import learn
    learn.check("dense", my_backward)      # prints the same table as the command line
"""
from __future__ import annotations

import os
from pathlib import Path

from .checker import CheckResult, check
from .exercises import EXERCISES, get_exercise, render
from .hints import hint
from .mistakes import CATALOGUE

__all__ = ["EXERCISES", "CATALOGUE", "CheckResult", "check", "hint", "list_exercises", "start", "solution",
           "finale"]


def list_exercises(dir: str | os.PathLike | None = None) -> str:
    """The exercises in order, one line each (what ``mlpnumpy learn list`` prints). With ``dir``, each
    line also says where you are: ``[done]`` (the file passes :func:`check`), ``[started]`` or nothing."""
    w = max(len(n) for n in EXERCISES)
    lines = []
    for i, ex in enumerate(EXERCISES.values(), 1):
        mark = ""
        if dir is not None and (Path(dir) / f"{ex.name}.py").is_file():
            mark = "[done]    " if check(ex.name, dir=dir, print_fn=None).passed else "[started] "
        elif dir is not None:
            mark = " " * 10
        lines.append(f"{mark}{i:>2}. {ex.name:<{w}}  {ex.title}: {ex.summary}")
    pad = "" if dir is None else " " * 10
    lines.append(f"{pad}{'':>3} {'finale':<{w}}  your dense and activation layers in a Sequential, trained on the "
                 "embedded digits")
    return "\n".join(lines)


def solution(name: str) -> str:
    """The worked solution of exercise ``name``: a whole file that passes :func:`check`."""
    return render(get_exercise(name), solved=True)


def start(name: str, dir: str | os.PathLike = ".") -> Path:
    """Write ``dir/<name>.py`` (forward given, backward a stub) and return its path.

    Raises
    ------
    FileExistsError
        If the file is there already: the learner's work is never overwritten.
    """
    ex = get_exercise(name)
    folder = Path(dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{ex.name}.py"
    text = render(ex, solved=False, directory=str(dir))
    try:
        with open(path, "x", encoding="utf-8") as fh:  # "x": fails if the file exists, atomically
            fh.write(text)
    except FileExistsError:
        raise FileExistsError(17, f"{path} exists and holds your work; it is not overwritten (check it with "
                                  f"`mlpnumpy learn check {ex.name}" + ("" if str(dir) == "." else f" --dir {dir}")
                                  + "`, or move it away to start again)", str(path)) from None
    return path


def finale(dir: str | os.PathLike = ".", **kwargs):
    """Train the embedded digits with the learner's layers; see :func:`mlpnumpy.learn.capstone.run`."""
    from .capstone import run
    return run(dir, **kwargs)
