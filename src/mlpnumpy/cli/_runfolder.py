"""A run folder belongs to one run: which files ``mlpnumpy train`` writes there, the lock that keeps
two processes from writing one folder at once, and the checks before a run takes a folder.

The lock is the file ``.lock`` holding the owner's pid, locked with the operating system's advisory
file lock (``fcntl.flock``; ``msvcrt.locking`` on Windows). The system drops that lock when its
process dies however it dies, so a lock file left by a dead process is simply taken over.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

from ..errors import InvalidArgumentError

__all__ = ["RUN_FILES", "LOCK_NAME", "RunFolderBusy", "lock", "check_out", "clear", "finished_metrics"]

LOCK_NAME = ".lock"
#: Every file ``mlpnumpy train`` may write in its run folder (and any its metrics.json lists).
RUN_FILES = ("model.npz", "checkpoint.npz", "metrics.json", "history.csv", "curves.png", "weights.png",
             "confusion.png", "misclassified.png", "mlp_result.png", "internals.png", "best_weights.npz",
             "boundary.png", "boundary_epochs.png")
# what a write cut short by a kill leaves: _atomic's temporary ".<name>.<random>.tmp"
_TEMP = re.compile(r"^\.(?P<name>.+)\.[^.]+\.tmp$")


class RunFolderBusy(InvalidArgumentError):
    """Another live process holds the folder's lock."""


def _listed(folder: Path) -> set[str]:
    """The plain file names the folder's metrics.json lists under "files" (none if it has none)."""
    try:
        files = json.loads((folder / "metrics.json").read_text()).get("files")
    except (OSError, ValueError, AttributeError):
        return set()
    if not isinstance(files, dict):
        return set()
    return {v for v in files.values() if isinstance(v, str) and v == os.path.basename(v) and v[:1] not in ("", ".")}


def _is_run_file(name: str, known: set[str]) -> bool:
    if name in known or name == LOCK_NAME:
        return True
    m = _TEMP.match(name)
    return bool(m) and m.group("name") in known


def _listing(folder: Path) -> tuple[list[str], list[str]]:
    """(run files, other entries) in ``folder``, each sorted."""
    known = set(RUN_FILES) | _listed(folder)
    mine, other = [], []
    for entry in sorted(os.listdir(folder)):
        if _is_run_file(entry, known) and (folder / entry).is_file():
            mine.append(entry)
        else:
            other.append(entry + ("/" if (folder / entry).is_dir() else ""))
    return mine, other


def _names(entries: list[str], limit: int = 4) -> str:
    more = f" and {len(entries) - limit} more" if len(entries) > limit else ""
    return ", ".join(entries[:limit]) + more


def check_out(out: Path, *, overwrite: bool, resume_here: bool, ours: bool = False) -> None:
    """Refuse ``out`` unless it is new, empty, the run being resumed, or (with ``overwrite``) a run
    folder holding nothing but a run's files; or while another process holds its lock (``ours``:
    this process holds it, under :func:`lock`).

    Raises
    ------
    InvalidArgumentError
        Naming the folder, what it holds and the options that would accept it.
    """
    if not out.exists():
        return
    if not out.is_dir():
        raise InvalidArgumentError(f"--out {str(out)!r} is a file; expected a folder for the run "
                                   "(new, empty, or a run folder with --resume/--overwrite)")
    if not ours and _held(out / LOCK_NAME):
        raise _busy(out)
    if resume_here:
        return
    mine, other = _listing(out)
    runs = [m for m in mine if m != LOCK_NAME]  # a lock file alone is a dead owner's: the folder is empty
    if other:
        what = "a run folder with other files in it" if runs else "not empty and not a run folder"
        raise InvalidArgumentError(
            f"--out {str(out)!r} is {what} ({_names(other)}); mlpnumpy train writes only into a new or "
            f"empty folder{' and --overwrite clears only run folders' if overwrite else ''}: choose another "
            "--out")
    if runs and not overwrite:
        raise InvalidArgumentError(
            f"--out {str(out)!r} holds another run ({_names(runs)}); continue it with --resume "
            f"{out}, replace it with --overwrite, or choose another --out")


def clear(out: Path) -> list[str]:
    """Delete a run's files from ``out`` (checked by :func:`check_out` first); returns their names."""
    mine, other = _listing(out)
    if other:  # checked before; the folder changed since
        raise InvalidArgumentError(f"--overwrite: {str(out)!r} now holds {_names(other)}, which mlpnumpy "
                                   "train did not write; nothing was deleted")
    removed = []
    for name in mine:
        if name == LOCK_NAME:
            continue
        with contextlib.suppress(FileNotFoundError):
            os.unlink(out / name)
            removed.append(name)
    return removed


def finished_metrics(folder: Path, epochs_trained: int) -> dict | None:
    """``folder``'s metrics.json if it records a run that completed (not interrupted) at
    ``epochs_trained`` epochs, else None. It is written last, so the rest of the folder is whole too."""
    try:
        m = json.loads((folder / "metrics.json").read_text())
    except (OSError, ValueError):
        return None
    if isinstance(m, dict) and m.get("interrupted") is False and m.get("epochs_trained") == epochs_trained:
        return m
    return None


def _owner(path: Path) -> str:
    try:
        pid = path.read_text().strip()
    except OSError:
        pid = ""
    return f"pid {pid}" if pid.isdigit() else "another process"


def _busy(out: Path) -> RunFolderBusy:
    return RunFolderBusy(f"--out {str(out)!r} is being written by another mlpnumpy train "
                         f"({_owner(out / LOCK_NAME)}); wait for it to finish or choose another --out")


def _held(path: Path) -> bool:
    """Whether a live process holds the lock file ``path`` (taken and let go at once to find out;
    on Windows, where a lock must be let go before closing, :func:`lock` alone decides)."""
    try:
        import fcntl  # noqa: F401
    except ImportError:
        return False
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:  # no lock file: nobody holds it
        return False
    try:
        return not _try_lock(fd)
    finally:
        os.close(fd)  # closing lets go of the lock if it was taken here


def _try_lock(fd: int) -> bool:
    """Take the exclusive lock on ``fd`` without waiting; False when another process holds it."""
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True


@contextlib.contextmanager
def lock(out: Path) -> Iterator[None]:
    """Hold ``out/.lock`` (with this process's pid in it) for the block.

    Raises
    ------
    RunFolderBusy
        When a live process holds it, naming that process's pid.
    """
    path = out / LOCK_NAME
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        if not _try_lock(fd):
            os.close(fd)
            raise _busy(out)
        try:  # the owner before us may have deleted the file we opened: lock the one at the path
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        # Delete, then unlock: a process that opened the old file sees it is gone and retries.
        with contextlib.suppress(OSError):
            os.unlink(path)
        os.close(fd)
