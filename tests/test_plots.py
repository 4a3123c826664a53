"""Each plot function writes a PNG that decodes, at the size it promises."""
import numpy as np
import pytest

pytest.importorskip("matplotlib")
Image = pytest.importorskip("PIL.Image")

from mlpnumpy import MLP  # noqa: E402
from mlpnumpy.plots import figures as plots  # noqa: E402
from mlpnumpy.training.callbacks import History  # noqa: E402


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


# --- Figures a person would show: layout checked on the drawn figure -----------------------------

@pytest.fixture
def drawn(monkeypatch):
    """Call a plot function; get back its figure drawn by Agg and the renderer, to measure extents."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    figs = []
    real_save = plots.save_figure

    def keep(fig, path, *a, **k):
        figs.append(fig)
        return real_save(fig, path, *a, **k)

    monkeypatch.setattr(plots, "save_figure", keep)

    def draw(fn, *args, **kwargs):
        fn(*args, **kwargs)
        fig = figs[-1]
        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        return fig, canvas.get_renderer()
    return draw


def _visible_ticks(ax):
    lo, hi = sorted(ax.get_xlim())
    return [t for t in ax.get_xticks() if lo <= t <= hi]


@pytest.mark.parametrize("n_wrong", [1, 3, 8, 25])
def test_misclassified_titles_clear_of_every_image(tmp_path, drawn, n_wrong):
    rng = np.random.default_rng(0)
    X, y = rng.random((40, 64)), rng.integers(0, 10, 40)
    fig, r = drawn(plots.plot_misclassified, X, y, (y + 1) % 10, None, (8, 8), tmp_path / "m.png",
                   max_images=n_wrong)
    with_image = [ax for ax in fig.axes if ax.images]
    assert len(with_image) == n_wrong
    titles = [ax.title.get_window_extent(r) for ax in with_image]
    titles += [t.get_window_extent(r) for t in fig.texts]  # the suptitle
    images = [ax.images[0].get_window_extent(r) for ax in with_image]
    for t in titles:
        for im in images:
            assert not t.overlaps(im), (t, im)
        # and inside the figure (a one-image grid must not clip the heading)
        assert t.x0 >= 0 and t.y0 >= 0 and t.x1 <= fig.bbox.width and t.y1 <= fig.bbox.height, t


@pytest.mark.parametrize("epochs", [1, 3, 40])
def test_epoch_axes_have_integer_ticks(tmp_path, drawn, epochs):
    values = list(np.linspace(1.0, 0.5, epochs))
    fig, _ = drawn(plots.plot_history, {"loss": values, "accuracy": values}, tmp_path / "c.png")
    fig2, _ = drawn(plots.plot_seed_figure, values, np.zeros((4, 4)), tmp_path / "s.png")
    for ax in [*fig.axes, fig2.axes[0]]:
        ticks = _visible_ticks(ax)
        assert len(ticks) >= min(epochs, 2)
        assert all(float(t).is_integer() for t in ticks), ticks


def test_seed_figure_counts_epochs_from_one(tmp_path, drawn):
    fig, _ = drawn(plots.plot_seed_figure, [2.0, 1.0, 0.5], np.zeros((4, 4)), tmp_path / "s.png")
    (line,) = fig.axes[0].get_lines()
    np.testing.assert_array_equal(line.get_xdata(), [1, 2, 3])
    np.testing.assert_array_equal(line.get_ydata(), [2.0, 1.0, 0.5])
