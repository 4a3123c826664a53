"""The practice exercises as data: for each, the inputs, the forward pass as named steps, the
gradients the learner writes (in the order backward computes them), the hints, the worked solution,
and examples of the catalogued mistakes planted in that solution (the tests plant every one).

:func:`render` turns an exercise into the file ``mlpnumpy learn start`` writes (forward given, backward
a stub) or into the solution ``mlpnumpy learn solution`` prints.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Input", "Step", "Exercise", "EXERCISES", "get_exercise", "render"]


@dataclass(frozen=True)
class Input:
    """An argument of ``forward``: ``make(rng, dims)`` draws it; constants (labels, masks) get no gradient."""

    name: str
    shape: str
    make: Callable[[np.random.Generator, dict], np.ndarray]
    differentiable: bool = True


@dataclass(frozen=True)
class Step:
    """One line of the forward pass, ``name = expr``, with its shape (and a comment)."""

    name: str
    expr: str
    shape: str
    note: str = ""


@dataclass(frozen=True)
class Exercise:
    """One exercise. ``grads`` names the quantities whose gradients ``backward`` returns, in the
    order it computes them; ``solution`` is the body of the reference backward (it defines
    ``d<name>`` for each). ``formulas`` maps a quantity to ``(mistake id, wrong expression)`` pairs
    the checker recognises; ``plants`` are ``(mistake id, line in the solution, wrong line)``."""

    name: str
    title: str
    summary: str
    intro: str
    dims: dict
    inputs: tuple[Input, ...]
    steps: tuple[Step, ...]
    grads: tuple[str, ...]
    solution: str
    hints: tuple[str, str]
    kinks: tuple[str, ...] = ()
    formulas: dict = field(default_factory=dict)
    plants: tuple[tuple[str, str, str], ...] = ()
    scalar: bool = False
    update: bool = False

    @property
    def output(self) -> str:
        return self.steps[-1].name

    def shape_of(self, name: str) -> str:
        for item in (*self.inputs, *self.steps):
            if item.name == name:
                return item.shape
        raise KeyError(name)

    def draw_inputs(self, rng: np.random.Generator) -> dict:
        return {i.name: i.make(rng, self.dims) for i in self.inputs}


# ---------------------------------------------------------------------------------- input makers
def _normal(*dims: str, scale: float = 1.0, shift: float = 0.0):
    def make(rng, d):
        return rng.standard_normal(tuple(d[k] for k in dims)) * scale + shift
    return make


def _labels(n: str, k: str):
    def make(rng, d):
        # every class appears when n >= K, so no column of the gradient is trivially zero
        y = np.arange(d[n]) % d[k]
        return rng.permutation(y)
    return make


def _mask(*dims: str, p: float):
    def make(rng, d):
        return (rng.random(tuple(d[k] for k in dims)) >= p).astype(np.float64)
    return make


def _const(value: float):
    return lambda rng, d: np.float64(value)


# ---------------------------------------------------------------------------------- the exercises
_GATES = Exercise(
    name="gates", title="Mul, add and max gates", summary="how three gates route a gradient",
    intro="out = max(x*y + z, w), element-wise. A mul gate swaps its inputs, an add gate copies the\n"
          "gradient to both inputs, a max gate sends it to the larger input only.",
    dims={"n": 6},
    inputs=(Input("x", "(n,)", _normal("n")), Input("y", "(n,)", _normal("n")),
            Input("z", "(n,)", _normal("n")), Input("w", "(n,)", _normal("n"))),
    steps=(Step("q", "x * y", "(n,)", "mul gate"), Step("r", "q + z", "(n,)", "add gate"),
           Step("out", "np.maximum(r, w)", "(n,)", "max gate")),
    grads=("r", "w", "q", "z", "x", "y"),
    solution="""\
