"""The forward pass of an allow-listed Keras model, in NumPy, for the grader's trusted side.

The trusted side runs students' exported models without importing TensorFlow or Keras: they
are slow to import and heavy, and deserializing an untrusted config with Keras is an attack
surface. :class:`Network` reads the config (``model.to_json()``, parsed, after
:func:`~cnnlab.grading.safe_io.check_config` and :func:`~cnnlab.grading.modelsize.model_size`)
and the weights (``model.get_weights()``), checks every array's shape against what the config
implies, and computes what Keras computes at inference (``model.predict``), in float32.

Every layer of :data:`~cnnlab.grading.safe_io.ALLOWED_LAYERS` is implemented with the options
Keras 3 writes for it. Anything else (another option, layout, precision or call argument) is
refused with :class:`ForwardError` rather than approximated. Messages are the grader's own
words: they point at a layer by its index, as in ``model.layers[3].layers[1]``, and never
repeat a name or any other string from the config.

Refused, because Keras would compute something else or the grader cannot check it: the
channels-first layout; dtype policies other than float32; calls in training mode or with
masks; BatchNormalization with renormalization or on another axis than the last; Add of
inputs that differ in shape; a Conv2D with both strides and dilation above 1 (Keras refuses it
too); LoRA or quantized layers; nested models with several outputs; and any config key that a
layer does not have in Keras 3, unless it is null. :meth:`Network.predict` runs models with
one input and one output.

Shapes in this module leave out the batch axis; ``None`` is a side the config leaves open.

Examples
--------
>>> net = Network.from_config(json.loads(model.to_json()), model.get_weights())  # doctest: +SKIP
>>> probabilities = net.predict(images)  # doctest: +SKIP
>>> [layer.config["filters"] for layer in net.layers_of("Conv2D")]  # doctest: +SKIP
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

from cnnlab.grading.numpy_layers import KIND_WORDS, OPS, ForwardError, _Problem
from cnnlab.grading.safe_io import ALLOWED_LAYERS

__all__ = ["ForwardError", "Layer", "Network", "weight_shapes"]

PREDICT_MEMORY = 256 << 20  # bytes of activations one batch of predict() may hold, at most


# -- models: layers wired into calls -------------------------------------------------------------

Key = tuple  # (layer, call): the output of one call of one layer


class _Leaf:
    """One allow-listed layer of a model: its operation and, once bound, its weights."""

    def __init__(self, kind: str, config: dict, where: str):
        self.kind, self.config, self.where = kind, config, where
        self.op = self._checked(OPS[kind], config)
        self.weight_shapes: list[tuple] | None = None  # set by the first call's input shape
        self.weights: list[np.ndarray] = []
        self.prepared: list[np.ndarray] = []

    def _checked(self, function, *args):
        """``function(*args)``, with a :class:`_Problem` in it reported as this layer's."""
        try:
            return function(*args)
        except _Problem as problem:
            raise ForwardError(f"{self.where} ({KIND_WORDS[self.kind]}): {problem}") from None

    def infer(self, shapes: list[tuple]) -> tuple:
        out, weight_shapes = self._checked(self.op.infer, shapes)
        if self.weight_shapes is None:
            self.weight_shapes = weight_shapes
        elif weight_shapes != self.weight_shapes:
            raise ForwardError(
                f"{self.where} ({KIND_WORDS[self.kind]}) is called again, on inputs of shapes {shapes}, "
                "which its weights do not fit"
            )
        return out

    def bind(self, weights: list[np.ndarray]) -> None:
        self.weights, self.prepared = weights, self.op.prepare(weights)

    def run(self, inputs: list[np.ndarray]) -> np.ndarray:
        return self.op.run(inputs, self.prepared)


