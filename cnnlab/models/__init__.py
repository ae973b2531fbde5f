"""Readable Keras 3 builders for the lectures' architectures."""

from cnnlab.models.alexnet import LocalResponseNormalization, alexnet
from cnnlab.models.efficientnet import efficientnet_lite0, efficientnet_lite0_preprocess, mbconv_block
from cnnlab.models.inception import inception_3a, inception_module, inception_module_naive
from cnnlab.models.lenet import lenet5
from cnnlab.models.mlp import convnet, mlp
from cnnlab.models.resnet import basic_block, bottleneck_block, small_resnet
from cnnlab.models.simple_cnn import simple_cnn
from cnnlab.models.vgg import VGG_CONFIGS, vgg, vgg16, vgg19

__all__ = [
    "VGG_CONFIGS",
    "LocalResponseNormalization",
    "alexnet",
    "basic_block",
    "bottleneck_block",
    "convnet",
    "efficientnet_lite0",
    "efficientnet_lite0_preprocess",
    "inception_3a",
    "inception_module",
    "inception_module_naive",
    "lenet5",
    "mbconv_block",
    "mlp",
    "simple_cnn",
    "small_resnet",
    "vgg",
    "vgg16",
    "vgg19",
]