dr = dout * (r > w)          # the max gate sends the gradient to the larger input...
dw = dout * (w > r)          # ...and nothing to the other
dq = dr                      # the add gate copies the gradient to both inputs
dz = dr
dx = dq * y                  # the mul gate: d(x*y)/dx = y, the *other* input
dy = dq * x
""",
    hints=("Every quantity here has shape (n,) and every gate acts element by element, so each\n"
           "gradient is dout (or the gradient just computed) times a local derivative, entry by entry.",
           "out_i = max(r_i, w_i):  dL/dr_i = dout_i * [r_i > w_i],  dL/dw_i = dout_i * [w_i > r_i]\n"
           "r_i = q_i + z_i:        dL/dq_i = dL/dr_i,  dL/dz_i = dL/dr_i\n"
           "q_i = x_i * y_i:        dL/dx_i = dL/dq_i * y_i,  dL/dy_i = dL/dq_i * x_i"),
    kinks=("r - w",),
    plants=(("sign_error", "dx = dq * y", "dx = -dq * y"),),
)

_SIGMOID = Exercise(
    name="sigmoid", title="Sigmoid", summary="a = 1/(1+exp(-z)); its derivative from the output",
    intro="The sigmoid's derivative is a(1-a): written with the cached output a, backward needs no exp.",
    dims={"n": 4, "d": 3},
    inputs=(Input("z", "(n, d)", _normal("n", "d", scale=2.0)),),
    steps=(Step("a", "1 / (1 + np.exp(-z))", "(n, d)"),),
    grads=("z",),
    solution="dz = dout * a * (1 - a)      # sigma'(z) = a(1-a), read from the cached output\n",
    hints=("dz has the shape of z, (n, d); the sigmoid acts on each entry alone, so dz is dout times\n"
           "the local derivative, element-wise (no matrix product, no sum).",
           "a_ij = 1/(1+exp(-z_ij)),  da_ij/dz_ij = a_ij (1 - a_ij),  so dL/dz_ij = dout_ij a_ij (1 - a_ij)"),
    formulas={"z": (("z_for_output", "dout * z * (1 - z)"),)},
    plants=(("z_for_output", "dz = dout * a * (1 - a)", "dz = dout * z * (1 - z)"),
            ("sign_error", "dz = dout * a * (1 - a)", "dz = -dout * a * (1 - a)")),
)

_TANH = Exercise(
    name="tanh", title="Tanh", summary="a = tanh(z); its derivative from the output",
    intro="tanh'(z) = 1 - tanh(z)^2 = 1 - a^2: the cached output is all backward needs.",
    dims={"n": 4, "d": 3},
    inputs=(Input("z", "(n, d)", _normal("n", "d", scale=1.5)),),
    steps=(Step("a", "np.tanh(z)", "(n, d)"),),
    grads=("z",),
    solution="dz = dout * (1 - a ** 2)     # tanh'(z) = 1 - a^2, read from the cached output\n",
    hints=("dz has the shape of z, (n, d); tanh acts entry by entry, so dz = dout * (local derivative).",
           "a_ij = tanh(z_ij),  da_ij/dz_ij = 1 - a_ij^2,  so dL/dz_ij = dout_ij (1 - a_ij^2)"),
    formulas={"z": (("z_for_output", "dout * (1 - z ** 2)"),)},
    plants=(("z_for_output", "dz = dout * (1 - a ** 2)", "dz = dout * (1 - z ** 2)"),
            ("sign_error", "dz = dout * (1 - a ** 2)", "dz = dout * (a ** 2 - 1)")),
)

_RELU = Exercise(
    name="relu", title="ReLU", summary="a = max(0, z); the mask",
    intro="ReLU lets the gradient through where the unit was active (a > 0) and stops it elsewhere.\n"
          "The checker keeps z away from 0, where ReLU has no derivative.",
    dims={"n": 5, "d": 4},
    inputs=(Input("z", "(n, d)", _normal("n", "d")),),
    steps=(Step("a", "np.maximum(z, 0)", "(n, d)"),),
    grads=("z",),
    solution="dz = dout * (a > 0)          # the mask, from the cached output; dout itself is not changed\n",
    hints=("dz has the shape of z, (n, d): element-wise again. Where the unit was off, what does a small\n"
           "change of z do to a?",
           "a_ij = max(0, z_ij),  da_ij/dz_ij = 1 if z_ij > 0 else 0,  so dL/dz_ij = dout_ij [a_ij > 0]"),
    kinks=("z",),
    formulas={"z": (("missing_relu_mask", "dout"),)},
    plants=(("missing_relu_mask", "dz = dout * (a > 0)", "dz = dout"),
            ("sign_error", "dz = dout * (a > 0)", "dz = -dout * (a > 0)")),
)

_DENSE = Exercise(
    name="dense", title="Dense layer (dW, db, dx)", summary="out = x @ W + b",
    intro="A fully connected layer. Layers *sum* over the batch: the mean over the batch is taken once,\n"
          "in the loss's backward, so dout already carries the 1/n.",
    dims={"n": 5, "d_in": 4, "d_out": 3},
    inputs=(Input("x", "(n, d_in)", _normal("n", "d_in")), Input("W", "(d_in, d_out)", _normal("d_in", "d_out")),
            Input("b", "(d_out,)", _normal("d_out"))),
    steps=(Step("out", "x @ W + b", "(n, d_out)"),),
    grads=("W", "b", "x"),
    solution="""\
