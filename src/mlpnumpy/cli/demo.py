"""The seed's program as a command (``mlpnumpy demo``): its MLP and recipe on the embedded digits,
its progress lines and final accuracies, and its figure (loss curve and first-layer weights), plus
the run folder ``mlpnumpy train`` writes."""
from __future__ import annotations

from pathlib import Path

__all__ = ["SEED_RECIPE", "run_demo"]

#: The seed's ``main()``: ReLU hidden layers 128 and 64, logits out, SGD lr 0.1, batch 32; the
#: embedded 8x8 digits replace its random "MNIST sample", unscaled except pixels to [0, 1].
SEED_RECIPE = {"data": "digits", "hidden": [128, 64], "activation": "relu", "optimizer": "sgd", "lr": 0.1,
               "batch_size": 32, "schedule": "none", "standardize": False, "validation_split": 0.1}


def run_demo(out="runs/demo", epochs: int = 40, seed: int = 42, quiet: bool = False, print_fn=print) -> dict:
    """Train the seed's recipe, write ``<out>/mlp_result.png`` and the run folder; returns the metrics.

    A demo run folder from before is replaced (a folder holding anything else is refused)."""
    from .run import run_train
    print_fn("mlpnumpy demo: the seed's MLP [64, 128, 64, 10] (ReLU, softmax cross-entropy, SGD lr 0.1, "
             "batch 32) on the embedded 8x8 digits")
    m = run_train({**SEED_RECIPE, "epochs": epochs, "seed": seed, "out": str(out), "quiet": quiet or None},
                  overwrite=True, seed_figure=True, print_fn=print_fn)
    print_fn(f" Train Accuracy: {m['train_accuracy']:.4f}")
    print_fn(f" Test Accuracy: {m['test_accuracy']:.4f}")
    print_fn(f"saved {Path(m['config']['out']) / 'mlp_result.png'}")
    return m
