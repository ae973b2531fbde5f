"""How big an exported model is, worked out from its config before anything is built.

The trusted side must not let a tiny export make it allocate gigabytes. So before Keras sees
a model config, :func:`model_size` walks it, layer by layer, with the lecture's arithmetic
(:mod:`cnnlab.arithmetic`): the shape of every output, every layer's parameters, and the
activation values of one example. Only the built-in layers the grader rebuilds are known;
the allow-list (:mod:`~cnnlab.grading.safe_io`) has refused the rest already, and anything
here that does not add up raises :class:`SizeError`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from cnnlab.arithmetic import output_size

UNKNOWN_SIDE = 512  # an input side left open (None) is counted as this many pixels
MAX_CALLS = 10_000  # layer calls walked in all, nested models included (each call of a shared one counts)


class SizeError(ValueError):
    """The config does not describe a model whose size can be worked out."""


@dataclass
class ModelSize:
    parameters: int = 0
    activations: int = 0  # output values of every layer call, for one example
    multiply_adds: int = 0  # the work of one example (a convolution's MACs, one per value elsewhere)
    calls: int = 0  # layer calls walked; the walk stops at MAX_CALLS

    def add_call(self, kind: str, config: dict, shapes: list[tuple], out: tuple) -> None:
        self.calls += 1
        if self.calls > MAX_CALLS:
            raise SizeError(f"the model makes more than {MAX_CALLS:,} layer calls")
        self.activations += math.prod(out)
        self.multiply_adds += _multiply_adds(kind, config, shapes, out)


def _multiply_adds(kind: str, config: dict, shapes: list[tuple], out: tuple) -> int:
    """Multiply-adds of one call for one example (the lecture's MACs for convolutions and
    dense layers; a comparison or an add per value for the rest)."""
    kernel = math.prod(_pair(config.get("kernel_size", 1))) if "kernel_size" in config else 1
    if kind == "Conv2D":
        return math.prod(out[:2]) * kernel * (shapes[0][-1] // (config.get("groups", 1) or 1)) * out[-1]
    if kind == "DepthwiseConv2D":
        return math.prod(out) * kernel
    if kind == "SeparableConv2D":
        depthwise = shapes[0][-1] * config.get("depth_multiplier", 1)
        return math.prod(out[:2]) * depthwise * (kernel + out[-1])
    if kind == "Dense":
        return math.prod(out[:-1]) * shapes[0][-1] * out[-1]
    if kind in ("MaxPooling2D", "AveragePooling2D"):
        return math.prod(out) * math.prod(_pair(config.get("pool_size", 2)))
    return max(math.prod(out), *(math.prod(shape) for shape in shapes)) if shapes else math.prod(out)


def _pair(value) -> tuple[int, int]:
    if isinstance(value, int) and not isinstance(value, bool):
        return value, value
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return int(value[0]), int(value[1])
    raise SizeError("a size in the model config is not one or two whole numbers")


def _shape(value) -> tuple:
    if not isinstance(value, (list, tuple)) or len(value) > 8:
        raise SizeError("a shape in the model config is not a short list")
    shape = tuple(UNKNOWN_SIDE if v is None else v for v in value)
    if not all(isinstance(v, int) and not isinstance(v, bool) and 0 < v <= 1 << 24 for v in shape):
        raise SizeError("a shape in the model config has a dimension out of range")
    return shape


def _input_shape(config: dict) -> tuple:
    """An InputLayer's shape: Keras 3 writes ``batch_shape``, and the grader reads nothing else
    (the rebuilders must not see a shape this count did not)."""
    if (
        not isinstance(config, dict)
        or "batch_shape" not in config
        or set(config) & {"batch_input_shape", "input_shape", "shape"}
    ):
        raise SizeError("the input layer does not give its shape as Keras 3 writes it (batch_shape)")
    return _shape(config["batch_shape"][1:])


def _positive(config: dict, key: str) -> int:
    value = config.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= 1 << 20:
        raise SizeError(f"{key} in the model config is not a positive whole number")
    return value


def _spatial(shape: tuple, kernel, strides, padding, dilation=(1, 1)) -> tuple[int, int]:
    if len(shape) != 3:
        raise SizeError("a 2-D layer gets an input that is not height x width x channels")
    if padding not in ("valid", "same"):
        raise SizeError("padding in the model config is neither 'valid' nor 'same'")
    (kh, kw), (sh, sw), (dh, dw) = _pair(kernel), _pair(strides), _pair(dilation)
    effective = (dh * (kh - 1) + 1, dw * (kw - 1) + 1)
    sides = [
        output_size(n, k, s, padding, rounding="floor") for n, k, s in zip(shape[:2], effective, (sh, sw), strict=True)
    ]
    if min(sides) < 1:
        raise SizeError("a layer shrinks its input to nothing")
    return sides[0], sides[1]


def _conv(config: dict, shape: tuple) -> tuple[tuple, int]:
    filters, (kh, kw) = _positive(config, "filters"), _pair(config.get("kernel_size"))
    groups = config.get("groups", 1) or 1
    height, width = _spatial(
        shape, (kh, kw), config.get("strides", 1), config.get("padding"), config.get("dilation_rate", 1)
    )
    weights = kh * kw * (shape[2] // groups) * filters + (filters if config.get("use_bias", True) else 0)
    return (height, width, filters), weights


def _depthwise(config: dict, shape: tuple) -> tuple[tuple, int]:
    multiplier, (kh, kw) = config.get("depth_multiplier", 1), _pair(config.get("kernel_size"))
    height, width = _spatial(
        shape, (kh, kw), config.get("strides", 1), config.get("padding"), config.get("dilation_rate", 1)
    )
    channels = shape[2] * multiplier
    return (height, width, channels), kh * kw * channels + (channels if config.get("use_bias", True) else 0)


def _separable(config: dict, shape: tuple) -> tuple[tuple, int]:
    (height, width, channels), depthwise = _depthwise({**config, "use_bias": False}, shape)
    filters = _positive(config, "filters")
    return (height, width, filters), depthwise + channels * filters + (filters if config.get("use_bias", True) else 0)


def _pool(config: dict, shape: tuple) -> tuple[tuple, int]:
    pool = config.get("pool_size", 2)
    height, width = _spatial(shape, pool, config.get("strides") or pool, config.get("padding", "valid"))
    return (height, width, shape[2]), 0


def _padding(config: dict, shape: tuple) -> tuple[tuple, int]:
    padding = config.get("padding", 1)
    if isinstance(padding, (list, tuple)) and len(padding) == 2 and all(isinstance(p, (list, tuple)) for p in padding):
        (top, bottom), (left, right) = _pair(padding[0]), _pair(padding[1])
    else:
        (top, left) = _pair(padding)
        bottom, right = top, left
    return (shape[0] + top + bottom, shape[1] + left + right, shape[2]), 0


def _layer(kind: str, config: dict, shapes: list[tuple]) -> tuple[tuple, int]:
    """Output shape (without the batch) and parameter count of one call of a built-in layer."""
    if config.get("data_format", "channels_last") != "channels_last":
        raise SizeError("the grader rebuilds channels-last models only")
    shape = shapes[0]
    if kind == "Add":
        if any(s != shape for s in shapes):
            raise SizeError("Add gets inputs of different shapes")
        return shape, 0
    if kind == "Concatenate":
        axis = config.get("axis", -1)
        if not isinstance(axis, int) or not -len(shape) <= axis <= len(shape) or axis == 0:
            raise SizeError("Concatenate joins along an axis the inputs do not have")
        axis = axis % (len(shape) + 1) - 1  # the axis without the batch
        others = [tuple(v for i, v in enumerate(s) if i != axis) for s in shapes]
        if any(len(s) != len(shape) for s in shapes) or len(set(others)) != 1:
            raise SizeError("Concatenate gets inputs that do not line up")
        return tuple(sum(s[axis] for s in shapes) if i == axis else v for i, v in enumerate(shape)), 0
    if len(shapes) != 1:
        raise SizeError("a layer that takes one input gets several")
    if kind == "Conv2D":
        return _conv(config, shape)
    if kind == "DepthwiseConv2D":
        return _depthwise(config, shape)
    if kind == "SeparableConv2D":
        return _separable(config, shape)
    if kind == "Dense":
        units = _positive(config, "units")
        return (*shape[:-1], units), shape[-1] * units + (units if config.get("use_bias", True) else 0)
    if kind in ("MaxPooling2D", "AveragePooling2D"):
        return _pool(config, shape)
    if kind in ("GlobalAveragePooling2D", "GlobalMaxPooling2D"):
        return ((1, 1, shape[-1]) if config.get("keepdims") else (shape[-1],)), 0
    if kind == "Flatten":
        return (math.prod(shape),), 0
    if kind == "Reshape":
        wanted = config.get("target_shape")
        if isinstance(wanted, (list, tuple)) and list(wanted).count(-1) == 1:
            known = math.prod(v for v in wanted if v != -1) if len(wanted) > 1 else 1
            if not isinstance(known, int) or known <= 0 or math.prod(shape) % known:
                raise SizeError("Reshape changes the number of values")
            wanted = [math.prod(shape) // known if v == -1 else v for v in wanted]
        target = _shape(wanted)
        if math.prod(target) != math.prod(shape):
            raise SizeError("Reshape changes the number of values")
        return target, 0
    if kind == "ZeroPadding2D":
        return _padding(config, shape)
    if kind == "BatchNormalization":
        if config.get("axis", -1) not in (-1, len(shape), [-1], [len(shape)]):
            raise SizeError("BatchNormalization normalises an axis other than the channels")
        per_channel = 2 + int(config.get("center", True)) + int(config.get("scale", True))
        return shape, per_channel * shape[-1]
    if kind in ("Dropout", "SpatialDropout2D", "ReLU", "Activation", "Softmax", "Rescaling"):
        return shape, 0
    raise SizeError("the model uses a layer whose size the grader cannot work out")


def _tensor_sources(args) -> list[tuple[str, int, int]]:
    """The (layer, node, tensor) each Keras-tensor argument of a call comes from."""
    found = []
    stack = [args]
    while stack:
        item = stack.pop()
        if isinstance(item, dict) and item.get("class_name") == "__keras_tensor__":
            history = item.get("config", {}).get("keras_history")
            if not (isinstance(history, list) and len(history) == 3 and isinstance(history[0], str)):
                raise SizeError("a layer's input does not say where it comes from")
            found.append((history[0], int(history[1]), int(history[2])))
        elif isinstance(item, (list, tuple)):
            stack.extend(reversed(item))
        elif isinstance(item, dict):
            stack.extend(reversed(list(item.values())))
    return found


def _functional(config: dict, input_shapes: list[tuple] | None, size: ModelSize) -> list[tuple]:
    layers = config.get("layers")
    if not isinstance(layers, list) or not layers:
        raise SizeError("the model config lists no layers")
    outputs: dict[tuple[str, int], tuple] = {}  # (layer, node) -> output shape
    given = list(input_shapes or [])
    pending = []  # (layer, node index, sources): calls waiting for their inputs, as Keras defers them
    for layer in layers:
        kind, name, layer_config = layer.get("class_name"), layer.get("name"), layer.get("config", {})
        if not isinstance(name, str) or not isinstance(layer_config, dict):
            raise SizeError("a layer of the model config has no name or config")
        if kind == "InputLayer":
            shape = given.pop(0) if given else _input_shape(layer_config)
            outputs[(name, 0)] = shape
            size.add_call(kind, layer_config, [], shape)
            continue
        for index, node in enumerate(layer.get("inbound_nodes") or []):
            pending.append((layer, index, _tensor_sources(node.get("args", []))))
    counted: set[str] = set()
    while pending:
        ready = [call for call in pending if all((source, i) in outputs for source, i, _ in call[2])]
        if not ready:
            raise SizeError("a layer uses an output that no layer makes")
        for call in ready:
            pending.remove(call)
            layer, index, sources = call
            kind, name, layer_config = layer["class_name"], layer["name"], layer.get("config", {})
            shapes = [outputs[(source, i)] for source, i, _ in sources]
            if kind in ("Functional", "Sequential"):
                before = size.parameters
                inner_outputs = _model(kind, layer_config, shapes, size)
                if len(inner_outputs) != 1:
                    raise SizeError("a model inside the model has more than one output")
                out = inner_outputs[0]
                if name in counted:
                    size.parameters = before  # a shared model's weights count once
            else:
                out, weights = _layer(kind, layer_config, shapes)
                if name not in counted:
                    size.parameters += weights
            counted.add(name)
            size.add_call(kind, layer_config, shapes, out)
            outputs[(name, index)] = out
    declared = config.get("output_layers", [])
    if len(declared) == 3 and isinstance(declared[0], str):
        declared = [declared]  # a single output is written as one entry, not a list of them
    results = []
    for output in declared:
        if not (isinstance(output, list) and len(output) == 3 and (output[0], output[1]) in outputs):
            raise SizeError("the model's outputs are not outputs of its layers")
        results.append(outputs[(output[0], output[1])])
    return results


def _sequential(config: dict, input_shapes: list[tuple] | None, size: ModelSize) -> list[tuple]:
    layers = config.get("layers")
    if not isinstance(layers, list) or not layers:
        raise SizeError("the model config lists no layers")
    if input_shapes:
        shape = input_shapes[0]
    elif layers[0].get("class_name") == "InputLayer":
        shape = _input_shape(layers[0].get("config", {}))
    elif config.get("build_input_shape"):
        shape = _shape(config["build_input_shape"][1:])
    else:
        raise SizeError("the Sequential model does not say what its input is")
    size.add_call("InputLayer", {}, [], shape)
    for layer in layers:
        kind, layer_config = layer.get("class_name"), layer.get("config", {})
        if kind == "InputLayer":
            continue
        before = shape
        if kind in ("Functional", "Sequential"):
            shape = _model(kind, layer_config, [shape], size)[0]
        else:
            shape, weights = _layer(kind, layer_config, [shape])
            size.parameters += weights
        size.add_call(kind, layer_config, [before], shape)
    return [shape]


def _model(kind: str, config: dict, input_shapes: list[tuple] | None, size: ModelSize) -> list[tuple]:
    if not isinstance(config, dict):
        raise SizeError("the model config is not a mapping")
    if kind == "Functional":
        return _functional(config, input_shapes, size)
    return _sequential(config, input_shapes, size)


def model_size(config: dict) -> ModelSize:
    """Parameters and activation values (one example) of an allow-listed model config.

    Parameters
    ----------
    config : the model's ``to_json()``, parsed: ``{"class_name": "Functional" | "Sequential", "config": {...}}``.

    Returns
    -------
    ModelSize
        ``parameters`` equals the built model's ``count_params()``.

    Raises
    ------
    SizeError
        When the config does not add up (the model would not build as described).
    """
    kind = config.get("class_name")
    if kind not in ("Functional", "Sequential"):
        raise SizeError("the export is not a Functional or Sequential model")
    size = ModelSize()
    try:
        _model(kind, config.get("config"), None, size)
    except (TypeError, AttributeError, IndexError, ValueError) as error:
        if isinstance(error, SizeError):
            raise
        raise SizeError("the model config is malformed") from None
    return size
