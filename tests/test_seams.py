"""The seams between modules (issue 14): public methods instead of private reaches, one way of
validating arguments, one training driver."""
import numpy as np
import pytest

from mlpnumpy import MLP
from mlpnumpy.training.callbacks import EarlyStopping, ModelCheckpoint, MonitorCallback
from mlpnumpy.errors import InvalidArgumentError, check_number
from mlpnumpy.optim.optimizers import OPTIMIZERS


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


# ---------------------------------------------------------------- one training driver
def _small_data():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(60, 4))
    return X, (X[:, 0] + X[:, 1] > 0).astype(int)


def test_fit_and_the_estimators_run_the_same_driver(monkeypatch):
    pytest.importorskip("sklearn")
    from mlpnumpy.training import driver
    from mlpnumpy.sklearn import MLPClassifier
    runs = []
    real = driver.TrainingDriver.run

    def spy(self, epochs, run_epoch, **kw):
        runs.append((type(self.model).__name__, epochs))
        return real(self, epochs, run_epoch, **kw)

    monkeypatch.setattr(driver.TrainingDriver, "run", spy)
    X, y = _small_data()
    MLP([4, 5, 2], seed=0).fit(X.astype(np.float32), y, epochs=2, verbose=0)
    with pytest.warns(Warning):  # max_iter reached
        MLPClassifier((5,), max_iter=3, random_state=0).fit(X, y)
    assert runs == [("MLP", 2), ("Sequential", 3)]


@pytest.mark.parametrize("kind", ["fit", "sklearn"])
def test_per_batch_hooks_and_schedules_behave_alike(kind):
    """Both engines call a per-batch hook once per batch, step a per-step schedule once per batch and
    log the rate each epoch started with."""
    from mlpnumpy.training.callbacks import Callback
    from mlpnumpy.optim.schedules import StepLR
    X, y = _small_data()
    batches, rates = [], []

    class Watch(Callback):
        def on_batch_end(self, batch, logs=None):
            batches.append(batch)

        def on_epoch_end(self, epoch, logs=None):
            rates.append(logs["lr"])

    schedule = StepLR(1, gamma=0.5)
    if kind == "fit":
        MLP([4, 3, 2], seed=0).fit(X.astype(np.float32), y, epochs=3, batch_size=20, lr=0.1, optimizer="sgd",
                                    lr_schedule=schedule, callbacks=[Watch()], verbose=0)
    else:
        pytest.importorskip("sklearn")
        from mlpnumpy.sklearn import MLPClassifier
        with pytest.warns(Warning):
            MLPClassifier((3,), solver="sgd", batch_size=20, max_iter=3, learning_rate_init=0.1, lr_schedule=schedule,
                          callbacks=[Watch()], random_state=0).fit(X, y)
    assert batches == [0, 1, 2] * 3
    np.testing.assert_allclose(rates, [0.1, 0.05, 0.025])


def test_estimator_ctrl_c_warns_and_finishes_as_scikit_learn_does():
    pytest.importorskip("sklearn")
    from mlpnumpy.training.callbacks import Callback
    from mlpnumpy.sklearn import MLPClassifier
    X, y = _small_data()
    ended, weights = [], []

    class CtrlC(Callback):
        def on_epoch_end(self, epoch, logs=None):
            weights.append(self.model.layers[0].W.copy())
            if epoch == 2:
                self.model.layers[0].W += 10.0  # spoiled after the best was kept: finish must undo it
                raise KeyboardInterrupt

        def on_train_end(self, logs=None):
            ended.append(True)

    est = MLPClassifier((5,), max_iter=10, random_state=0, callbacks=[CtrlC()], restore_best_weights=True)
    with pytest.warns(UserWarning, match="Training interrupted by user"):
        est.fit(X, y)
    assert ended == [True] and est.n_iter_ == 3  # the third epoch's end was interrupted
    np.testing.assert_array_equal(est.coefs_[0], weights[int(np.argmin(est.loss_curve_))])


