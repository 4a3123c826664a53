"""Download MNIST-format files from their mirrors, verified by SHA-256, written atomically.

Each file is streamed into a temporary file next to its destination and hashed on the way; it
gets its real name only once size and digest match, so an interrupted or corrupted download
never leaves a file that looks complete. Mirrors are tried in order.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..io._atomic import atomic_write
from ..errors import DatasetNotFoundError, FileFormatError, InvalidArgumentError
from .paths import ENV_DATA, download_dirs, file_sha256, find_files, get_spec, search_dirs, verify_file
from .registry import IdxDatasetSpec

__all__ = ["ENV_MIRROR", "DEFAULT_TIMEOUT", "download", "download_file", "fetch", "file_sha256",
           "verify_file", "mirrors_for", "missing_files_help"]

#: Environment variable replacing the mirror list: base URLs separated by spaces or commas.
ENV_MIRROR = "MLPNUMPY_MIRROR"
#: Seconds to wait for a connection or for each read before giving up on a mirror.
DEFAULT_TIMEOUT = 30.0
_CHUNK = 1 << 16
# Without a known size, a response larger than this is not one of our files.
_MAX_UNKNOWN_SIZE = 1 << 30
_NETWORK_ERRORS = (urllib.error.URLError, http.client.HTTPException, TimeoutError, ConnectionError)


class _IntegrityError(Exception):
    """The bytes arrived but are not the expected file (digest, size or length mismatch)."""


def mirrors_for(spec: IdxDatasetSpec, mirrors: Sequence[str] | None = None) -> list[str]:
    """Base URLs to try, in order: ``mirrors`` if given, else ``$MLPNUMPY_MIRROR``, else the registry's."""
    if mirrors is None:
        env = os.environ.get(ENV_MIRROR, "").replace(",", " ").split()
        mirrors = env or spec.mirrors
    if isinstance(mirrors, str):
        mirrors = [mirrors]
    out = [m if m.endswith("/") else m + "/" for m in mirrors]
    if not out:
        raise InvalidArgumentError("mirrors=[] is empty; expected at least one base URL")
    return out


class _Progress:
    """A progress display: tqdm when available, else one line rewritten on stderr."""

    def __init__(self, total: int | None, desc: str, enabled: bool | None):
        if enabled is None:  # only decorate interactive sessions; logs stay clean
            enabled = hasattr(sys.stderr, "isatty") and sys.stderr.isatty()
        self._bar, self._line = None, None
        self.total, self.desc, self.done, self._shown = total, desc, 0, -1
        if not enabled:
            return
        try:
            from tqdm.auto import tqdm
            self._bar = tqdm(total=total, desc=desc, unit="B", unit_scale=True, leave=False)
        except ImportError:
            self._line = sys.stderr

    def update(self, n: int) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
        elif self._line is not None and self.total:
            pct = 100 * self.done // self.total
            if pct // 10 != self._shown:  # redraw every 10 %, not every chunk
                self._shown = pct // 10
                self._line.write(f"\r{self.desc}: {pct:3d}%")
                self._line.flush()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        elif self._line is not None:
            self._line.write("\n")
            self._line.flush()


