"""The same network on the same data, trained once per activation function and per seed.

A 64-64-64-64-64-10 MLP (four hidden layers) on the embedded digits, each activation with its
``init="auto"`` weights (He for the ReLU family, Xavier for sigmoid and tanh), trained by **plain SGD**
(no momentum, no adaptive steps that would rescale each layer's gradient and hide how much of it
arrives) with the same learning rate and batches. Each activation runs on several seeds (the seed sets
the validation split, the weights and the batch order), so a difference between activations can be
told from seed-to-seed noise. Besides accuracy and loss, a callback records each Dense layer's
``||dL/dW||`` after every step: how much gradient reaches each layer.
"""
from __future__ import annotations

import os

import numpy as np

from ..training.callbacks import Callback
from ..nn.model import MLP
from ..optim.optimizers import SGD
from ._common import finish, new_figure, prepare_out, save_figure
from ._digits import digits_problem

__all__ = ["ACTIVATIONS", "GradNorms", "run"]

ACTIVATIONS = ("relu", "leaky_relu", "elu", "gelu", "tanh", "sigmoid")
#: one line style and marker per activation, so overlapping curves stay distinguishable
_STYLE = {"relu": ("-", "o"), "leaky_relu": ("--", "s"), "elu": ("-.", "^"), "gelu": (":", "D"),
          "tanh": ("-", "v"), "sigmoid": ("--", "P")}


class GradNorms(Callback):
    """Record each Dense layer's ``||dL/dW||`` (Frobenius norm of the batch gradient) after every
    step, averaged over each epoch: ``epochs[e][i]`` is layer ``i``'s mean norm in epoch ``e``."""

    def on_train_begin(self, logs=None):
        self._dense = [layer for layer in self.model.layers if hasattr(layer, "dW")]
        self.epochs: list[list[float]] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._sums, self._steps = np.zeros(len(self._dense)), 0

    def on_batch_end(self, batch, logs=None):
        self._sums += [float(np.linalg.norm(layer.dW)) for layer in self._dense]
        self._steps += 1

    def on_epoch_end(self, epoch, logs=None):
        self.epochs.append((self._sums / max(self._steps, 1)).tolist())


def run(out: str | os.PathLike, *, quick: bool = False, seed: int = 0, print_fn=print) -> dict:
    """Train one model per activation and seed; write ``activations.json``, ``activations.png`` (the
    validation accuracy, one panel per activation) and ``activations_gradients.png`` (the gradient
    reaching each layer) to ``out``. ``quick``: 2 seeds and 2 epochs instead of 5 and 20."""
    out = prepare_out(out)
    config = {"data": "digits", "layers": [64, 64, 64, 64, 64, 10], "optimizer": "SGD(lr=0.05)",
              "batch_size": 32, "epochs": 2 if quick else 20,
              "seeds": [seed + i for i in range(2 if quick else 5)], "init": "auto"}
    results = {}
    for act in ACTIVATIONS:
        runs = {"val_accuracy": [], "train_loss": [], "test_accuracy": [], "grad_W_norm": []}
        for s in config["seeds"]:
            Xtr, ytr, Xva, yva, Xte, yte = digits_problem(s)
            model = MLP(config["layers"], act, seed=s)
            grads = GradNorms()
            h = model.fit(Xtr, ytr, epochs=config["epochs"], batch_size=config["batch_size"],
                          optimizer=SGD(lr=0.05), validation_data=(Xva, yva), verbose=0,
                          callbacks=[grads]).history
            runs["val_accuracy"].append(h["val_accuracy"])
            runs["train_loss"].append(h["loss"])
            runs["test_accuracy"].append(float(model.evaluate(Xte, yte)))
            runs["grad_W_norm"].append(grads.epochs)   # [epoch][layer]
        test = np.array(runs["test_accuracy"])
        g = np.array(runs["grad_W_norm"])             # (seed, epoch, layer)
        results[act] = {**runs, "test_accuracy_mean": float(test.mean()), "test_accuracy_min": float(test.min()),
                        "test_accuracy_max": float(test.max()),
                        "grad_W_norm_first_epoch": g[:, 0].mean(axis=0).tolist(),
                        "grad_W_norm_last_epoch": g[:, -1].mean(axis=0).tolist()}
    figures = [_plot_accuracy(results, config, os.path.join(out, "activations.png")),
               _plot_gradients(results, config, os.path.join(out, "activations_gradients.png"))]
    data = {"experiment": "activations", "config": config, "results": results,
            "figures": [os.path.basename(f) for f in figures]}
    rows = [[a, r["test_accuracy_mean"], r["test_accuracy_min"], r["test_accuracy_max"],
             f"{r['grad_W_norm_first_epoch'][0]:.2g}", f"{r['grad_W_norm_first_epoch'][-1]:.2g}"]
            for a, r in results.items()]
    return finish(out, data, ["activation", "test acc (mean)", "min", "max", "||dW|| layer 1, epoch 1",
                              "last layer"], rows, "{:.3f}", print_fn)


