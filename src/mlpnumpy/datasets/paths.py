"""Where MNIST-format files are looked for, and where downloads go.

Search order: the ``data_dir`` argument, ``$MLPNUMPY_DATA``, the user cache
(``$XDG_CACHE_HOME/mlpnumpy/<name>``, default ``~/.cache/mlpnumpy/<name>``), then system folders
such as ``/usr/share/datasets/<name>`` where Debian's ``fashion-mnist`` package installs.
"""
from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

from ..errors import InvalidArgumentError
from .registry import IDX_DATASETS, IdxDatasetSpec

__all__ = ["ENV_DATA", "ENV_VERIFY", "SYSTEM_DIRS", "search_dirs", "download_dirs", "find_files", "get_spec",
           "cache_dir", "verify_found", "file_sha256", "verify_file"]

ENV_DATA = "MLPNUMPY_DATA"
#: System-wide folders holding ``<name>/`` data sets, looked at last.
SYSTEM_DIRS: tuple[str, ...] = ("/usr/local/share/datasets", "/usr/share/datasets")


def get_spec(name: str) -> IdxDatasetSpec:
    """The registry entry of an MNIST-format data set, or an error naming the valid ones."""
    key = name.lower() if isinstance(name, str) else name
    if key not in IDX_DATASETS:
        raise InvalidArgumentError(f"name={name!r} is not an MNIST-format data set; expected one "
                                   f"of: {', '.join(IDX_DATASETS)}")
    return IDX_DATASETS[key]


