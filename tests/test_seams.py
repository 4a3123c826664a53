"""The seams between modules (issue 14): public methods instead of private reaches, one way of
validating arguments, one training driver."""
import numpy as np
import pytest

from mlpnumpy import MLP
from mlpnumpy.callbacks import EarlyStopping, ModelCheckpoint, MonitorCallback
from mlpnumpy.errors import InvalidArgumentError, check_number
from mlpnumpy.optimizers import OPTIMIZERS


def test_checkpoint_and_early_stopping_share_one_improvement_test(tmp_path):
    es = EarlyStopping(monitor="val_accuracy", min_delta=0.1)
    ck = ModelCheckpoint(tmp_path / "m.npz", monitor="val_loss", save_best_only=True)
    assert isinstance(es, MonitorCallback) and isinstance(ck, MonitorCallback)
    assert not any(isinstance(v, EarlyStopping) for v in vars(ck).values())  # no private copy inside
    assert es.sign == 1 and ck.sign == -1
    assert es.is_improvement(0.75, 0.6) and not es.is_improvement(0.65, 0.6)  # min_delta counts
    assert ck.is_improvement(0.4, 0.5) and not ck.is_improvement(0.5, 0.5)


def test_save_best_only_writes_only_on_improvement(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    model = MLP([3, 4, 2], seed=0)
    written = []

    class Spy(ModelCheckpoint):
        def on_epoch_end(self, epoch, logs=None):
            before = self.best_epoch
            super().on_epoch_end(epoch, logs)
            if self.best_epoch != before:
                written.append((epoch, logs["loss"]))

    model.fit(X, y, epochs=6, lr=0.5, callbacks=[Spy(tmp_path / "m-{epoch}.npz", monitor="loss",
                                                    save_best_only=True)], verbose=0)
    losses = model.history.history["loss"]
    best, expect = np.inf, []
    for i, v in enumerate(losses):
        if v < best:
            best = v
            expect.append((i, v))
    assert written == expect
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"m-{e + 1}.npz" for e, _ in expect)


@pytest.mark.parametrize("kw, fragment", [({"patience": -1}, "patience=-1"), ({"patience": 1.5}, "patience=1.5"),
                                          ({"min_delta": -0.1}, "min_delta=-0.1"),
                                          ({"min_delta": float("nan")}, "min_delta=nan"),
                                          ({"mode": "up"}, "mode='up' is not one of: auto, min, max"),
                                          ({"monitor": 3}, "monitor=3")])
def test_monitor_arguments_are_checked_by_the_shared_checks(kw, fragment):
    with pytest.raises(InvalidArgumentError, match=fragment.replace("(", r"\(").replace("[", r"\[")):
        EarlyStopping(**kw)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_optimizer_get_config_rebuilds_it(name):
    opt = OPTIMIZERS[name](lr=0.0123)
    cfg = opt.get_config()
    assert cfg["lr"] == 0.0123
    again = type(opt)(**cfg)
    assert again.get_config() == cfg
    assert repr(again) == repr(opt)


def test_check_number_names_argument_value_and_range():
    assert check_number("eps", 1e-8) == 1e-8
    with pytest.raises(InvalidArgumentError, match=r"^Invalid epsilon value: eps=-1; expected a finite number >= 0$"):
        check_number("eps", -1, label="epsilon value")
    with pytest.raises(InvalidArgumentError, match=r"^betas\[0\]=1.0; expected a number in \[0, 1\)$"):
        check_number("betas[0]", 1.0, 0.0, 1.0)
    with pytest.raises(InvalidArgumentError, match="lr=True"):
        check_number("lr", True)


def test_tools_read_layers_through_public_methods():
    rng = np.random.default_rng(1)
    model = MLP([3, 5, 2], seed=0)
    X = rng.normal(size=(4, 3)).astype(np.float32)
    out, hidden = model.forward(X, training=True, return_hidden=True)
    first = model.layers[0]
    np.testing.assert_array_equal(first.last_input(), X)
    np.testing.assert_allclose(first.last_pre_activation(), X @ first.W + first.b, rtol=1e-6)
    np.testing.assert_array_equal(hidden[0]["z"], first.last_pre_activation())
