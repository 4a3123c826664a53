"""Seven optimizers on one problem, each at its best learning rate, and their paths across a 2-D
loss surface.

Part 1 trains the same 64-64-10 ReLU MLP on the embedded digits (same seed, same batches) with SGD,
SGD with momentum, Nesterov, RMSprop, Adagrad, Adam and AdamW. An optimizer is only as good as its
learning rate, so each one first runs on a small grid of rates (:data:`OPTIMIZERS`) and is compared at
the rate with the lowest final validation loss. Part 2 runs the same optimizer classes on a 2-element
:class:`~mlpnumpy.nn.parameter.Parameter` over the Rosenbrock function
:math:`f(x, y) = (1 - x)^2 + 100 (y - x^2)^2` (minimum 0 at (1, 1), at the end of a curved, flat
valley), from the classic start (-1.2, 1), again at each one's best rate from its grid.
"""
from __future__ import annotations

import os

import numpy as np

from ..nn.model import MLP
from ..optim.optimizers import SGD, Adagrad, Adam, AdamW, RMSprop
from ..nn.parameter import Parameter
from ._common import finish, new_figure, prepare_out, save_figure
from ._digits import digits_problem

__all__ = ["OPTIMIZERS", "rosenbrock", "rosenbrock_grad", "descend", "run"]

#: name -> (``make(lr)``, learning-rate grid for the digits MLP, grid for Rosenbrock). Each grid spans
#: 30x (Rosenbrock's SGD family 8x, up to where it diverges) and was widened until the chosen rate is
#: inside it (the JSON's ``lr_at_grid_edge`` says when a run picks an end of its grid).
OPTIMIZERS = {
    "sgd": (lambda lr: SGD(lr=lr), (0.03, 0.1, 0.3, 1.0), (5e-4, 1e-3, 2e-3, 4e-3)),
    "momentum": (lambda lr: SGD(lr=lr, momentum=0.9), (0.003, 0.01, 0.03, 0.1), (5e-4, 1e-3, 2e-3, 4e-3)),
    "nesterov": (lambda lr: SGD(lr=lr, momentum=0.9, nesterov=True), (0.003, 0.01, 0.03, 0.1),
                 (5e-4, 1e-3, 2e-3, 4e-3)),
    "rmsprop": (lambda lr: RMSprop(lr=lr), (3e-4, 1e-3, 3e-3, 1e-2), (1e-3, 3e-3, 1e-2, 3e-2)),
    "adagrad": (lambda lr: Adagrad(lr=lr), (0.01, 0.03, 0.1, 0.3), (0.1, 0.3, 1.0, 3.0)),
    "adam": (lambda lr: Adam(lr=lr), (3e-4, 1e-3, 3e-3, 1e-2), (0.01, 0.03, 0.1, 0.3)),
    "adamw": (lambda lr: AdamW(lr=lr, weight_decay=1e-2), (3e-4, 1e-3, 3e-3, 1e-2), (0.01, 0.03, 0.1, 0.3)),
}
START = (-1.2, 1.0)


def rosenbrock(x, y):
    """:math:`(1 - x)^2 + 100 (y - x^2)^2`; works on arrays (for the contour plot)."""
    return (1 - x) ** 2 + 100 * (y - x * x) ** 2


def rosenbrock_grad(x: float, y: float) -> np.ndarray:
    """:math:`(-2(1 - x) - 400 x (y - x^2),\\ 200 (y - x^2))`."""
    return np.array([-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)])


def descend(optimizer, steps: int, start=START) -> np.ndarray:
    """The path ``(steps + 1, 2)`` of ``optimizer`` on the Rosenbrock function from ``start``; it stops
    early if the point leaves the finite numbers."""
    p = Parameter(np.array(start, dtype=np.float64), "xy")
    path = [p.data.copy()]
    with np.errstate(over="ignore", invalid="ignore"):  # a diverging rate stops below, quietly
        for _ in range(steps):
            p.grad[...] = rosenbrock_grad(*p.data)
            optimizer.step([p])
            if not np.all(np.isfinite(p.data)):
                break
            path.append(p.data.copy())
    return np.array(path)