dW = x.T @ dout              # (d_in, n) @ (n, d_out): the product sums over the batch
db = dout.sum(axis=0)        # b was added to every row: its gradient sums over the rows
dx = dout @ W.T              # (n, d_out) @ (d_out, d_in)
""",
    hints=("A gradient has the shape of what it differentiates: dW is (d_in, d_out) like W. The only\n"
           "arrays you have are x (n, d_in) and dout (n, d_out); which product of those, with which\n"
           "transpose, gives (d_in, d_out)? The batch axis n must be summed away. Same for db (d_out,)\n"
           "and dx (n, d_in), which needs W.",
           "out_ij = sum_k x_ik W_kj + b_j, so\n"
           "  dL/dW_kj = sum_i x_ik dout_ij      (= (x.T @ dout)_kj)\n"
           "  dL/db_j  = sum_i dout_ij\n"
           "  dL/dx_ik = sum_j dout_ij W_kj      (= (dout @ W.T)_ik)"),
    plants=(("transposed_product", "dW = x.T @ dout", "dW = dout.T @ x"),
            ("batch_mean_twice", "db = dout.sum(axis=0)", "db = dout.mean(axis=0)"),
            ("sign_error", "dx = dout @ W.T", "dx = -dout @ W.T")),
)

_CE_STEPS = Exercise(
    name="softmax_ce_steps", title="Softmax cross-entropy, step by step",
    summary="shift, exp, sum, log, pick, mean: one gradient per step",
    intro="The mean cross-entropy of integer labels y under softmax(z), written as the six steps a\n"
          "stable implementation takes. Backpropagate through each one, last step first. Where a value\n"
          "feeds two later steps, the two gradients add.",
    dims={"n": 5, "K": 4},
    inputs=(Input("z", "(n, K)", _normal("n", "K", scale=2.0)), Input("y", "(n,)", _labels("n", "K"), False)),
    steps=(Step("zmax", "z.max(axis=1, keepdims=True)", "(n, 1)", "shift: softmax ignores it"),
           Step("shifted", "z - zmax", "(n, K)"),
           Step("e", "np.exp(shifted)", "(n, K)", "exp"),
           Step("s", "e.sum(axis=1, keepdims=True)", "(n, 1)", "sum"),
           Step("logs", "np.log(s)", "(n, 1)", "log"),
           Step("logp", "shifted - logs", "(n, K)", "log-probabilities"),
           Step("picked", "logp[np.arange(len(y)), y]", "(n,)", "pick each row's label"),
           Step("loss", "-picked.mean()", "()", "mean")),
    grads=("picked", "logp", "logs", "s", "e", "shifted", "zmax", "z"),
    solution="""\
