"""AlexNet: Krizhevsky, Sutskever & Hinton, "ImageNet Classification with Deep Convolutional
Neural Networks", NIPS 2012, as the lecture's simplified single-stream table."""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers

from cnnlab.models.common import check_builder_args, classifier, l2


@keras.saving.register_keras_serializable(package="cnnlab")
class LocalResponseNormalization(layers.Layer):
    """AlexNet's "NORM" layer (section 3.3): divide each activation by
    (k + alpha * sum of squares over ``depth_radius`` neighbouring channels) ** beta.

    The paper uses n = 5 channels (depth_radius 2), k = 2, alpha = 1e-4, beta = 0.75. It has
    no trainable parameters; modern networks use BatchNormalization instead.
    """

    def __init__(self, depth_radius: int = 2, bias: float = 2.0, alpha: float = 1e-4, beta: float = 0.75, **kwargs):
        super().__init__(**kwargs)
        self.depth_radius, self.bias, self.alpha, self.beta = depth_radius, bias, alpha, beta

    def call(self, inputs):
        # TensorFlow's alpha multiplies the plain sum; the paper's alpha is used the same way.
        return tf.nn.local_response_normalization(inputs, self.depth_radius, self.bias, self.alpha, self.beta)

    def get_config(self):
        return {
            **super().get_config(),
            "depth_radius": self.depth_radius,
            "bias": self.bias,
            "alpha": self.alpha,
            "beta": self.beta,
        }


def alexnet(
    input_shape=(227, 227, 3),
    num_classes: int = 1000,
    include_top: bool = True,
    dropout: float = 0.5,
    weight_decay: float = 0.0,
    local_response_norm: bool = True,
) -> keras.Model:
    """AlexNet, single stream: 62,378,344 parameters at 227x227x3 with 1,000 classes.

    =======  =====================  ===========  ==========
    layer    kernel                 output       parameters
    =======  =====================  ===========  ==========
    CONV1    96 of 11x11, stride 4  55x55x96        34,944
    POOL1    max 3x3, stride 2      27x27x96             0
    NORM1    LRN                    27x27x96             0
    CONV2    256 of 5x5, pad 2      27x27x256      614,656
    POOL2    max 3x3, stride 2      13x13x256            0
    NORM2    LRN                    13x13x256            0
    CONV3    384 of 3x3, pad 1      13x13x384      885,120
    CONV4    384 of 3x3, pad 1      13x13x384    1,327,488
    CONV5    256 of 3x3, pad 1      13x13x256      884,992
    POOL3    max 3x3, stride 2      6x6x256              0
    FC6      4096                   4096        37,752,832
    FC7      4096                   4096        16,781,312
    FC8      1000                   1000         4,097,000
    =======  =====================  ===========  ==========

    The paper's 224x224 input does not give a whole-number CONV1 output; 227 does,
    which is why the lecture (CS231n) uses 227. The paper splits the network over two GPUs;
    this is the single-stream version. ``dropout`` (0.5 in the paper) follows FC6 and FC7.
    """
    input_shape = check_builder_args("alexnet", input_shape, num_classes, dropout, weight_decay)
    reg = l2(weight_decay)
    inputs = keras.Input(input_shape, name="image")
    x = layers.Conv2D(96, 11, strides=4, activation="relu", kernel_regularizer=reg, name="conv1")(inputs)
    x = layers.MaxPooling2D(3, strides=2, name="pool1")(x)
    x = LocalResponseNormalization(name="norm1")(x) if local_response_norm else x
    x = layers.Conv2D(256, 5, padding="same", activation="relu", kernel_regularizer=reg, name="conv2")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool2")(x)
    x = LocalResponseNormalization(name="norm2")(x) if local_response_norm else x
    x = layers.Conv2D(384, 3, padding="same", activation="relu", kernel_regularizer=reg, name="conv3")(x)
    x = layers.Conv2D(384, 3, padding="same", activation="relu", kernel_regularizer=reg, name="conv4")(x)
    x = layers.Conv2D(256, 3, padding="same", activation="relu", kernel_regularizer=reg, name="conv5")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool3")(x)
    if include_top:
        x = layers.Flatten(name="flatten")(x)
        x = layers.Dense(4096, activation="relu", kernel_regularizer=reg, name="fc6")(x)
        x = layers.Dropout(dropout, name="fc6_dropout")(x) if dropout else x
        x = layers.Dense(4096, activation="relu", kernel_regularizer=reg, name="fc7")(x)
        x = layers.Dropout(dropout, name="fc7_dropout")(x) if dropout else x
        x = classifier(x, num_classes, name="fc8", weight_decay=weight_decay)
    return keras.Model(inputs, x, name="alexnet")
