"""mlpnumpy.sklearn: parity with scikit-learn's MLP, the sklearn API, and the extras."""
import copy
import pickle
import re
import subprocess
import sys
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn import neural_network as sk
from sklearn.base import clone
from sklearn.datasets import make_classification, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, RandomizedSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mlpnumpy.training.callbacks import Callback, EarlyStopping
from mlpnumpy.errors import InvalidArgumentError
from mlpnumpy.optim.optimizers import Adam
from mlpnumpy.sklearn import InvalidParameterError, MLPClassifier, MLPRegressor

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def clf_data():
    return make_classification(150, 6, n_informative=4, n_classes=3, random_state=0)


@pytest.fixture(scope="module")
def reg_data():
    return make_regression(120, 5, n_targets=2, noise=0.1, random_state=0)


def _same_fit(a, b, tol=1e-9):
    for p, q in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_allclose(q, p, atol=tol, rtol=0)
    if hasattr(a, "loss_curve_"):
        np.testing.assert_allclose(b.loss_curve_, a.loss_curve_, atol=tol, rtol=0)
    assert b.n_iter_ == a.n_iter_ and b.t_ == a.t_
    assert abs(b.loss_ - a.loss_) <= tol


# ----------------------------------------------------------------------------- parity
PARITY = [{"solver": "sgd", "momentum": 0, "learning_rate_init": 0.1, "shuffle": False, "batch_size": 40},
          {"solver": "adam", "shuffle": False, "batch_size": 40, "learning_rate_init": 0.01},
          {"solver": "sgd", "learning_rate": "invscaling", "nesterovs_momentum": False},
          {"solver": "sgd", "learning_rate": "adaptive", "tol": 0.5, "n_iter_no_change": 1},
          {"solver": "adam", "early_stopping": True, "validation_fraction": 0.2},
          {"solver": "lbfgs"},
          {"solver": "adam", "activation": "logistic", "alpha": 0.1},
          {"solver": "sgd", "activation": "tanh", "batch_size": 7}]


@pytest.mark.parametrize("kw", PARITY, ids=lambda kw: "-".join(f"{k}={v}" for k, v in kw.items()))
def test_classifier_parity_with_sklearn(clf_data, kw):
    X, y = clf_data
    a = sk.MLPClassifier((8, 5), max_iter=5, random_state=3, alpha=kw.pop("alpha", 1e-4), **kw).fit(X, y)
    b = MLPClassifier((8, 5), max_iter=5, random_state=3, alpha=a.alpha, **kw).fit(X, y)
    _same_fit(a, b)
    np.testing.assert_allclose(b.predict_proba(X), a.predict_proba(X), atol=1e-12)
    assert getattr(b, "best_loss_", "unset") == getattr(a, "best_loss_", "unset")
    if kw.get("early_stopping"):
        assert b.validation_scores_ == a.validation_scores_
        assert b.best_validation_score_ == a.best_validation_score_


def test_parity_from_the_same_given_initial_weights(clf_data):
    """Both start from weights we set by hand, then train 5 epochs with warm_start."""
    X, y = clf_data
    rng = np.random.default_rng(0)
    kw = {"solver": "sgd", "momentum": 0, "learning_rate_init": 0.1, "alpha": 1e-4, "batch_size": 32, "shuffle": False}
    a = sk.MLPClassifier((6,), max_iter=1, random_state=1, **kw).fit(X, y)
    b = MLPClassifier((6,), max_iter=1, random_state=2, **kw).fit(X, y)   # other initial weights
    W = [rng.normal(size=c.shape) * 0.3 for c in a.coefs_]
    B = [rng.normal(size=c.shape) * 0.1 for c in a.intercepts_]
    for est in (a, b):
        est.coefs_ = [w.copy() for w in W]
        est.intercepts_ = [v.copy() for v in B]
        est.set_params(warm_start=True, max_iter=5)
        est.fit(X, y)
    a.loss_curve_, b.loss_curve_ = a.loss_curve_[1:], b.loss_curve_[1:]   # the first fits differ
    _same_fit(a, b)


