"""Read what the sandbox exported, trusting none of it.

- Files are opened relative to a directory descriptor with ``O_NOFOLLOW``: a symlink planted
  by the student is refused, never followed. Only regular files under a size cap are read.
- Arrays are loaded with ``allow_pickle=False``.
- Models are rebuilt from their JSON config only after every object in it has been checked
  against an allow-list of built-in Keras layers, initializers and regularizers; a Lambda, a
  custom or unknown layer, or any foreign module is rejected before Keras sees the config.
  (``keras.models.load_model`` has had code-execution bugs even with ``safe_mode=True``,
  CVE-2025-1550 and CVE-2025-9906; nothing here loads a saved model file.)
"""

from __future__ import annotations

import io
import json
import os
import stat

import numpy as np

ALLOWED_LAYERS = {
    "InputLayer", "Conv2D", "DepthwiseConv2D", "SeparableConv2D", "Dense", "MaxPooling2D", "AveragePooling2D",
    "GlobalAveragePooling2D", "GlobalMaxPooling2D", "Flatten", "Reshape", "Dropout", "SpatialDropout2D",
    "BatchNormalization", "ReLU", "Activation", "Softmax", "Add", "Concatenate", "Rescaling", "ZeroPadding2D",
}  # fmt: skip
ALLOWED_ACTIVATIONS = {
    "relu",
    "softmax",
    "sigmoid",
    "tanh",
    "linear",
    "elu",
    "selu",
    "gelu",
    "swish",
    "silu",
    "softplus",
    "relu6",
    None,
}
ALLOWED_OBJECTS = {
    ("keras.src.models.functional", "Functional"),
    ("keras", "Functional"),
    ("keras", "Sequential"),
    ("keras.src.models.sequential", "Sequential"),
    ("keras", "DTypePolicy"),
    (None, "__keras_tensor__"),
    *{("keras.layers", name) for name in ALLOWED_LAYERS},
    *{
        ("keras.initializers", name)
        for name in (
            "GlorotUniform",
            "GlorotNormal",
            "HeNormal",
            "HeUniform",
            "Zeros",
            "Ones",
            "RandomNormal",
            "RandomUniform",
            "TruncatedNormal",
            "Constant",
            "LecunNormal",
            "LecunUniform",
            "Orthogonal",
            "VarianceScaling",
        )
    },
    *{("keras.regularizers", name) for name in ("L1", "L2", "L1L2")},
}
MAX_UNITS = 1 << 16  # Dense units or conv filters: guards the trusted process against a memory bomb
MAX_DEPTH = 64


class Rejected(Exception):
    """An export that the grader refuses to use; the message says why, for the feedback."""


def open_directory(path) -> int:
    """A descriptor for the export folder itself, refusing a symlink."""
    try:
        return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as error:
        raise Rejected(f"the export folder is missing or not a folder ({error.strerror})") from None


