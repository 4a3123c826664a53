"""The training recipes (issue 21): what ``--recipe`` resolves to, fast regression checks of the default
recipes on small subsets (digits embedded, Fashion-MNIST where its files are installed), and
``--augment shift``. Nothing here is timed."""
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
