"""The classic initialisation study (CS231n; Glorot & Bengio 2010; He et al. 2015).

Push 1,000 Gaussian inputs through 10 Dense layers of 100 units, with no bias and no training, for
four weight scales and three activations, then backpropagate a random upstream gradient through the
same stack. Every setting uses the same random draws; only the scale of the weights changes.
"""
from __future__ import annotations

import os

import numpy as np

from ..nn.initializers import he_normal, normal, xavier_normal
from ..nn.layers import Dense
from ._common import new_figure, prepare_out, save_figure, table, write_json

__all__ = ["SCHEMES", "ACTIVATIONS", "run_stack", "run", "known_results", "histogram_figure"]


def _xavier(shape, fan_in, fan_out, rng, dtype, gain=1.0):
    # Plain Glorot (gain 1) in front of every activation, as the study compares: std sqrt(2/(in+out)).
    return xavier_normal(shape, fan_in, fan_out, rng, dtype, gain=1.0)


def _he(shape, fan_in, fan_out, rng, dtype, gain=1.0):
    return he_normal(shape, fan_in, fan_out, rng, dtype, gain=float(np.sqrt(2.0)))  # std sqrt(2/fan_in)


#: key -> (label, initialiser ``init(shape, fan_in, fan_out, rng, dtype)``)
SCHEMES = {
    "std1": ("N(0, 1)", normal(1.0)),
    "std0.01": ("N(0, 0.01^2)", normal(0.01)),
    "xavier": ("Xavier, std sqrt(2/(in+out))", _xavier),
    "he": ("He, std sqrt(2/in)", _he),
}
ACTIVATIONS = ("sigmoid", "tanh", "relu")


def _saturated(a: np.ndarray, activation: str) -> float:
    """Fraction of activations in a flat tail of the function (where its slope is near 0)."""
    if activation == "sigmoid":
        return float(np.mean((a < 0.05) | (a > 0.95)))
    if activation == "tanh":
        return float(np.mean(np.abs(a) > 0.99))
    return float(np.mean(a == 0))  # ReLU: the flat half


def run_stack(activation: str, scheme: str, *, n_samples: int = 1000, width: int = 100, depth: int = 10,
              seed: int = 0, keep_activations: bool = False) -> dict:
    """Forward and backward through ``depth`` Dense layers of ``width`` units, in float64.

    Returns per-layer lists: ``act_mean``, ``act_std`` (over all entries), ``sample_std`` (each unit's
    std over the samples, averaged over units: how much the layer still tells the inputs apart),
    ``saturated_frac`` (sigmoid outside [0.05, 0.95], tanh ``|a| > 0.99``, ReLU exactly 0),
    ``grad_W_norm`` (``||dL/dW||``) and ``grad_in_norm`` (``||dL/dx||`` of each layer's input), for an
    upstream gradient ``G ~ N(0, 1)`` on the last layer's output; with ``keep_activations`` also the
    arrays under ``"a"``.
    """
    rng = np.random.default_rng(seed)  # same draws for every setting: only the scale differs
    X = rng.standard_normal((n_samples, width))
    init = SCHEMES[scheme][1]
    layers = []
    for _ in range(depth):
        layer = Dense(width, width, activation, init="zeros", bias=False, dtype=np.float64)
        layer.W = init((width, width), width, width, rng, np.float64)
        layers.append(layer)
    G = rng.standard_normal((n_samples, width))
    acts, a = [], X
    for layer in layers:
        a = layer.forward(a, training=True)
        acts.append(a)
    grad, grad_W, grad_in = G, [], []
    for layer in reversed(layers):   # the chain rule, layer by layer
        grad = layer.backward(grad)
        grad_W.append(float(np.linalg.norm(layer.dW)))
        grad_in.append(float(np.linalg.norm(grad)))
    out = {
        "act_mean": [float(a.mean()) for a in acts],
        "act_std": [float(a.std()) for a in acts],
        "sample_std": [float(a.std(axis=0).mean()) for a in acts],
        "saturated_frac": [_saturated(a, activation) for a in acts],
        "grad_W_norm": grad_W[::-1],
        "grad_in_norm": grad_in[::-1],
    }
    if keep_activations:
        out["a"] = acts
    return out


