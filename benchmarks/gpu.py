"""mlpnumpy on a GPU: the same from-scratch code on CuPy arrays and on PyTorch CUDA tensors, beside
native PyTorch on the same GPU (issue 16).

Trains the Fashion-MNIST main config (784-256-128-10 ReLU, float32, SGD lr 0.1, same initial weights
for every runner) at batch 128 and 4096 and prints, side by side, the seconds per epoch (median over
the epochs after the first, which pays for compilation and allocation), the throughput in samples per
second and the test accuracy.

    python benchmarks/gpu.py                 # on a machine with CUDA (cupy-cuda12x and torch)
    python benchmarks/gpu.py --dry-run       # the same code on the CPU with tiny data (NumPy, torch CPU)

Untested on a GPU so far: no GPU was available when it was written; ``--dry-run`` is run by the
test suite (tests/test_array_api.py).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np


def _data(dry_run: bool):
    if dry_run:  # tiny random data in the real shapes
        rng = np.random.default_rng(0)
        X = rng.random((320, 784), dtype=np.float32)
        y = rng.integers(0, 10, 320)
        return X[:256], y[:256], X[256:], y[256:]
    from mlpnumpy.datasets import load
    d = load("fashion-mnist")
    return d.X_train, d.y_train, d.X_test, d.y_test


def _sync(kind):
    if kind == "cupy":
        import cupy
        cupy.cuda.Device().synchronize()
    elif kind.startswith("torch"):
        import torch
        if torch.cuda.is_available():
            torch.cuda.synchronize()


def run_mlpnumpy(kind, data, batch, epochs, init, device, path="reference"):
    """mlpnumpy on ``kind``'s arrays ("numpy", "cupy" or "torch"): the reference path, or for NumPy
    ``path="auto"`` (the fast path), the CPU run the GPU's accuracy is compared with."""
    from mlpnumpy import MLP
    Xtr, ytr, Xte, yte = data
    if kind == "cupy":
        import cupy as xp
        conv = xp.asarray
    elif kind == "torch":
        import torch
        conv = lambda a: torch.asarray(a, device=device)  # noqa: E731
    else:
        conv = np.asarray
    model = MLP([784, 256, 128, 10], seed=0, path=path)
    model.set_weights(init)
    Xd, yd, Xt, yt = conv(Xtr), conv(ytr), conv(Xte), conv(yte)
    model.to(Xd)
    # one fit; each epoch's seconds end with its loss brought to the host, which waits for the device
    history = model.fit(Xd, yd, epochs=epochs, batch_size=batch, lr=0.1, verbose=0)
    return history.history["seconds"], model.evaluate(Xt, yt)


def run_torch_native(data, batch, epochs, init, device):
    """The same network, weights, optimizer and shuffling in plain PyTorch."""
    import torch
    from torch import nn
    Xtr, ytr, Xte, yte = data
    net = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))
    with torch.no_grad():
        for lin, (W, b) in zip([net[0], net[2], net[4]], zip(init[0::2], init[1::2])):
            lin.weight.copy_(torch.asarray(W.T))
            lin.bias.copy_(torch.asarray(b))
    net.to(device)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    lossf = nn.CrossEntropyLoss()
    X, y = torch.asarray(Xtr, device=device), torch.asarray(ytr, device=device)
    rng = np.random.default_rng(0)
    times = []
    for _ in range(epochs):
        _sync("torch")
        t0 = time.perf_counter()
        perm = torch.asarray(rng.permutation(X.shape[0]), device=device)
        for s in range(0, X.shape[0], batch):
            idx = perm[s:s + batch]
            opt.zero_grad(set_to_none=True)
            lossf(net(X[idx]), y[idx]).backward()
            opt.step()
        _sync("torch")
        times.append(time.perf_counter() - t0)
    with torch.no_grad():
        pred = net(torch.asarray(Xte, device=device)).argmax(1).cpu().numpy()
    return times, float(np.mean(pred == yte))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dry-run", action="store_true", help="the same code on the CPU with tiny data")
    ap.add_argument("--epochs", type=int, default=None, help="epochs per run (default 5, dry run 2)")
    args = ap.parse_args(argv)
    epochs = args.epochs or (2 if args.dry_run else 5)
    data = _data(args.dry_run)
    from mlpnumpy import MLP
    init = MLP([784, 256, 128, 10], seed=0).get_weights()

    runners = []
    try:
        import torch
        cuda = torch.cuda.is_available() and not args.dry_run
        tdev = "cuda" if cuda else "cpu"
    except ImportError:
        torch, cuda, tdev = None, False, None
    runners.append(("mlpnumpy+numpy (cpu, fast)", lambda b: run_mlpnumpy("numpy", data, b, epochs, init, None,
                                                                          path="auto")))
    if args.dry_run:
        runners.append(("mlpnumpy+numpy (cpu, ref)", lambda b: run_mlpnumpy("numpy", data, b, epochs, init, None)))
    else:
        if not cuda:
            print("no CUDA device found: run with --dry-run on the CPU", file=sys.stderr)
            return 1
        try:
            import cupy  # noqa: F401
            runners.append(("mlpnumpy+cupy", lambda b: run_mlpnumpy("cupy", data, b, epochs, init, None)))
        except ImportError:
            print("cupy is not installed (pip install cupy-cuda12x): skipping mlpnumpy+cupy", file=sys.stderr)
    if torch is not None:
        runners.append((f"mlpnumpy+torch ({tdev})", lambda b: run_mlpnumpy("torch", data, b, epochs, init, tdev)))
        runners.append((f"torch native ({tdev})", lambda b: run_torch_native(data, b, epochs, init, tdev)))

    n = data[0].shape[0]
    print(f"Fashion-MNIST 784-256-128-10 ReLU, float32, SGD lr 0.1, {epochs} epochs, {n} training rows"
          + (" (dry run: random data on the CPU)" if args.dry_run else ""))
    for batch in (128, 4096):
        print(f"\nbatch {batch}")
        print(f"{'runner':<28} {'s/epoch':>9} {'samples/s':>11} {'test acc':>9}")
        for name, run in runners:
            times, acc = run(batch)
            t = statistics.median(times[1:] if len(times) > 1 else times)
            print(f"{name:<28} {t:>9.3f} {n / t:>11,.0f} {acc:>9.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
