"""Training and inference speed of mlpnumpy's two paths (fast and reference) against PyTorch (CPU),
scikit-learn, the matrix-multiply floor and the leanest hand-written NumPy loop, on Fashion-MNIST
(Debian's dataset-fashion-mnist, or any folder mlpnumpy.datasets finds).

    python benchmarks/bench_training.py --time-to-accuracy   # full run (3 runs), writes results.{json,md}
    python benchmarks/bench_training.py --quick --runs 1     # fewer repeats

Every contender is timed in the same process, interleaved, so ratios compare like with like on a noisy
machine; each run takes the median of several epochs, and the tables give the median over the runs
(the ratios: the median of each run's own ratio, with the range over runs). All contenders use the
same BLAS thread count. The script drops OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE from its environment
(set on some machines for old OpenBLAS builds, they slow NumPy 2.4's) and reports the BLAS kernel
threadpoolctl sees.
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


def mlpnumpy_epoch(X, y, dims, batch_size, optimizer, path="fast"):
    from mlpnumpy import MLP
    model = MLP(dims, seed=0, path=path)
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


def peak_memory(data_dir_args, env=None):
    """Peak resident memory of training one epoch, in a fresh process: VmHWM after the epoch, with
    the peak reset once the data are loaded, minus the process's size before loading them (numba,
    imported by the first fit, counts in the peak; ``kernels_import`` is what its import alone adds)."""
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
    imp = r"""
import json, mlpnumpy
def rss():
    return int([l for l in open('/proc/self/status') if l.startswith('VmRSS')][0].split()[1]) * 1024
before = rss()
from mlpnumpy._kernels import kernels
kernels()
print(json.dumps({'kernels_import': rss() - before}))
"""
    env = None if env is None else {**os.environ, **env}
    res = {}
    for c in (code, imp):
        out = subprocess.run([sys.executable, "-c", c], capture_output=True, text=True, check=True, env=env)
        res.update(json.loads(out.stdout.strip().splitlines()[-1]))
    return res


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


def numba_startup():
    """What numba's compilation costs a fresh process: one epoch of the digits on the fast path in a new
    interpreter with an empty kernel cache (every kernel compiles), again with that cache filled (the
    kernels load from it), and with the NumPy kernels. Seconds from before ``import mlpnumpy`` to the
    end of the fit, so the import of numba is included."""
    import tempfile
    code = r"""
import json, time
t0 = time.perf_counter()
import mlpnumpy
from mlpnumpy.datasets import load
d = load('digits')
for dtype in ('float32', 'float64'):
    m = mlpnumpy.MLP([64, 32, 10], seed=0, dtype=dtype)
    m.fit(d.X_train, d.y_train, epochs=1, batch_size=32, optimizer='adam', verbose=False, path='fast')
    m.fit(d.X_train, d.y_train, epochs=1, batch_size=32, optimizer='sgd', verbose=False, path='fast')
