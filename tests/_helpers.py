"""Helpers shared by several test modules (imported as ``_helpers``; pytest puts tests/ on sys.path)."""
import numpy as np
import pytest

from mlpnumpy.datasets import paths as paths_mod
from mlpnumpy.nn.layers import BatchNorm1d


def randomize_batchnorm(model, rng: np.random.Generator) -> None:
    """Give every BatchNorm1d of ``model`` non-trivial gamma, beta and running statistics."""
    for layer in model.layers:
        if isinstance(layer, BatchNorm1d):
            layer.gamma.data[...] = rng.uniform(0.5, 2, layer.num_features)
            layer.beta.data[...] = rng.normal(size=layer.num_features)
            layer.running_mean[...] = rng.normal(size=layer.num_features)
            layer.running_var[...] = rng.uniform(0.3, 3, layer.num_features)


@pytest.fixture
def isolated_data_dirs(tmp_path, monkeypatch):
    """No test sees the real cache, $MLPNUMPY_DATA, a mirror override or the system folders."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("MLPNUMPY_DATA", raising=False)
    monkeypatch.delenv("MLPNUMPY_MIRROR", raising=False)
    # the tests' small MNIST-format files are private copies, not the official bytes (the digest
    # check itself is tested in test_hostile_data.py, which unsets this)
    monkeypatch.setenv("MLPNUMPY_VERIFY_DATA", "0")
    monkeypatch.setattr(paths_mod, "SYSTEM_DIRS", (str(tmp_path / "system"),))