n = picked.shape[0]
dpicked = np.full(n, -dout / n)              # loss = -(1/n) sum_i picked_i
dlogp = np.zeros_like(logp)
dlogp[np.arange(n), y] = dpicked             # picking scatters the gradient back; the rest get 0
dlogs = -dlogp.sum(axis=1, keepdims=True)    # logs was broadcast over the K columns: sum them
ds = dlogs / s                               # d log(s) / ds = 1/s
de = np.ones_like(e) * ds                    # s summed e over the row: each entry gets ds
dshifted = dlogp + de * e                    # shifted feeds logp and exp: the two paths add
dzmax = -dshifted.sum(axis=1, keepdims=True)  # ~0: shifting does not change softmax
dz = dshifted + (z == zmax) * dzmax          # z feeds shifted and (through its max) zmax
""",
    hints=("Walk the steps backwards. Each gradient has the shape of its value: dpicked (n,), dlogp (n, K),\n"
           "dlogs (n, 1), ds (n, 1), de (n, K), dshifted (n, K), dzmax (n, 1), dz (n, K). A value that was\n"
           "broadcast from (n, 1) to (n, K) gets the row sum, keepdims=True. The loss is a scalar: dout is 1.0.",
           "loss = -(1/n) sum_i picked_i   -> dpicked_i = -dout/n\n"
           "picked_i = logp_{i,y_i}        -> dlogp_ij = dpicked_i [j = y_i]\n"
           "logp_ij = shifted_ij - logs_i  -> dlogs_i = -sum_j dlogp_ij, dshifted_ij += dlogp_ij\n"
           "logs_i = log s_i               -> ds_i = dlogs_i / s_i\n"
           "s_i = sum_j e_ij               -> de_ij = ds_i\n"
           "e_ij = exp(shifted_ij)         -> dshifted_ij += de_ij e_ij\n"
           "shifted_ij = z_ij - zmax_i     -> dzmax_i = -sum_j dshifted_ij, dz_ij += dshifted_ij\n"
           "zmax_i = max_j z_ij            -> dz_ij += dzmax_i [z_ij = zmax_i]"),
    plants=(("batch_mean_twice", "dpicked = np.full(n, -dout / n)", "dpicked = np.full(n, -dout / n / n)"),
            ("sign_error", "dpicked = np.full(n, -dout / n)", "dpicked = np.full(n, dout / n)")),
    scalar=True,
)

_CE = Exercise(
    name="softmax_ce", title="Softmax cross-entropy in one formula", summary="dz = (softmax(z) - onehot(y)) / n",
    intro="The same loss as softmax_ce_steps; now write dz in one line. Everything in the chain of\n"
          "steps collapses to the probabilities minus the one-hot labels, over n.",
    dims={"n": 5, "K": 4},
    inputs=(Input("z", "(n, K)", _normal("n", "K", scale=2.0)), Input("y", "(n,)", _labels("n", "K"), False)),
    steps=(Step("shifted", "z - z.max(axis=1, keepdims=True)", "(n, K)"),
           Step("logp", "shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))", "(n, K)"),
           Step("loss", "-logp[np.arange(len(y)), y].mean()", "()")),
    grads=("z",),
    solution="""\
