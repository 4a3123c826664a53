"""The training recipes (issue 21): what ``--recipe`` resolves to, fast regression checks of the default
recipes on small subsets (digits embedded, Fashion-MNIST where its files are installed), and
``--augment shift`` and ``--input-dropout``. Nothing here is timed."""
from pathlib import Path

import numpy as np
import pytest

from mlpnumpy.cli import commands as cli

from mlpnumpy.cli import config
from mlpnumpy.training.augment import RandomShift, shift_images
from mlpnumpy.errors import InvalidArgumentError

DEFAULT_FLOOR = 0.82  # measured 0.847 (and 0.8565 for the fast recipe) with 4 epochs on the subset below
FASHION = Path("/usr/share/datasets/fashion-mnist")


# ------------------------------------------------------------------------------------------ shifts
def _shift_by_hand(img, dy, dx):
    rows, cols = img.shape
    out = np.zeros_like(img)
    for r in range(rows):
        for c in range(cols):
            if 0 <= r - dy < rows and 0 <= c - dx < cols:
                out[r, c] = img[r - dy, c - dx]
    return out


def test_shift_images_moves_each_image_by_its_own_offset_with_zeros_moved_in():
    img = np.arange(1, 13, dtype=np.float32).reshape(1, 3, 4)
    right = shift_images(img, np.array([0]), np.array([1]))[0]
    np.testing.assert_array_equal(right, [[0, 1, 2, 3], [0, 5, 6, 7], [0, 9, 10, 11]])
    up_left = shift_images(img, np.array([-1]), np.array([-2]))[0]
    np.testing.assert_array_equal(up_left, [[7, 8, 0, 0], [11, 12, 0, 0], [0, 0, 0, 0]])
    rng = np.random.default_rng(0)
    imgs = rng.random((40, 5, 6)).astype(np.float32)
    dy, dx = rng.integers(-3, 4, 40), rng.integers(-3, 4, 40)
    got = shift_images(imgs, dy, dx)
    for i in range(40):
        np.testing.assert_array_equal(got[i], _shift_by_hand(imgs[i], dy[i], dx[i]))
    assert got.dtype == np.float32


def test_shift_images_refuses_bad_offsets_and_an_aliased_out():
    imgs = np.zeros((3, 4, 4), np.float32)
    with pytest.raises(InvalidArgumentError, match="one offset per image"):
        shift_images(imgs, np.zeros(2, int), np.zeros(3, int))
    with pytest.raises(InvalidArgumentError, match="shares memory"):
        shift_images(imgs, np.zeros(3, int), np.zeros(3, int), out=imgs)


class _Model:
    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)


def test_random_shift_writes_shifted_originals_in_place_from_the_model_generator_and_restores_them():
    rng = np.random.default_rng(1)
    X = rng.random((50, 16)).astype(np.float32)
    X0 = X.copy()
    runs = []
    for _ in range(2):
        X[...] = X0
        cb = RandomShift(X, (4, 4), max_shift=1)
        cb.set_model(_Model(7))
        cb.on_epoch_begin(0)
        first = X.copy()
        cb.on_epoch_begin(1)
        runs.append((first, X.copy()))
        cb.on_train_end()
        np.testing.assert_array_equal(X, X0)  # the caller's array as given
    np.testing.assert_array_equal(runs[0][0], runs[1][0])  # the same seed: the same shifts
    first, second = runs[0]
    assert not np.array_equal(first, X0) and not np.array_equal(first, second)  # a new draw each epoch
    offsets = [(a, b) for a in (-1, 0, 1) for b in (-1, 0, 1)]
    for i in range(50):  # every row is its original moved by one of the allowed offsets
        img = X0[i].reshape(4, 4)
        assert any(np.array_equal(first[i].reshape(4, 4), _shift_by_hand(img, a, b)) for a, b in offsets)


def test_random_shift_refuses_what_fit_would_copy_and_bad_sizes():
    X = np.zeros((10, 16), np.float32)
    with pytest.raises(InvalidArgumentError, match="C-contiguous"):
        RandomShift(np.asfortranarray(X), (4, 4))
    with pytest.raises(InvalidArgumentError, match=r"expected \(n, 9\)"):
        RandomShift(X, (3, 3))
    with pytest.raises(InvalidArgumentError, match="max_shift=4"):
        RandomShift(X, (4, 4), max_shift=4)


