"""Seven optimizers on one problem, and their paths across a 2-D loss surface.

Part 1 trains the same 64-64-10 ReLU MLP on the embedded digits (same seed, same batches) with SGD,
SGD with momentum, Nesterov, RMSprop, Adagrad, Adam and AdamW. Part 2 runs the same optimizer classes
on a 2-element :class:`~mlpnumpy.parameter.Parameter` over the Rosenbrock function
:math:`f(x, y) = (1 - x)^2 + 100 (y - x^2)^2` (minimum 0 at (1, 1), at the end of a curved, flat
valley), from the classic start (-1.2, 1).
"""
from __future__ import annotations

import os

import numpy as np

from ..model import MLP
from ..optimizers import SGD, Adagrad, Adam, AdamW, RMSprop
from ..parameter import Parameter
from ._common import finish, new_figure, plot_runs, prepare_out, save_figure
from ._digits import digits_problem

__all__ = ["OPTIMIZERS", "rosenbrock", "rosenbrock_grad", "descend", "run"]

#: name -> (optimizer for the digits MLP, optimizer for Rosenbrock). The SGD family shares one learning
#: rate per problem, so what momentum adds is visible; the adaptive ones use their usual rates.
OPTIMIZERS = {
    "sgd": (lambda: SGD(lr=0.01), lambda: SGD(lr=1e-3)),
    "momentum": (lambda: SGD(lr=0.01, momentum=0.9), lambda: SGD(lr=1e-3, momentum=0.9)),
    "nesterov": (lambda: SGD(lr=0.01, momentum=0.9, nesterov=True),
                 lambda: SGD(lr=1e-3, momentum=0.9, nesterov=True)),
    "rmsprop": (lambda: RMSprop(lr=1e-3), lambda: RMSprop(lr=1e-2)),
    "adagrad": (lambda: Adagrad(lr=0.05), lambda: Adagrad(lr=0.5)),
    "adam": (lambda: Adam(lr=1e-3), lambda: Adam(lr=0.05)),
    "adamw": (lambda: AdamW(lr=1e-3, weight_decay=1e-2), lambda: AdamW(lr=0.05, weight_decay=1e-2)),
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
    for _ in range(steps):
        p.grad[...] = rosenbrock_grad(*p.data)
        optimizer.step([p])
        if not np.all(np.isfinite(p.data)):
            break
        path.append(p.data.copy())
    return np.array(path)


def run(out: str | os.PathLike, *, quick: bool = False, seed: int = 0, print_fn=print) -> dict:
    """Run both parts; write ``optimizers.json``, ``optimizers_loss.png`` and ``optimizers_paths.png``."""
    out = prepare_out(out)
    Xtr, ytr, Xva, yva, Xte, yte = digits_problem(seed)
    config = {"data": "digits", "layers": [64, 64, 10], "batch_size": 32, "epochs": 2 if quick else 20,
              "seed": seed, "surface": "rosenbrock", "start": list(START), "steps": 300 if quick else 2000,
              "optimizers": {name: [repr(make()) for make in makers] for name, makers in OPTIMIZERS.items()}}
    results = {}
    for name, (make_mlp_opt, make_2d_opt) in OPTIMIZERS.items():
        model = MLP(config["layers"], "relu", seed=seed)
        h = model.fit(Xtr, ytr, epochs=config["epochs"], batch_size=config["batch_size"],
                      optimizer=make_mlp_opt(), validation_data=(Xva, yva), verbose=0).history
        path = descend(make_2d_opt(), config["steps"])
        results[name] = {"train_loss": h["loss"], "val_loss": h["val_loss"],
                         "final_train_loss": h["loss"][-1], "final_val_loss": h["val_loss"][-1],
                         "test_accuracy": float(model.evaluate(Xte, yte)),
                         "rosenbrock_final": float(rosenbrock(*path[-1])),
                         "rosenbrock_end": [float(v) for v in path[-1]], "_path": path}
    figures = [_plot_losses(results, os.path.join(out, "optimizers_loss.png")),
               _plot_paths(results, os.path.join(out, "optimizers_paths.png"))]
    for r in results.values():
        r["rosenbrock_path"] = r.pop("_path")[:: max(1, config["steps"] // 200)].tolist()
    data = {"experiment": "optimizers", "config": config, "results": results,
            "figures": [os.path.basename(f) for f in figures]}
    rows = [[n, r["final_train_loss"], r["final_val_loss"], r["test_accuracy"], r["rosenbrock_final"]]
            for n, r in results.items()]
    return finish(out, data, ["optimizer", "train loss", "val loss", "test acc", "rosenbrock f"], rows, "{:.3g}",
                  print_fn)


def _plot_losses(results: dict, path: str) -> str:
    return plot_runs(results, [("train_loss", "training loss", True, "o-", lambda name, r: name),
                               ("val_loss", "validation loss", True, "o-", lambda name, r: name)],
                     "digits, 64-64-10 ReLU MLP: one run per optimizer, same seed and batches",
                     "the optimizers experiment's figures", path)


def _plot_paths(results: dict, path: str) -> str:
    fig = new_figure("the optimizers experiment's figures", figsize=(8, 6.5), dpi=90)
    ax = fig.subplots()
    xs, ys = np.meshgrid(np.linspace(-2, 2, 300), np.linspace(-1, 3, 300))
    ax.contour(xs, ys, np.log10(rosenbrock(xs, ys) + 1e-3), levels=25, cmap="Greys", linewidths=0.6)
    for i, (name, r) in enumerate(results.items()):
        p = r["_path"]
        ax.plot(p[:, 0], p[:, 1], "-", lw=1.2, color=f"C{i}", label=f"{name}: f = {r['rosenbrock_final']:.2g}")
        ax.plot(p[-1, 0], p[-1, 1], "o", ms=4, color=f"C{i}")
    ax.plot(*START, "k^", ms=7, label="start")
    ax.plot(1, 1, "k*", ms=11, label="minimum (1, 1)")
    ax.set(xlim=(-2, 2), ylim=(-1, 3), xlabel="x", ylabel="y",
           title=f"Rosenbrock (1-x)² + 100(y-x²)², {len(p) - 1} steps")
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return save_figure(fig, path)
