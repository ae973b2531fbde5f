"""cnnlab: Keras 3 course labs on convolutional neural networks.

The public API, in the order the course meets it::

    import cnnlab
    session = cnnlab.setup()                       # seeds, device, profile
    (x_train, y_train), (x_test, y_test) = cnnlab.load_mnist()
    model = cnnlab.models.convnet()
    print(cnnlab.layer_table(model))
"""

import os

# Hide TensorFlow's C++ start-up chatter (oneDNN, CUDA probing) unless the user asked for it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from cnnlab import augment, models, viz  # noqa: E402
from cnnlab.arithmetic import activation_bytes, conv_macs, conv_params, dense_params, output_size
from cnnlab.data import (
    decode_predictions,
    image_dataset,
    imagenet_class_index,
    load_cifar10,
    load_mnist,
    load_pets,
    load_sample_image,
    scan_image_folder,
)
from cnnlab.layer_table import LayerTable, layer_table
from cnnlab.profiles import Profile, get_profile
from cnnlab.runtime import Session, device_report, seed_everything, setup

__version__ = "0.1.0"

__all__ = [
    "LayerTable",
    "Profile",
    "Session",
    "activation_bytes",
    "augment",
    "conv_macs",
    "conv_params",
    "decode_predictions",
    "dense_params",
    "device_report",
    "get_profile",
    "image_dataset",
    "imagenet_class_index",
    "layer_table",
    "load_cifar10",
    "load_mnist",
    "load_pets",
    "load_sample_image",
    "models",
    "viz",
    "output_size",
    "scan_image_folder",
    "seed_everything",
    "setup",
]
