"""Bad input gets a specific error naming the argument, the value and what is accepted, raised
before any state changes: a fitted model stays exactly as it was."""
import os
import signal
import warnings

import numpy as np
import pytest

from mlpnumpy import MLP, Dense
from mlpnumpy.training.callbacks import Callback
from mlpnumpy.errors import DataTypeError, InvalidArgumentError, InvalidDataError, MLPNumpyError


@pytest.fixture
def fitted(rng):
    X = rng.standard_normal((60, 4)).astype(np.float32)
    y = rng.integers(0, 3, 60)
    m = MLP([4, 8, 3], seed=0)
    m.fit(X, y, epochs=2, optimizer="adam", verbose=False)
    return m, X, y


def snapshot(m):
    return [w.copy() for w in m.get_weights()], m.optimizer.state_dict(), m.epochs_trained, \
        m.rng.bit_generator.state


def assert_unchanged(m, snap):
    w, opt, ep, rng = snap
    assert all(np.array_equal(a, b) for a, b in zip(w, m.get_weights()))
    assert m.optimizer.iterations == opt["iterations"] and m.epochs_trained == ep
    assert m.rng.bit_generator.state == rng


X_CASES = [
    ("nan", lambda X: np.where(np.arange(X.size).reshape(X.shape) == 5, np.nan, X), InvalidDataError,
     r"X contains NaN or infinity \(first at row 1, column 1"),
    ("inf", lambda X: np.where(np.arange(X.size).reshape(X.shape) == 0, np.inf, X), InvalidDataError, "infinity"),
    ("1-D", lambda X: X[:, 0], InvalidDataError, r"X has shape \(60,\) \(1-D\); expected a 2-D array"),
    ("3-D", lambda X: X[:, :, None], InvalidDataError, "expected a 2-D array"),
    ("empty", lambda X: X[:0], InvalidDataError, "at least one sample"),
    ("object", lambda X: X.astype(object), DataTypeError, "dtype object"),
    ("strings", lambda X: X.astype(str), DataTypeError, "expected a numeric array"),
    ("complex", lambda X: X.astype(complex), DataTypeError, "complex"),
    ("ragged", lambda X: [[1, 2, 3, 4], [1, 2]], DataTypeError, "X could not be converted"),
    ("features", lambda X: X[:, :3], InvalidDataError, "X has 3 features; the model expects 4"),
]


@pytest.mark.parametrize("name,bad,exc,msg", X_CASES, ids=[c[0] for c in X_CASES])
def test_bad_X_in_fit_and_predict(fitted, name, bad, exc, msg):
    m, X, y = fitted
    snap = snapshot(m)
    Xb = bad(X)
    with pytest.raises(exc, match=msg):
        m.fit(Xb, y if name not in ("empty",) else y[:0], epochs=1, verbose=False)
    if name != "empty":
        with pytest.raises(exc, match=msg):
            m.predict(Xb)
    assert_unchanged(m, snap)


Y_CASES = [
    ("rows", lambda y: y[:-1], InvalidDataError, "y has 59 rows but X has 60"),
    ("negative", lambda y: np.where(np.arange(60) == 3, -1, y), InvalidDataError,
     r"y holds label -1; the model has 3 outputs, so labels must be integers in \[0, 2\]"),
    ("out of range", lambda y: np.where(np.arange(60) == 3, 7, y), InvalidDataError, "y holds label 7"),
    ("non-integral", lambda y: y + 0.5, InvalidDataError, "non-integral label 0.5|non-integral label 1.5|non-integral"),
    ("nan", lambda y: np.where(np.arange(60) == 3, np.nan, y), InvalidDataError, "y contains NaN"),
    ("single class", lambda y: np.zeros_like(y), InvalidDataError, "single class"),
    ("one-hot width", lambda y: np.eye(4)[y], InvalidDataError, "one-hot width 4; the model has 3 outputs"),
    ("strings", lambda y: y.astype(str), DataTypeError, "y has dtype"),
]


@pytest.mark.parametrize("name,bad,exc,msg", Y_CASES, ids=[c[0] for c in Y_CASES])
def test_bad_y(fitted, name, bad, exc, msg):
    m, X, y = fitted
    snap = snapshot(m)
    with pytest.raises(exc, match=msg):
        m.fit(X, bad(y), epochs=1, verbose=False)
    assert_unchanged(m, snap)


