"""Conv arithmetic against Keras's own shape inference and parameter counts."""

from __future__ import annotations

import itertools

import keras
import pytest

from cnnlab.arithmetic import activation_bytes, conv_macs, conv_params, dense_params, output_size


def keras_output_width(width, kernel, stride, padding, dilation):
    """Independent answer: let Keras build the layer and report its output width."""
    inputs = keras.Input((width, width, 1))
    x = keras.layers.ZeroPadding2D(padding)(inputs) if padding else inputs
    x = keras.layers.Conv2D(1, kernel, strides=stride, dilation_rate=dilation)(x)
    return x.shape[1]


CASES = [
    (w, f, s, p, d)
    for w, f, s, p, d in itertools.product((28, 32, 227), (1, 3, 5, 11), (1, 2, 4), (0, 1, 2), (1, 2))
    if (w - (d * (f - 1) + 1) + 2 * p) % s == 0 and (s == 1 or d == 1)
]


@pytest.mark.parametrize(("width", "kernel", "stride", "padding", "dilation"), CASES[::5])
def test_output_size_matches_keras(width, kernel, stride, padding, dilation):
    assert output_size(width, kernel, stride, padding, dilation) == keras_output_width(
        width, kernel, stride, padding, dilation
    )


def test_lecture_examples():
    assert output_size(227, 11, stride=4) == 55  # AlexNet CONV1
    assert output_size(55, 3, stride=2) == 27  # AlexNet POOL1
    assert output_size(32, 5, padding=2) == 32
    assert output_size(7, 3, stride=2, padding="same") == 4  # Keras: ceil(7 / 2)
    assert output_size(224, 11, stride=4, rounding="floor") == 54


def test_non_whole_output_names_layer_and_numbers():
    with pytest.raises(ValueError) as info:
        output_size(224, 11, stride=4, layer="conv1")
    message = str(info.value)
    assert message.startswith("conv1:") and "(224 - 11 + 2*0)/4 + 1 = 54.25" in message


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"input_size": 0, "kernel_size": 3}, "`input_size`"),
        ({"input_size": 5, "kernel_size": 3, "stride": -1}, "`stride`"),
        ({"input_size": 5, "kernel_size": 3, "padding": "full"}, "`padding`"),
        ({"input_size": 5, "kernel_size": 7}, "does not fit"),
        ({"input_size": 5, "kernel_size": 3, "rounding": "up"}, "`rounding`"),
    ],
)
def test_bad_arguments_are_named(kwargs, named):
    with pytest.raises(ValueError, match=named):
        output_size(**kwargs, layer="pool9")


def test_parameter_counts_match_keras():
    conv = keras.layers.Conv2D(96, 11)
    conv.build((None, 227, 227, 3))
    assert conv_params(11, 3, 96) == conv.count_params() == 34_944
    assert conv_params(11, 3, 96, use_bias=False) == 34_848  # the lecture's count
    dense = keras.layers.Dense(1000)
    dense.build((None, 640 * 480 * 3))
    assert dense_params(640 * 480 * 3, 1000) == dense.count_params() == 921_601_000


def test_macs_and_memory():
    assert conv_macs((55, 55), 11, 3, 96) == 55 * 55 * 96 * 11 * 11 * 3
    assert activation_bytes(15_237_608) == 60_950_432
    assert activation_bytes(10, backward=True) == 80
