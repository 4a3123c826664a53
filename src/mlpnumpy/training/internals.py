"""Looking inside a network while it trains: activation and gradient statistics per layer.

:class:`InternalsTracker` is a callback that measures, each epoch, what the init study measures once
(activation spread, dead and saturated units) plus the gradients and the size of each update;
:func:`plot_internals` draws what it recorded.
"""
from __future__ import annotations

import math
import os

import numpy as np

from .callbacks import Callback, History
from ..errors import InvalidArgumentError, NotFittedError, require

__all__ = ["InternalsTracker", "plot_internals", "STATS", "layer_stats"]

#: Every statistic the tracker records, in the order the keys are written.
STATS = ("act_mean", "act_std", "dead_frac", "saturated_frac", "grad_mean", "grad_std", "update_ratio")

_PREFIX = "internals"


def _activation_name(layer) -> str | None:
    act = getattr(layer, "activation", None)
    return None if act is None else act.name


def layer_stats(a: np.ndarray, activation: str | None) -> dict[str, float]:
    """Statistics of one layer's outputs ``a`` (shape ``(n, units)``) on a probe batch.

    ``act_mean``/``act_std`` over all entries; ``dead_frac`` (ReLU only) is the fraction of units that
    are 0 for *every* probe row; ``saturated_frac`` is the fraction of entries in the flat tails:
    ``a < 0.01`` or ``a > 0.99`` for the sigmoid, ``|a| > 0.99`` for tanh. Other activations get
    neither of the last two.
    """
    from .._array_api import to_host
    a = np.asarray(to_host(a), dtype=np.float64)
    out = {"act_mean": float(a.mean()), "act_std": float(a.std())}
    if activation == "relu":
        out["dead_frac"] = float(np.mean(np.all(a <= 0, axis=0)))
    elif activation == "sigmoid":
        out["saturated_frac"] = float(np.mean((a < 0.01) | (a > 0.99)))
    elif activation == "tanh":
        out["saturated_frac"] = float(np.mean(np.abs(a) > 0.99))
    return out


