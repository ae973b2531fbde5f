"""Argument checks and the classifier head shared by every builder."""

from __future__ import annotations

import keras
from keras import layers


def check_builder_args(builder: str, input_shape, num_classes: int, dropout: float, weight_decay: float) -> tuple:
    """Validate the arguments every builder takes; return ``input_shape`` as a tuple."""
    try:
        shape = tuple(int(d) for d in input_shape)
    except TypeError:
        shape = ()
    if len(shape) != 3 or any(d < 1 for d in shape) or tuple(input_shape) != shape:
        raise ValueError(
            f"{builder}: `input_shape` must be (height, width, channels) of positive integers, got {input_shape!r}"
        )
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"{builder}: `num_classes` must be a positive integer, got {num_classes!r}")
    if not 0 <= dropout < 1:
        raise ValueError(f"{builder}: `dropout` must be in [0, 1), got {dropout!r}")
    if weight_decay < 0:
        raise ValueError(f"{builder}: `weight_decay` must be >= 0, got {weight_decay!r}")
    return shape


def l2(weight_decay: float):
    """An L2 penalty ``weight_decay * sum(w**2)`` on kernels, or None when it is 0."""
    return keras.regularizers.L2(weight_decay) if weight_decay else None


def classifier(x, num_classes: int, name: str = "predictions", weight_decay: float = 0.0):
    """The output layer: softmax over ``num_classes``, or one sigmoid unit when ``num_classes == 1``."""
    activation = "sigmoid" if num_classes == 1 else "softmax"
    return layers.Dense(num_classes, activation=activation, kernel_regularizer=l2(weight_decay), name=name)(x)
