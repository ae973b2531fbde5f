"""The allow-listed Keras layers at inference, in NumPy: one small class per layer kind.

Each class reads its layer's config (refusing any option it does not implement exactly),
works out its output shape and the shapes of its weights from its input shapes (``infer``),
and computes its output (``run``) as Keras does in float32. :mod:`~cnnlab.grading.forward`
wires them into models. Shapes leave out the batch axis.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

PATCH_BUDGET = 1 << 22  # values in one block of convolution patches (16 MB of float32)

# How messages name each kind of layer: the grader's words, not the config's class names.
KIND_WORDS = {
    "InputLayer": "the input",
    "Conv2D": "a 2-D convolution",
    "DepthwiseConv2D": "a depthwise convolution",
    "SeparableConv2D": "a separable convolution",
    "Dense": "a fully connected layer",
    "MaxPooling2D": "a max-pooling layer",
    "AveragePooling2D": "an average-pooling layer",
    "GlobalAveragePooling2D": "a global average-pooling layer",
    "GlobalMaxPooling2D": "a global max-pooling layer",
    "Flatten": "a layer that unrolls its input",
    "Reshape": "a layer that changes the shape",
    "Dropout": "a drop-out layer",
    "SpatialDropout2D": "a channel drop-out layer",
    "BatchNormalization": "a batch-norm layer",
    "ReLU": "a rectifier layer",
    "Activation": "an elementwise-function layer",
    "Softmax": "a soft-max layer",
    "Add": "a sum of tensors",
    "Concatenate": "a layer joining tensors",
    "Rescaling": "a scale-and-shift layer",
    "ZeroPadding2D": "a zero-padding layer",
    "Functional": "a model inside the model",
    "Sequential": "a model inside the model",
}


class ForwardError(ValueError):
    """A model or its weights that the grader's forward pass refuses; the message says why and where."""


class _Problem(Exception):
    """What is wrong with one layer; :class:`_Leaf` adds where it is and raises :class:`ForwardError`."""


# -- reading options ----------------------------------------------------------------------------


def _whole(value, what: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _Problem(f"{what} is not a whole number of at least {minimum}")
    return value


def _pair(value, what: str, minimum: int = 1) -> tuple[int, int]:
    """One whole number for both axes, or a (height, width) pair."""
    values = value if isinstance(value, (list, tuple)) else [value, value]
    if len(values) != 2:
        raise _Problem(f"{what} is not one or two whole numbers")
    return _whole(values[0], what, minimum), _whole(values[1], what, minimum)


def _flag(value, what: str) -> bool:
    if not isinstance(value, bool):
        raise _Problem(f"{what} is not true or false")
    return value


def _number(value, what: str, minimum: float = -math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not minimum <= value < math.inf:
        raise _Problem(f"{what} is not a finite number of at least {minimum}")
    return float(value)


def _numbers(value, what: str) -> np.ndarray:
    """A number or a (nested, rectangular) list of numbers, as float32."""
    stack = [value]
    while stack:  # no recursion: the list may be as deep as the config allows
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        else:
            _number(item, what)
    try:
        return np.array(value, dtype=np.float32)
    except ValueError:
        raise _Problem(f"{what} is a ragged list") from None


def _axes(value, rank: int, what: str) -> tuple[int, ...]:
    """Axes of a tensor of ``rank`` (batch included), counted from 0; never the batch axis."""
    values = value if isinstance(value, list) else [value]
    axes = [v % rank for v in values if isinstance(v, int) and not isinstance(v, bool) and -rank <= v < rank]
    if not values or len(axes) != len(values) or 0 in axes or len(set(axes)) != len(axes):
        raise _Problem(f"{what} is not a set of axes of its {rank}-dimensional input other than the batch")
    return tuple(axes)


def _shape(value, what: str, open_sides: bool = True) -> tuple:
    if not isinstance(value, list) or len(value) > 8:
        raise _Problem(f"{what} is not a short list of sizes")
    return tuple(None if v is None and open_sides else _whole(v, what) for v in value)


def _image(shape: tuple) -> tuple:
    """(height, width, channels) of an input that must be an image."""
    if len(shape) != 3:
        raise _Problem(f"it takes images (height, width, channels) but gets an input of {len(shape)} axes")
    return shape


def _known(size, what: str) -> int:
    if size is None:
        raise _Problem(f"{what} must be known from the config, and it is left open")
    return size


# -- activations ---------------------------------------------------------------------------------
# Transcendental ones are computed in float64 and rounded once, to stay within TensorFlow's own
# float32 error.


def _erfc(x: np.ndarray) -> np.ndarray:
    """Complementary error function, relative error below 1.2e-7 everywhere (Numerical Recipes,
    ``erfcc``); NumPy has none and SciPy is not a dependency of the trusted side."""
    z = np.abs(x)
    t = 1.0 / (1.0 + 0.5 * z)
    poly = 0.0
    for c in (0.17087277, -0.82215223, 1.48851587, -1.13520398, 0.27886807, -0.18628806, 0.09678418, 0.37409196, 1.00002368):  # fmt: skip
        poly = c + t * poly
    ans = t * np.exp(-z * z - 1.26551223 + t * poly)
    return np.where(x >= 0, ans, 2.0 - ans)


def _sigmoid64(x: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -x))  # no overflow for large |x|


def _softmax(x: np.ndarray, axis) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


SELU_ALPHA, SELU_SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946
_IN_FLOAT64 = {
    "sigmoid": _sigmoid64,
    "tanh": np.tanh,
    "elu": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0))),
    "selu": lambda x: SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * np.expm1(np.minimum(x, 0))),
    "gelu": lambda x: 0.5 * x * _erfc(-x / np.sqrt(2.0)),  # Keras's "gelu" is the exact one, not tanh's
    "swish": lambda x: x * _sigmoid64(x),
    "silu": lambda x: x * _sigmoid64(x),
    "softplus": lambda x: np.logaddexp(0.0, x),
}
ACTIVATIONS = {
    None: lambda x: x,
    "linear": lambda x: x,
    "relu": lambda x: np.maximum(x, 0),
    "relu6": lambda x: np.clip(x, 0, 6),
    "softmax": lambda x: _softmax(x, -1),
    **{name: lambda x, f=f: f(x.astype(np.float64)).astype(np.float32) for name, f in _IN_FLOAT64.items()},
}


