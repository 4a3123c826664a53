"""Model files and checkpoints from strangers (issue 19): nothing that can be checked is trusted.

Each file here is a valid archive of valid JSON and arrays whose *content* lies: NaN weights, layer sizes
that do not chain, metadata that would make ``predict`` allocate gigabytes, optimizer state of another
optimizer. Each must be refused at load with a :class:`FileFormatError` naming the file and the field.
"""
import json
import os
import zipfile

import numpy as np
import pytest

from mlpnumpy import MLP, cli, io
from mlpnumpy.errors import FileFormatError, InvalidArgumentError
from mlpnumpy.nn.layers import BatchNorm1d, Dense
from mlpnumpy.nn.model import Sequential


def _read(path):
    """``(meta, {key: array})`` of a model file."""
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(arrays.pop("__mlpnumpy__").tobytes())
    return meta, arrays


def _write(path, meta, arrays):
    blob = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    np.savez(path, __mlpnumpy__=blob, **arrays)


def _edit(src, dst, edit):
    meta, arrays = _read(src)
    edit(meta, arrays)
    _write(dst, meta, arrays)
    return dst


@pytest.fixture
def model_file(tmp_path):
    m = MLP([4, 5, 3], seed=0, batch_norm=True)
    m.class_names = ["a", "b", "c"]
    m.metadata = {"image_shape": [2, 2], "pixel_max": 1.0}
    path = tmp_path / "m.npz"
    m.save(path)
    return path


def _refused(path, *match):
    with pytest.raises(FileFormatError) as info:
        io.load_model(path)
    msg = str(info.value)
    assert str(path) in msg
    for m in match:
        assert m in msg, msg
    return msg


# ------------------------------------------------------------------------------------ parameters
@pytest.mark.parametrize("key,value,field", [
    ("layer0.W", np.nan, "layer0.W"), ("layer3.b", np.inf, "layer3.b"), ("layer1.gamma", -np.inf, "layer1.gamma"),
    ("layer1.running_mean", np.nan, "layer1.running_mean")])
def test_non_finite_parameters_are_refused(tmp_path, model_file, key, value, field):
    def edit(meta, arrays):
        arrays[key] = arrays[key].copy()
        arrays[key].reshape(-1)[0] = value
    _refused(_edit(model_file, tmp_path / "bad.npz", edit), field, "finite")


def test_negative_running_variance_is_refused(tmp_path, model_file):
    def edit(meta, arrays):
        arrays["layer1.running_var"] = arrays["layer1.running_var"].copy()
        arrays["layer1.running_var"][2] = -1.0
    _refused(_edit(model_file, tmp_path / "bad.npz", edit), "layer1.running_var", "negative", ">= 0")


def test_elu_alpha_beyond_float32_is_refused(tmp_path):
    m = MLP([4, 5, 3], "elu", seed=0)
    m.save(tmp_path / "m.npz")

    def edit(meta, arrays):
        meta["config"]["layers"][0]["activation"]["alpha"] = 1e308
    msg = _refused(_edit(tmp_path / "m.npz", tmp_path / "bad.npz", edit), "alpha=1e+308", "float32")
    assert "expected a finite value" in msg


def test_overflowing_weights_are_refused_by_the_probe(tmp_path, model_file):
    def edit(meta, arrays):
        arrays["layer0.W"] = np.full_like(arrays["layer0.W"], 3e38)
        arrays["layer3.W"] = np.full_like(arrays["layer3.W"], 3e38)
    _refused(_edit(model_file, tmp_path / "bad.npz", edit), "not finite")


# ------------------------------------------------------------------------------------ structure
def test_a_model_without_dense_layers_is_refused(tmp_path, model_file):
    def edit(meta, arrays):
        meta["config"]["layers"] = [{"type": "ActivationLayer", "activation": {"name": "relu"}}]
        arrays.clear()
    _refused(_edit(model_file, tmp_path / "bad.npz", edit), "no Dense layer")


def test_dense_sizes_that_do_not_chain_are_refused(tmp_path):
    Sequential([Dense(4, 3), Dense(5, 2)], seed=0).save(tmp_path / "m.npz")
    _refused(tmp_path / "m.npz", "layer 1 (Dense) takes in_features=5 but layer 0 (Dense) gives 3")


def test_batch_norm_of_the_wrong_width_is_refused(tmp_path):
    Sequential([Dense(4, 3), BatchNorm1d(7), Dense(7, 2)], seed=0).save(tmp_path / "m.npz")
    _refused(tmp_path / "m.npz", "layer 1 (BatchNorm1d) has num_features=7 but layer 0 (Dense) gives 3")


@pytest.mark.parametrize("names,what", [(["a", "b"], "has 2 names but the model has 3 outputs"),
                                        (["a", "b", "c", "d"], "has 4 names"),
                                        (["a", "a", "b"], "twice"), ("abc", "not a list of strings")])