n, K = z.shape
dz = (np.exp(logp) - np.eye(K)[y]) * (dout / n)   # p - onehot(y), the mean's 1/n, dL/dloss
""",
    hints=("dz is (n, K) like z. You have logp (n, K), so p = exp(logp) is the softmax, and y (n,) picks\n"
           "one column per row. The loss is a mean over n rows.",
           "dL/dz_ij = (1/n) (p_ij - [j = y_i]),  p_ij = exp(logp_ij)  (times dout = 1.0)"),
    formulas={"z": (("z_for_output", "(z - np.eye(z.shape[1])[y]) * (dout / z.shape[0])"),)},
    plants=(("batch_mean_twice", "* (dout / n)", "* (dout / n / n)"),
            ("batch_mean_missing", "* (dout / n)", "* dout"),
            ("z_for_output", "(np.exp(logp) - np.eye(K)[y])", "(z - np.eye(K)[y])"),
            ("sign_error", "(np.exp(logp) - np.eye(K)[y])", "(np.eye(K)[y] - np.exp(logp))")),
    scalar=True,
)

_BN_STEPS = Exercise(
    name="batchnorm_steps", title="Batch norm, step by step", summary="mean, centre, variance, std, normalise, scale",
    intro="Batch normalisation in training mode: each feature is centred and scaled by its batch\n"
          "statistics, then by gamma and beta. x reaches the output along three paths (directly, through\n"
          "the mean, through the variance); the gradients of all three add.",
    dims={"n": 6, "D": 3},
    inputs=(Input("x", "(n, D)", _normal("n", "D", scale=2.0, shift=1.0)),
            Input("gamma", "(D,)", _normal("D", scale=0.5, shift=1.0)), Input("beta", "(D,)", _normal("D"))),
    steps=(Step("mu", "x.mean(axis=0)", "(D,)", "batch mean"),
           Step("xc", "x - mu", "(n, D)", "centred"),
           Step("var", "(xc ** 2).mean(axis=0)", "(D,)", "biased batch variance"),
           Step("std", "np.sqrt(var + 1e-5)", "(D,)"),
           Step("xhat", "xc / std", "(n, D)", "normalised"),
           Step("out", "gamma * xhat + beta", "(n, D)")),
    grads=("gamma", "beta", "xhat", "std", "var", "xc", "mu", "x"),
    solution="""\
n = x.shape[0]
dgamma = (dout * xhat).sum(axis=0)           # gamma scaled every row: sum over the batch
dbeta = dout.sum(axis=0)
dxhat = dout * gamma
dstd = -(dxhat * xc).sum(axis=0) / std ** 2  # xhat = xc / std
dvar = dstd / (2 * std)                      # std = sqrt(var + eps)
dxc = dxhat / std + dvar * 2 * xc / n        # xc feeds xhat and var: the two paths add
dmu = -dxc.sum(axis=0)                       # xc = x - mu, mu broadcast over the rows
dx = dxc + dmu / n                           # x feeds xc and mu = mean(x)
""",
    hints=("dgamma, dbeta, dstd, dvar, dmu are (D,): a per-feature value broadcast over the n rows gets\n"
           "the sum over axis 0. dxhat, dxc, dx are (n, D). xc is used twice (in var and in xhat) and x\n"
           "twice (in mu and in xc): add the gradients of both uses.",
           "out_ij = gamma_j xhat_ij + beta_j    -> dgamma_j = sum_i dout_ij xhat_ij, dbeta_j = sum_i dout_ij,\n"
           "                                        dxhat_ij = dout_ij gamma_j\n"
           "xhat_ij = xc_ij / std_j              -> dxc_ij += dxhat_ij / std_j,\n"
           "                                        dstd_j = -sum_i dxhat_ij xc_ij / std_j^2\n"
           "std_j = sqrt(var_j + eps)            -> dvar_j = dstd_j / (2 std_j)\n"
           "var_j = (1/n) sum_i xc_ij^2          -> dxc_ij += dvar_j 2 xc_ij / n\n"
           "xc_ij = x_ij - mu_j                  -> dmu_j = -sum_i dxc_ij, dx_ij += dxc_ij\n"
           "mu_j = (1/n) sum_i x_ij              -> dx_ij += dmu_j / n"),
    plants=(("batch_mean_twice", "dbeta = dout.sum(axis=0)", "dbeta = dout.mean(axis=0)"),
            ("sign_error", "dmu = -dxc.sum(axis=0)", "dmu = dxc.sum(axis=0)")),
)

_BN = Exercise(
    name="batchnorm", title="Batch norm in one formula", summary="dx without the intermediate steps",
    intro="The same layer as batchnorm_steps. Collapse the chain into one expression for dx, the one\n"
          "mlpnumpy's BatchNorm1d uses (Ioffe & Szegedy 2015).",
    dims={"n": 6, "D": 3},
    inputs=(Input("x", "(n, D)", _normal("n", "D", scale=2.0, shift=1.0)),
            Input("gamma", "(D,)", _normal("D", scale=0.5, shift=1.0)), Input("beta", "(D,)", _normal("D"))),
    steps=(Step("mu", "x.mean(axis=0)", "(D,)"),
           Step("var", "x.var(axis=0)", "(D,)"),
           Step("xhat", "(x - mu) / np.sqrt(var + 1e-5)", "(n, D)"),
           Step("out", "gamma * xhat + beta", "(n, D)")),
    grads=("gamma", "beta", "x"),
    solution="""\
