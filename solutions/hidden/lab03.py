"""Hidden tests for lab 03, VGG in Keras and the classic architectures. Instructor material:
never shipped to students.

The export cells run in the student's kernel and save plain data: layer-by-layer summaries of
VGG16 and of the slide's unpadded VGG16, built for other input sizes and numbers of classes
(the whole models would be too big to export), the predictions and numbers the questions ask
for, the counting functions run on other modules and layers, top-k accuracies of made-up
predictions, and small models for the residual block and the small VGG. The tests below run
in the grader's trusted process without TensorFlow: what VGG16 and the slide's network should
be is worked out here by arithmetic, the small models are read with `exports.network` (the
grader's NumPy implementation). Hints never contain expected values.
"""

from inspect import getsource

import numpy as np

from cnnlab.grading.hidden import HiddenTest, letter_prediction_test

VGG_INPUT, VGG_CLASSES = (64, 48, 3), 7  # not the public check's 224x224x3 and 1000 classes
LECTURE_INPUT, LECTURE_CLASSES = (260, 244, 3), 6  # not the question's 224x224x3, nor the check's
BLOCKS = [(2, 64), (2, 128), (3, 256), (3, 512), (3, 512)]  # VGG16: convolutions and filters per block
RESIDUAL_CASES = [(8, 8, 1), (8, 16, 2)]  # (channels in, filters, stride)
PROJECTION_NORMALISATION = (1.5, 0.1, 0.2, 0.8)  # gamma, beta, moving mean, moving variance
# (height, width, channels, f1, f3_reduce, f3, f5_reduce, f5, pool_proj): GoogLeNet's 3b and 4e, and a made-up one
INCEPTION_CASES = [
    (28, 28, 256, 128, 128, 192, 32, 96, 64),
    (14, 14, 528, 256, 160, 320, 32, 128, 128),
    (3, 5, 7, 2, 3, 4, 5, 6, 1),
]
CONV_CASES = [(14, 14, 512, 512, 3), (7, 9, 5, 11, 3), (10, 6, 3, 8, 5)]  # (height, width, c_in, c_out, kernel)
TOP_K = (1, 2, 3)
# q4's function runs on models other than the question's VGG16 at 224x224x3: VGG16's convolutional
# part at another size (without the 4096-wide classifier, whose weights the grading run would
# have to hold), and a small network with valid convolutions, strides and dense layers after Flatten
ACTIVATION_VGG_INPUT = (40, 56, 3)
ACTIVATION_SMALL_INPUT = (30, 26, 2)
ACTIVATION_SMALL_LAYERS = (
    "keras.layers.Conv2D(5, 3, strides=2), keras.layers.Conv2D(4, 5), keras.layers.AveragePooling2D(2), "
    "keras.layers.Flatten(), keras.layers.Dense(9), keras.layers.Dense(3)"
)
PREDICTIONS = {"q2": ("padding_guess", "c"), "q8": ("reduction_guess", "c")}
ADAM_BYTES = 16  # weight, gradient, m and v: four float32 values per parameter

# What a student must never find in a public check's source or in the student lab.
ANSWERS = [
    "15,237,608",
    "15237608",
    "60.95",
    "37,694,248",
    "37694248",
    "37.7",
    "1x1x512",
    "(1, 1, 512)",
    "163,328",
    "163328",
    "387,072",
    "387072",
    "128,049,152",
    "303,464,448",
]


def _top_k_probe():
    """Made-up predictions without ties. The q12 export cell defines and calls this very function."""
    import numpy

    rng = numpy.random.default_rng(3012)
    probabilities = rng.dirichlet(numpy.full(9, 0.7), size=50)
    return probabilities, rng.integers(0, 9, size=50)


_LAYER_SUMMARY = (
    "[{'name': _l.name, 'type': type(_l).__name__, 'shape': list(_l.output.shape[1:]), "
    "'params': int(_l.count_params()), 'activation': getattr(getattr(_l, 'activation', None), '__name__', None)} "
    "for _l in _model.layers]"
)

