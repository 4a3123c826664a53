import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def torch_or_skip():
    return pytest.importorskip("torch", reason="PyTorch not installed: parity tests skipped")
