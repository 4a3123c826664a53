"""Property-based tests (hypothesis): shapes, dtypes and label handling hold for any architecture,
batch and data the strategies draw."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlpnumpy import MLP
from mlpnumpy.errors import InvalidDataError

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

dims_st = st.lists(st.integers(1, 7), min_size=2, max_size=4).map(lambda d: d[:-1] + [max(2, d[-1])])
act_st = st.sampled_from(["relu", "leaky_relu", "sigmoid", "tanh", "elu", "gelu", "identity"])
dtype_st = st.sampled_from([np.float32, np.float64])


@SETTINGS
@given(dims=dims_st, act=act_st, dtype=dtype_st, n=st.integers(1, 40), seed=st.integers(0, 2**31 - 1),
       batch_norm=st.booleans(), dropout=st.sampled_from([0.0, 0.3]))
def test_shapes_dtypes_and_probabilities(dims, act, dtype, n, seed, batch_norm, dropout):
    rng = np.random.default_rng(seed)
    model = MLP(dims, act, seed=seed, dtype=dtype, batch_norm=batch_norm, dropout=dropout)
    X = rng.standard_normal((n, dims[0]))
    out = model.forward(X.astype(dtype))
    assert out.shape == (n, dims[-1]) and out.dtype == dtype
    P = model.predict_proba(X)
    assert P.shape == (n, dims[-1]) and P.dtype == dtype
    assert np.allclose(P.sum(axis=1), 1, atol=1e-5) and (P >= 0).all()
    pred = model.predict(X)
    assert pred.shape == (n,) and ((0 <= pred) & (pred < dims[-1])).all()
    y = rng.integers(0, dims[-1], n)
    if n > 1 and np.unique(y).size < 2:
        with pytest.raises(InvalidDataError, match="single class"):
            model.fit(X, y, epochs=1, verbose=False)
        return
    h = model.fit(X, y, epochs=2, batch_size=int(rng.integers(1, n + 1)), verbose=False)
    assert len(h) == 2 and np.isfinite(h).all()
    assert all(p.data.dtype == dtype and np.isfinite(p.data).all() for p in model.parameters())


@SETTINGS
@given(k=st.integers(2, 6), n=st.integers(2, 30), seed=st.integers(0, 2**31 - 1))
def test_label_forms_agree(k, n, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 3))
    y = np.arange(n) % k  # every class present when n >= k; at least two classes always
    fits = {}
    for name, target in [("int", y), ("int32", y.astype(np.int32)), ("float", y.astype(float)),
                         ("onehot", np.eye(k)[y])]:
        m = MLP([3, 4, k], seed=1, dtype=np.float64)
        m.fit(X, target, epochs=2, batch_size=4, verbose=False)
        fits[name] = m.get_weights()
    for name in ("int32", "float", "onehot"):
        for a, b in zip(fits["int"], fits[name]):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@SETTINGS
@given(k=st.integers(2, 6), bad=st.sampled_from(["negative", "too_big", "fraction", "width"]),
       seed=st.integers(0, 2**31 - 1))
def test_bad_labels_always_rejected_before_any_change(k, bad, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((12, 3))
    y = (np.arange(12) % k).astype(float)
    i = int(rng.integers(12))
    if bad == "negative":
        y[i] = -1 - rng.integers(5)
    elif bad == "too_big":
        y[i] = k + rng.integers(5)
    elif bad == "fraction":
        y[i] += rng.uniform(0.01, 0.99)
    else:
        y = np.eye(k + 1)[np.arange(12) % k]
    m = MLP([3, 4, k], seed=0)
    before = m.get_weights()
    with pytest.raises(InvalidDataError):
        m.fit(X, y, epochs=1, verbose=False)
    assert all(np.array_equal(a, b) for a, b in zip(before, m.get_weights()))


@SETTINGS
@given(n=st.integers(2, 30), d=st.integers(1, 6), dtype=dtype_st, seed=st.integers(0, 2**31 - 1),
       scale=st.sampled_from([1e-3, 1.0, 1e4]))
def test_standardizer_round_trip(n, d, dtype, seed, scale):
    from mlpnumpy.datasets.preprocessing import Standardizer
    rng = np.random.default_rng(seed)
    X = (rng.standard_normal((n, d)) * scale + 3).astype(dtype)
    X[:, 0] = X[0, 0]  # a constant column
    s = Standardizer().fit(X)
    Z = s.transform(X)
    assert Z.dtype == dtype and Z.shape == X.shape and np.isfinite(Z).all()
    np.testing.assert_allclose(s.inverse_transform(Z), X, rtol=1e-4 if dtype == np.float32 else 1e-10,
                               atol=1e-4 * scale if dtype == np.float32 else 1e-9 * scale)
