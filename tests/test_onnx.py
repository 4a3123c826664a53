"""ONNX export: the graph is valid and onnxruntime computes what mlpnumpy computes."""
import numpy as np
import pytest
from _helpers import randomize_batchnorm

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from mlpnumpy import MLP, Sequential
from mlpnumpy.errors import InvalidArgumentError
from mlpnumpy.nn.layers import ActivationLayer, BatchNorm1d, Dense, Dropout
from mlpnumpy.integrations.onnx_export import export_onnx
from mlpnumpy.datasets.preprocessing import Standardizer

ACTIVATIONS = ["relu", "leaky_relu", "sigmoid", "tanh", "elu", "gelu", "identity"]


def _run(path, X):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {"X": X})[0]


def _data(dtype, n=37, d=5, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, d)) * 3 + 1).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("batch_norm", [False, True])
def test_random_models_match_onnxruntime(tmp_path, dtype, activation, batch_norm):
    X = _data(dtype)
    model = MLP([5, 8, 6, 3], activation, seed=1, dtype=dtype, batch_norm=batch_norm, dropout=0.2)
    randomize_batchnorm(model, np.random.default_rng(2))
    path = tmp_path / "m.onnx"
    proto = export_onnx(model, path)
    onnx.checker.check_model(onnx.load(str(path)))
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    got = _run(path, X)
    assert got.dtype == dtype
    np.testing.assert_allclose(got, model.predict_proba(X), atol=1e-5, rtol=1e-5)
    logits = export_onnx(model, None, output="logits")
    sess = ort.InferenceSession(logits.SerializeToString(), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(sess.run(None, {"X": X})[0], model.decision_function(X), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("loss", ["cross_entropy", "binary_cross_entropy", "mse"])
def test_trained_model_with_standardizer(tmp_path, dtype, loss):
    rng = np.random.default_rng(0)
    X = _data(dtype, n=200, d=4)
    if loss == "cross_entropy":
        y = (X[:, 0] > 1).astype(int) + (X[:, 1] > 2).astype(int)
        k = 3
    elif loss == "binary_cross_entropy":
        y = np.c_[X[:, 0] > 1, X[:, 1] > 0].astype(dtype)
        k = 2
    else:
        y = (X @ rng.normal(size=(4, 2))).astype(dtype)
        k = 2
    model = MLP([4, 16, k], "tanh", seed=0, dtype=dtype, loss=loss)
    model.preprocessor = Standardizer().fit(X)
    model.fit(X, y, epochs=5, lr=0.05, verbose=False)
    with_pre, without = tmp_path / "a.onnx", tmp_path / "b.onnx"
    export_onnx(model, with_pre)
    export_onnx(model, without, include_preprocessing=False)
    np.testing.assert_allclose(_run(with_pre, X), model.predict_proba(X), atol=1e-5, rtol=1e-5)
    Z = model.preprocessor.transform(X)
    model.preprocessor = None
    np.testing.assert_allclose(_run(without, Z), model.predict_proba(Z), atol=1e-5, rtol=1e-5)
    # the standardisation really is in the graph: the raw X through the graph without it differs
    assert not np.allclose(_run(without, X), _run(with_pre, X), atol=1e-3)


def test_dynamic_batch_and_hand_built_sequential(tmp_path):
    model = Sequential([Dense(3, 4, "identity"), BatchNorm1d(4), ActivationLayer("gelu"), Dropout(0.5),
                        Dense(4, 2, "leaky_relu", bias=False)], loss="mse", seed=0, dtype=np.float64)
    randomize_batchnorm(model, np.random.default_rng(1))
    path = tmp_path / "m.onnx"
    export_onnx(model, path)
    for n in (1, 7, 300):
        X = _data(np.float64, n=n, d=3)
        np.testing.assert_allclose(_run(path, X), model.predict_proba(X), atol=1e-10)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_estimators_export_like_predict_proba(tmp_path):
    sk = pytest.importorskip("mlpnumpy.sklearn")  # needs scikit-learn
    X = _data(np.float64, n=80, d=4)
    for y in [X[:, 0] > 1, (X[:, 0] > 1).astype(int) + (X[:, 1] > 1)]:
        clf = sk.MLPClassifier((6,), activation="logistic", max_iter=20, random_state=0).fit(X, y)
        path = tmp_path / "c.onnx"
        export_onnx(clf, path)
        np.testing.assert_allclose(_run(path, X), clf.predict_proba(X), atol=1e-10)
    reg = sk.MLPRegressor(loss="poisson", hidden_layer_sizes=(5,), max_iter=20, random_state=0)
    reg.fit(X, np.abs(X[:, 0]))
    export_onnx(reg, tmp_path / "r.onnx")
    np.testing.assert_allclose(_run(tmp_path / "r.onnx", X).ravel(), reg.predict(X), rtol=1e-10)


def test_errors_and_atomic_write(tmp_path):
    model = MLP([2, 3, 2], seed=0)
    with pytest.raises(InvalidArgumentError, match="output='proba'"):
        export_onnx(model, tmp_path / "x.onnx", output="proba")
    with pytest.raises(InvalidArgumentError, match="expected an mlpnumpy Sequential"):
        export_onnx(object(), tmp_path / "x.onnx")
    assert list(tmp_path.iterdir()) == []          # nothing half-written
    export_onnx(model, tmp_path / "x.onnx")
    assert [p.name for p in tmp_path.iterdir()] == ["x.onnx"]


def test_missing_onnx_is_a_clear_error(monkeypatch, tmp_path):
    from mlpnumpy.errors import MissingDependencyError
    monkeypatch.setitem(__import__("sys").modules, "onnx", None)   # as if not installed
    with pytest.raises(MissingDependencyError, match=r"pip install 'mlpnumpy\[onnx\]'"):
        export_onnx(MLP([2, 2], seed=0), tmp_path / "x.onnx")
