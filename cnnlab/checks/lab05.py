"""Public checks for lab 05, transfer learning and fine-tuning.

The code checks run the student's functions on small made-up networks, not on the lab's
EfficientNet; the prediction checks only look at the form of the answer, never at whether
it is right (the run after them shows that).
"""

from __future__ import annotations

import keras
import numpy as np

from cnnlab.checks.report import letter_prediction, require, run_check

CHOICES = {"q1": ("a", "b", "c", "d"), "q5": ("a", "b", "c")}


def _prediction(question: str, name: str, guess) -> bool:
    return letter_prediction(question, name, guess, CHOICES[question], outcome="show what happened")


def q1(zero_shot_guess) -> bool:
    """The prediction of the zero-shot family accuracy: one of the stated letters."""
    return _prediction("q1", "zero_shot_guess", zero_shot_guess)


def q5(comparison_guess) -> bool:
    """The prediction of the comparison: one of the stated letters."""
    return _prediction("q5", "comparison_guess", comparison_guess)


def _trainable_values(model) -> int:
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


def _toy_base():
    """A tiny "pretrained" base with BatchNormalization and Dropout, like a real one."""
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.BatchNormalization()(x)
    dropped = keras.layers.Dropout(0.5)(x)
    return keras.Model(inputs, keras.layers.Conv2D(5, 3, strides=2, padding="same")(dropped), name="toy_base")


def q2(new_head, transfer_model) -> bool:
    """A new head (pooling, dropout, softmax) and a model that runs a frozen base in inference mode."""

    def check(make_head, make_model):
        head = make_head((4, 4, 5), 3)
        require(isinstance(head, keras.Model), f"new_head must return a keras.Model, got {type(head).__name__}")
        require(
            tuple(head.input_shape[1:]) == (4, 4, 5) and tuple(head.output_shape[1:]) == (3,),
            f"new_head((4, 4, 5), 3) maps {head.input_shape[1:]} to {head.output_shape[1:]}; "
            "it should take a feature map of the given shape to one probability per class",
        )
        features = np.random.default_rng(7).normal(size=(2, 4, 4, 5)).astype("float32")
        probabilities = np.asarray(head(features, training=False))
        require(
            np.allclose(probabilities.sum(axis=1), 1, atol=1e-5), "the head's outputs should be softmax probabilities"
        )
        shuffled = features[:, ::-1, ::-1]
        require(
            np.allclose(np.asarray(head(shuffled, training=False)), probabilities, atol=1e-5),
            "the head should average each feature map over all positions (global average pooling) before the Dense layer",
        )
        require(
            any(isinstance(layer, keras.layers.Dropout) for layer in head.layers),
            "the head has no Dropout layer before its classifier",
        )
        base = _toy_base()
        model = make_model(base, head)
        require(isinstance(model, keras.Model), f"transfer_model must return a keras.Model, got {type(model).__name__}")
        require(not base.trainable_weights, "the base still has trainable weights: freeze it (base.trainable = False)")
        require(
            _trainable_values(model) == _trainable_values(head),
            "only the head's weights may train in the transfer model",
        )
        described = [layer for layer in model.get_config()["layers"] if layer.get("name") == base.name]
        calls = [node.get("kwargs", {}) for layer in described for node in layer.get("inbound_nodes", [])]
        require(calls, "the transfer model does not call the base: use base(images, training=False)")
        require(
            all(kwargs.get("training") is False for kwargs in calls),
            "call the base with training=False, so that it runs in inference mode",
        )
        images = np.random.default_rng(8).uniform(size=(2, 8, 8, 3)).astype("float32")
        expected = np.asarray(head(base(images, training=False), training=False))
        require(
            np.allclose(np.asarray(model(images, training=False)), expected, atol=1e-5),
            "the transfer model's output should be the head applied to the base's output",
        )
        return "a pooled softmax head on a frozen base in inference mode"

    return run_check("q2", check, new_head, transfer_model)


def _toy_network():
    inputs = keras.Input((6, 6, 2))
    x = inputs
    for name in ("stem", "middle", "last"):
        x = keras.layers.Conv2D(4, 3, padding="same", name=f"{name}_conv")(x)
        x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
        x = keras.layers.ReLU(name=f"{name}_relu")(x)
    return keras.Model(inputs, x, name="toy")


def q3(start_fine_tuning) -> bool:
    """Unfreeze a base from a named layer on, BatchNormalization kept frozen; Adam at a 10x smaller rate."""

    def check(start):
        network = _toy_network()
        network.trainable = False
        optimizer = start(network, "middle_conv", 0.02)
        require(
            network.trainable,
            "set base.trainable = True first; a frozen model freezes all its layers whatever their own flag",
        )
        names = [layer.name for layer in network.layers]
        after = names[names.index("middle_conv") :]
        for layer in network.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                require(not layer.trainable, f"{layer.name} is trainable: keep every BatchNormalization layer frozen")
            elif layer.name in after:
                require(layer.trainable, f"{layer.name} comes after the first layer to tune, and is still frozen")
            else:
                require(not layer.trainable, f"{layer.name} comes before the first layer to tune, and is trainable")
        require(
            isinstance(optimizer, keras.optimizers.Adam),
            f"start_fine_tuning must return a keras.optimizers.Adam, got {type(optimizer).__name__}",
        )
        rate = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
        require(np.isclose(rate, 0.002), "the fine-tuning learning rate should be 10 times smaller than the head's")
        return f"{_trainable_values(network):,} values to tune in the toy network, BatchNormalization frozen"

    return run_check("q3", check, start_fine_tuning)
