"""The grader's NumPy forward pass (cnnlab.grading.forward) against Keras itself.

Every model here is built with Keras, given random weights that no initializer would give
(biases, BatchNorm scales, offsets and moving statistics included, so a swapped array shows),
exported as the export cells export it (``to_json()`` and ``get_weights()``), and run both ways.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
from keras import layers

import cnnlab
from cnnlab.grading import numpy_layers
from cnnlab.grading.forward import ForwardError, Network
from cnnlab.grading.modelsize import model_size
from cnnlab.grading.safe_io import ALLOWED_ACTIVATIONS, ALLOWED_LAYERS, check_config

RTOL = 1e-4  # relative to the largest output; float32 sums in another order differ by ~1e-7


def randomize(model: keras.Model, seed: int = 0) -> None:
    """Kernels keep their (random) initial values; everything else is drawn anew."""
    rng = np.random.default_rng(seed)
    weights = []
    for variable in model.weights:
        value, kind = variable.numpy(), variable.path.rsplit("/", 1)[-1]
        if kind == "moving_variance":
            value = rng.uniform(0.3, 2.0, value.shape)
        elif kind == "gamma":
            value = rng.uniform(0.5, 1.5, value.shape)
        elif kind in ("beta", "bias", "moving_mean"):
            value = rng.normal(0.0, 0.3, value.shape)
        weights.append(value.astype(np.float32))
    model.set_weights(weights)


def export(model: keras.Model) -> tuple[dict, list[np.ndarray]]:
    """What an export cell writes, read back (cnnlab.grading.export.export_model)."""
    return json.loads(model.to_json()), [np.asarray(w) for w in model.get_weights()]


def images(shape, n: int = 4, seed: int = 1, scale: float = 1.0) -> np.ndarray:
    return (scale * np.random.default_rng(seed).normal(size=(n, *shape))).astype(np.float32)


def assert_matches(model: keras.Model, x: np.ndarray, sized: bool = True, batch_size: int = 3) -> Network:
    """Network's predictions equal Keras's inference, and it counts the same parameters.

    ``sized``: the config also passes the grader's own size check (modelsize), as exports must.
    """
    randomize(model)
    config, weights = export(model)
    check_config(config)
    if sized:
        assert model_size(config).parameters == model.count_params()
    net = Network.from_config(config, weights)
    expected = np.asarray(model(x, training=False))
    actual = net.predict(x, batch_size=batch_size)
    assert actual.dtype == np.float32 and actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=RTOL * np.abs(expected).max())
    assert net.parameters == model.count_params()
    assert net.output_shape == tuple(model.output_shape[1:])
    return net


# -- every layer and option ---------------------------------------------------------------------


def convolutions():
    inputs = keras.Input((13, 11, 5))
    x = layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(inputs)  # 7x6: odd sides, "same"
    x = layers.Conv2D(12, 3, groups=4, padding="same", activation="gelu")(x)
    x = layers.Conv2D(6, (3, 2), strides=(2, 3), use_bias=False, activation="elu")(x)
    y = layers.Conv2D(6, 3, dilation_rate=2, padding="same", activation="selu")(inputs)
    y = layers.Conv2D(6, (2, 4), strides=(3, 2), groups=2, padding="same")(y)
    y = layers.Conv2D(6, 1, strides=2, padding="same")(y)  # 1x1 with strides: no patches to copy
    x = layers.Concatenate()([layers.GlobalAveragePooling2D()(x), layers.GlobalMaxPooling2D()(y)])
    return keras.Model(inputs, layers.Dense(4, activation="softmax")(x)), images((13, 11, 5))


def depthwise_and_separable():
    inputs = keras.Input((15, 12, 4))
    x = layers.DepthwiseConv2D(3, strides=2, padding="same", depth_multiplier=2, activation="swish")(inputs)
    x = layers.DepthwiseConv2D(5, dilation_rate=2, padding="same", use_bias=False)(x)
    x = layers.SeparableConv2D(7, 3, strides=2, padding="same", depth_multiplier=2, activation="softplus")(x)
    y = layers.DepthwiseConv2D((3, 2), strides=2, dilation_rate=2, padding="same")(inputs)  # Keras 3.15 allows both
    y = layers.SeparableConv2D(5, (2, 3), dilation_rate=(2, 1), use_bias=False, activation="tanh")(y)
    y = layers.SeparableConv2D(7, 3, strides=2, padding="same", activation="silu")(y)
    x = layers.Concatenate()([layers.Flatten()(x), layers.Flatten()(y)])
    return keras.Model(inputs, layers.Dense(3)(x)), images((15, 12, 4))


def pooling():
    inputs = keras.Input((13, 10, 3))
    a = layers.MaxPooling2D(3, strides=2, padding="same")(inputs)
    b = layers.AveragePooling2D(3, strides=2, padding="same")(inputs)  # edges average fewer pixels
    c = layers.AveragePooling2D(4, strides=3, padding="same")(inputs)
    d = layers.MaxPooling2D((2, 3), strides=(1, 2))(inputs)
    e = layers.AveragePooling2D(2)(inputs)
    f = layers.GlobalAveragePooling2D(keepdims=True)(layers.ReLU()(b))
    parts = [layers.Flatten()(t) for t in (a, b, c, d, e, f)] + [layers.GlobalMaxPooling2D()(c)]
    return keras.Model(inputs, layers.Concatenate()(parts)), images((13, 10, 3))


def batch_norm():
    inputs = keras.Input((6, 5, 4))
    x = layers.BatchNormalization()(inputs)
    x = layers.BatchNormalization(center=False, epsilon=0.01)(x)
    x = layers.BatchNormalization(scale=False)(x)
    x = layers.BatchNormalization(center=False, scale=False, axis=3)(x)
    x = layers.Dense(7)(layers.Flatten()(x))
    x = layers.BatchNormalization(momentum=0.5)(x)  # on (batch, features)
    return keras.Model(inputs, x), images((6, 5, 4))


def relu_options():
    inputs = keras.Input((24,))
    variants = [
        layers.ReLU(),
        layers.ReLU(max_value=6.0),
        layers.ReLU(max_value=2.5),
        layers.ReLU(negative_slope=0.2),
        layers.ReLU(negative_slope=1.5),
        layers.ReLU(threshold=0.5),
        layers.ReLU(max_value=3.0, negative_slope=0.1, threshold=0.5),
        layers.ReLU(max_value=4.0, threshold=1.0),
        layers.ReLU(negative_slope=0.3, threshold=0.7),
    ]
    return keras.Model(inputs, layers.Concatenate()([v(inputs) for v in variants])), images((24,), 8, scale=3.0)


def shapes_and_merges():
    inputs = keras.Input((6, 4, 3))
    x = layers.Rescaling([0.5, 2.0, -1.0], offset=[0.1, 0.2, 0.3])(inputs)  # per channel
    x = layers.Rescaling(1 / 255.0, offset=-0.5)(x)
    a = layers.ZeroPadding2D(((1, 3), (3, 1)))(x)  # each to 10x8, the image in another place
    b = layers.ZeroPadding2D(2)(x)
    c = layers.ZeroPadding2D((1, 2))(layers.ZeroPadding2D(((1, 1), (0, 0)))(x))
    x = layers.Add()([a, b, c])
    x = layers.SpatialDropout2D(0.5)(x)
    x = layers.Conv2D(4, 3, padding="same")(x)
    x = layers.Softmax(axis=1)(x)
    x = layers.Concatenate(axis=1)([x, layers.Softmax(axis=[1, 2])(x), layers.Softmax()(x)])  # 30x8x4
    x = layers.Reshape((30, 32))(x)
    x = layers.Dense(6, activation="sigmoid")(x)  # on (batch, 30, 32): the last axis
    x = layers.BatchNormalization()(x)
    x = layers.Dropout(0.5)(layers.Reshape((-1, 9))(layers.Flatten()(x)))
    return keras.Model(inputs, layers.Activation("relu6")(x)), images((6, 4, 3), scale=100.0)


def nested_and_shared():
    block = keras.Sequential(
        [keras.Input((6, 6, 4)), layers.Conv2D(4, 3, padding="same"), layers.BatchNormalization(), layers.ReLU()]
    )
    inner_inputs = keras.Input((6, 6, 4))
    inner = keras.Model(inner_inputs, layers.Add()([layers.Conv2D(4, 1)(inner_inputs), inner_inputs]))
    inputs = keras.Input((11, 11, 3))
    x = layers.Conv2D(4, 3, strides=2, padding="same")(inputs)
    shared = layers.Conv2D(4, 3, padding="same", activation="tanh")
    a = shared(x)
    y = inner(inner(block(block(shared(a)))))  # each nested model and the shared layer called twice
    outputs = layers.Dense(3)(layers.GlobalMaxPooling2D()(layers.Concatenate()([y, a])))
    return keras.Model(inputs, outputs), images((11, 11, 3))


def deferred_call():
    """A shared layer whose second call takes the output of a layer listed after it, which
    Keras's from_config makes later (modelsize refuses it: it reads the layers in one pass)."""
    inputs = keras.Input((5, 5, 2))
    shared = layers.Conv2D(2, 3, padding="same", activation="tanh")
    y = shared(layers.Conv2D(2, 1)(shared(inputs)))
    return keras.Model(inputs, layers.Add()([y, inputs])), images((5, 5, 2))


