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

from ..errors import InvalidArgumentError

__all__ = ["atomic_write", "atomic_write_bytes", "check_target"]

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


def _name_max(directory: str) -> int:
    try:
        return os.pathconf(directory, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):  # Windows, or a file system that does not say
        return 255


# mkstemp adds 8 random characters; with the leading ".", the "." after the stem and ".tmp": 14.
_TEMP_EXTRA = 14


def _temp_stem(base: str, directory: str) -> str:
    """``base`` cut so that the temporary name fits the file system's name limit: a legal 249-byte
    file name must not fail because its temporary twin is 14 bytes longer."""
    budget = _name_max(directory) - _TEMP_EXTRA
    raw = os.fsencode(base)
    return base if len(raw) <= budget else os.fsdecode(raw[:max(budget, 1)])


def check_target(path: str | os.PathLike) -> tuple[str, str, str]:
    """``(absolute path, folder, file name)`` of a file about to be written, or a clear error.

    Refused: an empty path, a path ending in a separator (``save("newdir/")`` would otherwise
    write a file called ``newdir``), an existing folder, a file name longer than the file
    system allows, and a folder that does not exist.
    """
    try:
        raw = os.fspath(path)
    except TypeError:
        raise InvalidArgumentError(f"path={path!r} is not a file path; expected a str or path-like") from None
    text = os.fsdecode(raw)
    if not text:
        raise InvalidArgumentError("path='' is empty; expected a file name such as 'model.npz'")
    if text.endswith(os.sep) or (os.altsep and text.endswith(os.altsep)):
        raise InvalidArgumentError(f"path={text!r} ends with {text[-1]!r}, so it names a folder; expected a file "
                                   f"name such as {os.path.join(text, 'model.npz')!r}")
    final = os.path.abspath(text)
    directory, base = os.path.split(final)
    if os.path.isdir(final):
        raise InvalidArgumentError(f"path={text!r} is an existing folder; expected a file name such as "
                                   f"{os.path.join(text, 'model.npz')!r}")
    limit = _name_max(directory) if os.path.isdir(directory) else 255
    if len(os.fsencode(base)) > limit:
        raise InvalidArgumentError(f"path={text!r}: the file name is {len(os.fsencode(base))} bytes; this file "
                                   f"system allows at most {limit}")
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"cannot write {final}: the folder {directory} does not exist; create it first")
    return final, directory, base


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
    final, directory, base = check_target(path)
    exclusive = mode.startswith("x")
    if exclusive and os.path.exists(final):
        raise FileExistsError(f"{final} already exists (mode={mode!r})")
    fd, tmp = tempfile.mkstemp(prefix=f".{_temp_stem(base, directory)}.", suffix=".tmp", dir=directory)
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
