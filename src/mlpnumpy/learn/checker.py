"""Grading a learner's backward pass: every gradient against float64 central differences.

The exercise's forward steps are run on float64 inputs drawn away from kinks. The numerical gradient
of the loss with respect to each quantity (inputs and intermediates alike) comes from perturbing that
quantity alone and running the steps after it. The learner's gradients are compared in the order a
backward pass computes them, one table row each, stopping at the first wrong one, where
:func:`~mlpnumpy.learn.mistakes.diagnose` names the mistake if it is a catalogued one.
"""
from __future__ import annotations

import copy
import importlib.util
import os
import textwrap
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidArgumentError
from .exercises import Exercise, get_exercise, grad_signature, render
from .mistakes import CATALOGUE, close, diagnose

__all__ = ["Row", "CheckResult", "check", "load_learner_file", "numeric_grad", "run_forward"]

H = 1e-5            # central-difference step: truncation ~1e-11, round-off ~1e-11 at these sizes
KINK_MARGIN = 0.05  # no kink expression may come closer to 0 than this (far beyond H)
SGD_LR = 0.1


@dataclass
class Row:
    """One line of the table: a quantity, its shape, and how the learner's gradient compares."""

    name: str
    shape: str
    exact: str      # "yes"/"no": bit for bit equal to the reference solution
    close: str      # "yes"/"no": within tolerance of the finite differences (what counts)
    max_diff: str   # largest |learner - finite differences|, or why there is none


@dataclass
class CheckResult:
    """What :func:`check` found. ``passed`` is the verdict; ``mistake`` the catalogued mistake's id
    when one was recognised; ``text`` the report printed."""

    exercise: str
    passed: bool
    rows: list[Row] = field(default_factory=list)
    message: str = ""
    mistake: str | None = None
    text: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def __repr__(self) -> str:
        extra = f", mistake={self.mistake!r}" if self.mistake else ""
        return f"CheckResult(exercise={self.exercise!r}, passed={self.passed}{extra})"


class _LearnerFailure(Exception):
    """The learner's code could not be run (stub, exception, syntax error); the message says why."""


# ------------------------------------------------------------------------------- forward and numerics
def run_forward(ex: Exercise, inputs: dict, overrides: dict | None = None) -> dict:
    """Run the exercise's steps; a name in ``overrides`` takes that value instead of its step."""
    ns: dict[str, Any] = dict(inputs)
    env = {"np": np}
    for step in ex.steps:
        if overrides and step.name in overrides:
            ns[step.name] = overrides[step.name]
        else:
            ns[step.name] = eval(step.expr, env, ns)  # noqa: S307 - the package's own expressions
    return ns


def _scalar_loss(ex: Exercise, ns: dict, G) -> float:
    out = ns[ex.output]
    return float(out) if ex.scalar else float(np.sum(G * out))


def numeric_grad(ex: Exercise, inputs: dict, q: str, G=None, h: float = H) -> np.ndarray:
    """dL/dq by central differences, ``(L(q + h) - L(q - h)) / 2h`` entry by entry, in float64.

    ``L`` is the exercise's output (a scalar loss) or ``sum(G * output)``. ``q`` may be an input or an
    intermediate step; an intermediate is held at the perturbed value while the later steps rerun.
    """
    is_input = q in inputs
    base = np.array(inputs[q] if is_input else run_forward(ex, inputs)[q], dtype=np.float64)
    g = np.zeros_like(base)
    for idx in np.ndindex(base.shape):
        vals = []
        for step in (h, -h):
            arr = base.copy()
            arr[idx] += step
            ns = run_forward(ex, {**inputs, q: arr}) if is_input else run_forward(ex, inputs, {q: arr})
            vals.append(_scalar_loss(ex, ns, G))
        g[idx] = (vals[0] - vals[1]) / (2 * h)
    return g


