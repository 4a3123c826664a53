"""Training state under careless use (issue 19): batch-norm statistics that overflow are a divergence,
a prediction from another thread cannot touch a running training step, two fits of one model are
refused, and an EarlyStopping watching a key that does not exist is an error, not an endless run.

The thread tests are deterministic: a hook inside the training step waits for the other thread, so
the interleaving that used to corrupt the step is forced, not hoped for.
"""
import threading

import numpy as np
import pytest

from mlpnumpy import MLP
from mlpnumpy.training.callbacks import EarlyStopping
from mlpnumpy.errors import DivergenceError, InvalidArgumentError
from mlpnumpy.nn.layers import Dense


def _data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 6)).astype(np.float32), rng.integers(0, 3, n)


@pytest.mark.parametrize("path", ["reference", "fast"])
def test_batch_norm_statistics_that_overflow_are_a_divergence(path):
    X, y = _data()
    X *= 3e38 / np.abs(X).max()  # finite float32 inputs near the top of the range
    from mlpnumpy.nn.layers import BatchNorm1d
    from mlpnumpy.nn.model import Sequential
    # batch norm first: its running statistics of +-3e38 rows overflow, the weights stay finite
    s = Sequential([BatchNorm1d(6), Dense(6, 3)], seed=0, path=path)
    with pytest.raises(DivergenceError, match="batch-norm statistic is not finite"):
        s.fit(X, y, epochs=2, batch_size=16, verbose=0)
    assert all(np.isfinite(a).all() for a in s.named_arrays().values())  # back at the epoch's start
    assert np.isfinite(s.predict_proba(X[:4] / 3e38)).all()


class _Rendezvous:
    """Wraps the second Dense layer's backward in the training thread: on its first call it lets the
    other thread act, then waits (at most ``timeout`` s) for it to finish before going on."""

    def __init__(self, layer, timeout):
        self.inside, self.done, self.timeout = threading.Event(), threading.Event(), timeout
        self.layer, self.original = layer, layer.backward
        self.trainer = None

        def backward(grad):
            if threading.current_thread() is self.trainer and not self.inside.is_set():
                self.inside.set()
                self.done.wait(self.timeout)
            return self.original(grad)
        layer.backward = backward


def _bn_model():
    return MLP([6, 8, 8, 3], seed=1, batch_norm=True, path="reference")


def test_predict_in_another_thread_cannot_change_a_running_fit():
    X, y = _data(96)
    alone = _bn_model()
    alone.fit(X, y, epochs=2, batch_size=16, verbose=0)

    m = _bn_model()
    hook = _Rendezvous(m.layers[-1], timeout=1.0)
    errors = []

    def train():
        try:
            m.fit(X, y, epochs=2, batch_size=16, verbose=0)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    trainer = threading.Thread(target=train)
    hook.trainer = trainer
    trainer.start()
    assert hook.inside.wait(10)
    predicted = []
    reader = threading.Thread(target=lambda: predicted.append(m.predict_proba(X[::-1] * 5)))
    reader.start()
    reader.join(0.3)           # before the fix: done at once, inside the training step
    hook.done.set()
    trainer.join(30)
    reader.join(30)
    assert not errors and predicted
    for a, b in zip(alone.get_weights(), m.get_weights()):
        np.testing.assert_array_equal(a, b)  # bit for bit: the prediction wrote nothing the step read


def test_a_second_fit_of_the_same_model_is_refused():
    X, y = _data(96)
    m = _bn_model()
    hook = _Rendezvous(m.layers[-1], timeout=10.0)
    errors = []
    trainer = threading.Thread(target=lambda: m.fit(X, y, epochs=1, batch_size=16, verbose=0))
    hook.trainer = trainer
    trainer.start()
    assert hook.inside.wait(10)
    try:
        with pytest.raises(InvalidArgumentError, match="fit is already running on this model in thread"):
            m.fit(X, y, epochs=1, batch_size=16, verbose=0)
    finally:
        hook.done.set()
        trainer.join(30)
    assert not errors and m.epochs_trained == 1
    m.fit(X, y, epochs=1, batch_size=16, verbose=0)  # once it is done, training on is fine
    assert m.epochs_trained == 2


def test_fit_from_a_callback_of_the_same_model_is_refused():
    from mlpnumpy.training.callbacks import Callback
    X, y = _data()
    m = MLP([6, 3], seed=0)

    class Nested(Callback):
        def on_epoch_end(self, epoch, logs=None):
            self.model.fit(X, y, epochs=1, verbose=0)
    with pytest.raises(InvalidArgumentError, match="this same thread"):
        m.fit(X, y, epochs=1, verbose=0, callbacks=[Nested()])
    m.fit(X, y, epochs=1, verbose=0)  # the refusal left no lock behind


def test_predict_from_a_callback_in_the_training_thread_still_works():
    from mlpnumpy.training.callbacks import Callback
    X, y = _data()
    m = MLP([6, 3], seed=0)
    seen = []

    class Peek(Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(self.model.predict(X[:2]))
    m.fit(X, y, epochs=2, verbose=0, callbacks=[Peek()])
    assert len(seen) == 2


def test_early_stopping_on_an_unknown_key_is_an_error_at_the_first_epoch():
    X, y = _data()
    m = MLP([6, 3], seed=0)
    with pytest.raises(InvalidArgumentError) as info:
        m.fit(X, y, epochs=10 ** 9, verbose=0, callbacks=[EarlyStopping("val_loss", patience=2)])
    msg = str(info.value)
    assert "monitor='val_loss' is not in the epoch's logs" in msg and "loss, accuracy" in msg
    assert "validation_split" in msg and m.epochs_trained == 1
    with pytest.raises(InvalidArgumentError, match="monitor='acc' is not in"):
        m.fit(X, y, epochs=5, verbose=0, validation_split=0.25, callbacks=[EarlyStopping("acc")])
    hist = m.fit(X, y, epochs=3, verbose=0, validation_split=0.25, callbacks=[EarlyStopping("val_loss", patience=5)])
    assert len(hist.history["val_loss"]) == 3  # a key that exists is watched as before


def test_the_sklearn_estimator_trains_one_fit_at_a_time_and_predict_waits():
    pytest.importorskip("sklearn")
    from mlpnumpy.training.callbacks import Callback
    from mlpnumpy.sklearn import MLPClassifier
    X, y = _data(96)
    inside, release = threading.Event(), threading.Event()

    class Hold(Callback):  # keeps the first epoch of the first fit open until the test says so
        def on_epoch_end(self, epoch, logs=None):
            if not release.is_set():
                inside.set()
                release.wait(10)

    clf = MLPClassifier((8,), max_iter=2, random_state=0, callbacks=[Hold()])
    trainer = threading.Thread(target=lambda: clf.fit(X, y))
    trainer.start()
    assert inside.wait(10)
    predicted = []
    reader = threading.Thread(target=lambda: predicted.append(clf.predict(X)))
    try:
        with pytest.raises(InvalidArgumentError, match="fit is already running on this model in thread"):
            clf.partial_fit(X, y)
        reader.start()
        reader.join(0.3)
        assert reader.is_alive() and not predicted  # waits for the running fit instead of reading mid-step
    finally:
        release.set()
        trainer.join(30)
        reader.join(30)
    assert predicted and predicted[0].shape == y.shape
    clf.partial_fit(X, y)  # once it is done, training on is fine