# ---------------------------------------------------------------- layers that describe themselves
def test_a_new_layer_type_is_saved_and_loaded_without_touching_io(tmp_path, monkeypatch):
    """The layer class declares its config and array shapes; files ask it (LAYER_TYPES)."""
    from mlpnumpy import layers
    from mlpnumpy.errors import FileFormatError
    from mlpnumpy.io.model_files import load_model, save_model
    from mlpnumpy.nn.model import Sequential
    from mlpnumpy.nn.parameter import Parameter

    class Scale(layers.Layer):
        """y = x * s, one learned factor per feature."""

        def __init__(self, num_features, *, dtype=np.float32):
            self.num_features = num_features
            self.s = Parameter(np.ones(num_features, dtype), "s")
            self._cache = None

        def parameters(self):
            return [self.s]

        def forward(self, x, training=False):
            self._cache = x
            return x * self.s.data

        def backward(self, grad_out):
            self.s.grad = (grad_out * self._cache).sum(axis=0)
            return grad_out * self.s.data

        def get_config(self):
            return {"type": "Scale", "num_features": self.num_features}

        @classmethod
        def from_config(cls, cfg, dtype=np.float32):
            return cls(**cfg, dtype=dtype)

        @classmethod
        def config_shapes(cls, cfg, size, inner):
            return {"s": (size(cfg.get("num_features"), "num_features"),)}

    monkeypatch.setitem(layers.LAYER_TYPES, "Scale", Scale)
    model = Sequential([layers.Dense(3, 4, "relu"), Scale(4), layers.Dense(4, 2)], loss="cross_entropy", seed=0)
    model.layers[1].s.data[...] = [1.0, 2.0, 3.0, 4.0]
    X = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    save_model(model, tmp_path / "m.npz")
    again = load_model(tmp_path / "m.npz")
    assert isinstance(again.layers[1], Scale)
    np.testing.assert_array_equal(again.layers[1].s.data, [1.0, 2.0, 3.0, 4.0])
    np.testing.assert_array_equal(again.predict_proba(X), model.predict_proba(X))
    # the shapes the class declares are checked against the file before anything is built
    model.layers[1].num_features = 5
    save_model(model, tmp_path / "bad.npz")
    with pytest.raises(FileFormatError, match="layer1.s"):
        load_model(tmp_path / "bad.npz")


def test_one_builder_makes_the_layers_of_mlp_and_of_the_estimators():
    pytest.importorskip("sklearn")
    from mlpnumpy.sklearn import MLPClassifier
    X, y = _small_data()
    mlp = MLP([4, 5, 5, 2], batch_norm=True, dropout=0.1, seed=0)
    with pytest.warns(Warning):
        est = MLPClassifier((5, 5), batch_norm=True, dropout=0.1, max_iter=1, random_state=0).fit(X, y)
    names = [type(l).__name__ for l in mlp.layers]
    assert names == ["Dense", "BatchNorm1d", "ActivationLayer", "Dropout"] * 2 + ["Dense"]
    assert [type(l).__name__ for l in est.model_.layers] == names
    # what differs is declared: scikit-learn's parameter list keeps the bias before the norm
    assert mlp.layers[0].bias is None and est.model_.layers[0].bias is not None
    assert est._hidden_ends == [2, 6]


# ---------------------------------------------------------------- imports
from _imports import imports_of  # noqa: E402 - the import graph, shared with tests/test_layout.py


@pytest.mark.parametrize("module, forbidden", [
    # the callbacks -> io -> model -> training -> callbacks cycle of issue 14
    ("training.callbacks", {"io.model_files", "io.writer", "nn.model", "training.fitting", "training.driver", "integrations"}),
    ("training.driver", {"io.model_files", "io.writer", "nn.model", "training.fitting", "integrations"}),
    ("nn.layers", {"nn.blocks", "nn.embedding", "nn.model", "io"}),     # blocks register themselves
    ("io.writer", {"nn"}),                                               # model.save imports the writer
])
def test_the_training_loop_modules_import_no_files_or_models(module, forbidden):
    used = imports_of(f"mlpnumpy.{module}")
    assert not {m for m in used for f in forbidden if m == f"mlpnumpy.{f}" or m.startswith(f"mlpnumpy.{f}.")}