def _draw(ex: Exercise, seed: int) -> dict:
    """Inputs for ``ex`` from ``seed``, redrawn until every kink expression keeps its distance from 0."""
    rng = np.random.default_rng(seed)
    for _ in range(200):
        inputs = ex.draw_inputs(rng)
        ns = run_forward(ex, inputs)
        if all(np.min(np.abs(eval(k, {"np": np}, ns))) > KINK_MARGIN for k in ex.kinks):  # noqa: S307
            return inputs
    raise RuntimeError(f"{ex.name}: no inputs away from the kinks in 200 draws")  # pragma: no cover


def _solution_backward(ex: Exercise):
    """The reference backward (and sgd_step), compiled from the exercise's own solution."""
    env: dict[str, Any] = {}
    exec(compile(render(ex, solved=True), f"<solution {ex.name}>", "exec"), env)  # noqa: S102
    return env["backward"], env.get("sgd_step")


# ------------------------------------------------------------------------------- the learner's code
def load_learner_file(path: str | os.PathLike):
    """Import the learner's file as a fresh module (not added to ``sys.modules``).

    Raises
    ------
    _LearnerFailure
        On a syntax error or an exception while importing, with the line.
    """
    path = Path(path)
    spec = importlib.util.spec_from_file_location(f"mlpnumpy_learn_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise _LearnerFailure(f"{path.name} has a syntax error at line {exc.lineno}: {exc.msg}") from None
    except Exception as exc:  # noqa: BLE001 - the learner's file may raise anything
        raise _LearnerFailure(f"importing {path.name} raised {_where(exc)}") from None
    return module


def _where(exc: BaseException) -> str:
    """``Type: message (file, line N: code)`` for the innermost frame of the learner's code."""
    here = Path(__file__).resolve().parent
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename).resolve().parent != here]
    text = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
    if frames:
        f = frames[-1]
        text += f" ({Path(f.filename).name}, line {f.lineno}: {(f.line or '').strip()})"
    return text


def _changed(before, after) -> bool:
    """Whether an argument (array, dict of arrays, number) was written into."""
    if isinstance(before, dict):
        return any(_changed(v, after.get(k)) for k, v in before.items())
    if isinstance(before, np.ndarray):
        return not np.array_equal(before, after, equal_nan=True)
    return False


def _call(fn, *args, what: str, ex: Exercise, cache: dict, notes: list | None = None):
    """Run the learner's ``fn`` on copies of ``args``; a write into an argument adds a note."""
    given = copy.deepcopy(args)
    names = ("params", "grads", "lr") if what == "sgd_step" else ("dout", "cache")
    try:
        out = fn(*given)
        for name, before, after in zip(names, args, given):
            if notes is not None and _changed(before, after):
                notes.append(f"Note: {what} wrote into its argument {name}. Leave what you are given unchanged "
                             "(another layer may still read it) and make a new array instead: "
                             "dz = dout * mask, not dout[...] = 0.")
        return out
    except NotImplementedError:
        if what == "sgd_step":
            raise _LearnerFailure("sgd_step is not written yet (it raises NotImplementedError): return a new "
                                  "dict with params[k] - lr * grads[k] for every key k") from None
        ret = "{" + ", ".join(f'"{g}": d{g}' for g in ex.grads) + "}"
        raise _LearnerFailure(f"backward is not written yet (it raises NotImplementedError). Write, in this "
                              f"order: {grad_signature(ex)}, each with the shape of what it differentiates, "
                              f"and return {ret}. Start with d{ex.grads[0]}; "
                              f"--hint 1 on the check command helps.") from None
    except Exception as exc:  # noqa: BLE001 - report the learner's error in one line
        msg = f"{what} raised {_where(exc)}"
        if isinstance(exc, ValueError) and ("matmul" in str(exc) or "shape" in str(exc)):
            shapes = ", ".join(f"{k} {tuple(np.shape(v))}" for k, v in cache.items() if np.ndim(v))
            msg += (f". A product's inner sizes must match and broadcasting needs compatible shapes; "
                    f"the shapes at hand: {shapes}. Which factor needs a transpose?")
        raise _LearnerFailure(msg) from None


