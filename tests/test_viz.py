"""The plots: structure and layout checked headless, six compared with reference PNGs, bad input named."""

from __future__ import annotations

import os

import keras
import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.colors import to_hex
from matplotlib.testing.compare import compare_images

import cnnlab
from cnnlab import viz
from cnnlab.viz.common import MISTAKE_COLOR

BASELINE = os.path.join(os.path.dirname(__file__), "baseline")
EDGE = [[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]]


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def rendered(figure, tmp_path, name="figure.png"):
    path = tmp_path / name
    figure.savefig(path, dpi=60)
    pixels = plt.imread(path)
    assert pixels[..., :3].std() > 0.01, "the rendered figure is blank"
    return path


def image_axes(figure):
    return [ax for ax in figure.axes if ax.images]


@pytest.fixture(scope="module")
def digits():
    (_, _), (x_test, y_test) = cnnlab.load_mnist()
    return x_test[:300], y_test[:300]


def test_backend_is_headless():
    assert matplotlib.get_backend().lower() == "agg"


def test_show_images_titles_and_highlighted_mistakes(digits, tmp_path):
    x, y = digits
    predictions = y[:10].copy()
    predictions[[2, 7]] = (predictions[[2, 7]] + 1) % 10
    figure = viz.show_images(x[:10], y[:10], predictions, ncols=5)
    rendered(figure, tmp_path)
    axes = image_axes(figure)
    assert len(axes) == 10
    for index, ax in enumerate(axes):
        assert f"true: {y[index]}" in ax.get_title() and f"pred: {predictions[index]}" in ax.get_title()
        assert (to_hex(ax.title.get_color()) == MISTAKE_COLOR) == (index in (2, 7))


@pytest.mark.parametrize(
    "images",
    [
        np.zeros((28, 28), np.uint8),
        np.full((28, 28, 1), 0.5, np.float32),
        np.full((32, 32, 3), 200.0),
        np.zeros((4, 32, 32, 3), np.uint8),
    ],
)
def test_show_images_accepts_single_images_and_batches(images):
    expected = 4 if np.ndim(images) == 4 else 1
    figure = viz.show_images(images, class_names=None)
    assert len(image_axes(figure)) == expected
    assert image_axes(figure)[0].images[0].get_array().max() <= 1.0  # scaled to [0, 1]


def test_show_images_accepts_a_list_of_different_sizes():
    figure = viz.show_images([np.zeros((20, 30)), np.full((8, 8, 3), 255, np.uint8)], titles=["a", "b"])
    shapes = [ax.images[0].get_array().shape for ax in image_axes(figure)]
    assert shapes == [(20, 30), (8, 8, 3)]
    with pytest.raises(ValueError, match=r"`images\[1\]` must have shape"):
        viz.show_images([np.zeros((20, 30)), np.zeros((2, 2, 8, 8))])


@pytest.mark.parametrize(
    ("images", "message"),
    [
        (np.zeros((2, 3, 28, 28, 1)), "`images` must have shape"),
        (np.zeros((0, 28, 28)), "`images` is empty"),
        (np.full((2, 28, 28), np.nan), "`images` contains NaN"),
        (np.zeros((4, 28, 28, 2)), "`images` must have shape"),
    ],
)
def test_show_images_bad_input(images, message):
    with pytest.raises(ValueError, match=message):
        viz.show_images(images)


def test_show_images_label_count_must_match(digits):
    x, y = digits
    with pytest.raises(ValueError, match="`labels` has 3 entries but there are 5 images"):
        viz.show_images(x[:5], y[:3])


class FixedModel:
    """Predicts fixed probabilities, so the expected mistakes are known exactly."""

    def __init__(self, probabilities):
        self.probabilities = np.asarray(probabilities)

    def predict(self, x, verbose=0):
        return self.probabilities[: len(x)]


