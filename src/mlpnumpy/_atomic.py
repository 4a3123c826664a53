"""Atomic file writing: a reader sees either the old file or the complete new one, never half.

Data goes to a temporary file in the destination folder (same file system, so the final
``os.replace`` is an atomic rename), is flushed and fsync'ed, then renamed over the target.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from typing import IO, Any

from .errors import InvalidArgumentError

__all__ = ["atomic_write", "atomic_write_bytes"]

_WRITE_MODES = ("wb", "w", "xb", "x")


def _current_umask() -> int:
    # os.umask can only be read by setting it; done once at import so that concurrent threads
    # creating files later never observe the temporary 0 mask.
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def _fsync_dir(directory: str) -> None:
    # Makes the rename itself durable on POSIX; not possible (nor needed) on Windows.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb", *,
                 encoding: str | None = None) -> Iterator[IO[Any]]:
    """Open a temporary file for writing that replaces ``path`` only if the block succeeds.

    Parameters
    ----------
    path : str or path-like
        Final file name. Its folder must exist.
    mode : {"wb", "w"}
        Binary or text writing. ``"xb"``/``"x"`` also fail if ``path`` already exists.
    encoding : str, optional
        Text encoding for ``mode="w"`` (default UTF-8).

    Yields
    ------
    file object
        Write to it; on normal exit it is flushed, fsync'ed and renamed to ``path``. On an
        exception the temporary file is deleted and ``path`` is left untouched.
    """
    if mode not in _WRITE_MODES:
        raise InvalidArgumentError(f"mode={mode!r} is not one of: {', '.join(_WRITE_MODES)}")
    final = os.path.abspath(os.fspath(path))
    directory, base = os.path.split(final)
    exclusive = mode.startswith("x")
    if exclusive and os.path.exists(final):
        raise FileExistsError(f"{final} already exists (mode={mode!r})")
    fd, tmp = tempfile.mkstemp(prefix=f".{base}.", suffix=".tmp", dir=directory)
    try:
        # mkstemp creates 0600 files; give the result the permissions a plain open() would.
        os.chmod(tmp, 0o666 & ~_UMASK)
        text = "b" not in mode
        with os.fdopen(fd, "w" if text else "wb",
                       encoding=(encoding or "utf-8") if text else None) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        if exclusive and os.path.exists(final):
            raise FileExistsError(f"{final} appeared while it was being written (mode={mode!r})")
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(directory)


def atomic_write_bytes(path: str | os.PathLike, data: bytes | bytearray | memoryview) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`)."""
    with atomic_write(path, "wb") as fh:
        fh.write(data)
