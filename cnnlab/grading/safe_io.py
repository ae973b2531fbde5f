"""Read what the sandbox exported, trusting none of it, and sizes first.

- The exports are read through a directory descriptor that the grader opened on the
  sandbox's exports folder before any student code ran. Files are opened relative to it
  with ``O_NOFOLLOW`` and must be regular files: a planted symlink, FIFO or folder is refused.
  :func:`inventory` counts the files and adds up their sizes before any is read.
- Arrays are never unpickled: the ``.npy`` header is parsed first, and the shape and type
  it declares are checked against the question's budget and the file's size before the data
  is read.
- Models are rebuilt from their JSON config only after every object in it has passed an
  allow-list of built-in Keras layers, initializers and regularizers, and after their size
  (parameters, activations) has been worked out from the config and found within budget
  (:mod:`~cnnlab.grading.modelsize`); the weight arrays' headers must add up to exactly those
  parameters. (``keras.models.load_model`` has had code-execution bugs even with
  ``safe_mode=True``, CVE-2025-1550 and CVE-2025-9906; nothing here loads a saved model file.)
- Messages are the grader's own sentences: a name, a class or a string that came from the
  export never appears in them, only numbers and members of fixed vocabularies.
"""

from __future__ import annotations

import ast
import io
import json
import math
import os
import stat
import zipfile

import numpy as np

from cnnlab.grading.modelsize import SizeError, model_size

ALLOWED_LAYERS = {
    "InputLayer", "Conv2D", "DepthwiseConv2D", "SeparableConv2D", "Dense", "MaxPooling2D", "AveragePooling2D",
    "GlobalAveragePooling2D", "GlobalMaxPooling2D", "Flatten", "Reshape", "Dropout", "SpatialDropout2D",
    "BatchNormalization", "ReLU", "Activation", "Softmax", "Add", "Concatenate", "Rescaling", "ZeroPadding2D",
}  # fmt: skip
ALLOWED_ACTIVATIONS = {
    "relu", "softmax", "sigmoid", "tanh", "linear", "elu", "selu", "gelu", "swish", "silu", "softplus", "relu6", None,
}  # fmt: skip
INITIALIZERS = (
    "GlorotUniform", "GlorotNormal", "HeNormal", "HeUniform", "Zeros", "Ones", "RandomNormal", "RandomUniform",
    "TruncatedNormal", "Constant", "LecunNormal", "LecunUniform", "Orthogonal", "VarianceScaling",
)  # fmt: skip
ALLOWED_OBJECTS = {
    ("keras.src.models.functional", "Functional"),
    ("keras", "Functional"),
    ("keras", "Sequential"),
    ("keras.src.models.sequential", "Sequential"),
    ("keras", "DTypePolicy"),
    (None, "__keras_tensor__"),
    *{("keras.layers", name) for name in ALLOWED_LAYERS},
    *{("keras.initializers", name) for name in INITIALIZERS},
    *{("keras.regularizers", name) for name in ("L1", "L2", "L1L2")},
}
MAX_DEPTH = 64
MAX_JSON_BYTES = 8 << 20
NUMERIC_KINDS = "biuf"


class Rejected(Exception):
    """An export that the grader refuses to use; the message (the grader's words) says why."""


class OverBudget(Rejected):
    """An export larger than its question allows: the whole question scores zero."""


# -- files ------------------------------------------------------------------------------------


def _checked_name(name: str) -> str:
    if not name or "/" in name or name.startswith(".") or len(name) > 128:
        raise ValueError(f"bad export name {name!r}")  # the hidden tests' own mistake
    return name


def inventory(directory: int, max_count: int, max_total: int) -> dict[str, int]:
    """The regular files in the exports and their sizes, refusing the whole folder when it
    holds more files or bytes than allowed. Nothing is read."""
    try:
        names = os.listdir(directory)
    except OSError:
        raise Rejected("the exports folder could not be read") from None
    if len(names) > max_count:
        raise Rejected(f"the run left {len(names):,} files in the exports, over the grader's limit of {max_count:,}")
    sizes = {}
    for name in names:
        try:
            info = os.stat(name, dir_fd=directory, follow_symlinks=False)
        except OSError:
            continue
        if stat.S_ISREG(info.st_mode):
            sizes[name] = info.st_size
    total = sum(sizes.values())
    if total > max_total:
        raise Rejected(f"the exports hold {total:,} bytes, over the grader's limit of {max_total:,}")
    return sizes