def test_augment_shift_trains_on_shifted_images_and_only_for_image_data(tmp_path, capsys):
    base = ["train", "--epochs", "2", "--quiet", "--threads", "1"]
    assert cli.main([*base, "--out", str(tmp_path / "plain")]) == 0
    assert cli.main([*base, "--augment", "shift", "--out", str(tmp_path / "shift")]) == 0
    import json
    plain = json.loads((tmp_path / "plain" / "metrics.json").read_text())
    shifted = json.loads((tmp_path / "shift" / "metrics.json").read_text())
    assert shifted["config"]["augment"] == "shift" and plain["config"]["augment"] == "none"
    # the same seed and batches, different images: the training losses differ from the first epoch on
    assert plain["history"]["loss"][0] != shifted["history"]["loss"][0]
    capsys.readouterr()
    assert cli.main(["train", "--data", "spiral", "--augment", "shift", "--out", str(tmp_path / "t")]) == 2
    assert "--augment shift moves images" in capsys.readouterr().err
    assert not (tmp_path / "t").exists()  # refused before anything was written
    assert cli.main(["train", "--augment", "flip", "--out", str(tmp_path / "f")]) == 2
    assert "--augment='flip' is not one of: none, shift" in capsys.readouterr().err


# ------------------------------------------------------------------------------------ input dropout
def _fitted_standardizer(X):
    from mlpnumpy.datasets.preprocessing import Standardizer
    return Standardizer().fit(X)


class _PreModel(_Model):
    def __init__(self, seed, preprocessor=None):
        super().__init__(seed)
        self.preprocessor = preprocessor


@pytest.mark.parametrize("standardize", [True, False])
def test_input_dropout_is_inverted_dropout_on_the_model_input_drawn_from_the_model_generator(standardize):
    from mlpnumpy.training.input_dropout import InputDropout
    rng = np.random.default_rng(3)
    X = (rng.random((400, 30)) * 5 + 2).astype(np.float32)
    X0 = X.copy()
    pre = _fitted_standardizer(X) if standardize else None
    to_input = (lambda A: pre.transform(A)) if standardize else (lambda A: A)
    p = 0.25
    cb = InputDropout(X, p)
    cb.set_model(_PreModel(11, pre))
    cb.on_train_begin()
    seen = []
    for epoch in range(2):
        cb.on_epoch_begin(epoch)
        seen.append(X.copy())
    expected_rng = np.random.default_rng(11)  # the same draws, made by hand
    for got in seen:
        keep = expected_rng.random(X.shape, dtype=np.float32) >= np.float32(p)
        # after the preprocessor: dropped entries are exactly 0, kept ones scaled by 1 / (1 - p)
        np.testing.assert_allclose(to_input(got), keep * to_input(X0) / (1 - p), rtol=1e-5, atol=1e-5)
        assert abs((~keep).mean() - p) < 0.01
    assert not np.array_equal(seen[0], seen[1])  # a new mask each epoch
    cb.on_train_end()
    np.testing.assert_array_equal(X, X0)  # the caller's array as given


def test_input_dropout_after_another_augmentation_masks_its_rows_in_place():
    from mlpnumpy.training.input_dropout import InputDropout
    X = np.arange(1, 1 + 16 * 20, dtype=np.float32).reshape(20, 16)
    cb = InputDropout(X, 0.5, fresh=True)
    assert cb.original is None  # no copy: the earlier callback rewrites X every epoch
    cb.set_model(_PreModel(5))
    refreshed = np.full_like(X, 3.0)  # what a RandomShift would have written this epoch
    X[...] = refreshed
    cb.on_epoch_begin(0)
    assert set(np.unique(X)) == {0.0, 6.0}  # the refreshed rows, masked and scaled, not the first ones


def test_input_dropout_trains_as_fit_on_the_dropped_rows_and_leaves_a_plain_model():
    """One epoch with InputDropout gives the weights of a fit on the rows it wrote, with the generator
    where the mask left it: fit reads its batches from the rewritten array, and nothing else changes."""
    from mlpnumpy.datasets import load
    from mlpnumpy.nn.layers import Dropout
    from mlpnumpy.nn.model import MLP
    from mlpnumpy.training.callbacks import Callback
    from mlpnumpy.training.input_dropout import InputDropout
    d = load("digits")
    X, y = np.ascontiguousarray(d.X_train[:300], np.float32), d.y_train[:300]

    def model():
        m = MLP([64, 32, 10], seed=4)
        m.preprocessor = _fitted_standardizer(X)
        return m
    a = model()
    state = a.rng.bit_generator.state
    cb = InputDropout(X, 0.2)
    captured = {}

    class Grab(Callback):  # after InputDropout: the rows fit will read
        def on_epoch_begin(self, epoch, logs=None):
            captured["X"], captured["state"] = X.copy(), self.model.rng.bit_generator.state
    a.fit(X, y, epochs=1, batch_size=32, optimizer="adam", callbacks=[cb, Grab()], verbose=0)
    np.testing.assert_array_equal(X, cb.original)  # restored after training
    b = model()
    b.rng.bit_generator.state = state
    keep = b.rng.random(X.shape, dtype=np.float32) >= np.float32(0.2)  # InputDropout's draw, by hand
    assert b.rng.bit_generator.state == captured["state"]
    Z = b.preprocessor.transform(X)
    np.testing.assert_allclose(b.preprocessor.transform(captured["X"]), keep * Z / 0.8, rtol=1e-5, atol=1e-5)
    b.fit(captured["X"], y, epochs=1, batch_size=32, optimizer="adam", verbose=0)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    assert not any(isinstance(l, Dropout) for l in a.layers)  # a plain MLP: no dropout layer was added


