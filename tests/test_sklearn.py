"""mlpnumpy.sklearn: parity with scikit-learn's MLP, the sklearn API, and the extras."""
import pickle
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

from mlpnumpy.callbacks import Callback, EarlyStopping
from mlpnumpy.errors import InvalidArgumentError
from mlpnumpy.optimizers import Adam
from mlpnumpy.sklearn import MLPClassifier, MLPRegressor

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
    from mlpnumpy.schedules import StepLR
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
    with pytest.raises(InvalidArgumentError, match="activation='rleu' is not one of"):
        MLPClassifier(activation="rleu").fit(X, y)
    with pytest.raises(ValueError, match="solver"):
        MLPClassifier(solver="newton").fit(X, y)
    with pytest.raises(InvalidArgumentError, match="hidden_layer_sizes"):
        MLPClassifier(hidden_layer_sizes=(3, 0)).fit(X, y)
    with pytest.raises(InvalidArgumentError, match="class_weight"):
        MLPClassifier(class_weight="balanced").fit(X, np.c_[y == 1, y == 2])


def test_core_import_stays_light():
    code = ("import sys, mlpnumpy; bad = [m for m in ('sklearn', 'onnx', 'torch', 'safetensors', 'scipy') "
            "if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