def _resolve(ex: Exercise, backward, directory, sgd_step):
    """The learner's backward (and sgd_step) from a function, a module, a file path, or ``directory``."""
    module = None
    if backward is None:
        path = Path(directory) / f"{ex.name}.py"
        if not path.is_file():
            raise FileNotFoundError(2, f"no exercise file {path}; create it with: mlpnumpy learn start "
                                       f"{ex.name}" + ("" if str(directory) == "." else f" --dir {directory}"),
                                    str(path))
        module = load_learner_file(path)
    elif isinstance(backward, (str, os.PathLike)):
        if not Path(backward).is_file():
            raise FileNotFoundError(2, f"no file {backward}", str(backward))
        module = load_learner_file(backward)
    elif hasattr(backward, "backward") and not callable(backward):
        module = backward
    elif not callable(backward):
        raise InvalidArgumentError(f"backward={backward!r} is not usable; expected a function "
                                   "backward(dout, cache), a module that has one, or a file path")
    forward = None
    if module is not None:
        if not callable(getattr(module, "backward", None)):
            raise _LearnerFailure(f"{ex.name}: the file has no function backward(dout, cache)")
        backward = module.backward
        forward = getattr(module, "forward", None)
        if sgd_step is None:
            sgd_step = getattr(module, "sgd_step", None)
    return backward, sgd_step, forward


# ------------------------------------------------------------------------------- the check
def _fmt_shape(shape) -> str:
    return str(tuple(int(s) for s in shape))


def _table(ex: Exercise, rows: list[Row], footer: str) -> str:
    head = Row("quantity", "shape", "exact?", "close?", "max difference")
    w = [max(len(getattr(r, k)) for r in [head, *rows]) for k in ("name", "shape", "exact", "close")]
    lines = [f"{ex.name}: {ex.title} -- each gradient against float64 central differences"]
    for r in [head, *rows] if rows else []:
        lines.append(f"{r.name:<{w[0]}}  {r.shape:<{w[1]}}  {r.exact:<{w[2]}}  {r.close:<{w[3]}}  {r.max_diff}")
    lines.append(textwrap.fill(footer, 100, break_long_words=False, break_on_hyphens=False))
    return "\n".join(lines)


def check(name: str, backward=None, *, dir: str | os.PathLike = ".", sgd_step=None, hint: int | None = None,
          seed: int = 0, print_fn=print) -> CheckResult:
    """Check a backward pass for exercise ``name`` and print the table.

    Parameters
    ----------
    name : str
        An exercise (``mlpnumpy learn list``), e.g. ``"dense"``.
    backward : callable, module, path, or None
        ``backward(dout, cache) -> {quantity: gradient}``; a module or file that defines it; or None
        to read ``dir/<name>.py``.
    dir : path
        Where the exercise files are (when ``backward`` is None).
    sgd_step : callable, optional
        For ``mlp_step``: ``sgd_step(params, grads, lr)``; taken from the module when not given.
    hint : {1, 2, 3}, optional
        Also print a hint: shapes, the index-sum formula, or the worked solution.
    seed : int
        Draws the inputs (and the upstream gradient).
    print_fn : callable or None
        Where the report goes (``print``; None prints nothing).

    Returns
    -------
    CheckResult
        ``passed``, the table ``rows``, the ``message``, the recognised ``mistake`` (an id of
        :data:`~mlpnumpy.learn.mistakes.CATALOGUE`) and the printed ``text``.

    Raises
    ------
    InvalidArgumentError
        Unknown exercise or hint level.
    FileNotFoundError
        No exercise file in ``dir``.
    """
    ex = get_exercise(name)
    if hint is not None and hint not in (1, 2, 3):
        raise InvalidArgumentError(f"hint={hint!r} is not one of: 1, 2, 3")
    result = CheckResult(ex.name, False)
    try:
        fn, step_fn, forward = _resolve(ex, backward, dir, sgd_step)
        _grade(ex, fn, step_fn, forward, seed, result)
    except _LearnerFailure as exc:
        result.message = str(exc)
    result.text = _table(ex, result.rows, result.message)
    for note in result.notes:
        result.text += "\n" + textwrap.fill(note, 100, break_long_words=False)
    if hint is not None:
        from .hints import hint as _hint
        result.text += "\n\n" + _hint(ex.name, hint)
    if print_fn is not None:
        print_fn(result.text)
    return result


