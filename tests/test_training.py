"""The fit loop: validation, history, callbacks, schedules, clipping, continue-training, regression,
multi-label, and real-data convergence on the UCI digits."""
import io
import math

import numpy as np
import pytest

from mlpnumpy import MLP
from mlpnumpy.training.callbacks import (CSVLogger, Callback, EarlyStopping, LambdaCallback, LearningRateScheduler,
                                ProgressBar, TerminateOnNaN)
from mlpnumpy.datasets import load
from mlpnumpy.optim.optimizers import SGD, Adam
from mlpnumpy.optim.schedules import CosineAnnealingLR, StepLR
from mlpnumpy.training.fitting import clip_grad_norm, train_val_split


@pytest.fixture(scope="module")
def digits():
    return load("digits")


def _blobs(rng, n=120, d=4, k=3):
    y = rng.integers(0, k, n)
    X = rng.standard_normal((n, d)) + 2.0 * np.eye(k, d)[y]
    return X.astype(np.float32), y


def test_history_keys_and_values(rng):
    X, y = _blobs(rng)
    h = MLP([4, 8, 3], seed=0).fit(X, y, epochs=4, validation_split=0.25, verbose=False)
    assert isinstance(h, list) and len(h) == 4
    for key in ["loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds"]:
        assert len(h.history[key]) == 4, key
    assert h == h.history["loss"]
    assert all(0 <= a <= 1 for a in h.history["val_accuracy"])
    assert h.history["lr"] == [0.01] * 4


def test_validation_split_is_stratified_and_random(rng):
    y = np.repeat(np.arange(4), [40, 30, 20, 10])
    tr, va = train_val_split(y, 0.2, np.random.default_rng(0), stratify=True)
    assert sorted(np.bincount(y[va]).tolist()) == [2, 4, 6, 8]
    assert np.intersect1d(tr, va).size == 0 and tr.size + va.size == y.size
    assert not np.array_equal(va, np.arange(80, 100))  # not the tail of the data
    assert not np.array_equal(va[va < 40], np.arange(32, 40))  # nor the tail of each class
    tr2, va2 = train_val_split(y, 0.2, np.random.default_rng(1), stratify=True)
    assert not np.array_equal(va, va2)


def test_validation_data_is_used_verbatim(rng):
    X, y = _blobs(rng)
    m = MLP([4, 8, 3], seed=0)
    h = m.fit(X, y, epochs=2, validation_data=(X[:10], y[:10]), verbose=False)
    assert h.history["val_loss"][-1] == pytest.approx(m.evaluate(X[:10], y[:10], return_dict=True)["loss"], rel=1e-6)


def test_early_stopping_restores_best_epoch(digits):
    d = digits
    m = MLP([64, 64, 10], seed=3)
    es = EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    # a large learning rate makes the validation loss bounce so the best epoch is not the last one
    h = m.fit(d.X_train, d.y_train, epochs=40, lr=0.9, batch_size=16, validation_data=(d.X_test, d.y_test),
              callbacks=[es], verbose=False)
    best = min(h.history["val_loss"])
    assert es.best_epoch is not None and es.best == best
    recomputed = m.evaluate(d.X_test, d.y_test, return_dict=True)["loss"]
    assert recomputed == pytest.approx(best, rel=1e-6)
    # reusable: a second fit starts with fresh state
    m.fit(d.X_train, d.y_train, epochs=2, validation_data=(d.X_test, d.y_test), callbacks=[es], verbose=False)
    assert es.wait <= 2 and es.best_epoch in (0, 1)


def test_early_stopping_stops(rng):
    X, y = _blobs(rng)
    es = EarlyStopping(monitor="loss", patience=0, min_delta=10.0)
    h = MLP([4, 8, 3], seed=0).fit(X, y, epochs=20, callbacks=[es], verbose=False)
    assert len(h) == 2 and es.stopped_epoch == 1


