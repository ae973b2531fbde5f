"""The hidden tests of every lab that has them: right answers pass, wrong answers lose exactly
their question's tests, and no hint gives the answer away.

The exports are made here, in this process, by running the hidden files' export code on the
solution's answer cells (or on an answer with one realistic mistake), as the grader's export
cells would in the student's kernel; the trusted side's :func:`run_tests` then reads them.
Labs 01, 03, 04 and 05 are also graded end to end through ``cnnlab grade`` (lab 02 in
test_adversarial.py).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import nbformat
import numpy as np
import pytest

from cnnlab.grading import export as export_helpers
from cnnlab.grading.assemble import assemble
from cnnlab.grading.batch import hidden_tests_path, lab_points, question_points
from cnnlab.grading.trusted import load_hidden_tests, run_tests
from cnnlab.notebooks.catalog import lab_notebook

from .submissions import grade_command

ROOT = Path(__file__).resolve().parents[2]
HIDDEN_LABS = sorted(path.stem.removeprefix("lab") for path in (ROOT / "solutions" / "hidden").glob("lab*.py"))


# What answers or exports read from earlier cells: lab 03's q4 answer reads `reference` (lab
# 05's answers and exports read nothing the notebook made: its probes are their own).
EARLIER_CELLS = {
    "03": "reference = keras.applications.VGG16(weights=None)",
}


def answer_cells(lab: str) -> dict[str, str]:
    notebook = nbformat.read(lab_notebook(lab, "solutions"), as_version=4)
    return {c.metadata["cnnlab"]["question"]: c.source for c in notebook.cells if c.cell_type == "code" and "question" in c.metadata.get("cnnlab", {})}  # fmt: skip


def run_exports(lab: str, tmp_path: Path, changed: dict | None = None, after_training: str = "") -> dict:
    """Define the solution's answers (with ``changed[q] = (old, new)`` substituted), run every
    export anchored on a question, and return the hidden tests' results by test name.

    Exports anchored on a later cell (after training) run only when ``after_training``
    defines what those cells would have made."""
    namespace = {}
    exec("import keras\nimport numpy as np\nimport cnnlab", namespace)  # the labs' setup imports
    exec(EARLIER_CELLS.get(lab, ""), namespace)
    for question, source in answer_cells(lab).items():
        old, new = (changed or {}).get(question, ("", ""))
        assert old in source, f"the mutation for {question} no longer matches the solution"
        exec(source.replace(old, new) if old else source, namespace)
    exec(after_training, namespace)
    exec("from cnnlab.grading.export import export_array, export_model, export_value", namespace)
    hidden = load_hidden_tests(str(hidden_tests_path(lab)))
    exports_dir = tmp_path / "exports"
    os.environ["CNNLAB_EXPORT_DIR"] = str(exports_dir)
    try:
        for anchor, question, code in hidden.EXPORTS:
            if anchor.startswith("q") or after_training:
                try:
                    exec(code, namespace)
                except Exception as failure:  # as the grader's export cell does
                    export_helpers.record_failure(question, failure)
    finally:
        del os.environ["CNNLAB_EXPORT_DIR"]
    exports_dir.mkdir(exist_ok=True)
    fd = os.open(exports_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        return {r["name"]: r for r in run_tests(hidden, fd, 256, 768 << 20)}
    finally:
        os.close(fd)


@pytest.mark.parametrize("lab", HIDDEN_LABS)
def test_every_question_has_hidden_tests_and_every_export_an_anchor(lab):
    hidden = load_hidden_tests(str(hidden_tests_path(lab)))
    lab_node = nbformat.read(lab_notebook(lab, "labs"), as_version=4)
    questions = set(question_points(lab_node))  # auto-graded; written questions are graded by people
    assert {t.question for t in hidden.TESTS} == questions  # a question without tests would score 0
    assemble(lab_node, [], hidden.EXPORTS)  # raises on an anchor that is not in the lab
    assert lab_points(lab) > 0


# (lab, mistake): ({question: (solution text, mistaken text)}, tests that must fail, a hint fragment)
MISTAKES = {
    ("01", "flipped kernel"): (
        {"q1": ('weights = np.asarray(kernel, dtype="float32")', 'weights = np.asarray(kernel, dtype="float32")[::-1, ::-1]')},
        {"fixed-weight Conv2D layer: response to a new kernel"},
        "not flipped",
    ),
    ("01", "step edge: the centre weight alone"): ({"q2": ("prediction_q2 = 3", "prediction_q2 = 8")}, {"step-edge prediction"}, "prediction"),
    ("01", "no flip in convolve"): (
        {"q3": ("return cross_correlate(image, kernel[::-1, ::-1])", "return cross_correlate(image, kernel)")},
        {"true convolution on other sizes"},
        "flip the kernel",
    ),
    ("01", "emboss: only the sign changes"): ({"q4": ('prediction_q4 = "c"', 'prediction_q4 = "b"')}, {"emboss prediction"}, "prediction"),
    ("01", "kernel learned with a bias"): (
        {"q5": ("keras.layers.Conv2D(1, kernel_size, use_bias=False)", "keras.layers.Conv2D(1, kernel_size)")},
        {"learned model: one Conv2D, one filter, no bias"},
        "no bias",
    ),
    ("01", "kernel trained too little"): (
        {"q5": ("batch_size=2, epochs=10", "batch_size=2, epochs=1")},
        {"learned kernel: the probe's own"},
        "train for more steps",
    ),
    ("01", "float size"): ({"q7": ("return int(size)", "return size")}, {"whole output sizes"}, "must return an int"),
    ("01", "Keras rounds up"): ({"q8": ("prediction_q8 = 248", "prediction_q8 = 249")}, {"strided-layer width prediction"}, "prediction"),
    ("01", "strides ignored in the receptive field"): (
        {"q9": ("        step *= stride\n", "")},
        {"receptive fields with strides and pooling"},
        "stride",
    ),
    ("01", "fields add whole kernels"): (
        {"q9": ("field += (kernel_size - 1) * step", "field += kernel_size * step")},
        {"receptive fields, stride 1", "receptive fields with strides and pooling"},
        "receptive fields",
    ),
    ("01", "second kernel rotated when composing"): (
        {"q10": ("for (i, j), weight in np.ndenumerate(second):", "for (i, j), weight in np.ndenumerate(second[::-1, ::-1]):")},
        {"composed kernels, square", "composed kernels, not square"},
        "correlation",
    ),
    ("01", "max-pool gradient spread over the window"): (
        {"q13": ("gradient[i * size + row, j * size + col] = value", "gradient[i * size : (i + 1) * size, j * size : (j + 1) * size] = value / size**2")},
        {"max-pool backward pass"},
        "only each window's largest input",
    ),
    ("01", "weights without biases"): (
        {"q14": ("conv1_parameters = (11 * 11 * 3 + 1) * 96", "conv1_parameters = 11 * 11 * 3 * 96")},
        {"AlexNet CONV1 and POOL1"},
        "params",
    ),
    ("02", "Dense count without biases"): (
        {"q3": ("return (height * width * channels + 1) * units", "return height * width * channels * units")},
        {"Dense parameter counts"},
        "biases",
    ),
    ("02", "the ConvNet taken for translation invariant"): (
        {"q5": ('prediction_q5 = {"MLP": 35, "ConvNet": 75}', 'prediction_q5 = {"MLP": 35, "ConvNet": 98}')},
        {"ConvNet accuracy on shifted digits, predicted"},
        "not within",
    ),
    ("02", "the MLP taken for robust to shifts"): (
        {"q5": ('prediction_q5 = {"MLP": 35, "ConvNet": 75}', 'prediction_q5 = {"MLP": 85, "ConvNet": 75}')},
        {"MLP accuracy on shifted digits, predicted"},
        "not within",
    ),
    ("02", "fractions for percentages"): (
        {"q5": ('prediction_q5 = {"MLP": 35, "ConvNet": 75}', 'prediction_q5 = {"MLP": 0.35, "ConvNet": 0.75}')},
        {"MLP accuracy on shifted digits, predicted", "ConvNet accuracy on shifted digits, predicted"},
        "percentages",
    ),
    ("02", "shared kernels taken for a small network"): (
        {"q7": ('prediction_q7 = "c"', 'prediction_q7 = "a"')},
        {"ConvNet size against the MLP, predicted"},
        "parameter counts",
    ),
    ("03", "narrow classifier"): (
        {"q1": ('Dense(4096, activation="relu", name="fc1")', 'Dense(1024, activation="relu", name="fc1")')},
        {"VGG16 classifier, other number of classes"},
        "fc1",
    ),
    ("03", "padding adds no weights"): ({"q2": ('padding_guess = "c"', 'padding_guess = "a"')}, {"prediction: parameters of the slide's code"}, "prediction"),
    ("03", "the slide's code padded"): (
        {"q3": ('slide.add(keras.layers.Conv2D(width, (3, 3), activation="relu"))', 'slide.add(keras.layers.Conv2D(width, (3, 3), padding="same", activation="relu"))')},
        {"the slide's network at another input size", "the slide's block-5 shape and parameter count"},
        "pad",
    ),
    ("03", "Flatten counted as activations"): (
        {"q4": ("counted = [layer for layer in model.layers if not isinstance(layer, keras.layers.Flatten)]", "counted = model.layers")},
        {"activations per image: values"},
        "dense outputs",
    ),
    ("03", "MiB instead of MB"): (
        {"q4": ("megabytes = values * 4 / 1e6", "megabytes = values * 4 / 2**20")},
        {"activations per image: MB"},
        "10^6",
    ),
    ("03", "Adam without the gradients"): (
        {"q5": ("adam_bytes_per_parameter = 16", "adam_bytes_per_parameter = 12")},
        {"prediction: Adam's training memory per parameter"},
        "prediction",
    ),
    ("03", "ReLU before the addition"): (
        {"q7": ("return keras.layers.ReLU()(keras.layers.Add()([y, shortcut]))", "return keras.layers.Add()([keras.layers.ReLU()(y), shortcut])")},
        {"residual block shapes and parameters", "residual block identity shortcut", "residual block projection shortcut"},
        "final ReLU",
    ),
    ("03", "stride on the second convolution"): (
        {"q7": ('y = keras.layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False)(x)\n    y = keras.layers.BatchNormalization()(y)\n    y = keras.layers.ReLU()(y)\n    y = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(y)',
                'y = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)\n    y = keras.layers.BatchNormalization()(y)\n    y = keras.layers.ReLU()(y)\n    y = keras.layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False)(y)')},
        {"residual block projection shortcut"},
        "the stride on the first",
    ),
    ("03", "projection normalised after the addition"): (
        {"q7": ('        shortcut = keras.layers.BatchNormalization()(shortcut)\n    y = keras.layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False)(x)\n    y = keras.layers.BatchNormalization()(y)\n    y = keras.layers.ReLU()(y)\n    y = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(y)\n    y = keras.layers.BatchNormalization()(y)\n    return keras.layers.ReLU()(keras.layers.Add()([y, shortcut]))', '    y = keras.layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False)(x)\n    y = keras.layers.BatchNormalization()(y)\n    y = keras.layers.ReLU()(y)\n    y = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(y)\n    y = keras.layers.BatchNormalization()(y)\n    added = keras.layers.Add()([y, shortcut])\n    if stride != 1 or x.shape[-1] != filters:\n        added = keras.layers.BatchNormalization()(added)\n    return keras.layers.ReLU()(added)')},
        {"residual block projection shortcut"},
        "each convolution normalised",
    ),
    ("03", "reductions predicted to add work"): ({"q8": ('reduction_guess = "c"', 'reduction_guess = "a"')}, {"prediction: what the 1x1 reductions save"}, "prediction"),
    ("03", "naive module with a pool projection"): (
        {"q9": ("naive = channels * f1 + 3 * 3 * channels * f3", "naive = channels * (f1 + pool_proj) + 3 * 3 * channels * f3")},
        {"naive inception modules"},
        "pooling has no weights",
    ),
    ("03", "separable without the pointwise convolution"): (
        {"q10": ("separable = kernel * kernel * c_in + c_in * c_out", "separable = kernel * kernel * c_in")},
        {"depthwise-separable convolution"},
        "1x1",
    ),
    ("03", "small VGG with 5x5 kernels"): (
        {"q11": ('Conv2D(filters, 3, padding="same", use_bias=False)', 'Conv2D(filters, 5, padding="same", use_bias=False)')},
        {"small VGG: blocks of 3x3 convolutions and 2x2 pooling"},
        "3x3",
    ),
    ("03", "small VGG without a softmax"): (
        {"q11": ('outputs = keras.layers.Dense(10, activation="softmax")(x)', "outputs = keras.layers.Dense(10)(x)")},
        {"small VGG: dropout and a softmax over 10 classes"},
        "softmax",
    ),
    ("03", "top-k of the least probable classes"): (
        {"q12": ("best_k = np.argsort(probabilities, axis=1)[:, -k:]", "best_k = np.argsort(probabilities, axis=1)[:, :k]")},
        {"top-1 accuracy", "top-k accuracy for k > 1"},
        "accuracy",
    ),
    ("04", "no clipping"): (
        {"q1": ("p = np.clip(probabilities, 1e-7, 1.0)", "p = probabilities")},
        {"cross-entropy with a zero probability"},
        "clip",
    ),
    ("04", "no bias correction"): (
        {"q2": ("alpha = learning_rate * np.sqrt(1 - beta_2**t) / (1 - beta_1**t)", "alpha = learning_rate")},
        {"Adam steps with other betas"},
        "bias corrections",
    ),
    ("04", "Adam predicted closest"): (
        {"q3": ('closest_guess = "b"', 'closest_guess = "c"')},
        {"closest optimizer prediction"},
        "prediction",
    ),
    ("04", "sigmoid predicted like ReLU"): (
        {"q4": ('saturation_guess = "caa"', 'saturation_guess = "aaa"')},
        {"saturation prediction"},
        "prediction",
    ),
    ("04", "ReLU inside the convolution"): (
        {"q5": ("x = keras.layers.Conv2D(filters, size, kernel_regularizer=penalty)(x)", 'x = keras.layers.Conv2D(filters, size, activation="relu", kernel_regularizer=penalty)(x)')},
        {"BatchNormalization before each ReLU"},
        "before its ReLU",
    ),
    ("04", "no ReLU without batch normalization"): (
        {"q5": ("        x = keras.layers.ReLU()(x)\n", "        if batchnorm:\n            x = keras.layers.ReLU()(x)\n")},
        {"defaults: the lecture ConvNet", "dropout placement and rate", "L2 penalty on every kernel"},
        "a ReLU after each convolution",
    ),
    ("04", "sigmoid in the hidden dense layer"): (
        {"q5": ('x = keras.layers.Dense(256, activation="relu", kernel_regularizer=penalty)(x)', 'x = keras.layers.Dense(256, activation="sigmoid", kernel_regularizer=penalty)(x)')},
        {"defaults: the lecture ConvNet", "dropout placement and rate", "L2 penalty on every kernel", "BatchNormalization before each ReLU"},
        "a ReLU after each convolution",
    ),
    ("04", "Keras's default BatchNormalization momentum"): (
        {"q5": ("keras.layers.BatchNormalization(momentum=0.9)(x)", "keras.layers.BatchNormalization()(x)")},
        {"BatchNormalization before each ReLU"},
        "momentum",
    ),
    ("04", "no penalty on the classifier"): (
        {"q5": ('outputs = keras.layers.Dense(10, activation="softmax", kernel_regularizer=penalty)(x)', 'outputs = keras.layers.Dense(10, activation="softmax")(x)')},
        {"L2 penalty on every kernel"},
        "every Conv2D and Dense",
    ),
    ("04", "mirrored digits kept"): (
        {"q6": ('label_preserving = "bde"', 'label_preserving = "abde"')},
        {"the transforms that keep every label"},
        "mirroring",
    ),
    ("04", "batch norm predicted below validation"): (
        {"q7": ('below_guess = "be"', 'below_guess = "bde"')},
        {"training below validation prediction"},
        "prediction",
    ),
    ("04", "range test that never stops"): (
        {"q9": ("        if not np.isfinite(loss) or loss > 4 * min(losses):\n            break\n", "")},
        {"range test: stops when the loss blows up"},
        "4 times the lowest",
    ),
    ("04", "range test with made-up losses"): (
        {
            "q9": (
                'loss = float(model.train_on_batch(x[batch], y[batch], return_dict=True)["loss"])',
                "loss = float(model.evaluate(x[batch], y[batch], verbose=0)) * (1 if i < steps - 1 else 50)",
            )
        },
        {"range test: the batches trained on give those losses", "range test: losses of the batches trained on"},
        "train on",
    ),
    ("04", "range test on the same batch every step"): (
        {"q9": ("batch = rng.choice(len(x), batch_size, replace=False)", "batch = np.arange(batch_size)")},
        {"range test: the batches trained on give those losses"},
        "at random",
    ),
    ("04", "plateau without min_delta"): (
        {"q10": ("loss < best - min_delta", "loss < best")},
        {"plateau schedule on other curves"},
        "min_delta",
    ),
    ("04", "augmentation predicted to keep its accuracy"): (
        {"q11": ('shift_guess = "b"', 'shift_guess = "c"')},
        {"shift prediction"},
        "prediction",
    ),
    ("04", "lighting from the standard deviation"): (
        {"q12": ("grey_levels_guess = 0.1 * 0.1724 * 255", "grey_levels_guess = 0.1 * 0.1724**0.5 * 255")},
        {"grey levels prediction"},
        "prediction",
    ),
    ("05", "wrong zero-shot prediction"): (
        {"q1": ('zero_shot_guess = "d"', 'zero_shot_guess = "b"')},
        {"zero-shot prediction"},
        "prediction",
    ),
    ("05", "head flattens the feature map"): (
        {"q2": ("keras.layers.GlobalAveragePooling2D()(features)", "keras.layers.Flatten()(features)")},
        {"new head: pooled softmax of a Dense layer, with dropout"},
        "average",
    ),
    ("05", "base left trainable"): (
        {"q2": ("    base.trainable = False\n    images", "    images")},
        {"transfer model: only the head trains"},
        "frozen",
    ),
    ("05", "base called without training=False"): (
        {"q2": ("head(base(images, training=False))", "head(base(images))")},
        {"transfer model: the base called in inference mode, then the head"},
        "training=False",
    ),
    ("05", "BatchNormalization tuned too"): (
        {"q3": ("layer.trainable = reached and not isinstance(layer, keras.layers.BatchNormalization)", "layer.trainable = reached")},
        {"BatchNormalization stays frozen"},
        "BatchNormalization",
    ),
    ("05", "the head's learning rate"): (
        {"q3": ("learning_rate=head_learning_rate / 10", "learning_rate=head_learning_rate")},
        {"Adam at a tenth of the head's learning rate"},
        "a tenth",
    ),
}  # fmt: skip
# Values that must never appear in a hint: answers of the labs' questions.
ANSWERS = ("55", "34944", "34,944", "15,237,608", "15237608", "60.9", "431754", "431,754", "1285", "771")
ANSWERS += ("37,694,248", "37694248", "163,328", "387,072")  # lab 03: the slide's VGG16, inception 3a
# Exports anchored on a cell (after training) are not made here, so their tests fail here.
NOT_MADE_HERE: dict[str, set[str]] = {}


@pytest.mark.parametrize("lab", HIDDEN_LABS)
def test_solution_answers_pass_every_hidden_test(lab, tmp_path):
    results = run_exports(lab, tmp_path)
    failed = {name for name, r in results.items() if not r["passed"]}
    assert failed == NOT_MADE_HERE.get(lab, set()), [results[name] for name in failed]


@pytest.mark.parametrize("lab, mistake", sorted(MISTAKES))
def test_mistakes_fail_only_their_tests_with_a_hint(lab, mistake, tmp_path):
    changed, failing, hint = MISTAKES[lab, mistake]
    results = run_exports(lab, tmp_path, changed)
    assert {name for name, r in results.items() if not r["passed"]} == failing | NOT_MADE_HERE.get(lab, set())
    for name in failing:
        assert hint in results[name]["hint"]
        assert not any(answer in results[name]["hint"] for answer in ANSWERS)


# Other correct answers, written differently from the solution: they must lose nothing.
ALTERNATIVES = {
    ("01", "receptive field from the top down"): {
        "q9": (
            "field, step = 1, 1  # step: how many input pixels apart two neighbouring outputs are\n    for kernel_size, stride in layers:\n        field += (kernel_size - 1) * step\n        step *= stride\n    return field",
            "size = 1\n    for kernel_size, stride in reversed(layers):\n        size = (size - 1) * stride + kernel_size\n    return size",
        )
    },
    ("01", "layer built on its first call"): {
        "q1": (
            'layer = keras.layers.Conv2D(1, weights.shape, padding="same", use_bias=False, trainable=False)\n    layer.build((None, None, None, 1))\n    layer.set_weights([weights[:, :, None, None]])\n    return layer',
            'return keras.layers.Conv2D(1, weights.shape, padding="same", use_bias=False, kernel_initializer=keras.initializers.Constant(weights[:, :, None, None]))',
        )
    },
    ("03", "dropout in the classifier, as in the lecture's code"): {
        "q1": ('x = keras.layers.Dense(4096, activation="relu", name="fc1")(x)', 'x = keras.layers.Dense(4096, activation="relu", name="fc1")(x)\n    x = keras.layers.Dropout(0.5)(x)')
    },
    ("03", "activations from the model's input and its layers' output shapes"): {
        "q4": (
            "counted = [layer for layer in model.layers if not isinstance(layer, keras.layers.Flatten)]\n    values = int(sum(np.prod(layer.output.shape[1:]) for layer in counted))",
            "shapes = [model.input.shape[1:]] + [layer.output.shape[1:] for layer in model.layers if type(layer).__name__ not in ('InputLayer', 'Flatten')]\n    values = sum(int(np.prod(shape)) for shape in shapes)",
        )
    },
    ("03", "the slide's code with an InputLayer, a small VGG without BatchNormalization, top-k by sorting"): {
        "q3": (
            'slide = keras.Sequential([keras.Input(input_shape)], name="lecture_vgg16")',
            'slide = keras.Sequential(name="lecture_vgg16")\n    slide.add(keras.layers.InputLayer(shape=input_shape))',
        ),
        "q11": (
            'x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)\n            x = keras.layers.BatchNormalization(momentum=0.9)(x)\n            x = keras.layers.ReLU()(x)',
            'x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(x)',
        ),
        "q12": ("best_k = np.argsort(probabilities, axis=1)[:, -k:]", "best_k = np.argsort(-probabilities, axis=1)[:, :k]"),
    },
    ("04", "range test drawing its batches otherwise"): {
        "q9": ("batch = rng.choice(len(x), batch_size, replace=False)", "batch = rng.integers(0, len(x), batch_size)")
    },
    ("04", "ReLU after each pooling"): {
        "q5": (
            '        x = keras.layers.ReLU()(x)\n        x = keras.layers.MaxPooling2D(2)(x)\n',
            '        x = keras.layers.MaxPooling2D(2)(x)\n        x = keras.layers.ReLU()(x)\n',
        )
    },
    ("04", "softmax as its own layer"): {
        "q5": (
            'outputs = keras.layers.Dense(10, activation="softmax", kernel_regularizer=penalty)(x)',
            'outputs = keras.layers.Activation("softmax")(keras.layers.Dense(10, kernel_regularizer=penalty)(x))',
        )
    },
    ("04", "Activation layers instead of ReLU layers"): {"q5": ("x = keras.layers.ReLU()(x)", 'x = keras.layers.Activation("relu")(x)')},
    ("04", "rates from np.geomspace, plateau counted down"): {
        "q9": ("rate = start * (stop / start) ** (i / (steps - 1))", "rate = float(np.geomspace(start, stop, steps)[i])"),
        "q10": (
            "rates, best, waited = [], None, 0\n    for loss in losses:\n        rates.append(learning_rate)\n        if best is None or loss < best - min_delta:\n            best, waited = loss, 0\n            continue\n        waited += 1\n        if waited >= patience:\n            learning_rate, waited = learning_rate * factor, 0\n    return rates",
            "rates, best, left = [], float('inf'), patience\n    for loss in losses:\n        rates.append(learning_rate)\n        if loss + min_delta < best:\n            best, left = loss, patience\n            continue\n        left -= 1\n        if left == 0:\n            learning_rate, left = learning_rate * factor, patience\n    return rates",
        ),
    },
    ("05", "a Sequential head, layers unfrozen by position"): {
        "q2": (
            'features = keras.Input(feature_shape)\n    pooled = keras.layers.GlobalAveragePooling2D()(features)\n    pooled = keras.layers.Dropout(0.2)(pooled)\n    return keras.Model(features, keras.layers.Dense(num_classes, activation="softmax")(pooled), name="new_head")',
            'return keras.Sequential([keras.Input(feature_shape), keras.layers.GlobalAveragePooling2D(), keras.layers.Dropout(0.2), keras.layers.Dense(num_classes, activation="softmax")])',
        ),
        "q3": (
            "reached = False\n    for layer in base.layers:\n        reached = reached or layer.name == first_layer\n        layer.trainable = reached and not isinstance(layer, keras.layers.BatchNormalization)",
            "start = [layer.name for layer in base.layers].index(first_layer)\n    for index, layer in enumerate(base.layers):\n        layer.trainable = index >= start and type(layer).__name__ != 'BatchNormalization'",
        ),
    },
}  # fmt: skip


@pytest.mark.parametrize("lab, variant", sorted(ALTERNATIVES))
def test_other_correct_answers_pass(lab, variant, tmp_path):
    results = run_exports(lab, tmp_path, ALTERNATIVES[lab, variant])
    failed = {name for name, r in results.items() if not r["passed"]}
    assert failed == NOT_MADE_HERE.get(lab, set()), [results[name] for name in failed]


def test_lab01_graded_end_to_end(tmp_path):
    """Through the sandbox: the solution earns every automatic point (question 11 is written, for
    people to grade); a float-returning size function loses half of question 7 and nothing else."""
    solution = nbformat.read(ROOT / "solutions" / "01_convolutions.ipynb", as_version=4)
    nbformat.write(solution, tmp_path / "solution.ipynb")
    mistaken = nbformat.read(ROOT / "solutions" / "01_convolutions.ipynb", as_version=4)
    cell = next(c for c in mistaken.cells if c.metadata.get("cnnlab", {}).get("question") == "q7")
    cell.source = cell.source.replace("return int(size)", "return size")
    nbformat.write(mistaken, tmp_path / "float_size.ipynb")
    out = tmp_path / "out"
    completed = subprocess.run(
        grade_command("01", [tmp_path / "solution.ipynb", tmp_path / "float_size.ipynb"], out),
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    solution_result = json.loads(next(out.glob("solution-*.json")).read_text())  # results are named stem-hash
    mistaken_result = json.loads(next(out.glob("float_size-*.json")).read_text())
    assert solution_result["status"] == "graded" and solution_result["score"] == solution_result["max_score"] == 27
    points = {q["question"]: q["points"] for q in mistaken_result["questions"]}
    full = {"q1": 2, "q2": 1, "q3": 3, "q4": 1, "q5": 3, "q6": 2, "q7": 2, "q8": 1, "q9": 2, "q10": 2, "q12": 3}
    assert points == {**full, "q7": 1, "q13": 2, "q14": 3}


@pytest.mark.parametrize("lab", ["03", "04", "05"])
def test_solution_graded_end_to_end_earns_every_point(lab, tmp_path):
    """Through the sandbox: lab 03 (two VGG16s and the slide's unpadded one) fits the default
    memory limit with its training and VGG A to E left out, and labs 03 and 05 earn their
    automatic points with their teaching cells left out (grading: skip)."""
    nbformat.write(nbformat.read(lab_notebook(lab, "solutions"), as_version=4), tmp_path / "s.ipynb")
    out = tmp_path / "out"
    completed = subprocess.run(
        grade_command(lab, [tmp_path / "s.ipynb"], out),
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    (result_file,) = out.glob("s-*.json")  # results are named after the submission and its content hash
    result = json.loads(result_file.read_text())
    assert result["status"] == "graded" and result["score"] == result["max_score"] == lab_points(lab), result


def test_lab05_knows_how_many_layers_its_probe_base_has():
    import cnnlab

    hidden = load_hidden_tests(str(hidden_tests_path("05")))
    assert len(cnnlab.models.efficientnet_lite0(**hidden.LITE0_PROBE).layers) == hidden.LITE0_PROBE_LAYERS


def test_lab04_replays_keras_reduce_lr_on_plateau_and_question_3():
    """Lab 04's trusted side replays ReduceLROnPlateau's rule in plain Python and question 3's
    three optimizers in NumPy: both must agree with Keras and with the notebook's stored run."""
    from cnnlab.checks.lab04 import _keras_plateau

    hidden = load_hidden_tests(str(hidden_tests_path("04")))
    for losses, rate, options in hidden.PLATEAU_PROBES:
        keras_options = {"factor": 0.1, "patience": 2, "min_delta": 1e-4, **options}  # the question's defaults
        assert hidden._plateau(losses, rate, **options) == pytest.approx(_keras_plateau(losses, rate, **keras_options))
    assert len({tuple(hidden._plateau(*probe[:2], **probe[2])) for probe in hidden.PLATEAU_PROBES}) > 1
    notebook = nbformat.read(lab_notebook("04", "solutions"), as_version=4)
    printed = next(c for c in notebook.cells if c.source.startswith("# NBVAL_CHECK_OUTPUT\ndef valley("))
    stored = "".join(o.get("text", "") for o in printed.outputs).splitlines()[1:]
    distances = hidden._valley_distances()
    for letter, line in zip("abc", stored, strict=True):
        assert float(line.split()[-1]) == pytest.approx(distances[letter], abs=1e-4)


@pytest.mark.parametrize("name", ["sgd", "momentum", "adam"])
def test_lab04_optimizer_references_are_keras_optimizers(name):
    """Lab 04's trusted side writes Keras's three update rules in NumPy (no TensorFlow there):
    each must follow keras.optimizers step by step on the probe."""
    import keras

    hidden = load_hidden_tests(str(hidden_tests_path("04")))
    optimizer = {
        "sgd": keras.optimizers.SGD(hidden.SGD_RATE),
        "momentum": keras.optimizers.SGD(hidden.MOMENTUM_RATE, momentum=hidden.MOMENTUM),
        "adam": keras.optimizers.Adam(**hidden.ADAM, epsilon=hidden.ADAM_EPSILON),
    }[name]
    w0, gradients = hidden._gradient_probes()
    weight, path = keras.Variable(w0), []
    for gradient in gradients:
        optimizer.apply_gradients([(keras.ops.convert_to_tensor(gradient), weight)])
        path.append(np.asarray(weight.numpy(), dtype="float64"))
    assert np.allclose(hidden.reference_path(name), np.stack(path), atol=1e-6)
    assert not np.allclose(hidden.reference_path(name), hidden.reference_path("sgd" if name != "sgd" else "adam"))
