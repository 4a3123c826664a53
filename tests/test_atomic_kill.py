"""A process killed with SIGKILL in the middle of a save leaves the previous file intact: a child
saves models, checkpoints, metrics and CSV logs in a loop, the test kills it at random moments, many
times, and every file must then load whole and equal one of the versions the child wrote."""
import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

CHILD = r"""
import json, sys, numpy as np
from mlpnumpy import MLP
from mlpnumpy.io._atomic import atomic_write_bytes
from mlpnumpy.io.model_files import save_checkpoint, save_model
out = sys.argv[1]
models = [MLP([64, 256, 10], seed=s) for s in (1, 2)]
X, y = np.random.default_rng(0).standard_normal((64, 64)), np.arange(64) % 10
for m in models:
    m.fit(X, y, epochs=1, optimizer="adam", verbose=False)  # so checkpoints carry optimizer state
print("ready", flush=True)
i = 0
while True:
    m = models[i % 2]
    save_model(m, out + "/model.npz")
    save_checkpoint(m, out + "/checkpoint.npz")
    atomic_write_bytes(out + "/metrics.json", json.dumps({"version": i % 2, "pad": "x" * 200000}).encode())
    i += 1
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")
def test_sigkill_during_saves_never_leaves_a_broken_file(tmp_path):
    pytest.importorskip("mlpnumpy.io.model_files")
    from mlpnumpy import MLP
    from mlpnumpy.io.model_files import load_checkpoint, load_model
    X, y = np.random.default_rng(0).standard_normal((64, 64)), np.arange(64) % 10
    expected = []
    for s in (1, 2):
        m = MLP([64, 256, 10], seed=s)
        m.fit(X, y, epochs=1, optimizer="adam", verbose=False)
        expected.append(m.get_weights())
    rng = np.random.default_rng(0)
    kills = 0
    for round_ in range(25):
        proc = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(float(rng.uniform(0.0, 0.15)))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        kills += 1
        if not (tmp_path / "model.npz").exists():
            continue  # killed before the first save finished: nothing to check yet
        weights = load_model(tmp_path / "model.npz").get_weights()
        assert any(all(np.array_equal(a, b) for a, b in zip(weights, e)) for e in expected), round_
        if (tmp_path / "checkpoint.npz").exists():
            model, state = load_checkpoint(tmp_path / "checkpoint.npz")
            assert any(all(np.array_equal(a, b) for a, b in zip(model.get_weights(), e)) for e in expected)
            assert model.optimizer.iterations == 2  # 64 rows, batch 32
        if (tmp_path / "metrics.json").exists():
            assert json.loads((tmp_path / "metrics.json").read_text())["version"] in (0, 1)
    assert kills == 25
    assert (tmp_path / "model.npz").exists()
