"""Hidden tests for lab 01, convolutions and filters. Instructor material: never shipped to students.

The export cells run in the student's kernel: they call the student's functions on probe
inputs that the public checks do not use, and save what comes back as plain data. The
tests below run in the grader's trusted process and compute the expected results themselves,
with NumPy and arithmetic, independently of the solution: the composed kernel is judged by
what it does (one correlation against two), the learned kernel against the probe's own, the
predictions against what the grader computes for the notebook's own cases. Hints never
contain expected values.
"""

from inspect import getsource

import numpy as np

from cnnlab.grading.hidden import HiddenTest


# Probes: seeded inputs. Each export cell defines and calls the very function below (its source
# travels with the cell), and the tests call it here: one source for both sides.
def _q1_probes():
    import numpy

    probe = numpy.random.default_rng(1101).normal(size=(2, 11, 9, 1)).astype("float32")
    return probe, numpy.random.default_rng(1102).normal(size=(3, 3)).astype("float32")


def _q3_probes():
    """An image and a kernel of other sizes than the public check's, twice."""
    import numpy

    cases = []
    for image_shape, kernel_shape, seed in [((9, 7), (3, 3), 1201), ((12, 10), (5, 4), 1202)]:
        rng = numpy.random.default_rng(seed)
        cases.append((rng.normal(size=image_shape).astype("float32"), rng.normal(size=kernel_shape).astype("float32")))
    return cases


def _q5_probes():
    """Images centred on 0, a kernel, and the images correlated with it ('valid')."""
    import numpy

    rng = numpy.random.default_rng(1501)
    images = rng.uniform(-0.5, 0.5, size=(24, 16, 15)).astype("float32")
    kernel = rng.normal(size=(3, 3)).astype("float32")
    windows = numpy.lib.stride_tricks.sliding_window_view(images, (3, 3), axis=(1, 2))
    return images, numpy.einsum("nijkl,kl->nij", windows, kernel).astype("float32"), kernel


def _q6_probes():
    import numpy

    rng = numpy.random.default_rng(1301)
    return rng.normal(size=(8, 7, 3)).astype("float32"), rng.normal(size=(3, 3, 3)).astype("float32")


def _q10_probes():
    """Pairs of kernels, square and not, and an image to apply them to."""
    import numpy

    rng = numpy.random.default_rng(1901)
    pairs = [
        (rng.normal(size=a).astype("float32"), rng.normal(size=b).astype("float32"))
        for a, b in [((3, 3), (3, 3)), ((2, 4), (3, 2))]
    ]
    return pairs, rng.normal(size=(11, 12)).astype("float32")


def _q12_probes():
    import numpy

    rng = numpy.random.default_rng(1501)
    plane = rng.normal(size=(12, 18)).astype("float32")  # both window sizes divide it
    return plane, rng.normal(size=(2, 8, 6, 3)).astype("float32")


def _q13_probes():
    """Inputs with rows or columns that no window covers, and upstream gradients."""
    import numpy

    rng = numpy.random.default_rng(2101)
    return [
        (
            rng.normal(size=shape).astype("float32"),
            rng.normal(size=(shape[0] // size, shape[1] // size)).astype("float32"),
            size,
        )
        for shape, size in [((7, 8), 2), ((9, 11), 3)]
    ]


Q7_CASES = [(227, 11, 4, 0), (32, 5, 1, 2), (7, 3, 2, 0), (10, 4, 3, 0), (5, 3, 2, 1), (28, 5, 1, 0)]
Q7_NOT_WHOLE = [(224, 11, 4, 0), (6, 3, 2, 0), (32, 4, 3, 0)]
# receptive_field probes: stacks of (kernel, stride), from the input up
Q9_STRIDE_1 = [[(3, 1)] * 4, [(5, 1), (3, 1)], [(1, 1), (7, 1)]]
Q9_STRIDED = [[(7, 2), (3, 2), (3, 1)], [(2, 2), (2, 2), (2, 2)], [(3, 1), (3, 2), (5, 3), (3, 1)]]

# The predictions: the question, its variable, and whether it is a number or a letter.
PREDICTIONS = {"q2": ("prediction_q2", "number"), "q4": ("prediction_q4", "letter"), "q8": ("prediction_q8", "number")}
STEP_SHAPE, EDGE_COLUMN = (6, 8), 4  # q2: the notebook's step image, 0 left of this column, 1 from it on
EDGE_KERNEL = np.array([[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]], dtype="float32")
EMBOSS = np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]], dtype="float32")  # q4
PHOTO_WIDTH, Q8_KERNEL, Q8_STRIDE = 500, 5, 2  # q8: Conv2D(8, 5, strides=2) on the 375x500 photograph


