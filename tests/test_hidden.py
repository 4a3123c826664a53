"""model.forward(X, return_hidden=True): one record per layer, with the arrays the layer really used."""
import numpy as np
import pytest

from mlpnumpy import MLP, Sequential
from mlpnumpy.nn.activations import get_activation
from mlpnumpy.nn.layers import ActivationLayer, Dense


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("acts", [["relu", "tanh"], ["sigmoid", "gelu"], ["leaky_relu", "elu"]])
def test_one_record_per_dense_layer_with_consistent_shapes_and_values(rng, dtype, acts):
    model = MLP([7, 5, 4, 3], acts, seed=1, dtype=dtype)
    X = rng.standard_normal((11, 7)).astype(dtype)
    out, hidden = model.forward(X, return_hidden=True)
    assert len(hidden) == len(model.layers) == 3
    x = X
    for rec, layer, width in zip(hidden, model.layers, [5, 4, 3]):
        assert rec["layer"] == "Dense"
        assert rec["x"] is x                        # each layer's input is the previous output
        assert rec["z"].shape == rec["a"].shape == (11, width)
        assert rec["z"].dtype == rec["a"].dtype == dtype
        np.testing.assert_allclose(rec["z"], x @ layer.W + layer.b, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(rec["a"], layer.activation.forward(rec["z"]))
        x = rec["a"]
    assert hidden[-1]["a"] is out
    np.testing.assert_array_equal(out, model.forward(X))  # asking for the hidden values changes nothing


def test_hidden_activation_matches_the_named_function(rng):
    model = MLP([4, 6, 2], "tanh", seed=0, dtype=np.float64)
    _, hidden = model.forward(rng.standard_normal((5, 4)), return_hidden=True)
    np.testing.assert_allclose(hidden[0]["a"], np.tanh(hidden[0]["z"]))
    np.testing.assert_array_equal(hidden[1]["a"], hidden[1]["z"])  # identity output: the logits


def test_batch_norm_model_records_every_layer_in_both_modes(rng):
    model = MLP([6, 8, 3], "relu", batch_norm=True, seed=2, dtype=np.float64)
    X = rng.standard_normal((16, 6))
    for training in (True, False):
        out, hidden = model.forward(X, training=training, return_hidden=True)
        assert [r["layer"] for r in hidden] == ["Dense", "BatchNorm1d", "ActivationLayer", "Dense"]
        assert "z" in hidden[0] and "z" not in hidden[1] and "z" not in hidden[2]
        np.testing.assert_array_equal(hidden[0]["a"], hidden[0]["z"])  # Dense before BN has no activation
        if training:  # batch statistics: each feature has mean 0 and std 1 after the norm
            np.testing.assert_allclose(hidden[1]["a"].mean(0), 0, atol=1e-12)
            np.testing.assert_allclose(hidden[1]["a"].std(0), 1, atol=1e-4)
        np.testing.assert_array_equal(hidden[2]["a"], np.maximum(hidden[1]["a"], 0))
        assert hidden[-1]["a"] is out and out.shape == (16, 3)


def test_dropout_records_the_mask_in_training_and_the_identity_in_evaluation(rng):
    model = MLP([5, 50, 2], "relu", dropout=0.5, seed=3, dtype=np.float64)
    X = rng.standard_normal((20, 5))
    out, hidden = model.forward(X, training=True, return_hidden=True)
    assert [r["layer"] for r in hidden] == ["Dense", "Dropout", "Dense"]
    a_in, a_out = hidden[1]["x"], hidden[1]["a"]
    kept = a_out != 0
    np.testing.assert_allclose(a_out[kept], 2.0 * a_in[kept])        # inverted dropout scales by 1/(1-p)
    assert np.count_nonzero((a_in != 0) & ~kept) > 0                  # and some live units were dropped
    _, hidden = model.forward(X, training=False, return_hidden=True)
    assert hidden[1]["a"] is hidden[1]["x"]


def test_hand_built_sequential_with_activation_layer(rng):
    model = Sequential([Dense(3, 4, None, rng=rng, dtype=np.float32), ActivationLayer("sigmoid"),
                        Dense(4, 2, "identity", rng=rng, dtype=np.float32)])
    X = rng.standard_normal((9, 3)).astype(np.float32)
    out, hidden = model.forward(X, return_hidden=True)
    np.testing.assert_allclose(hidden[1]["a"], get_activation("sigmoid")(hidden[0]["a"]))
    assert np.all((hidden[1]["a"] > 0) & (hidden[1]["a"] < 1))
    assert hidden[-1]["a"] is out


def test_without_return_hidden_only_the_output_comes_back(rng):
    model = MLP([3, 4, 2], seed=0)
    out = model.forward(rng.standard_normal((2, 3)).astype(np.float32))
    assert isinstance(out, np.ndarray) and out.shape == (2, 2)
