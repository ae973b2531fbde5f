"""Public checks for lab 04, training and regularization.

The code checks run the student's functions on inputs of their own (other losses, gradients,
networks and loss curves than the notebook's) and compare with Keras; the checks of the
predictions and of the choice of transforms look only at the form of the answer, never at
whether it is right (the cells after them show that).
"""

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


# -- predictions and choices: the form only ---------------------------------------------------------

CHOICES = {"q3": "abc", "q11": "abc"}
SEVERAL = {"q4": ("abc", 3), "q6": ("abcdef", None), "q7": ("abcde", None)}


def _letter(question: str, name: str, guess) -> bool:
    def check(value):
        require(value is not None, f"assign your prediction to `{name}` before running the cells below")
        options = CHOICES[question]
        require(
            isinstance(value, str) and value.strip().lower() in tuple(options),
            f"`{name}` must be one of the letters {', '.join(repr(c) for c in options)}, got {value!r}",
        )
        return f"prediction {value.strip().lower()!r} recorded; the next cells show what happened"

    return run_check(question, check, guess)


def _letters(question: str, name: str, answer, what: str) -> bool:
    options, length = SEVERAL[question]

    def check(value):
        require(value is not None, f"assign your answer to `{name}` before running the cells below")
        require(isinstance(value, str), f"`{name}` must be a string of letters such as 'ab', got {value!r}")
        letters = value.replace(",", "").replace(" ", "").lower()
        require(
            all(letter in options for letter in letters),
            f"`{name}` may only hold the letters {', '.join(repr(c) for c in options)}, got {value!r}",
        )
        if length is None:
            require(len(set(letters)) == len(letters), f"`{name}` names a letter twice: {value!r}")
        else:
            require(len(letters) == length, f"`{name}` needs {length} letters, one per {what}, got {value!r}")
        return f"{what}s {letters!r} recorded; the next cells show what happens"

    return run_check(question, check, answer)


def q3(closest_guess) -> bool:
    """The prediction of the optimizer closest to the minimum: one of the stated letters."""
    return _letter("q3", "closest_guess", closest_guess)


def q4(saturation_guess) -> bool:
    """The prediction of the first layer's gradient, per activation: three of the stated letters."""
    return _letters("q4", "saturation_guess", saturation_guess, "activation")


def q6(label_preserving) -> bool:
    """The transforms that keep a digit's label: letters among the stated ones, each once."""
    return _letters("q6", "label_preserving", label_preserving, "transform")


def q7(below_guess) -> bool:
    """The prediction of the variants whose training accuracy ends below their validation accuracy."""
    return _letters("q7", "below_guess", below_guess, "variant")


def q11(shift_guess) -> bool:
    """The prediction of the augmented ConvNet's accuracy on shifted digits: one of the stated letters."""
    return _letter("q11", "shift_guess", shift_guess)


def q12(grey_levels_guess) -> bool:
    """The prediction of the lighting shift, in grey levels: a positive number."""

    def check(value):
        require(value is not None, "assign your prediction to `grey_levels_guess` before running the cells below")
        require(
            isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool),
            f"`grey_levels_guess` must be a number of grey levels, got {value!r}",
        )
        require(np.isfinite(value) and value > 0, f"`grey_levels_guess` must be a positive number, got {value!r}")
        return f"prediction {float(value):g} grey levels recorded; the next cell measures it"

    return run_check("q12", check, grey_levels_guess)


# -- the learning rate ------------------------------------------------------------------------------


def _probe_classifier(features: int, classes: int):
    """A softmax regression with zero weights, so that its first loss is log(classes) exactly."""
    inputs = keras.Input((features,))
    outputs = keras.layers.Dense(classes, activation="softmax", kernel_initializer="zeros")(inputs)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.SGD(), loss="sparse_categorical_crossentropy")
    return model