def _prediction_export(question):
    variable, kind = PREDICTIONS[question]
    if kind == "letter":
        return f"export_value('{question}_prediction', {variable} if isinstance({variable}, str) else None)"
    return (
        "try:\n"
        f"    _value = float({variable})\n"
        "except (TypeError, ValueError):\n"
        "    _value = None\n"
        f"export_value('{question}_prediction', _value if _value is None or abs(_value) < 1e9 else None)"
    )


def _answers_or_errors(function: str, cases) -> str:
    """Export code: call ``function`` on each case; record ints, or what went wrong."""
    return (
        "_answers = []\n"
        f"for _case in {cases!r}:\n"
        "    try:\n"
        f"        _value = {function}\n"
        "        _answers.append(int(_value) if isinstance(_value, (int, _np.integer)) and not isinstance(_value, bool) "
        "else 'returned ' + type(_value).__name__)\n"
        "    except ValueError:\n"
        "        _answers.append('ValueError')\n"
        "    except Exception as _error:\n"
        "        _answers.append('raised ' + type(_error).__name__)\n"
    )


EXPORTS = [
    (
        "q1",
        "q1",
        getsource(_q1_probes) + "import numpy as _np\n_probe, _kernel = _q1_probes()\n"
        "_layer = fixed_conv_layer(_kernel)\n"
        "export_array('q1_response', _np.asarray(_layer(_probe)))\n"  # first: a layer may build on its first call
        "export_value('q1_layer', {'type': type(_layer).__name__, 'weights': [list(w.shape) for w in _layer.get_weights()]})",
    ),
    ("q2", "q2", _prediction_export("q2")),
    (
        "q3",
        "q3",
        getsource(_q3_probes) + "for _i, (_image, _kernel) in enumerate(_q3_probes()):\n"
        "    export_array(f'q3_correlation_{_i}', cross_correlate(_image, _kernel))\n"
        "    export_array(f'q3_convolution_{_i}', convolve(_image, _kernel))",
    ),
    ("q4", "q4", _prediction_export("q4")),
    (
        "q5",
        "q5",
        getsource(_q5_probes) + "_images, _targets, _ = _q5_probes()\n"
        "export_model('q5_model', learn_kernel(_images, _targets, 3))",
    ),
    ("q6", "q6", getsource(_q6_probes) + "export_array('q6_response', multichannel_response(*_q6_probes()))"),
    (
        "q7",
        "q7",
        "import numpy as _np\n"
        + _answers_or_errors("conv_output_size(*_case)", Q7_CASES + Q7_NOT_WHOLE)
        + "export_value('q7_sizes', _answers)",
    ),
    ("q8", "q8", _prediction_export("q8")),
    (
        "q9",
        "q9",
        "import numpy as _np\n"
        + _answers_or_errors("receptive_field([tuple(_layer) for _layer in _case])", Q9_STRIDE_1 + Q9_STRIDED)
        + "export_value('q9_fields', _answers)",
    ),
    (
        "q10",
        "q10",
        getsource(_q10_probes) + "_pairs, _ = _q10_probes()\n"
        "for _i, (_first, _second) in enumerate(_pairs):\n"
        "    export_array(f'q10_kernel_{_i}', compose_kernels(_first, _second))",
    ),
    (
        "q12",
        "q12",
        getsource(_q12_probes) + "import numpy as _np\n_plane, _batch = _q12_probes()\n"
        "export_array('q12_max_pool_2', max_pool(_plane, 2))\n"
        "export_array('q12_max_pool_3', max_pool(_plane, 3))\n"
        "_layer = average_pool_as_conv(2, 3)\n"
        "export_value('q12_layer', type(_layer).__name__)\n"
        "export_array('q12_average', _np.asarray(_layer(_batch)))",
    ),
    (
        "q13",
        "q13",
        getsource(_q13_probes) + "for _i, (_x, _upstream, _size) in enumerate(_q13_probes()):\n"
        "    export_array(f'q13_gradient_{_i}', max_pool_backward(_x, _upstream, _size))",
    ),
    (
        "q14",
        "q14",
        "export_value('q14', {'conv1': [int(v) for v in conv1_output_shape], 'params': int(conv1_parameters), "
        "'pool1': [int(v) for v in pool1_output_shape]})",
    ),
]

