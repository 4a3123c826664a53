"""Standardizer: training-set statistics, constant features, dtype preservation, round trips."""
import json
import warnings

import numpy as np
import pytest

from mlpnumpy.errors import (DataTypeError, InvalidArgumentError, InvalidDataError,
                             NotFittedError)
from mlpnumpy.datasets.preprocessing import Standardizer


def test_hand_worked():
    s = Standardizer().fit([[1.0, 2.0], [3.0, 2.0]])
    np.testing.assert_array_equal(s.mean_, [2.0, 2.0])
    np.testing.assert_array_equal(s.scale_, [1.0, 1.0])  # std of feature 0 is 1; feature 1 constant
    np.testing.assert_array_equal(s.transform(np.array([[1.0, 2.0], [5.0, 4.0]])),
                                  [[-1.0, 0.0], [3.0, 2.0]])


def test_matches_numpy_and_uses_training_statistics_only():
    rng = np.random.default_rng(0)
    X_train = rng.normal(3.0, 2.0, (200, 5))
    X_test = rng.normal(-1.0, 0.5, (50, 5))
    s = Standardizer().fit(X_train)
    np.testing.assert_allclose(s.mean_, X_train.mean(0))
    np.testing.assert_allclose(s.scale_, X_train.std(0))
    Z = s.transform(X_train)
    np.testing.assert_allclose(Z.mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(Z.std(0), 1, atol=1e-12)
    # The test set is shifted with the training statistics, not re-centred on its own.
    np.testing.assert_allclose(s.transform(X_test), (X_test - X_train.mean(0)) / X_train.std(0))
    assert abs(s.transform(X_test).mean()) > 1.0


def test_constant_features_do_not_divide_by_zero():
    X = np.array([[5.0, 1.0], [5.0, 2.0], [5.0, 3.0]], dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a 0/0 would warn
        s = Standardizer().fit(X)
        Z = s.transform(X)
    assert s.scale_[0] == 1.0
    np.testing.assert_array_equal(Z[:, 0], 0.0)
    assert np.all(np.isfinite(Z))
    # A "constant" column with float rounding noise is treated as constant too.
    noisy = np.full((4, 1), 0.1) + np.array([[0.0], [1e-17], [0.0], [2e-17]])
    assert Standardizer().fit(noisy).scale_[0] == 1.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_preserved(dtype):
    X = np.random.default_rng(1).normal(size=(20, 3)).astype(dtype)
    s = Standardizer()
    Z = s.fit_transform(X)
    assert Z.dtype == dtype
    back = s.inverse_transform(Z)
    assert back.dtype == dtype
    np.testing.assert_allclose(back, X, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-6)


def test_integers_become_float32():
    Z = Standardizer().fit_transform(np.array([[0, 255], [255, 0]], dtype=np.uint8))
    assert Z.dtype == np.float32
    np.testing.assert_array_equal(Z, [[-1, 1], [1, -1]])


def test_dict_round_trip_through_json():
    X = np.random.default_rng(2).normal(size=(30, 4))
    s = Standardizer().fit(X)
    d = s.to_dict()
    assert isinstance(d["mean"], np.ndarray) and d["type"] == "Standardizer"
    text = json.dumps({k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in d.items()})
    s2 = Standardizer.from_dict(json.loads(text))
    np.testing.assert_array_equal(s2.transform(X), s.transform(X))
    d["mean"][0] = 99.0  # to_dict hands out copies
    assert s.mean_[0] != 99.0


def test_errors():
    with pytest.raises(NotFittedError):
        Standardizer().transform(np.ones((2, 2)))
    s = Standardizer().fit(np.ones((3, 2)))
    with pytest.raises(InvalidDataError, match="has 3 features, but .* fitted on 2"):
        s.transform(np.ones((1, 3)))
    with pytest.raises(InvalidDataError, match="NaN"):
        Standardizer().fit(np.array([[1.0], [np.nan]]))
    with pytest.raises(InvalidDataError, match=r"X has shape \(3,\) \(1-D\); expected a 2-D array"):
        Standardizer().fit(np.ones(3))
    with pytest.raises(InvalidDataError, match="at least one sample"):
        Standardizer().fit(np.ones((0, 3)))
    with pytest.raises(DataTypeError, match="expected a numeric array"):
        Standardizer().fit(np.array([["a"]]))
    with pytest.raises(DataTypeError, match="could not be converted"):
        Standardizer().fit([[1, 2], [3]])  # ragged
    with pytest.raises(InvalidArgumentError, match="scale"):
        Standardizer.from_dict({"type": "Standardizer", "mean": [0.0], "scale": [0.0]})
    with pytest.raises(InvalidArgumentError, match="'mean'"):
        Standardizer.from_dict({"type": "Standardizer", "scale": [1.0]})
    with pytest.raises(InvalidArgumentError, match="not 'Standardizer'"):
        Standardizer.from_dict({"type": "MinMax"})
    assert repr(s) == "Standardizer(n_features_in_=2)"


# --- float64 statistics without a float64 copy of the training set (issue 13.12) -------------------

@pytest.mark.parametrize("chunk", [None, 1, 64, 1000])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_blockwise_statistics_equal_the_float64_reference(monkeypatch, chunk, dtype):
    import mlpnumpy.datasets.preprocessing as pre
    if chunk is not None:  # blocks of 1 row (budget below one row), of 4 and 76 rows (ragged last)
        monkeypatch.setattr(pre, "_CHUNK_ELEMENTS", chunk)
    rng = np.random.default_rng(3)
    X = (rng.normal(100.0, 3.0, (1001, 13)) * rng.uniform(0.01, 10, 13)).astype(dtype)
    s = Standardizer().fit(X)
    X64 = X.astype(np.float64)
    np.testing.assert_allclose(s.mean_, X64.mean(axis=0), rtol=1e-12, atol=0)
    np.testing.assert_allclose(s.scale_, X64.std(axis=0), rtol=1e-12, atol=0)


def test_fit_does_not_copy_the_training_set_to_float64():
    import tracemalloc
    X = np.random.default_rng(4).random((20_000, 64), dtype=np.float32)   # 5 MB; in float64, 10 MB
    tracemalloc.start()
    try:
        Standardizer().fit(X)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < X.size * 8 / 4, f"fit allocated {peak} bytes at its peak; a float64 copy is {X.size * 8}"


def test_transform_allocates_only_its_result():
    import tracemalloc
    X = np.random.default_rng(5).random((20_000, 64), dtype=np.float32)
    s = Standardizer().fit(X)
    tracemalloc.start()
    try:
        Z = s.transform(X)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert Z.dtype == np.float32
    assert peak < 1.25 * Z.nbytes, f"transform peaked at {peak} bytes for a {Z.nbytes}-byte result"
