"""Whole-command wall time and test accuracy of ``mlpnumpy train --data fashion-mnist`` (the default
recipe) against a PyTorch CPU script of a good reference recipe, run side by side on this machine.

The PyTorch recipe (issue 21): 784-512-256-10 ReLU with dropout 0.2 after each hidden layer, AdamW
(lr 1e-3, weight decay 1e-2: torch's defaults), cosine annealing to 0 over the run stepped every batch,
batch 128, 20 epochs, cross-entropy, on the same 54,000 standardised training rows (the same 10% held
out for validation, evaluated after every epoch as ``mlpnumpy train`` does), then the test set. Both
commands are timed from the outside, as a user would time them: interpreter start, imports, reading
the data, training, evaluation and (for mlpnumpy) writing the run folder with its figures. Both use
every core (the BLAS's and torch's default thread counts).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/recipe_vs_torch.py
    python benchmarks/recipe_vs_torch.py --seeds 0 1 2 --repeats 3     # three fresh runs per seed
    python benchmarks/recipe_vs_torch.py --recipe best --torch-runs 0  # another recipe, no torch runs

It prints a table and writes ``benchmarks/recipe_vs_torch.json`` (every run, the machine, the BLAS
kernel threadpoolctl reports, the load average before and after). The script re-runs itself without
OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE (they pin OpenBLAS to another kernel than the CPU's own).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _drop_old_openblas_settings():
    bad = [k for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ]
    if bad:
        print(f"(re-running without {', '.join(bad)})", flush=True)
        env = {k: v for k, v in os.environ.items() if k not in bad}
        os.execve(sys.executable, [sys.executable, *sys.argv], env)


def torch_run(seed: int, epochs: int = 20) -> dict:
    """The PyTorch reference recipe; returns its accuracies (run in a fresh interpreter by ``main``)."""
    import numpy as np
    import torch
    from torch import nn

    from mlpnumpy.datasets import load
    from mlpnumpy.datasets.splits import train_val_split
    torch.manual_seed(seed)
    ds = load("fashion-mnist", download=False)
    X, y = ds.X_train, ds.y_train.astype(np.int64)
    tr, va = train_val_split(y, 0.1, np.random.default_rng([seed, 1]), stratify=True)
    mean, std = X[tr].mean(0), X[tr].std(0)
    std[std == 0] = 1.0

    def prep(a):
        return torch.from_numpy(((a - mean) / std).astype(np.float32))
    Xtr, ytr, Xva, yva = prep(X[tr]), torch.from_numpy(y[tr]), prep(X[va]), torch.from_numpy(y[va])
    Xte, yte = prep(ds.X_test), torch.from_numpy(ds.y_test.astype(np.int64))
    net = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Dropout(0.2), nn.Linear(512, 256), nn.ReLU(),
                        nn.Dropout(0.2), nn.Linear(256, 10))
    bs = 128
    steps = -(-len(Xtr) // bs)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1e-2)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * steps)
    lossf = nn.CrossEntropyLoss()
    g = torch.Generator().manual_seed(seed)

    def accuracy(Xs, ys):
        net.eval()
        with torch.no_grad():
            return float((net(Xs).argmax(1) == ys).float().mean())
    val = []
    for _ in range(epochs):
        net.train()
        perm = torch.randperm(len(Xtr), generator=g)
        for s in range(0, len(Xtr), bs):
            idx = perm[s:s + bs]
            opt.zero_grad(set_to_none=True)
            lossf(net(Xtr[idx]), ytr[idx]).backward()
            opt.step()
            sched.step()
        val.append(accuracy(Xva, yva))
    return {"validation_accuracy": val[-1], "test_accuracy": accuracy(Xte, yte), "val_per_epoch": val,
            "torch": torch.__version__, "torch_threads": torch.get_num_threads()}


def _timed(cmd: list[str]) -> tuple[float, subprocess.CompletedProcess]:
    t = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - t
    if res.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({res.returncode}):\n{res.stderr[-2000:]}")
    return seconds, res


def run_ours(seed: int, recipe: str, folder: Path) -> dict:
    out = folder / f"mlpnumpy-{recipe}-seed{seed}-{time.time_ns()}"
    cmd = [sys.executable, "-m", "mlpnumpy", "train", "--data", "fashion-mnist", "--no-download", "--seed",
           str(seed), "--out", str(out), "--quiet"] + ([] if recipe == "default" else ["--recipe", recipe])
    seconds, _ = _timed(cmd)
    m = json.loads((out / "metrics.json").read_text())
    return {"who": f"mlpnumpy --recipe {recipe}", "seed": seed, "wall_s": seconds,
            "validation_accuracy": m["validation_accuracy"], "test_accuracy": m["test_accuracy"],
            "fit_s": m["fit_seconds"], "command": " ".join(["mlpnumpy", *cmd[3:]])}


def run_torch(seed: int) -> dict:
    seconds, res = _timed([sys.executable, __file__, "--torch-run", str(seed)])
    r = json.loads(res.stdout.strip().splitlines()[-1])
    return {"who": "PyTorch 784-512-256 dropout 0.2 AdamW cosine", "seed": seed, "wall_s": seconds, **r}


def machine() -> dict:
    import platform

    import numpy as np
    info = {"python": platform.python_version(), "numpy": np.__version__, "cpus": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as fh:
            info["cpu"] = next((l.split(":", 1)[1].strip() for l in fh if l.startswith("model name")), None)
    except OSError:
        pass
    try:
        import threadpoolctl
        info["blas"] = [{k: d.get(k) for k in ("internal_api", "version", "num_threads", "architecture")}
                        for d in threadpoolctl.threadpool_info()]
    except ImportError:
        info["blas"] = "threadpoolctl not installed"
    return info


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="mlpnumpy seeds (default 0)")
    p.add_argument("--repeats", type=int, default=1, help="fresh runs of each command (default 1)")
    p.add_argument("--recipe", default="default", help="mlpnumpy's --recipe (default: default)")
    p.add_argument("--torch-runs", type=int, default=None,
                   help="PyTorch runs per repeat, seed 0 (default 1; 0 for none)")
    p.add_argument("--json", default=str(HERE / "recipe_vs_torch.json"), help="where to write the results")
    p.add_argument("--keep", metavar="DIR", default=None,
                   help="keep mlpnumpy's run folders in DIR (default: a temporary folder, deleted)")
    p.add_argument("--torch-run", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.torch_run is not None:
        print(json.dumps(torch_run(args.torch_run)))
        return 0
    _drop_old_openblas_settings()
    info = machine()
    print(f"Machine: {info.get('cpu')}, {info['cpus']} CPUs; NumPy {info['numpy']}; BLAS "
          + "; ".join(f"{b['internal_api']} {b['version']} {b['architecture']} kernel, {b['num_threads']} threads"
                      for b in info["blas"] if isinstance(b, dict)), flush=True)
    load_before = os.getloadavg()
    print(f"Load average before: {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}", flush=True)
    torch_runs = 1 if args.torch_runs is None else args.torch_runs
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        if args.keep is not None:
            Path(args.keep).mkdir(parents=True, exist_ok=True)
            tmp = args.keep
        for r in range(args.repeats):  # interleaved, so that a change of load touches both
            for _ in range(torch_runs):
                runs.append({"repeat": r + 1, **run_torch(0)})
                print(f"  repeat {r + 1}: {runs[-1]['who']}: test {runs[-1]['test_accuracy']:.4f}, "
                      f"{runs[-1]['wall_s']:.1f} s", flush=True)
            for seed in args.seeds:
                runs.append({"repeat": r + 1, **run_ours(seed, args.recipe, Path(tmp))})
                print(f"  repeat {r + 1}: {runs[-1]['who']} seed {seed}: validation "
                      f"{runs[-1]['validation_accuracy']:.4f}, test {runs[-1]['test_accuracy']:.4f}, "
                      f"{runs[-1]['wall_s']:.1f} s", flush=True)
    load_after = os.getloadavg()
    print(f"Load average after: {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")
    ours0 = [x["wall_s"] for x in runs if x["who"].startswith("mlpnumpy") and x["seed"] == args.seeds[0]]
    theirs = [x["wall_s"] for x in runs if x["who"].startswith("PyTorch")]
    summary = {"ours_median_s": statistics.median(ours0)}
    print(f"\n| command | seed | validation | test | wall s (each run) |\n|---|---|---|---|---|")
    for who in dict.fromkeys(x["who"] for x in runs):
        for seed in dict.fromkeys(x["seed"] for x in runs if x["who"] == who):
            rs = [x for x in runs if x["who"] == who and x["seed"] == seed]
            cells = [", ".join(f"{x[k]:{fmt}}" for x in rs) for k, fmt in
                     (("validation_accuracy", ".4f"), ("test_accuracy", ".4f"), ("wall_s", ".1f"))]
            print(f"| {who} | {seed} | " + " | ".join(cells) + " |")
    if theirs:
        summary.update(torch_median_s=statistics.median(theirs),
                       ratio=statistics.median(ours0) / statistics.median(theirs))
        print(f"\nWall time, mlpnumpy seed {args.seeds[0]} / PyTorch (medians): {summary['ours_median_s']:.1f} s / "
              f"{summary['torch_median_s']:.1f} s = {summary['ratio']:.2f}")
    Path(args.json).write_text(json.dumps({"machine": info, "load_before": load_before, "load_after": load_after,
                                           "args": vars(args), "summary": summary, "runs": runs}, indent=1))
    print(f"(written to {args.json})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
