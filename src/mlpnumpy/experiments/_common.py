"""What every experiment shares: an output folder, a JSON of its numbers, figures without pyplot,
and a plain-text table."""
from __future__ import annotations

import json
import os

from .._atomic import atomic_write_bytes
from ..errors import require


def prepare_out(out) -> str:
    out = os.fspath(out)
    os.makedirs(out, exist_ok=True)
    return out


def write_json(path: str, data: dict) -> str:
    """Write ``data`` as indented JSON, atomically (a killed run leaves no half file)."""
    atomic_write_bytes(path, (json.dumps(data, indent=2, allow_nan=False) + "\n").encode())
    return path


def new_figure(purpose: str, **kwargs):
    """A matplotlib ``Figure`` drawn by the Agg canvas: no pyplot, no global state, no display."""
    require("matplotlib", "plot", purpose)
    from matplotlib.figure import Figure
    return Figure(**kwargs)


def save_figure(fig, path: str) -> str:
    """Write a figure atomically (see :func:`mlpnumpy.plots._save`)."""
    from ..plots import _save
    return _save(fig, path)


def table(header: list[str], rows: list[list], floatfmt: str = "{:.3g}") -> str:
    """Left-aligned first column, right-aligned numbers."""
    cells = [header] + [[r[0]] + [floatfmt.format(v) if isinstance(v, float) else str(v) for v in r[1:]]
                        for r in rows]
    w = [max(len(r[c]) for r in cells) for c in range(len(header))]
    lines = ["  ".join(c.ljust(w[0]) if j == 0 else c.rjust(w[j]) for j, c in enumerate(r)) for r in cells]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)
