"""The GoogLeNet inception module: Szegedy et al., "Going Deeper with Convolutions",
CVPR 2015 (arXiv:1409.4842), Figure 2(b) and Table 1."""

from __future__ import annotations

import keras
from keras import layers

from cnnlab.models.common import l2


def inception_module(
    x,
    filters_1x1: int,
    filters_3x3_reduce: int,
    filters_3x3: int,
    filters_5x5_reduce: int,
    filters_5x5: int,
    filters_pool_proj: int,
    name: str = "inception",
    weight_decay: float = 0.0,
):
    """Four parallel branches, concatenated along channels.

    (batch, H, W, C) -> (batch, H, W, filters_1x1 + filters_3x3 + filters_5x5 + filters_pool_proj).
    The 1x1 "reduce" convolutions shrink the channels before the expensive 3x3 and 5x5 ones.
    """
    reg = l2(weight_decay)

    def conv(tensor, filters, size, branch):
        return layers.Conv2D(
            filters, size, padding="same", activation="relu", kernel_regularizer=reg, name=f"{name}_{branch}"
        )(tensor)

    branch_1x1 = conv(x, filters_1x1, 1, "1x1")
    branch_3x3 = conv(conv(x, filters_3x3_reduce, 1, "3x3_reduce"), filters_3x3, 3, "3x3")
    branch_5x5 = conv(conv(x, filters_5x5_reduce, 1, "5x5_reduce"), filters_5x5, 5, "5x5")
    pooled = layers.MaxPooling2D(3, strides=1, padding="same", name=f"{name}_pool")(x)
    branch_pool = conv(pooled, filters_pool_proj, 1, "pool_proj")
    return layers.Concatenate(name=f"{name}_output")([branch_1x1, branch_3x3, branch_5x5, branch_pool])


def inception_3a(input_shape=(28, 28, 192)) -> keras.Model:
    """GoogLeNet's inception (3a) on its 28x28x192 input: output 28x28x256.

    Its weights, from the layer definitions in Table 1, number 163,328 without biases
    (192*64 + 192*96 + 9*96*128 + 192*16 + 25*16*32 + 192*32), 163,696 with the 368 biases.
    The paper's table prints "159K" for this row; the table does not show how that figure
    was computed, and summing its own filter counts gives 163,328.
    """
    inputs = keras.Input(input_shape, name="input")
    outputs = inception_module(inputs, 64, 96, 128, 16, 32, 32, name="inception_3a")
    return keras.Model(inputs, outputs, name="inception_3a")