EXPORTS = [
    (
        "q1",
        "q1",
        f"_model = build_vgg16(input_shape={VGG_INPUT!r}, num_classes={VGG_CLASSES})\n"
        f"export_value('q1_layers', {_LAYER_SUMMARY})\n"
        "del _model",
    ),
    *[
        (question, question, f"export_value('{question}_guess', {variable})")
        for question, (variable, _) in PREDICTIONS.items()
    ],
    (
        "q3",
        "q3",
        f"_model = build_lecture_vgg16(input_shape={LECTURE_INPUT!r}, num_classes={LECTURE_CLASSES})\n"
        f"export_value('q3_layers', {_LAYER_SUMMARY})\n"
        "del _model",
    ),
    (
        "q3",
        "q3",
        "export_value('q3_values', {'shape': [int(_v) for _v in lecture_block5_shape], "
        "'parameters': int(lecture_parameters)})",
    ),
    (
        "q4",
        "q4",
        # functional models, as `reference` is (a Sequential model's layers leave its input out)
        f"_inputs = _outputs = keras.Input({ACTIVATION_SMALL_INPUT!r})\n"
        f"for _layer in [{ACTIVATION_SMALL_LAYERS}]:\n"
        "    _outputs = _layer(_outputs)\n"
        "_models = [\n"
        f"    keras.applications.VGG16(weights=None, include_top=False, input_shape={ACTIVATION_VGG_INPUT!r}),\n"
        "    keras.Model(_inputs, _outputs),\n"
        "]\n"
        "export_value('q4', [[int(_values), float(_megabytes)] for _values, _megabytes in map(activations_per_image, _models)])\n"
        "del _models",
    ),
    ("q5", "q5", "export_value('q5_guess', float(adam_bytes_per_parameter))"),
    (
        "q7",
        "q7",
        f"for _i, (_channels, _filters, _stride) in enumerate({RESIDUAL_CASES!r}):\n"
        "    _inputs = keras.Input((12, 12, _channels))\n"
        "    export_model(f'q7_block_{_i}', keras.Model(_inputs, residual_block(_inputs, _filters, _stride)))\n"
        # the identity-shortcut case with every convolution set to zero: it should return ReLU(input)
        f"_inputs = keras.Input((12, 12, {RESIDUAL_CASES[0][0]}))\n"
        f"_block = keras.Model(_inputs, residual_block(_inputs, {RESIDUAL_CASES[0][1]}, 1))\n"
        "for _layer in _block.layers:\n"
        "    if isinstance(_layer, keras.layers.Conv2D):\n"
        "        _layer.set_weights([np.zeros_like(_w) for _w in _layer.get_weights()])\n"
        "export_model('q7_zeroed', _block)\n"
        # the projection case with known weights, each drawn from its shape (so that it does not
        # matter in which order the block made its layers) and the same for every normalisation
        f"_inputs = keras.Input((12, 12, {RESIDUAL_CASES[1][0]}))\n"
        f"_block = keras.Model(_inputs, residual_block(_inputs, {RESIDUAL_CASES[1][1]}, {RESIDUAL_CASES[1][2]}))\n"
        "for _layer in _block.layers:\n"
        "    if isinstance(_layer, keras.layers.Conv2D):\n"
        "        _layer.set_weights([np.random.default_rng(list(_w.shape)).normal(0, 0.3, _w.shape).astype('float32') for _w in _layer.get_weights()])\n"
        "    if isinstance(_layer, keras.layers.BatchNormalization):\n"
        f"        _layer.set_weights([np.full(_w.shape, _v, dtype='float32') for _w, _v in zip(_layer.get_weights(), {PROJECTION_NORMALISATION!r})])\n"
        "export_model('q7_projection', _block)\n"
        "del _block",
    ),
    (
        "q9",
        "q9",
        f"export_value('q9', [[[int(_v) for _v in inception_cost(*_case, reductions=_flag)] for _flag in (True, False)] "
        f"for _case in {INCEPTION_CASES!r}])",
    ),
    (
        "q10",
        "q10",
        f"export_value('q10', [[[int(_v) for _v in _pair] for _pair in conv_costs(*_case)] for _case in {CONV_CASES!r}])",
    ),
    ("q11", "q11", "export_model('q11_small_vgg', build_small_vgg())"),
    (
        "q12",
        "q12",
        getsource(_top_k_probe)
        + f"export_value('q12', [float(top_k_accuracy(*_top_k_probe(), _k)) for _k in {TOP_K!r}])",
    ),
]


# -- q1 and q3: the two VGG16s, by arithmetic ------------------------------------------------------


