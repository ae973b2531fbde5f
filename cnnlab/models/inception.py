"""The GoogLeNet inception module: Szegedy et al., "Going Deeper with Convolutions",
CVPR 2015 (arXiv:1409.4842), Figure 2 (naive, and with dimension reductions) and Table 1."""

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


def inception_module_naive(x, filters_1x1: int, filters_3x3: int, filters_5x5: int, name: str = "naive"):
    """The naive inception module (Figure 2(a)): no 1x1 reductions and no pool projection.

    (batch, H, W, C) -> (batch, H, W, filters_1x1 + filters_3x3 + filters_5x5 + C). The 3x3 and
    5x5 convolutions see all C input channels, and the pooled input passes through whole, so
    the output is wider than the input and the next module pays for it.
    """

    def conv(tensor, filters, size, branch):
        return layers.Conv2D(filters, size, padding="same", activation="relu", name=f"{name}_{branch}")(tensor)

    pooled = layers.MaxPooling2D(3, strides=1, padding="same", name=f"{name}_pool")(x)
    branches = [conv(x, filters_1x1, 1, "1x1"), conv(x, filters_3x3, 3, "3x3"), conv(x, filters_5x5, 5, "5x5"), pooled]
    return layers.Concatenate(name=f"{name}_output")(branches)


def inception_3a(input_shape=(28, 28, 192), reductions: bool = True) -> keras.Model:
    """GoogLeNet's inception (3a) on its 28x28x192 input: output 28x28x256.

    Its weights, from the layer definitions in Table 1, number 163,328 without biases
    (192*64 + 192*96 + 9*96*128 + 192*16 + 25*16*32 + 192*32), 163,696 with the 368 biases;
    28*28*163,328 = 128 M multiply-adds, the table's "128M". The table prints "159K" for the
    weights; it does not show how that figure was computed, and summing its own filter counts
    gives 163,328.

    With ``reductions=False``, the naive module of Figure 2(a) with the same 1x1, 3x3 and 5x5
    widths (64, 128, 32): no 1x1 reductions, no pool projection, output 28x28x416.
    """
    inputs = keras.Input(input_shape, name="input")
    if not reductions:
        outputs = inception_module_naive(inputs, 64, 128, 32, name="inception_3a_naive")
        return keras.Model(inputs, outputs, name="inception_3a_naive")
    outputs = inception_module(inputs, 64, 96, 128, 16, 32, 32, name="inception_3a")
    return keras.Model(inputs, outputs, name="inception_3a")