def _fetch_url(url: str, dest: Path, sha256: str | None, size: int | None, timeout: float,
               progress: bool | None) -> None:
    request = urllib.request.Request(url, headers={"User-Agent": "mlpnumpy"})
    with urllib.request.urlopen(request, timeout=timeout) as resp:
        header = resp.headers.get("Content-Length")
        length = int(header) if header and header.isdigit() else None
        limit = size if size is not None else _MAX_UNKNOWN_SIZE
        if length is not None and length > limit:
            raise _IntegrityError(f"server announces {length} bytes, expected at most {limit}")
        bar = _Progress(length or size, dest.name, progress)
        digest, received = hashlib.sha256(), 0
        try:
            # Raising inside atomic_write deletes the temporary file and leaves dest untouched.
            with atomic_write(dest, "wb") as fh:
                while True:
                    try:
                        chunk = resp.read(_CHUNK)
                    except http.client.IncompleteRead as exc:  # some versions raise, others return b""
                        raise _IntegrityError(f"truncated: connection closed early ({exc!r})") from None
                    if not chunk:
                        break
                    received += len(chunk)
                    if received > limit:
                        raise _IntegrityError(f"more than the expected {limit} bytes arrived")
                    digest.update(chunk)
                    fh.write(chunk)
                    bar.update(len(chunk))
                # http.client stops quietly when the connection closes early: check ourselves.
                if length is not None and received != length:
                    raise _IntegrityError(f"truncated: got {received} of {length} bytes")
                if size is not None and received != size:
                    raise _IntegrityError(f"got {received} bytes, the file has {size}")
                if sha256 is not None and digest.hexdigest() != sha256.lower():
                    raise _IntegrityError(f"SHA-256 mismatch: got {digest.hexdigest()}, "
                                          f"expected {sha256.lower()}")
        finally:
            bar.close()


def download_file(urls: Sequence[str], dest: str | os.PathLike, *, sha256: str | None,
                  size: int | None = None, timeout: float = DEFAULT_TIMEOUT,
                  progress: bool | None = None) -> Path:
    """Download the first of ``urls`` that works into ``dest``, verified.

    Parameters
    ----------
    urls : sequence of str
        Full URLs of the same file, tried in order.
    dest : str or path-like
        Final path; its folder must exist. Only a verified file is ever renamed to it.
    sha256 : str or None
        Expected hex digest. ``None`` skips the check (only for files without a known digest).
    size : int, optional
        Expected size in bytes; also caps how much is read.
    timeout : float
        Seconds allowed for the connection and for each read.
    progress : bool, optional
        Show progress (tqdm if installed). Default: only when stderr is a terminal.

    Returns
    -------
    Path
        ``dest``.

    Raises
    ------
    FileFormatError
        Every mirror failed and at least one served wrong bytes (digest or size mismatch,
        truncation). No partial file is left behind.
    DatasetNotFoundError
        Every mirror failed on the network (offline, timeout, HTTP error such as 404).
    """
    dest = Path(dest)
    failures: list[str] = []
    integrity = False
    for url in urls:
        try:
            _fetch_url(url, dest, sha256, size, timeout, progress)
            return dest
        except _IntegrityError as exc:
            integrity = True
            failures.append(f"  {url}: {exc}")
        except _NETWORK_ERRORS as exc:
            reason = getattr(exc, "reason", None) or exc
            failures.append(f"  {url}: {type(exc).__name__}: {reason}")
    tried = "\n".join(failures)
    if integrity:
        raise FileFormatError(f"could not download a valid {dest.name}; every mirror failed and "
                              f"at least one served corrupt data:\n{tried}")
    raise DatasetNotFoundError(f"could not download {dest.name}; every mirror failed:\n{tried}")


def missing_files_help(name: str, data_dir: str | os.PathLike | None = None, *,
                       only_data_dir: bool = False) -> str:
    """A message listing the files a data set needs and every folder where they may be put."""
    spec = get_spec(name)
    files = ", ".join(f.filename for f in spec.files)
    folders = "\n".join(f"  {d}" for d in search_dirs(spec.name, data_dir, only_data_dir=only_data_dir))
    if only_data_dir:
        return (f"The {spec.name} files ({files}; gzip-compressed or not) were not found. Put them in "
                f"one of these folders:\n{folders}")
    return (f"The {spec.name} files ({files}; gzip-compressed or not) were not found. Put them in "
            f"any of these folders (searched in this order), or set ${ENV_DATA} to a folder "
            f"holding {spec.name}/:\n{folders}")


def _first_writable(dirs: Sequence[Path]) -> Path | None:
    for d in dirs:
        try:
            d.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        if os.access(d, os.W_OK | os.X_OK):
            return d
    return None