def test_callback_hooks_order(rng):
    X, y = _blobs(rng, n=20)
    events = []

    class Rec(Callback):
        def on_train_begin(self, logs=None): events.append("tb")
        def on_epoch_begin(self, e, logs=None): events.append(f"eb{e}")
        def on_batch_end(self, b, logs=None): events.append(f"b{b}")
        def on_epoch_end(self, e, logs=None): events.append(f"ee{e}")
        def on_train_end(self, logs=None): events.append("te")
    MLP([4, 3], seed=0).fit(X, y, epochs=2, batch_size=10, callbacks=[Rec()], verbose=False)
    assert events == ["tb", "eb0", "b0", "b1", "ee0", "eb1", "b0", "b1", "ee1", "te"]


def test_csv_logger_and_lr_scheduler(tmp_path, rng):
    X, y = _blobs(rng)
    path = tmp_path / "log.csv"
    h = MLP([4, 8, 3], seed=0).fit(X, y, epochs=3, callbacks=[CSVLogger(path),
                                   LearningRateScheduler(lambda e, lr: 0.1 / (e + 1))], verbose=False)
    lines = path.read_text().strip().splitlines()
    assert lines[0].split(",")[:3] == ["epoch", "loss", "accuracy"] and len(lines) == 4
    assert h.history["lr"] == pytest.approx([0.1, 0.05, 0.1 / 3])


def test_terminate_on_nan_and_divergence_keeps_finite_weights(rng):
    X, y = _blobs(rng)
    m = MLP([4, 8, 3], seed=0, batch_norm=True)
    before = m.get_weights()
    from mlpnumpy.errors import DivergenceError
    with np.errstate(over="ignore", invalid="ignore"), pytest.raises(DivergenceError, match="diverged"):
        # an absurd learning rate overflows the float32 weights within a few steps of epoch 1
        m.fit(X, y, epochs=2, lr=1e30, batch_size=10, verbose=False)
    after = m.get_weights()
    assert all(np.isfinite(w).all() for w in after)  # never NaN: back to where the epoch began
    assert all(np.array_equal(a, b) for a, b in zip(before, after))
    assert np.isfinite(m.predict_proba(X)).all()
    with np.errstate(over="ignore", invalid="ignore"), pytest.warns(RuntimeWarning, match="diverged"):
        h = m.fit(X, y, epochs=2, lr=1e30, batch_size=10, verbose=False, on_nonfinite="warn")
    assert all(np.isfinite(w).all() for w in m.get_weights()) and len(h) < 2
    assert np.isfinite(m.predict_proba(X)).all()


def test_lr_schedule_epoch_and_step(rng):
    X, y = _blobs(rng, n=64)
    h = MLP([4, 8, 3], seed=0).fit(X, y, epochs=6, lr=0.1, lr_schedule=StepLR(2, gamma=0.5), verbose=False)
    assert h.history["lr"] == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025, 0.025])
    m = MLP([4, 8, 3], seed=0)
    opt = SGD(lr=0.1)
    seen = []
    m.fit(X, y, epochs=2, batch_size=16, optimizer=opt, lr_schedule=CosineAnnealingLR(8, interval="step"),
          callbacks=[LambdaCallback(on_batch_end=lambda b, logs: seen.append(opt.lr))], verbose=False)
    expected = [0.1 * (1 + math.cos(math.pi * t / 8)) / 2 for t in range(1, 9)]
    assert seen == pytest.approx(expected)


def test_clip_grad_norm_matches_torch(rng):
    torch = pytest.importorskip("torch")
    from mlpnumpy.nn.parameter import Parameter
    ps = [Parameter(rng.standard_normal((3, 4))), Parameter(rng.standard_normal(5))]
    for p in ps:
        p.grad = rng.standard_normal(p.shape) * 3
    ts = [torch.tensor(p.data, requires_grad=True) for p in ps]
    for t, p in zip(ts, ps):
        t.grad = torch.tensor(p.grad.copy())
    n1 = clip_grad_norm(ps, 1.5)
    n2 = torch.nn.utils.clip_grad_norm_(ts, 1.5)
    assert n1 == pytest.approx(n2.item(), rel=1e-12)
    for t, p in zip(ts, ps):
        np.testing.assert_allclose(p.grad, t.grad.numpy(), rtol=1e-12)