def sequential_with_nested_functional():
    inner_inputs = keras.Input((8, 8, 2))
    inner = keras.Model(inner_inputs, layers.MaxPooling2D()(layers.Conv2D(3, 3, padding="same")(inner_inputs)))
    model = keras.Sequential([keras.Input((8, 8, 2)), inner, layers.Flatten(), layers.Dense(5, activation="relu")])
    return model, images((8, 8, 2))


def built_sequential():
    model = keras.Sequential([layers.Dense(6, activation="elu"), layers.Dense(2, activation="softmax")])
    model.build((None, 5))
    return model, images((5,))


def open_sides():
    inputs = keras.Input((None, None, 3))
    x = layers.Conv2D(4, 3, strides=2, padding="same")(inputs)
    x = layers.MaxPooling2D(2, padding="same")(x)
    return keras.Model(inputs, layers.Dense(2)(layers.GlobalAveragePooling2D()(x))), images((17, 23, 3), 3)


MODELS = [convolutions, depthwise_and_separable, pooling, batch_norm, relu_options, nested_and_shared]
MODELS += [sequential_with_nested_functional, built_sequential, open_sides]
# modelsize refuses these (Concatenate on another axis than the channels, Reshape's -1, a call
# that comes after a later layer's): they run without it
UNSIZED = [shapes_and_merges, deferred_call]


