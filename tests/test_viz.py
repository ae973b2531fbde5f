"""The plots: structure checked headless, three compared with reference PNGs, bad input named."""

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


def test_layer_table_displays_as_html():
    assert "<table>" in cnnlab.layer_table(cnnlab.models.convnet())._repr_html_()


REFERENCE_FIGURES = {
    "kernels.png": lambda: viz.show_kernels(np.linspace(-1, 1, 3 * 3 * 3 * 6).reshape(3, 3, 3, 6)),
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