def _plot_accuracy(results: dict, config: dict, path: str) -> str:
    """Small multiples: one panel per activation, its seeds as thin lines and their mean as a thick
    one; every other activation's mean in light grey behind it, for comparison."""
    fig = new_figure("the activations experiment's figures", figsize=(11, 6.4), dpi=90)
    axes = fig.subplots(2, 3, sharex=True, sharey=True).ravel()
    epochs = np.arange(1, config["epochs"] + 1)
    means = {a: np.mean(r["val_accuracy"], axis=0) for a, r in results.items()}
    for ax, (act, r) in zip(axes, results.items()):
        for other, m in means.items():
            if other != act:
                ax.plot(epochs, m, color="0.8", lw=1)
        for i, curve in enumerate(r["val_accuracy"]):
            ax.plot(epochs, curve, color="C0", lw=0.8, alpha=0.6, label="each seed" if i == 0 else None)
        ls, marker = _STYLE[act]
        ax.plot(epochs, means[act], color="C3", lw=2, ls=ls, marker=marker, ms=4, label="mean over seeds")
        ax.set_title(f"{act}: test {r['test_accuracy_mean']:.3f} "
                     f"[{r['test_accuracy_min']:.3f}, {r['test_accuracy_max']:.3f}]", fontsize=9)
        ax.grid(alpha=0.3)
        ax.set_ylim(0, 1)
    for ax in axes[3:]:
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
    for ax in axes[::3]:
        ax.set_ylabel("validation accuracy")
    axes[0].legend(fontsize=8, loc="lower right")
    fig.suptitle(f"digits, 64-64-64-64-64-10, plain SGD (lr 0.05), {len(config['seeds'])} seeds per "
                 "activation (grey: the other activations' means)", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def _plot_gradients(results: dict, config: dict, path: str) -> str:
    """``||dL/dW||`` per layer, mean over seeds with the seeds' range as error bars; each activation
    is shifted a little sideways so no marker sits on another."""
    fig = new_figure("the activations experiment's figures", figsize=(11, 4.4), dpi=90)
    axes = fig.subplots(1, 2, sharey=True)
    n = len(results)
    for ax, (epoch_index, title) in zip(axes, [(0, "epoch 1"), (-1, f"epoch {config['epochs']}")]):
        for k, (act, r) in enumerate(results.items()):
            g = np.array(r["grad_W_norm"])[:, epoch_index, :]     # (seed, layer)
            layers = np.arange(1, g.shape[1] + 1) + (k - (n - 1) / 2) * 0.07
            mean = g.mean(axis=0)
            ls, marker = _STYLE[act]
            ax.errorbar(layers, mean, yerr=[mean - g.min(axis=0), g.max(axis=0) - mean], ls=ls, marker=marker,
                        ms=5, capsize=2, color=f"C{k}", label=act)
        ax.set_yscale("log")
        ax.set(title=f"||dL/dW|| per layer, mean over the steps of {title}", xlabel="layer (1 = next to the input)")
        ax.set_xticks(range(1, len(config["layers"])))
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("||dL/dW|| (mean over seeds; bars: range)")
    axes[0].legend(fontsize=8)
    fig.suptitle("How much gradient reaches each layer: plain SGD, same seeds, one curve per activation",
                 fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)
