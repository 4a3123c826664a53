"""scikit-learn estimators, ``MLPClassifier`` and ``MLPRegressor``, trained by mlpnumpy's layers.

Drop-in replacements for ``sklearn.neural_network``'s classes: the same parameters, defaults, fitted
attributes and training rules (Glorot initialisation drawn from ``random_state``, sklearn's SGD and
Adam, its loss with the L2 penalty, its ``tol``/``n_iter_no_change`` convergence test, early stopping
on a stratified split), so that with the same ``random_state`` they learn the same weights. Extras
(dropout, batch norm, more activations, mlpnumpy optimizers and schedules, callbacks) change nothing
at their defaults. This module is the optional part: it imports scikit-learn at the top.
"""
from __future__ import annotations

import copy
import warnings
from numbers import Integral, Real

import numpy as np

from ..errors import require

require("sklearn", "sklearn", "mlpnumpy.sklearn")

import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state, column_or_1d, gen_batches, shuffle
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import (
    _check_partial_fit_first_call,
    type_of_target,
    unique_labels,
)
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    validate_data,
)

from .._array_api import device_of, is_array, namespace, to_host
from ..nn._modellock import exclusive_fit, reads_model
from ._sklearn_solvers import (
    LOSSES,
    LOSSES_XP,
    OUTPUT_ACTIVATIONS,
    AdamSolver,
    OptimizerSolver,
    SGDSolver,
    minimize_lbfgs,
    unpack,
)
from ..training.callbacks import Callback, ProgressBar
from ..training.driver import TrainingDriver, all_finite as _all_finite
from ..errors import DivergenceError, InvalidArgumentError, InvalidDataError, check_dtype
from ..nn.layers import Dense
from ..nn.model import Sequential, dense_stack

try:  # scikit-learn's declared-constraint validation: its error class and its wording
    from sklearn.utils._param_validation import InvalidParameterError as _SkInvalidParameterError
    from sklearn.utils._param_validation import Interval, Options, StrOptions
except ImportError:  # pragma: no cover - a scikit-learn without the private module
    Interval = Options = StrOptions = None

    class _SkInvalidParameterError(ValueError, TypeError):
        """Stands in for scikit-learn's class where its private module is missing."""

__all__ = ["MLPClassifier", "MLPRegressor", "InvalidParameterError", "SolverDivergenceError"]


class InvalidParameterError(_SkInvalidParameterError, InvalidArgumentError):
    """A constructor argument is invalid: scikit-learn's ``InvalidParameterError`` (a ``ValueError``
    and a ``TypeError``) and mlpnumpy's ``InvalidArgumentError`` at once, so either ``except`` works."""


class SolverDivergenceError(DivergenceError, ValueError):
    """Training produced non-finite weights: mlpnumpy's ``DivergenceError`` (a ``FloatingPointError``)
    and a ``ValueError``, the class scikit-learn raises in that case."""

_STOCHASTIC_SOLVERS = ("sgd", "adam")
_SKLEARN_ACTIVATIONS = ("identity", "logistic", "tanh", "relu")
_EXTRA_ACTIVATIONS = ("leaky_relu", "gelu", "elu", "selu", "softplus", "hard_sigmoid", "silu", "mish")


def _np_dtype(dt) -> np.dtype:
    """The NumPy dtype named like ``dt`` (any library's float32/float64)."""
    from .._array_api import dtype_name
    return np.dtype(dtype_name(dt))


def _dispatched(X) -> bool:
    """Whether ``X`` is to be used where it lives: scikit-learn's ``array_api_dispatch`` is on and ``X`` is
    an array of another Array API library (a torch tensor, a CuPy array); otherwise inputs become NumPy."""
    from sklearn import get_config
    return bool(get_config().get("array_api_dispatch")) and not isinstance(X, np.ndarray) and \
        not sp.issparse(X) and is_array(X)


def _sum(a):
    return a.sum() if isinstance(a, np.ndarray) else namespace(a).sum(a)


# The core model's loss, which sets its output transform (ONNX export, model.predict_proba).
_CORE_LOSS = {"softmax": "cross_entropy", "logistic": "binary_cross_entropy", "identity": "mse", "exp": "mse"}


def _constraints() -> dict:
    """The declared constraints of every constructor argument, in scikit-learn's terms.

    The shared parameters use scikit-learn 1.9's own constraints (``BaseMultilayerPerceptron.
    _parameter_constraints``), so an invalid value gets its error class and its wording; the
    extras are declared the same way. Empty when scikit-learn's private module is missing.
    """
    if Interval is None:  # pragma: no cover - see the import
        return {}
    from ..optim.optimizers import OPTIMIZERS, Optimizer
    from ..optim.schedules import SCHEDULES, Schedule
    return {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(_SKLEARN_ACTIVATIONS + _EXTRA_ACTIVATIONS)), list, tuple],
        "solver": [StrOptions({"lbfgs", "sgd", "adam"})],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions({"constant", "invscaling", "adaptive"})],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left"), Options(Real, {np.inf})],
        "max_fun": [Interval(Integral, 1, None, closed="left")],
        # the extras
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "batch_norm": ["boolean"],
        "class_weight": [dict, StrOptions({"balanced"}), None],
        "optimizer": [StrOptions(set(OPTIMIZERS)), Optimizer, None],
        "lr_schedule": [StrOptions((set(SCHEDULES) - {"lambda"}) | {"none"}), Schedule, callable, None],
        "callbacks": [list, tuple],
        "progress_bar": ["boolean"],
        "restore_best_weights": ["boolean"],
        "dtype": [StrOptions({"float32", "float64"}), type, np.dtype, None],
        "l1": [Interval(Real, 0, None, closed="left")],
        "l1_bias": [Interval(Real, 0, None, closed="left")],
    }