def test_show_misclassified_orders_by_confidence(digits, tmp_path):
    x, y = digits
    probabilities = np.eye(10)[y[:6]] * 0.9 + 0.01
    for index, confidence in ((1, 0.6), (3, 0.95), (4, 0.8)):
        wrong = (y[index] + 1) % 10
        probabilities[index] = 0.0
        probabilities[index, wrong] = confidence
        probabilities[index, y[index]] = 1 - confidence
    figure = viz.show_misclassified(FixedModel(probabilities), x[:6], y[:6], n=2)
    rendered(figure, tmp_path)
    titles = [ax.get_title() for ax in image_axes(figure)]
    assert len(titles) == 2
    assert titles[0] == f"true: {y[3]}\npred: {(y[3] + 1) % 10} (95%)"
    assert titles[1] == f"true: {y[4]}\npred: {(y[4] + 1) % 10} (80%)"
    assert "3 wrong of 6" in figure._suptitle.get_text()


def test_show_kernels_rgb_and_per_channel(tmp_path):
    rgb = np.random.default_rng(0).normal(size=(5, 5, 3, 10)).astype("float32")
    figure = viz.show_kernels(rgb)
    rendered(figure, tmp_path)
    assert len(image_axes(figure)) == 10 and "as RGB" in figure._suptitle.get_text()
    layer = keras.layers.Conv2D(4, 3)
    layer.build((None, 8, 8, 2))
    figure = viz.show_kernels(layer)
    axes = image_axes(figure)
    assert len(axes) == 8  # 4 filters x 2 input channels
    limit = float(np.abs(layer.kernel).max())
    for ax in axes:
        assert ax.images[0].get_clim() == pytest.approx((-limit, limit))  # one symmetric scale


def test_show_kernels_bad_input():
    with pytest.raises(ValueError, match="`layer_or_weights` must be a Conv2D kernel"):
        viz.show_kernels(np.zeros((3, 3, 3)))
    with pytest.raises(ValueError, match="`layer_or_weights` contains NaN"):
        viz.show_kernels(np.full((3, 3, 1, 2), np.nan))
    with pytest.raises(ValueError, match="built Conv2D"):
        viz.show_kernels(keras.layers.Dense(3))


def grid_shape(axes) -> tuple[int, int]:
    """(rows, columns) of axes laid out in a grid, read from where they are drawn."""
    columns = {round(ax.get_position().x0, 3) for ax in axes}
    rows = {round(ax.get_position().y0, 3) for ax in axes}
    return len(rows), len(columns)


def colorbar_axes(figure):
    return [ax for ax in figure.axes if ax.get_label() == "<colorbar>"]


@pytest.mark.parametrize(("filters", "expected_grid"), [(32, (6, 6)), (64, (8, 8)), (10, (3, 4))])
def test_show_kernels_one_channel_is_a_square_grid_with_one_colorbar_beside_it(filters, expected_grid, tmp_path):
    """A first layer on grayscale images (kh, kw, 1, filters) was one 1 x 32 column with the
    colour bar half-way down it."""
    kernel = np.random.default_rng(0).normal(size=(5, 5, 1, filters)).astype("float32")
    figure = viz.show_kernels(kernel)
    rendered(figure, tmp_path)  # draws: positions are final
    axes = image_axes(figure)
    assert len(axes) == filters
    assert grid_shape(axes) == expected_grid
    (bar,) = colorbar_axes(figure)
    assert bar.get_position().x0 > max(ax.get_position().x1 for ax in axes)  # right of every kernel
    top, bottom = max(ax.get_position().y1 for ax in axes), min(ax.get_position().y0 for ax in axes)
    assert bottom - 1e-6 <= bar.get_position().y0 < bar.get_position().y1 <= top + 1e-6  # beside the grid
    limit = float(np.abs(kernel).max())
    assert all(ax.images[0].get_clim() == pytest.approx((-limit, limit)) for ax in axes)
    assert figure._suptitle.get_text() == f"{filters} kernels 5x5x1"