@pytest.mark.parametrize("kw", [{}, {"loss": "poisson"}, {"solver": "sgd", "learning_rate_init": 1e-3},
                                {"solver": "lbfgs"}, {"early_stopping": True}])
def test_regressor_parity_with_sklearn(reg_data, kw):
    X, y = reg_data
    y = np.abs(y) / 100 if kw.get("loss") == "poisson" else y
    a = sk.MLPRegressor(hidden_layer_sizes=(7,), max_iter=8, random_state=0, **kw).fit(X, y)
    b = MLPRegressor(hidden_layer_sizes=(7,), max_iter=8, random_state=0, **kw).fit(X, y)
    _same_fit(a, b)
    np.testing.assert_allclose(b.predict(X), a.predict(X), atol=1e-10)
    assert b.out_activation_ == a.out_activation_
    assert b.score(X, y) == pytest.approx(a.score(X, y), abs=1e-10)


@pytest.mark.parametrize("target", ["binary", "multilabel", "strings"])
def test_targets_as_sklearn(clf_data, target):
    X, y = clf_data
    yy = {"binary": y == 1, "multilabel": np.c_[y == 1, y == 2, y != 0].astype(int),
          "strings": np.array(["cat", "dog", "emu"])[y]}[target]
    a = sk.MLPClassifier((6,), max_iter=10, random_state=0).fit(X, yy)
    b = MLPClassifier((6,), max_iter=10, random_state=0).fit(X, yy)
    _same_fit(a, b)
    np.testing.assert_array_equal(b.predict(X), a.predict(X))
    np.testing.assert_allclose(b.predict_proba(X), a.predict_proba(X), atol=1e-12)
    np.testing.assert_allclose(b.predict_log_proba(X), np.log(b.predict_proba(X)))
    np.testing.assert_array_equal(b.classes_, a.classes_)
    assert b.out_activation_ == a.out_activation_ and b.n_outputs_ == a.n_outputs_
    assert b.n_layers_ == 3 and b.n_features_in_ == 6


def test_sample_weight_parity(clf_data):
    X, y = clf_data
    w = np.random.default_rng(0).uniform(0.1, 2, len(y))
    a = sk.MLPClassifier((6,), max_iter=5, random_state=0).fit(X, y, sample_weight=w)
    b = MLPClassifier((6,), max_iter=5, random_state=0).fit(X, y, sample_weight=w)
    _same_fit(a, b)


def test_partial_fit_parity(clf_data):
    X, y = clf_data
    a = sk.MLPClassifier((6,), random_state=0)
    b = MLPClassifier((6,), random_state=0)
    for s in range(0, 150, 50):
        a.partial_fit(X[s:s + 50], y[s:s + 50], classes=[0, 1, 2])
        b.partial_fit(X[s:s + 50], y[s:s + 50], classes=[0, 1, 2])
    _same_fit(a, b)
    assert not hasattr(MLPClassifier(solver="lbfgs"), "partial_fit")
    assert not hasattr(MLPRegressor(solver="lbfgs"), "partial_fit")
    with pytest.raises(ValueError, match="classes"):
        MLPClassifier().partial_fit(X, y)