def _activation(name):
    if not (name is None or isinstance(name, str)) or name not in ACTIVATIONS:
        raise _Problem("the function it applies is not one the grader implements")
    return ACTIVATIONS[name]


# -- sliding windows -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Window:
    """A kernel or pooling window sliding over (batch, height, width, channels) inputs."""

    size: tuple[int, int]
    strides: tuple[int, int]
    dilation: tuple[int, int]
    same: bool  # pad so that the output has ceil(input / stride) pixels; else no padding

    @classmethod
    def read(cls, config: dict, size_key: str, dilation: bool = True) -> _Window:
        size = _pair(config.get(size_key), "the window size")
        strides = config.get("strides", 1)
        padding = config.get("padding", "valid")
        if not isinstance(padding, str) or padding.lower() not in ("valid", "same"):
            raise _Problem("its padding is neither of the two kinds the grader implements")
        return cls(
            size,
            size if strides is None else _pair(strides, "the strides"),
            _pair(config.get("dilation_rate", 1), "the dilation") if dilation else (1, 1),
            padding.lower() == "same",
        )

    @property
    def span(self) -> tuple[int, int]:
        """Input pixels that one window covers along each axis."""
        return tuple(d * (k - 1) + 1 for k, d in zip(self.size, self.dilation, strict=True))

    def output(self, height, width) -> tuple:
        """Output (height, width) for an input of (height, width); None stays None."""
        sides = []
        for n, span, stride in zip((height, width), self.span, self.strides, strict=True):
            side = None if n is None else -(-n // stride) if self.same else (n - span) // stride + 1
            if side is not None and side < 1:
                raise _Problem(f"its input, {n} pixels across, is smaller than its window of {span}")
            sides.append(side)
        return tuple(sides)

    def pad(self, x: np.ndarray, value: float = 0.0) -> np.ndarray:
        """``x`` padded as TensorFlow pads "same": half before, the odd pixel after."""
        if not self.same:
            return x
        pads = []
        for n, span, stride in zip(x.shape[1:3], self.span, self.strides, strict=True):
            total = max((-(-n // stride) - 1) * stride + span - n, 0)
            pads.append((total // 2, total - total // 2))
        return np.pad(x, ((0, 0), *pads, (0, 0)), constant_values=value) if any(map(any, pads)) else x

    def taps(self, xp: np.ndarray):
        """For each window position (i, j): the (batch, out height, out width, channels) view of
        the padded input ``xp`` that it sees."""
        (kh, kw), (sh, sw), (dh, dw) = self.size, self.strides, self.dilation
        ho, wo = ((n - span) // s + 1 for n, span, s in zip(xp.shape[1:3], self.span, self.strides, strict=True))
        for i in range(kh):
            for j in range(kw):
                yield i, j, xp[:, i * dh : i * dh + sh * (ho - 1) + 1 : sh, j * dw : j * dw + sw * (wo - 1) + 1 : sw]

    def patches(self, xp: np.ndarray) -> np.ndarray:
        """A view (batch, out height, out width, kh, kw, channels) of every window of ``xp``;
        channels last, so that copying it copies runs of contiguous values."""
        windows = sliding_window_view(xp, self.span, axis=(1, 2))
        windows = windows[:, :: self.strides[0], :: self.strides[1], :, :: self.dilation[0], :: self.dilation[1]]
        return windows.transpose(0, 1, 2, 4, 5, 3)


def _convolve(xp: np.ndarray, kernel: np.ndarray, window: _Window) -> np.ndarray:
    """Grouped convolution as matrix products over blocks of patches (im2col).

    ``xp`` (N, Hp, Wp, C), already padded; ``kernel`` (G, kh * kw * C/G, F/G), see
    :meth:`_Conv.prepare`. Returns (N, Ho, Wo, F). Patches are copied a block of images or
    rows at a time, at most :data:`PATCH_BUDGET` values, so memory stays near the output's.
    """
    windows = window.patches(xp)
    n, ho, wo, kh, kw, channels = windows.shape
    groups, depth, per_group = kernel.shape
    out = np.empty((n, ho, wo, groups * per_group), np.float32)
    per_row = wo * kh * kw * channels
    rows = max(1, min(ho, PATCH_BUDGET // per_row))
    images = max(1, PATCH_BUDGET // (per_row * ho)) if rows == ho else 1
    for first in range(0, n, images):
        for top in range(0, ho, rows):
            block = windows[first : first + images, top : top + rows]
            target = out[first : first + images, top : top + rows]
            for g in range(groups):
                patches = block[..., g * (channels // groups) : (g + 1) * (channels // groups)].reshape(-1, depth)
                target[..., g * per_group : (g + 1) * per_group] = (patches @ kernel[g]).reshape(
                    target.shape[:3] + (-1,)
                )
    return out


def _last_axis_product(x: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """``x`` (..., K) times ``matrix`` (K, M): (..., M), as one 2-D product (one BLAS call)."""
    return (x.reshape(-1, x.shape[-1]) @ matrix).reshape(x.shape[:-1] + matrix.shape[1:])


def _depthwise(xp: np.ndarray, kernel: np.ndarray, window: _Window) -> np.ndarray:
    """Depthwise convolution of the padded ``xp`` (N, Hp, Wp, C) with ``kernel`` (kh, kw, C, M):
    (N, Ho, Wo, C * M), output channel c * M + m. One multiply-add over the output per kernel
    position, into two buffers of the output's size, whatever the kernel."""
    total, term = None, None
    for i, j, view in window.taps(xp):
        if total is None:
            total = view[..., None] * kernel[i, j]
            term = np.empty_like(total)
        else:
            total += np.multiply(view[..., None], kernel[i, j], out=term)
    return total.reshape(total.shape[:3] + (-1,))


# -- layers --------------------------------------------------------------------------------------


def _weight_keys(*names: str) -> set[str]:
    return {f"{name}_{part}" for name in names for part in ("initializer", "regularizer", "constraint")}


class _Op:
    """One allow-listed layer: options read once from its config, shapes, and computation.

    ``options`` are the config keys a subclass reads; ``inert`` those that play no part at
    inference (names, initializers, regularizers, constraints, drop-out rates). Any other key
    must be null. ``takes_list`` marks the layers called on a list of tensors.
    """

    options: frozenset = frozenset()
    inert = frozenset({"name", "trainable", "dtype", "activity_regularizer"})
    takes_list = False

    def __init__(self, config: dict):
        for key, value in config.items():
            if value is not None and key not in self.options and key not in self.inert:
                raise _Problem("it has an option that the grader does not implement")
        if config.get("data_format") not in (None, "channels_last"):
            raise _Problem("the grader computes channels-last layouts (height, width, channels) only")
        dtype = config.get("dtype")
        if isinstance(dtype, dict) and dtype.get("class_name") == "DTypePolicy":
            dtype = (dtype.get("config") or {}).get("name")
        if dtype not in (None, "float32"):
            raise _Problem("the grader computes in 32-bit floating point only, and this layer asks for another type")
        self.read(config)

    def read(self, config: dict) -> None:
        """Read and check the options."""

    def infer(self, shapes: list[tuple]) -> tuple[tuple, list[tuple]]:
        """Output shape and weight shapes for inputs of ``shapes``."""
        return shapes[0], []

    def prepare(self, weights: list[np.ndarray]) -> list[np.ndarray]:
        """The weights rearranged once for :meth:`run`."""
        return weights

    def run(self, inputs: list[np.ndarray], weights: list[np.ndarray]) -> np.ndarray:
        """The output for a batch of ``inputs``; the identity unless a subclass says otherwise."""
        return inputs[0]


class _Affine(_Op):
    """A layer computing ``activation(linear(x) + bias)``: the convolutions and Dense."""

    def read(self, config):
        self.use_bias = _flag(config.get("use_bias", True), "the use of a bias")
        self.activation = _activation(config.get("activation"))

    def _bias(self, size: int) -> list[tuple]:
        """The shape of the bias, if the layer has one."""
        return [(size,)] if self.use_bias else []

    def _finish(self, y: np.ndarray, weights: list[np.ndarray]) -> np.ndarray:
        """``activation(y + bias)``, adding in place: ``y`` is always a fresh array here."""
        if self.use_bias:
            y += weights[-1]
        return self.activation(y)


class _Input(_Op):
    options = frozenset({"batch_shape", "batch_input_shape", "sparse", "ragged", "optional"})

    def read(self, config):
        batch_shape = config.get("batch_shape", config.get("batch_input_shape"))
        if not isinstance(batch_shape, list) or not batch_shape:
            raise _Problem("it does not give the shape of its input")
        self.shape = _shape(batch_shape[1:], "its input shape")
        if any(config.get(key) for key in ("sparse", "ragged", "optional")):
            raise _Problem("the grader takes ordinary inputs (not sparse or ragged) that are always given")


class _Conv(_Affine):
    """Conv2D: act(x * kernel + bias), kernel (kh, kw, C / groups, filters)."""

    options = frozenset({"filters", "kernel_size", "strides", "padding", "data_format", "dilation_rate", "groups"})
    options |= {"activation", "use_bias"}
    inert = _Op.inert | _weight_keys("kernel", "bias")

    def read(self, config):
        super().read(config)
        self.filters = _whole(config.get("filters"), "the number of filters")
        self.groups = _whole(config.get("groups", 1), "the number of groups")
        self.window = _Window.read(config, "kernel_size")
        if self.filters % self.groups:
            raise _Problem(f"{self.filters} filters do not split into {self.groups} groups")
        if max(self.window.strides) > 1 and max(self.window.dilation) > 1:
            raise _Problem("it has both strides and dilation above 1, which the convolution does not allow")

    def infer(self, shapes):
        height, width, channels = _image(shapes[0])
        if _known(channels, "the number of input channels") % self.groups:
            raise _Problem(f"its {channels} input channels do not split into {self.groups} groups")
        kernel = (*self.window.size, channels // self.groups, self.filters)
        return (*self.window.output(height, width), self.filters), [kernel] + self._bias(self.filters)

    def prepare(self, weights):
        kh, kw, depth, filters = weights[0].shape
        # one (kh * kw * C/G, F/G) matrix per group: group g makes filters g*F/G to (g+1)*F/G - 1
        grouped = weights[0].reshape(kh, kw, depth, self.groups, filters // self.groups).transpose(3, 0, 1, 2, 4)
        return [np.ascontiguousarray(grouped).reshape(self.groups, kh * kw * depth, -1), *weights[1:]]

    def run(self, inputs, weights):
        return self._finish(_convolve(self.window.pad(inputs[0]), weights[0], self.window), weights)


class _Depthwise(_Affine):
    """DepthwiseConv2D: act(depthwise(x) + bias), kernel (kh, kw, C, depth_multiplier)."""

    options = frozenset({"depth_multiplier", "kernel_size", "strides", "padding", "data_format", "dilation_rate"})
    options |= {"activation", "use_bias"}
    inert = _Op.inert | _weight_keys("depthwise", "bias")

    def read(self, config):
        super().read(config)
        self.multiplier = _whole(config.get("depth_multiplier", 1), "the depth multiplier")
        self.window = _Window.read(config, "kernel_size")

    def infer(self, shapes):
        height, width, channels = _image(shapes[0])
        kernel = (*self.window.size, _known(channels, "the number of input channels"), self.multiplier)
        out = channels * self.multiplier
        return (*self.window.output(height, width), out), [kernel] + self._bias(out)

    def run(self, inputs, weights):
        return self._finish(_depthwise(self.window.pad(inputs[0]), weights[0], self.window), weights)


class _Separable(_Depthwise):
    """SeparableConv2D: act(pointwise(depthwise(x)) + bias), kernels (kh, kw, C, M), (1, 1, C * M, filters)."""

    options = _Depthwise.options | {"filters"}
    inert = _Depthwise.inert | _weight_keys("pointwise")

    def read(self, config):
        super().read(config)
        self.filters = _whole(config.get("filters"), "the number of filters")

    def infer(self, shapes):
        (height, width, channels), _ = super().infer(shapes)
        kernels = [(*self.window.size, shapes[0][2], self.multiplier), (1, 1, channels, self.filters)]
        return (height, width, self.filters), kernels + self._bias(self.filters)

    def run(self, inputs, weights):
        y = _depthwise(self.window.pad(inputs[0]), weights[0], self.window)
        return self._finish(_last_axis_product(y, weights[1][0, 0]), weights)


class _Dense(_Affine):
    """Dense on the last axis of an input of any rank: act(x @ kernel + bias), kernel (in, units)."""

    options = frozenset({"units", "activation", "use_bias"})
    inert = _Op.inert | _weight_keys("kernel", "bias")

    def read(self, config):
        super().read(config)
        self.units = _whole(config.get("units"), "the number of units")

    def infer(self, shapes):
        if not shapes[0]:
            raise _Problem("its input has no axis besides the batch")
        size = _known(shapes[0][-1], "the size of the input's last axis")
        return (*shapes[0][:-1], self.units), [(size, self.units)] + self._bias(self.units)

    def run(self, inputs, weights):
        return self._finish(_last_axis_product(inputs[0], weights[0]), weights)


class _Pool(_Op):
    """MaxPooling2D and AveragePooling2D; "same" averages over the pixels inside the input only, as TensorFlow does."""

    options = frozenset({"pool_size", "strides", "padding", "data_format"})
    average = False

    def read(self, config):
        self.window = _Window.read(config, "pool_size", dilation=False)

    def infer(self, shapes):
        height, width, channels = _image(shapes[0])
        return (*self.window.output(height, width), channels), []

    def run(self, inputs, weights):
        x = inputs[0]
        padded = self.window.pad(x, 0.0 if self.average else -np.inf)
        out = None
        for _, _, view in self.window.taps(padded):
            if out is None:
                out = view.copy()
            elif self.average:
                out += view
            else:
                np.maximum(out, view, out=out)
        if not self.average:
            return out
        inside = self.window.pad(np.ones((1, *x.shape[1:3], 1), np.float32))  # 1 inside, 0 in the padding
        return out / sum(view for _, _, view in self.window.taps(inside))


class _AveragePool(_Pool):
    average = True


class _GlobalPool(_Op):
    """GlobalAveragePooling2D and GlobalMaxPooling2D: (H, W, C) -> (C,), or (1, 1, C) with keepdims."""

    options = frozenset({"data_format", "keepdims"})
    reduce = staticmethod(np.max)

    def read(self, config):
        self.keepdims = _flag(config.get("keepdims", False), "keepdims")

    def infer(self, shapes):
        channels = _image(shapes[0])[2]
        return ((1, 1, channels) if self.keepdims else (channels,)), []

    def run(self, inputs, weights):
        return self.reduce(inputs[0], axis=(1, 2), keepdims=self.keepdims)


class _GlobalAverage(_GlobalPool):
    @staticmethod
    def reduce(x, axis, keepdims):
        # a float64 sum: a 112x112 map adds 12,544 values, one after the other along these axes
        return np.mean(x, axis=axis, keepdims=keepdims, dtype=np.float64).astype(np.float32)


class _Flatten(_Op):
    options = frozenset({"data_format"})

    def infer(self, shapes):
        return (None if None in shapes[0] else math.prod(shapes[0]),), []

    def run(self, inputs, weights):
        return inputs[0].reshape(len(inputs[0]), -1)


class _Reshape(_Op):
    options = frozenset({"target_shape"})

    def read(self, config):
        target = config.get("target_shape")
        if not isinstance(target, list) or not 0 < len(target) <= 8 or target.count(-1) > 1:
            raise _Problem("its target shape is not a short list of sizes with at most one left to work out")
        self.target = tuple(-1 if v == -1 else _whole(v, "the target shape") for v in target)

    def infer(self, shapes):
        known = math.prod(v for v in self.target if v != -1)
        size = None if None in shapes[0] else math.prod(shapes[0])
        if size is not None and (size % known if -1 in self.target else size != known):
            raise _Problem(f"it cannot arrange {size} values into the target shape")
        return tuple((size // known if size is not None else None) if v == -1 else v for v in self.target), []

    def run(self, inputs, weights):
        return inputs[0].reshape((len(inputs[0]), *self.target))


class _Dropout(_Op):
    """Dropout and SpatialDropout2D: the identity at inference."""

    inert = _Op.inert | {"rate", "seed", "noise_shape"}
    options = frozenset({"data_format"})


class _SpatialDropout(_Dropout):
    def infer(self, shapes):
        return _image(shapes[0]), []


class _BatchNorm(_Op):
    """BatchNormalization at inference: gamma * (x - moving_mean) / sqrt(moving_variance + epsilon) + beta."""

    options = frozenset({"axis", "epsilon", "center", "scale", "renorm"})
    inert = _Op.inert | _weight_keys("gamma", "beta") | {"momentum", "synchronized", "renorm_momentum"}
    inert |= {"renorm_clipping", "moving_mean_initializer", "moving_variance_initializer"}

    def read(self, config):
        self.axis = config.get("axis", -1)
        self.epsilon = _number(config.get("epsilon", 1e-3), "epsilon", minimum=0)
        self.center = _flag(config.get("center", True), "center")
        self.scale = _flag(config.get("scale", True), "scale")
        if config.get("renorm"):  # its extra moving statistics change the weights
            raise _Problem("the grader does not implement batch renormalization")

    def infer(self, shapes):
        if not shapes[0] or self.axis not in (-1, len(shapes[0])):
            raise _Problem("it normalizes an axis other than the last, the only one the grader implements")
        channels = _known(shapes[0][-1], "the number of channels")
        return shapes[0], [(channels,)] * (self.scale + self.center + 2)

    def prepare(self, weights):
        # The same arithmetic as tf.nn.batch_normalization, in float32.
        mean, variance = weights[-2:]
        inverse = 1 / np.sqrt(variance + np.float32(self.epsilon))
        if self.scale:
            inverse = inverse * weights[0]
        beta = weights[int(self.scale)] if self.center else 0
        return [inverse, beta - mean * inverse]

    def run(self, inputs, weights):
        return inputs[0] * weights[0] + weights[1]


class _ReLU(_Op):
    """ReLU(max_value, negative_slope, threshold), computed as keras.activations.relu computes it."""

    options = frozenset({"max_value", "negative_slope", "threshold"})

    def read(self, config):
        limit = config.get("max_value")
        self.max_value = None if limit is None else _number(limit, "the maximum value", minimum=0)
        self.slope = _number(config.get("negative_slope", 0.0), "the negative slope", minimum=0)
        self.threshold = _number(config.get("threshold", 0.0), "the threshold", minimum=0)

    def run(self, inputs, weights):
        x, slope, threshold = inputs[0], self.slope, self.threshold
        if slope and self.max_value is None and not threshold:
            return np.where(x > 0, x, np.float32(slope) * x)
        y = np.where(x > threshold, x, np.float32(0)) if threshold else np.maximum(x, 0)
        if self.max_value is not None:
            y = np.clip(y, 0, np.float32(self.max_value))
        if slope:
            y = y - np.float32(slope) * np.maximum(np.float32(threshold) - x, 0)
        return y


class _Activation(_Op):
    options = frozenset({"activation"})

    def read(self, config):
        self.activation = _activation(config.get("activation"))

    def run(self, inputs, weights):
        return self.activation(inputs[0])


class _Softmax(_Op):
    options = frozenset({"axis"})

    def read(self, config):
        axis = config.get("axis", -1)
        self.axis = tuple(axis) if isinstance(axis, list) else axis

    def infer(self, shapes):
        _axes(list(self.axis) if isinstance(self.axis, tuple) else self.axis, len(shapes[0]) + 1, "its axis")
        return shapes[0], []

    def run(self, inputs, weights):
        return _softmax(inputs[0], self.axis)


class _Add(_Op):
    takes_list = True

    def infer(self, shapes):
        if any(shape != shapes[0] for shape in shapes):
            raise _Problem("its inputs differ in shape: " + ", ".join(map(str, shapes)))
        return shapes[0], []

    def run(self, inputs, weights):
        total = inputs[0]
        for x in inputs[1:]:  # in Keras's order, which float32 rounding can tell apart
            total = total + x
        return total


class _Concatenate(_Op):
    options = frozenset({"axis"})
    takes_list = True

    def read(self, config):
        self.axis = config.get("axis", -1)

    def infer(self, shapes):
        if isinstance(self.axis, list) or any(len(shape) != len(shapes[0]) for shape in shapes):
            raise _Problem("its inputs do not line up: " + ", ".join(map(str, shapes)))
        (axis,) = _axes(self.axis, len(shapes[0]) + 1, "its axis")
        if len({shape[: axis - 1] + shape[axis:] for shape in shapes}) != 1:
            raise _Problem("its inputs do not line up: " + ", ".join(map(str, shapes)))
        sides = [shape[axis - 1] for shape in shapes]
        return shapes[0][: axis - 1] + (None if None in sides else sum(sides),) + shapes[0][axis:], []

    def run(self, inputs, weights):
        return np.concatenate(inputs, axis=self.axis)


class _Rescaling(_Op):
    """x * scale + offset, in float32; scale and offset are numbers or per-channel lists."""

    options = frozenset({"scale", "offset"})

    def read(self, config):
        self.scale = _numbers(config.get("scale"), "the scale")
        self.offset = _numbers(config.get("offset", 0.0), "the offset")

    def infer(self, shapes):
        for values in (self.scale, self.offset):
            tail = shapes[0][len(shapes[0]) - values.ndim :] if values.ndim else ()
            if values.ndim > len(shapes[0]) or any(v != 1 and v != n for v, n in zip(values.shape, tail, strict=True)):
                raise _Problem(f"its scale or offset of shape {values.shape} does not fit inputs of shape {shapes[0]}")
        return shapes[0], []

    def run(self, inputs, weights):
        return inputs[0] * self.scale + self.offset


class _ZeroPadding(_Op):
    options = frozenset({"padding", "data_format"})

    def read(self, config):
        padding = config.get("padding", 1)
        sides = padding if isinstance(padding, list) and len(padding) == 2 else [padding, padding]
        self.pads = tuple(_pair(side, "the padding", minimum=0) for side in sides)

    def infer(self, shapes):
        height, width, channels = _image(shapes[0])
        (top, bottom), (left, right) = self.pads
        grow = [None if n is None else n + a + b for n, a, b in ((height, top, bottom), (width, left, right))]
        return (*grow, channels), []

    def run(self, inputs, weights):
        return np.pad(inputs[0], ((0, 0), *self.pads, (0, 0)))


OPS = {
    "InputLayer": _Input,
    "Conv2D": _Conv,
    "DepthwiseConv2D": _Depthwise,
    "SeparableConv2D": _Separable,
    "Dense": _Dense,
    "MaxPooling2D": _Pool,
    "AveragePooling2D": _AveragePool,
    "GlobalAveragePooling2D": _GlobalAverage,
    "GlobalMaxPooling2D": _GlobalPool,
    "Flatten": _Flatten,
    "Reshape": _Reshape,
    "Dropout": _Dropout,
    "SpatialDropout2D": _SpatialDropout,
    "BatchNormalization": _BatchNorm,
    "ReLU": _ReLU,
    "Activation": _Activation,
    "Softmax": _Softmax,
    "Add": _Add,
    "Concatenate": _Concatenate,
    "Rescaling": _Rescaling,
    "ZeroPadding2D": _ZeroPadding,
}
