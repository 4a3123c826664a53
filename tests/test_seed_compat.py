"""The seed's program runs on mlpnumpy with only its class definitions replaced, its step-by-step
methods make the same update as ``fit``, and its recipe learns the real digits."""
import copy
import os

import numpy as np
import pytest

import mlpnumpy
from mlpnumpy import ActivationFunctions, MLPNumpy
from mlpnumpy.datasets import load

# shared/ lies beside the checkout (here, and in CI's fresh clone)
SEED_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "seed", "seed_mlp.py")

# The seed's load_mnist_sample() and main(), verbatim (from /work/shared/seed/seed_mlp.py).
SEED_MAIN = '''
def load_mnist_sample(n_samples=1000):
    np.random.seed(42)
    n_classes = 10
    n_features = 784
    X = np.random.randn(n_samples, n_features) * 0.5
    y = np.random.randint(0, n_classes, n_samples)
    for i in range(n_classes):
        mask = y == i
        X[mask, i * 78:(i + 1) * 78] += 1.0
    return X, y


def main():
    X_train, y_train = load_mnist_sample(n_samples=1000)
    X_test, y_test = load_mnist_sample(n_samples=200)
    print(f" Train: {X_train.shape}, Test: {X_test.shape}")
    model = MLPNumpy(layer_dims=[784, 128, 64, 10], activations=['relu', 'relu', 'none'])
    losses = model.fit(X_train, y_train, epochs=50, lr=0.1, batch_size=32, verbose=True)
    print(f" Train Accuracy: {model.evaluate(X_train, y_train):.4f}")
    print(f" Test Accuracy: {model.evaluate(X_test, y_test):.4f}")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, axes = plt.subplots(1, 2, figsize=(12, 4))
        axes[0].plot(losses); axes[0].set_xlabel('Epoch'); axes[0].set_ylabel('Loss')
        axes[0].set_title('Training Loss'); axes[0].grid(True)
        axes[1].hist(model.layers[0].W.flatten(), bins=50, alpha=0.7)
        axes[1].set_xlabel('Weight Value'); axes[1].set_ylabel('Frequency')
        axes[1].set_title('First Layer Weight Distribution'); axes[1].grid(True)
        plt.tight_layout(); plt.savefig('mlp_result.png', dpi=150)
        print("saved mlp_result.png")
    except ImportError:
        print("(no matplotlib)")
'''


def test_copied_text_matches_the_seed():
    if not os.path.exists(SEED_FILE):
        pytest.skip("the seed file is not in this checkout")
    src = open(SEED_FILE).read()
    for fn in ("def load_mnist_sample", "def main"):
        start = src.index(fn)
        end = src.find("\n\n\n", start)
        assert src[start:end].strip() in SEED_MAIN


def test_seed_main_runs_on_mlpnumpy(tmp_path, monkeypatch, capsys):
    pytest.importorskip("matplotlib")
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile("import numpy as np\nfrom mlpnumpy import MLPNumpy, ActivationFunctions\n" + SEED_MAIN,
                 "seed_main", "exec"), namespace)
    namespace["main"]()
    out = capsys.readouterr().out
    assert "saved mlp_result.png" in out and (tmp_path / "mlp_result.png").stat().st_size > 10_000
    acc = float(out.split("Test Accuracy:")[1].split()[0])
    assert acc > 0.9  # the seed's separable bands


def _seed_step_and_fit_step(path):
    ds = load("digits")
    X, y = ds.X_train[:32], ds.y_train[:32]
    a = MLPNumpy([64, 128, 64, 10], ["relu", "relu", "none"], seed=5)  # 64 x 128 = 8,192 weights
    b = copy.deepcopy(a)
    # the seed's step, through its methods
    logits = a.forward(X)
    probs = ActivationFunctions.softmax(logits)
    np.testing.assert_array_equal(probs, mlpnumpy.nn.activations.softmax(logits))
    loss = a.compute_loss(y, probs)
    a.backward(a.compute_loss_gradient(y, probs))
    a.update_weights(0.1)
    # one fit step with SGD on the same batch
    h = b.fit(X, y, epochs=1, batch_size=32, lr=0.1, shuffle=False, verbose=0, path=path)
    assert h[0] == pytest.approx(loss, rel=1e-5)
    return a.get_weights(), b.get_weights()


def test_seed_step_equals_one_reference_fit_step():
    # the seed's names run the reference path: the same code as fit's reference step, bit for bit
    for wa, wb in zip(*_seed_step_and_fit_step("reference")):
        np.testing.assert_array_equal(wa, wb)


@pytest.mark.parametrize("rounds_differently", [False, True])
def test_seed_step_equals_one_fast_fit_step_within_rounding(rounds_differently, monkeypatch):
    # The fast path may fold dW = x.T @ dz into one accumulating BLAS gemm, whose rounding depends on
    # the CPU's kernel (on AMD EPYC 36 of 8,192 weights differed from NumPy's matmul by 1 ulp). So the
    # fast step equals the seed's within float32 rounding, whatever gemm runs: a stand-in that rounds
    # differently from NumPy on every CPU shows the check does not hang on one.
    from mlpnumpy._kernels import _blas

    def gemm64(alpha, A, B, beta, C):  # C <- alpha A B + beta C, computed in float64
        C[...] = (alpha * (A.astype(np.float64) @ B.astype(np.float64)) + beta * C).astype(C.dtype)
        return True

    if rounds_differently:
        monkeypatch.setattr(_blas, "available", True)
        monkeypatch.setattr(_blas, "gemm", gemm64)
    for wa, wb in zip(*_seed_step_and_fit_step("fast")):
        np.testing.assert_allclose(wa, wb, rtol=4 * np.finfo(np.float32).eps, atol=4e-9)


def test_seed_recipe_learns_real_digits():
    # The recipe sits right at 0.95 (seeds 0..7 give 0.947 to 0.967 on the 359 test images), so
    # the claim is about the recipe, averaged over five seeds, not about one lucky seed.
    ds = load("digits")
    accs = []
    for seed in range(5):
        model = MLPNumpy([64, 128, 10], seed=seed)
        losses = model.fit(ds.X_train, ds.y_train, epochs=30, lr=0.1, batch_size=32, verbose=False)
        assert losses[-1] < losses[0] / 5
        accs.append(model.evaluate(ds.X_test, ds.y_test))
    assert np.mean(accs) >= 0.95 and min(accs) >= 0.94, accs