# Strings that must never appear in a public check's source or in the student lab: the answers
# of the AlexNet question and of the three predictions, and the parameter formula.
ANSWERS = [
    "34,944",
    "34944",
    "34_944",
    "(55, 55, 96)",
    "55x55x96",
    "55 x 55 x 96",
    "(27, 27, 96)",
    "27x27x96",
    "(11 * 11 * 3 + 1) * 96",
    "prediction_q2 = 3",
    'prediction_q4 = "c"',
    "prediction_q8 = 248",
]


def _reference_correlation(image, kernel):
    """'valid' cross-correlation, from NumPy's sliding windows."""
    windows = np.lib.stride_tricks.sliding_window_view(image, kernel.shape)
    return np.einsum("ijkl,kl->ij", windows.astype("float64"), kernel.astype("float64"))


def _same_response(images, kernel):
    """A one-filter, no-bias Conv2D with 'same' padding on (N, H, W, 1) images."""
    rows, cols = kernel.shape  # Keras puts the odd extra row and column of padding after
    padded = np.pad(images[..., 0], ((0, 0), ((rows - 1) // 2, rows // 2), ((cols - 1) // 2, cols // 2)))
    return np.stack([_reference_correlation(image, kernel) for image in padded])[..., None]


def _close(actual, expected, tolerance=1e-4) -> bool:
    return actual.shape == expected.shape and np.allclose(actual, expected, atol=tolerance, rtol=tolerance)


def fixed_layer(exports):
    layer = exports.value("q1_layer")
    if not isinstance(layer, dict) or layer.get("type") != "Conv2D":
        return "fixed_conv_layer must return a keras.layers.Conv2D"
    if layer.get("weights") != [[3, 3, 1, 1]]:
        return "the layer's weights: one 3x3 kernel for 1 input channel and 1 filter, and no bias"
    return None


def fixed_layer_response(exports):
    response = exports.array("q1_response")
    probe, kernel = _q1_probes()
    if response.shape != probe.shape:
        return "on a batch of grayscale images the output must keep the batch, height and width ('same' padding)"
    if not _close(response, _same_response(probe, kernel)):
        return "the layer does not apply the kernel as given: check the weight shape (kh, kw, in, out) and that it is not flipped"
    return None


def _expected_predictions():
    """What the notebook's reveal cells show, computed here."""
    step = np.zeros((1, *STEP_SHAPE, 1), dtype="float32")
    step[:, :, EDGE_COLUMN:] = 1.0
    middle_row = STEP_SHAPE[0] // 2
    edge_value = float(_same_response(step, EDGE_KERNEL)[0, middle_row, EDGE_COLUMN, 0])
    rotated = EMBOSS[::-1, ::-1]
    letter = "a" if np.array_equal(rotated, EMBOSS) else "b" if np.array_equal(rotated, -EMBOSS) else "c"
    width = (PHOTO_WIDTH - Q8_KERNEL) // Q8_STRIDE + 1  # Keras's 'valid' padding rounds down
    return {"q2": edge_value, "q4": letter, "q8": float(width)}


def _prediction(question):
    variable, kind = PREDICTIONS[question]

    def test(exports):
        guess = exports.value(f"{question}_prediction")
        expected = _expected_predictions()[question]
        if kind == "letter":
            if not isinstance(guess, str):
                return f"`{variable}` must hold one of the letters the question offers"
            right = guess.strip().lower() == expected
        else:
            if not isinstance(guess, (int, float)) or isinstance(guess, bool):
                return f"`{variable}` must hold a number"
            right = abs(guess - expected) <= 0.01
        if not right:
            return "this prediction is not what happened: compare it with the cell that runs it in the notebook"
        return None

    return test


def correlation(exports):
    for index, (image, kernel) in enumerate(_q3_probes()):
        if not _close(exports.array(f"q3_correlation_{index}"), _reference_correlation(image, kernel)):
            return "cross_correlate is wrong on an image and kernel of other sizes ('valid' mode, kernel not flipped)"
    return None


def true_convolution(exports):
    for index, (image, kernel) in enumerate(_q3_probes()):
        if not _close(exports.array(f"q3_convolution_{index}"), _reference_correlation(image, kernel[::-1, ::-1])):
            return "convolve is wrong on an image and kernel of other sizes: flip the kernel in both directions"
    return None


def learned_model(exports):
    network = exports.network("q5_model")
    convs = network.layers_of("Conv2D")
    if len(convs) != 1 or any(layer.weights and layer.kind != "Conv2D" for layer in network.layers):
        return "learn_kernel must return a model of one Conv2D layer and nothing else that has weights"
    config = convs[0].config
    if config.get("filters") != 1 or config.get("use_bias"):
        return "the Conv2D layer must have one filter and no bias (use_bias=False)"
    if tuple(config.get("kernel_size", ())) != (3, 3) or tuple(config.get("strides", ())) != (1, 1):
        return "the Conv2D layer must have the kernel size asked for and stride 1"
    if config.get("padding") != "valid":
        return "the targets are 'valid' correlations: the layer must use 'valid' padding"
    return None


def learned_kernel(exports):
    network = exports.network("q5_model")
    convs = network.layers_of("Conv2D")
    _, _, kernel = _q5_probes()
    if len(convs) != 1 or not convs[0].weights or convs[0].weights[0].shape != (3, 3, 1, 1):
        return "the model has no single 3x3 kernel to compare with the one that made the targets"
    if not _close(convs[0].weights[0][:, :, 0, 0], kernel, tolerance=0.05):
        return (
            "on other images and another kernel, the kernel learned is not the one that made the targets: "
            "train for more steps or with a larger learning rate"
        )
    return None


def multichannel(exports):
    image, kernel = _q6_probes()
    expected = sum(_reference_correlation(image[:, :, c], kernel[:, :, c]) for c in range(3))
    if not _close(exports.array("q6_response"), expected):
        return "one filter gives one 2-D output: correlate each channel with its slice and add them"
    return None


def _answers(exports, name, count):
    answers = exports.value(name)
    if not isinstance(answers, list) or len(answers) != count:
        return None
    return answers


def whole_sizes(exports):
    answers = _answers(exports, "q7_sizes", len(Q7_CASES) + len(Q7_NOT_WHOLE))
    expected = [(width - kernel + 2 * padding) // stride + 1 for width, kernel, stride, padding in Q7_CASES]
    if answers is None or answers[: len(Q7_CASES)] != expected:
        if answers and any(isinstance(a, str) and a.startswith("returned") for a in answers[: len(Q7_CASES)]):
            return "conv_output_size must return an int"
        return "some output sizes are wrong: (W - F + 2P) / S + 1"
    return None


def sizes_not_whole(exports):
    answers = _answers(exports, "q7_sizes", len(Q7_CASES) + len(Q7_NOT_WHOLE))
    if answers is None or answers[len(Q7_CASES) :] != ["ValueError"] * len(Q7_NOT_WHOLE):
        return "when (W - F + 2P) / S + 1 is not a whole number, raise ValueError"
    return None


def _field(layers) -> int:
    """The receptive field, from the top down: the input window one output needs."""
    size = 1
    for kernel, stride in reversed(layers):
        size = (size - 1) * stride + kernel
    return size


def _fields_test(first, stacks, hint):
    def test(exports):
        answers = _answers(exports, "q9_fields", len(Q9_STRIDE_1) + len(Q9_STRIDED))
        if answers is None:
            return "receptive_field did not give one answer per stack"
        got = answers[first : first + len(stacks)]
        if any(isinstance(a, str) and a.startswith("returned") for a in got):
            return "receptive_field must return an int"
        if got != [_field(layers) for layers in stacks]:
            return hint
        return None

    return test


def _composed_kernels(exports):
    pairs, image = _q10_probes()
    agreements = []
    for index, (first, second) in enumerate(pairs):
        combined = exports.array(f"q10_kernel_{index}")
        expected_shape = tuple(a + b - 1 for a, b in zip(first.shape, second.shape, strict=True))
        if combined.shape != expected_shape or combined.dtype.kind not in "iuf":
            agreements.append(False)
            continue
        agreements.append(
            _close(
                _reference_correlation(image, combined),
                _reference_correlation(_reference_correlation(image, first), second),
            )
        )
    return agreements


def composed_square(exports):
    if not _composed_kernels(exports)[0]:
        return "two 3x3 kernels: one correlation with the combined kernel is not the same as the two in turn"
    return None


def composed_rectangular(exports):
    if not _composed_kernels(exports)[1]:
        return (
            "kernels that are not square: one correlation with the combined kernel is not the same as the two in "
            "turn (its shape or its values; rows and columns add up separately)"
        )
    return None


def max_pooling(exports):
    plane, _ = _q12_probes()
    for size in (2, 3):
        windows = np.lib.stride_tricks.sliding_window_view(plane, (size, size))[::size, ::size]
        if not _close(exports.array(f"q12_max_pool_{size}"), windows.max(axis=(2, 3))):
            return "max_pool is wrong for another window size: the largest value of each window, stride = size"
    return None


def average_pooling(exports):
    if exports.value("q12_layer") != "Conv2D":
        return "average_pool_as_conv must return a keras.layers.Conv2D"
    _, batch = _q12_probes()
    expected = batch.reshape(2, 4, 2, 3, 2, 3).mean(axis=(2, 4))
    if not _close(exports.array("q12_average"), expected):
        return (
            "the layer differs from AveragePooling2D on 3 channels: each output channel averages its own input channel"
        )
    return None


def _max_pool_gradient(x, upstream, size):
    """Each window's upstream value on its largest input (the first, in reading order, on a tie)."""
    gradient = np.zeros(x.shape, dtype="float64")
    rows, cols = upstream.shape
    windows = x[: rows * size, : cols * size].reshape(rows, size, cols, size).transpose(0, 2, 1, 3)
    winners = windows.reshape(rows, cols, size * size).argmax(axis=2)
    for (i, j), winner in np.ndenumerate(winners):
        gradient[i * size + winner // size, j * size + winner % size] = upstream[i, j]
    return gradient


def max_pool_backward_test(exports):
    for index, (x, upstream, size) in enumerate(_q13_probes()):
        got = exports.array(f"q13_gradient_{index}")
        if got.shape != x.shape:
            return "the gradient with respect to x must have the shape of x"
        if not _close(got, _max_pool_gradient(x, upstream, size), tolerance=1e-6):
            if np.count_nonzero(got) > upstream.size:
                return "more inputs get a gradient than there are windows: only each window's largest input does"
            return "on other inputs and window sizes, the gradient is not each upstream value at its window's largest input"
    return None


def alexnet_first_layers(exports):
    answer = exports.value("q14")
    conv = (227 - 11) // 4 + 1
    expected = {"conv1": [conv, conv, 96], "params": (11 * 11 * 3 + 1) * 96, "pool1": [(conv - 3) // 2 + 1] * 2 + [96]}
    if not isinstance(answer, dict):
        return "the three answers must be a shape, a number and a shape"
    wrong = [name for name in ("conv1", "params", "pool1") if answer.get(name) != expected[name]]
    if wrong:
        return f"not right yet: {', '.join(wrong)}"
    return None


TESTS = [
    HiddenTest("q1", "fixed-weight Conv2D layer: one filter, no bias", 1.0, fixed_layer),
    HiddenTest("q1", "fixed-weight Conv2D layer: response to a new kernel", 1.0, fixed_layer_response),
    HiddenTest("q2", "step-edge prediction", 1.0, _prediction("q2")),
    HiddenTest("q3", "cross-correlation on other sizes", 1.0, correlation),
    HiddenTest("q3", "true convolution on other sizes", 1.0, true_convolution),
    HiddenTest("q4", "emboss prediction", 1.0, _prediction("q4")),
    HiddenTest("q5", "learned model: one Conv2D, one filter, no bias", 1.0, learned_model),
    HiddenTest("q5", "learned kernel: the probe's own", 2.0, learned_kernel),
    HiddenTest("q6", "multichannel response", 1.0, multichannel),
    HiddenTest("q7", "whole output sizes", 1.0, whole_sizes),
    HiddenTest("q7", "sizes that are not whole raise ValueError", 1.0, sizes_not_whole),
    HiddenTest("q8", "strided-layer width prediction", 1.0, _prediction("q8")),
    HiddenTest(
        "q9",
        "receptive fields, stride 1",
        1.0,
        _fields_test(0, Q9_STRIDE_1, "receptive fields of stride-1 stacks are wrong: what does each layer add?"),
    ),
    HiddenTest(
        "q9",
        "receptive fields with strides and pooling",
        1.0,
        _fields_test(
            len(Q9_STRIDE_1),
            Q9_STRIDED,
            "receptive fields of stacks with strides are wrong: a stride makes every later step cover more input pixels",
        ),
    ),
    HiddenTest("q10", "composed kernels, square", 1.0, composed_square),
    HiddenTest("q10", "composed kernels, not square", 1.0, composed_rectangular),
    HiddenTest("q12", "max pooling", 1.0, max_pooling),
    HiddenTest("q12", "average pooling as a convolution", 1.0, average_pooling),
    HiddenTest("q13", "max-pool backward pass", 1.0, max_pool_backward_test),
    HiddenTest("q14", "AlexNet CONV1 and POOL1", 1.0, alexnet_first_layers),
]
