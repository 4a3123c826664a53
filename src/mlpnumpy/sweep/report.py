"""The sweep folder's files: ``trials.csv``, ``best.toml``, the figures and ``report.html``.

Everything is read back from the Optuna study, so a resumed sweep's files cover all its trials.
The figures are Optuna's matplotlib plots (no plotly) and the best trial's curves; ``report.html`` holds
them inline (base64) with a table sortable by any column, and opens without a server.
"""
from __future__ import annotations

import base64
import csv
import html
import json
import math
import warnings
from pathlib import Path
from typing import Any

from ..io._atomic import atomic_write
from ..cli import config as _config
from ..errors import MissingDependencyError

__all__ = ["best_trial", "trial_rows", "write_trials_csv", "best_toml", "write_best_toml", "write_figures",
           "write_report_html", "write_all"]

FIGURES = {  # file -> title
    "optimization_history.png": "Optimisation history",
    "param_importances.png": "Parameter importances (fANOVA)",
    "parallel_coordinate.png": "Parallel coordinates",
    "best_curves.png": "The best trial's learning curves",
}
_BEST_TOML_SKIP = {"out", "quiet", "threads", "track_internals"}


def best_trial(study):
    """The best finished trial of ``study`` (by its direction), or None when none finished."""
    from optuna.trial import TrialState
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        return None
    key = (lambda t: t.value) if study.direction.name == "MAXIMIZE" else (lambda t: -t.value)
    return max(complete, key=key)



def trial_rows(study, monitor: str) -> tuple[list[str], list[dict[str, Any]]]:
    """Columns and one row per trial: number, state, the objective, seconds, worker, attempts,
    reason, each parameter (``param_<name>``) and the monitored metric after each epoch."""
    trials = study.get_trials(deepcopy=False)
    params = sorted({p for t in trials for p in t.params})
    n_epochs = max((max(t.intermediate_values, default=0) for t in trials), default=0)
    columns = ["number", "state", monitor, "seconds", "worker", "attempts", "epochs", "reason",
               *[f"param_{p}" for p in params], *[f"{monitor}_epoch{e}" for e in range(1, n_epochs + 1)]]
    rows = []
    for t in trials:
        row = {"number": t.number, "state": t.state.name, monitor: t.value,
               "seconds": t.user_attrs.get("seconds"), "worker": t.user_attrs.get("worker"),
               "attempts": t.user_attrs.get("attempts"), "epochs": len(t.intermediate_values),
               "reason": t.user_attrs.get("reason")}
        row.update({f"param_{p}": t.params.get(p) for p in params})
        row.update({f"{monitor}_epoch{e}": v for e, v in t.intermediate_values.items()})
        rows.append(row)
    return columns, rows


def write_trials_csv(out: Path, study, monitor: str) -> Path:
    columns, rows = trial_rows(study, monitor)
    path = Path(out) / "trials.csv"
    with atomic_write(path, "w") as fh:
        w = csv.DictWriter(fh, columns, lineterminator="\n")
        w.writeheader()
        for row in rows:
            w.writerow({k: ("" if v is None else repr(v) if isinstance(v, float) else v) for k, v in row.items()})
    return path


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else ("nan" if math.isnan(v) else ("inf" if v > 0 else "-inf"))
    if isinstance(v, str):
        return json.dumps(v)  # a TOML basic string: JSON's escapes are TOML's
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {v!r} to TOML")


def best_toml(study, spec) -> str | None:
    """The best trial's full configuration as a ``mlpnumpy train --config`` file (None: no trial
    has completed)."""
    best = best_trial(study)
    if best is None:
        return None
    cfg = best.user_attrs["config"]
    lines = [f"# Best trial of sweep {spec.study_name}: trial {best.number}, {spec.monitor} = {best.value!r}",
             f"# Re-run it: mlpnumpy train --config best.toml  (same seed, same validation split)",
             "[train]"]
    for key in _config.OPTION_TYPES:
        v = cfg.get(key)
        if v is None or key in _BEST_TOML_SKIP:
            continue
        lines.append(f"{key.replace('_', '-')} = {_toml_value(v)}")
    return "\n".join(lines) + "\n"


def write_best_toml(out: Path, study, spec) -> Path | None:
    text = best_toml(study, spec)
    if text is None:
        return None
    path = Path(out) / "best.toml"
    with atomic_write(path, "w") as fh:
        fh.write(text)
    return path


