"""The finale: the learner's own dense and activation layers, in a :class:`~mlpnumpy.Sequential`,
trained on the embedded digits, with :class:`~mlpnumpy.training.internals.InternalsTracker` watching the
activations, gradients and update sizes.

The layers are thin: ``forward`` and ``backward`` are the functions in the learner's ``dense.py`` and
``relu.py`` (or ``tanh.py``, ``sigmoid.py``); the weights are :class:`~mlpnumpy.Parameter` objects,
so mlpnumpy's fit loop, optimizer and tracker work on them unchanged.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from ..errors import DivergenceError, MissingDependencyError, check_choice, check_positive
from ..nn.layers import Layer
from ..nn.parameter import Parameter
from .checker import check, load_learner_file

__all__ = ["LearnerDense", "LearnerActivation", "FinaleResult", "run", "TARGET"]

#: The test accuracy the finale asks for.
TARGET = 0.95


class LearnerDense(Layer):
    """A dense layer whose forward and backward are the learner's ``dense.py`` functions.

    ``module.forward(x, W, b)`` returns ``(out, cache)``; ``module.backward(dout, cache)`` returns
    ``{"W": dW, "b": db, "x": dx}``. Weights are drawn He-normal for ReLU, Xavier-normal otherwise.
    """

    def __init__(self, module, in_features: int, out_features: int, activation: str = "relu"):
        self.module = module
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.gain = math.sqrt(2.0) if activation == "relu" else 1.0
        self.weight = Parameter(np.zeros((self.in_features, self.out_features), np.float32), "W")
        self.bias = Parameter(np.zeros(self.out_features, np.float32), "b")
        self.drawn = False
        self.cache = None

    def build(self, rng, dtype):
        if not self.drawn:
            std = self.gain / math.sqrt(self.in_features)
            self.weight = Parameter(rng.standard_normal(self.weight.shape).astype(dtype) * dtype.type(std), "W")
            self.bias = Parameter(np.zeros(self.out_features, dtype), "b")
            self.drawn = True
        self.cast(dtype)

    def parameters(self):
        return [self.weight, self.bias]

    def output_features(self, in_features):
        return self.out_features

    def forward(self, x, training=False):
        out, self.cache = self.module.forward(x, self.weight.data, self.bias.data)
        return out

    def backward(self, grad_out):
        g = self.module.backward(grad_out, self.cache)
        self.weight.grad = np.asarray(g["W"], dtype=self.weight.dtype)
        self.bias.grad = np.asarray(g["b"], dtype=self.bias.dtype)
        return g["x"]

    def __repr__(self):
        return f"LearnerDense({self.in_features}, {self.out_features})"


class LearnerActivation(Layer):
    """An activation layer whose forward and backward are the learner's ``relu.py`` (or tanh, sigmoid)."""

    def __init__(self, module, name: str):
        self.module = module
        self.activation = SimpleNamespace(name=name)  # the internals tracker reads the name
        self.cache = None

    def forward(self, x, training=False):
        a, self.cache = self.module.forward(x)
        return a

    def backward(self, grad_out):
        return self.module.backward(grad_out, self.cache)["z"]

    def __repr__(self):
        return f"LearnerActivation({self.activation.name!r})"


@dataclass
class FinaleResult:
    """Test accuracy, the health verdict per layer, and where the plot went."""

    accuracy: float
    healthy: bool
    report: str
    plot: str | None = None

    @property
    def passed(self) -> bool:
        return self.healthy and self.accuracy >= TARGET

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1


def _verdicts(tracker, model) -> tuple[bool, list[str]]:
    """One line per layer from the tracker's last measured epoch, and whether all look healthy."""
    lines, healthy = [], True
    for i, layer in enumerate(model.layers):
        rec = {k: v[-1] for k, v in tracker.records.get(f"layer{i}", {}).items()}
        parts, ok = [f"act std {rec['act_std']:.3f}"], rec["act_std"] > 0.01
        if "dead_frac" in rec:
            parts.append(f"dead units {rec['dead_frac']:.0%}")
            ok &= rec["dead_frac"] < 0.5
        if "saturated_frac" in rec:
            parts.append(f"saturated {rec['saturated_frac']:.0%}")
            ok &= rec["saturated_frac"] < 0.5
        if "update_ratio" in rec:
            parts.append(f"grad std {rec['grad_std']:.1e}, update/weight {rec['update_ratio']:.1e}")
            ok &= math.isfinite(rec["grad_std"]) and rec["grad_std"] > 0 and 1e-5 < rec["update_ratio"] < 1e-1
        healthy &= bool(ok)
        lines.append(f"  layer {i} {layer!r:<28} {', '.join(parts)}  {'healthy' if ok else 'LOOK AT THIS'}")
    return healthy, lines