def open_file(directory: int, name: str, max_bytes: int) -> io.BufferedReader:
    """A regular file ``name`` in ``directory``, at most ``max_bytes`` long, opened without
    following links and without blocking on a FIFO."""
    _checked_name(name)
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=directory)
    except FileNotFoundError:
        raise Rejected(f"{name} was not exported") from None
    except OSError:
        raise Rejected(f"{name} could not be opened safely (a link, or not readable)") from None
    stream = os.fdopen(fd, "rb")
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        stream.close()
        raise Rejected(f"{name} is not a regular file")
    if info.st_size > max_bytes:
        stream.close()
        raise OverBudget(f"{name} is {info.st_size:,} bytes, over this question's limit of {max_bytes:,}")
    return stream


def read_bytes(directory: int, name: str, max_bytes: int) -> bytes:
    with open_file(directory, name, max_bytes) as stream:
        data = stream.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise OverBudget(f"{name} is over this question's limit of {max_bytes:,} bytes")
    return data


# -- JSON -------------------------------------------------------------------------------------


def _depth_ok(value, limit: int) -> bool:
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return False
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return True


def read_json(directory: int, name: str, max_bytes: int = MAX_JSON_BYTES):
    """A JSON value, at most ``max_bytes`` long and nested at most ``MAX_DEPTH`` deep."""
    data = read_bytes(directory, name, min(max_bytes, MAX_JSON_BYTES))
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise Rejected(f"{name} is not valid JSON") from None
    if not _depth_ok(value, MAX_DEPTH):
        raise Rejected(f"{name} is nested too deeply")
    return value


# -- arrays -----------------------------------------------------------------------------------


def _npy_header(stream, what: str) -> tuple[tuple, np.dtype, bool]:
    """Shape, type and order declared by a ``.npy`` header, read without unpickling anything."""
    try:
        magic = stream.read(8)
        if len(magic) != 8 or magic[:6] != b"\x93NUMPY":
            raise ValueError
        size_bytes = 2 if magic[6] == 1 else 4
        length = int.from_bytes(stream.read(size_bytes), "little")
        if length > 65536:
            raise ValueError
        header = ast.literal_eval(stream.read(length).decode("latin1"))
        shape, dtype, fortran = header["shape"], np.dtype(header["descr"]), bool(header["fortran_order"])
    except (ValueError, SyntaxError, KeyError, TypeError, MemoryError, RecursionError):
        raise Rejected(f"{what} is not a plain .npy array") from None
    if dtype.kind not in NUMERIC_KINDS or dtype.hasobject or dtype.fields is not None:
        raise Rejected(f"{what} is not a numeric array")
    if not (isinstance(shape, tuple) and len(shape) <= 8 and all(isinstance(n, int) and n >= 0 for n in shape)):
        raise Rejected(f"{what} declares an impossible shape")
    return shape, dtype, fortran


def _read_npy(stream, what: str, max_bytes: int, remaining: int) -> np.ndarray:
    shape, dtype, fortran = _npy_header(stream, what)
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes > max_bytes:
        raise OverBudget(f"{what} declares {nbytes:,} bytes of values, over this question's limit of {max_bytes:,}")
    data = stream.read(nbytes)
    if len(data) != nbytes or nbytes > remaining:
        raise Rejected(f"{what} is shorter or longer than its header says")
    array = np.frombuffer(data, dtype=dtype)
    return array.reshape(shape, order="F" if fortran else "C").copy()


def read_array(directory: int, name: str, max_bytes: int) -> np.ndarray:
    """A numeric array from a ``.npy`` file, its declared size checked before it is read."""
    with open_file(directory, name, max_bytes + 65536) as stream:
        size = os.fstat(stream.fileno()).st_size
        array = _read_npy(stream, name, max_bytes, size)
        if stream.read(1):
            raise Rejected(f"{name} has data after its array")
    return array


def read_weights(directory: int, name: str, shapes: list[tuple]) -> list[np.ndarray]:
    """The arrays ``arr_0, arr_1, ...`` of an uncompressed ``.npz``, each of the expected shape;
    headers and sizes are checked before any values are read. At most 8 bytes a value."""
    max_bytes = 8 * sum(math.prod(shape) for shape in shapes)
    with open_file(directory, name, max_bytes + 65536 * (len(shapes) + 1)) as stream:
        try:
            archive = zipfile.ZipFile(stream)
        except (zipfile.BadZipFile, OSError, ValueError):
            raise Rejected(f"{name} is not a plain .npz archive") from None
        with archive:
            members = archive.infolist()
            if [m.filename for m in members] != [f"arr_{i}.npy" for i in range(len(members))]:
                raise Rejected(f"{name} does not hold weight arrays arr_0, arr_1, ... in order")
            if len(members) != len(shapes):
                raise Rejected(f"{name} holds {len(members)} weight arrays where the model has {len(shapes)}")
            if any(m.compress_type != zipfile.ZIP_STORED for m in members):
                raise Rejected(f"{name} is compressed; the grader reads only what numpy.savez writes")
            arrays = []
            for member, expected in zip(members, shapes, strict=True):
                with archive.open(member) as entry:
                    array = _read_npy(entry, name, max_bytes, member.file_size)
                if array.shape != tuple(expected):
                    raise Rejected("the exported weights do not match the model's layers")
                arrays.append(array)
    return arrays