def test_class_names_must_match_the_outputs(tmp_path, model_file, names, what):
    def edit(meta, arrays):
        meta["class_names"] = names
    _refused(_edit(model_file, tmp_path / "bad.npz", edit), what)


@pytest.mark.parametrize("metadata,what", [
    ({"image_shape": [40000, 40000]}, "image_shape=[40000, 40000]"),
    ({"image_shape": ["2", "2"]}, "image_shape"), ({"image_shape": [-2, -2]}, "image_shape"),
    ({"image_shape": 4}, "image_shape"),
    ({"pixel_max": "abc"}, "pixel_max='abc'"), ({"pixel_max": float("nan")}, "pixel_max=nan"),
    ({"pixel_max": float("inf")}, "pixel_max=inf"), ({"invert": "yes"}, "invert"),
    ({"input_range": [1, 0]}, "input_range"), ({"label_column": [1]}, "label_column"),
    ([1, 2], "metadata is a JSON list")])
def test_metadata_fields_are_checked_at_load(tmp_path, model_file, metadata, what):
    def edit(meta, arrays):
        meta["metadata"] = metadata
    _refused(_edit(model_file, tmp_path / "bad.npz", edit), what)


def test_valid_files_still_load(tmp_path, model_file):
    m = io.load_model(model_file)
    assert m.class_names == ["a", "b", "c"] and m.metadata["image_shape"] == [2, 2]
    # a single-output binary model may name its two classes
    b = MLP([4, 1], seed=0, loss="binary_cross_entropy")
    b.class_names = ["no", "yes"]
    b.save(tmp_path / "b.npz")
    assert io.load_model(tmp_path / "b.npz").class_names == ["no", "yes"]


def test_predict_prints_class_names_without_escape_codes(tmp_path, capsys):
    m = MLP([4, 2], seed=0)
    m.class_names = ["\x1b[2J\x1b[Hcat", "dog\u202e"]
    m.save(tmp_path / "m.npz")
    np.save(tmp_path / "x.npy", np.zeros((1, 4), np.float32))
    assert cli.main(["predict", str(tmp_path / "m.npz"), str(tmp_path / "x.npy")]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\u202e" not in out
    assert "\\x1b[2J\\x1b[Hcat" in out or "dog\\u202e" in out
    assert cli.main(["predict", "--json", str(tmp_path / "m.npz"), str(tmp_path / "x.npy")]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out
    assert {t["class"] for t in json.loads(out)[0]["top"]} == set(m.class_names)  # JSON keeps the names


# ------------------------------------------------------------------------------------ checkpoints
@pytest.fixture(params=["adam", "sgd"])
def ckpt(request, tmp_path):
    from mlpnumpy.optim.optimizers import SGD
    from mlpnumpy.optim.schedules import StepLR
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 4)).astype(np.float32), rng.integers(0, 3, 40)
    m = MLP([4, 5, 3], seed=0)
    opt = "adam" if request.param == "adam" else SGD(0.1, momentum=0.9)
    m.fit(X, y, epochs=2, batch_size=8, optimizer=opt, lr_schedule=StepLR(1), verbose=0)
    path = tmp_path / "c.npz"
    io.save_checkpoint(m, path, extra={"config": {"epochs": 5, "hidden": [5], "dtype": "float32"}})
    return path, request.param


def _ckpt_refused(path, *match):
    with pytest.raises(FileFormatError) as info:
        io.load_checkpoint(path)
    msg = str(info.value)
    assert str(path) in msg
    for m in match:
        assert m in msg, msg


def test_truncated_optimizer_state_is_refused(tmp_path, ckpt):
    path, kind = ckpt
    if kind != "adam":
        pytest.skip("SGD's momentum buffer is optional (a frozen parameter never gets one)")
    key = "exp_avg_sq"

    def edit(meta, arrays):
        meta["optimizer"]["state_keys"][1].remove(key)
        del arrays[f"optimizer.state.1.{key}"]
    _ckpt_refused(_edit(path, tmp_path / "bad.npz", edit), "parameter 1", f"lacks '{key}'")


def test_sgd_label_on_adam_state_is_refused(tmp_path, ckpt):
    path, kind = ckpt
    if kind != "adam":
        pytest.skip("needs Adam's state")

    def edit(meta, arrays):
        meta["optimizer"]["class"] = "SGD"
        meta["optimizer"]["args"] = {"lr": 0.01}
    _ckpt_refused(_edit(path, tmp_path / "bad.npz", edit), "SGD does not keep", "exp_avg")


@pytest.mark.parametrize("value", [-5, 2.5, "3"])
def test_invalid_iterations_are_refused(tmp_path, ckpt, value):
    def edit(meta, arrays):
        meta["optimizer"]["iterations"] = value
    _ckpt_refused(_edit(ckpt[0], tmp_path / "bad.npz", edit), "iterations=")


