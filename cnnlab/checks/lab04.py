"""Public checks for lab 04, training and regularization."""

from __future__ import annotations

import keras
import numpy as np

from cnnlab.checks.report import require, run_check

RNG = np.random.default_rng(7)


def _probabilities(n: int, k: int) -> np.ndarray:
    logits = RNG.normal(size=(n, k))
    return (np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)).astype("float32")


def q1(cross_entropy, l1_loss, l2_loss, smooth_l1_loss, huber_loss) -> bool:
    """The losses, each a mean over the batch, against keras.losses."""

    def check(ce, l1, l2, smooth, huber):
        labels = np.eye(5, dtype="float32")[RNG.integers(0, 5, 8)]
        probs = _probabilities(8, 5)
        expected = float(keras.losses.CategoricalCrossentropy()(labels, probs))
        require(
            np.isclose(ce(labels, probs), expected, rtol=1e-5),
            "cross_entropy: average over the batch of -sum(y * log p)",
        )
        y, p = RNG.normal(size=(8, 3)).astype("float32"), RNG.normal(size=(8, 3)).astype("float32") * 2
        require(
            np.isclose(l1(y, p), float(keras.losses.MeanAbsoluteError()(y, p)), rtol=1e-5),
            "l1_loss: the mean absolute difference",
        )
        require(
            np.isclose(l2(y, p), float(keras.losses.MeanSquaredError()(y, p)), rtol=1e-5),
            "l2_loss: the mean squared difference",
        )
        require(
            np.isclose(smooth(y, p), float(keras.losses.Huber(delta=1.0)(y, p)), rtol=1e-5),
            "smooth_l1_loss: 0.5 d^2 where |d| < 1, |d| - 0.5 elsewhere",
        )
        for delta in (0.5, 2.0):
            require(
                np.isclose(huber(y, p, delta), float(keras.losses.Huber(delta=delta)(y, p)), rtol=1e-5),
                f"huber_loss with delta={delta}: quadratic inside |d| <= delta, linear outside, continuous at delta",
            )
        return "all five match keras.losses"

    return run_check("q1", check, cross_entropy, l1_loss, l2_loss, smooth_l1_loss, huber_loss)


def _keras_steps(optimizer, w0, gradients):
    variable = keras.Variable(w0)
    for g in gradients:
        optimizer.apply([keras.ops.convert_to_tensor(g)], [variable])
    return np.asarray(variable)


def q2(sgd_step, momentum_step, adam_step) -> bool:
    """One update of SGD, SGD with momentum and Adam, repeated, against keras.optimizers (to 1e-6)."""

    def check(sgd, momentum, adam):
        w0 = RNG.normal(size=(4,)).astype("float32")
        gradients = [RNG.normal(size=(4,)).astype("float32") for _ in range(3)]
        w = w0.copy()
        for g in gradients:
            w = sgd(w, g, 0.1)
        require(
            np.allclose(w, _keras_steps(keras.optimizers.SGD(0.1), w0, gradients), atol=1e-6),
            "sgd_step: w - learning_rate * g",
        )
        w, velocity = w0.copy(), np.zeros_like(w0)
        for g in gradients:
            w, velocity = momentum(w, g, velocity, 0.1, 0.9)
        require(
            np.allclose(w, _keras_steps(keras.optimizers.SGD(0.1, momentum=0.9), w0, gradients), atol=1e-6),
            "momentum_step: v = momentum * v - learning_rate * g, then w + v",
        )
        w, m, v = w0.copy(), np.zeros_like(w0), np.zeros_like(w0)
        for t, g in enumerate(gradients, start=1):
            w, m, v = adam(w, g, m, v, t, 0.01)
        reference = _keras_steps(keras.optimizers.Adam(0.01), w0, gradients)
        require(
            np.allclose(w, reference, atol=1e-6),
            "adam_step: check the bias corrections 1 - beta^t (t starts at 1) and where epsilon goes",
        )
        return "three optimizers, three steps each, match Keras"

    return run_check("q2", check, sgd_step, momentum_step, adam_step)


def q3(build_regularized_convnet) -> bool:
    """The lecture ConvNet with optional dropout, L2 weight decay and batch normalisation."""

    def check(build):
        plain = build()
        require(isinstance(plain, keras.Model), f"must return a keras.Model, got {type(plain).__name__}")
        require(tuple(plain.output_shape[1:]) == (10,), f"output {plain.output_shape[1:]}; 10 digit classes")
        require(
            not any(
                isinstance(layer, (keras.layers.Dropout, keras.layers.BatchNormalization)) for layer in plain.layers
            ),
            "with the defaults, there should be no Dropout and no BatchNormalization",
        )
        require(not plain.losses, "with weight_decay=0 there should be no regularisation loss")
        dropped = build(dropout=0.4)
        rates = [layer.rate for layer in dropped.layers if isinstance(layer, keras.layers.Dropout)]
        require(
            rates and all(abs(r - 0.4) < 1e-9 for r in rates), "dropout=0.4 should add Dropout layers with rate 0.4"
        )
        decayed = build(weight_decay=1e-3)
        kernels = [layer for layer in decayed.layers if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))]
        require(
            len(decayed.losses) == len(kernels),
            "weight_decay should put an L2 regulariser on every Conv2D and Dense kernel",
        )
        normalised = build(batchnorm=True)
        require(
            sum(isinstance(layer, keras.layers.BatchNormalization) for layer in normalised.layers) >= 2,
            "batchnorm=True should add BatchNormalization after the convolutions",
        )
        return "each switch changes what it should"

    return run_check("q3", check, build_regularized_convnet)
