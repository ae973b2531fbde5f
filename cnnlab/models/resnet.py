"""Residual networks: He, Zhang, Ren & Sun, "Deep Residual Learning for Image Recognition",
CVPR 2016 (arXiv:1512.03385)."""

from __future__ import annotations

import keras
from keras import layers

from cnnlab.models.common import check_builder_args, classifier, l2


def _shortcut(x, filters: int, stride: int, name: str, weight_decay: float):
    """Identity when the shape is unchanged, else a 1x1 projection (the paper's option B)."""
    if stride == 1 and x.shape[-1] == filters:
        return x
    x = layers.Conv2D(
        filters, 1, strides=stride, use_bias=False, kernel_regularizer=l2(weight_decay), name=f"{name}_proj_conv"
    )(x)
    return layers.BatchNormalization(name=f"{name}_proj_bn")(x)


def basic_block(x, filters: int, stride: int = 1, name: str = "block", weight_decay: float = 0.0):
    """Two 3x3 convolutions and a shortcut (Fig. 2 / Fig. 5 left of the paper).

    (batch, H, W, C) -> (batch, H/stride, W/stride, filters); output = ReLU(F(x) + shortcut(x)).
    """
    shortcut = _shortcut(x, filters, stride, name, weight_decay)
    x = layers.Conv2D(
        filters,
        3,
        strides=stride,
        padding="same",
        use_bias=False,
        kernel_regularizer=l2(weight_decay),
        name=f"{name}_conv1",
    )(x)
    x = layers.BatchNormalization(name=f"{name}_bn1")(x)
    x = layers.ReLU(name=f"{name}_relu1")(x)
    x = layers.Conv2D(
        filters, 3, padding="same", use_bias=False, kernel_regularizer=l2(weight_decay), name=f"{name}_conv2"
    )(x)
    x = layers.BatchNormalization(name=f"{name}_bn2")(x)
    x = layers.Add(name=f"{name}_add")([x, shortcut])
    return layers.ReLU(name=f"{name}_out")(x)


def bottleneck_block(x, filters: int, stride: int = 1, name: str = "block", weight_decay: float = 0.0):
    """1x1 reduce, 3x3, 1x1 expand to 4*filters, and a shortcut (Fig. 5 right; ResNet-50/101/152).

    (batch, H, W, C) -> (batch, H/stride, W/stride, 4*filters).
    """
    expanded = 4 * filters
    shortcut = _shortcut(x, expanded, stride, name, weight_decay)
    x = layers.Conv2D(
        filters, 1, strides=stride, use_bias=False, kernel_regularizer=l2(weight_decay), name=f"{name}_conv1"
    )(x)
    x = layers.BatchNormalization(name=f"{name}_bn1")(x)
    x = layers.ReLU(name=f"{name}_relu1")(x)
    x = layers.Conv2D(
        filters, 3, padding="same", use_bias=False, kernel_regularizer=l2(weight_decay), name=f"{name}_conv2"
    )(x)
    x = layers.BatchNormalization(name=f"{name}_bn2")(x)
    x = layers.ReLU(name=f"{name}_relu2")(x)
    x = layers.Conv2D(expanded, 1, use_bias=False, kernel_regularizer=l2(weight_decay), name=f"{name}_conv3")(x)
    x = layers.BatchNormalization(name=f"{name}_bn3")(x)
    x = layers.Add(name=f"{name}_add")([x, shortcut])
    return layers.ReLU(name=f"{name}_out")(x)


def small_resnet(
    input_shape=(32, 32, 3),
    num_classes: int = 10,
    blocks_per_stage: int = 3,
    include_top: bool = True,
    dropout: float = 0.0,
    weight_decay: float = 1e-4,
) -> keras.Model:
    """The paper's CIFAR-10 ResNet (section 4.2): 6n + 2 layers, ResNet-20 for n = 3.

    A 3x3 conv with 16 filters, then three stages of ``blocks_per_stage`` basic blocks with
    16, 32 and 64 filters on 32x32, 16x16 and 8x8 maps, then global average pooling and the
    classifier. Where the shape changes this uses 1x1 projections (option B), where the paper
    used zero-padded identities (option A) for CIFAR; that adds about 3k parameters.
    """
    input_shape = check_builder_args("small_resnet", input_shape, num_classes, dropout, weight_decay)
    inputs = keras.Input(input_shape, name="image")
    x = layers.Conv2D(16, 3, padding="same", use_bias=False, kernel_regularizer=l2(weight_decay), name="stem_conv")(
        inputs
    )
    x = layers.BatchNormalization(name="stem_bn")(x)
    x = layers.ReLU(name="stem_relu")(x)
    for stage, filters in enumerate((16, 32, 64), start=1):
        for block in range(1, blocks_per_stage + 1):
            stride = 2 if stage > 1 and block == 1 else 1
            x = basic_block(x, filters, stride, name=f"stage{stage}_block{block}", weight_decay=weight_decay)
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = layers.Dropout(dropout, name="dropout")(x) if dropout else x
        x = classifier(x, num_classes, weight_decay=weight_decay)
    return keras.Model(inputs, x, name=f"resnet{6 * blocks_per_stage + 2}")
