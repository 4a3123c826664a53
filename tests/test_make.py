"""The Makefile keeps the README's promises: `make demo` installs the main job's needs and nothing
more, `make test` adds the test stack and runs the whole suite, a bare `make` lists the targets, and
`make clean` leaves the user's run folders alone.

Every check runs `make` on a copy of the Makefile and pyproject.toml in a temporary folder (a fresh
clone, as far as make can tell), mostly as a dry run (`make -n`): nothing is installed.
"""
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAKE = shutil.which("make")
pytestmark = pytest.mark.skipif(MAKE is None, reason="make is not installed")


@pytest.fixture
def clone(tmp_path):
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path


def _make(folder, *args):
    # not the flags of a `make test` this suite may be running under (-s, -j, -n would change output)
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    r = subprocess.run([MAKE, "--no-print-directory", *args], cwd=folder, capture_output=True,
                       text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    return r.stdout


def _installs(dry_run: str) -> tuple[set, list]:
    """The extras of the editable install and every pip install line of a dry run."""
    lines = [ln for ln in dry_run.splitlines() if "pip install" in ln and "--upgrade pip" not in ln]
    extras = set()
    for ln in lines:
        for group in re.findall(r"-e '?\.\[([^\]]*)\]", ln):
            extras |= {e.strip() for e in group.split(",")}
    return extras, lines


def test_demo_installs_only_the_main_jobs_needs(clone):
    out = _make(clone, "-n", "demo")
    extras, lines = _installs(out)
    assert lines, out
    assert extras == {"plot", "progress", "fast"}, out
    assert "torch" not in out and "pytest" not in out, out
    assert "mlpnumpy train" in out and "mlpnumpy demo" in out


def test_test_adds_the_test_stack_and_runs_the_whole_suite(clone):
    out = _make(clone, "-n", "test")
    extras, lines = _installs(out)
    assert extras == {"test", "progress", "fast", "sweep"}, out
    assert any("torch==2.13.0" in ln for ln in lines), out
    (pytest_line,) = [ln for ln in out.splitlines() if "-m pytest" in ln]
    # the whole suite: no selection, no deselection, no path narrowing it
    assert not re.search(r"\s(-k|-m|--ignore|--deselect)\b|\stests/", pytest_line.split("-m pytest")[1])


def test_extras_named_by_make_exist_in_pyproject(clone):
    tomllib = pytest.importorskip("tomllib")
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for target in ("demo", "test"):
        extras, _ = _installs(_make(clone, "-n", target))
        assert extras <= set(declared), extras - set(declared)
    assert any(r.startswith("numba") for r in declared["fast"])
    assert {"array-api-compat", "array-api-strict"} <= {re.split(r"[<>=\[ ]", r)[0] for r in declared["test"]}


def test_ci_runs_make_test():
    assert re.search(r"^make test\b", (ROOT / ".ci" / "run").read_text(), re.M)


def test_bare_make_lists_the_targets_and_installs_nothing(clone):
    out = _make(clone)
    for target in ("demo", "test", "bench", "clean", "clean-runs"):
        assert re.search(rf"^\s*make {target}\s", out, re.M), (target, out)
    assert "mlpnumpy[plot,progress,fast]" in out  # what `make demo` installs, as DEMO_EXTRAS says
    assert not (clone / ".venv").exists()


def test_clean_keeps_runs_and_clean_runs_says_it_deletes_them(clone):
    (clone / "runs" / "train").mkdir(parents=True)
    (clone / ".venv").mkdir()
    dry = _make(clone, "-n", "clean")
    assert not [ln for ln in dry.splitlines() if "rm " in ln and "runs" in ln], dry
    out = _make(clone, "clean")  # for real, inside the temporary copy
    assert not (clone / ".venv").exists()
    assert (clone / "runs" / "train").is_dir()
    assert "kept runs/" in out
    out = _make(clone, "clean-runs")
    assert not (clone / "runs").exists()
    assert "deleting runs/" in out


def test_readme_names_what_each_command_installs():
    makefile = (ROOT / "Makefile").read_text()
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## The two commands", 1)[1].split("\n## ", 1)[0]
    for var in ("DEMO_EXTRAS", "TEST_EXTRAS"):
        extras = re.search(rf"^{var} := (\S+)", makefile, re.M).group(1)
        assert f"mlpnumpy[{extras}]" in section, (var, extras)
    assert "torch 2.13.0" in section and "make clean-runs" in section