def test_show_kernels_several_channels_keep_the_colorbar_right_of_the_grid(tmp_path):
    figure = viz.show_kernels(np.random.default_rng(1).normal(size=(3, 3, 12, 5)), max_channels=4)
    rendered(figure, tmp_path)
    axes = image_axes(figure)
    assert grid_shape(axes) == (5, 4)
    (bar,) = colorbar_axes(figure)
    assert bar.get_position().x0 > max(ax.get_position().x1 for ax in axes)
    assert "first 4 of 12 input channels" in figure._suptitle.get_text()


def test_show_feature_maps_caps_channels_with_a_note(digits, tmp_path):
    x, _ = digits
    model = cnnlab.models.convnet()
    figure = viz.show_feature_maps(model, ["conv1", "conv2"], x[0, ..., None] / 255.0, max_channels=8)
    rendered(figure, tmp_path)
    assert len(image_axes(figure)) == 16
    notes = [sub._suptitle.get_text() for sub in figure.subfigs]
    assert notes == ["conv1: 24x24x32 (showing 8 of 32 channels)", "conv2: 10x10x64 (showing 8 of 64 channels)"]


def test_show_feature_maps_bad_input(digits):
    model = cnnlab.models.convnet()
    with pytest.raises(ValueError, match="`layer_names`: no layer named \\['conv9'\\]"):
        viz.show_feature_maps(model, ["conv9"], np.zeros((28, 28, 1)))
    with pytest.raises(ValueError, match="`image` must be one image"):
        viz.show_feature_maps(model, "conv1", np.zeros((2, 28, 28, 1)))
    with pytest.raises(ValueError, match="not feature maps"):
        viz.show_feature_maps(model, "dense", np.zeros((28, 28, 1)))


def test_filter_response_is_cross_correlation():
    image = np.random.default_rng(1).random((9, 11)).astype("float32")
    kernel = np.arange(9, dtype="float32").reshape(3, 3)
    padded = np.pad(image, 1)
    expected = np.array([[np.sum(padded[r : r + 3, c : c + 3] * kernel) for c in range(11)] for r in range(9)])
    np.testing.assert_allclose(viz.filter_response(image, kernel), expected, rtol=1e-5)


SHARPEN = [[0, -1, 0], [-1, 5, -1], [0, -1, 0]]
BOX = np.full((3, 3), 1 / 9)


@pytest.fixture(scope="module")
def cat():
    return cnnlab.load_sample_image("cat", grayscale=True).astype("float32") / 255.0


def filter_response_panels(figure):
    """The panels of show_filter_response that hold an image, by role."""
    roles = {"input": "input", "output [": "output", "input,": "input zoom", "output,": "output zoom"}
    roles["output - input"] = "difference"
    panels = {}
    for ax in figure.axes:
        for start, role in roles.items():
            if ax.images and (ax.get_title() == start if start == "input" else ax.get_title().startswith(start)):
                panels[role] = ax
    return panels


def test_show_filter_response_keeps_the_inputs_scale_for_a_sharpen(cat, tmp_path):
    """The sharpen output was min/max-scaled to its [-2.1, 3.5] range, which washed the photo
    out to grey; weights that sum to 1 keep brightness, so the input's [0, 1] is the scale."""
    figure = viz.show_filter_response(cat, SHARPEN, title="sharpen")
    rendered(figure, tmp_path)
    panels = filter_response_panels(figure)
    output = viz.filter_response(cat, np.asarray(SHARPEN, "float32"))
    assert output.min() < -1 and output.max() > 2  # values well outside what is shown
    for role in ("input", "output", "input zoom", "output zoom"):
        assert panels[role].images[0].get_clim() == (0.0, 1.0), role
    assert "shown on [0, 1]" in panels["output"].get_title()


def test_show_filter_response_centres_a_zero_sum_kernel_on_mid_grey(cat):
    panels = filter_response_panels(viz.show_filter_response(cat, EDGE))
    low, high = panels["output"].images[0].get_clim()
    assert low == -high and 0 < high < np.abs(viz.filter_response(cat, np.asarray(EDGE, "float32"))).max()
    assert "difference" not in panels  # output - input means nothing when brightness is not kept