def test_input_dropout_refuses_what_it_cannot_do(tmp_path, capsys):
    from mlpnumpy.training.input_dropout import InputDropout, input_dropout_center
    X = np.zeros((10, 4), np.float32)
    with pytest.raises(InvalidArgumentError, match="C-contiguous"):
        InputDropout(np.asfortranarray(X), 0.1)
    for p in (0, 1, 1.5, True):
        with pytest.raises(InvalidArgumentError, match="drop probability"):
            InputDropout(X, p)
    with pytest.raises(InvalidArgumentError, match="float dtype"):
        InputDropout(np.zeros((3, 4), np.int64), 0.1)
    with pytest.raises(InvalidArgumentError, match="has 4 features"):
        input_dropout_center(_fitted_standardizer(np.ones((5, 4))), 3, np.float32)
    assert cli.main(["train", "--input-dropout", "1", "--out", str(tmp_path / "x")]) == 2
    assert "--input-dropout=1.0 is out of range" in capsys.readouterr().err
    csv = tmp_path / "t.csv"
    csv.write_text("a,b,label\n" + "".join(f"{i % 3},{i * 0.1},{i % 2}\n" for i in range(40)))
    assert cli.main(["train", "--data", str(csv), "--categorical", "a", "--input-dropout", "0.1",
                     "--out", str(tmp_path / "c")]) == 2
    assert "--input-dropout would drop and rescale the integer codes" in capsys.readouterr().err


def test_train_input_dropout_changes_the_training_rows_only(tmp_path):
    base = ["train", "--epochs", "2", "--quiet", "--threads", "1"]
    assert cli.main([*base, "--out", str(tmp_path / "plain")]) == 0
    assert cli.main([*base, "--input-dropout", "0.2", "--out", str(tmp_path / "drop")]) == 0
    import json
    plain = json.loads((tmp_path / "plain" / "metrics.json").read_text())
    dropped = json.loads((tmp_path / "drop" / "metrics.json").read_text())
    assert dropped["config"]["input_dropout"] == 0.2 and plain["config"]["input_dropout"] == 0.0
    assert plain["history"]["loss"][0] != dropped["history"]["loss"][0]  # other rows from the first epoch
    assert plain["n_params"] == dropped["n_params"]  # the same plain MLP


def test_a_sweep_trial_with_input_dropout_reports_what_train_reports(tmp_path):
    """The sweep's trials train as ``mlpnumpy train`` does, input dropout included: the same validation
    accuracy after every epoch (not the run without it)."""
    optuna = pytest.importorskip("optuna", reason="the sweep extra is not installed")
    import json
    from mlpnumpy.sweep import objective
    opts = {"data": "digits", "epochs": 3, "hidden": [32], "input_dropout": 0.3, "threads": 1}
    task = {"number": 0, "attempt": 1, "monitor": "val_accuracy", "direction": "maximize", "study_name": "u",
            "pruner": optuna.pruners.NopPruner(), "snapshot": [], "topic": "t"}
    trial = objective.run_trial({**task, "cfg": config.resolve(opts)})
    plain = objective.run_trial({**task, "cfg": config.resolve({**opts, "input_dropout": 0.0})})
    assert trial["state"] == plain["state"] == "complete"
    assert cli.main(["train", "--data", "digits", "--epochs", "3", "--hidden", "32", "--input-dropout", "0.3",
                     "--threads", "1", "--quiet", "--out", str(tmp_path / "run")]) == 0
    run = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert trial["history"]["val_accuracy"] == run["history"]["val_accuracy"]
    assert trial["history"]["loss"] == run["history"]["loss"] != plain["history"]["loss"]


