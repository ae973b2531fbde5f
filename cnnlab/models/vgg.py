"""VGG: Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
Recognition", ICLR 2015 (arXiv:1409.1556), configurations A to E of Table 1."""

from __future__ import annotations

import keras
from keras import layers

from cnnlab.models.common import check_builder_args, classifier, l2

# Table 1 of the paper, one list per block: (filters, kernel size) of each convolution.
# Every block ends with 2x2 max pooling. Config C adds 1x1 convolutions; D is VGG16, E VGG19.
VGG_CONFIGS = {
    "A": [[(64, 3)], [(128, 3)], [(256, 3)] * 2, [(512, 3)] * 2, [(512, 3)] * 2],
    "B": [[(64, 3)] * 2, [(128, 3)] * 2, [(256, 3)] * 2, [(512, 3)] * 2, [(512, 3)] * 2],
    "C": [
        [(64, 3)] * 2,
        [(128, 3)] * 2,
        [(256, 3)] * 2 + [(256, 1)],
        [(512, 3)] * 2 + [(512, 1)],
        [(512, 3)] * 2 + [(512, 1)],
    ],
    "D": [[(64, 3)] * 2, [(128, 3)] * 2, [(256, 3)] * 3, [(512, 3)] * 3, [(512, 3)] * 3],
    "E": [[(64, 3)] * 2, [(128, 3)] * 2, [(256, 3)] * 4, [(512, 3)] * 4, [(512, 3)] * 4],
}
VGG_NAMES = {"A": "vgg11", "B": "vgg13", "C": "vgg16_c", "D": "vgg16", "E": "vgg19"}


def vgg(
    config: str = "D",
    input_shape=(224, 224, 3),
    num_classes: int = 1000,
    include_top: bool = True,
    dropout: float = 0.5,
    weight_decay: float = 0.0,
    fc_units: int = 4096,
) -> keras.Model:
    """A VGG network, built block by block from Table 1 of the paper.

    Parameters
    ----------
    config : {"A", "B", "C", "D", "E"}
        "D" is VGG16 (138,357,544 parameters at 224x224 with 1,000 classes), "E" is VGG19
        (143,667,240). Layer names match ``keras.applications`` (``block1_conv1`` ...
        ``block5_pool``, ``fc1``, ``fc2``, ``predictions``), so its weights load by name.
    input_shape : (height, width, channels)
        Every block halves the size; 224 gives 7x7x512 after block 5, 32 (CIFAR-10) 1x1x512.
    fc_units : int
        Width of fc1 and fc2 (4096 in the paper; 512 is common for CIFAR-10).
    dropout : float
        Dropout after fc1 and fc2 (0.5 in the paper; keras.applications has none, and
        dropout has no weights, so loading by name is unaffected).
    weight_decay : float
        L2 penalty on every kernel (the paper trains with 5e-4).

    Returns
    -------
    keras.Model
        Input (batch, H, W, 3) -> (batch, num_classes), or the block-5 pooled features
        (batch, H/32, W/32, 512) when ``include_top=False``.
    """
    if config not in VGG_CONFIGS:
        raise ValueError(f"vgg: `config` must be one of {sorted(VGG_CONFIGS)}, got {config!r}")
    input_shape = check_builder_args("vgg", input_shape, num_classes, dropout, weight_decay)
    reg = l2(weight_decay)
    inputs = keras.Input(input_shape, name="input_layer")
    x = inputs
    for block, convolutions in enumerate(VGG_CONFIGS[config], start=1):
        for index, (filters, kernel) in enumerate(convolutions, start=1):
            x = layers.Conv2D(
                filters,
                kernel,
                padding="same",
                activation="relu",
                kernel_regularizer=reg,
                name=f"block{block}_conv{index}",
            )(x)
        x = layers.MaxPooling2D(2, strides=2, name=f"block{block}_pool")(x)
    if include_top:
        x = layers.Flatten(name="flatten")(x)
        x = layers.Dense(fc_units, activation="relu", kernel_regularizer=reg, name="fc1")(x)
        x = layers.Dropout(dropout, name="fc1_dropout")(x) if dropout else x
        x = layers.Dense(fc_units, activation="relu", kernel_regularizer=reg, name="fc2")(x)
        x = layers.Dropout(dropout, name="fc2_dropout")(x) if dropout else x
        x = classifier(x, num_classes, weight_decay=weight_decay)
    return keras.Model(inputs, x, name=VGG_NAMES[config])


def vgg16(**kwargs) -> keras.Model:
    """VGG16 (configuration D); see :func:`vgg`."""
    return vgg("D", **kwargs)


def vgg19(**kwargs) -> keras.Model:
    """VGG19 (configuration E); see :func:`vgg`."""
    return vgg("E", **kwargs)
