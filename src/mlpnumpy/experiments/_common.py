"""What every experiment shares: an output folder, a JSON of its numbers, figures without pyplot,
and a plain-text table."""
from __future__ import annotations

import json
import os

from ..io._atomic import atomic_write_bytes
from ..errors import require


def prepare_out(out) -> str:
    out = os.fspath(out)
    os.makedirs(out, exist_ok=True)
    return out


def write_json(path: str, data: dict) -> str:
    """Write ``data`` as indented JSON, atomically (a killed run leaves no half file)."""
    atomic_write_bytes(path, (json.dumps(data, indent=2, allow_nan=False) + "\n").encode())
    return path


def finish(out: str, data: dict, header: list[str], rows: list[list], floatfmt: str, print_fn) -> dict:
    """Write ``data`` to ``<out>/<experiment>.json`` and, with a ``print_fn``, print the results'
    table and the files written. Returns ``data``."""
    path = write_json(os.path.join(out, data["experiment"] + ".json"), data)
    if print_fn is not None:
        print_fn(table(header, rows, floatfmt))
        print_fn(f"wrote {path} and {', '.join(os.path.join(out, f) for f in data['figures'])}")
    return data


def new_figure(purpose: str, **kwargs):
    """A matplotlib ``Figure`` drawn by the Agg canvas: no pyplot, no global state, no display."""
    require("matplotlib", "plot", purpose)
    from matplotlib.figure import Figure
    return Figure(**kwargs)


def save_figure(fig, path: str) -> str:
    """Write a figure atomically (see :func:`mlpnumpy.plots.save_figure`)."""
    from ..plots.figures import save_figure
    return save_figure(fig, path)


def plot_runs(results: dict, panels, title: str, purpose: str, path: str) -> str:
    """One figure of side-by-side panels, one curve per run, and write it to ``path``.

    ``results`` maps a run's name to its numbers. ``panels`` lists, per panel,
    ``(key, panel_title, log_y, style, label)``: the curve is ``results[run][key]`` over epochs 1..n,
    drawn with the matplotlib format ``style``; ``label(name, run)`` gives the legend entry.
    """
    fig = new_figure(purpose, figsize=(11, 4.2), dpi=90)
    axes = fig.subplots(1, len(panels))
    for ax, (key, panel_title, log_y, style, label) in zip(axes, panels):
        for name, r in results.items():
            draw = ax.semilogy if log_y else ax.plot
            draw(range(1, len(r[key]) + 1), r[key], style, ms=3, label=label(name, r))
        ax.set(title=panel_title, xlabel="epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)


def table(header: list[str], rows: list[list], floatfmt: str = "{:.3g}") -> str:
    """Left-aligned first column, right-aligned numbers."""
    cells = [header] + [[r[0]] + [floatfmt.format(v) if isinstance(v, float) else str(v) for v in r[1:]]
                        for r in rows]
    w = [max(len(r[c]) for r in cells) for c in range(len(header))]
    lines = ["  ".join(c.ljust(w[0]) if j == 0 else c.rjust(w[j]) for j, c in enumerate(r)) for r in cells]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)