def test_show_filter_response_zooms_in_where_a_blur_shows(cat, tmp_path):
    """At full size the box and Gaussian outputs looked like the input: a second row shows one
    square of input and output magnified (marked on the full images), and what the blur took away."""
    figure = viz.show_filter_response(cat, BOX, title="box mean")
    rendered(figure, tmp_path)
    panels = filter_response_panels(figure)
    assert set(panels) == {"input", "output", "input zoom", "output zoom", "difference"}
    (mark,) = panels["input"].patches
    top, left, size = int(mark.get_y() + 0.5), int(mark.get_x() + 0.5), int(mark.get_width())
    assert 16 <= size <= min(cat.shape) // 6
    window = (slice(top, top + size), slice(left, left + size))
    output = viz.filter_response(cat, BOX.astype("float32"))
    np.testing.assert_array_equal(panels["input zoom"].images[0].get_array(), cat[window])
    np.testing.assert_allclose(panels["output zoom"].images[0].get_array(), output[window], atol=1e-6)
    np.testing.assert_allclose(panels["difference"].images[0].get_array(), output[window] - cat[window], atol=1e-6)
    # the square is where the blur changes the photo most: well above its average change
    assert np.abs(output - cat)[window].mean() > 1.5 * np.abs(output - cat).mean()
    chosen = viz.show_filter_response(cat, BOX, zoom=20, zoom_at=(5, 7))
    (mark,) = filter_response_panels(chosen)["output"].patches
    assert (mark.get_y() + 0.5, mark.get_x() + 0.5, mark.get_width()) == (5, 7, 20)
    with pytest.raises(ValueError, match="`zoom_at`"):
        viz.show_filter_response(cat, BOX, zoom=40, zoom_at=(cat.shape[0] - 10, 0))


def test_plot_history_overlays_runs(tmp_path):
    runs = {
        "mlp": {
            "loss": [1.0, 0.5, 0.3],
            "val_loss": [1.1, 0.7, 0.6],
            "accuracy": [0.5, 0.7, 0.8],
            "val_accuracy": [0.4, 0.6, 0.7],
        },
        "convnet": {"loss": [0.9, 0.4, 0.2], "accuracy": [0.6, 0.8, 0.9]},
    }
    figure = viz.plot_history(runs)
    rendered(figure, tmp_path)
    loss_axis, accuracy_axis = figure.axes
    assert [line.get_label() for line in loss_axis.lines] == ["mlp (train)", "mlp (val)", "convnet (train)"]
    assert loss_axis.lines[1].get_linestyle() == "--"
    assert list(accuracy_axis.lines[2].get_ydata()) == [0.6, 0.8, 0.9]
    with pytest.raises(ValueError, match="`metrics`: \\['auc'\\] not recorded"):
        viz.plot_history(runs, metrics=["auc"])
    with pytest.raises(ValueError, match="NaN"):
        viz.plot_history({"loss": [1.0, float("nan")]}, metrics="loss")
    with pytest.raises(ValueError, match="empty"):
        viz.plot_history([])


def five_runs():
    epochs = np.arange(1, 11)
    return {
        name: {
            "loss": list(np.exp(-epochs / (3 + i))),
            "val_loss": list(np.exp(-epochs / (3 + i)) + 0.1 * i),
            "accuracy": list(1 - np.exp(-epochs / (3 + i))),
            "val_accuracy": list(0.95 - np.exp(-epochs / (3 + i))),
        }
        for i, name in enumerate(["baseline", "dropout", "L2", "batch norm", "augmentation"])
    }


def overlapping(boxes) -> list[tuple[int, int]]:
    return [(i, j) for i, a in enumerate(boxes) for j, b in enumerate(boxes) if i < j and a.overlaps(b)]


