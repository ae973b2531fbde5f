"""The lecture's per-layer table of memory, parameters and compute, for any built Keras model.

Conventions (stated once, used everywhere):

- **Activations** count the values each layer produces for one image, the input included.
  Layers that only re-view their input (Flatten, Reshape, Dropout at inference) add nothing:
  their output is the same numbers. Memory is 4 bytes per value (float32), and training keeps
  one gradient per activation, hence x2 for forward + backward.
- **Parameters** are ``layer.count_params()``; the "no bias" column leaves out bias vectors,
  which is how the lectures' VGG16 table counts ("138M") and the UT Dallas lecture's AlexNet CONV1
  ("(11*11*3)*96 = 35K", 34,848; the Sorbonne lecture's 34,944 counts the biases).
  Memory is 4 bytes per parameter. Training keeps, for every parameter, the weight, its
  gradient and the optimizer's state: none for plain SGD (x2 in all), one value for SGD with
  momentum, RMSprop or Adagrad (x3), two for Adam, AdamW or Nadam (x4). That is the
  lecture's "x2 for plain SGD, x4 for Adam": weights + gradients (+ Adam's m and v).
- **MACs** are multiply-accumulates for one image in convolution and dense layers; pooling,
  activations and normalisation are not counted (they are small next to the convolutions).
- MB means 10^6 bytes. Totals print with a unit that keeps them legible (``format_count``):
  LeNet-5's 416,520 MACs print as "416.5 k", not as "0.00 G".

Why the VGG16 total differs from the slide: the CS231n VGG16 slide (after Simonyan &
Zisserman, ICLR 2015) gives a total of 24M activations, 93 MB per image, that its own rows
do not add up to (lab 03 asks what they do add up to). This table shows the true sum.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

import keras
import numpy as np

# Values the optimizer keeps per parameter, besides the weight and its gradient.
OPTIMIZER_STATE_COPIES = {"sgd": 0, "momentum": 1, "rmsprop": 1, "adagrad": 1, "adam": 2, "adamw": 2, "nadam": 2}
VIEW_LAYERS = (
    keras.layers.Flatten,
    keras.layers.Reshape,
    keras.layers.Dropout,
    keras.layers.SpatialDropout2D,
)
BYTES_PER_VALUE = 4


@dataclass(frozen=True)
class LayerRow:
    name: str
    kind: str
    output_shape: tuple
    activations: int
    params: int
    params_no_bias: int
    macs: int


def format_count(value: int) -> str:
    """A count with the unit that keeps it legible: ``15.47 G``, ``416.5 k``, ``2.72 M``, ``96``.

    Examples
    --------
    >>> format_count(15_470_264_320), format_count(416_520), format_count(2_716_160)
    ('15.47 G', '416.5 k', '2.72 M')
    """
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= size:
            return f"{value / size:.{2 if unit != 'k' else 1}f} {unit}"
    return f"{value:,}"


def _macs(layer, input_shape: tuple, output_shape: tuple) -> int:
    """Multiply-accumulates of one layer for one image (batch dimension dropped)."""
    if isinstance(layer, keras.layers.SeparableConv2D):
        depthwise = (
            int(np.prod(output_shape[:-1])) * input_shape[-1] * layer.depth_multiplier * int(np.prod(layer.kernel_size))
        )
        return depthwise + int(np.prod(output_shape[:-1])) * input_shape[-1] * layer.depth_multiplier * layer.filters
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return int(np.prod(output_shape)) * int(np.prod(layer.kernel_size))
    if isinstance(layer, (keras.layers.Conv2DTranspose,)):
        return int(np.prod(input_shape[:-1])) * input_shape[-1] * int(np.prod(layer.kernel_size)) * layer.filters
    if isinstance(layer, (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)):
        per_output = int(np.prod(layer.kernel_size)) * input_shape[-1] // layer.groups
        return int(np.prod(output_shape)) * per_output
    if isinstance(layer, keras.layers.Dense):
        return int(np.prod(output_shape[:-1], dtype=np.int64)) * input_shape[-1] * layer.units
    return 0


def _bias_count(layer) -> int:
    return sum(int(np.prod(w.shape)) for w in layer.weights if w.path.rsplit("/", 1)[-1] == "bias")


def _flat_layers(model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _flat_layers(layer)
        else:
            yield layer


def _shape(tensor) -> tuple:
    return tuple(tensor.shape[1:])


class LayerTable:
    """Rows of :class:`LayerRow` plus totals; prints as text and shows as HTML in notebooks.

    Build one with :func:`layer_table`.
    """

    def __init__(self, model_name: str, rows: list[LayerRow], optimizer: str):
        self.model_name = model_name
        self.rows = rows
        self.optimizer = optimizer

    def row(self, name: str) -> LayerRow:
        for r in self.rows:
            if r.name == name:
                return r
        raise KeyError(f"no layer named {name!r}; layers: {', '.join(r.name for r in self.rows)}")

    @property
    def total_activations(self) -> int:
        return sum(r.activations for r in self.rows)

    @property
    def total_params(self) -> int:
        return sum(r.params for r in self.rows)

    @property
    def total_params_no_bias(self) -> int:
        return sum(r.params_no_bias for r in self.rows)

    @property
    def total_macs(self) -> int:
        return sum(r.macs for r in self.rows)

    @property
    def forward_bytes(self) -> int:
        return self.total_activations * BYTES_PER_VALUE

    @property
    def training_bytes(self) -> int:
        return 2 * self.forward_bytes

    @property
    def param_bytes(self) -> int:
        """The weights alone: 4 bytes per parameter."""
        return self.total_params * BYTES_PER_VALUE

    @property
    def memory_per_parameter(self) -> int:
        """Copies of every parameter that training keeps: weight, gradient and optimizer state."""
        return 2 + OPTIMIZER_STATE_COPIES[self.optimizer]

    @property
    def training_param_bytes(self) -> int:
        """Weights + gradients + optimizer state while training (activations not included)."""
        return self.param_bytes * self.memory_per_parameter

    def summary_lines(self) -> list[str]:
        copies = OPTIMIZER_STATE_COPIES[self.optimizer]
        state = "no optimizer state" if copies == 0 else f"{copies} {self.optimizer} state value{'s' * (copies > 1)}"
        return [
            f"activations per image: {self.total_activations:,} values = {self.forward_bytes / 1e6:,.1f} MB forward, "
            f"{self.training_bytes / 1e6:,.1f} MB with their gradients (forward + backward)",
            f"parameters: {self.total_params:,} ({self.total_params_no_bias:,} without biases) = "
            f"{self.param_bytes / 1e6:,.1f} MB of weights",
            f"training with {self.optimizer}: weight + gradient + {state} per parameter = "
            f"{self.memory_per_parameter} x {self.param_bytes / 1e6:,.1f} MB = {self.training_param_bytes / 1e6:,.1f} MB "
            "(activations not included)",
            f"compute: {self.total_macs:,} MACs per image ({format_count(self.total_macs)})",
        ]

    def _cells(self) -> list[list[str]]:
        header = ["layer", "type", "output shape", "activations", "params", "params (no bias)", "MACs"]
        body = [
            [
                r.name,
                r.kind,
                "x".join(str(d) for d in r.output_shape),
                f"{r.activations:,}",
                f"{r.params:,}",
                f"{r.params_no_bias:,}",
                f"{r.macs:,}",
            ]
            for r in self.rows
        ]
        total = [
            "TOTAL",
            "",
            "",
            f"{self.total_activations:,}",
            f"{self.total_params:,}",
            f"{self.total_params_no_bias:,}",
            f"{self.total_macs:,}",
        ]
        return [header, *body, total]

    def to_text(self) -> str:
        cells = self._cells()
        widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
        lines = []
        for index, row in enumerate(cells):
            lines.append(
                "  ".join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
            )
            if index in (0, len(cells) - 2):
                lines.append("  ".join("-" * w for w in widths))
        return "\n".join([f"Model: {self.model_name}", *lines, *self.summary_lines()])

    def __str__(self) -> str:
        return self.to_text()

    def __repr__(self) -> str:
        return self.to_text()

    def _repr_html_(self) -> str:
        cells = self._cells()
        head = "".join(f"<th>{html.escape(c)}</th>" for c in cells[0])
        rows = "".join(
            "<tr>"
            + "".join(
                f"<td style='text-align:{'left' if i < 3 else 'right'}'>{html.escape(c)}</td>"
                for i, c in enumerate(row)
            )
            + "</tr>"
            for row in cells[1:]
        )
        notes = "".join(f"<li>{html.escape(line)}</li>" for line in self.summary_lines())
        return f"<p><b>{html.escape(self.model_name)}</b></p><table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table><ul>{notes}</ul>"


def layer_table(model: keras.Model, optimizer: str = "adam") -> LayerTable:
    """Per-layer output shapes, activations, parameters and MACs of a built Keras model.

    Parameters
    ----------
    model : keras.Model
        Any built model (functional, Sequential or nested); it must know its input shape.
    optimizer : str
        For the training memory of the parameters (weights, gradients and this optimizer's
        state): one of ``OPTIMIZER_STATE_COPIES`` (``"sgd"`` is plain SGD, without momentum).

    Returns
    -------
    LayerTable
        ``.rows``, ``.total_activations``, ``.total_params``, ``.total_params_no_bias``,
        ``.total_macs``, the memory totals (``.forward_bytes``, ``.training_bytes``,
        ``.param_bytes``, ``.training_param_bytes``); ``print()`` it, or show it in a notebook.

    Examples
    --------
    >>> table = layer_table(keras.applications.VGG16(weights=None))
    >>> table.total_params, table.row("block5_pool").output_shape
    (138357544, (7, 7, 512))
    >>> print(table.summary_lines()[2])  # doctest: +ELLIPSIS
    training with adam: weight + gradient + 2 adam state values per parameter = 4 x 553.4 MB = 2,213.7 MB ...
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"layer_table: `model` must be a keras.Model, got {type(model).__name__}")
    if not model.built or not model.inputs:
        raise ValueError("layer_table: `model` is not built; give it an Input (or call model.build(input_shape)) first")
    if optimizer not in OPTIMIZER_STATE_COPIES:
        raise ValueError(f"layer_table: `optimizer` must be one of {sorted(OPTIMIZER_STATE_COPIES)}, got {optimizer!r}")
    rows = []
    for index, tensor in enumerate(model.inputs):
        shape = _shape(tensor)
        name = "input" if len(model.inputs) == 1 else f"input_{index}"
        rows.append(LayerRow(name, "Input", shape, int(np.prod(shape)), 0, 0, 0))
    for layer in _flat_layers(model):
        if isinstance(layer, keras.layers.InputLayer):
            continue
        output_shape = _shape(layer.output)
        input_shape = _shape(layer.input) if not isinstance(layer.input, (list, tuple)) else ()
        activations = 0 if isinstance(layer, VIEW_LAYERS) else int(np.prod(output_shape))
        params = layer.count_params()
        rows.append(
            LayerRow(
                layer.name,
                type(layer).__name__,
                output_shape,
                activations,
                params,
                params - _bias_count(layer),
                _macs(layer, input_shape, output_shape),
            )
        )
    return LayerTable(model.name, rows, optimizer)
