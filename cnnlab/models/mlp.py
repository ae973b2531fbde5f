"""The lecture's two MNIST models: a multilayer perceptron and a small ConvNet."""

from __future__ import annotations

import keras
from keras import layers

from cnnlab.models.common import check_builder_args, classifier, l2


def mlp(
    input_shape=(28, 28, 1),
    num_classes: int = 10,
    hidden_units: int = 256,
    include_top: bool = True,
    dropout: float = 0.0,
    weight_decay: float = 0.0,
) -> keras.Model:
    """Flatten -> Dense 256 (ReLU) -> Dense 10 (softmax): 203,530 parameters on MNIST.

    Input (batch, 28, 28, 1); output (batch, num_classes) probabilities, or the hidden
    layer's (batch, hidden_units) when ``include_top=False``.
    Parameters: (784 + 1) * 256 + (256 + 1) * 10 = 203,530.
    """
    input_shape = check_builder_args("mlp", input_shape, num_classes, dropout, weight_decay)
    inputs = keras.Input(input_shape, name="image")
    x = layers.Flatten(name="flatten")(inputs)
    x = layers.Dense(hidden_units, activation="relu", kernel_regularizer=l2(weight_decay), name="hidden")(x)
    if include_top:
        x = layers.Dropout(dropout, name="dropout")(x) if dropout else x
        x = classifier(x, num_classes, weight_decay=weight_decay)
    return keras.Model(inputs, x, name="mlp")


def convnet(
    input_shape=(28, 28, 1),
    num_classes: int = 10,
    include_top: bool = True,
    dropout: float = 0.0,
    weight_decay: float = 0.0,
) -> keras.Model:
    """The lecture ConvNet: 431,754 parameters on MNIST.

    ==========  ===============  ===========  ==========
    layer       kernel / units   output       parameters
    ==========  ===============  ===========  ==========
    conv1       32 of 5x5, ReLU  24x24x32          832
    pool1       max 2x2          12x12x32            0
    conv2       64 of 3x3, ReLU  10x10x64       18,496
    pool2       max 2x2          5x5x64              0
    flatten                      1600                0
    dense       256, ReLU        256           409,856
    predictions 10, softmax      10              2,570
    ==========  ===============  ===========  ==========

    After LeCun et al., "Gradient-based learning applied to document recognition", 1998,
    with ReLU and max pooling.
    """
    input_shape = check_builder_args("convnet", input_shape, num_classes, dropout, weight_decay)
    inputs = keras.Input(input_shape, name="image")
    x = layers.Conv2D(32, 5, activation="relu", kernel_regularizer=l2(weight_decay), name="conv1")(inputs)
    x = layers.MaxPooling2D(2, name="pool1")(x)
    x = layers.Conv2D(64, 3, activation="relu", kernel_regularizer=l2(weight_decay), name="conv2")(x)
    x = layers.MaxPooling2D(2, name="pool2")(x)
    if include_top:
        x = layers.Flatten(name="flatten")(x)
        x = layers.Dense(256, activation="relu", kernel_regularizer=l2(weight_decay), name="dense")(x)
        x = layers.Dropout(dropout, name="dropout")(x) if dropout else x
        x = classifier(x, num_classes, weight_decay=weight_decay)
    return keras.Model(inputs, x, name="convnet")