print(json.dumps({'seconds': time.perf_counter() - t0}))
"""
    out = {}
    with tempfile.TemporaryDirectory() as cache:
        for name, extra in (("numba_first_run_s", {"NUMBA_CACHE_DIR": cache}),
                            ("numba_cached_s", {"NUMBA_CACHE_DIR": cache}),
                            ("numpy_kernels_s", {"MLPNUMPY_NUMBA": "0"})):
            env = {**os.environ, **extra}
            res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
            out[name] = json.loads(res.stdout.strip().splitlines()[-1])["seconds"]
    out["compile_s"] = out["numba_first_run_s"] - out["numpy_kernels_s"]
    out["cached_start_s"] = out["numba_cached_s"] - out["numpy_kernels_s"]
    return out


def _drop_old_openblas_settings():
    """Re-run this script without OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE (read when NumPy loads OpenBLAS)."""
    bad = [k for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ]
    if bad:
        print(f"(re-running without {', '.join(bad)})", flush=True)
        env = {k: v for k, v in os.environ.items() if k not in bad}
        os.execve(sys.executable, [sys.executable, *sys.argv], env)


CONFIGS = [  # name, dims, batch, optimizer, with the reference path and scikit-learn
    ("main: 784-256-128-10, batch 128, SGD", [784, 256, 128, 10], 128, "sgd", True),
    ("batch 32, SGD", [784, 256, 128, 10], 32, "sgd", False),
    ("batch 512, SGD", [784, 256, 128, 10], 512, "sgd", False),
    ("wide: 784-1024-1024-10, batch 128, SGD", [784, 1024, 1024, 10], 128, "sgd", False),
    ("Adam, batch 128", [784, 256, 128, 10], 128, "adam", False),
]


def one_run(X, y, reps, skip_sklearn):
    """Every configuration once: each contender timed ``reps`` times, interleaved; medians."""
    n = X.shape[0]
    rows, models = [], {}
    for name, dims, bs, opt, full in CONFIGS:
        batches = make_batches(n, bs, 0)
        contenders = {"fast": mlpnumpy_epoch(X, y, dims, bs, opt, "fast")[0]}
        if full:
            contenders["reference"] = mlpnumpy_epoch(X, y, dims, bs, opt, "reference")[0]
        theirs, net = torch_epoch(X, y, dims, bs, opt, batches)
        contenders["torch"] = lambda theirs=theirs: median_time(theirs, 1)
        fl = floor_epoch(X, dims, bs)
        fl()
        contenders["floor"] = lambda fl=fl: median_time(fl, 1)
        if opt == "sgd":
            flat = numpy_loop_epoch(X, y, dims, bs, batches)
            contenders["numpy_loop"] = lambda flat=flat: median_time(flat, 1)
        else:  # the same network with SGD, interleaved with Adam's epochs: their ratio from the same moments
            contenders["fast_sgd"] = mlpnumpy_epoch(X, y, dims, bs, "sgd", "fast")[0]
        if full and not skip_sklearn and opt == "sgd":  # interleaved with the others as well
            theirs_sk = sklearn_epoch(X, y, dims, bs, opt)
            contenders["sklearn"] = lambda theirs_sk=theirs_sk: median_time(theirs_sk, 1)
        times = {k: [] for k in contenders}
        for _ in range(reps):  # interleaved, so a noisy moment hurts every contender alike
            for k, fn in contenders.items():
                times[k].append(fn())
        row = {"config": name, "dims": dims, "batch_size": bs, "optimizer": opt, "rows": n}
        row.update({f"{k}_s": float(np.median(v)) for k, v in times.items()})
        rows.append(row)
        models[name] = net
        print(json.dumps(row), flush=True)
    return rows, models


def ratios(row):
    r = {"fast_x_floor": row["fast_s"] / row["floor_s"], "fast_x_torch": row["fast_s"] / row["torch_s"]}
    if "sklearn_s" in row:
        r["fast_x_sklearn"] = row["fast_s"] / row["sklearn_s"]
    if "reference_s" in row:
        r["reference_x_floor"] = row["reference_s"] / row["floor_s"]
        r["reference_x_torch"] = row["reference_s"] / row["torch_s"]
        if "sklearn_s" in row:
            r["reference_x_sklearn"] = row["reference_s"] / row["sklearn_s"]
    if "numpy_loop_s" in row:
        r["numpy_loop_x_floor"] = row["numpy_loop_s"] / row["floor_s"]
        r["fast_x_numpy_loop"] = row["fast_s"] / row["numpy_loop_s"]
    return r


def combine(runs):
    """One row per configuration: the median over runs of each time and of each run's own ratios,
    with the ratios' range over runs."""
    out = []
    for i, first in enumerate(runs[0]):
        rows = [run[i] for run in runs]
        row = {k: first[k] for k in ("config", "dims", "batch_size", "optimizer", "rows")}
        for k in first:
            if k.endswith("_s"):
                row[k] = float(np.median([r[k] for r in rows]))
        per_run = [ratios(r) for r in rows]
        for k in per_run[0]:
            vals = [pr[k] for pr in per_run]
            row[k] = float(np.median(vals))
            row[k + "_range"] = [float(min(vals)), float(max(vals))]
        row["samples_per_s"] = row["rows"] / row["fast_s"]
        out.append(row)
    return out


