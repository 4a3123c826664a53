"""The layout (issue 14): subpackages named for the flow, no import cycles between modules, and the
public imports of mlpnumpy 0.1 still working."""
import importlib
import pickle
import subprocess
import sys

import numpy as np
import pytest

import mlpnumpy
from _imports import ROOT, cycles, imports_of, modules

FLOW = ["datasets", "nn", "optim", "training", "io", "plots", "integrations", "cli"]
OTHER = ["_kernels", "learn", "sweep", "experiments"]
TOP_MODULES = {"__init__.py", "__main__.py", "errors.py", "_validation.py", "_array_api.py", "compat.py"}


def test_the_top_level_is_the_flow_of_subpackages_and_a_few_shared_modules():
    packages = sorted(p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file())
    assert packages == sorted(FLOW + OTHER)
    assert {p.name for p in ROOT.glob("*.py")} == TOP_MODULES


def test_no_two_modules_import_each_other_even_inside_functions():
    assert cycles() == []


def test_the_cycle_check_finds_a_cycle(monkeypatch):
    # the check above can fail: make nn.layers import nn.model, which imports nn.layers
    import _imports
    real = _imports.imports_of.__wrapped__

    def fake(name):
        found = real(name)
        return found | {"mlpnumpy.nn.model"} if name == "mlpnumpy.nn.layers" else found

    monkeypatch.setattr(_imports, "imports_of", fake)
    assert any({"mlpnumpy.nn.layers", "mlpnumpy.nn.model"} <= set(g) for g in _imports.cycles())


def test_lower_layers_do_not_import_the_command_line_or_the_integrations():
    for name in modules():
        pkg = name.split(".")[1] if name.count(".") else ""
        if pkg in ("nn", "optim", "training", "io", "datasets", "_kernels"):
            used = {m.split(".")[1] for m in imports_of(name) if m.count(".")}
            assert not used & {"cli", "integrations", "sweep", "learn", "experiments"}, name


@pytest.mark.parametrize("old, new", sorted(mlpnumpy.MOVED_MODULES.items()))
def test_the_flat_module_names_import_the_same_module(old, new):
    if old in ("sklearn", "_sklearn_solvers"):
        pytest.importorskip("sklearn")
    assert importlib.import_module(f"mlpnumpy.{old}") is importlib.import_module(f"mlpnumpy.{new}")


def test_public_imports_keep_working():
    from mlpnumpy import (MLP, SGD, ActivationFunctions, BatchNorm1d, CrossEntropy, Dense, Dropout, EarlyStopping,
                          History, MLPNumpy, Parameter, Sequential, export_onnx, from_torch, gradcheck, load,
                          to_torch)
    from mlpnumpy.callbacks import ModelCheckpoint
    from mlpnumpy.datasets import load as load_data
    from mlpnumpy.io import load_model, save_model
    from mlpnumpy.layers import Dense as FlatDense
    from mlpnumpy.nn import Dense as NnDense
    from mlpnumpy.optimizers import Adam
    from mlpnumpy.training import fit
    assert Dense is FlatDense is NnDense
    assert mlpnumpy.layers is importlib.import_module("mlpnumpy.nn.layers")
    assert callable(fit) and callable(load_model) and callable(save_model) and callable(load_data)
    assert {MLP, SGD, ActivationFunctions, BatchNorm1d, CrossEntropy, Dropout, EarlyStopping, History, MLPNumpy,
            Parameter, Sequential, ModelCheckpoint, Adam}
    assert all(callable(f) for f in (export_onnx, from_torch, gradcheck, load, to_torch))
    assert mlpnumpy.learn.__name__ == "mlpnumpy.learn"


def test_the_console_script_entry_point_is_the_cli_main():
    import tomllib
    from pathlib import Path
    meta = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    target = meta["project"]["scripts"]["mlpnumpy"]
    module, func = target.split(":")
    from mlpnumpy.cli import main
    assert getattr(importlib.import_module(module), func) is main


def test_an_estimator_pickled_under_the_old_module_name_loads():
    pytest.importorskip("sklearn")
    from mlpnumpy.sklearn import MLPClassifier
    X = np.random.default_rng(0).normal(size=(30, 3)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    est = MLPClassifier(hidden_layer_sizes=(4,), max_iter=3, random_state=0).fit(X, y)
    blob = pickle.dumps(est, protocol=0)  # text opcodes: the module name can be swapped safely
    assert b"mlpnumpy.integrations.sklearn" in blob
    old = pickle.loads(blob.replace(b"mlpnumpy.integrations.sklearn", b"mlpnumpy.sklearn"))
    np.testing.assert_array_equal(old.predict_proba(X), est.predict_proba(X))


def test_import_mlpnumpy_in_a_fresh_process_loads_no_optional_extra():
    code = ("import sys, mlpnumpy, mlpnumpy.layers, mlpnumpy.io; "
            "print(sorted(m for m in ('sklearn', 'matplotlib', 'torch', 'numba', 'onnx', 'dask', 'optuna', 'tqdm') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_importing_a_flat_module_name_leaves_the_package_function_of_that_name():
    code = "import mlpnumpy.gradcheck, mlpnumpy; print(callable(mlpnumpy.gradcheck), type(mlpnumpy.gradcheck).__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "function"]