# ------------------------------------------------------------------------------------------ recipes
def test_recipe_names_resolve_as_documented(capsys):
    fm = config.resolve({"data": "fashion-mnist"})
    assert fm["recipe"] == "default"
    assert {k: fm[k] for k in config.DATA_DEFAULTS["fashion-mnist"]} == config.DATA_DEFAULTS["fashion-mnist"]
    fast = config.resolve({"data": "fashion-mnist", "recipe": "fast"})
    # the earlier default, kept reachable
    assert (fast["hidden"], fast["epochs"], fast["batch_size"], fast["lr"], fast["schedule"],
            fast["label_smoothing"], fast["optimizer"], fast["dropout"], fast["weight_decay"]) == \
        ([256, 128], 20, 128, 2e-3, "onecycle", 0.1, "adam", 0.0, 0.0)
    best = config.resolve({"data": "FASHION-MNIST", "recipe": "BEST"})
    assert best["recipe"] == "best"
    assert {k: best[k] for k in config.RECIPES["fashion-mnist"]["best"]} == config.RECIPES["fashion-mnist"]["best"]
    # flags override the recipe, and a recipe named in a --config file is used
    assert config.resolve({"data": "fashion-mnist", "recipe": "fast", "epochs": 3})["epochs"] == 3
    for name in ("fast", "best"):
        assert config.resolve({"data": "mnist", "recipe": name})["hidden"] == \
            config.RECIPES["fashion-mnist"][name]["hidden"]
    with pytest.raises(InvalidArgumentError, match="--recipe='best' is not one of: default"):
        config.resolve({"data": "digits", "recipe": "best"})
    assert cli.main(["train", "--recipe", "nope", "--data", "fashion-mnist"]) == 2
    assert "--recipe='nope' is not one of: default, fast, best" in capsys.readouterr().err


def test_a_recipe_given_in_a_config_file(tmp_path):
    f = tmp_path / "r.toml"
    f.write_text('data = "fashion-mnist"\nrecipe = "fast"\n')
    cfg = config.resolve({}, f)
    assert cfg["recipe"] == "fast" and cfg["hidden"] == [256, 128]


# ------------------------------------------------------------------------------- regression checks
def _train_recipe(cfg, X, y, Xte, yte, epochs):
    """Train the resolved configuration ``cfg`` as ``mlpnumpy train`` does (model, optimizer, schedule)
    for ``epochs`` epochs; return the test accuracy."""
    from mlpnumpy.cli.run import build_optimizer, build_schedule
    from mlpnumpy.nn.model import MLP
    from mlpnumpy.datasets.preprocessing import Standardizer
    cfg = {**cfg, "epochs": epochs}
    model = MLP([X.shape[1], *cfg["hidden"], 10], cfg["activation"], seed=cfg["seed"], dropout=cfg["dropout"],
                batch_norm=cfg["batch_norm"],
                loss={"name": "cross_entropy", "label_smoothing": cfg["label_smoothing"]})
    if cfg["standardize"]:
        model.preprocessor = Standardizer().fit(X)
    steps = -(-len(X) // cfg["batch_size"])
    model.fit(X, y, epochs=epochs, batch_size=cfg["batch_size"], optimizer=build_optimizer(cfg),
              lr_schedule=build_schedule(cfg, steps), verbose=0)
    return float(np.mean(model.predict(Xte) == yte))


def test_the_digits_default_recipe_reaches_its_accuracy():
    """The whole default recipe on the embedded digits (about 3 s): 0.9916 test accuracy for seed 0
    when measured (issue 21: >= 0.98); asserted with a margin of a few images for other BLAS kernels."""
    from mlpnumpy.datasets import load
    d = load("digits")
    cfg = config.resolve({"data": "digits"})
    from mlpnumpy.datasets.splits import train_val_split
    tr, _ = train_val_split(d.y_train, cfg["validation_split"], np.random.default_rng([0, 1]), stratify=True)
    acc = _train_recipe(cfg, d.X_train[tr], d.y_train[tr], d.X_test, d.y_test, cfg["epochs"])
    assert acc >= 0.975, acc


@pytest.mark.skipif(not FASHION.is_dir(), reason=f"{FASHION} not found; install Debian's fashion-mnist "
                                                  "package (or the files) to run this test")
def test_the_fashion_mnist_recipes_on_a_subset():
    """A few epochs of the default and the fast recipe on 6,000 training images: both learn, and the
    default's accuracy on 2,000 test images is not below a floor set under what was measured."""
    from mlpnumpy.datasets import load
    ds = load("fashion-mnist", FASHION, download=False)
    X, y, Xte, yte = ds.X_train[:6000], ds.y_train[:6000], ds.X_test[:2000], ds.y_test[:2000]
    default = _train_recipe(config.resolve({"data": "fashion-mnist"}), X, y, Xte, yte, epochs=4)
    fast = _train_recipe(config.resolve({"data": "fashion-mnist", "recipe": "fast"}), X, y, Xte, yte, epochs=4)
    assert default >= DEFAULT_FLOOR, default
    assert fast >= 0.83, fast
