"""Hidden tests for lab 03, VGG in Keras and the classic architectures. Instructor material:
never shipped to students.

The export cells run in the student's kernel and save plain data: a layer-by-layer summary of
VGG16 built for another input size and number of classes (the whole model would be too big to
export), the numbers of question 2, and small models for questions 3 and 4. The tests below
run in the grader's trusted process; the expected VGG16 comes from keras.applications, built
there. Hints never contain expected values.
"""

import numpy as np

from cnnlab.grading.hidden import HiddenTest

VGG_INPUT, VGG_CLASSES = (64, 48, 3), 7  # not the public check's 224x224x3 and 1000 classes
BLOCKS = [(2, 64), (2, 128), (3, 256), (3, 512), (3, 512)]  # VGG16: convolutions and filters per block
RESIDUAL_CASES = [(8, 8, 1), (8, 16, 2)]  # (channels in, filters, stride)
SMALL_VGG_MIN_ACCURACY = 0.35  # smoke profile, the notebook's own target; the solution reaches about 0.48

EXPORTS = [
    (
        "q1",
        "q1",
        f"_model = build_vgg16(input_shape={VGG_INPUT!r}, num_classes={VGG_CLASSES})\n"
        "export_value('q1_layers', [{'name': _l.name, 'type': type(_l).__name__, 'shape': list(_l.output.shape[1:]), "
        "'params': int(_l.count_params()), 'activation': getattr(getattr(_l, 'activation', None), '__name__', None)} "
        "for _l in _model.layers])\n"
        "del _model",
    ),
    ("q2", "q2", "export_value('q2', [int(total_activations), float(megabytes_per_image)])"),
    (
        "q3",
        "q3",
        f"for _i, (_channels, _filters, _stride) in enumerate({RESIDUAL_CASES!r}):\n"
        "    _inputs = keras.Input((12, 12, _channels))\n"
        "    export_model(f'q3_block_{_i}', keras.Model(_inputs, residual_block(_inputs, _filters, _stride)))",
    ),
    ("q4", "q4", "export_model('q4_small_vgg', build_small_vgg())"),
    ("lab03-28", "q4", "export_model('q4_trained', small_vgg)"),  # after training and evaluation
]


def _summary(model):
    return {
        layer.name: {
            "type": type(layer).__name__,
            "shape": list(layer.output.shape[1:]),
            "params": int(layer.count_params()),
            "activation": getattr(getattr(layer, "activation", None), "__name__", None),
        }
        for layer in model.layers
    }


def _vgg_mismatches(exports, is_wanted) -> str | None:
    import keras

    layers = exports.value("q1_layers")
    if not isinstance(layers, list) or not all(isinstance(layer, dict) for layer in layers):
        return "build_vgg16 did not build a model"
    mine = {layer.get("name"): {k: v for k, v in layer.items() if k != "name"} for layer in layers}
    reference = _summary(keras.applications.VGG16(weights=None, input_shape=VGG_INPUT, classes=VGG_CLASSES))
    wanted = [name for name in reference if is_wanted(name)]
    missing = [name for name in wanted if name not in mine]
    if missing:
        return f"layers not found by name: {', '.join(missing)}"
    wrong = [name for name in wanted if mine[name] != reference[name]]
    if wrong:
        return f"these layers differ from VGG16's for another input size or number of classes: {', '.join(wrong)}"
    return None


def vgg_blocks(exports):
    return _vgg_mismatches(exports, lambda name: name.startswith("block"))


def vgg_classifier(exports):
    return _vgg_mismatches(exports, lambda name: name in ("flatten", "fc1", "fc2", "predictions"))


def _expected_activations() -> int:
    total, size = 224 * 224 * 3, 224
    for convolutions, filters in BLOCKS:
        total += convolutions * size * size * filters
        size //= 2
        total += size * size * filters  # the block's pooling
    return total + 4096 + 4096 + 1000


def activation_count(exports):
    answer = exports.value("q2")
    if not isinstance(answer, list) or len(answer) != 2 or answer[0] != _expected_activations():
        return "the total is off: the input, every convolution and pooling output, and the three dense outputs"
    return None