def cache_dir(name: str) -> Path:
    """``$XDG_CACHE_HOME/mlpnumpy/<name>``, or ``~/.cache/mlpnumpy/<name>`` when it is unset."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "mlpnumpy" / name


def download_dirs(name: str, data_dir: str | os.PathLike | None = None) -> list[Path]:
    """Folders a download may go to, in order of preference.

    ``data_dir`` itself (when given), ``$MLPNUMPY_DATA/<name>``, then the user cache.
    """
    dirs = []
    if data_dir is not None:
        dirs.append(Path(data_dir).expanduser())
    env = os.environ.get(ENV_DATA)
    if env:
        dirs.append(Path(env).expanduser() / name)
    dirs.append(cache_dir(name))
    return dirs


def search_dirs(name: str, data_dir: str | os.PathLike | None = None, *,
                only_data_dir: bool = False) -> list[Path]:
    """Every folder searched for ``name``'s files, in order (duplicates removed).

    ``data_dir`` and ``$MLPNUMPY_DATA`` are tried both as the folder of the files and as a
    parent holding ``<name>/``. With ``only_data_dir``, only ``data_dir`` is (an explicit folder
    is never silently replaced by another one).
    """
    dirs: list[Path] = []
    if data_dir is not None:
        d = Path(data_dir).expanduser()
        dirs += [d, d / name]
    if only_data_dir:
        if data_dir is None:
            raise InvalidArgumentError("only_data_dir=True needs a data_dir")
        return dirs
    env = os.environ.get(ENV_DATA)
    if env:
        d = Path(env).expanduser()
        dirs += [d / name, d]
    dirs.append(cache_dir(name))
    dirs += [Path(s) / name for s in SYSTEM_DIRS]
    seen, unique = set(), []
    for d in dirs:
        if d not in seen:
            seen.add(d)
            unique.append(d)
    return unique


def _candidates(gz_name: str) -> list[str]:
    # Accept what people actually have on disk: the .gz as served, the gunzipped file, and the
    # "train-images.idx3-ubyte" spelling some unpackers produce.
    raw = gz_name[:-3] if gz_name.endswith(".gz") else gz_name
    dotted = raw.replace("-idx", ".idx", 1)
    return [gz_name, raw, dotted, dotted + ".gz"]


def find_files(name: str, data_dir: str | os.PathLike | None = None, *,
               only_data_dir: bool = False) -> dict[str, Path] | None:
    """Locate the four IDX files of an MNIST-format data set.

    Parameters
    ----------
    name : {"mnist", "fashion-mnist"}
    data_dir : str or path-like, optional
        Folder searched first (see :func:`search_dirs` for the full order).
    only_data_dir : bool
        Search ``data_dir`` (and ``data_dir/<name>``) only.

    Returns
    -------
    dict or None
        ``{"train_images": Path, "train_labels": ..., "test_images": ..., "test_labels": ...}``,
        all from the first folder that holds every one of them (gzip or not), else ``None``.
    """
    spec = get_spec(name)
    for folder in search_dirs(spec.name, data_dir, only_data_dir=only_data_dir):
        found = {}
        for f in spec.files:
            hit = next((folder / c for c in _candidates(f.filename) if (folder / c).is_file()), None)
            if hit is None:
                break
            found[f.role] = hit
        else:
            return found
    return None


# ------------------------------------------------------------------------------- verifying found files
#: Set to 0 to use MNIST-format files whose bytes are not the official ones (a private copy).
ENV_VERIFY = "MLPNUMPY_VERIFY_DATA"
_VERIFIED: dict[str, tuple] = {}  # this process's cache: path -> (size, mtime_ns, inode, sha256)


def _cached_sha256(path: Path) -> str:
    """The file's SHA-256, computed once per (path, size, mtime, inode) and remembered in the user
    cache (``verified.json``), so a 26 MB file is hashed on its first use only."""
    import json

    from ..io._atomic import atomic_write
    st = path.stat()
    key, stamp = str(path.resolve()), [st.st_size, st.st_mtime_ns, st.st_ino]
    hit = _VERIFIED.get(key)
    store = cache_dir("verified.json")
    if hit is None:
        try:
            hit = json.loads(store.read_text()).get(key)
        except (OSError, ValueError, AttributeError):
            hit = None
    if isinstance(hit, list) and len(hit) == 4 and hit[:3] == stamp and isinstance(hit[3], str):
        _VERIFIED[key] = hit
        return hit[3]
    digest = file_sha256(path)
    _VERIFIED[key] = [*stamp, digest]
    try:  # best effort: a read-only cache only costs a re-hash next time
        try:
            table = json.loads(store.read_text())
            table = table if isinstance(table, dict) else {}
        except (OSError, ValueError):
            table = {}
        table[key] = [*stamp, digest]
        store.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(store, "w") as fh:
            json.dump(table, fh)
    except OSError:
        pass
    return digest


def verify_found(name: str, found: dict[str, Path], *, checksums=None, verify: bool | None = None) -> None:
    """Check files found on disk against the SHA-256 sums of the official ones, before reading them.

    A ``.gz`` file must have the digest the registry holds for it (or one of its known repackagings;
    ``checksums`` replaces them, as for downloads). Gunzipped copies have no digest here: their IDX
    headers are bounded by the official shapes instead (see :func:`~mlpnumpy.datasets.idx.read_idx`).
    ``verify=False`` (or ``$MLPNUMPY_VERIFY_DATA=0``) accepts any bytes, for a private copy.

    Raises
    ------
    FileFormatError
        A file's digest is not the official one; the message says how to proceed.
    """
    from ..errors import FileFormatError
    if verify is None:
        verify = os.environ.get(ENV_VERIFY, "1").strip().lower() not in ("0", "false", "no", "off")
    if not verify:
        return
    spec = get_spec(name)
    for f in spec.files:
        path = found.get(f.role)
        if path is None or not str(path).endswith(".gz"):
            continue
        if checksums is not None:
            accepted = {str(checksums.get(f.filename, "")).lower()}
        else:
            accepted = {f.sha256, *f.also_accept}
        digest = _cached_sha256(Path(path))
        if digest not in accepted:
            raise FileFormatError(
                f"{path}: its SHA-256 is {digest}, not that of the official {spec.name} {f.filename} "
                f"({f.sha256 if checksums is None else checksums.get(f.filename)}); the file is damaged, "
                "truncated or another data set. Delete it to download it again, or, for a private copy, "
                f"pass checksums= with its digests or set ${ENV_VERIFY}=0")


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify_file(path: str | os.PathLike, sha256: str | Sequence[str]) -> bool:
    """True when the file's SHA-256 is ``sha256`` (or one of them, when a sequence is given)."""
    accepted = {sha256} if isinstance(sha256, str) else set(sha256)
    return file_sha256(path) in {s.lower() for s in accepted}