def _check_params(est) -> None:
    """Validate the constructor arguments (stored verbatim): the declared constraints first, with
    scikit-learn's wording, then what a table cannot say (one activation per entry, a supported
    dtype, callbacks that are Callbacks, one source of the learning rate)."""
    from sklearn.utils._param_validation import validate_parameter_constraints
    try:
        validate_parameter_constraints(est._parameter_constraints, est.get_params(deep=False),
                                       caller_name=type(est).__name__)
    except _SkInvalidParameterError as exc:
        raise InvalidParameterError(str(exc)) from None
    acts = est.activation if isinstance(est.activation, (list, tuple)) else [est.activation]
    for a in acts:
        if not (isinstance(a, str) and a in _SKLEARN_ACTIVATIONS + _EXTRA_ACTIVATIONS):
            raise InvalidParameterError(f"activation={a!r} is not one of: "
                                        f"{', '.join(_SKLEARN_ACTIVATIONS + _EXTRA_ACTIVATIONS)}")
    if est.dtype is not None:
        try:
            check_dtype(est.dtype)
        except (InvalidArgumentError, TypeError) as exc:
            raise InvalidParameterError(f"dtype={est.dtype!r} is not supported; expected None (follow the "
                                        "input: float32 stays float32, anything else float64), float32 "
                                        "or float64") from exc
    if est.lr_schedule is not None and est.learning_rate != "constant":
        raise InvalidParameterError(f"lr_schedule={est.lr_schedule!r} and learning_rate={est.learning_rate!r} "
                                    "both set the learning rate; use learning_rate='constant' with a schedule")
    for cb in est.callbacks:
        if not isinstance(cb, Callback):
            raise InvalidParameterError(f"callbacks holds {type(cb).__name__}; expected mlpnumpy Callback objects")


