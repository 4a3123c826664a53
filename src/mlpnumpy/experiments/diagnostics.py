"""Three checks to run before trusting a training run (Karpathy, "A recipe for training neural
networks", 2019; CS231n's "babysitting the learning process").

1. **The initial loss.** Before any step, a classifier over ``K`` balanced classes should be unsure:
   softmax outputs near ``1/K``, so the cross-entropy is near :math:`\\ln K`. Much higher means it is
   confidently wrong from the start (output weights too large); much lower, a leak or a bug.
2. **Overfit one batch.** A correct network, loss and optimizer drive the loss on a single small batch
   to ~0 within a few hundred steps. If they cannot, nothing bigger will work either.
3. **Update-to-weight ratios.** :math:`\\lVert \\Delta W \\rVert / \\lVert W \\rVert` per step, per
   layer (recorded by :class:`~mlpnumpy.training.internals.InternalsTracker`): around ``1e-3`` is the usual
   sign of a sane learning rate; far below, the weights barely move; near ``1e-1`` and above, each
   step rewrites them.

All on the embedded digits with a 64-128-64-10 ReLU MLP.
"""
from __future__ import annotations

import math
import os

import numpy as np

from ..training.internals import InternalsTracker
from ..nn.model import MLP
from ..optim.optimizers import SGD, Adam
from ._common import finish, new_figure, prepare_out, save_figure
from ._digits import digits_problem

__all__ = ["LAYERS", "initial_loss", "overfit_one_batch", "update_ratios", "run"]

LAYERS = [64, 128, 64, 10]


def initial_loss(X: np.ndarray, y: np.ndarray, *, seed: int = 0, output_scale: float = 1.0) -> float:
    """The untrained model's mean cross-entropy on ``(X, y)``; ``output_scale`` multiplies the last
    layer's weights first (10 shows what an over-confident start looks like)."""
    model = MLP(LAYERS, "relu", seed=seed)
    model.layers[-1].W = model.layers[-1].W * output_scale
    return float(model.loss.forward(model.forward(X), y))


def overfit_one_batch(X: np.ndarray, y: np.ndarray, *, steps: int = 200, lr: float = 1e-2,
                      seed: int = 0) -> list[float]:
    """Train on the one batch ``(X, y)`` for ``steps`` Adam steps; the loss after each step."""
    model = MLP(LAYERS, "relu", seed=seed)
    opt, params, losses = Adam(lr=lr), model.parameters(), []
    for _ in range(steps):
        losses.append(float(model.loss.forward(model.forward(X, training=True), y)))
        model.backward(model.loss.backward())
        opt.step(params)
    return losses


def update_ratios(X, y, lr: float, *, epochs: int = 5, seed: int = 0) -> dict:
    """Train with plain SGD at ``lr`` for ``epochs`` epochs with an :class:`InternalsTracker`;
    return each Dense layer's mean update-to-weight ratio per epoch and the final training loss."""
    model = MLP(LAYERS, "relu", seed=seed)
    tracker = InternalsTracker(probe=X[:256])
    h = model.fit(X, y, epochs=epochs, batch_size=32, optimizer=SGD(lr=lr), callbacks=[tracker], verbose=0)
    ratios = [tracker.records[f"layer{i}"]["update_ratio"] for i in range(len(model.layers))]
    return {"lr": lr, "update_ratio": ratios, "final_loss": float(h.history["loss"][-1])}


