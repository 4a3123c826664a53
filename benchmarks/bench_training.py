"""Training and inference speed of mlpnumpy against PyTorch (CPU), scikit-learn, the matrix-multiply
floor and the leanest hand-written NumPy loop, on Fashion-MNIST (Debian's dataset-fashion-mnist, or any folder mlpnumpy.datasets finds).

    python benchmarks/bench_training.py            # full run, writes benchmarks/results.{json,md}
    python benchmarks/bench_training.py --quick    # fewer repeats

Every number is a median of several runs taken in this one process, so ratios compare like with like
on a noisy machine. All contenders use the same BLAS thread count.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import warnings

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


# ---------------------------------------------------------------- contenders, one epoch each
def make_batches(n, batch_size, seed):
    """The same shuffled batches for every contender: index arrays from one generator."""
    perm = np.random.default_rng(seed).permutation(n)
    return [perm[s:s + batch_size] for s in range(0, n, batch_size)]


def floor_epoch(X, dims, batch_size):
    """The matrix multiplies of one epoch and nothing else: per layer a forward product and dW, and
    dx for every layer but the first (the data needs no gradient), on contiguous slices."""
    rng = np.random.default_rng(0)
    Ws = [(rng.standard_normal((a, b)) * 0.01).astype(X.dtype) for a, b in zip(dims[:-1], dims[1:])]
    outs = [None] * len(Ws)
    grads = [np.empty_like(W) for W in Ws]

    def run():
        for s in range(0, X.shape[0], batch_size):
            h = X[s:s + batch_size]
            acts = [h]
            for i, W in enumerate(Ws):
                h = h @ W
                acts.append(h)
            g = h
            for i in reversed(range(len(Ws))):
                np.matmul(acts[i].T, g, out=grads[i])
                if i:
                    g = g @ Ws[i].T
    return run


def numpy_loop_epoch(X, y, dims, batch_size, batches, lr=0.01, weights=None):
    """The leanest NumPy program for the same epoch: a ReLU MLP, softmax cross-entropy on the labels,
    plain SGD, written as one flat loop with no layers, checks, callbacks or optimizer objects.

    It does what a fit step must do, no more: gather the batch, the forward and backward passes,
    the update (folded into the weight-gradient gemm for every layer when that BLAS call is
    available; mlpnumpy does so from 8,192 weights up, where it pays) and the running loss and accuracy that the History records. Its time is what a
    NumPy-only trainer can reach on this machine; the floor, which also skips the gather and every
    element-wise pass, is what no trainer can beat. ``weights``, a list of ``(W, b)`` pairs trained
    in place, lets ``tests/test_benchmarks.py`` check it against ``fit`` step for step. ``batches``
    holds index arrays, or slices (views: no gather), as ``limits.py`` uses to time the loop without it.
    """
    from mlpnumpy._kernels import _blas
    if weights is None:
        rng = np.random.default_rng(0)
        weights = [((rng.standard_normal((a, b)) * np.sqrt(2.0 / a)).astype(X.dtype), np.zeros(b, X.dtype))
                   for a, b in zip(dims[:-1], dims[1:])]
    Ws, bs = [w for w, _ in weights], [b for _, b in weights]
    f = X.dtype.type
    rows, ones, ones_k = np.arange(batch_size), np.ones(batch_size, X.dtype), np.ones(dims[-1], X.dtype)

    def update(W, b, a, g, o):
        if not _blas.gemm(-lr, a.T, g, 1.0, W):
            W -= f(lr) * (a.T @ g)
        b -= f(lr) * (o @ g)

    def run():
        total, correct = 0.0, 0
        for idx in batches:
            x, yb = X[idx], y[idx]
            m = x.shape[0]
            r, o = (rows, ones) if m == batch_size else (rows[:m], ones[:m])
            acts = [x]
            for W, b in zip(Ws[:-1], bs[:-1]):
                h = acts[-1] @ W
                h += b
                acts.append(np.maximum(h, 0, out=h))
            z = acts[-1] @ Ws[-1]
            z += bs[-1]
            pred = z.argmax(1)
            z -= z[r, pred][:, None]
            zy = z[r, yb]
            np.exp(z, out=z)
            sums = z @ ones_k
            total += float(np.log(sums).sum() - zy.sum())
            correct += int(np.count_nonzero(pred == yb))
            z /= sums[:, None]
            z[r, yb] -= 1
            z *= f(1.0 / m)
            g = z
            for i in range(len(Ws) - 1, -1, -1):
                g_below = (g @ Ws[i].T) * (acts[i] > 0) if i else None
                update(Ws[i], bs[i], acts[i], g, o)
                g = g_below
        return total / X.shape[0], correct / X.shape[0]
    return run


def mlpnumpy_epoch(X, y, dims, batch_size, optimizer):
    from mlpnumpy import MLP
    model = MLP(dims, seed=0)
    opt = {"sgd": lambda: "sgd", "adam": lambda: "adam"}[optimizer]()
    lr = 0.01 if optimizer == "sgd" else 1e-3
    model.fit(X[:batch_size * 4], y[:batch_size * 4], epochs=1, lr=lr, optimizer=opt, batch_size=batch_size,
              verbose=False)  # warm-up, creates the optimizer state

    def run():
        # the epoch's own time, as the History records it (the input check is once per fit)
        return model.fit(X, y, epochs=1, batch_size=batch_size, verbose=False).history["seconds"][0]
    return run, model


def torch_epoch(X, y, dims, batch_size, optimizer, batches):
    import torch
    from mlpnumpy import MLP, to_torch
    net = to_torch(MLP(dims, seed=0))  # the same architecture and initial weights as ours
    opt = torch.optim.SGD(net.parameters(), lr=0.01) if optimizer == "sgd" else \
        torch.optim.Adam(net.parameters(), lr=1e-3)
    lossf = torch.nn.CrossEntropyLoss()
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y.astype(np.int64))
    tb = [torch.from_numpy(b) for b in batches]

    def run():
        for idx in tb:
            xb, yb = Xt[idx], yt[idx]
            opt.zero_grad(set_to_none=True)
            lossf(net(xb), yb).backward()
            opt.step()
    return run, net


def sklearn_epoch(X, y, dims, batch_size, optimizer):
    from sklearn.neural_network import MLPClassifier
    clf = MLPClassifier(tuple(dims[1:-1]), solver=optimizer, momentum=0.0, batch_size=batch_size,
                        learning_rate_init=0.01 if optimizer == "sgd" else 1e-3, max_iter=1, warm_start=True,
                        random_state=0, tol=0.0, n_iter_no_change=10 ** 9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(X[:2000], y[:2000])

    def run():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf.fit(X, y)
    return run


# ---------------------------------------------------------------- inference
def latency(fn, x, n=2000):
    for _ in range(50):
        fn(x)
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def peak_memory(data_dir_args):
    """Peak resident memory of training one epoch, in a fresh process: VmHWM after the epoch, with
    the peak reset once the data are loaded, minus the process's size before loading them."""
    code = r"""
import json, sys, numpy as np
from mlpnumpy import MLP
from mlpnumpy.datasets import load
def status(key):
    for line in open('/proc/self/status'):
        if line.startswith(key):
            return int(line.split()[1]) * 1024
base = status('VmRSS')
d = load('fashion-mnist')
X, y = d.X_train, d.y_train
del d
import gc; gc.collect()
after_load = status('VmRSS')
open('/proc/self/clear_refs', 'w').write('5')
m = MLP([784, 256, 128, 10], seed=0)
m.fit(X, y, epochs=1, batch_size=128, verbose=False)
print(json.dumps({'base': base, 'after_load': after_load, 'peak': status('VmHWM'),
                  'dataset_bytes': int(X.nbytes + y.nbytes)}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def machine():
    info = {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
            "numpy": np.__version__}
    try:
        info["cpu"] = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        info["cpu"] = platform.processor()
    try:
        import torch
        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    except ImportError:
        pass
    try:
        import sklearn
        info["sklearn"] = sklearn.__version__
    except ImportError:
        pass
    try:
        import threadpoolctl
        info["blas"] = [{k: d.get(k) for k in ("internal_api", "version", "num_threads", "architecture")}
                        for d in threadpoolctl.threadpool_info()]
    except ImportError:
        pass
    return info


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer repeats")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    ap.add_argument("--skip-sklearn", action="store_true")
    ap.add_argument("--time-to-accuracy", action="store_true", help="also time reaching 0.90 test accuracy")
    args = ap.parse_args(argv)
    reps = args.repeats or (3 if args.quick else 5)
    import torch
    torch.set_num_threads(args.threads)
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(args.threads)
    except ImportError:
        pass
    from mlpnumpy.datasets import load
    d = load("fashion-mnist")
    X, y, Xte, yte = d.X_train, d.y_train, d.X_test, d.y_test
    n = X.shape[0]
    results = {"machine": machine(), "repeats": reps, "threads": args.threads, "configs": []}

    configs = [("main: 784-256-128-10, batch 128, SGD", [784, 256, 128, 10], 128, "sgd", True),
               ("batch 32, SGD", [784, 256, 128, 10], 32, "sgd", False),
               ("batch 512, SGD", [784, 256, 128, 10], 512, "sgd", False),
               ("wide: 784-1024-1024-10, batch 128, SGD", [784, 1024, 1024, 10], 128, "sgd", False),
               ("Adam, batch 128", [784, 256, 128, 10], 128, "adam", False)]
    models = {}
    for name, dims, bs, opt, with_sklearn in configs:
        batches = make_batches(n, bs, 0)
        ours, model = mlpnumpy_epoch(X, y, dims, bs, opt)
        theirs, net = torch_epoch(X, y, dims, bs, opt, batches)
        fl = floor_epoch(X, dims, bs)
        fl()
        flat = numpy_loop_epoch(X, y, dims, bs, batches) if opt == "sgd" else None
        t_ours, t_torch, t_floor, t_flat = [], [], [], []
        for _ in range(reps):  # interleaved, so a noisy moment hurts every contender alike
            t_ours.append(ours())
            t_torch.append(median_time(theirs, 1))
            t_floor.append(median_time(fl, 1))
            if flat is not None:
                t_flat.append(median_time(flat, 1))
        row = {"config": name, "dims": dims, "batch_size": bs, "optimizer": opt,
               "mlpnumpy_s": float(np.median(t_ours)), "torch_s": float(np.median(t_torch)),
               "floor_s": float(np.median(t_floor))}
        if t_flat:
            row["numpy_loop_s"] = float(np.median(t_flat))
            row["x_numpy_loop"] = row["mlpnumpy_s"] / row["numpy_loop_s"]
            row["numpy_loop_x_floor"] = row["numpy_loop_s"] / row["floor_s"]
            row["numpy_loop_x_torch"] = row["numpy_loop_s"] / row["torch_s"]
        if with_sklearn and not args.skip_sklearn and opt == "sgd":
            row["sklearn_s"] = median_time(sklearn_epoch(X, y, dims, bs, opt), max(1, reps // 2))
        row["samples_per_s"] = n / row["mlpnumpy_s"]
        row["x_floor"] = row["mlpnumpy_s"] / row["floor_s"]
        row["x_torch"] = row["mlpnumpy_s"] / row["torch_s"]
        if "sklearn_s" in row:
            row["x_sklearn"] = row["mlpnumpy_s"] / row["sklearn_s"]
        results["configs"].append(row)
        models[name] = (model, net)
        print(json.dumps(row), flush=True)

    main_name = configs[0][0]
    model, net = models[main_name]
    adam = next(r for r in results["configs"] if r["optimizer"] == "adam")
    sgd = results["configs"][0]
    results["adam_over_sgd"] = adam["mlpnumpy_s"] / sgd["mlpnumpy_s"]

    # inference: throughput on the test set and single-sample latency
    net.eval()
    Xte_t = torch.from_numpy(Xte)
    with torch.no_grad():
        t_ours = median_time(lambda: model.predict_proba(Xte), reps * 2)
        t_torch = median_time(lambda: torch.softmax(net(Xte_t), 1), reps * 2)
        x1 = Xte[:1]
        x1t = Xte_t[:1]
        lat_ours = latency(model.predict_proba, x1)
        lat_torch = latency(lambda t: torch.softmax(net(t), 1), x1t)
    results["inference"] = {"mlpnumpy_samples_per_s": Xte.shape[0] / t_ours,
                            "torch_samples_per_s": Xte.shape[0] / t_torch,
                            "mlpnumpy_latency_us": lat_ours * 1e6, "torch_latency_us": lat_torch * 1e6}
    print(json.dumps(results["inference"]), flush=True)

    mem = peak_memory(None)
    mem["training_peak_over_load"] = mem["peak"] - mem["base"]
    mem["ratio_to_dataset"] = mem["training_peak_over_load"] / mem["dataset_bytes"]
    results["memory"] = mem
    print(json.dumps(mem), flush=True)

    if args.time_to_accuracy:
        from time_to_accuracy import run as tta
        results["time_to_090"] = tta(X, y, Xte, yte)
        print(json.dumps(results["time_to_090"]), flush=True)

    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out + ".json", "w") as f:
        json.dump(results, f, indent=2)
    with open(args.out + ".md", "w") as f:
        f.write(markdown(results))
    print(markdown(results))


def markdown(r) -> str:
    m = r["machine"]
    lines = [f"Machine: {m.get('cpu')}, {m.get('cpus')} CPUs, {r['threads']} BLAS threads; "
             f"Python {m['python']}, NumPy {m['numpy']}, PyTorch {m.get('torch', '-')}, "
             f"scikit-learn {m.get('sklearn', '-')}. Medians of {r['repeats']} epochs, Fashion-MNIST "
             "(60,000 images), float32.", "",
             "| configuration | mlpnumpy s/epoch | samples/s | floor s | PyTorch s | scikit-learn s "
             "| x floor | x PyTorch | x scikit-learn |",
             "|---|---|---|---|---|---|---|---|---|"]
    for c in r["configs"]:
        sk = f"{c['sklearn_s']:.2f}" if "sklearn_s" in c else "-"
        xsk = f"{c['x_sklearn']:.3f}" if "x_sklearn" in c else "-"
        lines.append(f"| {c['config']} | {c['mlpnumpy_s']:.3f} | {c['samples_per_s']:,.0f} | {c['floor_s']:.3f} "
                     f"| {c['torch_s']:.3f} | {sk} | {c['x_floor']:.2f} | {c['x_torch']:.2f} | {xsk} |")
    flat = [c for c in r["configs"] if "numpy_loop_s" in c]
    if flat:
        lines += ["", "The leanest NumPy loop for the same SGD epochs (`numpy_loop_epoch`: one flat loop, same "
                  "batches as PyTorch), against which mlpnumpy's `fit` is measured:", "",
                  "| configuration | NumPy loop s | loop x floor | loop x PyTorch | mlpnumpy x loop |",
                  "|---|---|---|---|---|"]
        lines += [f"| {c['config']} | {c['numpy_loop_s']:.3f} | {c['numpy_loop_x_floor']:.2f} "
                  f"| {c['numpy_loop_x_torch']:.2f} | {c['x_numpy_loop']:.2f} |" for c in flat]
    inf = r["inference"]
    mem = r["memory"]
    lines += ["", f"Adam epoch / SGD epoch: {r['adam_over_sgd']:.2f}", "",
              "| inference | mlpnumpy | PyTorch |", "|---|---|---|",
              f"| test-set throughput (samples/s) | {inf['mlpnumpy_samples_per_s']:,.0f} | "
              f"{inf['torch_samples_per_s']:,.0f} |",
              f"| single-sample latency (us, median) | {inf['mlpnumpy_latency_us']:.1f} | "
              f"{inf['torch_latency_us']:.1f} |", "",
              f"Peak memory while training one epoch: {mem['training_peak_over_load'] / 2**20:.0f} MiB above the "
              f"process before loading, for a data set of {mem['dataset_bytes'] / 2**20:.0f} MiB "
              f"({mem['ratio_to_dataset']:.2f} x the data set)."]
    if "time_to_090" in r:
        t = r["time_to_090"]
        def reached(who):
            if t[f"{who}_s"] is None:
                return f"not reached in {t['recipe']['epochs']} epochs"
            return f"{t[f'{who}_s']:.1f} s (epoch {t[f'{who}_epoch']})"
        ratio = "" if None in (t["mlpnumpy_s"], t["torch_s"]) else f", ratio {t['mlpnumpy_s'] / t['torch_s']:.2f}"
        lines += ["", f"Time to 0.90 test accuracy with the CLI recipe (same initial weights, same batches): "
                      f"mlpnumpy {reached('mlpnumpy')}, PyTorch {reached('torch')}{ratio}. Training time per "
                      f"epoch: mlpnumpy {t['mlpnumpy_epoch_s']:.3f} s, PyTorch {t['torch_epoch_s']:.3f} s "
                      f"(ratio {t['mlpnumpy_epoch_s'] / t['torch_epoch_s']:.2f})."]
        if "floor_epoch_s" in t:
            lines[-1] += (f" The floor's epoch for these {t['train_rows']:,} rows: {t['floor_epoch_s']:.3f} s, "
                          f"{t['floor_epoch_s'] / t['torch_epoch_s']:.2f} x PyTorch's; a third of PyTorch's time "
                          f"needs an epoch within {t['torch_epoch_s'] / 3 / t['floor_epoch_s']:.2f} x the floor.")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