def _train(make, lr, config, data):
    Xtr, ytr, Xva, yva, Xte, yte = data
    model = MLP(config["layers"], "relu", seed=config["seed"])
    h = model.fit(Xtr, ytr, epochs=config["epochs"], batch_size=config["batch_size"], optimizer=make(lr),
                  validation_data=(Xva, yva), verbose=0).history
    final = h["val_loss"][-1]
    return {"lr": lr, "train_loss": h["loss"], "val_loss": h["val_loss"],
            "final_val_loss": final if np.isfinite(final) else float("inf"),
            "test_accuracy": float(model.evaluate(Xte, yte))}


def run(out: str | os.PathLike, *, quick: bool = False, seed: int = 0, print_fn=print) -> dict:
    """Tune, then compare; write ``optimizers.json``, ``optimizers_loss.png`` and
    ``optimizers_paths.png``. ``quick``: 2 epochs, 300 Rosenbrock steps and the middle two rates of
    each grid."""
    out = prepare_out(out)
    data = digits_problem(seed)
    config = {"data": "digits", "layers": [64, 64, 10], "batch_size": 32, "epochs": 2 if quick else 20,
              "seed": seed, "selection": "lowest final validation loss (digits), lowest final f (Rosenbrock)",
              "surface": "rosenbrock", "start": list(START), "steps": 300 if quick else 2000,
              "grids": {name: {"digits": list(g1[1:3] if quick else g1),
                               "rosenbrock": list(g2[1:3] if quick else g2)}
                        for name, (_, g1, g2) in OPTIMIZERS.items()}}
    results = {}
    for name, (make, _, _) in OPTIMIZERS.items():
        mlp_grid, surface_grid = config["grids"][name]["digits"], config["grids"][name]["rosenbrock"]
        runs = [_train(make, lr, config, data) for lr in mlp_grid]
        best = min(runs, key=lambda r: r["final_val_loss"])
        paths = {lr: descend(make(lr), config["steps"]) for lr in surface_grid}
        finals = {lr: float(rosenbrock(*p[-1])) if len(p) == config["steps"] + 1 else float("inf")
                  for lr, p in paths.items()}
        best_lr = min(finals, key=finals.get)
        path = paths[best_lr]
        results[name] = {"lr": best["lr"], "optimizer": repr(make(best["lr"])),
                         "lr_at_grid_edge": best["lr"] in (mlp_grid[0], mlp_grid[-1]),
                         "train_loss": best["train_loss"], "val_loss": best["val_loss"],
                         "final_train_loss": best["train_loss"][-1], "final_val_loss": best["val_loss"][-1],
                         "test_accuracy": best["test_accuracy"],
                         "tuning": {"lr": list(mlp_grid), "final_val_loss": [_finite(r["final_val_loss"]) for r in runs]},
                         "rosenbrock_lr": best_lr, "rosenbrock_tuning": {"lr": list(surface_grid),
                                                                         "final": [_finite(finals[lr]) for lr in surface_grid]},
                         "rosenbrock_final": finals[best_lr],
                         "rosenbrock_end": [float(v) for v in path[-1]], "_path": path}
    figures = [_plot_losses(results, config, os.path.join(out, "optimizers_loss.png")),
               _plot_paths(results, config, os.path.join(out, "optimizers_paths.png"))]
    for r in results.values():
        r["rosenbrock_path"] = r.pop("_path")[:: max(1, config["steps"] // 200)].tolist()
    out_data = {"experiment": "optimizers", "config": config, "results": results,
                "figures": [os.path.basename(f) for f in figures]}
    rows = [[n, f"{r['lr']:g}", r["final_train_loss"], r["final_val_loss"], r["test_accuracy"],
             f"{r['rosenbrock_lr']:g}", r["rosenbrock_final"]] for n, r in results.items()]
    return finish(out, out_data, ["optimizer", "lr", "train loss", "val loss", "test acc", "lr (2-D)",
                                  "rosenbrock f"], rows, "{:.3g}", print_fn)


def _finite(v: float):
    """JSON has no infinity: a diverged run is recorded as null."""
    return float(v) if np.isfinite(v) else None


def _plot_losses(results: dict, config: dict, path: str) -> str:
    """Small multiples: one panel per optimizer at its tuned rate (training loss dashed, validation
    loss solid; the others' validation losses in grey), and a last panel with the tuning grids."""
    fig = new_figure("the optimizers experiment's figures", figsize=(13, 6.2), dpi=85)
    axes = fig.subplots(2, 4).ravel()
    epochs = np.arange(1, config["epochs"] + 1)
    for k, (ax, (name, r)) in enumerate(zip(axes, results.items())):
        for other, o in results.items():
            if other != name:
                ax.semilogy(epochs, o["val_loss"], color="0.82", lw=1)
        ax.semilogy(epochs, r["train_loss"], "--", color=f"C{k}", lw=1.5, label="training")
        ax.semilogy(epochs, r["val_loss"], "-o", color=f"C{k}", ms=3, lw=1.5, label="validation")
        ax.set_title(f"{name}, lr {r['lr']:g}: test {r['test_accuracy']:.3f}", fontsize=9)
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    lo = min(min(r["train_loss"]) for r in results.values())
    hi = max(max(r["val_loss"][0], r["train_loss"][0]) for r in results.values())
    for ax in axes[:len(results)]:
        ax.set_ylim(lo * 0.7, hi * 1.4)
    axes[0].legend(fontsize=8)
    for ax in axes[4:]:
        ax.set_xlabel("epoch")
    for ax in axes[::4]:
        ax.set_ylabel("loss")
    tune = axes[len(results)]
    markers = "osD^vP*"
    for k, (name, r) in enumerate(results.items()):
        lrs = np.array(r["tuning"]["lr"])
        v = np.array([np.nan if x is None else x for x in r["tuning"]["final_val_loss"]])
        rel = lrs / r["lr"]  # the grid relative to the chosen rate: every curve has its minimum at 1
        tune.semilogy(rel * (1 + 0.07 * (k - 3)), v, marker=markers[k], ls="-", color=f"C{k}", ms=4, label=name)
    tune.set_xscale("log")
    tune.set_title("tuning: final val loss per rate", fontsize=9)
    tune.set_xlabel("lr / chosen lr (markers shifted apart)")
    tune.legend(fontsize=6, ncol=2)
    tune.grid(alpha=0.3)
    fig.suptitle(f"digits, 64-64-10 ReLU MLP: each optimizer at its best rate from a "
                 f"{len(next(iter(results.values()))['tuning']['lr'])}-point grid "
                 f"(same seed and batches; grey: the others' validation loss)", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def _plot_paths(results: dict, config: dict, path: str) -> str:
    """Small multiples: one panel per optimizer's path over the same contours, and a last panel
    with every final value, so no path hides another."""
    fig = new_figure("the optimizers experiment's figures", figsize=(13, 6.6), dpi=75)
    axes = fig.subplots(2, 4).ravel()
    xs, ys = np.meshgrid(np.linspace(-2, 2, 120), np.linspace(-1, 3, 120))
    levels = np.log10(rosenbrock(xs, ys) + 1e-3)
    for k, (ax, (name, r)) in enumerate(zip(axes, results.items())):
        ax.contour(xs, ys, levels, levels=12, cmap="Greys", linewidths=0.5)
        p = r["_path"]
        ax.plot(p[:, 0], p[:, 1], "-", lw=1.2, color=f"C{k}")
        ax.plot(p[-1, 0], p[-1, 1], "o", ms=5, color=f"C{k}")
        ax.plot(*START, "k^", ms=6)
        ax.plot(1, 1, "k*", ms=9)
        ax.set(xlim=(-2, 2), ylim=(-1, 3))
        ax.set_title(f"{name}, lr {r['rosenbrock_lr']:g}: f = {r['rosenbrock_final']:.2g}", fontsize=9)
    last = axes[len(results)]
    names = list(results)
    finals = [max(results[n]["rosenbrock_final"], 1e-16) for n in names]
    last.barh(range(len(names)), finals, color=[f"C{k}" for k in range(len(names))])
    last.set_xscale("log")
    last.set_yticks(range(len(names)), names, fontsize=8)
    last.invert_yaxis()
    last.set_title(f"f after {config['steps']} steps (lower: better)", fontsize=9)
    fig.suptitle(f"Rosenbrock (1-x)² + 100(y-x²)² from (-1.2, 1) (triangle) to the minimum (1, 1) (star), "
                 f"{config['steps']} steps, each optimizer at its best rate from its grid", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)