def known_results(results: dict) -> dict[str, bool]:
    """The findings, as checks on the numbers (each explained in docs/05-initialisation.md).

    (a) N(0,1) saturates sigmoid and tanh: most last-layer activations sit in the flat tails. The
        gradient does not vanish with them: with tanh it *explodes* backwards (the weights are 10x too
        large for 100 inputs), ``||dL/dW||`` of layer 1 more than 100x that of layer 10.
    (b) N(0,0.01²) collapses the signal: tanh/ReLU last-layer std < 1e-6; sigmoid all ≈ 0.5, its
        overall std < 0.02 and its per-sample spread < 1e-6 (every input gives the same output); tanh's
        first-layer gradient is below 1e-6 of what Xavier gives.
    (c) Xavier keeps tanh working: last-layer std > 0.1, < 10% saturated, ``||dL/dW||`` within 2x
        across the layers. It does not keep the sigmoid working: nothing saturates and the overall std
        stays > 0.05, but the per-sample spread falls below 1e-5 and the gradient vanishes backwards
        (layer 1 below 1e-4 of layer 10).
    (d) ReLU: He keeps the spread (last/first std in [0.5, 2]); Xavier (gain 1) halves the variance
        at each layer: std decreasing layer by layer, last/first < 0.1.
    """
    r = results
    last = lambda act, s, k="act_std": r[act][s][k][-1]  # noqa: E731
    grad = lambda act, s: r[act][s]["grad_W_norm"]  # noqa: E731
    relu_x = r["relu"]["xavier"]["act_std"]
    relu_he = r["relu"]["he"]["act_std"]
    tanh_x_grad = grad("tanh", "xavier")
    return {
        "a_sigmoid_std1_saturates": last("sigmoid", "std1", "saturated_frac") > 0.5,
        "a_tanh_std1_saturates": last("tanh", "std1", "saturated_frac") > 0.5,
        "a_tanh_std1_gradient_explodes_backwards": grad("tanh", "std1")[0] > 100 * grad("tanh", "std1")[-1],
        "b_tanh_std0.01_collapses": last("tanh", "std0.01") < 1e-6,
        "b_relu_std0.01_collapses": last("relu", "std0.01") < 1e-6,
        "b_sigmoid_std0.01_all_half": abs(last("sigmoid", "std0.01", "act_mean") - 0.5) < 0.01
        and last("sigmoid", "std0.01") < 0.02 and last("sigmoid", "std0.01", "sample_std") < 1e-6,
        "b_tanh_std0.01_gradient_tiny": grad("tanh", "std0.01")[0] < 1e-6 * tanh_x_grad[0],
        "c_tanh_xavier_works": last("tanh", "xavier") > 0.1 and last("tanh", "xavier", "saturated_frac") < 0.1
        and max(tanh_x_grad) < 2 * min(tanh_x_grad),
        "c_sigmoid_xavier_unsaturated": last("sigmoid", "xavier") > 0.05
        and last("sigmoid", "xavier", "saturated_frac") < 0.1,
        "c_sigmoid_xavier_gradient_vanishes": grad("sigmoid", "xavier")[0] < 1e-4 * grad("sigmoid", "xavier")[-1]
        and last("sigmoid", "xavier", "sample_std") < 1e-5,
        "d_relu_he_keeps_spread": 0.5 <= relu_he[-1] / relu_he[0] <= 2.0,
        "d_relu_xavier_shrinks": all(b < a for a, b in zip(relu_x, relu_x[1:])) and relu_x[-1] / relu_x[0] < 0.1,
    }


def _plot_histograms(activation: str, runs: dict, path: str) -> str:
    return save_figure(histogram_figure(activation, runs), path)


def histogram_figure(activation: str, runs: dict):
    """One row per weight scale, one column per layer; the panels of a row share one x-scale, so a
    layer whose spread is 1e8 times smaller than its row's widest shows as a spike, not as the same
    shape with other tick labels."""
    from matplotlib.ticker import MaxNLocator
    depth = len(next(iter(runs.values()))["a"])
    fig = new_figure("the init experiment's figures", figsize=(1.55 * depth, 1.6 * len(runs) + 0.7), dpi=70)
    axes = fig.subplots(len(runs), depth, squeeze=False, sharex="row")
    for row, (scheme, res) in enumerate(runs.items()):
        lo = min(float(a.min()) for a in res["a"])
        hi = max(float(a.max()) for a in res["a"])
        pad = 0.05 * (hi - lo) or 1e-12
        edges = np.linspace(lo, hi, 61)  # the same bins across the row: a narrow layer fills one bin
        for col, a in enumerate(res["a"]):
            ax = axes[row, col]
            ax.hist(a.ravel(), bins=edges, color=f"C{row}")
            ax.set_yticks([])
            ax.set_xlim(lo - pad, hi + pad)
            ax.xaxis.set_major_locator(MaxNLocator(nbins=2, symmetric=activation == "tanh"))
            ax.ticklabel_format(axis="x", style="sci", scilimits=(-2, 3))
            ax.tick_params(labelsize=6)
            ax.xaxis.get_offset_text().set_fontsize(6)
            ax.set_title(f"L{col + 1} std {res['act_std'][col]:.2g}", fontsize=7)
            if col == 0:
                ax.set_ylabel(_SHORT[scheme], fontsize=8)
    fig.suptitle(f"{activation}: activation histograms per layer (rows: weight scale; one x-scale per row)")
    fig.subplots_adjust(left=0.03, right=0.99, bottom=0.05, top=0.88, wspace=0.12, hspace=0.75)
    return fig