def run(out: str | os.PathLike, *, quick: bool = False, seed: int = 0, print_fn=print) -> dict:
    """Run the three checks; write ``diagnostics.json`` and ``diagnostics.png``. ``quick``: 60
    overfitting steps and 2 epochs per learning rate instead of 200 and 8."""
    out = prepare_out(out)
    Xtr, ytr, *_ = digits_problem(seed)
    config = {"data": "digits", "layers": LAYERS, "activation": "relu", "seed": seed,
              "overfit": {"batch": 32, "steps": 60 if quick else 200, "optimizer": "Adam(lr=0.01)"},
              "ratios": {"optimizer": "SGD", "lrs": [1e-4, 1e-2, 1.0], "epochs": 2 if quick else 8}}
    k = int(ytr.max()) + 1
    init = {"ln_K": math.log(k), "loss": initial_loss(Xtr, ytr, seed=seed),
            "loss_output_x10": initial_loss(Xtr, ytr, seed=seed, output_scale=10.0),
            "loss_output_x0.1": initial_loss(Xtr, ytr, seed=seed, output_scale=0.1)}
    overfit = overfit_one_batch(Xtr[:32], ytr[:32], steps=config["overfit"]["steps"], seed=seed)
    ratios = [update_ratios(Xtr, ytr, lr, epochs=config["ratios"]["epochs"], seed=seed)
              for lr in config["ratios"]["lrs"]]
    results = {"initial_loss": init, "overfit_one_batch": {"loss": overfit, "final": overfit[-1]},
               "update_ratios": ratios}
    fig_path = _plot(results, config, os.path.join(out, "diagnostics.png"))
    data = {"experiment": "diagnostics", "config": config, "results": results,
            "figures": [os.path.basename(fig_path)]}
    rows = [["initial loss (ln K = %.3f)" % init["ln_K"], init["loss"]],
            ["initial loss, output weights x10", init["loss_output_x10"]],
            ["initial loss, output weights x0.1", init["loss_output_x0.1"]],
            [f"one batch of 32, loss after {len(overfit)} steps", overfit[-1]]]
    rows += [[f"SGD lr {r['lr']:g}: update/weight, last epoch, layer 1", r["update_ratio"][0][-1]]
             for r in ratios]
    return finish(out, data, ["check", "value"], rows, "{:.3g}", print_fn)


def _plot(results: dict, config: dict, path: str) -> str:
    fig = new_figure("the diagnostics experiment's figure", figsize=(14, 4.2), dpi=85)
    ax_init, ax_fit, ax_ratio = fig.subplots(1, 3)
    init = results["initial_loss"]
    bars = [init["ln_K"], init["loss"], init["loss_output_x10"], init["loss_output_x0.1"]]
    ax_init.bar(range(4), bars, color=["0.6", "C0", "C3", "C2"])
    ax_init.set_xticks(range(4), ["ln K", "as built", "output W x10", "output W x0.1"], fontsize=8)
    for i, v in enumerate(bars):
        ax_init.text(i, v, f"{v:.2f}", ha="center", va="bottom", fontsize=9)
    ax_init.set(ylabel="cross-entropy before training")
    ax_init.set_title("1. initial loss: about ln K", fontsize=10)
    loss = results["overfit_one_batch"]["loss"]
    ax_fit.semilogy(range(1, len(loss) + 1), loss, "C0-")
    ax_fit.set(xlabel="step", ylabel="loss on the batch")
    ax_fit.set_title(f"2. overfit one batch of {config['overfit']['batch']}: loss to ~0", fontsize=10)
    ax_fit.grid(alpha=0.3)
    styles = ["o-", "s--", "^-."]
    for k, r in enumerate(results["update_ratios"]):
        for i, series in enumerate(r["update_ratio"]):
            epochs = np.arange(1, len(series) + 1)
            ax_ratio.semilogy(epochs, series, styles[k], color=f"C{k}", alpha=1.0 if i == 0 else 0.45, ms=4,
                              label=f"lr {r['lr']:g}" if i == 0 else None)
    ax_ratio.axhspan(3e-4, 3e-3, color="0.5", alpha=0.15, label="~1e-3")
    ax_ratio.set(xlabel="epoch", ylabel="||ΔW|| / ||W|| (mean per step)")
    ax_ratio.xaxis.get_major_locator().set_params(integer=True)
    ax_ratio.set_title("3. update/weight ratio per layer (SGD)", fontsize=10)
    ax_ratio.legend(fontsize=8, title="dark: layer 1\nfaint: 2, 3", title_fontsize=7, loc="upper left",
                    bbox_to_anchor=(1.01, 1.0))
    ax_ratio.grid(alpha=0.3)
    fig.suptitle("Before trusting a run: digits, 64-128-64-10 ReLU MLP", fontsize=11)
    fig.tight_layout()
    return save_figure(fig, path)