def _learner_cache(ex: Exercise, forward, inputs: dict, ns: dict, cache: dict) -> dict:
    """The cache the learner's own ``forward`` makes (it may keep more than the given one), after
    checking that its output is still the given forward's."""
    if forward is None:
        return cache
    try:
        got = forward(**copy.deepcopy(inputs))
    except Exception as exc:  # noqa: BLE001
        raise _LearnerFailure(f"forward raised {_where(exc)}; the forward pass is given: restore it") from None
    if not (isinstance(got, tuple) and len(got) == 2 and isinstance(got[1], dict)):
        raise _LearnerFailure("forward must return (output, cache), cache a dict, as the given forward does")
    if np.shape(got[0]) != np.shape(ns[ex.output]) or not close(got[0], ns[ex.output]):
        raise _LearnerFailure(f"your forward's {ex.output} differs from the given forward pass's; the check "
                              "grades backward against the given forward, so restore it (`mlpnumpy learn "
                              f"solution {ex.name}` shows the original)")
    return got[1]


def _grade(ex: Exercise, fn, step_fn, forward, seed: int, result: CheckResult) -> None:
    inputs = _draw(ex, seed)
    ns = run_forward(ex, inputs)
    G = None
    if not ex.scalar:
        G = np.random.default_rng([seed, 1]).standard_normal(np.shape(ns[ex.output]))
    dout = 1.0 if ex.scalar else G
    cache = {k: ns[k] for k in [i.name for i in ex.inputs] + [s.name for s in ex.steps]}
    ref_backward, ref_step = _solution_backward(ex)
    ref = ref_backward(copy.deepcopy(dout), copy.deepcopy(cache))
    mine = _learner_cache(ex, forward, inputs, ns, cache)
    got_all = _call(fn, dout, mine, what="backward", ex=ex, cache={"dout": dout, **mine}, notes=result.notes)
    if not isinstance(got_all, dict):
        raise _LearnerFailure(f"backward returned {type(got_all).__name__}; return a dict "
                              f"{{quantity name: gradient}} such as {{'{ex.grads[0]}': d{ex.grads[0]}}}")
    n = int(np.shape(ns[ex.inputs[0].name])[0])
    env = {**cache, "dout": dout, **{f"d{k}": v for k, v in ref.items()}, "np": np}
    for q in ex.grads:
        want_shape = _fmt_shape(np.shape(ns[q]))
        if q not in got_all:
            done = "" if not result.rows else "everything before it is right; "
            result.message = (f"d{q} is not written yet ({done}backward returned no '{q}'): write d{q}, shape "
                              f"{ex.shape_of(q)} like {q}, and add it to the returned dict.")
            return
        try:
            got = np.asarray(got_all[q], dtype=np.float64)
        except (TypeError, ValueError):
            raise _LearnerFailure(f"d{q} is {type(got_all[q]).__name__}, not an array of numbers") from None
        want = numeric_grad(ex, inputs, q, G)
        if got.shape != want.shape:
            result.rows.append(Row("d" + q, _fmt_shape(got.shape), "no", "no", f"shape != {want_shape}"))
            found = diagnose(q, got, want, n=n)
            result.mistake = found[0] if found else None
            result.message = (f"Mistake: {CATALOGUE[found[0]].title}. {found[1]}" if found else
                              f"d{q} has shape {_fmt_shape(got.shape)} but {q} has shape {want_shape}; a gradient "
                              f"has the shape of what it differentiates ({ex.shape_of(q)}).")
            return
        diff = float(np.max(np.abs(got - want))) if got.size else 0.0
        exact = np.array_equal(got, np.asarray(ref[q], np.float64))
        ok = close(got, want)
        result.rows.append(Row("d" + q, want_shape, "yes" if exact else "no", "yes" if ok else "no", f"{diff:.1e}"))
        if not ok:
            wrong = {mid: eval(expr, {"np": np}, env) for mid, expr in ex.formulas.get(q, ())}  # noqa: S307
            found = diagnose(q, got, want, n=n, wrong_formulas=wrong)
            if found:
                result.mistake = found[0]
                result.message = f"Mistake: {CATALOGUE[found[0]].title}. {found[1]}"
            else:
                i = np.unravel_index(int(np.argmax(np.abs(got - want))), got.shape) if got.ndim else ()
                at = f" at index {tuple(int(v) for v in i)}" if got.ndim else ""
                before = "Everything before it is right, so the mistake is in the line that computes " \
                         f"d{q}" if len(result.rows) > 1 else f"Look at the line that computes d{q}"
                result.message = (f"d{q} is wrong: the largest difference is {diff:.3g}{at} (yours "
                                  f"{float(got[i]):.6g}, finite differences {float(want[i]):.6g}). {before}; "
                                  f"try --hint 1 or --hint 2.")
            return
    if ex.update:
        _grade_update(ex, step_fn, ref_step, cache, ref, inputs, n, result)
        if result.message:
            return
    result.passed = True
    result.message = ((f"All {len(ex.grads)} gradients are right" if len(ex.grads) > 1 else "The gradient is right")
                      + (" and one SGD step lowers the loss" if ex.update else "") + ". "
                      "(exact?: the same bits as the reference solution; close?: within 1e-6 of the "
                      "float64 finite differences, which is what counts.)")


