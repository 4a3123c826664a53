"""Edge cases found in review, each pinned by a test."""
import numpy as np
import pytest

from mlpnumpy import MLP, Dense, Sequential
from mlpnumpy.training.callbacks import EarlyStopping
from mlpnumpy.errors import InvalidArgumentError
from mlpnumpy.nn.layers import BatchNorm1d


def _xy(rng, n=40, k=3):
    return rng.standard_normal((n, 4)).astype(np.float32), np.arange(n) % k


def test_a_model_keeps_weights_set_by_hand_and_casts_trained_layers():
    d = Dense(2, 3)
    d.W = np.ones((2, 3))
    Sequential([d], seed=0)
    assert np.array_equal(d.W, np.ones((2, 3)))
    bn = BatchNorm1d(3)
    bn.running_mean[:] = 5.0
    Sequential([Dense(2, 3), bn], seed=0, dtype=np.float64)
    assert bn.running_mean.dtype == np.float64 and np.all(bn.running_mean == 5.0)


def test_named_schedule_sizes_from_the_real_split(rng):
    X, y = _xy(rng)
    # validation_data given: the split is ignored, every row trains
    MLP([4, 5, 3], seed=0).fit(X, y, epochs=4, batch_size=10, lr_schedule="onecycle", validation_data=(X, y),
                               validation_split=0.5, verbose=False)
    MLP([4, 5, 3], seed=0).fit(X[:10], y[:10], epochs=3, batch_size=1, lr_schedule="onecycle",
                               validation_split=0.5, verbose=False)


def test_validation_split_that_leaves_nothing_is_refused(rng):
    m = MLP([4, 3, 1], seed=0, loss="mse")
    with pytest.raises(InvalidArgumentError, match="needs at least 2 rows"):
        m.fit(np.ones((1, 4)), np.ones(1), epochs=1, validation_split=0.5, verbose=False)
    h = m.fit(np.ones((3, 4)), np.arange(3.0), epochs=1, validation_split=0.9, verbose=False)
    assert len(h) == 1  # one row held out, two kept


def test_failed_validation_leaves_the_optimizer_alone(rng):
    X, y = _xy(rng)
    m = MLP([4, 5, 3], seed=0)
    m.fit(X, y, epochs=1, lr=0.1, verbose=False)
    with pytest.raises(InvalidArgumentError):
        m.fit(X, y, epochs=1, lr=0.5, callbacks=[object()], verbose=False)
    assert m.optimizer.lr == 0.1


def test_loaded_optimizer_state_of_another_model_is_refused_before_any_update(rng):
    X, y = _xy(rng)
    a = MLP([4, 5, 3], seed=0)
    a.fit(X, y, epochs=1, optimizer="adam", verbose=False)
    b = MLP([4, 6, 3], seed=0)
    b.fit(X, y, epochs=1, optimizer="adam", verbose=False)
    before = b.get_weights()
    b.optimizer.load_state_dict(a.optimizer.state_dict())
    with pytest.raises(InvalidArgumentError, match="belongs to another model"):
        b.fit(X, y, epochs=1, verbose=False)
    assert all(np.array_equal(u, v) for u, v in zip(before, b.get_weights()))


def test_early_stopping_patience_counts_epochs_without_improvement(rng):
    X, y = _xy(rng)
    es = EarlyStopping(monitor="loss", patience=2, min_delta=100.0)
    h = MLP([4, 5, 3], seed=0).fit(X, y, epochs=10, callbacks=[es], verbose=False)
    assert len(h) == 3 and es.stopped_epoch == 2  # best at epoch 0, then 2 without improvement
    with pytest.raises(InvalidArgumentError, match="min_delta"):
        EarlyStopping(min_delta="x")


def test_from_torch_is_seeded():
    torch = pytest.importorskip("torch")
    from mlpnumpy import from_torch
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Dropout(0.5), torch.nn.Linear(8, 2))
    X = np.ones((6, 4), np.float32)
    outs = [from_torch(net, seed=3).forward(X, training=True) for _ in range(2)]
    assert np.array_equal(outs[0], outs[1])


def test_resume_refuses_to_stretch_a_laid_out_schedule(tmp_path):
    from mlpnumpy.cli import commands as cli
    out = tmp_path / "run"
    assert cli.main(["train", "--data", "digits", "--epochs", "1", "--hidden", "8", "--schedule", "onecycle",
                     "--quiet", "--out", str(out)]) == 0
    assert cli.main(["train", "--resume", str(out), "--epochs", "2"]) == 2
