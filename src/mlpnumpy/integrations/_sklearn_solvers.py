"""scikit-learn's training rules, as solvers the estimators plug into the shared training driver
(:mod:`mlpnumpy.training.driver`): its SGD (momentum, Nesterov, ``invscaling``/``adaptive`` rates) and Adam
update rules, its losses on output activations, and L-BFGS over the packed parameters. They
reproduce scikit-learn's weights to the last bits, which is why they are not mlpnumpy's optimizers
and losses. Needs NumPy and SciPy; scikit-learn itself only for L-BFGS's option helpers.
"""
from __future__ import annotations

import numpy as np
from scipy.special import xlogy

from .._array_api import namespace
from ..nn.activations import sigmoid, softmax
from ..errors import require

__all__ = ["SGDSolver", "AdamSolver", "OptimizerSolver", "LOSSES", "LOSSES_XP", "OUTPUT_ACTIVATIONS",
           "unpack", "minimize_lbfgs"]


# ----------------------------------------------------------------------------- update rules
class SGDSolver:
    r"""scikit-learn's ``SGDOptimizer``, not torch's SGD.

    :math:`v \leftarrow \mu v - \eta g`; the step is :math:`v` (plain momentum) or, with Nesterov,
    :math:`\mu v - \eta g` computed *after* the velocity update. ``learning_rate`` may be
    ``'invscaling'`` (:math:`\eta_0 / (t + 1)^{p}` with ``t`` the samples seen) or ``'adaptive'``
    (divide by 5 when the loss stalls, stop below 1e-6).
    """

    def __init__(self, params, learning_rate_init, lr_schedule, momentum, nesterov, power_t):
        self.learning_rate_init = learning_rate_init
        self.learning_rate = float(learning_rate_init)
        self.lr_schedule, self.momentum, self.nesterov, self.power_t = lr_schedule, momentum, nesterov, power_t
        self.velocities = [namespace(p.data).zeros_like(p.data) for p in params]

    @property
    def lr(self) -> float:  # what mlpnumpy schedules drive
        return self.learning_rate

    @lr.setter
    def lr(self, value: float) -> None:
        self.learning_rate = float(value)

    def step(self, params) -> None:
        for p, v in zip(params, self.velocities):
            # Same operation order as sklearn, so the float64 results agree to the last bit.
            update = self.momentum * v - self.learning_rate * p.grad
            v[...] = update
            if self.nesterov:
                update = self.momentum * v - self.learning_rate * p.grad
            p.data += update

    def iteration_ends(self, time_step: int) -> None:
        if self.lr_schedule == "invscaling":
            self.learning_rate = float(self.learning_rate_init) / (time_step + 1) ** self.power_t

    def trigger_stopping(self, msg: str, verbose) -> bool:
        if self.lr_schedule != "adaptive":
            if verbose:
                print(msg + " Stopping.")
            return True
        if self.learning_rate <= 1e-6:
            if verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        self.learning_rate /= 5.0
        if verbose:
            print(f"{msg} Setting learning rate to {self.learning_rate:f}")
        return False


class AdamSolver(SGDSolver):
    r"""scikit-learn's ``AdamOptimizer`` (Kingma & Ba, 2014, Algorithm 1 with the bias corrections
    folded into the step size): :math:`\eta_t = \eta_0 \sqrt{1-\beta_2^t}/(1-\beta_1^t)`, step
    :math:`-\eta_t m / (\sqrt v + \epsilon)`. Differs from ``torch.optim.Adam``, which adds
    :math:`\epsilon` to the bias-corrected :math:`\sqrt{\hat v}`."""

    def __init__(self, params, learning_rate_init, beta_1, beta_2, epsilon):
        self.learning_rate_init = learning_rate_init
        self.learning_rate = float(learning_rate_init)
        self.lr_schedule = "constant"
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon
        self.t = 0
        self.ms = [namespace(p.data).zeros_like(p.data) for p in params]
        self.vs = [namespace(p.data).zeros_like(p.data) for p in params]

    @property
    def lr(self) -> float:
        return self.learning_rate_init

    @lr.setter
    def lr(self, value: float) -> None:
        self.learning_rate_init = float(value)

    def step(self, params) -> None:
        self.t += 1
        b1, b2 = self.beta_1, self.beta_2
        self.learning_rate = self.learning_rate_init * np.sqrt(1 - b2 ** self.t) / (1 - b1 ** self.t)
        for p, m, v in zip(params, self.ms, self.vs):
            m[...] = b1 * m + (1 - b1) * p.grad
            v[...] = b2 * v + (1 - b2) * p.grad ** 2
            # a NumPy float64 scalar on purpose for NumPy arrays (float32 weights step in float64, as
            # sklearn's); a Python float for other libraries, which take no NumPy scalars
            lr = self.learning_rate if isinstance(v, np.ndarray) else float(self.learning_rate)
            p.data += -lr * m / (namespace(v).sqrt(v) + self.epsilon)


class OptimizerSolver:
    """An mlpnumpy optimizer behind the same small interface (stops when the loss stalls)."""

    def __init__(self, optimizer):
        self.optimizer = optimizer

    @property
    def lr(self) -> float:
        return self.optimizer.lr

    @lr.setter
    def lr(self, value: float) -> None:
        self.optimizer.lr = value

    def step(self, params) -> None:
        self.optimizer.step(params)

    def iteration_ends(self, time_step: int) -> None:
        pass

    def trigger_stopping(self, msg: str, verbose) -> bool:
        if verbose:
            print(msg + " Stopping.")
        return True


