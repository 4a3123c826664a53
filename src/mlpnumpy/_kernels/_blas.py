"""General matrix multiply with accumulation, ``C <- alpha * op(A) @ op(B) + beta * C``, through the
BLAS that NumPy itself ships, reached with ctypes (no dependency beyond NumPy).

NumPy's ``matmul`` always overwrites its output, so an SGD step ``W -= lr * x.T @ dz`` costs a
matrix multiply *and* a pass over ``W``; BLAS's ``gemm`` does both in one call (``beta = 1``). When
the library or its symbol cannot be found, :data:`available` is False and callers use the plain
NumPy expression instead, which :mod:`tests.test_blas` pins this path to.
"""
from __future__ import annotations

import ctypes
import glob
import os

import numpy as np

__all__ = ["available", "gemm", "address"]

_RowMajor, _NoTrans, _Trans = 101, 111, 112
_funcs: dict = {}


def _find_library():
    """Locate NumPy's bundled OpenBLAS and its CBLAS gemm symbols (ILP64 or LP64 naming)."""
    if os.environ.get("MLPNUMPY_NO_BLAS_GEMM"):
        return None
    base = os.path.dirname(np.__file__)
    candidates = glob.glob(os.path.join(base + ".libs", "*openblas*")) + \
        glob.glob(os.path.join(base, ".dylibs", "*openblas*")) + glob.glob(os.path.join(base, "*.libs", "*openblas*"))
    for path in candidates:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for sname, dname, int_t in [("scipy_cblas_sgemm64_", "scipy_cblas_dgemm64_", ctypes.c_int64),
                                    ("cblas_sgemm64_", "cblas_dgemm64_", ctypes.c_int64),
                                    ("scipy_cblas_sgemm", "scipy_cblas_dgemm", ctypes.c_int),
                                    ("cblas_sgemm", "cblas_dgemm", ctypes.c_int)]:
            try:
                s, d = getattr(lib, sname), getattr(lib, dname)
            except AttributeError:
                continue
            for f, real in ((s, ctypes.c_float), (d, ctypes.c_double)):
                f.restype = None
                f.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, int_t, int_t, int_t, real,
                              ctypes.c_void_p, int_t, ctypes.c_void_p, int_t, real, ctypes.c_void_p, int_t]
            return {np.dtype(np.float32): s, np.dtype(np.float64): d, "ilp64": int_t is ctypes.c_int64}
    return None


_funcs = _find_library() or {}
#: Whether the accumulating gemm is usable in this process.
available = bool(_funcs)


def address(dtype) -> tuple[int, bool]:
    """``(address of cblas_?gemm for dtype, whether it takes 64-bit sizes)``, for compiled code that
    calls it (:mod:`.numba_kernels`' whole-step kernels); only when :data:`available`."""
    f = _funcs[np.dtype(dtype)]
    return ctypes.cast(f, ctypes.c_void_p).value, _funcs["ilp64"]


def _operand(M: np.ndarray):
    """A 2-D operand as (pointer, transposed?, leading dimension); None when its layout won't do."""
    if M.flags.c_contiguous:
        return M.ctypes.data, False, M.shape[1]
    if M.flags.f_contiguous:  # e.g. x.T of a C-contiguous x: BLAS reads it transposed, no copy
        return M.ctypes.data, True, M.shape[0]
    return None


def gemm(alpha: float, A: np.ndarray, B: np.ndarray, beta: float, C: np.ndarray) -> bool:
    """``C <- alpha * A @ B + beta * C`` in place; returns False (doing nothing) when not possible.

    ``A`` (m, k), ``B`` (k, n) and ``C`` (m, n) must share a float dtype; ``C`` must be C-contiguous;
    ``A`` and ``B`` may be C- or Fortran-contiguous (a transposed view is free).
    """
    f = _funcs.get(C.dtype)
    if f is None or A.dtype != C.dtype or B.dtype != C.dtype or not C.flags.c_contiguous \
            or not C.flags.writeable:
        return False
    m, k = A.shape
    n = B.shape[1]
    if B.shape[0] != k or C.shape != (m, n) or m == 0 or n == 0 or k == 0:
        return False
    a, b = _operand(A), _operand(B)
    if a is None or b is None:
        return False
    f(_RowMajor, _Trans if a[1] else _NoTrans, _Trans if b[1] else _NoTrans, m, n, k, alpha,
      a[0], max(a[2], 1), b[0], max(b[2], 1), beta, C.ctypes.data, max(n, 1))
    return True
