"""Public checks for lab 01, convolutions and filters.

They never hold an answer. The code questions run on inputs of the checks' own (other images,
kernels, sizes and stacks of layers than the questions') and are compared with Keras or with
the question's own definition, measured rather than computed by a formula: a receptive field
is read from the impulse responses of a stack of Keras layers, max pooling's backward pass from
TensorFlow's gradient. The AlexNet answers are compared with slow salted SHA-256 digests
(PBKDF2). The prediction checks only look at the form of the answer: the cells after them show
what happens.
"""

from __future__ import annotations

import hashlib
import math

import keras
import numpy as np

from cnnlab.arithmetic import output_size
from cnnlab.checks.report import Hint, letter_prediction, require, run_check

RNG = np.random.default_rng(2024)
SOBEL = np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]], dtype="float32")
CHOICES = {"q4": ("a", "b", "c")}
SALT = b"cnnlab lab01"
# PBKDF2-HMAC-SHA256 digests of `repr` of the q14 answers: shapes as tuples of ints, counts as ints.
DIGESTS = {
    "conv1_shape": "8f54628d371e320a2c53bc88912d44ca116fd0afea081d352cb6be6f0bded457",
    "conv1_parameters": "c2d16bbd9275f262277ca84ecafeb7a52166292675b2d1813135a413e2f457d7",
    "conv1_weights_only": "899e59ffcf99467283f2ca8ea5923544b25abc61cc21857fc92a7644f898d35b",
    "pool1_shape": "48f95d2f431559bced34a53c4fb4b4df7c7588ed05286fab88e303180d5fe305",
}


def _digest(value) -> str:
    return hashlib.pbkdf2_hmac("sha256", repr(value).encode(), SALT, 100_000).hex()