def test_plot_history_draws_many_runs_as_small_multiples(tmp_path):
    """Five runs overlaid were ten curves and a ten-line legend in each panel: now one column
    per run, one row per metric, y shared along a row, the other runs in grey for reference."""
    runs = five_runs()
    figure = viz.plot_history(runs, title="five runs")
    rendered(figure, tmp_path)
    axes = np.array(figure.axes).reshape(2, 5)
    assert grid_shape(figure.axes) == (2, 5)
    assert [ax.get_title() for ax in axes[0]] == list(runs)
    assert [ax.get_ylabel() for ax in axes[:, 0]] == ["loss", "accuracy"]
    for row, metric in enumerate(["loss", "accuracy"]):
        for column, run in enumerate(runs.values()):
            ax = axes[row, column]
            coloured = [line for line in ax.lines if line.get_color() != "0.85"]
            assert [list(line.get_ydata()) for line in coloured] == [run[metric], run[f"val_{metric}"]]
            assert len(ax.lines) - len(coloured) == 4  # the other four runs' validation curves
            assert ax.get_legend() is None and ax.get_shared_y_axes().joined(ax, axes[row, 0])
    (legend,) = figure.legends
    assert [t.get_text() for t in legend.get_texts()] == ["train", "validation", "the other runs (validation)"]
    renderer = figure.canvas.get_renderer()
    assert overlapping([ax.get_tightbbox(renderer) for ax in figure.axes]) == []
    assert (
        overlapping([legend.get_window_extent(renderer), *[ax.get_window_extent(renderer) for ax in figure.axes]]) == []
    )
    few = viz.plot_history(dict(list(runs.items())[:3]))
    assert len(few.axes) == 2 and len(few.axes[0].lines) == 6  # up to three runs share a panel


def test_plot_history_names_a_single_run_in_the_title():
    figure = viz.plot_history({"convnet": five_runs()["baseline"]})
    assert figure._suptitle.get_text() == "convnet"
    assert [line.get_label() for line in figure.axes[0].lines] == ["train", "val"]
    assert viz.plot_history(five_runs()["baseline"])._suptitle is None  # an unnamed run gets no title


def test_liveplot_makes_one_figure_at_the_end_when_not_interactive(digits, monkeypatch):
    monkeypatch.delenv("CI", raising=False)  # not interactive because this is no notebook kernel
    x, y = digits
    figures_during_training = []

    class Spy(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            figures_during_training.append(len(plt.get_fignums()))

    live = viz.LivePlot()
    assert live.live is False
    model = cnnlab.models.mlp()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    before = plt.get_fignums()
    model.fit(x / 255.0, y, epochs=3, batch_size=64, validation_split=0.2, verbose=0, callbacks=[live, Spy()])
    assert figures_during_training == [len(before)] * 3
    assert live.figure is not None
    assert len(live.figure.axes[0].lines) == 2 and len(live.figure.axes[0].lines[0].get_xdata()) == 3
    assert live.figure._suptitle.get_text() == model.name == "mlp"  # every figure was titled "run"


def test_liveplot_title_is_the_given_one_or_the_models_name():
    def figure_of(live, model=None):
        if model is not None:
            live.set_model(model)
        live.on_train_begin()
        for epoch in range(2):
            live.on_epoch_end(epoch, {"loss": 1.0 / (epoch + 1), "val_loss": 1.5 / (epoch + 1)})
        live.on_train_end()
        return live.figure

    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs), name="tiny_classifier")
    assert figure_of(viz.LivePlot(), model)._suptitle.get_text() == "tiny_classifier"
    assert figure_of(viz.LivePlot(title="fine-tuning"), model)._suptitle.get_text() == "fine-tuning"
    assert figure_of(viz.LivePlot(metrics=["loss"]))._suptitle is None  # no model, no title: nothing made up


def test_confusion_matrix_counts_and_fractions(tmp_path):
    y_true = np.array([0, 0, 0, 1, 1, 2])
    y_pred = np.array([0, 0, 1, 1, 1, 0])
    counts = viz.confusion_counts(y_true, y_pred)
    assert counts.tolist() == [[2, 1, 0], [0, 2, 0], [1, 0, 0]]
    figure = viz.confusion_matrix(y_true, y_pred, class_names=["cat", "dog", "bird"])
    rendered(figure, tmp_path)
    texts = [t.get_text() for t in figure.axes[0].texts]
    assert texts[:3] == ["2\n67%", "1\n33%", "0\n0%"]
    assert "accuracy 66.67%" in figure.axes[0].get_title()
    assert [t.get_text() for t in figure.axes[0].get_xticklabels()] == ["cat", "dog", "bird"]


