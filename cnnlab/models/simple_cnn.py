"""The lecture's 4-level "simple CNN" for cats vs dogs: four conv/pool levels and a dense head.

The same network is built in F. Chollet, "Deep Learning with Python" (Manning, 2018), §5.2,
for 150x150 cat and dog photos.
"""

from __future__ import annotations

import keras
from keras import layers

from cnnlab.models.common import check_builder_args, classifier, l2


def simple_cnn(
    input_shape=(150, 150, 3),
    num_classes: int = 1,
    include_top: bool = True,
    dropout: float = 0.0,
    weight_decay: float = 0.0,
) -> keras.Model:
    """Four levels of 3x3 conv (32, 64, 128, 128 filters) + 2x2 max pooling, Dense 512, output.

    True counts at 150x150x3 with one sigmoid output (3,453,121 parameters in all):

    =======  ============  ==========
    layer    output        parameters
    =======  ============  ==========
    conv1    148x148x32          896
    pool1    74x74x32              0
    conv2    72x72x64         18,496
    pool2    36x36x64              0
    conv3    34x34x128        73,856
    pool3    17x17x128             0
    conv4    15x15x128       147,584
    pool4    7x7x128               0
    flatten  6272                  0
    dense    512           3,211,776
    output   1                   513
    =======  ============  ==========

    Slide tables of this network are often miscounted (forgetting the biases, or taking the
    pooled size 17 -> 8 instead of 7); these numbers come from the layer definitions and are
    checked by the tests against Keras's own count.
    """
    input_shape = check_builder_args("simple_cnn", input_shape, num_classes, dropout, weight_decay)
    reg = l2(weight_decay)
    inputs = keras.Input(input_shape, name="image")
    x = inputs
    for level, filters in enumerate((32, 64, 128, 128), start=1):
        x = layers.Conv2D(filters, 3, activation="relu", kernel_regularizer=reg, name=f"conv{level}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{level}")(x)
    if include_top:
        x = layers.Flatten(name="flatten")(x)
        x = layers.Dropout(dropout, name="dropout")(x) if dropout else x
        x = layers.Dense(512, activation="relu", kernel_regularizer=reg, name="dense")(x)
        x = classifier(x, num_classes, name="output", weight_decay=weight_decay)
    return keras.Model(inputs, x, name="simple_cnn")
