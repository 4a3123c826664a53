"""The fast path: every speed trick of mlpnumpy, in this one private package.

The reference path (:mod:`mlpnumpy.nn.layers`, :mod:`~mlpnumpy.nn.activations`, :mod:`~mlpnumpy.nn.losses`,
:mod:`~mlpnumpy.optim.optimizers`) is the maths as written; this package trains the same networks faster on
NumPy arrays on the CPU: fused element-wise kernels (compiled with numba when it is installed, the
``fast`` extra; NumPy versions otherwise), an SGD update folded into the weight-gradient matrix product
(one BLAS gemm), and a training step that reuses its buffers. ``tests/test_paths.py`` pins every piece
to the reference.

One switch picks the path: ``fit(..., path=)`` / ``MLP(..., path=)``, else the environment variable
``MLPNUMPY_PATH``; each is ``"reference"``, ``"fast"`` or ``"auto"`` (the default: fast for NumPy arrays).
"""
from __future__ import annotations

import importlib.util
import os

import numpy as np

from ..errors import InvalidArgumentError, check_choice

__all__ = ["PATHS", "resolve_path", "kernels", "describe"]

PATHS = ("reference", "fast", "auto")
_ENV = "MLPNUMPY_PATH"
_kernels = None


def resolve_path(path: str | None = None, *arrays) -> str:
    """``"reference"`` or ``"fast"`` for ``path`` (None: ``$MLPNUMPY_PATH``, else ``"auto"``).

    ``"auto"`` is the fast path when every array given is a NumPy array (the fast path is NumPy's,
    on the CPU), the reference path otherwise.
    """
    if path is None:
        env = os.environ.get(_ENV, "").strip()
        if env and env.lower() not in PATHS:
            raise InvalidArgumentError(f"{_ENV}={env!r} is not one of: {', '.join(PATHS)}; unset it or "
                                       "pick one")
        path = env.lower() or "auto"
    path = check_choice("path", path, PATHS)
    numpy_only = all(isinstance(a, np.ndarray) for a in arrays)
    if path == "auto":
        return "fast" if numpy_only else "reference"
    if path == "fast" and not numpy_only:
        from .._array_api import describe
        other = next(a for a in arrays if not isinstance(a, np.ndarray))
        raise InvalidArgumentError(f"path='fast' runs on NumPy arrays on the CPU only; the data is a "
                                   f"{describe(other)} array: use path='reference' or 'auto' (which picks it), "
                                   f"or unset {_ENV}")
    return path


def numba_wanted() -> bool:
    """Whether the numba kernels would be used: numba installed and ``MLPNUMPY_NUMBA`` not ``0``."""
    if os.environ.get("MLPNUMPY_NUMBA", "1").strip() == "0":
        return False
    return importlib.util.find_spec("numba") is not None


def kernels():
    """The kernel module in use: :mod:`.numba_kernels`, or :mod:`.numpy_kernels` without numba.

    Imported on first use, so that commands which never train do not pay numba's import.
    """
    global _kernels
    if _kernels is None:
        if numba_wanted():
            try:
                from . import numba_kernels as k
            except Exception:  # noqa: BLE001 - a broken numba install must not stop training
                from . import numpy_kernels as k
        else:
            from . import numpy_kernels as k
        _kernels = k
    return _kernels


def describe() -> str:
    """The line ``mlpnumpy info`` prints: the path ``auto`` takes for NumPy arrays and the kernels in
    use (found without importing numba)."""
    from . import _blas
    env = os.environ.get(_ENV)
    try:
        path = resolve_path(None, np.empty(0))
    except InvalidArgumentError as exc:
        path = f"invalid: {exc}"
    where = f"{_ENV}={env}" if env else f"{_ENV} unset: auto"
    if numba_wanted():
        from importlib.metadata import version
        kernels = (f"numba {version('numba')} (one pass each, compiled once and cached: bias and activation, "
                   "softmax cross-entropy, batch norm, dropout, each optimizer's update, a standardised batch's "
                   "gather; a plain dense network's whole step in two compiled calls, and runs of up to 64 steps "
                   "in one when nothing happens between batches)")
    elif os.environ.get("MLPNUMPY_NUMBA", "1").strip() == "0":
        kernels = "NumPy (MLPNUMPY_NUMBA=0)"
    else:
        kernels = "NumPy (pip install 'mlpnumpy[fast]' adds numba's one-pass kernels)"
    gemm = "SGD update folded into BLAS gemm" if _blas.available else "no BLAS gemm found (plain SGD update)"
    return f"training path: {path} ({where}); fast-path kernels: {kernels}; {gemm}"
