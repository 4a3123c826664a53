"""Where MNIST-format files are looked for, and where downloads go.

Search order: the ``data_dir`` argument, ``$MLPNUMPY_DATA``, the user cache
(``$XDG_CACHE_HOME/mlpnumpy/<name>``, default ``~/.cache/mlpnumpy/<name>``), then system folders
such as ``/usr/share/datasets/<name>`` where Debian's ``fashion-mnist`` package installs.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import InvalidArgumentError
from .registry import IDX_DATASETS, IdxDatasetSpec

__all__ = ["ENV_DATA", "SYSTEM_DIRS", "search_dirs", "download_dirs", "find_files", "get_spec",
           "cache_dir"]

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
