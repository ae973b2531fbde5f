"""Public checks for lab 01, convolutions and filters."""

from __future__ import annotations

import keras
import numpy as np

from cnnlab.arithmetic import output_size
from cnnlab.checks.report import Hint, require, run_check

RNG = np.random.default_rng(2024)
SOBEL = np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]], dtype="float32")


def _keras_valid(image, kernel):
    """Keras's Conv2D ('valid', no bias) on one multi-channel image (H, W, C) with kernel (kh, kw, C)."""
    layer = keras.layers.Conv2D(1, kernel.shape[:2], use_bias=False)
    layer.build((None, *image.shape))
    layer.set_weights([kernel[..., None]])
    return np.asarray(layer(image[None]))[0, :, :, 0]


def _true_convolution(image, kernel):
    """The definition: out[i, j] = sum_mn image[i + kh-1 - m, j + kw-1 - n] * kernel[m, n]."""
    kh, kw = kernel.shape
    out = np.zeros((image.shape[0] - kh + 1, image.shape[1] - kw + 1))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = sum(image[i + kh - 1 - m, j + kw - 1 - n] * kernel[m, n] for m in range(kh) for n in range(kw))
    return out


def q1(fixed_conv_layer) -> bool:
    """``fixed_conv_layer(kernel)`` returns a Conv2D layer that applies ``kernel`` to grayscale images."""

    def check(make):
        image = RNG.random((1, 12, 10, 1)).astype("float32")
        layer = make(SOBEL)
        require(isinstance(layer, keras.layers.Conv2D), f"expected a keras.layers.Conv2D, got {type(layer).__name__}")
        out = np.asarray(layer(image))
        require(
            out.shape == (1, 12, 10, 1),
            f"output shape {out.shape}: use one filter and 'same' padding so the size stays 12x10",
        )
        require(not layer.use_bias or not np.any(layer.get_weights()[-1]), "the layer adds a bias: use use_bias=False")
        expected = _keras_valid(np.pad(image[0], ((1, 1), (1, 1), (0, 0))), SOBEL[..., None])
        require(
            np.allclose(out[0, :, :, 0], expected, atol=1e-5),
            "the output is not the kernel applied to the image: check the weight shape (kh, kw, in, out)",
        )
        return "a fixed-weight Conv2D layer"

    return run_check("q1", check, fixed_conv_layer)


def q2(cross_correlate, convolve) -> bool:
    """Cross-correlation and true convolution by hand, 'valid' mode."""

    def check(correlate_fn, convolve_fn):
        image = RNG.random((9, 8)).astype("float32")
        got = np.asarray(correlate_fn(image, SOBEL))
        require(
            got.shape == (7, 6),
            f"cross_correlate: output shape {got.shape}; 'valid' mode gives (H - kh + 1, W - kw + 1)",
        )
        require(
            np.allclose(got, _keras_valid(image[..., None], SOBEL[..., None]), atol=1e-4),
            "cross_correlate differs from what Keras's Conv2D computes",
        )
        conv = np.asarray(convolve_fn(image, SOBEL))
        require(conv.shape == (7, 6), f"convolve: output shape {conv.shape}")
        require(
            np.allclose(conv, _true_convolution(image, SOBEL), atol=1e-4),
            "convolve is not a true convolution: the kernel must be flipped in both directions",
        )
        return "cross-correlation matches Keras; convolution flips the kernel"

    return run_check("q2", check, cross_correlate, convolve)


def q3(multichannel_response) -> bool:
    """One filter over an RGB image sums the per-channel correlations."""

    def check(fn):
        image = RNG.random((10, 11, 3)).astype("float32")
        kernel = RNG.normal(size=(3, 3, 3)).astype("float32")
        got = np.asarray(fn(image, kernel))
        require(
            got.shape == (8, 9), f"output shape {got.shape}: one filter gives one output channel, (H - 2, W - 2) here"
        )
        require(
            np.allclose(got, _keras_valid(image, kernel), atol=1e-4),
            "not what a Conv2D filter with 3 input channels computes: sum the channels' responses",
        )
        return "one filter, three channels, one sum"

    return run_check("q3", check, multichannel_response)


def q4(conv_output_size) -> bool:
    """The output-size formula, including the error for a size that is not whole."""

    def check(fn):
        for w, f, s, p in [(32, 5, 1, 0), (32, 5, 1, 2), (227, 11, 4, 0), (7, 3, 2, 1), (224, 3, 1, 1), (13, 3, 2, 0)]:
            got = fn(w, f, s, p)
            require(got == output_size(w, f, s, p), f"wrong size for W={w}, F={f}, S={s}, P={p}: got {got}")
        try:
            fn(224, 11, 4, 0)
        except ValueError:
            return "sizes match Keras, and a fractional size is refused"
        raise Hint("W=224, F=11, S=4, P=0 does not give a whole number: raise ValueError instead of rounding")

    return run_check("q4", check, conv_output_size)


def q5(max_pool, average_pool_as_conv) -> bool:
    """Max pooling by hand, and average pooling as a convolution."""

    def check(pool_fn, make_layer):
        x = RNG.random((8, 6)).astype("float32")
        got = np.asarray(pool_fn(x, 2))
        expected = np.asarray(keras.layers.MaxPooling2D(2)(x[None, :, :, None]))[0, :, :, 0]
        require(
            got.shape == expected.shape, f"max_pool: shape {got.shape}; a 2x2 window with stride 2 halves each side"
        )
        require(np.allclose(got, expected), "max_pool: values differ from MaxPooling2D")
        layer = make_layer(2, 3)
        require(
            isinstance(layer, keras.layers.Conv2D),
            f"average_pool_as_conv must return a Conv2D layer, got {type(layer).__name__}",
        )
        images = RNG.random((2, 8, 6, 3)).astype("float32")
        out = np.asarray(layer(images))
        reference = np.asarray(keras.layers.AveragePooling2D(2)(images))
        require(
            out.shape == reference.shape, f"average_pool_as_conv: shape {out.shape}; the stride must equal the window"
        )
        require(
            np.allclose(out, reference, atol=1e-5),
            "average_pool_as_conv: values differ; each output channel should average only its own input channel",
        )
        return "both poolings match Keras"

    return run_check("q5", check, max_pool, average_pool_as_conv)


def q6(conv1_output_shape, conv1_parameters, pool1_output_shape) -> bool:
    """AlexNet CONV1 (227x227x3 input, 96 filters of 11x11, stride 4) and POOL1 (3x3, stride 2)."""

    def check(conv_shape, params, pool_shape):
        conv_shape, pool_shape = tuple(conv_shape), tuple(pool_shape)
        require(len(conv_shape) == 3, "give shapes as (height, width, channels)")
        require(conv_shape[2] == 96, "CONV1's depth is its number of filters")
        require(
            conv_shape[:2] == (output_size(227, 11, 4),) * 2,
            "CONV1's width: (W - F + 2P)/S + 1 with W=227, F=11, S=4, P=0",
        )
        require(params != 11 * 11 * 3 * 96, "parameters: every filter also has one bias")
        require(params == (11 * 11 * 3 + 1) * 96, "parameters: each filter has F*F*C weights plus one bias")
        require(pool_shape[2] == 96, "pooling keeps the number of channels")
        require(
            pool_shape[:2] == (output_size(55, 3, 2),) * 2, "POOL1: the same formula with F=3, S=2 on CONV1's output"
        )
        return "CONV1 and POOL1 worked out"

    return run_check("q6", check, conv1_output_shape, conv1_parameters, pool1_output_shape)