def _whole(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _correlate(image, kernel):
    """'valid' cross-correlation of a 2-D image with a 2-D kernel, from NumPy's sliding windows."""
    windows = np.lib.stride_tricks.sliding_window_view(np.asarray(image, "float64"), np.shape(kernel))
    return np.einsum("ijkl,kl->ij", windows, np.asarray(kernel, "float64"))


def _keras_valid(image, kernel):
    """Keras's Conv2D ('valid', no bias) on one multi-channel image (H, W, C) with kernel (kh, kw, C)."""
    layer = keras.layers.Conv2D(1, kernel.shape[:2], use_bias=False)
    layer.build((None, *image.shape))
    layer.set_weights([kernel[..., None]])
    return np.asarray(layer(image[None]))[0, :, :, 0]


def _number_prediction(question: str, name: str, guess) -> bool:
    def check(value):
        require(value is not None, f"assign your prediction to `{name}` before running the cells below")
        require(
            isinstance(value, (int, float, np.integer, np.floating))
            and not isinstance(value, bool)
            and math.isfinite(value),
            f"`{name}` must be a number, got {value!r}",
        )
        return f"prediction {value!r} recorded; the next cells show what happens"

    return run_check(question, check, guess)


def _letter_prediction(question: str, name: str, guess) -> bool:
    return letter_prediction(question, name, guess, CHOICES[question])


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


def q2(prediction_q2) -> bool:
    """The prediction of the edge detector's output beside a step edge: a number."""
    return _number_prediction("q2", "prediction_q2", prediction_q2)


def q3(cross_correlate, convolve) -> bool:
    """Cross-correlation and true convolution by hand, 'valid' mode, on a kernel with no symmetry."""

    def check(correlate_fn, convolve_fn):
        image = RNG.random((9, 8)).astype("float32")
        kernel = RNG.normal(size=(3, 2)).astype("float32")  # neither symmetric nor antisymmetric
        got = np.asarray(correlate_fn(image, kernel))
        require(
            got.shape == (7, 7),
            f"cross_correlate: output shape {got.shape} for a 9x8 image and a 3x2 kernel; "
            "'valid' mode gives (H - kh + 1, W - kw + 1)",
        )
        require(
            np.allclose(got, _keras_valid(image[..., None], kernel[..., None]), atol=1e-4),
            "cross_correlate differs from what Keras's Conv2D computes",
        )
        conv = np.asarray(convolve_fn(image, kernel))
        require(conv.shape == (7, 7), f"convolve: output shape {conv.shape}")
        require(
            not np.allclose(conv, got, atol=1e-4),
            "convolve gives the same as cross_correlate on a kernel with no symmetry: flip the kernel",
        )
        require(
            np.allclose(conv, _keras_valid(image[..., None], kernel[::-1, ::-1, None]), atol=1e-4),
            "convolve is not a true convolution: the kernel must be flipped in both directions",
        )
        return "cross-correlation matches Keras; convolution flips the kernel"

    return run_check("q3", check, cross_correlate, convolve)


def q4(prediction_q4) -> bool:
    """The prediction for the emboss kernel: one of the stated letters."""
    return _letter_prediction("q4", "prediction_q4", prediction_q4)


def q5(learn_kernel) -> bool:
    """``learn_kernel`` trains one Conv2D layer that recovers the kernel behind a set of targets."""

    def check(learn):
        images = RNG.uniform(-0.5, 0.5, size=(24, 14, 13)).astype("float32")
        secret = RNG.normal(size=(3, 3)).astype("float32")
        targets = np.stack([_correlate(image, secret) for image in images]).astype("float32")
        model = learn(images, targets, 3)
        require(isinstance(model, keras.Model), f"learn_kernel must return a keras.Model, got {type(model).__name__}")
        convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
        require(
            len(convs) == 1 and len(model.layers) == 1,
            f"the model must be one Conv2D layer and nothing else; it has {len(model.layers)} layers",
        )
        weights = convs[0].get_weights()
        require(
            len(weights) == 1 and weights[0].shape == (3, 3, 1, 1),
            "one 3x3 filter on one input channel, with no bias (use_bias=False)",
        )
        out = np.asarray(model(images[..., None]))
        require(out.shape == (*targets.shape, 1), f"output shape {out.shape}: use 'valid' padding and stride 1")
        learned = weights[0][:, :, 0, 0]
        require(
            np.allclose(learned, secret, atol=0.05),
            "the learned kernel is not yet the one that made the targets: train for more steps, or with a larger "
            "learning rate, until the loss is close to 0",
        )
        return "one Conv2D layer learned the kernel behind the targets"

    return run_check("q5", check, learn_kernel)


def q6(multichannel_response) -> bool:
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

    return run_check("q6", check, multichannel_response)


def q7(conv_output_size) -> bool:
    """The output-size formula, including the error for a size that is not whole."""

    def check(fn):
        for w, f, s, p in [(32, 5, 1, 0), (32, 5, 1, 2), (7, 3, 2, 1), (224, 3, 1, 1), (13, 3, 2, 0), (64, 7, 3, 3)]:
            got = fn(w, f, s, p)
            require(got == output_size(w, f, s, p), f"wrong size for W={w}, F={f}, S={s}, P={p}: got {got}")
            require(_whole(got), f"W={w}, F={f}, S={s}, P={p}: return an int, got {type(got).__name__}")
        try:
            fn(224, 11, 4, 0)
        except ValueError:
            return "sizes match Keras, and a fractional size is refused"
        raise Hint("W=224, F=11, S=4, P=0 does not give a whole number: raise ValueError instead of rounding")

    return run_check("q7", check, conv_output_size)


def q8(prediction_q8) -> bool:
    """The prediction of the strided layer's output width: a number."""
    return _number_prediction("q8", "prediction_q8", prediction_q8)


def _measured_field(layers) -> int:
    """The receptive field of one output of a stack of 1-D Keras convolutions, measured: the
    stack is linear with positive weights, so an input pixel is in the field of the first
    output exactly when a unit impulse on it reaches that output."""
    width = math.prod(s for _, s in layers) * sum(k for k, _ in layers)  # more than enough for one output
    stack = keras.Sequential(
        [keras.Input((width, 1))]
        + [keras.layers.Conv1D(1, k, strides=s, use_bias=False, kernel_initializer="ones") for k, s in layers]
    )
    impulses = np.eye(width, dtype="float32")[:, :, None]  # one impulse per example
    reached = np.asarray(stack(impulses))[:, 0, 0]
    return int(np.count_nonzero(reached))


def q9(receptive_field) -> bool:
    """``receptive_field(layers)`` against fields measured on stacks of Keras layers."""

    def check(fn):
        stacks = [[(5, 1)], [(3, 1), (3, 1), (3, 1), (3, 1)], [(3, 1), (2, 2), (3, 1)], [(5, 2), (3, 2), (2, 1)]]
        for layers in stacks:
            got = fn(list(layers))
            require(_whole(got), f"return an int, got {type(got).__name__}")
            require(
                got == _measured_field(layers),
                f"wrong field for the stack {layers}"
                + ("" if all(s == 1 for _, s in layers) else ": does each stride widen what the next layers see?"),
            )
        return "receptive fields match what Keras layers see"

    return run_check("q9", check, receptive_field)


def q10(compose_kernels) -> bool:
    """``compose_kernels(first, second)`` replaces two 'valid' correlations by one."""

    def check(fn):
        image = RNG.normal(size=(10, 9)).astype("float32")
        for first_shape, second_shape in [((3, 3), (3, 3)), ((2, 3), (4, 2))]:
            first = RNG.normal(size=first_shape).astype("float32")
            second = RNG.normal(size=second_shape).astype("float32")
            combined = np.asarray(fn(first, second))
            expected_shape = tuple(a + b - 1 for a, b in zip(first_shape, second_shape, strict=True))
            require(
                combined.shape == expected_shape,
                f"for kernels of shapes {first_shape} and {second_shape}: shape {combined.shape}; one output of "
                "the second layer sees a window as large as both kernels together",
            )
            require(
                np.allclose(_correlate(image, combined), _correlate(_correlate(image, first), second), atol=1e-4),
                f"kernels of shapes {first_shape} and {second_shape}: one correlation with the combined kernel "
                "differs from the two correlations, one after the other",
            )
        return "two correlations, one kernel"

    return run_check("q10", check, compose_kernels)


def q12(max_pool, average_pool_as_conv) -> bool:
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

    return run_check("q12", check, max_pool, average_pool_as_conv)


def _tensorflow_gradient(x, upstream, size):
    """The gradient TensorFlow computes through MaxPooling2D for the given upstream gradient."""
    import tensorflow as tf

    inputs = tf.constant(x[None, :, :, None])
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        pooled = keras.layers.MaxPooling2D(size)(inputs)
    return tape.gradient(pooled, inputs, output_gradients=tf.constant(upstream[None, :, :, None])).numpy()[0, :, :, 0]


def q13(max_pool_backward) -> bool:
    """Max pooling's backward pass against TensorFlow's gradient."""

    def check(fn):
        for shape, size in [((6, 8), 2), ((7, 9), 3)]:
            x = RNG.normal(size=shape).astype("float32")
            upstream = RNG.normal(size=(shape[0] // size, shape[1] // size)).astype("float32")
            got = np.asarray(fn(x, upstream, size))
            require(got.shape == x.shape, f"the gradient has the shape of x, {x.shape}; got {got.shape}")
            expected = _tensorflow_gradient(x, upstream, size)
            require(
                np.count_nonzero(got) <= upstream.size,
                f"size {size}: more inputs get a gradient than there are windows; only one input per window "
                "changes the window's output",
            )
            require(
                np.allclose(got, expected, atol=1e-6),
                f"{shape[0]}x{shape[1]} input, size {size}: differs from TensorFlow's gradient through "
                "MaxPooling2D (where does each upstream value go, and what do the rows and columns left out "
                "of every window get?)",
            )
        return "the gradient goes where TensorFlow sends it"

    return run_check("q13", check, max_pool_backward)


def q14(conv1_output_shape, conv1_parameters, pool1_output_shape) -> bool:
    """AlexNet CONV1 (227x227x3 input, 96 filters of 11x11, stride 4) and POOL1 (3x3, stride 2)."""

    def shape_of(value, name):
        try:
            shape = tuple(value)
        except TypeError:
            raise Hint(f"`{name}` must be a shape: (height, width, channels)") from None
        require(
            len(shape) == 3 and all(_whole(v) for v in shape), f"`{name}` must be three ints, (height, width, channels)"
        )
        return tuple(int(v) for v in shape)

    def check(conv_shape, params, pool_shape):
        conv_shape = shape_of(conv_shape, "conv1_output_shape")
        pool_shape = shape_of(pool_shape, "pool1_output_shape")
        require(conv_shape[2] == 96, "CONV1's depth is its number of filters")
        require(
            _digest(conv_shape) == DIGESTS["conv1_shape"],
            "CONV1's width and height are not right yet: use your conv_output_size with CONV1's W, F, S and P",
        )
        require(_whole(params), "`conv1_parameters` must be an int")
        require(_digest(int(params)) != DIGESTS["conv1_weights_only"], "parameters: every filter also has a bias")
        require(
            _digest(int(params)) == DIGESTS["conv1_parameters"],
            "the parameter count is not right yet: count what one filter holds (it spans every input channel), "
            "then all the filters",
        )
        require(pool_shape[2] == 96, "pooling keeps the number of channels")
        require(
            _digest(pool_shape) == DIGESTS["pool1_shape"],
            "POOL1's width and height are not right yet: the same rule, on CONV1's output",
        )
        return "CONV1 and POOL1 worked out"

    return run_check("q14", check, conv1_output_shape, conv1_parameters, pool1_output_shape)