@pytest.mark.parametrize("change", [
    lambda s: s["state"].__setitem__("state", 2 ** 200), lambda s: s["state"].__setitem__("inc", -1),
    lambda s: s.__setitem__("bit_generator", "MT19937"), lambda s: s.__setitem__("has_uint32", 7),
    lambda s: s.__setitem__("state", [])])
def test_bad_rng_state_is_refused(tmp_path, ckpt, change):
    def edit(meta, arrays):
        change(meta["rng_state"])
    _ckpt_refused(_edit(ckpt[0], tmp_path / "bad.npz", edit), "rng_state")


@pytest.mark.parametrize("key,value", [("base_lr", -1.0), ("last_lr", -0.5), ("last_lr", float("inf")),
                                       ("base_lr", None), ("last_epoch", -3)])
def test_invalid_schedule_state_is_refused(tmp_path, ckpt, key, value):
    def edit(meta, arrays):
        meta["lr_schedule"]["state"][key] = value
    _ckpt_refused(_edit(ckpt[0], tmp_path / "bad.npz", edit), "lr schedule")


def test_negative_squared_average_is_refused(tmp_path, ckpt):
    path, kind = ckpt
    if kind != "adam":
        pytest.skip("Adam's exp_avg_sq")

    def edit(meta, arrays):
        arrays["optimizer.state.0.exp_avg_sq"] = -np.abs(arrays["optimizer.state.0.exp_avg_sq"]) - 1
    _ckpt_refused(_edit(path, tmp_path / "bad.npz", edit), "exp_avg_sq", ">= 0")


@pytest.mark.parametrize("opt", ["adam", "sgd_momentum", "rmsprop", "adagrad"])
def test_checkpoints_with_a_frozen_layer_load(tmp_path, opt):
    from mlpnumpy.optim.optimizers import SGD
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(32, 4)).astype(np.float32), rng.integers(0, 3, 32)
    m = MLP([4, 5, 3], seed=0)
    m.layers[0].trainable = False
    m.fit(X, y, epochs=2, batch_size=8, optimizer=SGD(0.1, momentum=0.9) if opt == "sgd_momentum" else opt, verbose=0)
    io.save_checkpoint(m, tmp_path / "c.npz")
    assert io.load_checkpoint(tmp_path / "c.npz")[0].epochs_trained == 2


def test_good_checkpoints_still_load(ckpt):
    model, state = io.load_checkpoint(ckpt[0])
    assert state["optimizer"].iterations == 10 and model.epochs_trained == 2


@pytest.mark.parametrize("schedule", ["step", "multistep", "exponential", "cosine", "warmup", "onecycle", "plateau"])
def test_checkpoints_of_every_named_schedule_load_at_the_end_of_their_run(tmp_path, schedule):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 4)).astype(np.float32), rng.integers(0, 3, 40)
    m = MLP([4, 5, 3], seed=0)
    m.fit(X, y, epochs=3, batch_size=8, optimizer="sgd", lr_schedule=schedule, verbose=0, validation_split=0.25)
    io.save_checkpoint(m, tmp_path / "c.npz")
    model, state = io.load_checkpoint(tmp_path / "c.npz")  # a finished run's schedule is valid state
    assert model.epochs_trained == 3 and type(state["lr_schedule"]) is type(m.lr_schedule)


# -------------------------------------------------------------------------- a run's stored config
def test_stored_run_config_must_agree_with_the_model(tmp_path):
    from mlpnumpy.io._filechecks import check_run_config
    m = MLP([4, 5, 3], seed=0)
    m.fit(np.zeros((8, 4), np.float32), np.arange(8) % 3, epochs=1, optimizer="adam", lr=0.01, verbose=0)
    good = {"epochs": 3, "hidden": [5], "optimizer": "adam", "lr": 0.01, "dtype": "float32", "batch_norm": False,
            "dropout": 0.0, "activation": "relu"}
    assert check_run_config(good, m, "c.npz") is good
    for bad, what in [({**good, "hidden": [999, 999]}, "hidden=[999, 999]"), ({**good, "lr": 123}, "lr=123"),
                      ({**good, "optimizer": "sgd"}, "optimizer='sgd'"), ({**good, "batch_norm": True}, "batch_norm"),
                      ([1, 2], "is a JSON list"), ({k: v for k, v in good.items() if k != "epochs"}, "epochs=None"),
                      ({**good, "epochs": "7"}, "epochs='7'")]:
        with pytest.raises(FileFormatError, match="c.npz") as info:
            check_run_config(bad, m, "c.npz")
        assert what in str(info.value)


def _train_run(out, *extra):
    args = ["train", "--data", "digits", "--hidden", "8", "--epochs", "2", "--batch-size", "64",
            "--out", str(out), "--quiet", *extra]
    return cli.main(args)


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "r"
    assert _train_run(out) == 0
    return out


