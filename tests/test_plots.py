"""Each plot function writes a PNG that decodes, at the size it promises."""
import numpy as np
import pytest

pytest.importorskip("matplotlib")
Image = pytest.importorskip("PIL.Image")

from mlpnumpy import MLP, plots  # noqa: E402
from mlpnumpy.callbacks import History  # noqa: E402


def _decodes(path, size=None):
    with Image.open(path) as im:
        im.load()
        assert im.format == "PNG"
        if size is not None:
            assert im.size == size
        return im.size


def test_plot_history(tmp_path):
    h = History()
    for e, (l, a) in enumerate([(1.0, 0.5), (0.6, 0.7), (0.4, 0.8)]):
        h.on_epoch_end(e, {"loss": l, "accuracy": a, "val_loss": l + 0.1, "val_accuracy": a - 0.05})
    path = tmp_path / "curves.png"
    assert plots.plot_history(h, path) == str(path)
    _decodes(path, (1100, 400))
    plots.plot_history({"loss": [1.0, 0.5]}, tmp_path / "loss_only.png")  # a plain dict, no accuracy
    _decodes(tmp_path / "loss_only.png")


def test_plot_weight_histograms(tmp_path):
    model = MLP([20, 8, 6, 3], seed=0)
    w, h = _decodes(plots.plot_weight_histograms(model, tmp_path / "w.png"))
    assert w > h  # one panel per Dense layer, side by side


def test_plot_confusion_matrix(tmp_path):
    cm = np.array([[5, 1, 0], [2, 7, 1], [0, 0, 9]])
    _decodes(plots.plot_confusion_matrix(cm, ["cat", "dog", "bird"], tmp_path / "cm.png"))
    with pytest.raises(ValueError):
        plots.plot_confusion_matrix(cm, ["a", "b"], tmp_path / "bad.png")


def test_plot_misclassified(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.random((40, 64))
    y = rng.integers(0, 10, 40)
    pred = y.copy()
    pred[::3] = (pred[::3] + 1) % 10
    _decodes(plots.plot_misclassified(X, y, pred, [str(i) for i in range(10)], (8, 8), tmp_path / "m.png",
                                      max_images=6))
    _decodes(plots.plot_misclassified(X, y, y, None, (8, 8), tmp_path / "none.png"))  # nothing wrong


def test_plot_seed_figure(tmp_path):
    path = plots.plot_seed_figure([2.0, 1.0, 0.5], np.random.default_rng(0).normal(size=(64, 32)),
                                  tmp_path / "mlp_result.png")
    _decodes(path, (1800, 600))


def test_missing_matplotlib_is_a_clear_error(tmp_path, monkeypatch):
    import builtins

    from mlpnumpy.errors import MissingDependencyError
    real_import = builtins.__import__

    def fake_import(name, *a, **k):
        if name.startswith("matplotlib"):
            raise ImportError("no matplotlib here")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    monkeypatch.setattr("importlib.import_module", lambda name, *a: fake_import(name))
    with pytest.raises(MissingDependencyError, match="pip install 'mlpnumpy\\[plot\\]'"):
        plots.plot_history({"loss": [1.0]}, tmp_path / "x.png")