ARG_CASES = [
    ({"lr": -0.1}, "lr=-0.1 is invalid; expected a finite number > 0"),
    ({"lr": 0}, "lr=0 is invalid"),
    ({"lr": float("nan")}, "lr=nan is invalid"),
    ({"lr": float("inf")}, "lr=inf is invalid"),
    ({"epochs": 0}, "epochs=0 is invalid"),
    ({"epochs": 2.5}, "epochs=2.5 is not an integer"),
    ({"batch_size": -4}, "batch_size=-4 is invalid"),
    ({"batch_size": float("inf")}, "batch_size=inf is not an integer"),
    ({"optimizer": "adamm"}, "optimizer='adamm' is not one of: sgd, adam, adamw, rmsprop, adagrad"),
    ({"lr_schedule": "cosin"}, "is not one of"),
    ({"validation_split": 1.0}, r"validation_split=1.0 is out of range; expected a number in \[0.0, 1.0\)"),
    ({"callbacks": [object()]}, "expected Callback objects"),
]


@pytest.mark.parametrize("kwargs,msg", ARG_CASES, ids=[str(c[0]) for c in ARG_CASES])
def test_bad_fit_arguments(fitted, kwargs, msg):
    m, X, y = fitted
    snap = snapshot(m)
    with pytest.raises(InvalidArgumentError, match=msg):
        m.fit(X, y, **{"epochs": 1, "verbose": False, **kwargs})
    assert_unchanged(m, snap)


@pytest.mark.parametrize("make,msg", [
    (lambda: MLP([4]), r"layer_dims=\[4\] has 1 size\(s\); expected at least two"),
    (lambda: MLP([4, 0, 3]), r"layer_dims\[1\]=0 is invalid; expected a finite integer > 0"),
    (lambda: MLP([4, -2, 3]), r"layer_dims\[1\]=-2 is invalid"),
    (lambda: MLP([4, 2.5, 3]), r"layer_dims\[1\]=2.5 is not an integer"),
    (lambda: MLP([4, 3], "rleu"), "activation='rleu' is not one of: relu, leaky_relu, sigmoid, tanh, identity"),
    (lambda: MLP([4, 3], init="hee"), "init='hee' is not one of: auto, he_normal"),
    (lambda: MLP([4, 3], loss="hinge"), "loss='hinge' is not one of: cross_entropy"),
    (lambda: MLP([4, 5, 3], dropout=1.0), r"dropout=1.0 is out of range; expected a number in \[0.0, 1.0\)"),
    (lambda: MLP([4, 5, 3], dropout=-0.1), "dropout=-0.1 is out of range"),
    (lambda: MLP([4, 3], dtype=np.int32), "dtype=int32 is not supported; expected float32 or float64"),
    (lambda: MLP([4, 5, 3], ["relu"] * 5), "activations has 5 entries; expected 2"),
])
def test_bad_constructor_arguments(make, msg):
    with pytest.raises(InvalidArgumentError, match=msg):
        make()


def test_weights_of_the_wrong_shape_assigned_by_hand(fitted):
    m, X, y = fitted
    snap = snapshot(m)
    with pytest.raises(InvalidDataError, match=r"W has shape \(3, 4\); expected \(4, 8\)"):
        m.layers[0].W = np.zeros((3, 4))
    with pytest.raises(InvalidDataError, match="NaN"):
        m.layers[0].W = np.full((4, 8), np.nan)
    with pytest.raises(InvalidArgumentError, match=r"weights\[0\] has shape \(2, 2\); expected \(4, 8\)"):
        m.set_weights([np.zeros((2, 2))] + m.get_weights()[1:])
    assert_unchanged(m, snap)


def test_every_error_is_ours_and_a_builtin():
    for exc in (InvalidArgumentError, InvalidDataError):
        assert issubclass(exc, MLPNumpyError) and issubclass(exc, ValueError)
    assert issubclass(DataTypeError, TypeError)


