"""The benchmark's reference loop is a real trainer: the leanest NumPy loop that
``benchmarks/bench_training.py`` times against ``fit`` must do the same work, step for step."""
import os
import sys

import numpy as np
import pytest

from mlpnumpy import MLP

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir, "benchmarks"))
bench = pytest.importorskip("bench_training")


@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-10), (np.float32, 1e-4)])
def test_numpy_loop_trains_exactly_as_fit_does(dtype, rtol, rng):
    dims, n, bs, lr = [20, 16, 12, 4], 70, 32, 0.05  # 70 rows: a partial last batch of 6
    X = rng.standard_normal((n, dims[0])).astype(dtype)
    y = rng.integers(0, dims[-1], n)
    model = MLP(dims, seed=0, dtype=dtype)
    weights = [(layer.W.copy(), layer.b.copy()) for layer in model.layers]
    hist = model.fit(X, y, epochs=1, batch_size=bs, lr=lr, shuffle=False, verbose=False).history
    batches = [np.arange(s, min(s + bs, n)) for s in range(0, n, bs)]
    loss, acc = bench.numpy_loop_epoch(X, y, dims, bs, batches, lr=lr, weights=weights)()
    for layer, (W, b) in zip(model.layers, weights):
        np.testing.assert_allclose(W, layer.W, rtol=rtol, atol=rtol)
        np.testing.assert_allclose(b, layer.b, rtol=rtol, atol=rtol)
    assert loss == pytest.approx(hist["loss"][0], rel=rtol)
    assert acc == hist["accuracy"][0]
    assert not np.allclose(weights[0][0], MLP(dims, seed=0, dtype=dtype).layers[0].W)  # it did train