def test_regression_records_mse_and_r2(rng):
    X = rng.standard_normal((200, 3)).astype(np.float32)
    y = (X @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.standard_normal(200)).astype(np.float32)
    for loss in ["mse", "mae", "huber"]:
        m = MLP([3, 16, 1], "tanh", seed=0, loss=loss)
        h = m.fit(X, y, epochs=60, optimizer="adam", lr=0.01, validation_split=0.2, verbose=False)
        assert {"mse", "r2", "val_mse", "val_r2"} <= set(h.history)
        assert h.history["val_r2"][-1] > 0.9, loss
        assert m.predict(X).shape == (200, 1)


def test_multilabel_with_binary_cross_entropy(rng):
    X = rng.standard_normal((300, 5)).astype(np.float32)
    Y = np.stack([X[:, 0] > 0, X[:, 1] + X[:, 2] > 0, X[:, 3] < 0.5], axis=1).astype(np.float32)
    m = MLP([5, 16, 3], seed=0, loss="binary_cross_entropy")
    m.fit(X, Y, epochs=60, optimizer="adam", lr=0.01, verbose=False)
    P = m.predict_proba(X)
    assert P.shape == (300, 3) and ((P >= 0) & (P <= 1)).all()
    assert (m.predict(X) == Y).mean() > 0.95


def test_sample_weights_and_class_weights_change_training(rng):
    X, y = _blobs(rng)
    w = np.where(y == 0, 5.0, 1.0)
    a = MLP([4, 8, 3], seed=0)
    a.fit(X, y, epochs=2, verbose=False)
    b = MLP([4, 8, 3], seed=0)
    b.fit(X, y, epochs=2, sample_weight=w, verbose=False)
    assert not np.allclose(a.get_weights()[0], b.get_weights()[0])
    # weight 0 on a row is the same as leaving it out when it is alone in its batch
    rows = [int(np.flatnonzero(y == 0)[0]), int(np.flatnonzero(y == 1)[0]), int(np.flatnonzero(y == 2)[0])]
    c = MLP([4, 8, 3], seed=0)
    c.fit(X[rows], y[rows], epochs=1, batch_size=1, shuffle=False, sample_weight=[1, 0, 1], verbose=False)
    d = MLP([4, 8, 3], seed=0)
    d.fit(X[rows[::2]], y[rows[::2]], epochs=1, batch_size=1, shuffle=False, verbose=False)
    for wc, wd in zip(c.get_weights(), d.get_weights()):
        np.testing.assert_allclose(wc, wd, rtol=1e-6)


def test_progress_bar_modes():
    X = np.random.default_rng(0).standard_normal((40, 4)).astype(np.float32)
    y = np.arange(40) % 3
    out = io.StringIO()
    MLP([4, 3], seed=0).fit(X, y, epochs=3, callbacks=[ProgressBar("bar", stream=out)], verbose=False)
    text = out.getvalue()
    assert "\r" in text and "ETA" in text and "Epoch 3/3" in text
    out = io.StringIO()  # not a terminal: auto mode prints lines, no carriage returns
    MLP([4, 3], seed=0).fit(X, y, epochs=3, callbacks=[ProgressBar("auto", stream=out)], verbose=False)
    assert "\r" not in out.getvalue() and out.getvalue().count("\n") == 3


def test_verbose_with_fewer_than_ten_epochs_does_not_divide_by_zero(capsys, rng):
    X, y = _blobs(rng, n=30)
    MLP([4, 3], seed=0).fit(X, y, epochs=3, verbose=True)
    assert "Epoch 3/3" in capsys.readouterr().out


