"""Public checks for lab 02, MLP vs ConvNet on MNIST."""

from __future__ import annotations

import keras
import numpy as np

from cnnlab.checks.report import require, run_check

MLP_PARAMS = 203_530
CONVNET_PARAMS = 431_754


def _built_model(build, name: str):
    model = build()
    require(isinstance(model, keras.Model), f"{name}() must return a keras.Model, got {type(model).__name__}")
    require(
        tuple(model.input_shape[1:]) == (28, 28, 1),
        f"the input shape is {model.input_shape[1:]}; MNIST digits here are (28, 28, 1)",
    )
    require(
        tuple(model.output_shape[1:]) == (10,),
        f"the output shape is {model.output_shape[1:]}; there are 10 digit classes",
    )
    last = model.layers[-1]
    activation = getattr(getattr(last, "activation", None), "__name__", "")
    require(
        activation == "softmax",
        f"the last layer's activation is {activation or 'none'}; the loss expects probabilities (softmax)",
    )
    return model


def q1(build_mlp) -> bool:
    """The lecture's MLP: Flatten, Dense 256 (ReLU), Dense 10 (softmax)."""

    def check(build):
        model = _built_model(build, "build_mlp")
        dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
        require(not any(isinstance(layer, keras.layers.Conv2D) for layer in model.layers), "an MLP has no convolutions")
        require(
            len(dense) == 2,
            f"found {len(dense)} Dense layers; the lecture's MLP has one hidden layer and one output layer",
        )
        hidden = getattr(dense[0].activation, "__name__", "")
        require(hidden == "relu", f"the hidden layer's activation is {hidden}; the lecture uses ReLU")
        require(
            model.count_params() == MLP_PARAMS, f"{model.count_params():,} parameters; check the hidden layer's width"
        )
        return f"{MLP_PARAMS:,} parameters"

    return run_check("q1", check, build_mlp)


def q2(build_convnet) -> bool:
    """The lecture's ConvNet: Conv 32 (5x5), MaxPool 2, Conv 64 (3x3), MaxPool 2, Dense 256, Dense 10."""

    def check(build):
        model = _built_model(build, "build_convnet")
        convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
        pools = [layer for layer in model.layers if isinstance(layer, keras.layers.MaxPooling2D)]
        require(len(convs) == 2, f"found {len(convs)} Conv2D layers; the lecture's ConvNet has two")
        require([c.filters for c in convs] == [32, 64], f"filters per conv layer: {[c.filters for c in convs]}")
        require([c.kernel_size for c in convs] == [(5, 5), (3, 3)], f"kernel sizes: {[c.kernel_size for c in convs]}")
        require(all(c.padding == "valid" for c in convs), "the lecture's convolutions use no padding ('valid')")
        require(len(pools) == 2, f"found {len(pools)} max-pooling layers; there is one after each convolution")
        require(
            model.count_params() == CONVNET_PARAMS,
            f"{model.count_params():,} parameters; compare each layer's output shape with the lecture's table",
        )
        return f"{CONVNET_PARAMS:,} parameters"

    return run_check("q2", check, build_convnet)


def q3(dense_parameters) -> bool:
    """Parameters of a Dense layer that takes a whole image as input."""

    def check(fn):
        for h, w, c, units in [(28, 28, 1, 256), (32, 32, 3, 10), (5, 5, 64, 256)]:
            got = fn(h, w, c, units)
            require(
                got == (h * w * c + 1) * units,
                f"wrong count for a {h}x{w}x{c} input and {units} units: got {got:,}; inputs times units, plus a bias per unit",
            )
        return "weights plus biases"

    return run_check("q3", check, dense_parameters)


def q4(shift_right) -> bool:
    """Shift a batch of images (N, 28, 28, 1) right by some pixels, filling with zeros."""

    def check(fn):
        images = np.random.default_rng(0).random((3, 28, 28, 1)).astype("float32")
        for pixels in (0, 1, 4):
            out = np.asarray(fn(images, pixels))
            require(out.shape == images.shape, f"shape {out.shape} after shifting; it must stay {images.shape}")
            require(
                np.allclose(out[:, :, pixels:], images[:, :, : 28 - pixels]),
                f"shift by {pixels}: the content must move {pixels} columns to the right (axis 2)",
            )
            require(
                np.all(out[:, :, :pixels] == 0),
                f"shift by {pixels}: the columns that come in from the left must be 0, not wrapped around",
            )
        require(np.all(images[0, :, :1] != 0), "shift_right changed its input in place; return a new array")
        return "digits move right, zeros come in"

    return run_check("q4", check, shift_right)
