"""The same network on the same data with the same seed, trained once per activation function.

A 64-64-64-10 MLP on the embedded digits (each activation with its ``init="auto"`` weights: He for the
ReLU family, Xavier for sigmoid and tanh), Adam, identical batches: only the activation changes.
"""
from __future__ import annotations

import os

from ..model import MLP
from ..optimizers import Adam
from ._common import finish, plot_runs, prepare_out
from ._digits import digits_problem

__all__ = ["ACTIVATIONS", "run"]

ACTIVATIONS = ("relu", "leaky_relu", "elu", "gelu", "tanh", "sigmoid")


def run(out: str | os.PathLike, *, quick: bool = False, seed: int = 0, print_fn=print) -> dict:
    """Train one model per activation; write ``activations.json`` and ``activations.png`` to ``out``."""
    out = prepare_out(out)
    Xtr, ytr, Xva, yva, Xte, yte = digits_problem(seed)
    config = {"data": "digits", "layers": [64, 64, 64, 10], "optimizer": "Adam(lr=1e-3)", "batch_size": 32,
              "epochs": 3 if quick else 25, "seed": seed, "init": "auto"}
    results = {}
    for act in ACTIVATIONS:
        model = MLP(config["layers"], act, seed=seed)
        hist = model.fit(Xtr, ytr, epochs=config["epochs"], batch_size=config["batch_size"],
                         optimizer=Adam(lr=1e-3), validation_data=(Xva, yva), verbose=0)
        h = hist.history
        results[act] = {"train_loss": h["loss"], "val_loss": h["val_loss"], "val_accuracy": h["val_accuracy"],
                        "final_train_loss": h["loss"][-1], "final_val_accuracy": h["val_accuracy"][-1],
                        "test_accuracy": float(model.evaluate(Xte, yte)),
                        "seconds": float(sum(h["seconds"]))}
    fig_path = plot_runs(
        results,
        [("val_accuracy", "validation accuracy", False, "o-", lambda a, r: f"{a} (test {r['test_accuracy']:.3f})"),
         ("train_loss", "training loss", True, "-", lambda a, r: a)],
        "digits, 64-64-64-10, Adam: one run per activation, same seed",
        "the activations experiment's figure", os.path.join(out, "activations.png"))
    data = {"experiment": "activations", "config": config, "results": results,
            "figures": [os.path.basename(fig_path)]}
    rows = [[a, r["final_train_loss"], r["final_val_accuracy"], r["test_accuracy"], r["seconds"]]
            for a, r in results.items()]
    return finish(out, data, ["activation", "train loss", "val acc", "test acc", "seconds"], rows, "{:.4f}", print_fn)
