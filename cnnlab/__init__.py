"""cnnlab: Keras 3 course labs on convolutional neural networks.

The public API, in the order the course meets it::

    import cnnlab
    session = cnnlab.setup()                       # seeds, device, profile
    (x_train, y_train), (x_test, y_test) = cnnlab.load_mnist()
    model = cnnlab.models.convnet()
    print(cnnlab.layer_table(model))
"""

from cnnlab.tf_logging import quiet_tensorflow_import

# Before anything imports TensorFlow (import cnnlab before keras): its C++ start-up notices
# (absl, CUDA probing, oneDNN, CPU flags) would otherwise fill the first cell's output.
# TF_CPP_MIN_LOG_LEVEL is set where the user has not set it; errors stay visible.
quiet_tensorflow_import()

# Submodules and names are imported on first use (PEP 562), so that the parts that never
# touch TensorFlow (the data layer, the grader's trusted processes, the command line) start
# quickly and small; `cnnlab.models`, `cnnlab.setup()` and the rest work as before.
_LAZY = {
    "augment": "cnnlab.augment",
    "models": "cnnlab.models",
    "viz": "cnnlab.viz",
    "data": "cnnlab.data",
    "arithmetic": "cnnlab.arithmetic",
    "activation_bytes": "cnnlab.arithmetic",
    "conv_macs": "cnnlab.arithmetic",
    "conv_params": "cnnlab.arithmetic",
    "dense_params": "cnnlab.arithmetic",
    "output_size": "cnnlab.arithmetic",
    "decode_predictions": "cnnlab.data",
    "image_dataset": "cnnlab.data",
    "imagenet_class_index": "cnnlab.data",
    "load_cifar10": "cnnlab.data",
    "load_mnist": "cnnlab.data",
    "load_pets": "cnnlab.data",
    "load_sample_image": "cnnlab.data",
    "scan_image_folder": "cnnlab.data",
    "LayerTable": "cnnlab.layer_table",
    "layer_table": "cnnlab.layer_table",
    "Profile": "cnnlab.profiles",
    "get_profile": "cnnlab.profiles",
    "Session": "cnnlab.runtime",
    "device_report": "cnnlab.runtime",
    "seed_everything": "cnnlab.runtime",
    "setup": "cnnlab.runtime",
}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'cnnlab' has no attribute {name!r}")
    import importlib

    module = importlib.import_module(_LAZY[name])
    # Importing cnnlab.layer_table binds the module to the name `layer_table` here; the function
    # of the same name is what is meant (whichever of its module's names is asked for first).
    short = module.__name__.rpartition(".")[2]
    if short in _LAZY and hasattr(module, short):
        globals()[short] = getattr(module, short)
    value = getattr(module, name, module)  # a submodule, unless it defines the name
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


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