dgamma = (dout * xhat).sum(axis=0)
dbeta = dout.sum(axis=0)
dxhat = dout * gamma
dx = (dxhat - dxhat.mean(axis=0) - xhat * (dxhat * xhat).mean(axis=0)) / np.sqrt(var + 1e-5)
""",
    hints=("dgamma and dbeta are (D,), dx is (n, D). Everything in dx is per feature: two batch means of\n"
           "(n, D) arrays, broadcast back over the rows, and a division by the std (D,).",
           "With g = dout * gamma:  dx_ij = (g_ij - (1/n) sum_k g_kj - xhat_ij (1/n) sum_k g_kj xhat_kj) / std_j\n"
           "(the first mean comes from the path through mu, the second from the path through var)."),
    formulas={"gamma": (("z_for_output", "(dout * x).sum(axis=0)"),)},
    plants=(("batch_mean_twice", "dbeta = dout.sum(axis=0)", "dbeta = dout.mean(axis=0)"),
            ("z_for_output", "dgamma = (dout * xhat).sum(axis=0)", "dgamma = (dout * x).sum(axis=0)"),
            ("sign_error", "dx = (dxhat - dxhat.mean", "dx = -(dxhat - dxhat.mean")),
)

_DROPOUT = Exercise(
    name="dropout", title="Dropout (inverted)", summary="out = x * mask / (1 - p)",
    intro="Inverted dropout in training mode: units are kept where mask is 1 and scaled by 1/(1-p), so\n"
          "evaluation needs no change. The mask is drawn once and is a constant here.",
    dims={"n": 5, "D": 4},
    inputs=(Input("x", "(n, D)", _normal("n", "D")), Input("mask", "(n, D)", _mask("n", "D", p=0.25), False),
            Input("p", "()", _const(0.25), False)),
    steps=(Step("out", "x * mask / (1 - p)", "(n, D)"),),
    grads=("x",),
    solution="dx = dout * mask / (1 - p)   # the same mask and the same scale as forward\n",
    hints=("dx is (n, D) like x; the layer is element-wise, with two constants: the mask and 1/(1-p).",
           "out_ij = x_ij m_ij / (1 - p),  so dL/dx_ij = dout_ij m_ij / (1 - p)"),
    formulas={"x": (("dropout_scale_missing", "dout * mask"),)},
    plants=(("dropout_scale_missing", "dx = dout * mask / (1 - p)", "dx = dout * mask"),
            ("sign_error", "dx = dout * mask / (1 - p)", "dx = -dout * mask / (1 - p)")),
)

_MLP = Exercise(
    name="mlp_step", title="One full SGD step on a tiny MLP", summary="Dense-ReLU-Dense, cross-entropy, update",
    intro="A two-layer network, X -> Dense -> ReLU -> Dense -> softmax cross-entropy. Write its backward\n"
          "(everything you did so far, chained), then sgd_step, which moves every parameter against its\n"
          "gradient. The check also confirms that one step lowers the loss.",
    dims={"n": 6, "D": 4, "H": 5, "K": 3},
    inputs=(Input("X", "(n, D)", _normal("n", "D")), Input("y", "(n,)", _labels("n", "K"), False),
            Input("W1", "(D, H)", _normal("D", "H", scale=0.7)), Input("b1", "(H,)", _normal("H", scale=0.1)),
            Input("W2", "(H, K)", _normal("H", "K", scale=0.7)), Input("b2", "(K,)", _normal("K", scale=0.1))),
    steps=(Step("z1", "X @ W1 + b1", "(n, H)"),
           Step("h", "np.maximum(z1, 0)", "(n, H)", "ReLU"),
           Step("logits", "h @ W2 + b2", "(n, K)"),
           Step("shifted", "logits - logits.max(axis=1, keepdims=True)", "(n, K)"),
           Step("logp", "shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))", "(n, K)"),
           Step("loss", "-logp[np.arange(len(y)), y].mean()", "()")),
    grads=("logits", "W2", "b2", "h", "z1", "W1", "b1"),
    solution="""\
