"""The life of a training run (issue 13, points 2, 3 and 9): Ctrl-C then continue or ``--resume`` is
bit-exact, a run folder belongs to one run, and a finished run can be trained further.

Interrupts are real SIGINTs: ``signal.raise_signal`` from a callback at a chosen batch (deterministic:
the handler runs before the call returns), and one sent from outside at whatever moment it lands.
"""
import csv
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from mlpnumpy import MLP, cli, io
from mlpnumpy.callbacks import Callback, ProgressBar
from mlpnumpy.datasets import load

SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")


class InterruptAt(Callback):
    """Sends this process a SIGINT after batch ``batch`` of the fit's epoch ``epoch`` (0-based)."""

    def __init__(self, epoch, batch):
        self.at, self.epoch = (epoch, batch), None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_batch_end(self, batch, logs=None):
        if (self.epoch, batch) == self.at:
            signal.raise_signal(signal.SIGINT)


def _same_history(a: dict, b: dict) -> None:
    assert set(a) == set(b)
    for k in a:
        if k != "seconds":
            assert a[k] == b[k], k


# ------------------------------------------------------------------------------ fit, in process
@pytest.mark.parametrize("schedule", ["cosine", "onecycle"])
def test_interrupted_fit_undoes_the_epoch_and_continues_bit_exactly(schedule):
    ds = load("digits")
    X, y = ds.X_train[:600], ds.y_train[:600]
    kw = dict(batch_size=32, validation_data=(ds.X_test[:200], ds.y_test[:200]), verbose=0)

    def model():
        return MLP([64, 32, 10], seed=3, dropout=0.2, batch_norm=True)

    straight = model()
    h_straight = straight.fit(X, y, epochs=4, optimizer="adam", lr_schedule=schedule, **kw)

    m = model()
    h1 = m.fit(X, y, epochs=4, optimizer="adam", lr_schedule=schedule, callbacks=[InterruptAt(2, 7)], **kw)
    assert h1.interrupted and len(h1) == 2 and m.epochs_trained == 2  # epoch 3 is not counted
    h2 = m.fit(X, y, epochs=2, **kw)  # the optimizer and schedule carry on
    assert not h2.interrupted and m.epochs_trained == 4
    _same_history(h_straight.history, {k: h1.history[k] + h2.history[k] for k in h1.history})
    assert all(np.array_equal(a, b) for a, b in zip(straight.get_weights(), m.get_weights()))
    sa, sb = straight.optimizer.state_dict(), m.optimizer.state_dict()
    assert sa["iterations"] == sb["iterations"] and sa["lr"] == sb["lr"]
    assert all(np.array_equal(u[k], v[k]) for u, v in zip(sa["state"], sb["state"]) for k in u)


def test_progress_counts_epochs_from_where_training_continues():
    ds = load("digits")
    m = MLP([64, 8, 10], seed=0)
    m.fit(ds.X_train, ds.y_train, epochs=3, verbose=0)
    import io as _io
    out = _io.StringIO()
    m.fit(ds.X_train, ds.y_train, epochs=2, callbacks=[ProgressBar("epochs", stream=out)], verbose=0)
    assert [line.split(",")[0] for line in out.getvalue().splitlines()] == ["Epoch 4/5", "Epoch 5/5"]


def test_a_second_ctrl_c_stops_at_once_and_leaves_the_model_at_the_epochs_start():
    ds = load("digits")
    m = MLP([64, 16, 10], seed=1)
    m.fit(ds.X_train, ds.y_train, epochs=1, verbose=0)
    before = m.get_weights()
    iterations, rng_state = m.optimizer.iterations, m.rng.bit_generator.state

    class TwoSignals(Callback):
        def on_batch_end(self, batch, logs=None):
            if batch == 5:
                signal.raise_signal(signal.SIGINT)  # the first asks to stop after this batch ...
                signal.raise_signal(signal.SIGINT)  # ... the second raises KeyboardInterrupt here

    with pytest.raises(KeyboardInterrupt):
        m.fit(ds.X_train, ds.y_train, epochs=3, callbacks=[TwoSignals()], verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(before, m.get_weights()))
    assert m.optimizer.iterations == iterations and m.epochs_trained == 1
    assert m.rng.bit_generator.state == rng_state
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