class _Graph:
    """A Functional or Sequential model: its entries (layers and nested models, in the config's
    order, which is ``model.layers`` and the weights' order) and its calls (``steps``), ordered
    so that every input is computed before it is used."""

    def __init__(self, kind: str, where: str):
        self.kind, self.where = kind, where
        self.entries: list[_Leaf | _Graph] = []
        self.steps: list[tuple[_Leaf | _Graph, list[Key], Key]] = []
        self.inputs: list[Key] = []
        self.outputs: list[Key] = []
        self.declared: list[tuple] = []  # input shapes that the config gives; empty when it gives none

    def finish(self) -> _Graph:
        """Note when each output is last used, and build as Keras does: on the declared inputs."""
        last = {key: index for index, (_, sources, _) in enumerate(self.steps) for key in sources}
        self.dead_after = [[] for _ in self.steps]
        for key, index in last.items():
            if key not in self.outputs:
                self.dead_after[index].append(key)
        if self.declared:
            self.infer_all(self.declared)
        return self

    def leaves(self) -> list[_Leaf]:
        """Every allow-listed layer, depth first: the order of ``model.get_weights()``."""
        return [leaf for entry in self.entries for leaf in (entry.leaves() if isinstance(entry, _Graph) else [entry])]

    def infer_all(self, shapes: list[tuple]) -> list[tuple]:
        """Output shapes for inputs of ``shapes``; the first call fixes each layer's weight shapes."""
        if len(shapes) != len(self.inputs):
            raise ForwardError(f"{self.where} takes {len(self.inputs)} inputs and is given {len(shapes)}")
        known = dict(zip(self.inputs, shapes, strict=True))
        for entry, sources, key in self.steps:
            known[key] = entry.infer([known[source] for source in sources])
        return [known[key] for key in self.outputs]

    def run_all(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        values = dict(zip(self.inputs, arrays, strict=True))
        for (entry, sources, key), dead in zip(self.steps, self.dead_after, strict=True):
            values[key] = entry.run([values[source] for source in sources])
            for old in dead:  # each activation is freed after its last use
                del values[old]
        return [values[key] for key in self.outputs]

    # Called inside another model, a model is a layer with one output.
    def infer(self, shapes: list[tuple]) -> tuple:
        return self.infer_all(shapes)[0]

    def run(self, inputs: list[np.ndarray]) -> np.ndarray:
        return self.run_all(inputs)[0]


def _model(kind: str, config, where: str) -> _Graph:
    """A Functional or Sequential model config, wired and built on its declared inputs."""
    if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
        raise ForwardError(f"{where}: the model config lists no layers")
    graph = _functional(config, where) if kind == "Functional" else _sequential(config, where)
    return graph.finish()


def _entry(layer, where: str) -> tuple[Any, _Leaf | _Graph]:
    """The name and the built entry of one item of a model config's layer list."""
    if not isinstance(layer, dict) or not isinstance(layer.get("config"), dict):
        raise ForwardError(f"{where} is not a layer with a config")
    kind, config = layer.get("class_name"), layer["config"]
    name = layer.get("name", config.get("name"))
    if kind in ("Functional", "Sequential"):
        graph = _model(kind, config, where)
        if len(graph.outputs) != 1:
            raise ForwardError(f"{where} ({KIND_WORDS[kind]}) has {len(graph.outputs)} outputs; the grader takes one")
        return name, graph
    if kind not in OPS:
        raise ForwardError(f"{where} is a layer that the grader does not implement")
    return name, _Leaf(kind, config, where)


def _tensor(item, where: str) -> Key:
    """The (layer name, call) that a serialized Keras tensor comes from."""
    history = item.get("config", {}).get("keras_history") if isinstance(item, dict) else None
    if not (
        isinstance(history, list)
        and len(history) == 3
        and isinstance(history[0], str)
        and all(isinstance(v, int) and not isinstance(v, bool) for v in history[1:])
        and item.get("class_name") == "__keras_tensor__"
    ):
        raise ForwardError(f"{where} is called on something other than the output of a layer")
    if history[2] != 0:
        raise ForwardError(f"{where} uses a second output of a layer, and the grader's layers have one")
    return history[0], history[1]


def _call_sources(node, entry: _Leaf | _Graph, where: str) -> list[Key]:
    """The outputs that one call (an inbound node) of ``entry`` takes."""
    if not isinstance(node, dict) or not isinstance(node.get("args"), list) or len(node["args"]) != 1:
        raise ForwardError(f"{where} is called with arguments other than its inputs")
    kwargs = node.get("kwargs") or {}
    if not isinstance(kwargs, dict) or any(
        k not in ("mask", "training") or v not in (None, False) for k, v in kwargs.items()
    ):
        raise ForwardError(f"{where} is called in training mode or with a mask; the grader implements inference only")
    arg = node["args"][0]
    count = len(arg) if isinstance(arg, list) else None  # None: one tensor, not in a list
    if isinstance(entry, _Graph):
        fits = count == len(entry.inputs) or (count is None and len(entry.inputs) == 1)
    else:
        fits = (count is not None) == entry.op.takes_list and count != 0
    if not fits:
        raise ForwardError(f"{where} ({KIND_WORDS[entry.kind]}) is called on a number of tensors that it does not take")
    return [_tensor(item, where) for item in (arg if count is not None else [arg])]


def _references(value, where: str) -> list[Key]:
    """A model's ``input_layers`` or ``output_layers``: one [name, call, 0] or a list of them."""
    if isinstance(value, list) and len(value) == 3 and isinstance(value[0], str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise ForwardError(f"{where}: the model does not list its inputs and outputs")
    return [_tensor({"class_name": "__keras_tensor__", "config": {"keras_history": item}}, where) for item in value]


def _functional(config: dict, where: str) -> _Graph:
    graph, names, input_shapes, waiting = _Graph("Functional", where), set(), {}, []
    for index, layer in enumerate(config["layers"]):
        here = f"{where}.layers[{index}]"
        name, entry = _entry(layer, here)
        if not isinstance(name, str) or name in names:
            raise ForwardError(f"{here} has no name of its own in its model")
        names.add(name)
        graph.entries.append(entry)
        if entry.kind == "InputLayer":
            input_shapes[name] = entry.op.shape
            continue
        nodes = layer.get("inbound_nodes")
        if not isinstance(nodes, list) or not nodes:
            raise ForwardError(f"{here} is never called")
        waiting.append((entry, name, [_call_sources(node, entry, here) for node in nodes]))
    # Keras's own order (functional_from_config): go over the layers in turn, each making its
    # calls in order until one needs an output not made yet; again until every call is made.
    made, done = {(name, 0) for name in input_shapes}, {name: 0 for _, name, _ in waiting}
    while waiting:
        before = len(graph.steps)
        for entry, name, calls in waiting:
            while done[name] < len(calls) and all(source in made for source in calls[done[name]]):
                graph.steps.append((entry, calls[done[name]], (name, done[name])))
                made.add((name, done[name]))
                done[name] += 1
        waiting = [item for item in waiting if done[item[1]] < len(item[2])]
        if len(graph.steps) == before:
            raise ForwardError(
                f"{where}: some layers take outputs that no layer makes, or depend on each other in a loop"
            )
    graph.inputs = _references(config.get("input_layers"), where)
    graph.outputs = _references(config.get("output_layers"), where)
    if sorted(graph.inputs) != sorted((name, 0) for name in input_shapes) or not made.issuperset(graph.outputs):
        raise ForwardError(f"{where}: the model's inputs or outputs are not those of its layers")
    graph.declared = [input_shapes[name] for name, _ in graph.inputs]  # in the order of the model's inputs
    return graph


def _sequential(config: dict, where: str) -> _Graph:
    graph, layers = _Graph("Sequential", where), list(config["layers"])
    if layers and isinstance(layers[0], dict) and layers[0].get("class_name") == "InputLayer":
        _, entry = _entry(layers.pop(0), f"{where} input")
        graph.declared = [entry.op.shape]  # not an entry: Sequential.layers leaves its input out
    elif config.get("build_input_shape") is not None:
        built = config["build_input_shape"]
        graph.declared = [_Leaf("InputLayer", {"batch_shape": built}, f"{where} input").op.shape]
    graph.inputs = graph.outputs = [("input", 0)]
    for index, layer in enumerate(layers):  # index in model.layers, which leaves the input out
        here = f"{where}.layers[{index}]"
        _, entry = _entry(layer, here)
        if entry.kind == "InputLayer" or (isinstance(entry, _Leaf) and entry.op.takes_list):
            raise ForwardError(f"{here} ({KIND_WORDS[entry.kind]}) cannot be a step of a sequential model")
        graph.entries.append(entry)
        graph.steps.append((entry, graph.outputs, (index, 0)))
        graph.outputs = [(index, 0)]
    return graph


# -- the network ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Layer:
    """One allow-listed layer of a :class:`Network`, read-only.

    Attributes
    ----------
    kind : str
        Its Keras class, one of :data:`~cnnlab.grading.safe_io.ALLOWED_LAYERS`.
    path : str
        Where it is: ``"model.layers[3]"``, or ``"model.layers[2].layers[0]"`` inside a nested model.
    config : Mapping
        A copy of its Keras config (``filters``, ``kernel_size``, ``activation``, ...).
    weights : tuple of numpy.ndarray
        Its float32 weights, in Keras's order (``layer.get_weights()``), read-only.
    """

    kind: str
    path: str
    config: Mapping[str, Any]
    weights: tuple[np.ndarray, ...]

    @property
    def name(self) -> str | None:
        """The layer's name in the model (``config["name"]``)."""
        return self.config.get("name")


def _weight(value, index: int) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":
        raise ForwardError(f"weight array {index} is not numeric")
    array = array.astype(np.float32)  # a copy: the caller's arrays stay theirs
    array.flags.writeable = False
    return array


def _graph_of(config: dict) -> _Graph:
    """The model's layers and calls, built on its declared inputs (no weights yet)."""
    if not isinstance(config, dict) or config.get("class_name") not in ("Functional", "Sequential"):
        raise ForwardError("the export is not a Functional or Sequential model")
    try:
        graph = _model(config["class_name"], config.get("config"), "model")
    except (TypeError, AttributeError, KeyError, IndexError, ValueError, RecursionError) as error:
        if isinstance(error, ForwardError):
            raise
        raise ForwardError("the model config is malformed") from None
    if not graph.declared:
        raise ForwardError("the model does not say what shape its input has")
    return graph


def weight_shapes(config: dict) -> list[tuple]:
    """The shape of every weight array the config implies, in the order of
    ``model.get_weights()``: what the grader expects before it reads any of them."""
    return [shape for leaf in _graph_of(config).leaves() for shape in leaf.weight_shapes or []]


class Network:
    """An allow-listed Keras model, rebuilt from its config and weights, that runs in NumPy.

    Build it with :meth:`from_config`. ``layers`` lists its allow-listed layers depth first,
    nested models' layers included, in the order of ``model.get_weights()``.
    """

    values_per_example: int | None = None  # every layer's outputs for one example, when known

    def __init__(self, graph: _Graph):
        self._graph = graph
        self.layers = [
            Layer(leaf.kind, leaf.where, MappingProxyType(copy.deepcopy(leaf.config)), tuple(leaf.weights))
            for leaf in graph.leaves()
        ]

    @classmethod
    def from_config(cls, config: dict, weights) -> Network:
        """Rebuild a model from its parsed ``model.to_json()`` and its ``model.get_weights()``.

        Parameters
        ----------
        config : dict
            ``{"class_name": "Functional" | "Sequential", "config": {...}}``, already passed by
            :func:`~cnnlab.grading.safe_io.check_config` and :func:`~cnnlab.grading.modelsize.model_size`.
        weights : sequence of array-like
            In the order of ``model.get_weights()``: layers in ``model.layers`` order, depth first
            into nested models, each layer's in creation order (Conv2D kernel then bias, ...).

        Returns
        -------
        Network

        Raises
        ------
        ForwardError
            When the config uses something the grader does not implement, or a weight array is
            missing, extra or of another shape than the config implies.
        """
        graph = _graph_of(config)
        leaves = graph.leaves()
        weights = list(weights)
        needed = sum(len(leaf.weight_shapes or []) for leaf in leaves)
        if len(weights) != needed:
            raise ForwardError(f"the model has {needed} weight arrays and {len(weights)} were given")
        position = 0
        for leaf in leaves:
            arrays = []
            for shape in leaf.weight_shapes or []:
                array = _weight(weights[position], position)
                if array.shape != shape:
                    raise ForwardError(
                        f"weight array {position} has shape {array.shape} where {leaf.where} "
                        f"({KIND_WORDS[leaf.kind]}) needs {shape}; arrays go in the order of model.get_weights()"
                    )
                arrays.append(array)
                position += 1
            leaf.bind(arrays)
        return cls(graph)

    @property
    def parameters(self) -> int:
        """Number of weight values, as Keras's ``count_params()`` counts them."""
        return sum(w.size for layer in self.layers for w in layer.weights)

    @property
    def input_shape(self) -> tuple:
        """Shape of one input example (no batch axis); None where the model leaves a side open."""
        return self._only(self._graph.declared, "inputs")

    @property
    def output_shape(self) -> tuple:
        """Shape of one output (no batch axis); None where it depends on an open input side."""
        return self._only(self._graph.infer_all(self._graph.declared), "outputs")

    def _only(self, shapes: list[tuple], what: str) -> tuple:
        if len(shapes) != 1:
            raise ForwardError(
                f"the model has {len(shapes)} {what}; the grader runs models with one input and one output"
            )
        return shapes[0]

    def layers_of(self, kind: str) -> list[Layer]:
        """The layers of one Keras class, such as ``"Conv2D"``, in order."""
        if kind not in ALLOWED_LAYERS:
            raise ValueError(f"layers_of: kind must be one of {sorted(ALLOWED_LAYERS)}, got {kind!r}")
        return [layer for layer in self.layers if layer.kind == kind]

    def predict(self, x, batch_size: int = 64) -> np.ndarray:
        """Outputs for a batch of examples, as Keras's ``model.predict`` computes them.

        Parameters
        ----------
        x : array-like of shape (N, *input_shape)
            Numeric; computed in float32.
        batch_size : int
            Examples run at a time, which bounds the memory the activations take. Never more
            than fit in ``PREDICT_MEMORY`` when the model's values per example are known
            (``values_per_example``, set by the grader from the model's size).

        Returns
        -------
        numpy.ndarray of shape (N, *output_shape), float32
        """
        expected, out_shape = self.input_shape, self.output_shape
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"predict: batch_size must be a positive integer, got {batch_size!r}")
        if self.values_per_example:
            batch_size = max(1, min(batch_size, PREDICT_MEMORY // (4 * self.values_per_example)))
        x = np.asarray(x)
        if x.dtype.kind not in "biuf":
            raise ForwardError("the input is not numeric")
        if x.ndim != len(expected) + 1 or any(e not in (None, n) for e, n in zip(expected, x.shape[1:], strict=True)):
            raise ForwardError(f"the model takes inputs of shape (N, {', '.join(map(str, expected))}); got {x.shape}")
        out = None
        with np.errstate(all="ignore"):  # overflow and NaN come out as TensorFlow's do, silently
            for first in range(0, len(x), batch_size):
                y = self._graph.run_all([x[first : first + batch_size].astype(np.float32)])[0]
                if out is None:
                    out = np.empty((len(x), *y.shape[1:]), np.float32)
                out[first : first + len(y)] = y
        return out if out is not None else np.empty((0, *(n or 0 for n in out_shape)), np.float32)

    def __repr__(self) -> str:
        return f"<Network of {len(self.layers)} layers, {self.parameters:,} parameters>"