n, K = logits.shape
dlogits = (np.exp(logp) - np.eye(K)[y]) * (dout / n)   # the batch mean, taken here and only here
dW2 = h.T @ dlogits
db2 = dlogits.sum(axis=0)
dh = dlogits @ W2.T
dz1 = dh * (h > 0)           # the ReLU mask, from the cached output
dW1 = X.T @ dz1
db1 = dz1.sum(axis=0)
""",
    hints=("dlogits (n, K); dW2 (H, K) from h (n, H) and dlogits; db2 (K,); dh (n, H); dz1 (n, H) the\n"
           "same shape as dh; dW1 (D, H) from X (n, D) and dz1; db1 (H,). sgd_step returns a dict with\n"
           "the same keys as params.",
           "dlogits_ik = (p_ik - [k = y_i]) / n;  dW2 = h.T @ dlogits;  db2_k = sum_i dlogits_ik;\n"
           "dh = dlogits @ W2.T;  dz1_ij = dh_ij [h_ij > 0];  dW1 = X.T @ dz1;  db1_j = sum_i dz1_ij;\n"
           "SGD: theta <- theta - lr * dtheta for every parameter."),
    kinks=("z1",),
    formulas={"z1": (("missing_relu_mask", "dh"),)},
    plants=(("missing_relu_mask", "dz1 = dh * (h > 0)", "dz1 = dh"),
            ("batch_mean_twice", "db1 = dz1.sum(axis=0)", "db1 = dz1.mean(axis=0)"),
            ("transposed_product", "dW2 = h.T @ dlogits", "dW2 = dlogits.T @ h"),
            ("sign_error", "params[k] - lr * grads[k]", "params[k] + lr * grads[k]")),
    scalar=True, update=True,
)

#: The exercises in the order a learner takes them.
EXERCISES: dict[str, Exercise] = {ex.name: ex for ex in (
    _GATES, _SIGMOID, _TANH, _RELU, _DENSE, _CE_STEPS, _CE, _BN_STEPS, _BN, _DROPOUT, _MLP)}

_SGD_SOLUTION = "return {k: params[k] - lr * grads[k] for k in params}\n"


def get_exercise(name: str) -> Exercise:
    """The exercise called ``name``; an unknown name raises naming the valid ones."""
    from ..errors import InvalidArgumentError
    key = str(name).lower().removesuffix(".py")
    if key not in EXERCISES:
        raise InvalidArgumentError(f"exercise {name!r} is not one of: {', '.join(EXERCISES)}")
    return EXERCISES[key]


# ---------------------------------------------------------------------------------- rendering
def _indent(text: str, n: int = 4) -> str:
    return "".join((" " * n + line if line.strip() else line) for line in text.splitlines(True))


def _code_line(code: str, comment: str, width: int = 44) -> str:
    if not comment:
        return code
    return f"{code:<{width}}# {comment}" if len(code) < width else f"{code}  # {comment}"


def grad_signature(ex: Exercise) -> str:
    """``d<name> (shape)`` for each gradient, comma-separated (for messages)."""
    return ", ".join(f"d{g} {ex.shape_of(g)}" for g in ex.grads)


def render(ex: Exercise, *, solved: bool, directory: str = ".") -> str:
    """The learner's file for ``ex``: forward given; backward a stub, or the worked solution."""
    index = list(EXERCISES).index(ex.name) + 1
    args = ", ".join(i.name for i in ex.inputs)
    where = "" if directory in ("", ".") else f" --dir {directory}"
    lines = [f'"""mlpnumpy practice {index}/{len(EXERCISES)}: {ex.title}.', "", ex.intro, ""]
    if solved:
        lines += ["The worked solution: `mlpnumpy learn check " + ex.name + where + "` passes on it.", '"""']
    else:
        lines += ["Your task: write `backward` below" + (" and `sgd_step`" if ex.update else "")
                  + " (the forward pass is given). Then run",
                  f"    mlpnumpy learn check {ex.name}{where}",
                  "to compare every gradient with float64 central differences. Stuck? Add --hint 1 (shapes),",
                  "--hint 2 (index sums) or --hint 3 (a worked solution).", '"""']
    lines += ["import numpy as np", "", ""]
    shapes = "; ".join(f"{i.name} {i.shape}" for i in ex.inputs)
    lines += [f"def forward({args}):", f'    """Given. {shapes}. Returns ({ex.output}, cache)."""']
    for s in ex.steps:
        note = s.shape + (f"  {s.note}" if s.note else "")
        lines.append(_code_line(f"    {s.name} = {s.expr}", note))
    names = [i.name for i in ex.inputs] + [s.name for s in ex.steps]
    items, line = [f'"{k}": {k}' for k in names], "    cache = {"
    for j, item in enumerate(items):
        piece = item + (", " if j < len(items) - 1 else "}")
        if len(line) + len(piece) > 100:  # wrap between entries, never inside one
            lines.append(line.rstrip())
            line = " " * 13
        line += piece
    lines.append(line)
    lines += [f"    return {ex.output}, cache", "", ""]
    up = "1.0 (the loss is the output)" if ex.scalar else f"dL/d{ex.output}, shape {ex.shape_of(ex.output)}"
    ret = "{" + ", ".join(f'"{g}": d{g}' for g in ex.grads) + "}"
    lines += ["def backward(dout, cache):",
              f'    """dout = {up}.',
              "",
              f"    Return the gradient of the loss with respect to each of these, in this order:",
              f"    {ret}",
              "    (each has the shape of what it differentiates; a dict with the first few is checked too).",
              '    """']
    for k in names:
        lines.append(_code_line(f'    {k} = cache["{k}"]', ex.shape_of(k)))
    if solved:
        lines.append(_indent(ex.solution).rstrip("\n"))
        lines.append(f"    return {ret}")
    else:
        lines.append("    # Write these, in this order:")
        for g in ex.grads:
            lines.append(_code_line(f"    # d{g} = ...", f"{ex.shape_of(g)}, like {g}"))
        todo = ", ".join("d" + g for g in ex.grads)
        lines.append(f'    raise NotImplementedError("{ex.name}: write {todo} (shapes above) and return them")')
        lines.append(f"    return {ret}")
    if ex.update:
        lines += ["", "", "def sgd_step(params, grads, lr):",
                  '    """One SGD step: a new dict with the same keys as params, every parameter moved against',
                  '    its gradient by lr. params: {"W1": ..., "b1": ..., "W2": ..., "b2": ...}; grads likewise."""']
        if solved:
            lines.append(_indent(_SGD_SOLUTION).rstrip("\n"))
        else:
            lines.append('    raise NotImplementedError("mlp_step: write sgd_step: theta - lr * dtheta for each key")')
    return "\n".join(lines) + "\n"