def targets(r) -> list[tuple[str, float, float, bool]]:
    """Issue 15's targets: (what, measured, limit, met)."""
    main_row, b32 = r["configs"][0], r["configs"][1]
    t = [("fast path, batch 128, SGD: x the floor", main_row["fast_x_floor"], 1.25),
         ("fast path, batch 128, SGD: x PyTorch", main_row["fast_x_torch"], 0.45)]
    if "fast_x_sklearn" in main_row:
        t.append(("fast path, batch 128, SGD: x scikit-learn", main_row["fast_x_sklearn"], 0.35))
        t.append(("reference path, batch 128, SGD: x scikit-learn", main_row["reference_x_sklearn"], 1.0))
    t.append(("Adam epoch: x the SGD epoch (fast path)", r["adam_over_sgd"], 1.15))
    t.append(("batch 32, SGD: x PyTorch", b32["fast_x_torch"], 0.5))
    if "time_to_090" in r and r["time_to_090"]["mlpnumpy_s"] and r["time_to_090"]["torch_s"]:
        tt = r["time_to_090"]
        t.append(("CLI recipe, time to 0.90 test accuracy: x PyTorch", tt["mlpnumpy_s"] / tt["torch_s"], 0.5))
    return [(what, v, lim, v <= lim) for what, v, lim in t]


def main(argv=None):
    _drop_old_openblas_settings()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer repeats")
    ap.add_argument("--repeats", type=int, default=None, help="epochs timed per contender in each run")
    ap.add_argument("--runs", type=int, default=3, help="whole runs over every configuration (default 3)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    ap.add_argument("--skip-sklearn", action="store_true")
    ap.add_argument("--time-to-accuracy", action="store_true", help="also time reaching 0.90 test accuracy")
    ap.add_argument("--rows", type=int, default=None, help="train on the first ROWS images only (a smoke test)")
    args = ap.parse_args(argv)
    reps = args.repeats or (3 if args.quick else 5)
    import torch
    torch.set_num_threads(args.threads)
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(args.threads)
    except ImportError:
        pass
    from mlpnumpy._kernels import describe
    from mlpnumpy.datasets import load
    d = load("fashion-mnist")
    X, y, Xte, yte = d.X_train[:args.rows], d.y_train[:args.rows], d.X_test, d.y_test
    results = {"machine": machine(), "kernels": describe(), "repeats": reps, "runs": args.runs,
               "threads": args.threads, "command": "python benchmarks/bench_training.py " + " ".join(
                   sys.argv[1:] if argv is None else argv)}
    print(results["kernels"], flush=True)
    runs = []
    for i in range(args.runs):
        print(f"run {i + 1} of {args.runs}", flush=True)
        rows, models = one_run(X, y, reps, args.skip_sklearn)
        runs.append(rows)
    results["per_run"] = runs
    results["configs"] = combine(runs)
    adam = next(i for i, c in enumerate(CONFIGS) if c[3] == "adam")
    per_run_adam = [run[adam]["fast_s"] / run[adam]["fast_sgd_s"] for run in runs]
    results["adam_over_sgd"] = float(np.median(per_run_adam))
    results["adam_over_sgd_range"] = [min(per_run_adam), max(per_run_adam)]

    # inference on the fast path: throughput on the test set and single-sample latency
    from mlpnumpy import MLP, to_torch
    model = MLP([784, 256, 128, 10], seed=0)
    model.fit(X[:5000], y[:5000], epochs=1, verbose=False)
    net = to_torch(model)
    net.eval()
    Xte_t = torch.from_numpy(Xte)
    with torch.no_grad():
        t_ours = median_time(lambda: model.predict_proba(Xte), reps * 2)
        t_torch = median_time(lambda: torch.softmax(net(Xte_t), 1), reps * 2)
        lat_ours = latency(model.predict_proba, Xte[:1])
        lat_torch = latency(lambda t: torch.softmax(net(t), 1), Xte_t[:1])
    results["inference"] = {"mlpnumpy_samples_per_s": Xte.shape[0] / t_ours,
                            "torch_samples_per_s": Xte.shape[0] / t_torch,
                            "mlpnumpy_latency_us": lat_ours * 1e6, "torch_latency_us": lat_torch * 1e6}
    print(json.dumps(results["inference"]), flush=True)

    mem = peak_memory(None)
    mem["training_peak_over_load"] = mem["peak"] - mem["base"]
    mem["ratio_to_dataset"] = mem["training_peak_over_load"] / mem["dataset_bytes"]
    plain = peak_memory(None, {"MLPNUMPY_NUMBA": "0"})  # the same epoch with the NumPy kernels
    mem["numpy_kernels_peak_over_load"] = plain["peak"] - plain["base"]
    mem["numpy_kernels_ratio_to_dataset"] = mem["numpy_kernels_peak_over_load"] / plain["dataset_bytes"]
    results["memory"] = mem
    print(json.dumps(mem), flush=True)
    try:
        results["numba_startup"] = numba_startup()
        print(json.dumps(results["numba_startup"]), flush=True)
    except (subprocess.CalledProcessError, ImportError) as exc:
        results["numba_startup"] = {"error": str(exc)}

    if args.time_to_accuracy:
        from time_to_accuracy import run as tta
        results["time_to_090"] = tta(X, y, Xte, yte)
        print(json.dumps({k: v for k, v in results["time_to_090"].items() if not k.endswith("curve")}), flush=True)
    results["targets"] = [{"target": w, "measured": v, "limit": lim, "met": ok} for w, v, lim, ok in targets(results)]

    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out + ".json", "w") as f:
        json.dump(results, f, indent=2)
    with open(args.out + ".md", "w") as f:
        f.write(markdown(results))
    print(markdown(results))