def q9(learning_rate_range_test) -> bool:
    """The range test on a small softmax regression (not the notebook's ConvNet)."""

    def check(range_test):
        rng = np.random.default_rng(11)
        labels = rng.integers(0, 4, 300)
        x = (rng.normal(size=(300, 6)) + 2.5 * np.eye(4, 6)[labels]).astype("float32")
        model = _probe_classifier(6, 4)
        start, stop, steps = 1e-3, 300.0, 40
        result = range_test(model, x, labels, start=start, stop=stop, steps=steps, batch_size=32)
        require(isinstance(result, tuple) and len(result) == 2, "return two arrays: (rates, losses)")
        rates, losses = (np.asarray(a, dtype="float64") for a in result)
        require(rates.ndim == 1 and rates.shape == losses.shape, "rates and losses: one value per step, as long")
        require(1 <= len(rates) <= steps, f"between 1 and steps={steps} values, got {len(rates)}")
        planned = start * (stop / start) ** (np.arange(len(rates)) / (steps - 1))
        require(
            np.allclose(rates, planned, rtol=1e-5),
            "the rates should grow geometrically: the first is `start`, and `steps` of them would end at `stop`",
        )
        require(
            np.isclose(losses[0], np.log(4), atol=1e-4),
            "the first loss should be that of the untrained model on a batch (train_on_batch returns it)",
        )
        rate_now = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
        require(
            np.isclose(rate_now, rates[-1], rtol=1e-5),
            "set model.optimizer.learning_rate to each step's rate before training on its batch",
        )
        require(losses.min() < np.log(4) - 0.1, "the model should learn on its batches while the rate is moderate")
        lowest = np.minimum.accumulate(losses)
        exploded = ~np.isfinite(losses) | (losses > 4 * lowest)
        require(not exploded[:-1].any(), "stop at the first loss that is not finite or above 4 x the lowest so far")
        require(
            exploded[-1],
            "on this probe the loss blows up before `stop`: stop there (the rest of the curve says nothing)",
        )
        return f"{len(rates)} steps, stopped when the loss blew up"

    return run_check("q9", check, learning_rate_range_test)


def _keras_plateau(losses, learning_rate, **options) -> list[float]:
    """The learning rate of each epoch as keras.callbacks.ReduceLROnPlateau sets it, fed ``losses``."""
    inputs = keras.Input((1,))
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    model.compile(optimizer=keras.optimizers.SGD(learning_rate), loss="mse")
    callback = keras.callbacks.ReduceLROnPlateau(monitor="val_loss", **options)
    callback.set_model(model)
    callback.on_train_begin()
    rates = []
    for epoch, loss in enumerate(losses):
        logs = {"val_loss": loss}
        callback.on_epoch_end(epoch, logs)
        rates.append(logs["learning_rate"])
    return rates


def q10(plateau_schedule) -> bool:
    """The rates of ReduceLROnPlateau on made-up loss curves, against Keras's own callback."""

    def check(schedule):
        curves = [
            ([1.2, 0.9, 0.95, 0.91, 0.85, 0.86, 0.8500, 0.87, 0.6], 0.05, {"factor": 0.1, "patience": 2}),
            ([2.0, 1.9, 1.8999, 1.95, 1.7, 1.8, 1.75, 1.72], 0.2, {"factor": 0.5, "patience": 1, "min_delta": 0.01}),
        ]
        for losses, rate, options in curves:
            got = schedule(losses, rate, **options)
            expected = _keras_plateau(losses, rate, **options)
            require(
                np.shape(got) == (len(losses),),
                f"one learning rate per epoch: {len(losses)} losses should give {len(losses)} rates",
            )
            require(
                np.allclose(got, expected, rtol=1e-5),
                f"with {options}, the rates differ from keras.callbacks.ReduceLROnPlateau's: compare with the best "
                "loss so far (not the previous epoch), count the epochs without improvement, start counting again "
                "after a reduction, and let a reduction decided after an epoch apply from the next one",
            )
        return "the same rates as keras.callbacks.ReduceLROnPlateau on two made-up curves"

    return run_check("q10", check, plateau_schedule)


def q5(build_regularized_convnet) -> bool:
    """The lecture ConvNet with optional dropout, an L2 penalty and batch normalisation."""

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
        require(not plain.losses, "with l2=0 there should be no penalty in the loss")
        dropped = build(dropout=0.4)
        rates = [layer.rate for layer in dropped.layers if isinstance(layer, keras.layers.Dropout)]
        require(
            rates and all(abs(r - 0.4) < 1e-9 for r in rates), "dropout=0.4 should add Dropout layers with rate 0.4"
        )
        penalised = build(l2=1e-3)
        kernels = [layer for layer in penalised.layers if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))]
        require(
            len(penalised.losses) == len(kernels),
            "l2 should put an L2 regularizer on every Conv2D and Dense kernel",
        )
        normalised = build(batchnorm=True)
        require(
            sum(isinstance(layer, keras.layers.BatchNormalization) for layer in normalised.layers) >= 2,
            "batchnorm=True should add BatchNormalization after the convolutions",
        )
        return "each switch changes what it should"

    return run_check("q5", check, build_regularized_convnet)
