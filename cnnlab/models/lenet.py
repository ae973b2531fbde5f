"""LeNet-5: LeCun, Bottou, Bengio & Haffner, "Gradient-based learning applied to document
recognition", Proc. IEEE 86(11), 1998."""

from __future__ import annotations

import keras
from keras import layers

from cnnlab.models.common import check_builder_args, classifier, l2

VARIANTS = ("classic", "modern")


def lenet5(
    input_shape=(32, 32, 1),
    num_classes: int = 10,
    variant: str = "classic",
    include_top: bool = True,
    dropout: float = 0.0,
    weight_decay: float = 0.0,
) -> keras.Model:
    """LeNet-5, about 60k parameters (61,706 here).

    ======  ==================  ===========  ==========
    layer   kernel / units      output       parameters
    ======  ==================  ===========  ==========
    C1      6 of 5x5            28x28x6          156
    S2      pool 2x2            14x14x6            0
    C3      16 of 5x5           10x10x16       2,416
    S4      pool 2x2            5x5x16             0
    C5      120 of 5x5          1x1x120       48,120
    F6      84                  84            10,164
    output  10                  10               850
    ======  ==================  ===========  ==========

    ``variant="classic"`` uses tanh and average pooling as in the paper; ``"modern"`` uses
    ReLU and max pooling. Two simplifications, both standard: C3 connects to all six S2
    maps (the paper's sparse table gives 1,516 instead of 2,416 parameters), and the output
    is a softmax layer instead of the paper's RBF units. The paper's digits are 28x28
    centred in a 32x32 field: pad MNIST by 2 pixels on each side.
    """
    input_shape = check_builder_args("lenet5", input_shape, num_classes, dropout, weight_decay)
    if variant not in VARIANTS:
        raise ValueError(f"lenet5: `variant` must be one of {VARIANTS}, got {variant!r}")
    activation = "tanh" if variant == "classic" else "relu"
    pool = layers.AveragePooling2D if variant == "classic" else layers.MaxPooling2D
    inputs = keras.Input(input_shape, name="image")
    x = layers.Conv2D(6, 5, activation=activation, kernel_regularizer=l2(weight_decay), name="C1")(inputs)
    x = pool(2, name="S2")(x)
    x = layers.Conv2D(16, 5, activation=activation, kernel_regularizer=l2(weight_decay), name="C3")(x)
    x = pool(2, name="S4")(x)
    x = layers.Conv2D(120, 5, activation=activation, kernel_regularizer=l2(weight_decay), name="C5")(x)
    if include_top:
        x = layers.Flatten(name="flatten")(x)
        x = layers.Dense(84, activation=activation, kernel_regularizer=l2(weight_decay), name="F6")(x)
        x = layers.Dropout(dropout, name="dropout")(x) if dropout else x
        x = classifier(x, num_classes, name="output", weight_decay=weight_decay)
    return keras.Model(inputs, x, name=f"lenet5_{variant}")