class InternalsTracker(Callback):
    r"""Record, per layer and per epoch, how activations, gradients and updates behave.

    At the end of each measured epoch the probe batch goes through the model in evaluation mode
    (``model.forward(probe, return_hidden=True)``) and each layer's output gives ``act_mean``,
    ``act_std``, ``dead_frac`` (ReLU: units that are 0 for every probe row) and ``saturated_frac``
    (sigmoid: ``a < 0.01`` or ``a > 0.99``; tanh: ``|a| > 0.99``; see :func:`layer_stats`). After every
    optimizer step each Dense layer's weight gradient ``dW`` (the batch's) gives ``grad_mean`` and
    ``grad_std``, and the step gives the update-to-weight ratio
    :math:`\lVert W_t - W_{t-1} \rVert / \lVert W_{t-1} \rVert`; these three are averaged over the
    epoch's steps. (A ratio near ``1e-3`` is the usual rule of thumb for a healthy learning rate.)

    Results go into the epoch ``logs`` under flat keys ``internals/layer{i}/{stat}`` (``i`` indexes
    ``model.layers``), so they reach ``History.history`` and any metrics file, and into the nested
    :attr:`records`: ``records["layer0"]["act_std"]`` is a list aligned with :attr:`epochs`.

    Parameters
    ----------
    probe : array, shape (n, n_features), optional
        Fixed inputs for the activation statistics, in the same form as ``fit``'s ``X`` (the model's
        preprocessor, if any, is applied). Default: the first training batch, captured once at the
        first step (already preprocessed). A few hundred rows give steadier dead-unit counts than a
        batch of 32.
    every : "epoch" or int
        Measure every epoch, or every ``k``-th epoch (and the last). Gradient and update statistics
        are still averaged over all the steps of a measured epoch.

    Attributes
    ----------
    epochs : list of int
        The (0-based) epochs measured.
    records : dict
        ``{"layer{i}": {stat: [value per measured epoch]}}``; ``layer_names`` gives each layer's repr.
    """

    def __init__(self, probe=None, every="epoch"):
        if every == "epoch":
            self.every = 1
        elif isinstance(every, (int, np.integer)) and not isinstance(every, bool) and every >= 1:
            self.every = int(every)
        else:
            raise InvalidArgumentError(f"every={every!r} is invalid; expected 'epoch' or an integer >= 1")
        from .._array_api import is_array
        # an array of another library (a torch tensor on the GPU) stays where it is
        self.probe = None if probe is None else probe if is_array(probe) else np.asarray(probe)
        self.epochs: list[int] = []
        self.records: dict[str, dict[str, list[float]]] = {}
        self.layer_names: dict[str, str] = {}

    @staticmethod
    def key(layer_index: int, stat: str) -> str:
        """The flat log key of one statistic: ``internals/layer{i}/{stat}``."""
        return f"{_PREFIX}/layer{layer_index}/{stat}"

    # ------------------------------------------------------------------ hooks
    def on_train_begin(self, logs=None):
        model = self.model
        self.epochs, self.records = [], {}
        self.layer_names = {f"layer{i}": repr(l) for i, l in enumerate(model.layers)}
        self._probe = None if self.probe is None else model.prepare_input(self.probe)
        self._dense = [(i, l) for i, l in enumerate(model.layers) if hasattr(l, "weight")]
        self._last_epoch = self.params["epochs"] - 1 if hasattr(self, "params") else None
        self._reset_sums()

    def _reset_sums(self):
        from .._array_api import copy_array
        self._prev = {i: copy_array(l.weight.data) for i, l in self._dense}
        self._sums = {i: np.zeros(3) if isinstance(l.weight.data, np.ndarray) else [0.0, 0.0, 0.0]
                      for i, l in self._dense}
        self._steps = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._reset_sums()  # weights may have been changed between epochs (a restored checkpoint)

    def on_batch_end(self, batch, logs=None):
        if self._probe is None:
            first = self.model.layers[0]
            x = first.last_input()
            if x is None:
                raise NotFittedError(f"InternalsTracker cannot take its probe from the first layer "
                                     f"({first!r}); pass probe=X_sample")
            from .._array_api import copy_array
            self._probe = copy_array(x)  # the batch's input, already preprocessed
        if self._dense and not isinstance(self._dense[0][1].weight.data, np.ndarray):
            self._batch_on_device()
            return
        for i, layer in self._dense:
            g = layer.weight.grad
            W = layer.weight.data
            prev = self._prev[i]
            w_norm = float(np.linalg.norm(prev))
            step = float(np.linalg.norm(W - prev))
            self._sums[i] += (float(g.mean()), float(g.std()), step / w_norm if w_norm > 0 else math.inf)
            np.copyto(prev, W)
        self._steps += 1

    def _batch_on_device(self):
        """:meth:`on_batch_end` for a model on another array library: the sums stay on its device
        until the epoch ends (no number comes back per batch)."""
        from .._array_api import namespace
        for i, layer in self._dense:
            g, W, prev = layer.weight.grad, layer.weight.data, self._prev[i]
            xp = namespace(W)
            w_norm = xp.sqrt(xp.sum(prev * prev))
            d = W - prev
            ratio = xp.sqrt(xp.sum(d * d)) / xp.where(w_norm > 0, w_norm, xp.zeros_like(w_norm))
            sums = self._sums[i]
            self._sums[i] = [sums[0] + xp.mean(g), sums[1] + xp.std(g), sums[2] + ratio]
            prev[...] = W
        self._steps += 1

    def on_epoch_end(self, epoch, logs=None):
        if logs is None or self._steps == 0:
            return
        if self._sums and isinstance(next(iter(self._sums.values())), list):  # device sums: now to the host
            self._sums = {i: np.array([float(v) for v in s]) for i, s in self._sums.items()}
        if (epoch + 1) % self.every and epoch != self._last_epoch:
            return
        values: dict[str, dict[str, float]] = {}
        _, hidden = self.model.forward(self._probe, training=False, return_hidden=True)
        for i, (layer, rec) in enumerate(zip(self.model.layers, hidden)):
            values[f"layer{i}"] = layer_stats(rec["a"], _activation_name(layer))
        for i, _ in self._dense:
            gm, gs, ratio = self._sums[i] / self._steps
            values[f"layer{i}"].update(grad_mean=float(gm), grad_std=float(gs), update_ratio=float(ratio))
        self.epochs.append(epoch)
        hist = getattr(self.model, "history", None)
        # The fit loop may call History before this callback; then add our keys to it directly.
        late = isinstance(hist, History) and hist.epoch and hist.epoch[-1] == epoch
        for name, stats in values.items():
            rec = self.records.setdefault(name, {})
            for stat in STATS:
                if stat not in stats:
                    continue
                rec.setdefault(stat, []).append(stats[stat])
                key = f"{_PREFIX}/{name}/{stat}"
                logs[key] = stats[stat]
                if late:
                    hist.history.setdefault(key, []).append(stats[stat])