def test_convergence_warning_and_tol_stop(clf_data):
    X, y = clf_data
    with pytest.warns(ConvergenceWarning, match="Maximum iterations"):
        MLPClassifier((4,), max_iter=2, random_state=0).fit(X, y)
    est = MLPClassifier((4,), max_iter=500, tol=10.0, n_iter_no_change=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        est.fit(X, y)
    # epoch 1 sets best_loss_, epochs 2-4 miss it by tol: a count of 3 > n_iter_no_change stops
    assert est.n_iter_ == 4 and len(est.loss_curve_) == 4


# ----------------------------------------------------------------------------- sklearn API
def test_pipeline_gridsearch_parallel_and_cross_val(clf_data):
    X, y = clf_data
    pipe = make_pipeline(StandardScaler(), MLPClassifier((8,), max_iter=60, learning_rate_init=0.02,
                                                         random_state=0))
    grid = GridSearchCV(pipe, {"mlpclassifier__alpha": [1e-4, 1e-2], "mlpclassifier__activation": ["relu", "gelu"]},
                        cv=2, n_jobs=-1).fit(X, y)
    assert grid.best_score_ > 0.5
    rnd = RandomizedSearchCV(MLPRegressor(hidden_layer_sizes=(5,), max_iter=20, random_state=0),
                             {"learning_rate_init": [1e-3, 1e-2]}, n_iter=2, cv=2, n_jobs=-1, random_state=0)
    Xr, yr = make_regression(60, 3, random_state=0)
    rnd.fit(Xr, yr)
    scores = cross_val_score(make_pipeline(StandardScaler(), MLPClassifier((8,), max_iter=60, learning_rate_init=0.02,
                                                                           random_state=0)), X, y, cv=3)
    assert scores.shape == (3,) and np.all(scores > 0.4)


def test_clone_pickle_and_aliasing(clf_data):
    X, y = clf_data
    est = MLPClassifier((5,), max_iter=10, random_state=0, dropout=0.1, batch_norm=True).fit(X, y)
    c = clone(est)
    assert c.get_params() == est.get_params() and not hasattr(c, "coefs_")
    back = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(back.predict_proba(X), est.predict_proba(X))
    # coefs_ are the very arrays the core model trains
    assert est.coefs_[0] is est.model_.layers[0].W
    est.set_params(warm_start=True, max_iter=2).fit(X, y)
    assert est.coefs_[0] is est.model_.layers[0].W


def test_feature_names_with_pandas(clf_data):
    pd = pytest.importorskip("pandas")
    X, y = clf_data
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    est = MLPClassifier((4,), max_iter=5, random_state=0).fit(df, y)
    assert list(est.feature_names_in_) == list(df.columns)


# ----------------------------------------------------------------------------- extras
def test_extras_train_and_predict(clf_data):
    X, y = clf_data
    X = StandardScaler().fit_transform(X)
    for kw in [{"dropout": 0.2}, {"batch_norm": True}, {"class_weight": "balanced"},
               {"class_weight": {0: 1.0, 1: 2.0, 2: 1.0}}, {"activation": ["leaky_relu", "elu"]},
               {"activation": "gelu"}, {"optimizer": "rmsprop"}, {"optimizer": Adam(lr=0.01)},
               {"dtype": np.float32}]:
        est = MLPClassifier((16, 8), max_iter=60, random_state=0, learning_rate_init=0.01, **kw).fit(X, y)
        assert est.score(X, y) > 0.75, kw
        assert est.coefs_[0].dtype == np.dtype(kw.get("dtype", np.float64))
        assert est.predict_proba(X).dtype == np.dtype(kw.get("dtype", np.float64))


def test_own_optimizer_instance_is_not_mutated(clf_data):
    X, y = clf_data
    opt = Adam(lr=0.01)
    MLPClassifier((4,), max_iter=3, optimizer=opt, random_state=0).fit(X, y)
    assert opt.state is None


def test_lr_schedule_drives_solver(clf_data):
    from mlpnumpy.optim.schedules import StepLR
    X, y = clf_data
    seen = []

    class LR(Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(logs["lr"])

    MLPClassifier((4,), solver="sgd", max_iter=4, learning_rate_init=0.1, lr_schedule=StepLR(1, gamma=0.5),
                  callbacks=[LR()], random_state=0).fit(X, y)
    np.testing.assert_allclose(seen, [0.1, 0.05, 0.025, 0.0125])  # the rate each epoch used
    with pytest.raises(InvalidArgumentError, match="learning_rate='constant'"):
        MLPClassifier(lr_schedule=StepLR(1), learning_rate="adaptive").fit(X, y)


def test_validation_data_callbacks_and_restore_best(clf_data, capsys):
    X, y = clf_data
    est = MLPClassifier((8,), max_iter=15, random_state=0, callbacks=[EarlyStopping("val_loss", patience=2)],
                        progress_bar=True, restore_best_weights=True)
    est.fit(X[:100], y[:100], validation_data=(X[100:], y[100:]))
    n = est.n_iter_
    assert len(est.validation_scores_) == len(est.validation_loss_curve_) == len(est.loss_curve_) == n
    assert est.best_validation_score_ == max(est.validation_scores_)
    assert est.score(X[100:], y[100:]) == pytest.approx(est.best_validation_score_)
    assert "Epoch 1/15" in capsys.readouterr().out
    reg = MLPRegressor(hidden_layer_sizes=(4,), max_iter=5, random_state=0)
    Xr, yr = make_regression(50, 3, random_state=0)
    reg.fit(Xr, yr, validation_data=(Xr[:10], yr[:10]))
    assert reg.validation_scores_[-1] == pytest.approx(reg.score(Xr[:10], yr[:10]))
    assert reg.validation_loss_curve_[-1] == pytest.approx(
        0.5 * np.mean((reg.predict(Xr[:10]) - yr[:10]) ** 2) + 0.5 * reg.alpha *
        sum((c ** 2).sum() for c in reg.coefs_) / 10)


def test_transform_hidden_layers(clf_data):
    X, y = clf_data
    est = MLPClassifier((8, 5), max_iter=5, random_state=0).fit(X, y)
    h0 = est.transform(X, layer=0)
    h1 = est.transform(X)
    np.testing.assert_allclose(h0, np.maximum(X @ est.coefs_[0] + est.intercepts_[0], 0))
    np.testing.assert_allclose(h1, np.maximum(h0 @ est.coefs_[1] + est.intercepts_[1], 0))
    assert est.fit_transform(X, y).shape == (150, 5)
    with pytest.raises(InvalidArgumentError, match="layer=2"):
        est.transform(X, layer=2)


def test_errors_name_the_fix(clf_data):
    X, y = clf_data
    with pytest.raises(InvalidArgumentError, match="The 'activation' parameter of MLPClassifier must be a str "
                                                   "among .*'leaky_relu'.* Got 'rleu' instead"):
        MLPClassifier(activation="rleu").fit(X, y)
    with pytest.raises(InvalidArgumentError, match="activation='rleu' is not one of"):
        MLPClassifier((4, 4), activation=["relu", "rleu"]).fit(X, y)
    with pytest.raises(ValueError, match="solver"):
        MLPClassifier(solver="newton").fit(X, y)
    with pytest.raises(InvalidParameterError, match="hidden_layer_sizes"):
        MLPClassifier(hidden_layer_sizes=(3, 0)).fit(X, y)
    with pytest.raises(InvalidParameterError, match="activation has 1 entries; expected one per hidden layer"):
        MLPClassifier((3, 3), activation=["relu"]).fit(X, y)
    with pytest.raises(InvalidArgumentError, match="class_weight"):
        MLPClassifier(class_weight="balanced").fit(X, np.c_[y == 1, y == 2])
    with pytest.raises(InvalidArgumentError, match="dtype=.*float16"):
        MLPClassifier(dtype=np.float16).fit(X, y)


@pytest.mark.parametrize("Est", [MLPClassifier, MLPRegressor])
def test_invalid_parameters_raise_sklearns_error_with_its_wording(clf_data, Est):
    """Every parameter has a declared constraint; a bad one raises scikit-learn's InvalidParameterError
    (a ValueError and a TypeError), worded as scikit-learn words it, from fit and partial_fit."""
    from sklearn.utils._param_validation import InvalidParameterError as SkInvalidParameterError
    from sklearn.utils.estimator_checks import check_param_validation
    check_param_validation(Est.__name__, Est())   # scikit-learn's own check, on every parameter
    X, y = clf_data

    def same_order(message):  # sets print in hash order, which differs between processes
        return re.sub(r"\{[^}]*\}", lambda m: str(sorted(m.group(0)[1:-1].split(", "))), message)

    for kw in [{"alpha": -1.0}, {"momentum": 1.5}, {"max_iter": 0}, {"batch_size": "big"},
               {"learning_rate": "fast"}, {"n_iter_no_change": 0.5}]:
        sk_est = getattr(sk, Est.__name__)(**kw)
        with pytest.raises(SkInvalidParameterError) as sk_err:
            sk_est.fit(X, y)
        with pytest.raises(SkInvalidParameterError) as ours:
            Est(**kw).fit(X, y)
        assert same_order(str(ours.value)) == same_order(str(sk_err.value))
        assert all(isinstance(ours.value, c) for c in (ValueError, TypeError, InvalidArgumentError,
                                                        InvalidParameterError))
        with pytest.raises(SkInvalidParameterError, match=str(list(kw)[0])):
            Est(solver="sgd", **kw).partial_fit(X, y, **({"classes": [0, 1, 2]} if Est is MLPClassifier else {}))
    with pytest.raises(SkInvalidParameterError, match="The 'dropout' parameter of .* must be a float in the range "
                                                    r"\[0.0, 1.0\). Got 1.5 instead"):
        Est(dropout=1.5).fit(X, y)


# ----------------------------------------------------------------------------- scikit-learn's rules
@pytest.mark.parametrize("container", ["csr_matrix", "csr_array", "csc_matrix"])
@pytest.mark.parametrize("kw", [{"solver": "sgd", "batch_size": 16}, {"solver": "adam", "early_stopping": True},
                                {"solver": "lbfgs"}, {"batch_norm": True, "hidden_layer_sizes": (6, 4)}])
def test_sparse_input_trains_as_dense_without_densifying(clf_data, container, kw, monkeypatch):
    sp = pytest.importorskip("scipy.sparse")
    X, y = clf_data
    X = np.where(np.abs(X) < 1, 0.0, X)   # mostly zeros
    Xs = getattr(sp, container)(X)
    kw = {"hidden_layer_sizes": (6,), "max_iter": 4, "random_state": 0, **kw}
    dense = MLPClassifier(**kw).fit(X, y)

    for cls in {type(Xs), sp.csr_matrix, sp.csr_array, sp.csc_matrix, sp.csc_array}:
        for name in ("toarray", "todense"):
            def densify(self, *args, _orig=getattr(cls, name), **kwargs):
                if self.shape[1] == X.shape[1]:   # X or rows of it (labels get densified, and may)
                    raise AssertionError("the sparse X was densified")
                return _orig(self, *args, **kwargs)
            monkeypatch.setattr(cls, name, densify)
    sparse = MLPClassifier(**kw).fit(Xs, y)
    for p, q in zip(dense.coefs_ + dense.intercepts_, sparse.coefs_ + sparse.intercepts_):
        np.testing.assert_allclose(q, p, rtol=0, atol=1e-12)
    np.testing.assert_allclose(sparse.predict_proba(Xs), dense.predict_proba(X), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(sparse.predict(Xs), dense.predict(X))
    np.testing.assert_allclose(sparse.transform(Xs), dense.transform(X), rtol=0, atol=1e-12)
    reg_kw = {"hidden_layer_sizes": (5,), "max_iter": 3, "random_state": 0}
    np.testing.assert_allclose(MLPRegressor(**reg_kw).fit(Xs, X[:, 0]).predict(Xs),
                               MLPRegressor(**reg_kw).fit(X, X[:, 0]).predict(X), rtol=0, atol=1e-12)
    if kw.get("solver") == "sgd":   # partial_fit continues on sparse batches too
        a, b = MLPClassifier(**kw), MLPClassifier(**kw)
        for s in (slice(0, 70), slice(70, 150)):
            a.partial_fit(X[s], y[s], classes=[0, 1, 2])
            b.partial_fit(Xs[s], y[s], classes=[0, 1, 2])
        for p, q in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
            np.testing.assert_allclose(q, p, rtol=0, atol=1e-12)


@pytest.mark.parametrize("Est", [MLPClassifier, MLPRegressor])
def test_float32_input_keeps_float32_and_float64_stays(clf_data, Est):
    """scikit-learn's rule: float32 X trains and predicts in float32, any other X in float64; an
    explicit dtype= converts."""
    X, y = clf_data
    for X_in, want in [(X.astype(np.float32), np.float32), (X, np.float64), (np.round(X).astype(int), np.float64)]:
        est = Est(hidden_layer_sizes=(5,), max_iter=5, random_state=0).fit(X_in, y)
        assert {c.dtype for c in est.coefs_ + est.intercepts_} == {np.dtype(want)}
        assert est.predict(X_in).dtype == (np.dtype(want) if Est is MLPRegressor else y.dtype)
        if Est is MLPClassifier:
            assert est.predict_proba(X_in).dtype == want
        assert est.transform(X_in).dtype == want
        sk_est = getattr(sk, Est.__name__)(hidden_layer_sizes=(5,), max_iter=5, random_state=0).fit(X_in, y)
        assert sk_est.coefs_[0].dtype == est.coefs_[0].dtype      # the rule is scikit-learn's
    est = Est(hidden_layer_sizes=(5,), max_iter=5, random_state=0, dtype=np.float32).fit(X, y)
    assert est.coefs_[0].dtype == np.float32 and est.predict(X).dtype == (np.float32 if Est is MLPRegressor
                                                                         else y.dtype)


def test_divergence_is_a_value_error_as_in_sklearn():
    from mlpnumpy.errors import DivergenceError
    from mlpnumpy.sklearn import SolverDivergenceError
    rng = np.random.RandomState(0)
    X = np.finfo(np.float64).max * rng.uniform(size=(10, 2))
    y = rng.standard_normal(size=10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(SolverDivergenceError, match="Solver produced non-finite parameter weights") as err:
            MLPRegressor().fit(X, y)
    assert isinstance(err.value, ValueError) and isinstance(err.value, FloatingPointError)
    assert isinstance(err.value, DivergenceError)


@pytest.mark.parametrize("Est", ["MLPClassifier", "MLPRegressor"])
def test_hand_set_weights_on_an_unfitted_estimator(Est):
    """As in scikit-learn's test_fit: set coefs_, intercepts_, n_layers_, out_activation_ and the
    bookkeeping on an unfitted estimator, then partial_fit and predict; both libraries agree."""
    X = np.array([[0.6, 0.8, 0.7], [0.1, -0.3, 0.4]])
    y = np.array([0, 1]) if Est == "MLPClassifier" else np.array([0.5, -1.0])
    results = []
    for mod in (sk, sys.modules["mlpnumpy.sklearn"]):
        est = getattr(mod, Est)(solver="sgd", learning_rate_init=0.1, alpha=0.1, activation="logistic",
                                hidden_layer_sizes=2, max_iter=1, momentum=0, random_state=1)
        est.coefs_ = [np.array([[0.1, 0.2], [0.3, 0.1], [0.5, 0]]), np.array([[0.1], [0.2]])]
        est.intercepts_ = [np.array([0.1, 0.1]), np.array([1.0])]
        est.n_outputs_, est.n_layers_ = 1, 3
        est.out_activation_ = "logistic" if Est == "MLPClassifier" else "identity"
        est.t_, est.best_loss_, est.loss_curve_, est._no_improvement_count = 0, np.inf, [], 0
        before = est.predict(X) if Est == "MLPRegressor" else None
        est.partial_fit(X, y, **({"classes": [0, 1]} if Est == "MLPClassifier" else {}))
        out = est.predict_proba(X) if Est == "MLPClassifier" else est.predict(X)
        results.append((before, [c.copy() for c in est.coefs_ + est.intercepts_], out))
    (b0, w0, o0), (b1, w1, o1) = results
    if b0 is not None:
        np.testing.assert_allclose(b1, b0, rtol=0, atol=1e-14)
    for p, q in zip(w0, w1):
        np.testing.assert_allclose(q, p, rtol=0, atol=1e-14)
    np.testing.assert_allclose(o1, o0, rtol=0, atol=1e-14)


def test_early_stopping_stratification_error_names_the_classes_as_sklearn():
    X, y = [[1, 2], [2, 3], [3, 4], [4, 5]], [0, 0, 0, 1]
    with pytest.raises(ValueError) as sk_err:
        sk.MLPClassifier(early_stopping=True).fit(X, y)
    with pytest.raises(ValueError, match=r"Classes with too few members are: \['True'\]") as ours:
        MLPClassifier(early_stopping=True).fit(X, y)
    assert str(ours.value) == str(sk_err.value)


def test_pickle_stores_the_state_once(clf_data):
    """A fitted estimator pickles about as small as scikit-learn's (the weights once, no model
    copy, no gradients or forward caches), and the round trip predicts and trains on the same."""
    X, y = clf_data
    kw = {"hidden_layer_sizes": (64,), "max_iter": 5, "random_state": 0}
    sk_size = len(pickle.dumps(sk.MLPClassifier(**kw).fit(X, y)))
    est = MLPClassifier(**kw).fit(X, y)
    blob = pickle.dumps(est)
    assert len(blob) <= 1.5 * sk_size, (len(blob), sk_size)
    back = pickle.loads(blob)
    np.testing.assert_array_equal(back.predict_proba(X), est.predict_proba(X))
    assert back.coefs_[0] is back.model_.layers[0].W
    np.testing.assert_array_equal(copy.deepcopy(est).predict_proba(X), est.predict_proba(X))
    for e in (est, back):
        e.set_params(warm_start=True, max_iter=3).fit(X, y)
    _same_fit(est, back, tol=0)
    # the extras' state travels too: batch-norm statistics and the dropout generator
    est = MLPClassifier((6,), max_iter=3, random_state=0, dropout=0.3, batch_norm=True).fit(X, y)
    back = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(back.predict_proba(X), est.predict_proba(X))
    for e in (est, back):
        e.set_params(warm_start=True, max_iter=2).fit(X, y)
    np.testing.assert_array_equal(back.predict_proba(X), est.predict_proba(X))


def test_named_schedule_spans_the_batches_after_the_early_stopping_split(clf_data):
    """A named schedule is sized from X_train's batches: a onecycle reaches its last step exactly at
    the last batch of the last epoch (it was sized from all of X, so it stopped short)."""
    from mlpnumpy.optim.schedules import OneCycleLR
    X, y = clf_data
    est = MLPClassifier((5,), solver="sgd", max_iter=6, batch_size=10, early_stopping=True,
                        validation_fraction=0.3, n_iter_no_change=100, lr_schedule="onecycle", learning_rate_init=0.05, random_state=0)
    est.fit(X, y)
    sched = est._schedule
    assert isinstance(sched, OneCycleLR) and est.n_iter_ == 6
    n_train = 150 - int(np.ceil(0.3 * 150))
    assert sched.total_steps == 6 * -(-n_train // 10) == sched.last_epoch
    assert est._optimizer.lr == pytest.approx(sched.lr_at(sched.total_steps))
    assert est._optimizer.lr == pytest.approx(0.05 / 25 / 1e4)   # the cycle's final rate


def test_core_import_stays_light():
    code = ("import sys, mlpnumpy; bad = [m for m in ('sklearn', 'onnx', 'torch', 'safetensors', 'scipy') "
            "if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