@pytest.mark.parametrize("build", MODELS + UNSIZED, ids=lambda f: f.__name__)
def test_matches_keras(build):
    keras.utils.set_random_seed(0)
    model, x = build()
    assert_matches(model, x, sized=build not in UNSIZED)


@pytest.mark.parametrize("activation", sorted(a for a in ALLOWED_ACTIVATIONS if a is not None))
def test_every_activation_matches_keras(activation):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8,))
    x = layers.Dense(8, activation=activation)(inputs)
    model = keras.Model(inputs, layers.Dense(4)(layers.Activation(activation)(x)))
    x = images((8,), 64, scale=6.0)
    assert_matches(model, x, batch_size=64)
    # Elementwise, to a few float32 steps, tails included (GELU's tanh form is 2e-4 away).
    grid = np.concatenate([np.linspace(-12, 12, 2401), [-90, -40, -20, 20, 40, 90]]).astype(np.float32)[None]
    inputs = keras.Input(grid.shape[1:])
    model = keras.Model(inputs, layers.Activation(activation)(inputs))
    actual = Network.from_config(*export(model)).predict(grid)
    np.testing.assert_allclose(actual, model(grid), rtol=1e-5, atol=1e-30)


def test_depthwise_with_unequal_strides_is_a_grouped_convolution():
    """TensorFlow's CPU kernel refuses unequal depthwise strides; a grouped convolution with one
    group per channel computes the same, and Keras runs that."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((9, 10, 3))
    depthwise = keras.Model(inputs, layers.DepthwiseConv2D(3, strides=(1, 2), padding="same")(inputs))
    grouped = keras.Model(inputs, layers.Conv2D(3, 3, strides=(1, 2), padding="same", groups=3)(inputs))
    randomize(depthwise)
    kernel, bias = depthwise.get_weights()
    grouped.set_weights([kernel.transpose(0, 1, 3, 2), bias])  # (3, 3, channels, 1) -> (3, 3, 1, channels)
    x = images((9, 10, 3))
    actual = Network.from_config(*export(depthwise)).predict(x)
    np.testing.assert_allclose(actual, grouped(x), rtol=RTOL, atol=RTOL * np.abs(actual).max())


def test_what_the_config_may_leave_out_has_keras_defaults():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6, 6, 2))
    x = layers.MaxPooling2D(2)(layers.Conv2D(3, 3, activation="linear")(inputs))
    model = keras.Model(inputs, x)
    config, weights = export(model)
    config["config"]["layers"][1]["config"]["activation"] = None
    config["config"]["layers"][2]["config"]["strides"] = None  # None: the pool size
    actual = Network.from_config(config, weights).predict(images((6, 6, 2)))
    np.testing.assert_allclose(actual, model(images((6, 6, 2))), rtol=RTOL, atol=1e-6)


def test_mobilenet_v2():
    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV2(input_shape=(96, 96, 3), alpha=0.35, weights=None)
    net = assert_matches(model, images((96, 96, 3), 4), batch_size=2)
    assert {layer.kind for layer in net.layers} >= {"ZeroPadding2D", "DepthwiseConv2D", "ReLU", "Add"}


def test_efficientnet_lite0():
    keras.utils.set_random_seed(0)
    model = cnnlab.models.efficientnet_lite0(weights=None)
    x = np.random.default_rng(2).uniform(-1, 1, (8, 224, 224, 3)).astype(np.float32)
    randomize(model)
    net = Network.from_config(*export(model))
    start = time.perf_counter()
    actual = net.predict(x)
    assert time.perf_counter() - start < 30  # about 1 s on a free core; a loop in Python would take minutes
    expected = np.asarray(model(x[:4], training=False))
    np.testing.assert_allclose(actual[:4], expected, rtol=RTOL, atol=RTOL * expected.max())
    assert net.parameters == model.count_params() == 4_694_024


def test_lecture_convnet_on_two_thousand_images():
    keras.utils.set_random_seed(0)
    model = cnnlab.models.convnet(weight_decay=1e-4)
    randomize(model)
    net = Network.from_config(*export(model))
    x = np.random.default_rng(3).uniform(0, 1, (2_000, 28, 28, 1)).astype(np.float32)
    start = time.perf_counter()
    actual = net.predict(x)
    assert time.perf_counter() - start < 20  # 10,000 take about 3.5 s of one core
    expected = np.asarray(model(x[:500], training=False))
    np.testing.assert_allclose(actual[:500], expected, rtol=RTOL, atol=RTOL)
    assert actual.shape == (2_000, 10) and net.parameters == model.count_params() == 431_754
    # What hidden tests read off the architecture.
    conv1, conv2 = net.layers_of("Conv2D")
    assert (conv1.config["filters"], conv1.config["kernel_size"], conv1.config["padding"]) == (32, [5, 5], "valid")
    assert conv2.config["activation"] == "relu"
    assert conv2.config["kernel_regularizer"]["config"]["l2"] == pytest.approx(1e-4)
    assert [layer.config["units"] for layer in net.layers_of("Dense")] == [256, 10]
    assert net.input_shape == (28, 28, 1) and net.output_shape == (10,)


# -- weights: Keras's order, checked shapes ------------------------------------------------------


def test_layers_and_weights_are_in_keras_order():
    keras.utils.set_random_seed(0)
    model, _ = nested_and_shared()
    randomize(model)
    net = Network.from_config(*export(model))
    ours = [w for layer in net.layers for w in layer.weights]
    assert len(ours) == len(model.get_weights())
    assert all(np.array_equal(a, b) for a, b in zip(ours, model.get_weights(), strict=True))
    assert [layer.path for layer in net.layers][:4] == [
        "model.layers[0]",
        "model.layers[1]",
        "model.layers[2]",
        "model.layers[3].layers[0]",
    ]


def test_the_network_is_read_only():
    keras.utils.set_random_seed(0)
    net = Network.from_config(*export(built_sequential()[0]))
    dense = net.layers_of("Dense")[0]
    assert dense.name == dense.config["name"] and dense.path == "model.layers[0]"
    with pytest.raises(TypeError):
        dense.config["units"] = 3
    with pytest.raises(ValueError):
        dense.weights[0][0, 0] = 1.0
    with pytest.raises(ValueError, match="kind must be one of"):
        net.layers_of("Linear")


def secret_model() -> keras.Model:
    """Every name is one that must never reach a message."""
    inputs = keras.Input((8, 8, 3), name="zq_input")
    x = layers.Conv2D(4, 3, padding="same", name="zq_conv")(inputs)
    x = layers.BatchNormalization(name="zq_norm")(x)
    x = layers.ReLU(name="zq_rectifier")(x)
    x = layers.Dropout(0.1, name="zq_drop")(x)
    x = layers.Softmax(name="zq_softmax")(x)
    x = layers.MaxPooling2D(name="zq_pool")(x)
    x = layers.GlobalAveragePooling2D(name="zq_global")(x)
    return keras.Model(inputs, layers.Dense(2, name="zq_dense")(x), name="zq_model")


def config_strings(value) -> set[str]:
    """Every string value in a config (class names, layer names, options), not the keys."""
    if isinstance(value, dict):
        return set().union(*(config_strings(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(config_strings(v) for v in value)) if value else set()
    return {value} if isinstance(value, str) and len(value) >= 3 else set()


def assert_refused(config, weights, *match: str) -> ForwardError:
    with pytest.raises(ForwardError) as info:
        Network.from_config(config, weights)
    message = str(info.value)
    assert isinstance(info.value, ValueError) and message
    leaked = {s for s in config_strings(config) | set(ALLOWED_LAYERS) if s in message}
    assert not leaked, f"the message repeats {leaked}: {message}"
    for word in match:
        assert word in message
    return info.value


@pytest.mark.parametrize(
    "mistake",
    ["missing", "extra", "swapped", "transposed", "layers reordered", "not numeric"],
)
def test_weight_mistakes_are_refused(mistake):
    keras.utils.set_random_seed(0)
    config, weights = export(secret_model())
    if mistake == "missing":
        weights = weights[:-1]
    elif mistake == "extra":
        weights = [*weights, weights[-1]]
    elif mistake == "swapped":
        weights[0], weights[1] = weights[1], weights[0]
    elif mistake == "transposed":
        weights[-2] = weights[-2].T
    elif mistake == "layers reordered":
        weights = weights[2:] + weights[:2]
    else:
        weights[3] = np.array(["a"] * 4)
    assert_refused(config, weights, "weight")


def layer_named(config: dict, name: str) -> dict:
    return next(layer for layer in config["config"]["layers"] if layer["name"] == name)


MIXED = {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "mixed_float16"}, "registered_name": None}
REFUSALS = {
    "channels first": ("zq_conv", {"data_format": "channels_first"}),
    "mixed precision": ("zq_conv", {"dtype": MIXED}),
    "causal padding": ("zq_conv", {"padding": "causal"}),
    "strides with dilation": ("zq_conv", {"strides": [2, 2], "dilation_rate": [2, 2]}),
    "groups that do not divide": ("zq_conv", {"groups": 3}),
    "a kernel size of zero": ("zq_conv", {"kernel_size": [0, 3]}),
    "LoRA": ("zq_dense", {"lora_rank": 2}),
    "unknown activation": ("zq_dense", {"activation": "hard_sigmoid"}),
    "activation as an object": ("zq_dense", {"activation": {"class_name": "ReLU"}}),
    "renorm": ("zq_norm", {"renorm": True}),
    "normalizing another axis": ("zq_norm", {"axis": 1}),
    "softmax over the batch": ("zq_softmax", {"axis": 0}),
    "negative slope below zero": ("zq_rectifier", {"negative_slope": -0.5}),
    "a threshold that is text": ("zq_rectifier", {"threshold": "zq_text"}),
    "sparse input": ("zq_input", {"sparse": True}),
    "integer input": ("zq_input", {"dtype": "int32"}),
    "pooling padding": ("zq_pool", {"padding": "zq_full"}),
}


@pytest.mark.parametrize("change", sorted(REFUSALS))
def test_options_that_are_not_implemented_are_refused(change):
    config, weights = export(secret_model())
    name, options = REFUSALS[change]
    layer_named(config, name)["config"].update(options)
    assert_refused(config, weights)


def test_calls_and_layers_that_are_not_implemented_are_refused():
    config, weights = export(secret_model())
    lambda_config = copy.deepcopy(config)
    layer_named(lambda_config, "zq_dense")["class_name"] = "Lambda"
    assert_refused(lambda_config, weights, "model.layers[8]")
    training = copy.deepcopy(config)
    layer_named(training, "zq_drop")["inbound_nodes"][0]["kwargs"] = {"training": True}
    assert_refused(training, weights, "inference only")
    dangling = copy.deepcopy(config)
    layer_named(dangling, "zq_dense")["inbound_nodes"][0]["args"][0]["config"]["keras_history"][0] = "zq_elsewhere"
    assert_refused(dangling, weights)
    assert_refused({"class_name": "zq_Model", "config": {}}, weights)


def test_a_shared_layer_whose_weights_do_not_fit_a_later_call_is_refused():
    shared = layers.Dense(3, name="zq_shared")
    inputs = keras.Input((4,), name="zq_in")
    model = keras.Model(inputs, shared(layers.Dense(4, name="zq_mid")(shared(inputs))))
    config, weights = export(model)
    layer_named(config, "zq_mid")["config"]["units"] = 5  # the second call now gets 5 features, not 3
    assert_refused(config, weights, "called again")


def test_predict_checks_its_input():
    net = Network.from_config(*export(secret_model()))
    with pytest.raises(ForwardError, match=r"\(N, 8, 8, 3\)"):
        net.predict(np.zeros((2, 8, 9, 3)))
    with pytest.raises(ForwardError, match="not numeric"):
        net.predict(np.array([["x"]]))
    with pytest.raises(ValueError, match="batch_size"):
        net.predict(np.zeros((2, 8, 8, 3)), batch_size=0)
    assert net.predict(np.zeros((0, 8, 8, 3))).shape == (0, 2)
    assert net.predict(np.zeros((2, 8, 8, 3), np.uint8)).dtype == np.float32


def test_models_with_two_outputs_build_but_do_not_predict():
    inputs = keras.Input((4,))
    net = Network.from_config(*export(keras.Model(inputs, [layers.Dense(2)(inputs), layers.Dense(3)(inputs)])))
    assert net.parameters == 25
    with pytest.raises(ForwardError, match="2 outputs"):
        net.predict(np.zeros((1, 4)))


def test_every_allowed_layer_and_activation_is_implemented():
    assert set(numpy_layers.OPS) == ALLOWED_LAYERS
    assert ALLOWED_ACTIVATIONS <= set(numpy_layers.ACTIVATIONS)


def test_the_forward_pass_imports_neither_tensorflow_nor_keras():
    code = "import sys, cnnlab.grading.forward; sys.exit(bool({'tensorflow', 'keras'} & set(sys.modules)))"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