def test_no_module_imports_the_private_names_issue_14_named():
    import re
    from pathlib import Path

    import mlpnumpy
    root = Path(mlpnumpy.__file__).parent
    text = {p: p.read_text(encoding="utf-8") for p in root.rglob("*.py") if "_kernels" not in p.parts}
    for pattern in (r"\._es\b", r"\._better\(", r"\b(layer|first)\._cache\b", r"\._hyperparameters\(",
                    r"import _save\b", r"import _check_dtype\b", r"\._join\(", r"\._prepare_X\(",
                    r"\._init_state\(", r"\._apply_arrays\(", r"\._device_transform\(", r"_placed_by_user",
                    r"import _add_train_options\b", r"import _Parser\b", r"\._flag\(", r"import _best\b",
                    r"_dense_layers\b", r"_build_optimizer\b"):
        found = [str(p.relative_to(root)) for p, t in text.items() if re.search(pattern, t)
                 and not (p.name == "model.py" and pattern == "_placed_by_user")]  # the model's own flag
        assert not found, (pattern, found)


def test_csv_logger_goes_on_after_earlier_epochs(tmp_path):
    from mlpnumpy.training.callbacks import CSVLogger
    X, y = _small_data()
    path = tmp_path / "history.csv"
    before = {"loss": [0.9, 0.8], "accuracy": [0.5, 0.6], "lr": [0.1, None]}
    model = MLP([4, 3, 2], seed=0)
    model.fit(X.astype(np.float32), y, epochs=2, lr=0.1, callbacks=[CSVLogger(path, before=before, first_epoch=1)],
              verbose=0)
    lines = path.read_text().splitlines()
    assert lines[0] == "epoch,loss,accuracy,lr,seconds"
    assert lines[1:3] == ["1,0.9,0.5,0.1,", "2,0.8,0.6,,"]
    h = model.history.history
    assert lines[3] == ",".join(["3", repr(h["loss"][0]), repr(h["accuracy"][0]), repr(h["lr"][0]),
                                 repr(h["seconds"][0])])
    assert len(lines) == 5
    # plain use: Keras's numbering from 0, a file only once an epoch ends
    plain = tmp_path / "plain.csv"
    model.fit(X.astype(np.float32), y, epochs=1, callbacks=[CSVLogger(plain)], verbose=0)
    assert plain.read_text().splitlines()[1].startswith("0,")


# ---------------------------------------------------------------- the run, apart from the command line
def test_the_run_is_its_own_module_that_cli_and_demo_call():
    from mlpnumpy.cli import commands, run
    assert commands.run_train is run.run_train
    demo_uses = imports_of("mlpnumpy.cli.demo")
    assert "mlpnumpy.cli.run" in demo_uses and "mlpnumpy.cli.commands" not in demo_uses  # no cycle
    assert not {"mlpnumpy.cli.commands", "mlpnumpy.cli.demo"} & imports_of("mlpnumpy.cli.run")


def test_history_csv_is_written_by_csv_logger_only(tmp_path, monkeypatch):
    from mlpnumpy.cli import run
    from mlpnumpy.training.callbacks import CSVLogger
    writes = []
    real = CSVLogger.write

    def spy(filename, rows, separator=",", first_epoch=0):
        writes.append((str(filename), len(rows), first_epoch))
        return real(filename, rows, separator, first_epoch)

    monkeypatch.setattr(CSVLogger, "write", staticmethod(spy))
    m = run.run_train({"data": "digits", "hidden": [8], "epochs": 2, "out": str(tmp_path / "r"), "quiet": True,
                       "validation_split": 0.1})
    csv = tmp_path / "r" / "history.csv"
    assert {w[0] for w in writes} == {str(csv)} and {w[2] for w in writes} == {1}
    assert [w[1] for w in writes] == [0, 1, 2, 2]  # train begin, two epochs, the folder's last write
    lines = csv.read_text().splitlines()
    assert lines[0].split(",")[:2] == ["epoch", "loss"] and [l.split(",")[0] for l in lines[1:]] == ["1", "2"]
    assert [float(l.split(",")[1]) for l in lines[1:]] == m["history"]["loss"]
    import inspect

    from mlpnumpy.cli import commands as cli
    assert "_write_history_csv" not in inspect.getsource(cli) + inspect.getsource(run)  # no second writer