def _grade_update(ex, step_fn, ref_step, cache, ref, inputs, n, result):
    if step_fn is None:
        raise _LearnerFailure("mlp_step needs sgd_step(params, grads, lr) too; the file has none")
    keys = [g for g in ex.grads if g in inputs]
    params = {k: cache[k] for k in keys}
    grads = {k: ref[k] for k in keys}
    new = _call(step_fn, params, grads, SGD_LR, what="sgd_step", ex=ex, cache=cache, notes=result.notes)
    want = ref_step(copy.deepcopy(params), copy.deepcopy(grads), SGD_LR)
    if not isinstance(new, dict) or set(keys) - set(new):
        raise _LearnerFailure(f"sgd_step must return a dict with the keys {', '.join(keys)}")
    for k in keys:
        got = np.asarray(new[k], np.float64)
        if got.shape != want[k].shape:
            result.rows.append(Row(f"step {k}", _fmt_shape(got.shape), "no", "no", "shape"))
            result.message = f"sgd_step changed the shape of {k}: {_fmt_shape(got.shape)}"
            return
        diff = float(np.max(np.abs(got - want[k])))
        ok = close(got, want[k])
        result.rows.append(Row(f"step {k}", _fmt_shape(got.shape), "yes" if np.array_equal(got, want[k]) else "no",
                               "yes" if ok else "no", f"{diff:.1e}"))
        if not ok:
            found = diagnose(k, got - params[k], want[k] - params[k], n=n)
            if found and found[0] == "sign_error":
                result.mistake = "sign_error"
                result.message = (f"Mistake: {CATALOGUE['sign_error'].title}. sgd_step moves {k} along its "
                                  f"gradient (gradient ascent): the update is theta - lr * dtheta.")
            else:
                result.message = f"sgd_step's new {k} is wrong by up to {diff:.3g}; the update is theta - lr * dtheta"
            return
    before = _scalar_loss(ex, run_forward(ex, inputs), None)
    after = _scalar_loss(ex, run_forward(ex, {**inputs, **{k: np.asarray(new[k], np.float64) for k in keys}}), None)
    result.rows.append(Row("loss", "()", "-", "yes" if after < before else "no",
                           f"{before:.4f} -> {after:.4f} (lr {SGD_LR})"))
    if not after < before:  # pragma: no cover - follows from a right step
        result.message = "one SGD step did not lower the loss"
