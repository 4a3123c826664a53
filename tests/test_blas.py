"""The fast path's accumulating BLAS gemm (SGD's update folded into the weight-gradient product)
pinned to the plain NumPy expressions it replaces."""
import numpy as np
import pytest

from mlpnumpy import MLP
from mlpnumpy._kernels import _blas, step as fast_step
from mlpnumpy.optim.optimizers import SGD

needs_blas = pytest.mark.skipif(not _blas.available, reason="NumPy's BLAS gemm symbol not found")


@needs_blas
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True), (True, True)])
def test_gemm_matches_numpy(dtype, ta, tb, rng):
    A = rng.standard_normal((7, 5) if not ta else (5, 7)).astype(dtype)
    B = rng.standard_normal((5, 3) if not tb else (3, 5)).astype(dtype)
    A, B = (A.T if ta else A), (B.T if tb else B)
    C = rng.standard_normal((7, 3)).astype(dtype)
    expected = -0.3 * (A @ B) + 0.7 * C
    assert _blas.gemm(-0.3, A, B, 0.7, C)
    np.testing.assert_allclose(C, expected, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-6)


def test_gemm_declines_what_it_cannot_do(rng):
    A = rng.standard_normal((4, 4))
    assert not _blas.gemm(1.0, A[:, ::2], A[::2], 0.0, np.zeros((4, 4)))  # strided operands
    assert not _blas.gemm(1.0, A, A.astype(np.float32), 0.0, np.zeros((4, 4)))  # mixed dtypes


@needs_blas
@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-11), (np.float32, 2e-5)])
@pytest.mark.parametrize("opt", [lambda: SGD(0.1), lambda: SGD(0.1, weight_decay=0.01),
                                 lambda: SGD(0.05, momentum=0.9), lambda: SGD(0.05, momentum=0.9, dampening=0.2)])
def test_fused_sgd_equals_plain_sgd(dtype, rtol, opt, rng, monkeypatch):
    X, y = rng.standard_normal((200, 10)), rng.integers(0, 4, 200)
    monkeypatch.setattr(fast_step, "FUSED_FROM", 0)  # these small layers take the fused path too
    monkeypatch.setattr(fast_step, "WHOLE_STEP", False)  # the Python-side fold (tests/test_kernels_whole.py: the compiled one)
    calls = []
    real_gemm = _blas.gemm
    monkeypatch.setattr(_blas, "gemm", lambda *a: calls.append(1) or real_gemm(*a))

    def train():
        m = MLP([10, 16, 8, 4], seed=3, dtype=dtype)
        m.fit(X, y, epochs=3, batch_size=32, optimizer=opt(), verbose=False, path="fast")
        return m.get_weights()

    fused = train()
    assert calls  # the fused path ran
    monkeypatch.setattr(_blas, "available", False)
    plain = train()
    for f, p in zip(fused, plain):
        np.testing.assert_allclose(f, p, rtol=rtol, atol=rtol)


@needs_blas
def test_fused_update_only_from_its_size(rng, monkeypatch):
    """Small weights take the plain update (cheaper there), large ones the gemm."""
    monkeypatch.setattr(fast_step, "WHOLE_STEP", False)
    calls = []
    real_gemm = _blas.gemm
    monkeypatch.setattr(_blas, "gemm", lambda alpha, A, B, beta, C: calls.append(C.size) or real_gemm(alpha, A, B, beta, C))
    m = MLP([100, 90, 3], seed=0)
    m.fit(rng.standard_normal((64, 100)), rng.integers(0, 3, 64), epochs=1, batch_size=32, verbose=False,
          path="fast")
    assert sorted(set(calls)) == [100 * 90]  # 9,000 >= FUSED_FROM; the 90 x 3 layer is below it
    calls.clear()
    m.fit(rng.standard_normal((64, 100)), rng.integers(0, 3, 64), epochs=1, batch_size=32, verbose=False,
          path="reference")
    assert not calls  # the reference path is the maths: no gemm trick
