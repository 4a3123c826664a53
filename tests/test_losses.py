"""Losses from logits: hand-worked values, extremes, gradient checks, parity with PyTorch."""
import warnings

import numpy as np
import pytest

from mlpnumpy.nn.gradcheck import check_loss
from mlpnumpy.nn.losses import BinaryCrossEntropy, CrossEntropy, Huber, MAE, MSE, get_loss
from mlpnumpy.errors import InvalidArgumentError


def test_cross_entropy_hand_worked():
    z = np.array([[0.0, 0.0], [np.log(3.0), 0.0]])
    y = np.array([0, 0])
    # sample 1: p = 1/2 -> log 2; sample 2: p = 3/4 -> -log(3/4)
    assert np.isclose(CrossEntropy()(z, y), (np.log(2) - np.log(0.75)) / 2)
    g = CrossEntropy()
    g.forward(z, y)
    assert np.allclose(g.backward(), np.array([[-0.5, 0.5], [-0.25, 0.25]]) / 2)  # (p - y) / n


def test_cross_entropy_exact_for_huge_logits():
    z = np.array([[1e4, -1e4, 0.0]], dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert CrossEntropy()(z, np.array([1])) == pytest.approx(2e4)
        assert CrossEntropy()(z, np.array([0])) == 0.0
        assert BinaryCrossEntropy()(np.array([[1e4, -1e4]]), np.array([[0.0, 1.0]])) == pytest.approx(1e4)


def test_targets_labels_onehot_probabilities_agree(rng):
    z = rng.standard_normal((5, 4))
    y = rng.integers(0, 4, 5)
    oh = np.eye(4)[y]
    assert np.isclose(CrossEntropy()(z, y), CrossEntropy()(z, oh))


CASES = [
    ("ce", lambda: CrossEntropy(), "labels"),
    ("ce_onehot", lambda: CrossEntropy(), "probs"),
    ("ce_smooth", lambda: CrossEntropy(label_smoothing=0.1), "labels"),
    ("ce_weighted", lambda: CrossEntropy(class_weight=[1.0, 2.0, 0.5, 3.0]), "labels"),
    ("ce_weighted_smooth", lambda: CrossEntropy(label_smoothing=0.2, class_weight=[1.0, 2.0, 0.5, 3.0]), "labels"),
    ("bce", lambda: BinaryCrossEntropy(), "binary"),
    ("bce_pos", lambda: BinaryCrossEntropy(pos_weight=[1.0, 2.0, 3.0, 0.5]), "binary"),
    ("mse", lambda: MSE(), "real"),
    ("mae", lambda: MAE(), "real"),
    ("huber", lambda: Huber(delta=0.7), "real"),
]


def _target(kind, rng, n=6, k=4):
    if kind == "labels":
        return rng.integers(0, k, n)
    if kind == "probs":
        p = rng.random((n, k))
        return p / p.sum(1, keepdims=True)
    if kind == "binary":
        return (rng.random((n, k)) > 0.5).astype(float)
    return rng.standard_normal((n, k))


@pytest.mark.parametrize("name,make,kind", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("weighted", [False, True])
def test_gradcheck_float64(name, make, kind, weighted, rng):
    z = rng.standard_normal((6, 4)) * 2
    t = _target(kind, rng)
    sw = rng.random(6) + 0.1 if weighted else None
    res = check_loss(make(), z, t, sample_weight=sw)
    assert res.max_error < 1e-7, str(res)


def _torch_loss(torch, name, t):
    F = torch.nn
    return {
        "ce": F.CrossEntropyLoss(), "ce_onehot": F.CrossEntropyLoss(),
        "ce_smooth": F.CrossEntropyLoss(label_smoothing=0.1),
        "ce_weighted": F.CrossEntropyLoss(weight=torch.tensor([1.0, 2.0, 0.5, 3.0], dtype=torch.float64)),
        "ce_weighted_smooth": F.CrossEntropyLoss(weight=torch.tensor([1.0, 2.0, 0.5, 3.0], dtype=torch.float64),
                                                 label_smoothing=0.2),
        "bce": F.BCEWithLogitsLoss(),
        "bce_pos": F.BCEWithLogitsLoss(pos_weight=torch.tensor([1.0, 2.0, 3.0, 0.5], dtype=torch.float64)),
        "mse": F.MSELoss(), "mae": F.L1Loss(), "huber": F.HuberLoss(delta=0.7),
    }[name]


@pytest.mark.parametrize("name,make,kind", CASES, ids=[c[0] for c in CASES])
def test_parity_with_torch(name, make, kind, rng):
    torch = pytest.importorskip("torch")
    z = rng.standard_normal((6, 4)) * 2
    t = _target(kind, rng)
    if name == "ce_weighted_smooth":
        pass
    loss = make()
    ours = loss(z, t)
    g = loss.backward()
    zt = torch.tensor(z, requires_grad=True)
    tt = torch.tensor(t)
    ref = _torch_loss(torch, name, t)(zt, tt)
    ref.backward()
    assert np.isclose(ours, ref.item(), rtol=1e-12, atol=0)
    np.testing.assert_allclose(g, zt.grad.numpy(), rtol=1e-10, atol=1e-15)


def test_batch_mean_taken_once():
    # doubling the batch with the same rows halves each row's gradient and keeps the loss
    z = np.array([[1.0, -1.0]])
    y = np.array([1])
    l1 = CrossEntropy()
    v1 = l1(z, y)
    g1 = l1.backward().copy()
    l2 = CrossEntropy()
    v2 = l2(np.vstack([z, z]), np.array([1, 1]))
    assert v1 == pytest.approx(v2)
    np.testing.assert_allclose(l2.backward()[0], g1[0] / 2)


def test_unknown_loss_lists_names():
    with pytest.raises(InvalidArgumentError, match="loss='hinge' is not one of: cross_entropy"):
        get_loss("hinge")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_preserved(dtype, rng):
    z = rng.standard_normal((4, 3)).astype(dtype)
    for loss, t in [(CrossEntropy(), np.array([0, 1, 2, 0])), (MSE(), z * 0), (BinaryCrossEntropy(), (z > 0) * 1.0)]:
        loss(z, t)
        assert loss.backward().dtype == dtype


@pytest.mark.parametrize("dtype,tol", [(np.float32, 2e-6), (np.float64, 1e-14)])
@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.5])
@pytest.mark.parametrize("n", [3, 40])  # below and above the row count where the helpers switch route
def test_label_fast_path_equals_one_hot_path(dtype, tol, smoothing, n, rng):
    # integer labels and their one-hot rows give the same loss and gradient
    z = (rng.standard_normal((n, 7)) * 5).astype(dtype)
    z[0] = 1e4  # a row of ties
    y = rng.integers(0, 7, n)
    fast, dense = CrossEntropy(label_smoothing=smoothing), CrossEntropy(label_smoothing=smoothing)
    lf = fast.forward(z, y)
    ld = dense.forward(z, np.eye(7, dtype=dtype)[y])
    assert lf == pytest.approx(ld, rel=tol, abs=tol)
    np.testing.assert_allclose(fast.backward(), dense.backward(), rtol=tol, atol=tol)
    assert fast.backward().dtype == dtype
    if not smoothing:  # the gradient is exactly (softmax(z) - onehot) / n, the seed's formula
        from mlpnumpy.nn.activations import softmax
        np.testing.assert_array_equal(fast.backward(), (softmax(z) - np.eye(7, dtype=dtype)[y]) / dtype(n))


def test_reference_cross_entropy_leaves_no_stale_argmax(rng):
    # only the fast path's fused kernel finds the argmax on the way (tests/test_paths.py); the
    # reference loss must not leave an earlier batch's there for fit to read
    z = rng.standard_normal((40, 7)).astype(np.float32)
    y = rng.integers(0, 7, 40)
    loss = CrossEntropy(label_smoothing=0.1)
    loss.predicted = np.zeros(40, np.intp)
    loss.forward(z, y)
    assert loss.predicted is None