def test_accuracy_vs_shift(digits, tmp_path):
    x, y = digits

    class LeftColumnModel:
        """Says 1 when the leftmost quarter has ink, else 0: shifting right changes its answers."""

        def predict(self, images, verbose=0):
            ink = images[:, :, :7].reshape(len(images), -1).max(axis=1) > 0
            return np.eye(10)[ink.astype(int)]

    model = LeftColumnModel()
    shifts = [0, 3, 6]
    expected = [float((model.predict(viz.shift_images(x, s)).argmax(1) == y).mean()) for s in shifts]
    assert viz.accuracy_vs_shift(model, x, y, shifts) == expected
    figure = viz.plot_accuracy_vs_shift({"left": model}, x, y, shifts)
    rendered(figure, tmp_path)
    assert list(figure.axes[0].lines[0].get_ydata()) == expected
    shifted = viz.shift_images(x[:1], 2)
    assert (shifted[0, :, :2] == 0).all() and (shifted[0, :, 2:] == x[0, :, :-2]).all()
    with pytest.raises(ValueError, match="`models` is empty"):
        viz.plot_accuracy_vs_shift({}, x, y)


def test_show_augmentations_with_a_keras_layer(tmp_path):
    image = cnnlab.load_sample_image("cat")[:128, :128]
    flip = keras.layers.RandomFlip("horizontal", seed=0)
    figure = viz.show_augmentations(flip, image, n=4)
    rendered(figure, tmp_path)
    assert [ax.get_title() for ax in image_axes(figure)][:2] == ["original", "augmented 1"]
    assert len(image_axes(figure)) == 5
    with pytest.raises(ValueError, match="`image` must be one image"):
        viz.show_augmentations(flip, image[None], n=2)
    crops = viz.show_augmentations(keras.layers.RandomCrop(64, 64, seed=0), image, n=2)
    assert [ax.images[0].get_array().shape[:2] for ax in image_axes(crops)] == [(128, 128), (64, 64), (64, 64)]


def test_conv_arithmetic_figure_formula():
    figure = viz.conv_arithmetic_figure(7, 3, stride=2, padding=1, step=(1, 2))
    assert figure._suptitle.get_text() == "conv: (W - F + 2P)/S + 1 = (7 - 3 + 2*1)/2 + 1 = 4"
    with pytest.raises(ValueError, match="54.25"):
        viz.conv_arithmetic_figure(224, 11, stride=4)
    with pytest.raises(ValueError, match="`step`"):
        viz.conv_arithmetic_figure(5, 3, step=(3, 0))


def paths_on_a_bowl():
    """Gradient descent with and without momentum on 0.5 * (w0^2 + 25 w1^2), from (-4, 1)."""
    paths = {"SGD": [np.array([-4.0, 1.0])], "momentum": [np.array([-4.0, 1.0])]}
    velocity = np.zeros(2)
    for _ in range(30):
        w = paths["SGD"][-1]
        paths["SGD"].append(w - 0.07 * np.array([w[0], 25 * w[1]]))
        w = paths["momentum"][-1]
        velocity = 0.5 * velocity - 0.07 * np.array([w[0], 25 * w[1]])
        paths["momentum"].append(w + velocity)
    return paths


def bowl(w):
    return 0.5 * (w[0] ** 2 + 25 * w[1] ** 2)