# -- models -----------------------------------------------------------------------------------


def _what_layer(node: dict) -> str:
    """A description of a refused object from a fixed vocabulary, never the export's own words."""
    if node.get("class_name") == "Lambda":
        return "a Lambda layer"
    return "a layer or object that is not one of the built-in Keras layers the grader rebuilds"


def check_config(node, depth: int = 0) -> None:
    """Raise :class:`Rejected` unless every object in a model config is on the allow-list."""
    if depth > MAX_DEPTH:
        raise Rejected("the model config is nested too deeply")
    if isinstance(node, dict):
        if "class_name" in node:
            if (node.get("module"), node.get("class_name")) not in ALLOWED_OBJECTS:
                raise Rejected(f"the model uses {_what_layer(node)}")
            if node.get("registered_name") not in (None, node.get("class_name")):
                raise Rejected("the model uses a custom registered layer")
        for key, value in node.items():
            if key in ("function", "function_type") or (key == "module" and not isinstance(value, str)):
                raise Rejected("the model config holds code (a Lambda or a custom object)")
            if key == "activation" and value not in ALLOWED_ACTIVATIONS:
                raise Rejected("the model uses an activation that is not one of the built-in ones the grader allows")
            check_config(value, depth + 1)
    elif isinstance(node, list):
        for item in node:
            check_config(item, depth + 1)
    elif not isinstance(node, (str, int, float, bool, type(None))):
        raise Rejected("the model config holds a value that is not plain data")


def _without_build_configs(node):
    """The config without ``build_config`` entries: Keras would build layers from them, so a
    layer could claim an input far larger than the one the size check followed."""
    if isinstance(node, dict):
        return {key: _without_build_configs(value) for key, value in node.items() if key != "build_config"}
    if isinstance(node, list):
        return [_without_build_configs(item) for item in node]
    return node


def _sized_config(directory: int, name: str, budget):
    """The exported model's config, after the allow-list and within the budget, exactly as it
    will be built; and its size."""
    config = read_json(directory, f"{name}.model.json")
    if not isinstance(config, dict):
        raise Rejected("the export is not a Keras Functional or Sequential model")
    config.pop("compile_config", None)  # the optimizer and loss play no part in predictions
    check_config(config)
    config = _without_build_configs(config)
    if config.get("class_name") not in ("Functional", "Sequential"):
        raise Rejected("the export is not a Keras Functional or Sequential model")
    try:
        size = model_size(config)
    except SizeError as error:
        raise Rejected(f"the model config does not add up: {error}") from None
    for what, value, limit in (
        ("parameters", size.parameters, budget.parameters),
        ("values per example", size.activations, budget.activations),
        ("multiply-adds per example", size.multiply_adds, budget.multiply_adds),
    ):
        if value > limit:
            raise OverBudget(f"the model has {value:,} {what}, over this question's limit of {limit:,}")
    return config, size


def load_network(directory: int, name: str, budget):
    """The exported model ``name`` as the grader's own NumPy network
    (:class:`~cnnlab.grading.forward.Network`): no Keras, no TensorFlow."""
    from cnnlab.grading import forward

    config, size = _sized_config(directory, name, budget)
    try:
        shapes = forward.weight_shapes(config)
        network = forward.Network.from_config(config, read_weights(directory, f"{name}.weights.npz", shapes))
    except forward.ForwardError as error:
        raise Rejected(str(error)) from None
    network.values_per_example = size.activations  # predict() sizes its batches from this
    return network


def rebuild_model(directory: int, name: str, budget):
    """Rebuild the exported model ``name`` (``name.model.json`` + ``name.weights.npz``) within
    ``budget`` (a :class:`~cnnlab.grading.hidden.Budget`) as a Keras model. Imports Keras (and
    TensorFlow): hidden tests that only inspect or run a model use :func:`load_network`."""
    config, size = _sized_config(directory, name, budget)
    import keras

    try:
        model = keras.models.model_from_json(json.dumps(config))
    except Exception:  # a config that passed the allow-list but does not build
        raise Rejected("the model config does not build") from None
    if model.count_params() != size.parameters:
        raise Rejected("the model config does not add up: it builds to another size than it describes")
    shapes = [tuple(w.shape) for w in model.weights]
    weights = read_weights(directory, f"{name}.weights.npz", shapes)
    model.set_weights(weights)
    return model