def run(dir: str | os.PathLike = ".", *, activation: str = "relu", hidden: int = 128, epochs: int = 30,
        lr: float = 0.1, seed: int = 0, out: str | os.PathLike | None = None, print_fn=print) -> FinaleResult:
    """Check the learner's ``dense`` and ``activation`` files, build
    ``Sequential([LearnerDense(64, hidden), LearnerActivation, LearnerDense(hidden, 10)])``, train it
    with plain SGD on the embedded digits and report test accuracy and layer health.

    Returns a :class:`FinaleResult` whose ``exit_code`` is 0 when the accuracy reaches
    :data:`TARGET` and every layer looks healthy. Files that do not pass ``check`` yet give exit 1
    (with the check's table) before any training.
    """
    from ..datasets import load
    from ..training.internals import InternalsTracker, plot_internals
    from ..nn.model import Sequential
    from ..datasets.preprocessing import Standardizer

    activation = check_choice("activation", activation, ["relu", "tanh", "sigmoid"])
    hidden = check_positive("hidden", hidden, integer=True)
    epochs = check_positive("epochs", epochs, integer=True)
    lr = check_positive("lr", lr)
    say = print_fn or (lambda *a: None)
    folder = Path(dir)
    modules = {}
    for name in ("dense", activation):
        path = folder / f"{name}.py"
        if not path.is_file():
            raise FileNotFoundError(2, f"the finale needs your {path}; create it with: mlpnumpy learn start {name}"
                                       + ("" if str(dir) == "." else f" --dir {dir}"), str(path))
        result = check(name, dir=folder, print_fn=None)
        if not result.passed:
            say(result.text)
            return FinaleResult(float("nan"), False, f"finish {name} first: mlpnumpy learn check {name}")
        modules[name] = load_learner_file(path)
    ds = load("digits")
    model = Sequential([LearnerDense(modules["dense"], ds.X_train.shape[1], hidden, activation),
                        LearnerActivation(modules[activation], activation),
                        LearnerDense(modules["dense"], hidden, 10, "identity")], seed=seed)
    # standardised pixels (training-set statistics), as `mlpnumpy train` does by default
    model.preprocessor = Standardizer().fit(ds.X_train)
    tracker = InternalsTracker(probe=ds.X_train[:256])
    say(f"Training your layers ({ds.X_train.shape[1]} -> {hidden} {activation} -> 10) on the embedded digits: "
        f"{len(ds.y_train)} images, {epochs} epochs of plain SGD, lr {lr}")
    try:
        history = model.fit(ds.X_train, ds.y_train, epochs=epochs, lr=lr, batch_size=32, verbose=0,
                            callbacks=[tracker])
    except DivergenceError as exc:
        say(f"training diverged: {exc}")
        return FinaleResult(float("nan"), False, str(exc))
    acc = float(model.evaluate(ds.X_test, ds.y_test))
    healthy, lines = _verdicts(tracker, model)
    say(f"loss {history.history['loss'][0]:.3f} (epoch 1) -> {history.history['loss'][-1]:.3f} (epoch {epochs}); "
        f"test accuracy {acc:.4f} (target {TARGET})")
    say("Internals at the last epoch (mlpnumpy.training.internals):")
    for line in lines:
        say(line)
    plot = None
    try:
        plot = plot_internals(tracker, Path(out or folder) / "finale_internals.png",
                              title=f"Your layers on the digits: test accuracy {acc:.3f}")
        say(f"wrote {plot}: activation spread, gradient spread, update/weight ratio and dead units per epoch")
    except MissingDependencyError:
        say("no plot: matplotlib is not installed (pip install 'mlpnumpy[plot]')")
    ok = healthy and acc >= TARGET
    verdict = ("Your own layers trained a digit classifier. Well done." if ok else
               "Not there yet: " + ("accuracy below the target; " if acc < TARGET else "")
               + ("a layer looks unhealthy" if not healthy else "").strip("; "))
    say(verdict)
    return FinaleResult(acc, healthy, verdict, plot)