def test_plot_optimizer_paths_draws_each_path_on_the_contours(tmp_path):
    paths = paths_on_a_bowl()
    figure = viz.plot_optimizer_paths(paths, bowl, minimum=(0, 0), title="bowl")
    rendered(figure, tmp_path)
    surface, curves = figure.axes
    drawn = {line.get_label(): line for line in surface.lines if not line.get_label().startswith("_")}
    assert list(drawn) == ["SGD", "momentum", "minimum"]
    for name, path in paths.items():
        np.testing.assert_allclose(np.column_stack(drawn[name].get_data()), np.array(path))
    assert surface.collections, "no contour lines"  # a ContourSet
    levels = surface.collections[0].levels
    assert len(levels) == 20 and np.allclose(np.diff(np.log(levels)), np.log(levels[1] / levels[0]))  # geometric
    assert surface.get_aspect() == 1.0  # equal scales: the valley looks as narrow as it is
    (xmin, xmax), (ymin, ymax) = surface.get_xlim(), surface.get_ylim()
    assert xmin < -4 and xmax > 0 and ymin < -0.5 and ymax > 1  # every step is inside
    losses = [list(line.get_ydata()) for line in curves.lines]
    assert losses == [[bowl(w) for w in path] for path in paths.values()] and curves.get_yscale() == "log"
    grid = np.meshgrid(np.linspace(-5, 1, 50), np.linspace(-1.2, 1.2, 40))
    only_contours = viz.plot_optimizer_paths(paths, grid=(*grid, bowl(np.array(grid))))
    assert len(only_contours.axes) == 1 and only_contours.axes[0].collections


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"paths": {}}, "`paths` must be a non-empty dict"),
        ({"paths": {"SGD": np.zeros((5, 3))}}, r"`paths\['SGD'\]` must be the points"),
        ({"paths": {"SGD": [[0, 0], [np.inf, 1]]}}, "did it diverge"),
        ({"paths": {"SGD": [[0, 0], [1, 1]]}}, "give either `loss_fn`"),
        ({"paths": {"SGD": [[0, 0], [1, 1]]}, "loss_fn": bowl, "grid": (1, 2, 3)}, "give either `loss_fn`"),
        ({"paths": {"SGD": [[0, 0], [1, 1]]}, "grid": (np.zeros((3, 3)), np.zeros((3, 3)), np.zeros(3))}, "one shape"),
        ({"paths": {"SGD": [[0, 0], [1, 1]]}, "loss_fn": lambda w: 1.0}, "constant"),
        ({"paths": {"SGD": [[0, 0], [1, 1]]}, "loss_fn": bowl, "extent": (1, 0, 0, 1)}, "`extent`"),
    ],
)
def test_plot_optimizer_paths_bad_input(arguments, message):
    with pytest.raises(ValueError, match=message):
        viz.plot_optimizer_paths(**arguments)


TITLED_FIGURES = {
    "show_misclassified": lambda: viz.show_misclassified(
        FixedModel(np.eye(10)[[1, 2, 3, 4]]), np.zeros((4, 28, 28)), [0, 0, 0, 0], n=4
    ),
    "show_kernels, one channel": lambda: viz.show_kernels(np.ones((5, 5, 1, 32))),
    "show_kernels, RGB": lambda: viz.show_kernels(np.ones((3, 3, 3, 10))),
    "show_kernels, several channels": lambda: viz.show_kernels(np.ones((3, 3, 4, 6))),
    "show_filter_response": lambda: viz.show_filter_response(np.eye(40), EDGE, title="edges"),
    "plot_history, overlaid": lambda: viz.plot_history(dict(list(five_runs().items())[:2]), title="two runs"),
    "plot_history, small multiples": lambda: viz.plot_history(five_runs(), title="five runs"),
    "conv_arithmetic_figure": lambda: viz.conv_arithmetic_figure(7, 3, stride=2, padding=1, step=(1, 2)),
    "plot_optimizer_paths": lambda: viz.plot_optimizer_paths(paths_on_a_bowl(), bowl, title="paths"),
}