def _vgg16_reference(input_shape, num_classes, padding: bool) -> dict:
    """Layer summaries keyed by keras.applications' names: 'same' convolutions (VGG16), or the
    slide's unpadded ones, which trim a pixel from each border."""
    height, width, channels = input_shape
    layers = {}
    for block, (convolutions, filters) in enumerate(BLOCKS, start=1):
        for index in range(1, convolutions + 1):
            if not padding:
                height, width = height - 2, width - 2
            layers[f"block{block}_conv{index}"] = {
                "type": "Conv2D",
                "shape": [height, width, filters],
                "params": 9 * channels * filters + filters,
                "activation": "relu",
            }
            channels = filters
        height, width = height // 2, width // 2
        layers[f"block{block}_pool"] = {
            "type": "MaxPooling2D",
            "shape": [height, width, channels],
            "params": 0,
            "activation": None,
        }
    flat = height * width * channels
    layers["flatten"] = {"type": "Flatten", "shape": [flat], "params": 0, "activation": None}
    for name, inputs, units, activation in (
        ("fc1", flat, 4096, "relu"),
        ("fc2", 4096, 4096, "relu"),
        ("predictions", 4096, num_classes, "softmax"),
    ):
        layers[name] = {"type": "Dense", "shape": [units], "params": inputs * units + units, "activation": activation}
    return layers


def _summaries(exports, name):
    layers = exports.value(name)
    if not isinstance(layers, list) or not all(isinstance(layer, dict) for layer in layers):
        return None
    return layers


def _vgg_mismatches(exports, blocks: bool) -> str | None:
    """The convolution blocks (``blocks``) or the classifier of the student's VGG16, against
    keras.applications' names and sizes: every layer there, in its order, and no other layer
    but Dropout (the lecture's classifier has it)."""
    layers = _summaries(exports, "q1_layers")
    if layers is None:
        return "build_vgg16 did not build a model"
    names = [layer.get("name") for layer in layers]
    if not all(isinstance(name, str) for name in names) or len(set(names)) != len(names):
        return "every layer needs a name of its own"
    mine = {layer.get("name"): {k: v for k, v in layer.items() if k != "name"} for layer in layers}
    reference = _vgg16_reference(VGG_INPUT, VGG_CLASSES, padding=True)
    wanted = [name for name in reference if name.startswith("block") == blocks]
    missing = [name for name in wanted if name not in mine]
    if missing:
        return f"layers not found by name: {', '.join(missing)}"
    wrong = [name for name in wanted if mine[name] != reference[name]]
    if wrong:
        return f"these layers differ from VGG16's for another input size or number of classes: {', '.join(wrong)}"
    counted = [layer["name"] for layer in layers if layer.get("type") not in ("InputLayer", "Dropout")]
    split = counted.index("flatten") if "flatten" in counted else len(counted)
    part = counted[:split] if blocks else counted[split:]
    if part != wanted:
        return "this part of the network has layers VGG16 does not have, or has them in another order"
    return None


def vgg_blocks(exports):
    return _vgg_mismatches(exports, blocks=True)


def vgg_classifier(exports):
    return _vgg_mismatches(exports, blocks=False)


def _prediction(question):
    variable, key = PREDICTIONS[question]
    return letter_prediction_test(
        question,
        variable,
        key,
        "this prediction is not what happens: compare it with the cells after it in the notebook",
    )


def lecture_layers(exports):
    """The slide's network at another input size: its convolutions, poolings and dense layers, in order."""
    layers = _summaries(exports, "q3_layers")
    if layers is None:
        return "build_lecture_vgg16 did not build a model"
    kinds = ("Conv2D", "MaxPooling2D", "Dense")
    if any(layer.get("type") not in (*kinds, "InputLayer", "Flatten", "Dropout") for layer in layers):
        return "the slide's code has convolutions, poolings, a Flatten and Dense layers only"
    mine = [[layer.get(k) for k in ("type", "shape", "params", "activation")] for layer in layers]
    mine = [row for row in mine if row[0] in kinds]
    reference = _vgg16_reference(LECTURE_INPUT, LECTURE_CLASSES, padding=False).values()
    expected = [[r[k] for k in ("type", "shape", "params", "activation")] for r in reference if r["type"] in kinds]
    if [row[0] for row in mine] != [row[0] for row in expected]:
        return "the slide's layers, in its order: 2, 2, 3, 3 and 3 convolutions with a pooling after each block, then three Dense layers"
    for position, (row, want) in enumerate(zip(mine, expected, strict=True), start=1):
        if row[3] != want[3]:
            return f"layer {position} of those has the wrong activation: ReLU everywhere, softmax at the end"
        if row[2] != want[2]:
            return (
                f"layer {position} of those has a different number of parameters from the slide's at another input size"
            )
        if row[1] != want[1]:
            return f"layer {position} of those has a different output shape from the slide's at another input size: the slide's code does not pad"
    return None