def markdown(r) -> str:
    m = r["machine"]
    blas = "; ".join(f"{b.get('internal_api')} {b.get('version')} kernel {b.get('architecture')}, "
                     f"{b.get('num_threads')} threads" for b in m.get("blas", [])) or "unknown"
    lines = [f"Machine: {m.get('cpu')}, {m.get('cpus')} CPUs; BLAS: {blas}; Python {m['python']}, NumPy "
             f"{m['numpy']}, PyTorch {m.get('torch', '-')}, scikit-learn {m.get('sklearn', '-')}. "
             f"{r['kernels']}.", "",
             f"Command: `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE {r['command']}`. Fashion-MNIST "
             f"({r['configs'][0]['rows']:,} training images), float32, {r['threads']} threads for everyone; seconds per epoch, the median over "
             f"{r['runs']} runs of each run's median of {r['repeats']} epochs; ratios are the median of each "
             "run's own ratio [range over runs].", "",
             "| configuration | fast s | reference s | floor s | PyTorch s | scikit-learn s | fast x floor "
             "| fast x PyTorch | fast x scikit-learn | reference x scikit-learn |",
             "|---|---|---|---|---|---|---|---|---|---|"]

    def rr(c, k, fmt="{:.2f}"):
        if k not in c:
            return "-"
        lo, hi = c[k + "_range"]
        return f"{fmt.format(c[k])} [{fmt.format(lo)}-{fmt.format(hi)}]"
    for c in r["configs"]:
        sk = f"{c['sklearn_s']:.2f}" if "sklearn_s" in c else "-"
        ref = f"{c['reference_s']:.3f}" if "reference_s" in c else "-"
        lines.append(f"| {c['config']} | {c['fast_s']:.3f} | {ref} | {c['floor_s']:.3f} | {c['torch_s']:.3f} | {sk} "
                     f"| {rr(c, 'fast_x_floor')} | {rr(c, 'fast_x_torch')} | {rr(c, 'fast_x_sklearn')} "
                     f"| {rr(c, 'reference_x_sklearn')} |")
    flat = [c for c in r["configs"] if "numpy_loop_s" in c]
    if flat:
        lines += ["", "The leanest NumPy loop for the same SGD epochs (`numpy_loop_epoch`: one flat loop, same "
                  "batches as PyTorch), what NumPy alone reaches:", "",
                  "| configuration | NumPy loop s | loop x floor | fast path x loop |", "|---|---|---|---|"]
        lines += [f"| {c['config']} | {c['numpy_loop_s']:.3f} | {rr(c, 'numpy_loop_x_floor')} "
                  f"| {rr(c, 'fast_x_numpy_loop')} |" for c in flat]
    inf = r["inference"]
    mem = r["memory"]
    lo, hi = r["adam_over_sgd_range"]
    lines += ["", f"Adam epoch / SGD epoch (fast path; the same network's SGD epochs timed interleaved with Adam's, "
              f"per run): {r['adam_over_sgd']:.2f} [{lo:.2f}-{hi:.2f}]", "",
              "| inference (fast path) | mlpnumpy | PyTorch |", "|---|---|---|",
              f"| test-set throughput (samples/s) | {inf['mlpnumpy_samples_per_s']:,.0f} | "
              f"{inf['torch_samples_per_s']:,.0f} |",
              f"| single-sample latency (us, median) | {inf['mlpnumpy_latency_us']:.1f} | "
              f"{inf['torch_latency_us']:.1f} |", "",
              f"Peak memory while training one epoch: {mem['training_peak_over_load'] / 2**20:.0f} MiB above the "
              f"process before loading, for a data set of {mem['dataset_bytes'] / 2**20:.0f} MiB "
              f"({mem['ratio_to_dataset']:.2f} x the data set)."]
    if "numpy_kernels_peak_over_load" in mem:
        lines[-1] += (f" With the NumPy kernels (MLPNUMPY_NUMBA=0): {mem['numpy_kernels_peak_over_load'] / 2**20:.0f} "
                      f"MiB ({mem['numpy_kernels_ratio_to_dataset']:.2f} x). The difference is numba's: its import "
                      f"({mem['kernels_import'] / 2**20:.0f} MiB in a process that has not trained) and the compiled "
                      "kernels it loads, a fixed size that does not grow with the data.")
    ns = r.get("numba_startup", {})
    if "compile_s" in ns:
        lines += ["", f"numba's cost to a fresh process (import, then one digits epoch each of Adam and SGD in "
                  f"float32 and float64): {ns['numba_first_run_s']:.1f} s with an empty kernel cache (compiling: "
                  f"+{ns['compile_s']:.1f} s over the NumPy kernels' {ns['numpy_kernels_s']:.1f} s), "
                  f"{ns['numba_cached_s']:.1f} s from the cache (+{ns['cached_start_s']:.2f} s)."]
    if "time_to_090" in r:
        t = r["time_to_090"]

        def reached(who):
            if t[f"{who}_s"] is None:
                return f"not reached in {t['recipe']['epochs']} epochs"
            return f"{t[f'{who}_s']:.1f} s (epoch {t[f'{who}_epoch']})"
        ratio = "" if None in (t["mlpnumpy_s"], t["torch_s"]) else f", ratio {t['mlpnumpy_s'] / t['torch_s']:.2f}"
        lines += ["", f"Time to 0.90 test accuracy with the CLI recipe (same initial weights, same batches, fast "
                      f"path): mlpnumpy {reached('mlpnumpy')}, PyTorch {reached('torch')}{ratio}. Training time "
                      f"per epoch: mlpnumpy {t['mlpnumpy_epoch_s']:.3f} s, PyTorch {t['torch_epoch_s']:.3f} s "
                      f"(ratio {t['mlpnumpy_epoch_s'] / t['torch_epoch_s']:.2f}); final test accuracy "
                      f"{t['mlpnumpy_final_acc']:.4f} and {t['torch_final_acc']:.4f}."]
        if "floor_epoch_s" in t:
            lines[-1] += (f" The floor's epoch for these {t['train_rows']:,} rows: {t['floor_epoch_s']:.3f} s, "
                          f"{t['floor_epoch_s'] / t['torch_epoch_s']:.2f} x PyTorch's.")
    if r.get("targets"):
        lines += ["", "| target (issue 15) | measured | limit | met |", "|---|---|---|---|"]
        lines += [f"| {t['target']} | {t['measured']:.2f} | {t['limit']:.2f} | {'yes' if t['met'] else 'NO'} |"
                  for t in r["targets"]]
        c = r["configs"][0]
        need = [f"{lim} x PyTorch's {c['torch_s']:.3f} s is {lim * c['torch_s']:.3f} s, "
                f"{lim * c['torch_s'] / c['floor_s']:.2f} x the floor" for lim in (0.45,)]
        if "sklearn_s" in c:
            need.append(f"0.35 x scikit-learn's {c['sklearn_s']:.2f} s is {0.35 * c['sklearn_s']:.3f} s, "
                        f"{0.35 * c['sklearn_s'] / c['floor_s']:.2f} x the floor")
        lines += ["", f"What the ratio targets ask of the main configuration, against its floor ({c['floor_s']:.3f} s: "
                  "the epoch's matrix multiplies alone, on contiguous slices, nothing else): " + "; ".join(need) +
                  ". A trainer does those multiplies and more (the batch gather, the element-wise passes, the "
                  "update, the loss): a limit below 1.0 x the floor cannot be met by any trainer on this machine, "
                  "and one a few percent above it leaves less than the gather of the shuffled batches alone costs "
                  "(the leanest NumPy loop above pays it too)."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
