"""Hidden tests for lab 01, convolutions and filters. Instructor material: never shipped to students.

The export cells run in the student's kernel: they call the student's functions on probe
inputs that the public checks do not use, and save what comes back as plain data. The
tests below run in the grader's trusted process and compute the expected results themselves,
with NumPy, independently of the solution. Hints never contain expected values.
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


def _q2_probes():
    """An image and a kernel of other sizes than the public check's, twice."""
    import numpy

    cases = []
    for image_shape, kernel_shape, seed in [((9, 7), (3, 3), 1201), ((12, 10), (5, 5), 1202)]:
        rng = numpy.random.default_rng(seed)
        cases.append((rng.normal(size=image_shape).astype("float32"), rng.normal(size=kernel_shape).astype("float32")))
    return cases


def _q3_probes():
    import numpy

    rng = numpy.random.default_rng(1301)
    return rng.normal(size=(8, 7, 3)).astype("float32"), rng.normal(size=(3, 3, 3)).astype("float32")


def _q5_probes():
    import numpy

    rng = numpy.random.default_rng(1501)
    plane = rng.normal(size=(12, 18)).astype("float32")  # both window sizes divide it
    return plane, rng.normal(size=(2, 8, 6, 3)).astype("float32")


Q4_CASES = [(227, 11, 4, 0), (32, 5, 1, 2), (7, 3, 2, 0), (10, 4, 3, 0), (5, 3, 2, 1), (28, 5, 1, 0)]
Q4_NOT_WHOLE = [(224, 11, 4, 0), (6, 3, 2, 0), (32, 4, 3, 0)]

EXPORTS = [
    (
        "q1",
        "q1",
        getsource(_q1_probes) + "import numpy as _np\n_probe, _kernel = _q1_probes()\n"
        "_layer = fixed_conv_layer(_kernel)\n"
        "export_array('q1_response', _np.asarray(_layer(_probe)))\n"  # first: a layer may build on its first call
        "export_value('q1_layer', {'type': type(_layer).__name__, 'weights': [list(w.shape) for w in _layer.get_weights()]})",
    ),
    (
        "q2",
        "q2",
        getsource(_q2_probes) + "for _i, (_image, _kernel) in enumerate(_q2_probes()):\n"
        "    export_array(f'q2_correlation_{_i}', cross_correlate(_image, _kernel))\n"
        "    export_array(f'q2_convolution_{_i}', convolve(_image, _kernel))",
    ),
    ("q3", "q3", getsource(_q3_probes) + "export_array('q3_response', multichannel_response(*_q3_probes()))"),
    (
        "q4",
        "q4",
        "_answers = []\n"
        f"for _case in {Q4_CASES + Q4_NOT_WHOLE!r}:\n"
        "    try:\n"
        "        _value = conv_output_size(*_case)\n"
        "        _answers.append(_value if type(_value) is int else 'returned ' + type(_value).__name__)\n"
        "    except ValueError:\n"
        "        _answers.append('ValueError')\n"
        "    except Exception as _error:\n"
        "        _answers.append('raised ' + type(_error).__name__)\n"
        "export_value('q4_sizes', _answers)",
    ),
    (
        "q5",
        "q5",
        getsource(_q5_probes) + "import numpy as _np\n_plane, _batch = _q5_probes()\n"
        "export_array('q5_max_pool_2', max_pool(_plane, 2))\n"
        "export_array('q5_max_pool_3', max_pool(_plane, 3))\n"
        "_layer = average_pool_as_conv(2, 3)\n"
        "export_value('q5_layer', type(_layer).__name__)\n"
        "export_array('q5_average', _np.asarray(_layer(_batch)))",
    ),
    (
        "q6",
        "q6",
        "export_value('q6', {'conv1': [int(v) for v in conv1_output_shape], 'params': int(conv1_parameters), "
        "'pool1': [int(v) for v in pool1_output_shape]})",
    ),
]


def _correlate(image, kernel):
    """'valid' cross-correlation, from NumPy's sliding windows."""
    windows = np.lib.stride_tricks.sliding_window_view(image, kernel.shape)
    return np.einsum("ijkl,kl->ij", windows.astype("float64"), kernel.astype("float64"))


