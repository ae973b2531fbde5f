"""Hidden tests for lab 02, MLP vs ConvNet. Instructor material: never shipped to students.

The export cells run in the student's kernel and save plain data; the tests below run in
the grader's trusted process on that data, reading models as the grader's own NumPy networks
(no TensorFlow there). Hints never contain expected values.
"""

import numpy as np

from cnnlab.grading.hidden import HiddenTest

EXPORTS = [
    ("q1", "q1", 'export_model("q1_mlp", build_mlp())'),
    ("q2", "q2", 'export_model("q2_convnet", build_convnet())'),
    (
        "q3",
        "q3",
        'export_value("q3_counts", [int(dense_parameters(*shape)) for shape in [(28, 28, 1, 256), (480, 640, 3, 1000), (7, 9, 5, 3), (1, 1, 1, 1)]])',
    ),
    (
        "q4",
        "q4",
        '_probe = np.random.default_rng(31337).random((4, 28, 28, 1)).astype("float32")\nexport_array("q4_shifted", np.stack([shift_right(_probe, k) for k in (0, 2, 5)]))',
    ),
]
# The trained network is not tested: the architecture test pins every convolution, pooling
# and the parameter count, and the activations test the rest, so the notebook's own training
# (the instructors' code, not the student's) need not run when grading.


def _activation(layer) -> str:
    return layer.config.get("activation") or "linear"


def _effective_activations(network) -> list[str]:
    """The nonlinearity after each Conv2D and Dense layer: its own activation argument, or a
    separate ReLU, Activation or Softmax layer right after it."""
    layers = network.layers
    found = []
    for index, layer in enumerate(layers):
        if layer.kind not in ("Conv2D", "Dense"):
            continue
        own = _activation(layer)
        following = layers[index + 1] if index + 1 < len(layers) else None
        kind = following.kind if following is not None else ""
        if own == "linear" and kind == "ReLU":
            own = "relu"
        elif own == "linear" and kind == "Softmax":
            own = "softmax"
        elif own == "linear" and kind == "Activation":
            own = _activation(following)
        found.append(own)
    return found


def mlp_architecture(exports):
    network = exports.network("q1_mlp")
    dense = network.layers_of("Dense")
    if network.layers_of("Conv2D"):
        return "the MLP must not use convolutions"
    if [d.config["units"] for d in dense[-2:]] != [256, 10] or len(dense) != 2:
        return "expected one hidden Dense layer and one output layer of the lecture's sizes"
    if _effective_activations(network) != ["relu", "softmax"]:
        return "activations: ReLU in the hidden layer, softmax at the output"
    if network.parameters != 203_530:
        return "the parameter count differs from the lecture's MLP"
    return None


def convnet_architecture(exports):
    network = exports.network("q2_convnet")
    convs = network.layers_of("Conv2D")
    shapes = [(c.config["filters"], tuple(c.config["kernel_size"]), c.config["padding"]) for c in convs]
    if shapes != [(32, (5, 5), "valid"), (64, (3, 3), "valid")]:
        return "the two convolutions differ from the lecture's table (filters, kernel size, padding)"
    if len(network.layers_of("MaxPooling2D")) != 2:
        return "expected a max-pooling layer after each convolution"
    if network.parameters != 431_754:
        return "the parameter count differs from the lecture's ConvNet"
    return None


def convnet_activations(exports):
    activations = _effective_activations(exports.network("q2_convnet"))
    if not activations or activations[:-1] != ["relu"] * (len(activations) - 1):
        return "ReLU after each convolution and after the hidden Dense layer"
    if activations[-1] != "softmax":
        return "the output layer must give class probabilities (softmax)"
    return None


def dense_counts(exports):
    counts = exports.value("q3_counts")
    expected = [
        (h * w * c + 1) * u for h, w, c, u in [(28, 28, 1, 256), (480, 640, 3, 1000), (7, 9, 5, 3), (1, 1, 1, 1)]
    ]
    if not isinstance(counts, list) or len(counts) != len(expected):
        return "dense_parameters did not return one number per layer"
    if counts != expected:
        return "some counts are wrong: inputs times units, plus one bias per unit"
    return None


def shifted_digits(exports):
    shifted = exports.array("q4_shifted")
    probe = np.random.default_rng(31337).random((4, 28, 28, 1)).astype("float32")
    expected = np.zeros((3, *probe.shape), dtype="float32")
    for i, k in enumerate((0, 2, 5)):
        expected[i, :, :, k:] = probe[:, :, : 28 - k]
    if shifted.shape != expected.shape:
        return "shift_right changed the shape of the batch"
    if not np.allclose(shifted, expected):
        return "the shifted images differ: move right along the width, fill with zeros"
    return None


TESTS = [
    HiddenTest("q1", "MLP architecture", 1.0, mlp_architecture),
    HiddenTest("q2", "ConvNet architecture", 2.0, convnet_architecture),
    HiddenTest("q2", "ConvNet activations", 1.0, convnet_activations),
    HiddenTest("q3", "Dense parameter counts", 1.0, dense_counts),
    HiddenTest("q4", "shifted digits", 1.0, shifted_digits),
]