def lecture_values(exports):
    values = exports.value("q3_values")
    if not isinstance(values, dict):
        return "lecture_block5_shape and lecture_parameters must be set"
    reference = _vgg16_reference((224, 224, 3), 1000, padding=False)
    if values.get("shape") != reference["block5_pool"]["shape"]:
        return "lecture_block5_shape is not the block-5 output of the slide's code at 224x224x3 (no padding anywhere)"
    if values.get("parameters") != sum(layer["params"] for layer in reference.values()):
        return "lecture_parameters is not the parameter count of the slide's code at 224x224x3 with 1,000 classes"
    return None


# -- q4 and q5: memory -----------------------------------------------------------------------------


def _vgg16_activations(height: int, width: int) -> int:
    """VGG16 without its classifier (include_top=False)."""
    total = height * width * 3
    for convolutions, filters in BLOCKS:
        total += convolutions * height * width * filters  # padded: the size stays
        height, width = height // 2, width // 2
        total += height * width * filters  # the block's pooling
    return total


def _small_activations() -> int:
    height, width, channels = ACTIVATION_SMALL_INPUT
    total = height * width * channels
    height, width = (height - 3) // 2 + 1, (width - 3) // 2 + 1  # 5 filters, 3x3, stride 2, no padding
    total += height * width * 5
    height, width = height - 4, width - 4  # 4 filters, 5x5
    total += height * width * 4
    height, width = height // 2, width // 2  # pooling
    return total + height * width * 4 + 9 + 3


def _expected_activations() -> list[int]:
    return [_vgg16_activations(*ACTIVATION_VGG_INPUT[:2]), _small_activations()]


def _activation_answers(exports) -> list | None:
    answer = exports.value("q4")
    if not isinstance(answer, list) or len(answer) != 2:
        return None
    if not all(isinstance(pair, list) and len(pair) == 2 for pair in answer):
        return None
    return answer


def activation_count(exports):
    answer = _activation_answers(exports)
    if answer is None or [values for values, _ in answer] != _expected_activations():
        return "the total is off: the input, every convolution and pooling output, and the dense outputs"
    return None


def activation_memory(exports):
    answer = _activation_answers(exports)
    if answer is None or not all(isinstance(megabytes, float) for _, megabytes in answer):
        return "the memory must be a number of MB"
    # the memory of the student's own count: a wrong count loses the other point, not this one
    for values, megabytes in answer:
        if (
            not isinstance(values, int)
            or values <= 0
            or not abs(megabytes - values * 4 / 1e6) <= 1e-3 * values * 4 / 1e6
        ):
            return "memory: the number of values, 4 bytes each, in MB of 10^6 bytes"
    return None


def adam_memory_prediction(exports):
    guess = exports.value("q5_guess")
    if not isinstance(guess, (int, float)) or isinstance(guess, bool):
        return "`adam_bytes_per_parameter` must be a number of bytes"
    if guess != ADAM_BYTES:
        return "this prediction is not what happens: compare it with the cells after it in the notebook"
    return None


# -- q7: the residual block, through the grader's NumPy network ---------------------------------------


def _block_parameters(channels, filters, stride) -> int:
    convolutions = 9 * channels * filters + 9 * filters * filters
    batch_norms = 2 * 4 * filters
    if stride != 1 or channels != filters:
        convolutions += channels * filters
        batch_norms += 4 * filters
    return convolutions + batch_norms


RESIDUAL_LAYERS = ["Conv2D", "BatchNormalization", "ReLU", "Conv2D", "BatchNormalization", "Add", "ReLU"]


def _residual_structure(exports) -> str | None:
    """The identity case's layers, in order: the lecture's block, and nothing else."""
    network = exports.network("q7_block_0")
    kinds = ["ReLU" if _is_relu(layer) else layer.kind for layer in network.layers if layer.kind != "InputLayer"]
    if kinds != RESIDUAL_LAYERS:
        return "the block's layers, in order: convolution, batch normalisation, ReLU, convolution, batch normalisation, the addition, then the final ReLU"
    return None