def download(name: str, data_dir: str | os.PathLike | None = None, *,
             mirrors: Sequence[str] | None = None, checksums: Mapping[str, str] | None = None,
             timeout: float = DEFAULT_TIMEOUT, progress: bool | None = None,
             only_data_dir: bool = False) -> dict[str, Path]:
    """Download the four IDX files of ``name`` into the first writable download folder.

    Parameters
    ----------
    name : {"mnist", "fashion-mnist"}
    data_dir : str or path-like, optional
        Preferred destination; then ``$MLPNUMPY_DATA/<name>``, then the user cache.
    mirrors : sequence of str, optional
        Base URLs replacing the registry's (and ``$MLPNUMPY_MIRROR``).
    checksums : mapping, optional
        ``{filename: sha256}`` replacing the registry's digests (and disabling its size check);
        meant for private mirrors and tests.
    timeout, progress
        As in :func:`download_file`.
    only_data_dir : bool
        Download into ``data_dir`` or not at all.

    Returns
    -------
    dict
        ``{"train_images": Path, "train_labels": ..., "test_images": ..., "test_labels": ...}``.

    Raises
    ------
    DatasetNotFoundError
        Offline, or no writable folder; the message says where the files can be put by hand.
    FileFormatError
        A mirror served corrupt data and no other mirror served good data.
    """
    spec = get_spec(name)
    urls = mirrors_for(spec, mirrors)
    dirs = download_dirs(spec.name, data_dir)
    target = _first_writable(dirs[:1] if only_data_dir else dirs)
    if target is None:
        raise DatasetNotFoundError("no writable folder to download into. "
                                   + missing_files_help(spec.name, data_dir, only_data_dir=only_data_dir))
    paths = {}
    for f in spec.files:
        expected = f.sha256 if checksums is None else checksums.get(f.filename)
        if checksums is not None and expected is None:
            raise InvalidArgumentError(f"checksums has no entry for {f.filename!r}; expected a "
                                       f"digest for each of: {', '.join(x.filename for x in spec.files)}")
        dest = target / f.filename
        if not (dest.is_file() and verify_file(dest, expected)):
            try:
                download_file([u + f.filename for u in urls], dest, sha256=expected,
                              size=f.size if checksums is None else None, timeout=timeout,
                              progress=progress)
            except DatasetNotFoundError as exc:
                raise DatasetNotFoundError(
                    f"{exc}\n{missing_files_help(spec.name, data_dir, only_data_dir=only_data_dir)}") from None
        paths[f.role] = dest
    return paths


_download_all = download  # fetch's `download` flag shadows the function inside it


def fetch(name: str, data_dir: str | os.PathLike | None = None, *, download: bool = True,
          only_data_dir: bool = False, **download_options) -> dict[str, Path]:
    """Paths of ``name``'s four files: found on disk (see :func:`find_files`) or downloaded.

    Parameters
    ----------
    name : {"mnist", "fashion-mnist"}
    data_dir : str or path-like, optional
        Searched first, and the preferred download folder.
    download : bool
        Download missing files; when False a missing data set raises at once.
    only_data_dir : bool
        Look in ``data_dir`` only and download there (the command line's ``--data-dir``).
    **download_options
        ``mirrors``, ``checksums``, ``timeout``, ``progress``: see :func:`download`.

    Raises
    ------
    DatasetNotFoundError
        Not on disk and not downloadable; the message lists the files and the folders searched.
    """
    found = find_files(name, data_dir, only_data_dir=only_data_dir)
    if found is not None:
        return found
    if not download:
        raise DatasetNotFoundError(missing_files_help(name, data_dir, only_data_dir=only_data_dir)
                                   + "\n(download=False, so nothing was downloaded)")
    return _download_all(name, data_dir, only_data_dir=only_data_dir, **download_options)