def test_terminate_on_nan_callback():
    class Fake:
        stop_training = False
    cb = TerminateOnNaN()
    cb.set_model(Fake())
    cb.on_epoch_end(0, {"loss": float("nan")})
    assert cb.model.stop_training


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_digits_seed_recipe_reaches_95(digits, seed):
    # The seed's recipe, with inputs standardised on the training set (saved with the model).
    d = digits
    from mlpnumpy import MLPNumpy
    from mlpnumpy.datasets.preprocessing import Standardizer
    m = MLPNumpy([64, 128, 10], seed=seed)
    m.preprocessor = Standardizer().fit(d.X_train)
    m.fit(d.X_train, d.y_train, epochs=30, lr=0.1, batch_size=32, verbose=False)
    assert m.evaluate(d.X_test, d.y_test) >= 0.95


@pytest.mark.slow
def test_digits_adam_batchnorm_early_stopping_reaches_97(digits):
    d = digits
    m = MLP([64, 256, 128, 10], seed=0, batch_norm=True, dropout=0.1)
    es = EarlyStopping(monitor="val_loss", patience=8, restore_best_weights=True)
    h = m.fit(d.X_train, d.y_train, epochs=100, optimizer=Adam(lr=2e-3), batch_size=32,
              validation_split=0.15, callbacks=[es], verbose=False)
    acc = m.evaluate(d.X_test, d.y_test)
    assert acc >= 0.97, (acc, len(h))


def test_model_checkpoint_every_epoch_and_best_only(tmp_path, rng):
    from mlpnumpy.training.callbacks import ModelCheckpoint
    from mlpnumpy.io.model_files import load_checkpoint, load_model
    X, y = _blobs(rng)
    m = MLP([4, 8, 3], seed=0)
    m.fit(X, y, epochs=3, optimizer="adam", callbacks=[ModelCheckpoint(tmp_path / "ckpt-{epoch:02d}.npz")],
          verbose=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt-01.npz", "ckpt-02.npz", "ckpt-03.npz"]
    restored, state = load_checkpoint(tmp_path / "ckpt-03.npz")
    for a, b in zip(restored.get_weights(), m.get_weights()):
        assert np.array_equal(a, b)
    assert restored.optimizer.iterations == m.optimizer.iterations
    best = tmp_path / "best"
    best.mkdir()
    stamps = []
    cb = ModelCheckpoint(best / "best.npz", monitor="val_loss", save_best_only=True, include_optimizer=False)
    h = MLP([4, 8, 3], seed=0).fit(X, y, epochs=10, lr=3.0, validation_split=0.3, verbose=False,
                                   callbacks=[cb, LambdaCallback(on_epoch_end=lambda e, logs: stamps.append(
                                       (best / "best.npz").stat().st_mtime_ns))])
    losses = h.history["val_loss"]
    improved = [e == 0 or losses[e] < min(losses[:e]) for e in range(len(losses))]
    written = [e == 0 or stamps[e] != stamps[e - 1] for e in range(len(stamps))]
    assert written == improved and not all(improved)  # saved exactly when val_loss improved
    assert load_model(best / "best.npz").n_features_in == 4


def test_training_accuracy_is_the_accuracy_of_the_batches_outputs(rng):
    """With lr = 0 the weights never move, so the epoch's accuracy must equal predict's on X."""
    X, y = rng.standard_normal((300, 6)).astype(np.float32), rng.integers(0, 3, 300)
    for target in (y, np.eye(3, dtype=np.float32)[y]):  # labels (the loss's argmax) and one-hot rows
        model = MLP([6, 8, 3], seed=1)
        hist = model.fit(X, target, epochs=1, batch_size=64, optimizer=SGD(lr=0.0), verbose=False).history
        assert hist["accuracy"][0] == np.mean(model.predict(X) == y)