class _BaseMLP(BaseEstimator):
    """What the classifier and the regressor share: building, the training loops, the forward pass."""

    # ------------------------------------------------------------------ structure
    def _check_solver(self):
        if not self._stochastic:
            raise AttributeError(f"partial_fit is only available for stochastic optimizers. {self.solver} "
                                 "is not stochastic.")
        return True

    def _hidden_sizes(self) -> list[int]:
        h = self.hidden_layer_sizes
        h = list(h) if hasattr(h, "__iter__") else [h]
        if any(not isinstance(u, Integral) or isinstance(u, bool) or u <= 0 for u in h):
            raise InvalidParameterError(f"hidden_layer_sizes={self.hidden_layer_sizes!r} is invalid; "
                                        "expected positive integers, e.g. (100,) or (64, 32)")
        return [int(u) for u in h]

    def _activations(self, n_hidden: int) -> list[str]:
        if isinstance(self.activation, (list, tuple)):
            if len(self.activation) != n_hidden:
                raise InvalidParameterError(f"activation has {len(self.activation)} entries; expected one "
                                            f"per hidden layer ({n_hidden})")
            return list(self.activation)
        return [self.activation] * n_hidden

    def _make_model(self, layer_units: list[int], dtype, seed) -> list[Dense]:
        """Create ``model_`` (weights not set) and ``_hidden_ends``; returns its Dense layers."""
        acts = self._activations(len(layer_units) - 2) + ["identity"]
        layers, self._hidden_ends = dense_stack(layer_units, acts, dtype=dtype, batch_norm=self.batch_norm,
                                                norm_bias=True, dropout=self.dropout, alpha_dropout=False)
        self.model_ = Sequential(layers, loss=_CORE_LOSS[self.out_activation_], seed=seed, dtype=dtype)
        self._dense = [l for l in layers if isinstance(l, Dense)]
        return self._dense

    def _build(self, layer_units: list[int], dtype) -> None:
        """Create ``model_`` and draw its weights as sklearn's ``_initialize`` does."""
        n_hidden = len(layer_units) - 2
        acts = self._activations(n_hidden)
        # Glorot & Bengio (2010) uniform, drawn in sklearn's order: per layer the weights, then the
        # intercepts; sklearn's bound uses factor 2 for the logistic activation, 6 otherwise.
        init = []
        for i in range(len(layer_units) - 1):
            act = acts[min(i, n_hidden - 1)] if n_hidden else self.activation
            bound = np.sqrt((2.0 if act == "logistic" else 6.0) / (layer_units[i] + layer_units[i + 1]))
            W = self._random_state.uniform(-bound, bound, (layer_units[i], layer_units[i + 1]))
            init.append((W, self._random_state.uniform(-bound, bound, layer_units[i + 1])))
        # Dropout masks need a generator; drawing its seed only then keeps sklearn's stream otherwise.
        seed = int(self._random_state.randint(np.iinfo(np.int32).max)) if self.dropout > 0 else None
        dense = self._make_model(layer_units, dtype, seed)
        for layer, (W, b) in zip(dense, init):
            layer.W, layer.b = W, b
        self.coefs_ = [l.W for l in dense]            # the very arrays the layers train
        self.intercepts_ = [l.b for l in dense]
        self._best_weights = self.model_.get_weights()

    def _ensure_model(self, dtype=None) -> None:
        """Build ``model_`` around ``coefs_`` and ``intercepts_`` when it is missing.

        That is the case after unpickling (the pickle stores the weights once, not the model) and
        when a user set ``coefs_``, ``intercepts_``, ``n_layers_`` and ``out_activation_`` on an
        unfitted estimator, as scikit-learn allows, before ``partial_fit`` or ``predict``.
        """
        if self.__dict__.get("model_") is not None:
            return
        coefs = [np.asarray(c) for c in self.coefs_]
        layer_units = [coefs[0].shape[0]] + [c.shape[1] for c in coefs]
        if dtype is not None:
            dtype = check_dtype(dtype)
        elif self.dtype is not None:
            dtype = check_dtype(self.dtype)
        else:  # scikit-learn's rule: float32 stays float32, anything else is float64
            dtype = np.float32 if all(c.dtype == np.float32 for c in coefs) else np.float64
        # a dropout generator seeded by an integer random_state; __setstate__ restores a saved one
        self._make_model(layer_units, dtype, seed=self.random_state if isinstance(self.random_state, Integral)
                         and not isinstance(self.random_state, bool) else None)
        for layer, W, b in zip(self._dense, coefs, self.intercepts_):
            layer.W, layer.b = W, np.reshape(b, -1)
        self.coefs_ = [l.W for l in self._dense]
        self.intercepts_ = [l.b for l in self._dense]
        if not hasattr(self, "_best_weights"):
            self._best_weights = self.model_.get_weights()

    def _device_X(self, X):
        """``X`` for prediction on the model's device (array_api_dispatch=True), checked there."""
        from .._validation import check_X
        self._ensure_model()
        self.model_.check_placement(X)
        return check_X(X, self.model_.dtype, self.n_features_in_)

    def _sync_attributes(self, writeable: bool = False) -> None:
        """Copy any ``coefs_``/``intercepts_`` the user replaced into the layers, then alias them again.

        After unpickling from read-only memory (joblib memmaps) the arrays may be separate copies or
        read-only; ``writeable=True`` (before training) gives the layers their own writeable arrays.
        """
        if writeable:
            for layer in self.model_.layers:
                for prm in layer.parameters():
                    if isinstance(prm.data, np.ndarray) and not prm.data.flags.writeable:
                        prm.data, prm.grad = prm.data.copy(), prm.grad.copy()
                for name, buf in layer.buffers().items():
                    if isinstance(buf, np.ndarray) and not buf.flags.writeable:
                        setattr(layer, name, buf.copy())
        for i, layer in enumerate(self._dense):
            for attr, arr in (("W", self.coefs_[i]), ("b", self.intercepts_[i])):
                current = getattr(layer, attr)
                if arr is not current and not (np.shape(arr) == current.shape and np.array_equal(arr, current)):
                    setattr(layer, attr, arr)
        self.coefs_ = [l.W for l in self._dense]
        self.intercepts_ = [l.b for l in self._dense]

    # ------------------------------------------------------------------ pickling
    def __getstate__(self):
        """The estimator's attributes without ``model_``: its Dense weights are ``coefs_`` and
        ``intercepts_`` already, so only what they do not hold is kept (batch-norm parameters and
        running statistics, the dropout generator); gradients and forward caches are dropped."""
        state = dict(super().__getstate__())   # a copy: object.__getstate__ may hand back __dict__
        model = state.pop("model_", None)
        state.pop("_dense", None)
        state.pop("_sparse_cache", None)
        if model is not None:
            dense = {id(p) for layer in self._dense for p in layer.parameters()}
            state["_model_rest"] = {
                "arrays": [p.data for p in model.parameters() if id(p) not in dense]
                + [b for layer in model.layers for b in layer.buffers().values()],
                "rng": model.rng.bit_generator.state, "dtype": model.dtype.name}
        return state

    def __setstate__(self, state):
        rest = state.pop("_model_rest", None)
        super().__setstate__(state)
        if rest is None:
            return
        self._ensure_model(rest["dtype"])
        model = self.model_
        dense = {id(p) for layer in self._dense for p in layer.parameters()}
        others = [p for p in model.parameters() if id(p) not in dense]
        buffers = [(layer, name) for layer in model.layers for name in layer.buffers()]
        arrays = rest["arrays"]
        for p, arr in zip(others, arrays[:len(others)]):
            p.assign(arr)
        for (layer, name), arr in zip(buffers, arrays[len(others):]):
            setattr(layer, name, np.array(arr, dtype=model.dtype))  # a writeable copy
        model.rng.bit_generator.state = rest["rng"]

    def _initialize(self, y, layer_units, dtype) -> None:
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = y.shape[1]
        self.n_layers_ = len(layer_units)
        if not is_classifier(self):
            self.out_activation_ = "exp" if self.loss == "poisson" else "identity"
        elif self._label_binarizer.y_type_ == "multiclass":
            self.out_activation_ = "softmax"
        else:
            self.out_activation_ = "logistic"
        self._build(layer_units, dtype)
        self.validation_loss_curve_ = None
        if self._stochastic:
            self.loss_curve_ = []
            self._no_improvement_count = 0
            if self.early_stopping:
                self.validation_scores_ = []
                self.best_validation_score_ = -np.inf
                self.best_loss_ = None
            else:
                self.best_loss_ = np.inf
                self.validation_scores_ = None
                self.best_validation_score_ = None

    @property
    def _stochastic(self) -> bool:
        return self.solver in _STOCHASTIC_SOLVERS or self.optimizer is not None

    # ------------------------------------------------------------------ passes
    def _output(self, X, training: bool = False) -> np.ndarray:
        return OUTPUT_ACTIVATIONS[self.out_activation_](self._forward(X, self.model_.layers, training))

    def _forward(self, X, layers, training: bool) -> np.ndarray:
        """``X`` through ``layers`` (the model's, or its first few); a scipy.sparse ``X`` too.

        The first Dense layer of a sparse ``X`` multiplies it as a sparse matrix, ``X @ W``
        (n_samples, units), never densifying ``X``; :meth:`_backward` computes its weight gradient
        ``X.T @ dz`` the same way. The layers after it see dense arrays.
        """
        if not sp.issparse(X):
            if layers is self.model_.layers:
                return self.model_.forward(X, training=training)
            out = X
            for layer in layers:
                out = layer.forward(out, training=training)
            return out
        first = layers[0]
        z = np.asarray(X @ first.W)
        if first.b is not None:
            z += first.b
        a = first.activation.forward(z)
        self._sparse_cache = (X, z, a) if training else None
        for layer in layers[1:]:
            a = layer.forward(a, training=training)
        return a

    def _backward(self, X, delta: np.ndarray) -> None:
        """Backpropagate ``delta`` (n_samples, n_outputs), filling every parameter's ``grad``."""
        if not sp.issparse(X):
            self.model_.backward(delta)
            return
        grad = delta
        for layer in reversed(self.model_.layers[1:]):
            grad = layer.backward(grad)
        X, z, a = self._sparse_cache
        self._sparse_cache = None
        first = self.model_.layers[0]
        dz = first.activation.backward(grad, a, z)
        first.weight.grad = np.asarray(X.T @ dz, dtype=first.W.dtype)   # sparse (in, n) @ (n, out)
        if first.bias is not None:
            first.bias.grad = dz.sum(axis=0)

    @reads_model  # another thread's predict waits for a running fit (mlpnumpy.nn._modellock)
    def _forward_pass_fast(self, X, check_input: bool = True) -> np.ndarray:
        self._ensure_model()
        if _dispatched(X):
            X = self._device_X(X)
        elif check_input:
            X = validate_data(self, X, accept_sparse=["csr", "csc"], dtype=self.model_.dtype, reset=False)
        self._sync_attributes()
        return self._output(X)

    def _penalty(self) -> float:
        if not isinstance(self.coefs_[0], np.ndarray):  # a 0-d array on the device
            xp = namespace(self.coefs_[0])
            return sum(xp.sum(W * W) for W in self.coefs_)
        return sum(float(np.dot(W.ravel(), W.ravel())) for W in self.coefs_)

    def _l1_penalty(self) -> float:
        l1, l1_bias = getattr(self, "l1", 0.0), getattr(self, "l1_bias", 0.0)
        if not isinstance(self.coefs_[0], np.ndarray):
            xp = namespace(self.coefs_[0])
            return (l1 * sum(xp.sum(xp.abs(W)) for W in self.coefs_) if l1 else 0.0) + \
                (l1_bias * sum(xp.sum(xp.abs(b)) for b in self.intercepts_ if b is not None) if l1_bias else 0.0)
        return l1 * sum(float(np.abs(W).sum()) for W in self.coefs_) + \
            l1_bias * sum(float(np.abs(b).sum()) for b in self.intercepts_ if b is not None)

    def _loss(self, p, y, sample_weight) -> float:
        """sklearn's objective on a batch: the mean loss plus ``alpha / (2 n) * sum ||W||^2``
        (``n`` the batch's weight sum), plus ``(l1 * sum|W| + l1_bias * sum|b|) / n`` when asked;
        batch-norm parameters are not penalised."""
        losses = LOSSES if isinstance(p, np.ndarray) else LOSSES_XP
        loss = losses[(self.loss, self.out_activation_)](y, p, sample_weight)
        sw_sum = p.shape[0] if sample_weight is None else _sum(sample_weight)
        return loss + ((0.5 * self.alpha) * self._penalty() + self._l1_penalty()) / sw_sum

    def _backprop(self, X, y, sample_weight) -> float:
        """Loss of one batch; fills every parameter's ``grad`` with the objective's gradient."""
        p = self._output(X, training=True)
        loss = self._loss(p, y, sample_weight)
        sw_sum = X.shape[0] if sample_weight is None else _sum(sample_weight)
        # Valid for the canonical pairs only (softmax + log-loss, logistic + binary log-loss,
        # identity + squared error, exp + Poisson): d loss / d z = p - y per sample.
        delta = p - y
        xp = namespace(delta)
        if sample_weight is not None:
            delta *= xp.reshape(sample_weight, (-1, 1))
        self._backward(X, delta)   # layers sum over the batch; the mean is taken just below
        l1, l1_bias = getattr(self, "l1", 0.0), getattr(self, "l1_bias", 0.0)
        for layer in self._dense:
            layer.weight.grad += self.alpha * layer.weight.data
            if l1:
                layer.weight.grad += l1 * xp.sign(layer.weight.data)
            if l1_bias and layer.bias is not None:
                layer.bias.grad += l1_bias * xp.sign(layer.bias.data)
        for prm in self.model_.parameters():
            prm.grad /= sw_sum
        return loss

    # ------------------------------------------------------------------ fitting
    def fit(self, X, y, sample_weight=None, *, validation_data=None):
        """Fit the model to ``X`` (n_samples, n_features) and ``y`` (n_samples,) or (n_samples, n_outputs).

        ``validation_data=(X_val, y_val)`` scores that set every epoch (``validation_scores_``,
        ``validation_loss_curve_``) and, with ``early_stopping=True``, replaces the internal split.
        """
        _check_params(self)
        return self._fit(X, y, sample_weight, incremental=False, validation_data=validation_data)

    @exclusive_fit  # fit and partial_fit: one at a time per estimator, as MLP.fit
    def _fit(self, X, y, sample_weight=None, incremental=False, validation_data=None):
        hidden = self._hidden_sizes()
        first_pass = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)
        if not first_pass:  # continue in the dtype of the weights
            self._ensure_model()
            dtype = self.model_.dtype
        elif self.dtype is not None:
            dtype = check_dtype(self.dtype)
        else:  # scikit-learn's rule: float32 input trains in float32, anything else in float64
            dtype = [np.float64, np.float32]
        on_device = _dispatched(X)
        if on_device:
            self._check_device_fit(X, first_pass, validation_data)
            X, y = self._validate_on_device(X, y, incremental, first_pass, dtype)
            if sample_weight is not None:
                from .._validation import check_sample_weight
                from .._array_api import Placement
                Placement.of(X).check(sample_weight, "sample_weight")
                sample_weight = check_sample_weight(sample_weight, X.shape[0], _np_dtype(X.dtype))
        else:
            X, y = self._validate_input(X, y, incremental, reset=first_pass, dtype=dtype)
            if sample_weight is not None:
                sample_weight = _check_sample_weight(sample_weight, X)
            sample_weight = self._class_weighted(y, sample_weight, X.dtype)
        if y.ndim == 1:
            y = namespace(y).reshape(y, (-1, 1))
        layer_units = [X.shape[1]] + hidden + [y.shape[1]]
        self._random_state = check_random_state(self.random_state)
        if first_pass:
            self._initialize(y, layer_units, _np_dtype(X.dtype))
            if on_device:  # drawn on the host as scikit-learn draws them, then moved once
                self.model_.to(X)
                self.coefs_ = [l.W for l in self._dense]
                self.intercepts_ = [l.b for l in self._dense]
                self._best_weights = self.model_.get_weights()
        else:
            self._sync_attributes(writeable=True)
            if [d.in_features for d in self._dense] + [self._dense[-1].out_features] != layer_units:
                raise InvalidArgumentError(f"the data needs layer sizes {layer_units}, but the fitted model has "
                                           f"{[d.in_features for d in self._dense] + [self._dense[-1].out_features]}"
                                           "; fit again with warm_start=False")
        # the early-stopping split stratifies on the labels before the cast (boolean indicators for
        # a classifier, so that an error names the class as scikit-learn does: 'True', not '1.0')
        y_strat, y = y, namespace(y).astype(y, X.dtype)
        val = self._validation_arrays(validation_data, X.dtype)
        if self._stochastic:
            self._fit_stochastic(X, y, sample_weight, incremental, val, y_strat)
        else:
            self._fit_lbfgs(X, y, sample_weight)
        if not all(_all_finite(w) for w in self.coefs_ + self.intercepts_):
            raise SolverDivergenceError("Solver produced non-finite parameter weights. The input data may "
                                        "contain large values and need to be preprocessed.")
        return self

    def _check_device_fit(self, X, first_pass, validation_data) -> None:
        """What fitting on another array library's device covers (array_api_dispatch=True): the
        stochastic solvers without early stopping, validation data or class weights."""
        what = ("solver='lbfgs'" if not self._stochastic else "early_stopping=True" if self.early_stopping
                else "validation_data" if validation_data is not None
                else "class_weight" if getattr(self, "class_weight", None) is not None else None)
        if what is not None:
            raise InvalidArgumentError(f"{what} is not supported on {type(X).__module__.split('.')[0]} arrays with "
                                       "array_api_dispatch=True; expected a stochastic solver ('sgd' or 'adam') "
                                       "without it, or NumPy inputs")
        if not first_pass:
            self._ensure_model()
            self.model_.check_placement(X)

    def _validate_on_device(self, X, y, incremental, reset, dtype):
        """``(X, Y)`` checked where they live (mlpnumpy's checks): X 2-D and finite in the training dtype,
        targets encoded there; only the class values come to the host."""
        from .._validation import check_X
        xp = namespace(X)
        if isinstance(dtype, list):  # scikit-learn's rule: float32 stays float32, the rest is float64
            dtype = np.float32 if str(X.dtype).endswith("float32") else np.float64
        X = check_X(X, dtype, None if reset else self.n_features_in_)
        if reset:
            self.n_features_in_ = X.shape[1]
        if not is_array(y) or namespace(y) is not xp or device_of(y) != device_of(X):
            from .._array_api import describe
            raise InvalidDataError(f"y lives on {describe(y) if is_array(y) else type(y).__name__} but X on "
                                   f"{describe(X)}; expected both on one library and device")
        return X, self._encode_targets_on_device(xp, X, y, incremental, reset)

    def _class_weighted(self, y, sample_weight, dtype):
        if self.class_weight is None:
            return sample_weight
        if not is_classifier(self) or y.ndim == 2 and y.shape[1] > 1 and \
                self._label_binarizer.y_type_ != "multiclass":
            raise InvalidArgumentError("class_weight works for binary and multiclass targets only; "
                                       "pass sample_weight for multilabel data")
        labels = self._label_binarizer.inverse_transform(y if y.ndim == 2 else y.reshape(-1, 1))
        cw = compute_sample_weight(self.class_weight, labels).astype(dtype)
        return cw if sample_weight is None else sample_weight * cw

    def _validation_arrays(self, validation_data, dtype):
        """``(X_val, Y_val (encoded, 2-D), y_val (as given))`` from ``validation_data``, or None."""
        if validation_data is None:
            return None
        try:
            Xv, yv = validation_data
        except (TypeError, ValueError):
            raise InvalidArgumentError("validation_data must be a pair (X_val, y_val)") from None
        Xv = validate_data(self, Xv, accept_sparse="csr", dtype=dtype, reset=False)
        yv = np.asarray(yv)
        if is_classifier(self):
            unseen = np.setdiff1d(np.unique(yv), self.classes_) if yv.ndim == 1 else []
            if len(unseen):  # LabelBinarizer would make it an all-zero row: a silent, always-wrong target
                raise InvalidDataError(f"validation_data holds class {unseen[0].item()!r}, which the training targets do "
                                       f"not have; expected classes among: {', '.join(map(str, self.classes_))}")
            Yv = self._label_binarizer.transform(yv).astype(dtype)
        else:
            Yv = yv.astype(dtype).reshape(yv.shape[0], -1)
        if Yv.shape[0] != Xv.shape[0] or Yv.shape[1] != self.n_outputs_:
            raise InvalidArgumentError(f"validation_data has {Xv.shape[0]} rows and targets of shape {yv.shape}; "
                                       f"expected one target per row with {self.n_outputs_} output(s)")
        return Xv, Yv, yv

    def _make_solver(self, params):
        if self.optimizer is not None:
            from ..optim.optimizers import Optimizer, get_optimizer
            if isinstance(self.optimizer, Optimizer):
                return OptimizerSolver(copy.deepcopy(self.optimizer))
            return OptimizerSolver(get_optimizer(self.optimizer, self.learning_rate_init))
        if self.solver == "sgd":
            return SGDSolver(params, self.learning_rate_init, self.learning_rate, self.momentum,
                               self.nesterovs_momentum, self.power_t)
        return AdamSolver(params, self.learning_rate_init, self.beta_1, self.beta_2, self.epsilon)

    def _fit_stochastic(self, X, y, sample_weight, incremental, val, y_strat):
        model = self.model_
        params = self._train_params()
        new_solver = not incremental or not hasattr(self, "_optimizer")
        if new_solver:
            self._optimizer = self._make_solver(params)
        if self.early_stopping and incremental:
            raise InvalidArgumentError("partial_fit does not support early_stopping=True")
        early_stopping = self.early_stopping
        sw_val = None
        if val is not None:
            X_train, y_train, sample_weight_train = X, y, sample_weight
            X_val, Y_val, y_val = val
        elif early_stopping:
            # don't stratify in multilabel classification
            stratify = y_strat if is_classifier(self) and self.n_outputs_ == 1 else None
            if sample_weight is None:
                X_train, X_val, y_train, Y_val = train_test_split(
                    X, y, random_state=self._random_state, test_size=self.validation_fraction, stratify=stratify)
                sample_weight_train = None
            else:
                X_train, X_val, y_train, Y_val, sample_weight_train, sw_val = train_test_split(
                    X, y, sample_weight, random_state=self._random_state, test_size=self.validation_fraction,
                    stratify=stratify)
            if X_val.shape[0] < 2:
                raise InvalidDataError("The validation set is too small. Increase 'validation_fraction' or the size "
                                 "of your dataset.")
            y_val = self._label_binarizer.inverse_transform(Y_val) if is_classifier(self) else Y_val
        else:
            X_train, y_train, sample_weight_train = X, y, sample_weight
            X_val = Y_val = y_val = None
        if X_val is not None:
            if not isinstance(self.validation_scores_, list):
                self.validation_scores_ = []
                self.best_validation_score_ = -np.inf
            if not isinstance(self.validation_loss_curve_, list):
                self.validation_loss_curve_ = []
        n_samples = X_train.shape[0]
        sample_idx = np.arange(n_samples, dtype=int)
        on_device = not isinstance(X_train, np.ndarray) and not sp.issparse(X_train)
        if on_device:  # rows gathered on the device by indices shuffled on the host, sent once per epoch
            xp, dev = namespace(X_train), device_of(X_train)

            def rows(A, idx):
                return A[idx, ...] if isinstance(idx, slice) else xp.take(A, idx, axis=0)
        else:
            def rows(A, idx):
                return A[idx]
        if self.batch_size == "auto":
            batch_size = min(200, n_samples)
        else:
            if self.batch_size > n_samples:
                warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is going to be clipped")
            batch_size = int(np.clip(self.batch_size, 1, n_samples))
        steps = -(-n_samples // batch_size)
        if new_solver:
            self._schedule = None
            if self.lr_schedule is not None:
                from ..optim.schedules import get_schedule, schedule_for_run
                if isinstance(self.lr_schedule, str):  # a name: sized from max_iter and the batches
                    # of X_train (after the early-stopping split), the batches this loop runs
                    self._schedule = schedule_for_run(self.lr_schedule, epochs=self.max_iter,
                                                      steps_per_epoch=steps, lr=self.learning_rate_init)
                else:
                    self._schedule = get_schedule(copy.deepcopy(self.lr_schedule))
                if self._schedule is not None:
                    self._schedule.begin(self._optimizer)
        callbacks = list(self.callbacks) + ([ProgressBar()] if self.progress_bar else [])
        driver = TrainingDriver(model, callbacks, self._optimizer, schedule=self._schedule, begin_schedule=False,
                                interrupt="warn", on_device=on_device,
                                params={"epochs": self.max_iter, "steps": steps, "batch_size": batch_size,
                                        "samples": n_samples})
        keep_best = early_stopping or self.restore_best_weights

        def run_epoch(it: int) -> dict:
            """One pass of scikit-learn's solver over the batches, then its bookkeeping."""
            nonlocal sample_idx
            if self.shuffle:
                sample_idx = shuffle(sample_idx, random_state=self._random_state)
            accumulated_loss = 0.0
            order = xp.asarray(sample_idx, device=dev) if on_device and self.shuffle else sample_idx
            for b, batch_slice in enumerate(gen_batches(n_samples, batch_size)):
                batch_idx = order[batch_slice] if self.shuffle else batch_slice
                sw_batch = None if sample_weight_train is None else rows(sample_weight_train, batch_idx)
                batch_loss = self._backprop(rows(X_train, batch_idx), rows(y_train, batch_idx), sw_batch)
                accumulated_loss += batch_loss * (batch_slice.stop - batch_slice.start)
                self._optimizer.step(params)
                driver.step_done(b, lambda: {"loss": float(batch_loss)})
            self.n_iter_ += 1
            self.loss_ = float(accumulated_loss) / X_train.shape[0]
            self.t_ += n_samples
            self.loss_curve_.append(self.loss_)
            if self.verbose:
                print(f"Iteration {self.n_iter_}, loss = {self.loss_:.8f}")
            logs = {"loss": self.loss_}
            if X_val is not None:
                self.validation_loss_curve_.append(self._loss(self._output(X_val), Y_val, sw_val))
                logs["val_loss"] = self.validation_loss_curve_[-1]
            improved = self._update_no_improvement_count(early_stopping, X_val, y_val, sw_val)
            if X_val is not None:
                logs["val_accuracy" if is_classifier(self) else "val_r2"] = self.validation_scores_[-1]
            if improved and keep_best:
                self._best_weights = model.get_weights()
            self._optimizer.iteration_ends(self.t_)
            return logs

        def converged(it: int, logs: dict) -> bool:
            """scikit-learn's stopping rules, after the callbacks have seen the epoch."""
            if self._no_improvement_count > self.n_iter_no_change:
                what = "Validation score" if early_stopping else "Training loss"
                msg = (f"{what} did not improve more than tol={self.tol:f} for "
                       f"{self.n_iter_no_change} consecutive epochs.")
                if self._optimizer.trigger_stopping(msg, self.verbose):
                    return True
                self._no_improvement_count = 0
            if model.stop_training or incremental:
                return True
            if self.n_iter_ == self.max_iter:
                warnings.warn(f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached and the "
                              "optimization hasn't converged yet.", ConvergenceWarning, stacklevel=5)
            return False

        def restore_best() -> None:
            if keep_best:  # early stopping keeps the best epoch's weights, as sklearn does
                model.set_weights(self._best_weights)

        self.n_iter_ = 0
        driver.run(self.max_iter, run_epoch, after_epoch=converged, finish=restore_best)

    def _update_no_improvement_count(self, early_stopping, X_val, y_val, sw_val) -> bool:
        """sklearn's convergence bookkeeping. Returns whether this epoch is the best so far: by
        validation score when there is a validation set, by training loss otherwise."""
        score_improved = None
        if X_val is not None:
            score = self._score(X_val, y_val, sample_weight=sw_val)
            self.validation_scores_.append(score)
            if self.verbose:
                print(f"Validation score: {score:f}")
            if early_stopping:
                self._no_improvement_count = self._no_improvement_count + 1 \
                    if score < self.best_validation_score_ + self.tol else 0
            score_improved = bool(score > self.best_validation_score_)
            if score_improved:
                self.best_validation_score_ = score
        if not early_stopping:
            last = self.loss_curve_[-1]
            self._no_improvement_count = self._no_improvement_count + 1 if last > self.best_loss_ - self.tol else 0
            loss_improved = bool(last < self.best_loss_)
            if loss_improved:
                self.best_loss_ = last
            if score_improved is None:
                return loss_improved
        return score_improved

    def _train_params(self) -> list:
        """Every trainable parameter in sklearn's order (every Dense ``W``, then every ``b``), then
        any other (batch norm): the order of the solvers' state and of L-BFGS's packed vector."""
        params = [l.weight for l in self._dense] + [l.bias for l in self._dense]
        return params + [p for p in self.model_.parameters() if all(p is not q for q in params)]

    def _loss_grad_lbfgs(self, packed_coef_inter, X, y, sample_weight=None, *buffers):
        """The objective L-BFGS minimises: set the weights from ``packed_coef_inter`` (1-D, float64),
        return ``(loss, gradient)``, the gradient packed the same way (float64).

        scikit-learn's signature: its code (and its tests) may pass preallocated ``activations,
        deltas, coef_grads, intercept_grads`` after ``sample_weight``; they are accepted and unused.
        """
        params = self._train_params()
        unpack(params, packed_coef_inter)
        y = np.asarray(y, dtype=self.model_.dtype)
        loss = self._backprop(X, y.reshape(y.shape[0], -1), sample_weight)
        return loss, np.concatenate([p.grad.ravel() for p in params]).astype(np.float64)

    def _fit_lbfgs(self, X, y, sample_weight):
        params = self._train_params()
        x0 = np.concatenate([p.data.ravel() for p in params]).astype(np.float64)
        x, self.loss_, self.n_iter_ = minimize_lbfgs(lambda x: self._loss_grad_lbfgs(x, X, y, sample_weight), x0,
                                                     max_fun=self.max_fun, max_iter=self.max_iter, tol=self.tol,
                                                     verbose=self.verbose)
        unpack(params, x)

    # ------------------------------------------------------------------ extras
    def transform(self, X, layer: int = -1) -> np.ndarray:
        """Activations of hidden layer ``layer`` (``-1``: the last), shape (n_samples, units), in
        evaluation mode (batch norm with its running statistics, no dropout)."""
        check_is_fitted(self)
        self._ensure_model()
        n_hidden = len(self._hidden_ends)
        if not n_hidden:
            raise InvalidArgumentError("this model has no hidden layer; hidden_layer_sizes=() ")
        if not isinstance(layer, Integral) or not -n_hidden <= layer < n_hidden:
            raise InvalidArgumentError(f"layer={layer!r} is out of range; expected an integer in "
                                       f"[{-n_hidden}, {n_hidden - 1}]")
        X = validate_data(self, X, accept_sparse=["csr", "csc"], dtype=self.model_.dtype, reset=False)
        self._sync_attributes()
        return self._forward(X, self.model_.layers[:self._hidden_ends[layer] + 1], training=False)

    def fit_transform(self, X, y, **fit_params) -> np.ndarray:
        """``fit(X, y, **fit_params)`` then ``transform(X)``: the last hidden layer's activations."""
        return self.fit(X, y, **fit_params).transform(X)

    def __sklearn_tags__(self):
        from sklearn.utils import TransformerTags
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        # transform() gives hidden activations, computed in the model's dtype: the input's float32 or
        # float64 unless ``dtype`` fixes it
        dtypes = ["float64", "float32"] if self.dtype is None else [np.dtype(self.dtype).name]
        tags.transformer_tags = TransformerTags(preserves_dtype=dtypes)
        return tags


_EXTRA_DOC = """
    Extras (mlpnumpy; the defaults change nothing)
    ----------------------------------------------
    dropout : float in [0, 1), default=0.0
        Dropout after each hidden activation (masks from a generator seeded by ``random_state``).
    batch_norm : bool, default=False
        BatchNorm1d between each hidden Dense layer and its activation.
    class_weight : dict, 'balanced' or None (classifier only)
        Multiplies the sample weights by each sample's class weight (binary and multiclass).
    activation : also 'leaky_relu', 'gelu', 'elu', 'selu', 'softplus', 'hard_sigmoid', 'silu', 'mish', or a
        list with one name per hidden layer.
    optimizer : str or mlpnumpy Optimizer, default=None
        Replaces ``solver`` (a name is built with ``learning_rate_init``; an instance is copied).
    lr_schedule : mlpnumpy schedule or name, default=None
        Drives the learning rate of any stochastic solver (needs ``learning_rate='constant'``).
    callbacks : sequence of mlpnumpy Callback, default=()
        Called with the core model (``model_``) and logs ``loss``, ``lr`` and, with a validation set,
        ``val_loss`` and ``val_accuracy`` (classifier) or ``val_r2`` (regressor).
    progress_bar : bool, default=False
    restore_best_weights : bool, default=False
        At the end keep the best epoch's weights: by validation score when there is a validation set,
        by training loss otherwise (``early_stopping`` always does so, as in sklearn).
    dtype : None (default), float32 or float64
        Precision of the weights and of the computation. None follows scikit-learn: float32 input
        trains and predicts in float32, any other input in float64. A dtype converts the input to it.
    l1, l1_bias : float >= 0, default=0.0
        L1 penalties beside ``alpha``'s L2, scaled like it: ``(l1 * sum|W| + l1_bias * sum|b|) / n``.

    Sparse ``X`` (scipy.sparse CSR/CSC matrices and arrays) is accepted, as in scikit-learn: the
    first layer multiplies it as a sparse matrix, the whole matrix is never densified.

    The fitted core model is ``model_`` (an mlpnumpy ``Sequential``); ``coefs_[i]``/``intercepts_[i]``
    are the very arrays its Dense layers train. ``fit`` also takes ``validation_data=(X_val, y_val)``,
    which fills ``validation_scores_`` and ``validation_loss_curve_``.
"""


def _store_params(estimator, args: dict) -> None:
    """Store every constructor argument on the estimator under its own name, unchanged."""
    for name, value in args.items():
        if name not in ("self", "__class__"):
            setattr(estimator, name, value)


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multi-layer perceptron classifier, parameter for parameter scikit-learn's ``MLPClassifier``.

    Minimises the log-loss plus ``alpha / (2 n) * sum ||W||^2`` with sklearn's SGD, Adam or L-BFGS.
    Binary targets get one logistic output, multilabel indicator matrices one logistic output per
    label (binary log-loss), multiclass targets a softmax. See scikit-learn's documentation for the
    meaning of each shared parameter and attribute.
    """ + _EXTRA_DOC

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam", alpha=0.0001,
                 batch_size="auto", learning_rate="constant", learning_rate_init=0.001, power_t=0.5,
                 max_iter=200, shuffle=True, random_state=None, tol=1e-4, verbose=False, warm_start=False,
                 momentum=0.9, nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 dropout=0.0, batch_norm=False, class_weight=None, optimizer=None, lr_schedule=None,
                 callbacks=(), progress_bar=False, restore_best_weights=False, dtype=None, l1=0.0, l1_bias=0.0):
        _store_params(self, locals())  # verbatim, as scikit-learn requires; validated in fit

    loss = "log_loss"  # sklearn stores it on the instance; here it is fixed, not a parameter
    _parameter_constraints: dict = _constraints()

    def _validate_input(self, X, y, incremental, reset, dtype):
        X, y = validate_data(self, X, y, accept_sparse="csr", multi_output=True, dtype=dtype, reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise InvalidDataError("warm_start can only be used where `y` has the same classes as in the "
                                     f"previous call to fit. Previously got {self.classes_}, `y` has {classes}")
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise InvalidDataError(f"`y` has classes not in `self.classes_`. `self.classes_` has {self.classes_}. "
                                 f"'y' has {classes}.")
        return X, self._label_binarizer.transform(y).astype(bool)

    def _encode_targets_on_device(self, xp, X, y, incremental, reset):
        """Labels ``(n,)`` on the device to LabelBinarizer's boolean indicator rows, computed there; the
        classes (K values) come to the host, where ``classes_`` is kept."""
        if y.ndim != 1:
            raise InvalidDataError("multilabel targets are not supported on another array library's device "
                                   "(array_api_dispatch=True); expected labels of shape (n_samples,)")
        classes = np.asarray(to_host(xp.unique_values(y)))
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            if not hasattr(self, "_label_binarizer") or not incremental:
                self._label_binarizer = LabelBinarizer().fit(classes)
            self.classes_ = self._label_binarizer.classes_
        elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
            raise InvalidDataError(f"`y` has classes not in `self.classes_`. `self.classes_` has {self.classes_}. "
                                   f"'y' has {classes}.")
        known = xp.asarray(self.classes_, dtype=y.dtype, device=device_of(y))
        if self._label_binarizer.y_type_ == "multiclass":
            return y[:, None] == known[None, :]
        return (y == known[-1])[:, None]

    def predict(self, X):
        """Class labels, shape (n_samples,) or (n_samples, n_labels) for multilabel targets."""
        check_is_fitted(self)
        return self._predict(X)

    def _predict(self, X, check_input=True):
        y_pred = self._forward_pass_fast(X, check_input=check_input)
        if not isinstance(y_pred, np.ndarray):  # on the device: the classes are taken there
            xp = namespace(y_pred)
            known = xp.asarray(self.classes_, device=device_of(y_pred))
            if self.n_outputs_ == 1:  # LabelBinarizer's threshold, (neg_label + pos_label) / 2
                return xp.take(known, xp.astype(xp.reshape(y_pred, (-1,)) > 0.5, xp.int64), axis=0)
            return xp.take(known, xp.argmax(y_pred, axis=1), axis=0)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        return self._label_binarizer.inverse_transform(y_pred)

    def _score(self, X, y, sample_weight=None):
        y_pred = self._predict(X, check_input=False)
        if isinstance(y_pred, np.ndarray) and np.issubdtype(y_pred.dtype, np.floating) and \
                not np.isfinite(y_pred).all():
            return np.nan
        return accuracy_score(y, y_pred, sample_weight=sample_weight)

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch over ``(X, y)``; ``classes`` (all labels) is required on the first call."""
        _check_params(self)
        if _check_partial_fit_first_call(self, classes):
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(classes)
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def predict_proba(self, X):
        """Probabilities, shape (n_samples, n_classes), columns in the order of ``classes_``."""
        check_is_fitted(self)
        y_pred = self._forward_pass_fast(X)
        if not isinstance(y_pred, np.ndarray):  # on the device
            xp = namespace(y_pred)
            return xp.concat([1 - y_pred, y_pred], axis=1) if self.n_outputs_ == 1 else y_pred
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        if y_pred.ndim == 1:
            return np.vstack([1 - y_pred, y_pred]).T
        return y_pred

    def predict_log_proba(self, X):
        """``log(predict_proba(X))``."""
        y_prob = self.predict_proba(X)
        if not isinstance(y_prob, np.ndarray):
            return namespace(y_prob).log(y_prob)
        return np.log(y_prob, out=y_prob)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multi-layer perceptron regressor, parameter for parameter scikit-learn's ``MLPRegressor``.

    ``loss='squared_error'`` minimises half the mean squared error (identity output);
    ``loss='poisson'`` half the Poisson deviance with an exponential output. Both add
    ``alpha / (2 n) * sum ||W||^2``.
    """ + _EXTRA_DOC

    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant", learning_rate_init=0.001,
                 power_t=0.5, max_iter=200, shuffle=True, random_state=None, tol=1e-4, verbose=False,
                 warm_start=False, momentum=0.9, nesterovs_momentum=True, early_stopping=False,
                 validation_fraction=0.1, beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10,
                 max_fun=15000, dropout=0.0, batch_norm=False, optimizer=None, lr_schedule=None,
                 callbacks=(), progress_bar=False, restore_best_weights=False, dtype=None, l1=0.0, l1_bias=0.0):
        _store_params(self, locals())  # verbatim, as scikit-learn requires; validated in fit

    class_weight = None  # classifier-only extra
    _parameter_constraints: dict = {**{k: v for k, v in _constraints().items() if k != "class_weight"},
                                    "loss": [StrOptions({"squared_error", "poisson"})]} if StrOptions else {}

    def _validate_input(self, X, y, incremental, reset, dtype):
        X, y = validate_data(self, X, y, accept_sparse="csr", multi_output=True, y_numeric=True, dtype=dtype,
                             reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if self.loss == "poisson" and np.any(y < 0):
            raise InvalidDataError("loss='poisson' needs y >= 0 (counts or rates); got negative targets")
        return X, y

    def _encode_targets_on_device(self, xp, X, y, incremental, reset):
        """Targets cast to the training dtype where they live."""
        y = xp.astype(y, X.dtype)
        if y.ndim == 2 and y.shape[1] == 1:
            y = xp.reshape(y, (-1,))
        if not bool(xp.all(xp.isfinite(y))):
            raise InvalidDataError("y contains NaN or infinity; expected finite targets")
        if self.loss == "poisson" and bool(xp.any(y < 0)):
            raise InvalidDataError("loss='poisson' needs y >= 0 (counts or rates); got negative targets")
        return y

    def predict(self, X):
        """Predictions, shape (n_samples,) or (n_samples, n_outputs)."""
        check_is_fitted(self)
        return self._predict(X)

    def _predict(self, X, check_input=True):
        y_pred = self._forward_pass_fast(X, check_input=check_input)
        return namespace(y_pred).reshape(y_pred, (-1,)) if y_pred.shape[1] == 1 else y_pred

    def _score(self, X, y, sample_weight=None):
        y_pred = self._predict(X, check_input=False)
        if not _all_finite(y_pred):
            return np.nan
        return r2_score(y, y_pred, sample_weight=sample_weight)

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over ``(X, y)``."""
        _check_params(self)
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)
