"""Hints in three levels: 1 the shape reasoning, 2 the index-sum formula, 3 the worked solution."""
from __future__ import annotations

from ..errors import InvalidArgumentError
from .exercises import _SGD_SOLUTION, get_exercise

__all__ = ["hint"]

_TITLES = {1: "shapes", 2: "index sums", 3: "the worked solution"}


def hint(name: str, level: int) -> str:
    """The hint of ``level`` (1, 2 or 3) for exercise ``name``, as text."""
    ex = get_exercise(name)
    if level not in _TITLES:
        raise InvalidArgumentError(f"hint level {level!r} is not one of: 1, 2, 3")
    head = f"Hint {level} for {ex.name} ({_TITLES[level]}):"
    if level < 3:
        return head + "\n" + ex.hints[level - 1]
    body = ex.solution
    if ex.update:
        body += "\n# and in sgd_step(params, grads, lr):\n" + _SGD_SOLUTION
    return (head + "\n" + body.rstrip("\n") + "\n(`mlpnumpy learn solution " + ex.name
            + "` prints the whole file.)")
