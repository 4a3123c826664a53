"""How much of a training step is NumPy's own per-call cost, and how much is mlpnumpy's.

A network of 8-8-8-4 units makes every matrix tiny, so a step's time is almost all call overhead.
This script times one epoch (60,000 rows, batch 128, plain SGD) of mlpnumpy's ``fit`` and of the same
step written as one flat loop of NumPy calls (the fused BLAS update included), and prints both per
step. On the 2-core machine of the README, two runs gave 143 and 124 us per step for ``fit`` against
117 and 115 us for the flat loop: the library's layers, losses, optimizer and callbacks add 10-20%; the
rest, about 0.12 ms per step, is the cost of some forty NumPy calls.

    python benchmarks/numpy_overhead.py
"""
import time

import numpy as np

from mlpnumpy import MLP
from mlpnumpy._kernels import _blas


def flat_epoch(X, y, Ws, bs, rng, batch=128, lr=0.01):
    perm = rng.permutation(X.shape[0])
    rows = np.arange(batch)
    ones = np.ones(batch, X.dtype)
    for s in range(0, X.shape[0], batch):
        idx = perm[s:s + batch]
        a0, yb = X[idx], y[idx]
        z1 = a0 @ Ws[0]
        z1 += bs[0]
        a1 = np.maximum(z1, 0, out=z1)
        z2 = a1 @ Ws[1]
        z2 += bs[1]
        a2 = np.maximum(z2, 0, out=z2)
        z3 = a2 @ Ws[2]
        z3 += bs[2]
        n = z3.shape[0]
        r = rows[:n]
        sh = z3 - z3.max(axis=1, keepdims=True)
        p = np.exp(sh)
        t = p.sum(axis=1, keepdims=True)
        float((np.log(t[:, 0]) - sh[r, yb]).sum())
        p /= t
        p[r, yb] -= 1
        p /= n
        int(np.count_nonzero(z3.argmax(1) == yb))
        d2 = p @ Ws[2].T
        d2 *= a2 > 0
        d1 = d2 @ Ws[1].T
        d1 *= a1 > 0
        for W, b, a, g in ((Ws[2], bs[2], a2, p), (Ws[1], bs[1], a1, d2), (Ws[0], bs[0], a0, d1)):
            if not _blas.gemm(-lr, a.T, g, 1.0, W):
                W -= lr * (a.T @ g)
            b -= np.float32(lr) * (ones[:n] @ g)


def main():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60000, 8)).astype(np.float32)
    y = rng.integers(0, 4, 60000)
    dims = [8, 8, 8, 4]
    Ws = [(rng.standard_normal((a, b)) * 0.3).astype(np.float32) for a, b in zip(dims[:-1], dims[1:])]
    bs = [np.zeros(b, np.float32) for b in dims[1:]]
    model = MLP(dims, seed=0)
    steps = -(-X.shape[0] // 128)
    ours, flat = [], []
    for _ in range(5):
        ours.append(model.fit(X, y, epochs=1, batch_size=128, verbose=False).history["seconds"][0])
        t = time.perf_counter()
        flat_epoch(X, y, Ws, bs, rng)
        flat.append(time.perf_counter() - t)
    print(f"per step: mlpnumpy fit {np.median(ours) / steps * 1e6:.0f} us, "
          f"flat NumPy loop {np.median(flat) / steps * 1e6:.0f} us")


if __name__ == "__main__":
    main()