@pytest.mark.parametrize("name", list(TITLED_FIGURES))
def test_suptitle_overlaps_no_panel(name):
    """show_misclassified's title was drawn over the top row's titles."""
    figure = TITLED_FIGURES[name]()
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    title = figure._suptitle.get_window_extent(renderer)
    assert figure._suptitle.get_text()
    for ax in figure.axes:
        if ax.get_title():
            assert not title.overlaps(ax.title.get_window_extent(renderer)), f"over the title {ax.get_title()!r}"
        assert not title.overlaps(ax.get_window_extent(renderer)), f"over the panel {ax.get_title()!r}"


def test_layer_table_displays_as_html():
    assert "<table>" in cnnlab.layer_table(cnnlab.models.convnet())._repr_html_()


REFERENCE_FIGURES = {
    "kernels.png": lambda: viz.show_kernels(np.linspace(-1, 1, 3 * 3 * 3 * 6).reshape(3, 3, 3, 6)),
    "kernels_one_channel.png": lambda: viz.show_kernels(np.linspace(-1, 1, 5 * 5 * 12).reshape(5, 5, 1, 12)),
    "history_small_multiples.png": lambda: viz.plot_history(five_runs(), title="five runs"),
    "optimizer_paths.png": lambda: viz.plot_optimizer_paths(paths_on_a_bowl(), bowl, minimum=(0, 0), title="bowl"),
    "filter_response.png": lambda: viz.show_filter_response(
        cnnlab.load_sample_image("cat")[::4, ::4], EDGE, title="edge"
    ),
    "conv_arithmetic.png": lambda: viz.conv_arithmetic_figure(7, 3, stride=2, padding=1, step=(1, 2)),
}


@pytest.mark.parametrize("name", sorted(REFERENCE_FIGURES))
def test_against_reference_png(name, tmp_path):
    actual = tmp_path / name
    REFERENCE_FIGURES[name]().savefig(actual, dpi=50)
    expected = os.path.join(BASELINE, name)
    if os.environ.get("CNNLAB_REGENERATE_BASELINES") == "1":
        REFERENCE_FIGURES[name]().savefig(expected, dpi=50)
    assert compare_images(expected, str(actual), tol=5) is None


def test_class_activation_maps_equal_the_cam_of_a_pooling_and_dense_head():
    """With global average pooling and one Dense layer, Grad-CAM is Zhou et al.'s CAM,
    relu(A @ W[:, class]), computed here in NumPy; the figure marks a wrong prediction."""
    rng = np.random.default_rng(3)
    inputs = keras.Input((12, 12, 3))
    feature_model = keras.Model(inputs, keras.layers.Conv2D(6, 3, strides=2, padding="same", activation="relu")(inputs))
    features = keras.Input((6, 6, 6))
    dense = keras.layers.Dense(3, activation="softmax")
    classifier = keras.Model(features, dense(keras.layers.GlobalAveragePooling2D()(features)))
    images = rng.uniform(0, 1, (4, 12, 12, 3)).astype("float32")
    maps, probabilities = viz.class_activation_maps(feature_model, classifier, images, classes=[0, 1, 2, 0])
    activations = feature_model.predict(images, verbose=0)
    kernel = dense.kernel.numpy()
    for i, c in enumerate([0, 1, 2, 0]):
        cam = np.maximum(activations[i] @ kernel[:, c], 0)
        expected = cam / cam.max() if cam.max() > 0 else cam
        np.testing.assert_allclose(maps[i], expected, atol=1e-5)
    np.testing.assert_allclose(probabilities, classifier.predict(activations, verbose=0), atol=1e-6)
    predicted = probabilities.argmax(axis=1)
    labels = predicted.copy()
    labels[1] = (labels[1] + 1) % 3
    figure = viz.show_class_activation(feature_model, classifier, images, labels=labels, class_names=["a", "b", "c"])
    titles = [ax.get_title() for ax in figure.axes if ax.get_title()]
    assert len(titles) == 4 and "true:" in titles[1] and "true:" not in titles[0]
    assert to_hex(figure.axes[1].title.get_color()) == MISTAKE_COLOR
    with pytest.raises(ValueError, match="Dense"):
        viz.class_activation_maps(feature_model, keras.Model(features, keras.layers.Softmax()(features)), images)