# ---------------------------------------------------------------- interruption
def test_ctrl_c_stops_after_the_current_batch(rng):
    X = rng.standard_normal((400, 4)).astype(np.float32)
    y = rng.integers(0, 3, 400)
    seen = []

    class Interrupt(Callback):
        def on_batch_end(self, batch, logs=None):
            seen.append(batch)
            if batch == 2:
                os.kill(os.getpid(), signal.SIGINT)
    m = MLP([4, 8, 3], seed=0)
    w0 = m.get_weights()
    h = m.fit(X, y, epochs=5, batch_size=40, callbacks=[Interrupt()], verbose=False)
    assert h.interrupted and seen == [0, 1, 2]
    # issue 13.2: the unfinished epoch is undone (not counted as one): the model is back where it began
    assert len(h) == 0 and m.epochs_trained == 0 and m.optimizer.iterations == 0
    assert all(np.array_equal(a, b) for a, b in zip(w0, m.get_weights()))
    # the handler is gone: the process's own SIGINT handling is back
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


# ---------------------------------------------------------------- numerical extremes
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("loss", ["cross_entropy", "binary_cross_entropy"])
def test_extreme_inputs_give_finite_losses_and_gradients(dtype, loss, rng):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any overflow or invalid-value warning fails the test
        for X in [np.full((5, 4), 1e30), np.full((5, 4), -1e30), rng.standard_normal((1, 4)) * 1e30,
                  np.ones((7, 4)), np.zeros((3, 4))]:
            m = MLP([4, 6, 3], "tanh" if loss == "cross_entropy" else "relu", seed=0, dtype=dtype, loss=loss,
                    batch_norm=True)
            y = np.zeros(X.shape[0], int) if loss == "cross_entropy" else np.zeros((X.shape[0], 3))
            out = m.forward(X.astype(dtype), training=True)
            val = m.loss.forward(out, y)
            m.backward(m.loss.backward())
            assert np.isfinite(val)
            assert all(np.isfinite(p.grad).all() for p in m.parameters())


def test_extreme_logits_are_exact(rng):
    from mlpnumpy.nn.losses import BinaryCrossEntropy, CrossEntropy
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        z = np.array([[1e4, -1e4], [-1e4, 1e4]], np.float32)
        ce = CrossEntropy()
        assert ce(z, np.array([0, 0])) == pytest.approx(1e4)
        assert np.isfinite(ce.backward()).all()
        bce = BinaryCrossEntropy()
        assert np.isfinite(bce(z, np.array([[1.0, 0.0], [0.0, 1.0]]))) and np.isfinite(bce.backward()).all()


def test_batch_of_one_and_single_class_batches(rng):
    X = rng.standard_normal((33, 4))
    y = np.repeat([0, 1, 2], 11)  # unshuffled batches of 11 hold one class each; the last batch has one row
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = MLP([4, 8, 3], seed=0, batch_norm=True)
        h = m.fit(X, y, epochs=2, batch_size=16, shuffle=False, verbose=False)
        assert np.isfinite(h).all()
        m.fit(X[:1], y[:1], epochs=1, batch_size=1, verbose=False)  # one row: no single-class error
        assert all(np.isfinite(w).all() for w in m.get_weights())


def test_constant_features(rng):
    X = np.ones((50, 4))
    X[:, 0] = rng.standard_normal(50)
    y = (X[:, 0] > 0).astype(int)
    from mlpnumpy.datasets.preprocessing import Standardizer
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = MLP([4, 8, 2], seed=0)
        m.preprocessor = Standardizer().fit(X)
        h = m.fit(X, y, epochs=20, lr=0.1, verbose=False)
    assert np.isfinite(h).all() and m.evaluate(X, y) > 0.8


def test_dense_layer_direct_use_checks():
    with pytest.raises(InvalidArgumentError, match="in_features=0 is invalid"):
        Dense(0, 3)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", [(0, 0), (137, 41), (2999, 99)])
def test_large_input_finiteness_check_finds_every_bad_entry(dtype, bad, where, rng):
    # large enough for the row-sum shortcut; the bad entry must not hide in any row or column
    from mlpnumpy._validation import check_X
    X = rng.standard_normal((3000, 100)).astype(dtype)
    check_X(X, dtype)
    X[where] = bad
    with pytest.raises(InvalidDataError, match=f"first at row {where[0]}, column {where[1]}"):
        check_X(X, dtype)


def test_row_sums_that_overflow_do_not_make_finite_input_bad(rng):
    # every entry finite, each row's sum overflows float32: the exact check must accept it
    from mlpnumpy._validation import check_X
    X = np.full((100, 100), np.finfo(np.float32).max / 2, dtype=np.float32)
    assert check_X(X, np.float32) is X
