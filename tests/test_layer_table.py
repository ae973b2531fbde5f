"""layer_table reproduces the lectures' figures, with the true numbers where a slide is wrong."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from cnnlab import layer_table, models
from cnnlab.arithmetic import conv_params, dense_params
from cnnlab.layer_table import format_count


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
    assert "(15.47 G)" in text
    html = vgg16_table._repr_html_()
    assert html.count("<tr>") == len(vgg16_table.rows) + 2 and "15,237,608" in html


def test_training_memory_counts_weights_gradients_and_optimizer_state(vgg16_table):
    """The lecture's "552MB (x2 for plain SGD, x4 for Adam)": weights + gradients, plus Adam's m and v."""
    weights = vgg16_table.total_params * 4
    expected = {"sgd": 2, "momentum": 3, "rmsprop": 3, "adam": 4, "adamw": 4}
    model = keras.applications.VGG16(weights=None)
    for optimizer, copies in expected.items():
        table = layer_table(model, optimizer=optimizer)
        assert table.param_bytes == weights
        assert table.memory_per_parameter == copies
        assert table.training_param_bytes == copies * weights
    assert round(vgg16_table.training_param_bytes / 1e6) == 2214  # 4 x 553.4 MB; the slide rounds 138M: 4 x 552
    line = vgg16_table.summary_lines()[2]
    assert line.startswith("training with adam: weight + gradient + 2 adam state values per parameter")
    assert "4 x 553.4 MB = 2,213.7 MB" in line and "activations not included" in line
    sgd_line = layer_table(model, optimizer="sgd").summary_lines()[2]
    assert "no optimizer state" in sgd_line and "2 x 553.4 MB = 1,106.9 MB" in sgd_line


def test_keras_optimizers_keep_the_state_the_table_counts():
    """What the table assumes, measured: the optimizer's own variables, per trainable value."""
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(5), keras.layers.Dense(3)])
    values = model.count_params()
    for name, optimizer in {
        "sgd": keras.optimizers.SGD(),
        "momentum": keras.optimizers.SGD(momentum=0.9),
        "adam": keras.optimizers.Adam(),
    }.items():
        optimizer.build(model.trainable_variables)
        state = sum(int(np.prod(v.shape)) for v in optimizer.variables if len(v.shape) > 0)
        assert state == (layer_table(model, optimizer=name).memory_per_parameter - 2) * values, name


def test_small_counts_print_legibly():
    assert format_count(15_470_264_320) == "15.47 G"
    assert format_count(2_716_160) == "2.72 M"
    assert format_count(416_520) == "416.5 k"
    assert format_count(96) == "96"
    lenet = layer_table(models.lenet5())
    assert lenet.total_macs == 416_520  # by hand: 117,600 + 240,000 + 48,000 + 10,080 + 840
    compute = lenet.summary_lines()[-1]
    assert compute == "compute: 416,520 MACs per image (416.5 k)" and "0.00" not in str(lenet)


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
    assert table.total_macs == 28 * 28 * 163_328  # the lecture's GoogLeNet table: "128M" ops


def test_inception_3a_without_reductions():
    """Figure 2(a) of the paper with 3a's widths: every branch sees all 192 channels."""
    table = layer_table(models.inception_3a(reductions=False))
    weights = 192 * 64 + 9 * 192 * 128 + 25 * 192 * 32
    assert table.total_params_no_bias == weights == 387_072
    assert table.total_macs == 28 * 28 * weights  # 303 M, 2.4 times the reduced module's 128 M
    assert table.rows[-1].output_shape == (28, 28, 64 + 128 + 32 + 192)


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