# ----------------------------------------------------------------------------- losses
# Each takes the output-layer *activations* (probabilities or predictions), as sklearn's do; for
# every pair below the gradient with respect to the output layer's pre-activation is ``p - y``.
def _squared_loss(y, p, w):
    return 0.5 * np.average((y - p) ** 2, weights=w, axis=0).mean()


def _poisson_loss(y, p, w):
    return np.average(xlogy(y, y / p) - y + p, weights=w, axis=0).sum()


def _log_loss(y, p, w):
    eps = np.finfo(p.dtype).eps
    p = np.clip(p, eps, 1 - eps)
    if p.shape[1] == 1:
        p = np.append(1 - p, p, axis=1)
    if y.shape[1] == 1:
        y = np.append(1 - y, y, axis=1)
    return -np.average(xlogy(y, p), weights=w, axis=0).sum()


def _binary_log_loss(y, p, w):
    eps = np.finfo(p.dtype).eps
    p = np.clip(p, eps, 1 - eps)
    return -np.average(xlogy(y, p) + xlogy(1 - y, 1 - p), weights=w, axis=0).sum()


def _xlogy(xp, x, y):
    """``x * log(y)``, 0 where ``x == 0`` (scipy's ``xlogy``) for any array library."""
    return xp.where(x == 0, xp.zeros_like(y), x * xp.log(xp.where(x == 0, xp.ones_like(y), y)))


def _average0(xp, a, w):
    """``np.average(a, weights=w, axis=0)`` for any array library."""
    if w is None:
        return xp.mean(a, axis=0)
    return xp.sum(a * xp.reshape(w, (-1, 1)), axis=0) / xp.sum(w)


# The same four losses for arrays of other libraries (array_api_dispatch=True), 0-d arrays on their
# device: the fit loop adds them up there and brings the epoch's loss back once.
def _squared_loss_xp(y, p, w):
    xp = namespace(p)
    return 0.5 * xp.mean(_average0(xp, (y - p) ** 2, w))


def _poisson_loss_xp(y, p, w):
    xp = namespace(p)
    return xp.sum(_average0(xp, _xlogy(xp, y, y / p) - y + p, w))


def _log_loss_xp(y, p, w):
    xp = namespace(p)
    eps = float(xp.finfo(p.dtype).eps)
    p = xp.clip(p, eps, 1 - eps)
    if p.shape[1] == 1:
        p = xp.concat([1 - p, p], axis=1)
    if y.shape[1] == 1:
        y = xp.concat([1 - y, y], axis=1)
    return -xp.sum(_average0(xp, _xlogy(xp, y, p), w))


def _binary_log_loss_xp(y, p, w):
    xp = namespace(p)
    eps = float(xp.finfo(p.dtype).eps)
    p = xp.clip(p, eps, 1 - eps)
    return -xp.sum(_average0(xp, _xlogy(xp, y, p) + _xlogy(xp, 1 - y, 1 - p), w))


OUTPUT_ACTIVATIONS = {"identity": lambda z: z, "softmax": softmax, "logistic": sigmoid,
                       "exp": lambda z: namespace(z).exp(z)}
LOSSES = {("squared_error", "identity"): _squared_loss, ("poisson", "exp"): _poisson_loss,
           ("log_loss", "softmax"): _log_loss, ("log_loss", "logistic"): _binary_log_loss}
LOSSES_XP = {("squared_error", "identity"): _squared_loss_xp, ("poisson", "exp"): _poisson_loss_xp,
              ("log_loss", "softmax"): _log_loss_xp, ("log_loss", "logistic"): _binary_log_loss_xp}


def unpack(params, packed: np.ndarray) -> None:
    """Copy the 1-D vector ``packed`` into ``params`` in order (each cast to its dtype)."""
    start = 0
    for p in params:
        p.data[...] = np.reshape(packed[start:start + p.size], p.shape)
        start += p.size



def minimize_lbfgs(loss_grad, x0: np.ndarray, *, max_fun: int, max_iter: int, tol: float, verbose):
    """scikit-learn's L-BFGS call: minimise ``loss_grad(x) -> (loss, gradient)`` from ``x0`` (1-D,
    float64) with SciPy's L-BFGS-B and scikit-learn's options. Returns ``(x, loss, n_iter)``."""
    require("scipy.optimize", "sklearn", "solver='lbfgs'")
    import scipy.optimize
    iprint = 1 if verbose is True or verbose >= 1 else -1
    try:
        from sklearn.utils.fixes import _get_additional_lbfgs_options_dict
        extra = _get_additional_lbfgs_options_dict("iprint", iprint)
    except ImportError:  # pragma: no cover - other sklearn versions
        extra = {}
    res = scipy.optimize.minimize(loss_grad, x0, method="L-BFGS-B", jac=True,
                                  options={"maxfun": max_fun, "maxiter": max_iter, "gtol": tol, **extra})
    from sklearn.utils.optimize import _check_optimize_result
    return res.x, float(res.fun), _check_optimize_result("lbfgs", res, max_iter)