def activation_memory(exports):
    answer = exports.value("q2")
    if not isinstance(answer, list) or len(answer) != 2:
        return "the memory must be a number of MB"
    if abs(answer[1] - _expected_activations() * 4 / 1e6) > 0.05:
        return "memory: your total of values, 4 bytes each, in MB of 10^6 bytes"
    return None


def _block_parameters(channels, filters, stride) -> int:
    convolutions = 9 * channels * filters + 9 * filters * filters
    batch_norms = 2 * 4 * filters
    if stride != 1 or channels != filters:
        convolutions += channels * filters
        batch_norms += 4 * filters
    return convolutions + batch_norms


def residual_shapes(exports):
    for index, (channels, filters, stride) in enumerate(RESIDUAL_CASES):
        model = exports.model(f"q3_block_{index}")
        if tuple(model.output_shape[1:]) != (12 // stride, 12 // stride, filters):
            return f"wrong output shape for stride {stride} and {channels} -> {filters} channels"
        if model.count_params() != _block_parameters(channels, filters, stride):
            return "the parameter count differs: 3x3 convolutions without bias, BatchNormalization after each, and a 1x1 projection only when the shape changes"
    return None


def residual_shortcut(exports):
    """With every convolution set to zero, a correct block returns ReLU(input) at inference."""
    import keras

    model = exports.model("q3_block_0")  # the identity-shortcut case
    for layer in model.layers:  # zero every convolution, the projection included
        if isinstance(layer, keras.layers.Conv2D):
            layer.set_weights([np.zeros_like(w) for w in layer.get_weights()])
    x = np.random.default_rng(1701).normal(size=(2, 12, 12, RESIDUAL_CASES[0][0])).astype("float32")
    output = np.asarray(model(x, training=False))
    if output.shape != x.shape or not np.allclose(output, np.maximum(x, 0), atol=1e-3):
        return "the block must add its input unchanged (the identity shortcut), then apply the final ReLU"
    return None


def small_vgg_architecture(exports):
    import keras

    model = exports.model("q4_small_vgg")
    if tuple(model.input_shape[1:]) != (32, 32, 3) or tuple(model.output_shape[1:]) != (10,):
        return "input 32x32x3 and 10 outputs"
    convolutions = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    if [c.filters for c in convolutions] != [32, 32, 64, 64, 128, 128] or any(
        c.kernel_size != (3, 3) for c in convolutions
    ):
        return "three blocks of two 3x3 convolutions with the filters the question gives"
    if sum(isinstance(layer, keras.layers.MaxPooling2D) for layer in model.layers) < 3:
        return "2x2 max pooling after each block"
    if model.count_params() >= 3_000_000:
        return "keep the network under the question's parameter budget"
    return None


def small_vgg_trained(exports):
    import cnnlab

    model = exports.model("q4_trained")
    (_, _), (x_test, y_test) = cnnlab.load_cifar10("subset")
    predictions = model.predict(x_test.astype("float32"), batch_size=500, verbose=0)
    if predictions.shape != (len(x_test), 10):
        return "the trained network does not output 10 class probabilities"
    accuracy = float((predictions.argmax(axis=1) == y_test).mean())
    if accuracy < SMALL_VGG_MIN_ACCURACY:
        return f"the trained network reaches {accuracy:.1%} test accuracy, below the grading threshold"
    return None


TESTS = [
    HiddenTest("q1", "VGG16 convolution blocks, other input size", 2.0, vgg_blocks),
    HiddenTest("q1", "VGG16 classifier, other number of classes", 2.0, vgg_classifier),
    HiddenTest("q2", "VGG16 activation count", 1.0, activation_count),
    HiddenTest("q2", "VGG16 activation memory", 1.0, activation_memory),
    HiddenTest("q3", "residual block shapes and parameters", 1.0, residual_shapes),
    HiddenTest("q3", "residual block identity shortcut", 1.0, residual_shortcut),
    HiddenTest("q4", "small VGG architecture", 1.0, small_vgg_architecture),
    HiddenTest("q4", "trained small VGG test accuracy", 1.0, small_vgg_trained),
]
