"""Hidden tests for lab 02, MLP vs ConvNet. Instructor material: never shipped to students.

The export cells run in the student's kernel and save plain data; the tests below run in
the grader's trusted process on that data, reading models as the grader's own NumPy networks
(no TensorFlow there). The Dense counts and the shifts are probed on sizes and images of
their own (neither the notebook's nor the public checks'). The two predictions are compared
with what the solution's smoke run measured (q5, within the tolerance the question states)
and with the parameter counts (q7). Hints never contain expected values.
"""

import numpy as np

from cnnlab.grading.hidden import HiddenTest

# q5: accuracy (%) on the first 2,000 test digits moved 4 pixels right, as the solution measured
# it: "smoke" is the stored run (tests/test_notebooks.py keeps the stored output within 3 points
# of it); "full" is the notebook's code on all 54,000 training digits for 10 epochs (CPU, seed 0).
# A prediction within SHIFT_TOLERANCE of either, or between them, earns its point.
SHIFT_MEASURED = {"smoke": {"MLP": 28.2, "ConvNet": 67.5}, "full": {"MLP": 41.0, "ConvNet": 74.5}}
SHIFT_TOLERANCE = 15.0  # percentage points, as the question states
# q7: the ConvNet's parameters over the MLP's, (a) under 0.1, (b) 0.1 to 1, (c) 1 to 3, (d) over 3.
SIZE_CHOICES = ((0.1, "a"), (1.0, "b"), (3.0, "c"), (float("inf"), "d"))
DENSE_SHAPES = [(224, 224, 3, 4096), (7, 9, 5, 3), (13, 1, 2, 17), (1, 1, 1, 1)]
# Strings that must never appear in a public check's source or in the student lab: the two
# parameter counts (q7 asks to predict their ratio), the ConvNet's Dense layer, q3's formula.
ANSWERS = ["203,530", "203530", "431,754", "431754", "409,856", "409856", "+ 1) * units", "2.12 times"]

EXPORTS = [
    ("q1", "q1", 'export_model("q1_mlp", build_mlp())'),
    ("q2", "q2", 'export_model("q2_convnet", build_convnet())'),
    (
        "q3",
        "q3",
        f'export_value("q3_counts", [int(dense_parameters(*shape)) for shape in {DENSE_SHAPES!r}])',
    ),
    (
        "q4",
        "q4",
        '_probe = np.random.default_rng(31337).random((4, 28, 28, 1)).astype("float32")\nexport_array("q4_shifted", np.stack([shift_right(_probe, k) for k in (0, 2, 5)]))',
    ),
    ("q5", "q5", 'export_value("q5_prediction", {str(k): float(v) for k, v in dict(prediction_q5).items()})'),
    ("q7", "q7", 'export_value("q7_prediction", str(prediction_q7))'),
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
    expected = [(h * w * c + 1) * u for h, w, c, u in DENSE_SHAPES]
    if not isinstance(counts, list) or len(counts) != len(expected):
        return "dense_parameters did not return one number per layer"
    if counts != expected:
        return "some counts are wrong: count every weight of the layer, and its biases"
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


def _shift_prediction(network):
    def test(exports):
        prediction = exports.value("q5_prediction")
        if not isinstance(prediction, dict) or not isinstance(prediction.get(network), (int, float)):
            return f"`prediction_q5` needs a number (a percentage) for the key {network!r}"
        if all(isinstance(v, (int, float)) and 0 < v <= 1 for v in prediction.values()):
            return "`prediction_q5` holds fractions; the question asks for percentages (50 for 50%)"
        measured = [run[network] for run in SHIFT_MEASURED.values()]
        if not min(measured) - SHIFT_TOLERANCE <= prediction[network] <= max(measured) + SHIFT_TOLERANCE:
            return (
                f"the {network}'s accuracy on shifted digits was not within {SHIFT_TOLERANCE:g} points of your "
                "prediction: compare it with the measurement below it in the notebook"
            )
        return None

    return test


def size_prediction(exports):
    guess = exports.value("q7_prediction")
    ratio = 431_754 / 203_530  # the lecture's ConvNet over its MLP, as q1 and q2 build them
    key = next(letter for bound, letter in SIZE_CHOICES if ratio < bound)
    if not isinstance(guess, str) or guess.strip().lower() not in {letter for _, letter in SIZE_CHOICES}:
        return "`prediction_q7` must hold one of the letters the question offers"
    if guess.strip().lower() != key:
        return "this prediction is not what the parameter counts show: compare it with the count below it"
    return None


TESTS = [
    HiddenTest("q1", "MLP architecture", 1.0, mlp_architecture),
    HiddenTest("q2", "ConvNet architecture", 2.0, convnet_architecture),
    HiddenTest("q2", "ConvNet activations", 1.0, convnet_activations),
    HiddenTest("q3", "Dense parameter counts", 1.0, dense_counts),
    HiddenTest("q4", "shifted digits", 1.0, shifted_digits),
    HiddenTest("q5", "MLP accuracy on shifted digits, predicted", 1.0, _shift_prediction("MLP")),
    HiddenTest("q5", "ConvNet accuracy on shifted digits, predicted", 1.0, _shift_prediction("ConvNet")),
    HiddenTest("q7", "ConvNet size against the MLP, predicted", 1.0, size_prediction),
]
