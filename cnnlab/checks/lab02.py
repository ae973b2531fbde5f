"""Public checks for lab 02, MLP vs ConvNet on MNIST.

They never hold an answer: the builders are checked layer by layer against the question's
table and their parameter counts against slow salted SHA-256 digests (PBKDF2), so that
neither reading this file nor trying every number in turn gives a count away; the code
questions are run on inputs of their own and compared with digests of the right outputs;
the prediction checks only look at the form of the answer (the cells after them show what
happens).
"""

from __future__ import annotations

import hashlib

import keras
import numpy as np

from cnnlab.checks.report import letter_prediction, require, run_check

# PBKDF2-HMAC-SHA256 digests, of `repr` of an int for the counts.
DIGESTS = {
    "mlp": "d5831b1b84180fc6926a4d4b197c6e5e5c5a1a0bdab0b24a62e7a9161198a30d",
    "convnet": "b236d23822f106cb20621551f5eb27359cefb76a867c719254f2ccf30455998d",
}
# dense_parameters on shapes of the check's own, (height, width, channels, units): digests of the counts.
DENSE_PROBES = {
    (7, 11, 2, 5): "b7011f68c081b3507986fae2ea7629e26cdeda14018934b311f6eba6c7849911",
    (32, 32, 3, 100): "0faf64a5b2727188fad189d32cae43b83fc435ee95c8187217f9b55404be9816",
    (1, 1, 1, 1): "60f7345fd2a1b243f5a94b25ceb161d2920a29418311b92afbe6e275385c1148",
}
# shift_right on the check's own batch (_shift_probe), by 1 and 3 pixels: SHA-256 of the float32 bytes.
SHIFTS = {
    1: "90841ab20bf1f53fb5a3715b51ff8d74877aefab1db6273f8c90fb04929ebd36",
    3: "5b476d55260470c88d0e95be90d6a816b981808c8eed079be24eea4ce366d09b",
}
CHOICES = {"q7": ("a", "b", "c", "d")}
NETWORKS = ("MLP", "ConvNet")  # the keys of prediction_q5
SALT = b"cnnlab lab02"


def _digest(value) -> str:
    return hashlib.pbkdf2_hmac("sha256", repr(value).encode(), SALT, 100_000).hex()


def _array_digest(array) -> str:
    return hashlib.sha256(np.ascontiguousarray(array, dtype="float32").tobytes()).hexdigest()


def _shift_probe() -> np.ndarray:
    """Three 28x28 images with a distinct non-zero value in every pixel."""
    return ((np.arange(3 * 28 * 28).reshape(3, 28, 28, 1) % 251 + 5) / 256).astype("float32")


def _is_whole(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


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


def _prediction(question: str, name: str, guess) -> bool:
    return letter_prediction(question, name, guess, CHOICES[question])


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
            _digest(model.count_params()) == DIGESTS["mlp"],
            "wrong number of parameters; check the hidden layer's width",
        )
        return "the lecture's MLP"

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
            _digest(model.count_params()) == DIGESTS["convnet"],
            "wrong number of parameters; compare each layer's output shape with the table above",
        )
        return "the lecture's ConvNet"

    return run_check("q2", check, build_convnet)


def q3(dense_parameters) -> bool:
    """Parameters of a Dense layer that takes a whole image as input."""

    def check(fn):
        for (h, w, c, units), digest in DENSE_PROBES.items():
            got = fn(h, w, c, units)
            require(_is_whole(got), f"dense_parameters must return a whole number (an int), got {got!r}")
            if _digest(int(got)) == digest:
                continue
            require(
                _digest(int(got) + units) != digest,
                f"wrong count for a {h}x{w}x{c} input and {units} units: each unit also has a bias",
            )
            require(False, f"wrong count for a {h}x{w}x{c} input and {units} units: got {got:,}")
        return "right on other shapes"

    return run_check("q3", check, dense_parameters)


def q4(shift_right) -> bool:
    """Shift a batch of images (N, 28, 28, 1) right by some pixels, filling with zeros."""

    def check(fn):
        for pixels in (0, *SHIFTS):
            images = _shift_probe()
            out = np.asarray(fn(images, pixels))
            require(
                np.array_equal(images, _shift_probe()), "shift_right changed its input in place; return a new array"
            )
            require(out.shape == images.shape, f"shape {out.shape} after shifting; it must stay {images.shape}")
            if pixels == 0:
                require(np.array_equal(out, images), "a shift by 0 pixels must give the images back unchanged")
                continue
            if _array_digest(out) == SHIFTS[pixels]:
                continue
            require(
                np.all(out[:, :, :pixels] == 0),
                f"shift by {pixels}: the {pixels} columns on the left (the width is axis 2) must be 0, "
                "not wrapped around nor left as they were",
            )
            require(False, f"shift by {pixels}: the content must move {pixels} columns to the right (axis 2)")
        return "digits move right, zeros come in"

    return run_check("q4", check, shift_right)


def q5(prediction_q5) -> bool:
    """The prediction of each network's accuracy after a 4-pixel shift: two percentages."""

    def check(value):
        require(value is not None, "assign your prediction to `prediction_q5` before running the cells below")
        require(
            isinstance(value, dict) and set(value) == set(NETWORKS),
            f"`prediction_q5` must be a dict with the keys {NETWORKS[0]!r} and {NETWORKS[1]!r}, got {value!r}",
        )
        numbers = [value[name] for name in NETWORKS]
        require(
            all(isinstance(n, (int, float, np.integer, np.floating)) and not isinstance(n, bool) for n in numbers),
            f"each prediction must be a number (a percentage), got {numbers!r}",
        )
        require(all(0 <= n <= 100 for n in numbers), f"accuracies are percentages between 0 and 100, got {numbers!r}")
        require(
            not all(n <= 1 for n in numbers),
            "give percentages (50 for 50%), not fractions",
        )
        return "prediction recorded; the next cells show what happens"

    return run_check("q5", check, prediction_q5)


def q7(prediction_q7) -> bool:
    """The prediction of the two networks' sizes: one of the stated letters."""
    return _prediction("q7", "prediction_q7", prediction_q7)