def _same_response(images, kernel):
    """A one-filter, no-bias Conv2D with 'same' padding on (N, H, W, 1) images."""
    rows, cols = kernel.shape  # Keras puts the odd extra row and column of padding after
    padded = np.pad(images[..., 0], ((0, 0), ((rows - 1) // 2, rows // 2), ((cols - 1) // 2, cols // 2)))
    return np.stack([_correlate(image, kernel) for image in padded])[..., None]


def _close(actual, expected) -> bool:
    return actual.shape == expected.shape and np.allclose(actual, expected, atol=1e-4, rtol=1e-4)


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


def correlation(exports):
    for index, (image, kernel) in enumerate(_q2_probes()):
        if not _close(exports.array(f"q2_correlation_{index}"), _correlate(image, kernel)):
            return "cross_correlate is wrong on an image and kernel of other sizes ('valid' mode, kernel not flipped)"
    return None


def true_convolution(exports):
    for index, (image, kernel) in enumerate(_q2_probes()):
        if not _close(exports.array(f"q2_convolution_{index}"), _correlate(image, kernel[::-1, ::-1])):
            return "convolve is wrong on an image and kernel of other sizes: flip the kernel in both directions"
    return None


def multichannel(exports):
    image, kernel = _q3_probes()
    expected = sum(_correlate(image[:, :, c], kernel[:, :, c]) for c in range(3))
    if not _close(exports.array("q3_response"), expected):
        return "one filter gives one 2-D output: correlate each channel with its slice and add them"
    return None


def _q4_answers(exports):
    answers = exports.value("q4_sizes")
    if not isinstance(answers, list) or len(answers) != len(Q4_CASES) + len(Q4_NOT_WHOLE):
        return None
    return answers


def whole_sizes(exports):
    answers = _q4_answers(exports)
    expected = [(width - kernel + 2 * padding) // stride + 1 for width, kernel, stride, padding in Q4_CASES]
    if answers is None or answers[: len(Q4_CASES)] != expected:
        if answers and any(isinstance(a, str) and a.startswith("returned") for a in answers[: len(Q4_CASES)]):
            return "conv_output_size must return an int"
        return "some output sizes are wrong: (W - F + 2P) / S + 1"
    return None


def sizes_not_whole(exports):
    answers = _q4_answers(exports)
    if answers is None or answers[len(Q4_CASES) :] != ["ValueError"] * len(Q4_NOT_WHOLE):
        return "when (W - F + 2P) / S + 1 is not a whole number, raise ValueError"
    return None


def max_pooling(exports):
    plane, _ = _q5_probes()
    for size in (2, 3):
        windows = np.lib.stride_tricks.sliding_window_view(plane, (size, size))[::size, ::size]
        if not _close(exports.array(f"q5_max_pool_{size}"), windows.max(axis=(2, 3))):
            return "max_pool is wrong for another window size: the largest value of each window, stride = size"
    return None


def average_pooling(exports):
    if exports.value("q5_layer") != "Conv2D":
        return "average_pool_as_conv must return a keras.layers.Conv2D"
    _, batch = _q5_probes()
    expected = batch.reshape(2, 4, 2, 3, 2, 3).mean(axis=(2, 4))
    if not _close(exports.array("q5_average"), expected):
        return (
            "the layer differs from AveragePooling2D on 3 channels: each output channel averages its own input channel"
        )
    return None


def alexnet_first_layers(exports):
    answer = exports.value("q6")
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
    HiddenTest("q2", "cross-correlation on other sizes", 1.0, correlation),
    HiddenTest("q2", "true convolution on other sizes", 1.0, true_convolution),
    HiddenTest("q3", "multichannel response", 1.0, multichannel),
    HiddenTest("q4", "whole output sizes", 1.0, whole_sizes),
    HiddenTest("q4", "sizes that are not whole raise ValueError", 1.0, sizes_not_whole),
    HiddenTest("q5", "max pooling", 1.0, max_pooling),
    HiddenTest("q5", "average pooling as a convolution", 1.0, average_pooling),
    HiddenTest("q6", "AlexNet CONV1 and POOL1", 1.0, alexnet_first_layers),
]