# ---------------------------------------------------------------------- plotting
def _nested(source) -> tuple[list[int], dict[str, dict[str, list[float]]]]:
    """``(epochs, {layer: {stat: values}})`` from a tracker, a History, or a dict of flat keys."""
    if isinstance(source, InternalsTracker):
        return [e + 1 for e in source.epochs], source.records
    if isinstance(source, History):
        flat = source.history
    elif isinstance(source, dict):
        flat = source.get("history", source) if isinstance(source.get("history"), dict) else source
    else:
        raise InvalidArgumentError(f"plot_internals got {type(source).__name__}; expected a History, "
                                   "an InternalsTracker or a dict of 'internals/...' keys")
    records: dict[str, dict[str, list[float]]] = {}
    for key, vals in flat.items():
        parts = key.split("/")
        if len(parts) == 3 and parts[0] == _PREFIX:
            records.setdefault(parts[1], {})[parts[2]] = list(vals)
    if not records:
        raise InvalidArgumentError("no 'internals/layer{i}/{stat}' keys found; train with "
                                   "callbacks=[InternalsTracker()] first")
    n = max(len(v) for r in records.values() for v in r.values())
    return list(range(1, n + 1)), dict(sorted(records.items(), key=lambda kv: int(kv[0][5:])))


def plot_internals(history_or_dict, path: str | os.PathLike, *, title: str | None = None) -> str:
    """Draw a 2x2 grid of what :class:`InternalsTracker` recorded and save it to ``path`` (PNG).

    Panels: activation std per layer over epochs; weight-gradient std; update-to-weight ratio (log
    scale); dead ReLU and saturated sigmoid/tanh fractions.

    Parameters
    ----------
    history_or_dict : History, InternalsTracker, or dict
        A ``History`` from ``fit``, the tracker itself, or a dict of flat ``internals/...`` keys
        (such as the ``history`` of a metrics.json file, or that file's whole contents).
    path : str or path-like

    Returns
    -------
    str
        The path written.
    """
    epochs, records = _nested(history_or_dict)
    require("matplotlib", "plot", "plot_internals")
    from matplotlib.figure import Figure  # no pyplot: no global state, no display needed
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(10, 7.5), dpi=90)
    axes = fig.subplots(2, 2).ravel()
    panels = [("act_std", "activation std (probe batch)", False),
              ("grad_std", "weight-gradient std", True),
              ("update_ratio", "update / weight ratio  ||dW|| / ||W||", True),
              (("dead_frac", "saturated_frac"), "dead (ReLU) / saturated fraction", False)]
    for ax, (stats, label, log) in zip(axes, panels):
        stats = stats if isinstance(stats, tuple) else (stats,)
        drawn = False
        for name, rec in records.items():
            for stat in stats:
                vals = rec.get(stat)
                if not vals:
                    continue
                style = "--" if stat == "saturated_frac" else "-"
                suffix = "" if len(stats) == 1 else (" dead" if stat == "dead_frac" else " sat.")
                ax.plot(epochs[:len(vals)], vals, style, marker="o", ms=3, label=name + suffix)
                drawn = True
        if log and drawn:
            ax.set_yscale("log")
        if stats[0] == "update_ratio" and drawn:
            ax.axhline(1e-3, color="grey", lw=0.8, ls=":")
        if not drawn:
            ax.text(0.5, 0.5, "no layers of this kind", ha="center", va="center", transform=ax.transAxes)
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if drawn:
            ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.suptitle(title or "Network internals per epoch")
    from ..plots.figures import save_figure
    return save_figure(fig, path)