_SHORT = {"std1": "N(0, 1)", "std0.01": "N(0, 0.01²)", "xavier": "Xavier", "he": "He"}
_STYLES = {"std1": "o-", "std0.01": "s--", "xavier": "^-.", "he": "v:"}


def _plot_curves(results: dict, path: str) -> str:
    fig = new_figure("the init experiment's figures", figsize=(13, 7), dpi=80)
    axes = fig.subplots(2, len(results), squeeze=False)
    for col, (activation, runs) in enumerate(results.items()):
        for scheme, res in runs.items():
            layers = np.arange(1, len(res["act_std"]) + 1)
            # floor at 1e-300 so a collapse to exactly 0 still shows on the log axis
            style = _STYLES[scheme]  # marker and line style differ too: no curve hides another
            axes[0, col].semilogy(layers, np.maximum(res["act_std"], 1e-300), style, ms=4, label=SCHEMES[scheme][0])
            axes[1, col].semilogy(layers, np.maximum(res["grad_W_norm"], 1e-300), style, ms=4,
                                  label=SCHEMES[scheme][0])
        axes[0, col].set_title(f"{activation}: activation std per layer")
        axes[1, col].set_title(f"{activation}: ||dL/dW|| per layer")
        for ax in axes[:, col]:
            ax.set_xlabel("layer")
            ax.grid(alpha=0.3)
        axes[0, col].legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path)


def run(out: str | os.PathLike, *, quick: bool = False, seed: int = 0, print_fn=print) -> dict:
    """Run the study, write ``init.json`` and the figures into ``out``, print a table; return the JSON.

    ``quick`` pushes 300 inputs instead of 1,000 and skips the per-layer histogram figures; the
    findings (a)-(d) hold for both (tests/test_experiments.py checks them on the quick run).
    """
    out = prepare_out(out)
    config = {"n_samples": 300 if quick else 1000, "width": 100, "depth": 10, "seed": seed,
              "upstream_gradient": "N(0, 1)",
              "dtype": "float64", "bias": False}
    results, figures = {}, []
    for activation in ACTIVATIONS:
        runs = {s: run_stack(activation, s, n_samples=config["n_samples"], width=config["width"],
                             depth=config["depth"], seed=seed, keep_activations=not quick) for s in SCHEMES}
        if not quick:
            figures.append(_plot_histograms(activation, runs, os.path.join(out, f"init_hist_{activation}.png")))
        results[activation] = {s: {k: v for k, v in r.items() if k != "a"} for s, r in runs.items()}
    figures.append(_plot_curves(results, os.path.join(out, "init_curves.png")))
    checks = known_results(results)
    data = {"experiment": "init", "config": config, "schemes": {k: v[0] for k, v in SCHEMES.items()},
            "results": results, "checks": checks,
            "figures": [os.path.basename(f) for f in figures]}
    write_json(os.path.join(out, "init.json"), data)
    if print_fn is not None:
        depth = config["depth"]
        rows = [[f"{a} / {SCHEMES[s][0]}", *results[a][s]["act_std"]] for a in ACTIVATIONS for s in SCHEMES]
        print_fn(f"Activation std per layer ({config['n_samples']:,} inputs, {depth} layers of {config['width']} "
                 "units, no training)")
        print_fn(table(["activation / weights", *[f"L{i}" for i in range(1, depth + 1)]], rows, "{:.2g}"))
        print_fn("")
        for name, ok in checks.items():
            print_fn(f"  [{'ok' if ok else 'FAILED'}] {name}")
        print_fn(f"wrote {os.path.join(out, 'init.json')} and {len(figures)} figure(s)")
    return data