def _save_axes(ax, path: Path, size=(8, 5)) -> None:
    import matplotlib.pyplot as plt
    fig = ax.figure if hasattr(ax, "figure") else ax.flat[0].figure
    try:
        fig.set_size_inches(*size)
        fig.tight_layout()
        with atomic_write(path, "wb") as fh:
            fig.savefig(fh, format="png", dpi=90)
    finally:
        plt.close(fig)


def write_figures(out: Path, study) -> tuple[dict[str, str], dict[str, str]]:
    """The four figures; returns ``(written {file: title}, skipped {file: why})``."""
    from ..plots import figures as plots
    written, skipped = {}, {}
    try:
        import matplotlib
        import optuna.visualization.matplotlib as vm
    except ImportError:
        return {}, {f: "matplotlib is not installed (pip install 'mlpnumpy[plot]')" for f in FIGURES}
    from optuna.trial import TrialState
    n_complete = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    makers = {
        "optimization_history.png": lambda: vm.plot_optimization_history(study),
        "param_importances.png": lambda: vm.plot_param_importances(study),
        "parallel_coordinate.png": lambda: vm.plot_parallel_coordinate(study),
    }
    for name, make in makers.items():
        if n_complete < (2 if name != "optimization_history.png" else 1):
            skipped[name] = f"needs at least {2 if name != 'optimization_history.png' else 1} completed trials"
            continue
        try:
            # Optuna's plots switch matplotlib's global style (ggplot); rc_context puts it back after each
            with warnings.catch_warnings(), matplotlib.rc_context():
                warnings.simplefilter("ignore")  # Optuna marks its matplotlib plots experimental
                _save_axes(make(), Path(out) / name, (9, 5.5) if name == "parallel_coordinate.png" else (8, 5))
            written[name] = FIGURES[name]
        except (ValueError, RuntimeError, ZeroDivisionError) as exc:  # e.g. importances of a constant objective
            skipped[name] = f"{type(exc).__name__}: {exc}"
    best = best_trial(study)
    if best is not None and best.user_attrs.get("history"):
        try:
            plots.plot_history(best.user_attrs["history"], Path(out) / "best_curves.png")
            written["best_curves.png"] = f"{FIGURES['best_curves.png']} (trial {best.number})"
        except MissingDependencyError as exc:
            skipped["best_curves.png"] = str(exc)
    else:
        skipped["best_curves.png"] = "no trial has completed"
    return written, skipped


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#1a1a1a;background:#fff}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em}
.figs{display:flex;flex-wrap:wrap;gap:16px}.figs figure{margin:0;border:1px solid #ddd;padding:8px}
.figs img{max-width:560px;width:100%;height:auto;display:block}
table{border-collapse:collapse;font-size:12px}th,td{border:1px solid #ccc;padding:3px 6px;text-align:right}
th{background:#eef;cursor:pointer;position:sticky;top:0;user-select:none}
th[aria-sort=ascending]::after{content:" \\25B2"}th[aria-sort=descending]::after{content:" \\25BC"}
tr.best td{background:#efe}td.s-FAIL{color:#b00}td.s-PRUNED{color:#a60}
pre{background:#f6f6f6;padding:8px;border:1px solid #ddd}.scroll{overflow-x:auto}
"""

# Sorts by the clicked column (numbers as numbers, blanks last); on load, by the objective, best first.
_JS = """
(function () {
  var table = document.getElementById("trials");
  var body = table.tBodies[0];
  function key(cell) {
    var t = cell.textContent.trim();
    if (t === "") return null;
    var x = Number(t);
    return isNaN(x) ? t.toLowerCase() : x;
  }
  function sortBy(th, dir) {
    var i = th.cellIndex;
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = key(a.cells[i]), y = key(b.cells[i]);
      if (x === null) return y === null ? 0 : 1;
      if (y === null) return -1;
      if (typeof x !== typeof y) { x = String(x); y = String(y); }
      return (x < y ? -1 : x > y ? 1 : 0) * (dir === "ascending" ? 1 : -1);
    });
    rows.forEach(function (r) { body.appendChild(r); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", dir);
  }
  Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
    th.addEventListener("click", function () {
      sortBy(th, th.getAttribute("aria-sort") === "ascending" ? "descending" : "ascending");
    });
  });
  var first = document.getElementById("objective-column");
  if (first) sortBy(first, table.getAttribute("data-direction") === "maximize" ? "descending" : "ascending");
  table.setAttribute("data-sorted", "yes");
})();
"""


def _cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.6g}"
    return html.escape(str(v))


def write_report_html(out: Path, study, spec, space, figures: dict[str, str], skipped: dict[str, str],
                      summary: dict[str, Any]) -> Path:
    """``report.html``: summary, figures inline as base64 PNG, the sortable trials table, best.toml."""
    columns, rows = trial_rows(study, spec.monitor)
    best = best_trial(study)
    figs = []
    for name, title in figures.items():
        data = base64.b64encode((Path(out) / name).read_bytes()).decode("ascii")
        figs.append(f'<figure><img alt="{html.escape(title)}" src="data:image/png;base64,{data}">'
                    f"<figcaption>{html.escape(title)}</figcaption></figure>")
    notes = "".join(f"<li>{html.escape(n)}: {html.escape(w)}</li>" for n, w in skipped.items())
    head = "".join(f'<th{" id=objective-column" if c == spec.monitor else ""} scope="col">{html.escape(c)}</th>'
                   for c in columns)
    body = []
    for r in rows:
        cls = ' class="best"' if best is not None and r["number"] == best.number else ""
        cells = "".join(f'<td class="s-{r["state"]}">{_cell(r[c])}</td>' if c == "state" else f"<td>{_cell(r.get(c))}</td>"
                        for c in columns)
        body.append(f"<tr{cls}>{cells}</tr>")
    best_text = best_toml(study, spec)
    info = [("study", spec.study_name), ("data", spec.base["data"]),
            ("objective", f"{spec.monitor} ({spec.direction}), validation split {spec.base['validation_split']}"),
            ("sampler / pruner", f"{spec.sampler} / {spec.pruner}"), ("trials", summary["counts"]),
            ("wall time of the last driver run", f"{summary['wall_seconds']:.1f} s"),
            ("best", "none" if best is None else f"trial {best.number}: {spec.monitor} {best.value:.4f}"),
            ("search space", "; ".join(space.describe()) or "(nothing searched)")]
    info_html = "".join(f"<tr><th scope=row>{html.escape(k)}</th><td style='text-align:left'>{html.escape(str(v))}</td></tr>"
                        for k, v in info)
    doc = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,"><title>mlpnumpy sweep {html.escape(spec.study_name)}</title><style>{_CSS}</style></head>
<body>
<h1>mlpnumpy sweep: {html.escape(spec.study_name)}</h1>
<table class="info">{info_html}</table>
<h2>Figures</h2>
<div class="figs">{''.join(figs) or '<p>No figures.</p>'}</div>
{f'<ul class="skipped">{notes}</ul>' if notes else ''}
<h2>Trials ({len(rows)})</h2>
<p>Click a column to sort. The best trial's row is green.</p>
<div class="scroll"><table id="trials" data-direction="{spec.direction}">
<thead><tr>{head}</tr></thead>
<tbody>
{chr(10).join(body)}
</tbody></table></div>
<h2>best.toml</h2>
<pre>{html.escape(best_text or 'no trial has completed yet')}</pre>
<script>{_JS}</script>
</body></html>
"""
    path = Path(out) / "report.html"
    with atomic_write(path, "w", encoding="utf-8") as fh:
        fh.write(doc)
    return path


def write_all(out: Path, study, spec, space, *, wall_seconds: float, interrupted: bool = False,
              figures: bool = True) -> dict[str, Any]:
    """Every file of the sweep folder, from the study as it stands (``figures=False``: the report
    without figures); returns a summary dict."""
    from optuna.trial import TrialState
    trials = study.get_trials(deepcopy=False)
    counts = {s.name.lower(): sum(t.state == s for t in trials) for s in TrialState if any(t.state == s for t in trials)}
    counts_text = ", ".join(f"{n} {s}" for s, n in counts.items()) or "no trials"
    write_trials_csv(out, study, spec.monitor)
    write_best_toml(out, study, spec)
    written, skipped = write_figures(out, study) if figures else ({}, {f: "--no-figures" for f in FIGURES})
    best = best_trial(study)
    summary = {"study": spec.study_name, "counts": counts_text, "states": counts, "wall_seconds": wall_seconds,
               "interrupted": interrupted, "best_trial": None if best is None else best.number,
               "best_value": None if best is None else best.value, "monitor": spec.monitor,
               "figures": list(written), "skipped_figures": skipped}
    write_report_html(out, study, spec, space, written, skipped, summary)
    return summary