def residual_shapes(exports):
    if problem := _residual_structure(exports):
        return problem
    for index, (channels, filters, stride) in enumerate(RESIDUAL_CASES):
        network = exports.network(f"q7_block_{index}")
        if tuple(network.output_shape) != (12 // stride, 12 // stride, filters):
            return f"wrong output shape for stride {stride} and {channels} -> {filters} channels"
        if network.parameters != _block_parameters(channels, filters, stride):
            return "the parameter count differs: 3x3 convolutions without bias, BatchNormalization after each, and a 1x1 projection only when the shape changes"
    return None


def residual_shortcut(exports):
    """With every convolution set to zero, a correct block returns ReLU(input) at inference."""
    if problem := _residual_structure(exports):
        return problem
    network = exports.network("q7_zeroed")
    x = np.random.default_rng(1701).normal(size=(2, 12, 12, RESIDUAL_CASES[0][0])).astype("float32")
    output = network.predict(x)
    if output.shape != x.shape or not np.allclose(output, np.maximum(x, 0), atol=1e-3):
        return "the block must add its input unchanged (the identity shortcut), then apply the final ReLU"
    return None


def _same_convolution(x, kernel, stride):
    """Keras's Conv2D with padding="same" (the extra row or column of padding goes below and to
    the right), no bias. x: (n, h, w, c), kernel: (kh, kw, c, filters)."""
    height, width = x.shape[1:3]
    out_h, out_w = -(-height // stride), -(-width // stride)
    pad_h = max((out_h - 1) * stride + kernel.shape[0] - height, 0)
    pad_w = max((out_w - 1) * stride + kernel.shape[1] - width, 0)
    x = np.pad(x, ((0, 0), (pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2), (0, 0)))
    out = np.zeros((x.shape[0], out_h, out_w, kernel.shape[3]))
    for i in range(kernel.shape[0]):
        for j in range(kernel.shape[1]):
            out += x[:, i : i + stride * out_h : stride, j : j + stride * out_w : stride, :] @ kernel[i, j]
    return out


def _normalised(x):
    gamma, beta, mean, variance = PROJECTION_NORMALISATION
    return gamma * (x - mean) / np.sqrt(variance + 1e-3) + beta  # Keras's default epsilon


def residual_projection(exports):
    """The projection case, with the weights the export set: the lecture's block computed here."""
    if problem := _residual_structure(exports):
        return problem
    channels, filters, stride = RESIDUAL_CASES[1]
    network = exports.network("q7_projection")
    if network.parameters != _block_parameters(channels, filters, stride):
        return "the parameter count differs: 3x3 convolutions without bias, BatchNormalization after each, and a 1x1 projection only when the shape changes"

    def weights(shape):
        return np.random.default_rng(list(shape)).normal(0, 0.3, shape).astype("float32").astype("float64")

    x = np.random.default_rng(1703).normal(size=(2, 12, 12, channels))
    y = np.maximum(_normalised(_same_convolution(x, weights((3, 3, channels, filters)), stride)), 0)
    y = _normalised(_same_convolution(y, weights((3, 3, filters, filters)), 1))
    shortcut = _normalised(_same_convolution(x, weights((1, 1, channels, filters)), stride))
    expected = np.maximum(y + shortcut, 0)
    output = network.predict(x.astype("float32"))
    if output.shape != expected.shape or not np.allclose(output, expected, rtol=1e-3, atol=1e-3):
        return "when the shape changes: the stride on the first 3x3 convolution and on the 1x1 projection, each convolution normalised, the two added, then the final ReLU"
    return None


# -- q9 and q10: counting by hand --------------------------------------------------------------------


def _inception(height, width, channels, f1, f3_reduce, f3, f5_reduce, f5, pool_proj, reductions):
    if reductions:
        weights = channels * (f1 + f3_reduce + f5_reduce + pool_proj) + 9 * f3_reduce * f3 + 25 * f5_reduce * f5
    else:
        weights = channels * (f1 + 9 * f3 + 25 * f5)
    return [weights, height * width * weights]


def _inception_test(reductions: bool, hint: str):
    def test(exports):
        answers = exports.value("q9")
        if not isinstance(answers, list) or len(answers) != len(INCEPTION_CASES):
            return "inception_cost must return (weights, macs) for any module"
        for case, pair in zip(INCEPTION_CASES, answers, strict=True):
            if not isinstance(pair, list) or len(pair) != 2:
                return "inception_cost must return (weights, macs) for any module"
            mine = pair[0 if reductions else 1]
            expected = _inception(*case, reductions)
            if not isinstance(mine, list) or mine[0] != expected[0]:
                return hint
            if mine[1] != expected[1]:
                return (
                    "the multiply-adds are off for other modules: every convolution runs at each of the H x W positions"
                )
        return None

    return test


def _conv_test(index: int, hint: str):
    def test(exports):
        answers = exports.value("q10")
        if not isinstance(answers, list) or len(answers) != len(CONV_CASES):
            return "conv_costs must return two (weights, macs) pairs"
        for (height, width, c_in, c_out, kernel), pairs in zip(CONV_CASES, answers, strict=True):
            if not isinstance(pairs, list) or len(pairs) != 2 or not isinstance(pairs[index], list):
                return "conv_costs must return two (weights, macs) pairs"
            if index == 0:
                weights = kernel * kernel * c_in * c_out
            else:
                weights = kernel * kernel * c_in + c_in * c_out
            if pairs[index] != [weights, height * width * weights]:
                return hint
        return None

    return test


# -- q11: the small VGG, read as the grader's NumPy network -------------------------------------------


def _is_relu(layer) -> bool:
    if layer.kind == "ReLU":
        config = layer.config
        return not config.get("max_value") and not config.get("negative_slope") and not config.get("threshold")
    return layer.kind == "Activation" and layer.config.get("activation") == "relu"


def _small_vgg(exports):
    network = exports.network("q11_small_vgg")
    return network, [layer for layer in network.layers if layer.kind != "InputLayer"]


def small_vgg_shapes(exports):
    network, _ = _small_vgg(exports)
    if tuple(network.input_shape) != (32, 32, 3) or tuple(network.output_shape) != (10,):
        return "input 32x32x3 and 10 outputs"
    if network.parameters >= 3_000_000:
        return "keep the network under the question's parameter budget"
    return None


def small_vgg_blocks(exports):
    network, layers = _small_vgg(exports)
    convolutions = network.layers_of("Conv2D")
    if [c.config.get("filters") for c in convolutions] != [32, 32, 64, 64, 128, 128]:
        return "three blocks of two convolutions with the filters the question gives"
    for c in convolutions:
        if tuple(c.config.get("kernel_size", ())) != (3, 3) or c.config.get("padding") != "same":
            return "every convolution is 3x3 with 'same' padding"
        if tuple(c.config.get("strides", ())) != (1, 1):
            return "the convolutions keep stride 1: only the poolings shrink the maps"
    order = "".join(
        "C" if layer.kind == "Conv2D" else "P" for layer in layers if layer.kind in ("Conv2D", "MaxPooling2D")
    )
    if order != "CCPCCPCCP":
        return "one 2x2 max pooling after each block of two convolutions, and none elsewhere"
    for pool in network.layers_of("MaxPooling2D"):
        if tuple(pool.config.get("pool_size", ())) != (2, 2) or tuple(pool.config.get("strides") or (2, 2)) != (2, 2):
            return "the poolings are 2x2 with stride 2"
    return None


def small_vgg_activations(exports):
    _, layers = _small_vgg(exports)
    stops = [i for i, layer in enumerate(layers) if layer.kind in ("Conv2D", "MaxPooling2D")] + [len(layers)]
    for start, stop in zip(stops, stops[1:], strict=False):
        if layers[start].kind != "Conv2D":
            continue
        if layers[start].config.get("activation") == "relu":
            continue
        if not any(_is_relu(layer) for layer in layers[start + 1 : stop]):
            return "each convolution is followed by a ReLU (in the layer, or as a layer after BatchNormalization)"
    return None


def small_vgg_head(exports):
    network, layers = _small_vgg(exports)
    last_pool = max(i for i, layer in enumerate(layers) if layer.kind == "MaxPooling2D")
    head = layers[last_pool + 1 :]
    if not any(layer.kind in ("Dropout", "SpatialDropout2D") for layer in head):
        return "the dense head uses dropout"
    dense = [layer for layer in head if layer.kind == "Dense"]
    if not dense or dense[-1].config.get("units") != 10:
        return "the head ends with a Dense layer of 10 units"
    after = head[head.index(dense[-1]) + 1 :]
    softmax = dense[-1].config.get("activation") == "softmax" or any(
        layer.kind == "Softmax" or (layer.kind == "Activation" and layer.config.get("activation") == "softmax")
        for layer in after
    )
    probabilities = network.predict(np.random.default_rng(4).uniform(0, 255, (4, 32, 32, 3)).astype("float32"))
    if not softmax or not np.allclose(probabilities.sum(axis=1), 1, atol=1e-4) or probabilities.min() < 0:
        return "the network ends with a softmax: one probability per class, summing to 1"
    return None


# -- q12 ---------------------------------------------------------------------------------------------


def _top_k_expected() -> list[float]:
    probabilities, labels = _top_k_probe()
    order = np.argsort(-probabilities, axis=1)
    return [float(np.mean(np.any(order[:, :k] == labels[:, None], axis=1))) for k in TOP_K]


def _top_k_test(ks, hint):
    def test(exports):
        answers = exports.value("q12")
        if not isinstance(answers, list) or len(answers) != len(TOP_K):
            return "top_k_accuracy must return a fraction"
        for k, mine, expected in zip(TOP_K, answers, _top_k_expected(), strict=True):
            if k in ks and (not isinstance(mine, float) or not abs(mine - expected) <= 1e-6):
                return hint
        return None

    return test


TESTS = [
    HiddenTest("q1", "VGG16 convolution blocks, other input size", 2.0, vgg_blocks),
    HiddenTest("q1", "VGG16 classifier, other number of classes", 2.0, vgg_classifier),
    HiddenTest("q2", "prediction: parameters of the slide's code", 1.0, _prediction("q2")),
    HiddenTest("q3", "the slide's network at another input size", 2.0, lecture_layers),
    HiddenTest("q3", "the slide's block-5 shape and parameter count", 1.0, lecture_values),
    HiddenTest("q4", "activations per image: values", 1.0, activation_count),
    HiddenTest("q4", "activations per image: MB", 1.0, activation_memory),
    HiddenTest("q5", "prediction: Adam's training memory per parameter", 1.0, adam_memory_prediction),
    HiddenTest("q7", "residual block shapes and parameters", 1.0, residual_shapes),
    HiddenTest("q7", "residual block identity shortcut", 1.0, residual_shortcut),
    HiddenTest("q7", "residual block projection shortcut", 1.0, residual_projection),
    HiddenTest("q8", "prediction: what the 1x1 reductions save", 1.0, _prediction("q8")),
    HiddenTest(
        "q9",
        "inception modules with their 1x1 reductions",
        1.0,
        _inception_test(
            True, "the weights with reductions are off for other modules: count the 1x1 reductions and projection too"
        ),
    ),
    HiddenTest(
        "q9",
        "naive inception modules",
        1.0,
        _inception_test(
            False,
            "the weights without reductions are off for other modules: every convolution sees all the input channels, and pooling has no weights",
        ),
    ),
    HiddenTest(
        "q10", "standard convolution", 1.0, _conv_test(0, "the standard convolution's counts are off for other sizes")
    ),
    HiddenTest(
        "q10",
        "depthwise-separable convolution",
        1.0,
        _conv_test(
            1,
            "the separable convolution's counts are off for other sizes: one k x k filter per input channel, then a 1x1 mix",
        ),
    ),
    HiddenTest("q11", "small VGG: input, output and parameter budget", 0.5, small_vgg_shapes),
    HiddenTest("q11", "small VGG: blocks of 3x3 convolutions and 2x2 pooling", 1.0, small_vgg_blocks),
    HiddenTest("q11", "small VGG: ReLU after every convolution", 0.5, small_vgg_activations),
    HiddenTest("q11", "small VGG: dropout and a softmax over 10 classes", 1.0, small_vgg_head),
    HiddenTest("q12", "top-1 accuracy", 1.0, _top_k_test({1}, "with k=1, top-k accuracy is the usual accuracy")),
    HiddenTest(
        "q12",
        "top-k accuracy for k > 1",
        1.0,
        _top_k_test(
            {2, 3}, "for k > 1, top-k accuracy counts an example when its label is among the k most probable classes"
        ),
    ),
]