def read_bytes(directory: int, name: str, max_bytes: int) -> bytes:
    """The bytes of a regular file ``name`` in ``directory``, at most ``max_bytes``."""
    if "/" in name or name.startswith("."):
        raise ValueError(f"bad export name {name!r}")
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=directory)
    except FileNotFoundError:
        raise Rejected(f"{name} was not exported") from None
    except OSError as error:
        raise Rejected(f"{name} cannot be read safely ({error.strerror})") from None
    with os.fdopen(fd, "rb") as stream:
        info = os.fstat(stream.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise Rejected(f"{name} is not a regular file")
        if info.st_size > max_bytes:
            raise Rejected(f"{name} is {info.st_size:,} bytes, over the {max_bytes:,}-byte limit")
        data = stream.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise Rejected(f"{name} is over the {max_bytes:,}-byte limit")
    return data


def read_json(directory: int, name: str, max_bytes: int):
    try:
        return json.loads(read_bytes(directory, name, max_bytes))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise Rejected(f"{name} is not valid JSON") from None


def read_array(directory: int, name: str, max_bytes: int) -> np.ndarray:
    try:
        array = np.load(io.BytesIO(read_bytes(directory, name, max_bytes)), allow_pickle=False)
    except (ValueError, OSError, EOFError):
        raise Rejected(f"{name} is not a plain .npy array") from None
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "biuf":
        raise Rejected(f"{name} is not a numeric array")
    return array


def read_arrays(directory: int, name: str, max_bytes: int) -> list[np.ndarray]:
    try:
        with np.load(io.BytesIO(read_bytes(directory, name, max_bytes)), allow_pickle=False) as archive:
            keys = sorted(
                archive.files, key=lambda k: int(k.split("_")[1]) if k.startswith("arr_") and k[4:].isdigit() else -1
            )
            if keys != [f"arr_{i}" for i in range(len(keys))]:
                raise Rejected(f"{name} does not hold weight arrays arr_0, arr_1, ...")
            arrays = [archive[k] for k in keys]
    except (ValueError, OSError, EOFError, KeyError):
        raise Rejected(f"{name} is not a plain .npz archive") from None
    if any(a.dtype.kind not in "biuf" for a in arrays):
        raise Rejected(f"{name} holds non-numeric arrays")
    return arrays


def check_config(node, depth: int = 0, key: str = "") -> None:
    """Raise :class:`Rejected` unless every object in a model config is on the allow-list."""
    if depth > MAX_DEPTH:
        raise Rejected("the model config is nested too deeply")
    if isinstance(node, dict):
        if "class_name" in node:
            module, name = node.get("module"), node.get("class_name")
            if (module, name) not in ALLOWED_OBJECTS:
                what = f"{name!r}" + (f" from {module!r}" if module else "")
                raise Rejected(
                    f"the model uses {what}, which is not one of the built-in Keras layers the grader rebuilds"
                )
            if node.get("registered_name") not in (None, name):
                raise Rejected(f"the model registers a custom object {node.get('registered_name')!r}")
        for k, value in node.items():
            if k in ("function", "function_type", "module") and not (k == "module" and isinstance(value, str)):
                raise Rejected(f"the model config has a {k!r} entry (Lambda or custom code)")
            if k == "activation" and value not in ALLOWED_ACTIVATIONS:
                raise Rejected(f"activation {value!r} is not a built-in activation the grader allows")
            if k in ("units", "filters") and (not isinstance(value, int) or not 0 < value <= MAX_UNITS):
                raise Rejected(f"{k}={value!r} is out of range")
            check_config(value, depth + 1, k)
    elif isinstance(node, list):
        for item in node:
            check_config(item, depth + 1, key)
    elif not isinstance(node, (str, int, float, bool, type(None))):
        raise Rejected("the model config holds a value that is not plain data")


def rebuild_model(directory: int, name: str, max_bytes: int):
    """Rebuild the exported model ``name`` (``name.model.json`` + ``name.weights.npz``)."""
    import keras

    config = read_json(directory, f"{name}.model.json", max_bytes)
    if isinstance(config, dict):
        config.pop("compile_config", None)  # the optimizer and loss play no part in predictions
    check_config(config)
    if (
        not isinstance(config, dict)
        or (config.get("module"), config.get("class_name")) not in ALLOWED_OBJECTS
        or config.get("class_name") not in ("Functional", "Sequential")
    ):
        raise Rejected("the export is not a Keras Functional or Sequential model")
    try:
        model = keras.models.model_from_json(json.dumps(config))
    except Exception as error:  # a config that passed the allow-list but does not build
        raise Rejected(f"the model config does not build ({type(error).__name__})") from None
    weights = read_arrays(directory, f"{name}.weights.npz", max_bytes)
    expected = [tuple(w.shape) for w in model.get_weights()]
    if [tuple(w.shape) for w in weights] != expected:
        raise Rejected("the exported weights do not match the model's layers")
    model.set_weights(weights)
    return model
