"""layer_table reproduces the lectures' figures, with the true numbers where a slide is wrong."""

from __future__ import annotations

import keras
import pytest

from cnnlab import layer_table, models
from cnnlab.arithmetic import conv_params, dense_params


@pytest.fixture(scope="module")
def vgg16_table():
    return layer_table(keras.applications.VGG16(weights=None))


def test_vgg16_parameters_and_compute(vgg16_table):
    assert vgg16_table.total_params == 138_357_544
    assert round(vgg16_table.total_params_no_bias / 1e6) == 138  # the lecture's "138M"
    assert 15.4e9 < vgg16_table.total_macs < 15.6e9  # "about 15.5 GMACs"


def test_vgg16_activation_memory_is_the_true_sum_not_the_slide(vgg16_table):
    # Sum of the slide's own rows, computed independently: input, then each block.
    rows = [224 * 224 * 3]
    size, channels = 224, 64
    for convs, channels in ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512)):
        rows += [size * size * channels] * convs
        size //= 2
        rows.append(size * size * channels)
    rows += [4096, 4096, 1000]
    assert vgg16_table.total_activations == sum(rows) == 15_237_608
    assert round(vgg16_table.forward_bytes / 1e6) == 61  # not the slide's 93 MB
    assert vgg16_table.training_bytes == 2 * vgg16_table.forward_bytes
    assert vgg16_table.row("flatten").activations == 0
    # "Most memory in the early convolutions, most parameters in the late FC layers."
    assert vgg16_table.row("block1_conv1").activations == max(r.activations for r in vgg16_table.rows)
    assert vgg16_table.row("fc1").params == max(r.params for r in vgg16_table.rows)


def test_table_renders_as_text_and_html(vgg16_table):
    text = str(vgg16_table)
    assert "15,237,608" in text and "138,357,544" in text and "block5_pool" in text and "61.0 MB" in text
    html = vgg16_table._repr_html_()
    assert html.count("<tr>") == len(vgg16_table.rows) + 2 and "15,237,608" in html


def test_optimizer_state_memory(vgg16_table):
    sgd = layer_table(keras.applications.VGG16(weights=None), optimizer="sgd")
    assert sgd.param_and_optimizer_bytes == sgd.param_bytes
    assert vgg16_table.param_and_optimizer_bytes == 3 * vgg16_table.param_bytes  # Adam: m and v


def test_alexnet_conv1_and_pool1():
    table = layer_table(models.alexnet())
    conv1, pool1 = table.row("conv1"), table.row("pool1")
    assert conv1.output_shape == (55, 55, 96) and conv1.params == 34_944 and conv1.params_no_bias == 34_848
    assert pool1.output_shape == (27, 27, 96)


def test_lenet5_about_60k():
    expected = (
        conv_params(5, 1, 6)
        + conv_params(5, 6, 16)
        + conv_params(5, 16, 120)
        + dense_params(120, 84)
        + dense_params(84, 10)
    )
    assert layer_table(models.lenet5()).total_params == expected == 61_706


def test_dense_on_a_vga_photo():
    inputs = keras.Input((480, 640, 3))
    model = keras.Model(inputs, keras.layers.Dense(1000)(keras.layers.Flatten()(inputs)))
    assert layer_table(model).total_params == 921_601_000


def test_inception_3a_weights_without_biases():
    table = layer_table(models.inception_3a())
    assert table.total_params_no_bias == 163_328
    assert table.rows[-1].output_shape == (28, 28, 256)


def test_resnet50_against_vgg16(vgg16_table):
    resnet = layer_table(keras.applications.ResNet50(weights=None))
    assert round(resnet.total_params / 1e5) / 10 == 25.6
    assert round(vgg16_table.total_params / 1e6) == 138
    assert 3.8e9 < resnet.total_macs < 4.0e9


def test_simple_cnn_true_counts():
    table = layer_table(models.simple_cnn())
    assert table.row("pool3").output_shape == (17, 17, 128)
    assert table.row("pool4").output_shape == (7, 7, 128)  # floor(15 / 2), not 8
    assert table.row("dense").params == 6272 * 512 + 512
    assert table.total_params == 3_453_121


def test_nested_models_are_walked():
    inner = keras.Sequential([keras.layers.Conv2D(8, 3), keras.layers.ReLU()], name="features")
    inputs = keras.Input((10, 10, 1))
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(inner(inputs))))
    table = layer_table(model)
    assert [r.kind for r in table.rows] == ["Input", "Conv2D", "ReLU", "Flatten", "Dense"]
    assert table.total_params == model.count_params()


def test_bad_input_is_named():
    with pytest.raises(TypeError, match="`model`"):
        layer_table("vgg16")
    with pytest.raises(ValueError, match="not built"):
        layer_table(keras.Sequential([keras.layers.Dense(3)]))
    with pytest.raises(ValueError, match="`optimizer`"):
        layer_table(models.mlp(), optimizer="lbfgs")