def _edited_run(run_folder, tmp_path, edit):
    import shutil
    out = tmp_path / "copy"
    shutil.copytree(run_folder, out)
    meta, arrays = _read(out / "checkpoint.npz")
    meta["epochs_trained"] = 1  # as if stopped half way, so --resume has work left
    meta["optimizer"]["iterations"] //= 2
    edit(meta["extra"]["config"], meta)
    os.remove(out / "checkpoint.npz")
    _write(out / "checkpoint.npz", meta, arrays)
    if (out / "metrics.json").exists():
        os.remove(out / "metrics.json")
    return out


@pytest.mark.parametrize("key,value,what", [
    ("hidden", [999, 999], "hidden=[999, 999]"), ("lr", 123, "lr=123"),
    ("batch_size", 7, "batch_size=7"), ("validation_split", 0.5, "validation_split")])
def test_resume_refuses_an_edited_run_config(tmp_path, capsys, run_folder, key, value, what):
    out = _edited_run(run_folder, tmp_path, lambda cfg, meta: cfg.__setitem__(key, value))
    assert cli.main(["train", "--resume", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert what in err and "refusing to resume" in err and err.count("\n") == 1


def test_resume_of_an_unedited_half_run_works(tmp_path, capsys, run_folder):
    out = _edited_run(run_folder, tmp_path, lambda cfg, meta: None)
    assert cli.main(["train", "--resume", str(out), "--quiet"]) == 0


@pytest.mark.parametrize("cfg", [[1, 2], {"hidden": [8]}])
def test_resume_refuses_a_config_that_is_a_list_or_lacks_epochs(tmp_path, capsys, run_folder, cfg):
    out = _edited_run(run_folder, tmp_path, lambda c, meta: meta["extra"].__setitem__("config", cfg))
    assert cli.main(["train", "--resume", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "stored run configuration" in err and err.count("\n") == 1


# ------------------------------------------------------------------------------------ saving
def test_saving_onto_a_folder_or_empty_path_is_a_clear_error(tmp_path):
    m = MLP([4, 3], seed=0)
    (tmp_path / "d").mkdir()
    with pytest.raises(InvalidArgumentError, match="is an existing folder"):
        m.save(tmp_path / "d")
    with pytest.raises(InvalidArgumentError, match="path='' is empty"):
        m.save("")
    with pytest.raises(InvalidArgumentError, match="names a folder"):
        m.save(str(tmp_path / "newdir") + os.sep)
    assert not (tmp_path / "newdir").exists()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        m.save(tmp_path / "nope" / "m.npz")
    with pytest.raises(InvalidArgumentError, match="at most"):
        m.save(tmp_path / ("x" * 300))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]  # no temporary file left


def test_a_249_byte_file_name_can_be_saved(tmp_path):
    m = MLP([4, 3], seed=0)
    name = "m" * 245 + ".npz"
    m.save(tmp_path / name)
    assert [p.name for p in tmp_path.iterdir()] == [name]
    assert io.load_model(tmp_path / name).get_config() == m.get_config()


def test_export_onnx_to_a_folder_is_a_clear_error(tmp_path, capsys):
    pytest.importorskip("onnx")
    from mlpnumpy.integrations.onnx_export import export_onnx
    MLP([4, 3], seed=0).save(tmp_path / "m.npz")
    (tmp_path / "d").mkdir()
    with pytest.raises(InvalidArgumentError, match="is (an existing |a )folder"):
        export_onnx(MLP([4, 3], seed=0), tmp_path / "d")
    assert cli.main(["export", str(tmp_path / "m.npz"), "--onnx", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err
    assert "is a folder" in err and ".tmp" not in err and err.count("\n") == 1
    assert list((tmp_path / "d").iterdir()) == []


@pytest.mark.parametrize("flags", [["--batch-norm", "--activation", "tanh", "--dropout", "0.1"],
                                   ["--residual", "--hidden", "8", "8", "--dropout", "0.1"],
                                   ["--activation", "selu", "--dropout", "0.1"],
                                   ["--hidden"], ["--optimizer", "sgd", "--momentum", "0.9", "--schedule", "plateau"]])
def test_resume_accepts_the_runs_train_writes(tmp_path, flags, capsys):
    # the stored configuration of every kind of run agrees with its own model
    out = tmp_path / "r"
    hidden = [] if "--hidden" in flags else ["--hidden", "8"]
    assert cli.main(["train", "--data", "digits", *hidden, *flags, "--epochs", "1", "--batch-size", "64",
                     "--out", str(out), "--quiet"]) == 0
    assert cli.main(["train", "--resume", str(out), "--finetune", "--epochs", "2", "--quiet"]) == 0, \
        capsys.readouterr().err
