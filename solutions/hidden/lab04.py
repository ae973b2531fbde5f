"""Hidden tests for lab 04, training and regularization. Instructor material: never shipped to students.

The export cells run the student's losses, optimizer steps, model builder, range test and
plateau schedule on probes the public checks do not use, and save plain data. The tests below
run in the grader's trusted process: the losses are recomputed with NumPy, the optimizer steps
with Keras's own optimizers, the models are read as the grader's NumPy networks, the range
test's rates and stopping rule are worked out from their definition, and ReduceLROnPlateau's
rule is replayed in plain Python. The closest optimizer of question 3 is found by running the
three optimizers here; the other predictions are compared with what the smoke run shows (the
notebook asserts each). Hints never contain expected values.
"""

from inspect import getsource
from itertools import pairwise

import numpy as np

from cnnlab.grading.hidden import Budget, HiddenTest

STEPS = 4
SGD_RATE = 0.05
MOMENTUM_RATE, MOMENTUM = 0.05, 0.8
ADAM = dict(learning_rate=0.01, beta_1=0.8, beta_2=0.99)
ADAM_EPSILON = 1e-7  # keras.optimizers.Adam's default
CONFIGS = {"plain": {}, "dropout": {"dropout": 0.25}, "penalty": {"l2": 1e-3}, "batchnorm": {"batchnorm": True}}
# Question 3's experiment, as the notebook runs it: 30 steps on f(w) = (w0^2 + 25 w1^2) / 2 from (-4, 1).
VALLEY = dict(start=(-4.0, 1.0), steps=30, sgd_rate=0.07, momentum_rate=0.07, momentum=0.5, adam_rate=0.3)
# What the smoke run shows (each asserted in the notebook): the sigmoid network's first-layer
# gradient over 1,000 times smaller than its last, tanh's and ReLU's within a factor of 10;
# training accuracy below validation accuracy for dropout and augmentation only; the augmented
# ConvNet losing more than 2 points but less than half the baseline's loss at a 4-pixel shift.
PREDICTIONS = {"q4": ("saturation_guess", "caa"), "q7": ("below_guess", "be"), "q11": ("shift_guess", "b")}
LABEL_PRESERVING = set("bde")  # rotations up to 10 degrees, shifts up to 3 pixels, zooms up to 10%
# The CIFAR-10 subset's largest eigenvalue, pixels in [0, 1] (the notebook prints it, NBVAL-checked),
# and question 12's answer: alpha's standard deviation x lambda_1 x 255 grey levels.
CIFAR_SUBSET_LAMBDA_1 = 0.1724
GREY_LEVELS = 0.1 * CIFAR_SUBSET_LAMBDA_1 * 255
GREY_LEVELS_TOLERANCE = 1.0
# Range-test probes: (start, stop, steps, batch size, seed); the first blows up before `stop`, the second does not.
RANGE_PROBES = {"wide": (2e-3, 500.0, 30, 24, 3), "narrow": (1e-4, 1e-2, 12, 16, 5)}
# Plateau probes: (validation losses, learning rate, options).
PLATEAU_PROBES = [
    ([0.9, 0.7, 0.71, 0.72, 0.69, 0.70, 0.68, 0.685, 0.681, 0.679, 0.5], 0.1, {}),
    ([1.0, 0.99995, 0.99993, 0.5, 0.6, 0.7, 0.4], 0.3, {"factor": 0.5}),
    ([3.0, 2.0, 2.1, 2.2, 2.3, 1.0, 1.1, 1.2, 1.3, 1.4], 0.3, {"patience": 3}),
    ([1.0, 1.1, 0.95, 0.94, 0.97, 0.90, 0.89, 0.85], 1.0, {"factor": 0.2, "patience": 1, "min_delta": 0.02}),
]
# What a student must never find in the public checks or in the lab (tests/test_no_answers.py).
ANSWERS = [
    'closest_guess = "b"',
    'saturation_guess = "caa"',
    'label_preserving = "bde"',
    'below_guess = "be"',
    'shift_guess = "b"',
    "0.1 * 0.1724 * 255",
    "loss > 4 * min(losses)",
    "loss < best - min_delta",
]


# Probes: seeded inputs. Each export cell defines and calls the very function below (its source
# travels with the cell), and the tests call it here: one source for both sides.
def _loss_probes():
    import numpy

    rng = numpy.random.default_rng(4101)
    labels = numpy.eye(4, dtype="float32")[rng.integers(0, 4, 7)]
    probabilities = rng.dirichlet(numpy.ones(4), 7).astype("float32")
    probabilities[0] = (1 - labels[0]) / 3  # the true class gets probability 0: clipping matters
    targets = rng.normal(size=(6, 3)).astype("float32")
    predictions = (3 * rng.normal(size=(6, 3))).astype("float32")
    return labels, probabilities, targets, predictions


def _gradient_probes(steps=STEPS):
    import numpy

    rng = numpy.random.default_rng(4201)
    return rng.normal(size=5).astype("float32"), [rng.normal(size=5).astype("float32") for _ in range(steps)]


def _range_data():
    """Three blobs in 5 dimensions, 240 examples."""
    import numpy

    rng = numpy.random.default_rng(4901)
    labels = rng.integers(0, 3, 240)
    x = (rng.normal(size=(240, 5)) + 3.0 * numpy.eye(3, 5)[labels]).astype("float32")
    return x, labels


def _range_probe():
    """A softmax regression with zero weights (its first loss is log 3 exactly) on three blobs,
    whose train_on_batch records each batch it trains on and the learning rate it trains at."""
    import keras
    import numpy

    x, labels = _range_data()
    inputs = keras.Input((5,))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax", kernel_initializer="zeros")(inputs))
    model.compile(loss="sparse_categorical_crossentropy", optimizer=keras.optimizers.SGD())
    calls = []
    train = model.train_on_batch

    def recorded(batch_x, batch_y, *args, **kwargs):
        rate = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
        calls.append((numpy.array(batch_x, dtype="float64"), numpy.array(batch_y, dtype="float64").reshape(-1), rate))
        return train(batch_x, batch_y, *args, **kwargs)

    model.train_on_batch = recorded
    return model, x, labels, calls


def _export_guess(question, variable):
    return f"export_value('{question}_guess', {variable})"


EXPORTS = [
    (
        "q1",
        "q1",
        getsource(_loss_probes) + "_labels, _probabilities, _targets, _predictions = _loss_probes()\n"
        "export_value('q1_losses', {\n"
        "    'cross_entropy': float(cross_entropy(_labels, _probabilities)),\n"
        "    'l1': float(l1_loss(_targets, _predictions)),\n"
        "    'l2': float(l2_loss(_targets, _predictions)),\n"
        "    'smooth_l1': float(smooth_l1_loss(_targets, _predictions)),\n"
        "    'huber_half': float(huber_loss(_targets, _predictions, delta=0.5)),\n"
        "    'huber_3': float(huber_loss(_targets, _predictions, delta=3.0)),\n"
        "})",
    ),
    (
        "q2",
        "q2",
        getsource(_gradient_probes).replace("steps=STEPS", f"steps={STEPS}")
        + "import numpy as _np\n_w0, _gradients = _gradient_probes()\n_w = _w0.copy()\n"
        "_path = []\n"
        "for _g in _gradients:\n"
        f"    _w = sgd_step(_w, _g, {SGD_RATE})\n"
        "    _path.append(_np.asarray(_w, dtype='float64'))\n"
        "export_array('q2_sgd', _np.stack(_path))\n"
        "_w, _velocity, _path = _w0.copy(), _np.zeros(5, dtype='float32'), []\n"
        "for _g in _gradients:\n"
        f"    _w, _velocity = momentum_step(_w, _g, _velocity, {MOMENTUM_RATE}, momentum={MOMENTUM})\n"
        "    _path.append(_np.asarray(_w, dtype='float64'))\n"
        "export_array('q2_momentum', _np.stack(_path))\n"
        "_w, _m, _v, _path = _w0.copy(), _np.zeros(5, dtype='float32'), _np.zeros(5, dtype='float32'), []\n"
        "for _t, _g in enumerate(_gradients, start=1):\n"
        f"    _w, _m, _v = adam_step(_w, _g, _m, _v, _t, **{ADAM!r})\n"
        "    _path.append(_np.asarray(_w, dtype='float64'))\n"
        "export_array('q2_adam', _np.stack(_path))",
    ),
    ("q3", "q3", _export_guess("q3", "closest_guess")),
    ("q4", "q4", _export_guess("q4", "saturation_guess")),
    (
        "q5",
        "q5",
        f"for _name, _arguments in {CONFIGS!r}.items():\n"
        "    export_model(f'q5_{_name}', build_regularized_convnet(**_arguments))",
    ),
    ("q6", "q6", "export_value('q6_letters', label_preserving)"),
    ("q7", "q7", _export_guess("q7", "below_guess")),
    (
        "q9",
        "q9",
        getsource(_range_data) + getsource(_range_probe) + "import numpy as _np\n"
        f"for _name, (_start, _stop, _steps, _batch, _seed) in {RANGE_PROBES!r}.items():\n"
        "    _model, _x, _y, _calls = _range_probe()\n"
        "    _rates, _losses = learning_rate_range_test(_model, _x, _y, _start, _stop, _steps, batch_size=_batch, seed=_seed)\n"
        "    export_array(f'q9_{_name}_rates', _np.asarray(_rates, dtype='float64'))\n"
        "    export_array(f'q9_{_name}_losses', _np.asarray(_losses, dtype='float64'))\n"
        "    export_value(f'q9_{_name}_rate_after', float(keras.ops.convert_to_numpy(_model.optimizer.learning_rate)))\n"
        "    if _calls and len({_c[0].shape for _c in _calls}) == 1 and len({_c[1].shape for _c in _calls}) == 1:\n"
        "        export_array(f'q9_{_name}_batch_x', _np.stack([_c[0] for _c in _calls]))\n"
        "        export_array(f'q9_{_name}_batch_y', _np.stack([_c[1] for _c in _calls]))\n"
        "        export_array(f'q9_{_name}_batch_rates', _np.asarray([_c[2] for _c in _calls], dtype='float64'))\n"
        "del _model, _x, _y, _calls",
    ),
    (
        "q10",
        "q10",
        f"export_value('q10_schedules', [[float(_r) for _r in plateau_schedule(_losses, _rate, **_options)] "
        f"for _losses, _rate, _options in {PLATEAU_PROBES!r}])",
    ),
    ("q11", "q11", _export_guess("q11", "shift_guess")),
    ("q12", "q12", "export_value('q12_guess', float(grey_levels_guess))"),
]


# -- 1. losses -----------------------------------------------------------------------------------


def _huber(targets, predictions, delta):
    error = np.abs(predictions.astype("float64") - targets)
    return float(np.mean(np.where(error <= delta, 0.5 * error**2, delta * (error - 0.5 * delta))))


def _losses(exports):
    losses = exports.value("q1_losses")
    return losses if isinstance(losses, dict) else {}


def _close(a, b) -> bool:
    return isinstance(a, (int, float)) and abs(a - b) <= 1e-5 * max(1.0, abs(b))


def cross_entropy_loss(exports):
    labels, probabilities, _, _ = _loss_probes()
    expected = float(np.mean(-np.sum(labels * np.log(np.clip(probabilities.astype("float64"), 1e-7, 1.0)), axis=-1)))
    if not _close(_losses(exports).get("cross_entropy"), expected):
        return "cross_entropy is wrong when a true class has probability 0: clip before the logarithm, then average over the batch"
    return None


def l1_l2_losses(exports):
    _, _, targets, predictions = _loss_probes()
    error = predictions.astype("float64") - targets
    losses = _losses(exports)
    if not (
        _close(losses.get("l1"), float(np.mean(np.abs(error)))) and _close(losses.get("l2"), float(np.mean(error**2)))
    ):
        return "l1_loss or l2_loss is wrong: the mean over every value of the batch"
    return None


def huber_losses(exports):
    _, _, targets, predictions = _loss_probes()
    losses = _losses(exports)
    for key, delta in (("smooth_l1", 1.0), ("huber_half", 0.5), ("huber_3", 3.0)):
        if not _close(losses.get(key), _huber(targets, predictions, delta)):
            return "smooth L1 or Huber is wrong for some threshold: quadratic up to delta, then delta times (|d| - delta/2)"
    return None


# -- 2. optimizers -------------------------------------------------------------------------------


def reference_path(name: str) -> np.ndarray:
    """Four steps of keras.optimizers.SGD, SGD(momentum=...) or Adam on the probe, written out in
    NumPy as Keras writes them (keras/src/optimizers/sgd.py and adam.py), so that the trusted
    side needs no TensorFlow. tests/grading/test_hidden_tests.py checks them against Keras."""
    w0, gradients = _gradient_probes()
    weight = np.asarray(w0, dtype="float64")
    velocity, m, v = np.zeros_like(weight), np.zeros_like(weight), np.zeros_like(weight)
    path = []
    for t, gradient in enumerate(gradients, start=1):
        if name == "sgd":
            weight = weight - SGD_RATE * gradient
        elif name == "momentum":
            velocity = MOMENTUM * velocity - MOMENTUM_RATE * gradient
            weight = weight + velocity
        else:
            beta_1, beta_2 = ADAM["beta_1"], ADAM["beta_2"]
            m = m + (gradient - m) * (1 - beta_1)
            v = v + (gradient**2 - v) * (1 - beta_2)
            alpha = ADAM["learning_rate"] * np.sqrt(1 - beta_2**t) / (1 - beta_1**t)
            weight = weight - alpha * m / (np.sqrt(v) + ADAM_EPSILON)
        path.append(weight)
    return np.stack(path)


def _steps_match(exports, name) -> bool:
    steps = exports.array(f"q2_{name}")
    expected = reference_path(name)
    return steps.shape == expected.shape and np.allclose(steps, expected, atol=1e-5)


def sgd(exports):
    if not _steps_match(exports, "sgd"):
        return "four SGD steps differ from keras.optimizers.SGD"
    return None


def momentum(exports):
    if not _steps_match(exports, "momentum"):
        return "four momentum steps differ from keras.optimizers.SGD(momentum=...): check the velocity you return"
    return None


def adam(exports):
    if not _steps_match(exports, "adam"):
        return "four Adam steps with other betas differ from keras.optimizers.Adam: check the bias corrections"
    return None


def _valley_distances() -> dict[str, float]:
    """Question 3's three runs, each optimizer written out here in NumPy (Keras's forms)."""
    gradient = lambda w: np.array([w[0], 25.0 * w[1]])  # noqa: E731
    start = np.array(VALLEY["start"])
    sgd_w, momentum_w, velocity = start.copy(), start.copy(), np.zeros(2)
    adam_w, m, v = start.copy(), np.zeros(2), np.zeros(2)
    for t in range(1, VALLEY["steps"] + 1):
        sgd_w = sgd_w - VALLEY["sgd_rate"] * gradient(sgd_w)
        velocity = VALLEY["momentum"] * velocity - VALLEY["momentum_rate"] * gradient(momentum_w)
        momentum_w = momentum_w + velocity
        g = gradient(adam_w)
        m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g**2
        alpha = VALLEY["adam_rate"] * np.sqrt(1 - 0.999**t) / (1 - 0.9**t)
        adam_w = adam_w - alpha * m / (np.sqrt(v) + 1e-7)
    return {"a": np.linalg.norm(sgd_w), "b": np.linalg.norm(momentum_w), "c": np.linalg.norm(adam_w)}


def _letter(exports, question) -> str | None:
    guess = exports.value(f"{question}_guess")
    return guess.strip().lower() if isinstance(guess, str) else None


def closest_optimizer(exports):
    distances = _valley_distances()
    guess = _letter(exports, "q3")
    if guess not in distances:
        return "`closest_guess` must hold one of the letters the question offers"
    if guess != min(distances, key=distances.get):
        return "this prediction is not what the three runs did: compare it with the distances printed below it"
    return None


def _prediction_test(question):
    variable, key = PREDICTIONS[question]

    def test(exports):
        guess = exports.value(f"{question}_guess")
        if not isinstance(guess, str):
            return f"`{variable}` must hold the letters the question offers"
        letters = guess.replace(",", "").replace(" ", "").lower()
        if question == "q7":  # a set of variants: any order
            letters = "".join(sorted(letters))
        if letters != key:
            if question == "q4":
                return "this prediction is not what the three networks did: compare it with the ratios printed below it"
            return "this prediction is not what the run showed: compare it with the run below it in the notebook"
        return None

    return test


# -- 3. regularization ---------------------------------------------------------------------------


def _lecture_convnet_parameters() -> int:
    conv1 = (5 * 5 * 1 + 1) * 32
    conv2 = (3 * 3 * 32 + 1) * 64
    flat = ((28 - 4) // 2 - 2) // 2
    return conv1 + conv2 + (flat * flat * 64 + 1) * 256 + (256 + 1) * 10


# The lecture ConvNet's layers, ReLUs left out (in a layer of their own, or inside Conv2D or Dense).
_CONV, _POOL, _FLAT, _DENSE, _DROP, _NORM = (
    "Conv2D",
    "MaxPooling2D",
    "Flatten",
    "Dense",
    "Dropout",
    "BatchNormalization",
)
SKELETONS = {
    "plain": [_CONV, _POOL, _CONV, _POOL, _FLAT, _DENSE, _DENSE],
    "dropout": [_CONV, _POOL, _DROP, _CONV, _POOL, _DROP, _FLAT, _DENSE, _DROP, _DENSE],
    "penalty": [_CONV, _POOL, _CONV, _POOL, _FLAT, _DENSE, _DENSE],
    "batchnorm": [_CONV, _NORM, _POOL, _CONV, _NORM, _POOL, _FLAT, _DENSE, _DENSE],
}


def _skeleton_problem(network, variant: str) -> str | None:
    """The variant's layers in order, the lecture's sizes, and one input of 28x28x1."""
    kinds = [layer.kind for layer in network.layers if layer.kind not in ("InputLayer", "ReLU", "Activation")]
    if kinds != SKELETONS[variant] or tuple(network.input_shape) != (28, 28, 1):
        return "the layers of the lecture ConvNet (Conv 32 5x5, pool, Conv 64 3x3, pool, Dense 256, Dense 10) with this variant's additions, in that order"
    convolutions, dense = network.layers_of("Conv2D"), network.layers_of("Dense")
    sizes = [(c.config.get("filters"), tuple(c.config.get("kernel_size") or ())) for c in convolutions]
    if sizes != [(32, (5, 5)), (64, (3, 3))] or [d.config.get("units") for d in dense] != [256, 10]:
        return "the convolutions and dense layers have the lecture ConvNet's sizes"
    return _activation_problem(network)


WEIGHTED = ("Conv2D", "Dense")
ACTIVATIONS_HINT = (
    "a ReLU after each convolution and after the hidden dense layer, a softmax on the output, and no other activation"
)


def _is_softmax(layer) -> bool:
    return layer.kind == "Activation" and layer.config.get("activation") == "softmax"


def _activation_problem(network) -> str | None:
    """The lecture ConvNet's non-linearities: ReLU after each convolution and the hidden dense
    layer (in the layer, or as a ReLU layer anywhere before the next convolution or dense
    layer: ReLU commutes with max pooling, Flatten and Dropout), softmax on the output (in the
    layer, or as one Activation layer after it), nothing else. (Found missing by a
    hostile-student review: a network with no ReLU at all passed every question 5 test.)"""
    layers = [layer for layer in network.layers if layer.kind != "InputLayer"]
    weighted = [i for i, layer in enumerate(layers) if layer.kind in WEIGHTED]
    softmax_after = [layer for layer in layers[weighted[-1] + 1 :] if _is_softmax(layer)]
    if any(
        layer.kind in ("ReLU", "Activation") and not (_is_relu(layer) or layer in softmax_after) for layer in layers
    ):
        return ACTIVATIONS_HINT
    output = layers[weighted[-1]].config.get("activation")
    if not ((output == "softmax" and not softmax_after) or (output in (None, "linear") and len(softmax_after) == 1)):
        return ACTIVATIONS_HINT
    for i, following in pairwise(weighted):
        own = layers[i].config.get("activation")
        relu_after = any(_is_relu(layer) for layer in layers[i + 1 : following])
        if not (own == "relu" or (own in (None, "linear") and relu_after)):
            return ACTIVATIONS_HINT
    return None


def plain_convnet(exports):
    network = exports.network("q5_plain")
    if problem := _skeleton_problem(network, "plain"):
        return problem
    if network.layers_of("Dropout") or network.layers_of("BatchNormalization"):
        return "with the default arguments there must be no Dropout or BatchNormalization"
    if network.parameters != _lecture_convnet_parameters():
        return "with the default arguments the network must be the lecture ConvNet"
    if any(layer.config.get("kernel_regularizer") for layer in network.layers):
        return "with the default arguments no kernel may carry a regularizer"
    return None


def dropout_layers(exports):
    network = exports.network("q5_dropout")
    if problem := _skeleton_problem(network, "dropout"):
        return problem
    rates = [layer.config.get("rate") for layer in network.layers_of("Dropout")]
    if len(rates) != 3 or any(
        not isinstance(r, float) or not abs(r - CONFIGS["dropout"]["dropout"]) <= 1e-9 for r in rates
    ):
        return "dropout: one Dropout layer after each pooling layer and one after the hidden dense layer, at the given rate"
    return None


def _l2_strength(layer):
    regularizer = layer.config.get("kernel_regularizer")
    if not isinstance(regularizer, dict) or regularizer.get("class_name") != "L2":
        return None
    return (regularizer.get("config") or {}).get("l2")


def l2_penalty(exports):
    network = exports.network("q5_penalty")
    if problem := _skeleton_problem(network, "penalty"):
        return problem
    kernels = network.layers_of("Conv2D") + network.layers_of("Dense")
    strength = CONFIGS["penalty"]["l2"]
    strengths = [_l2_strength(layer) for layer in kernels]
    if len(kernels) != 4 or any(not isinstance(s, float) or not abs(s - strength) <= 1e-9 for s in strengths):
        return "l2: an L2 regularizer of the given strength on the kernel of every Conv2D and Dense layer"
    return None


def _is_relu(layer) -> bool:
    if layer.kind == "Activation":
        return layer.config.get("activation") == "relu"
    plain = all(layer.config.get(key) in (None, 0, 0.0) for key in ("negative_slope", "max_value", "threshold"))
    return layer.kind == "ReLU" and plain


def batchnorm(exports):
    network = exports.network("q5_batchnorm")
    if problem := _skeleton_problem(network, "batchnorm"):
        return problem
    layers = [layer for layer in network.layers if layer.kind != "InputLayer"]
    normalised = [i for i, layer in enumerate(layers) if layer.kind == "BatchNormalization"]
    if len(normalised) != 2:
        return "batchnorm: one BatchNormalization layer per convolution"
    for i in normalised:
        convolution = layers[i - 1]
        if convolution.kind != "Conv2D" or convolution.config.get("activation") not in (None, "linear"):
            return "batchnorm: normalize the convolution's output before its ReLU (the Conv2D itself has no activation)"
        following = [layer for layer in layers[i + 1 :] if layer.kind not in ("MaxPooling2D", "Dropout")]
        if not following or not _is_relu(following[0]):  # ReLU commutes with max pooling and dropout
            return "batchnorm: the ReLU comes right after the BatchNormalization"
        momentum = layers[i].config.get("momentum")
        if not isinstance(momentum, float) or not abs(momentum - 0.9) <= 1e-9:
            return "batchnorm: use the running averages' momentum the question asks for (Keras's convention)"
    return None


def _letters(exports, name) -> set | None:
    value = exports.value(name)
    if type(value) is not str:
        return None
    return set(value.replace(",", "").replace(" ", "").lower())


def label_preserving_transforms(exports):
    """All or nothing: exactly the transforms that keep every digit's label."""
    chosen = _letters(exports, "q6_letters")
    if chosen is None or not chosen or not chosen <= set("abcdef"):
        return "`label_preserving` must be a string of some of the letters a to f"
    if chosen & {"a", "f"}:
        return "look again at what mirroring, or turning upside down, does to a 2, a 3 or a 7"
    if "c" in chosen:
        return "look again at a 6 turned half a turn"
    if chosen != LABEL_PRESERVING:
        return "some of the small transforms you left out keep every digit what it is"
    return None


# -- 4. learning rate ----------------------------------------------------------------------------


def _range(exports, name):
    rates, losses = exports.array(f"q9_{name}_rates"), exports.array(f"q9_{name}_losses")
    if rates.ndim != 1 or losses.ndim != 1 or rates.dtype.kind != "f" or losses.dtype.kind != "f":
        return np.zeros(0), np.zeros(1)  # fails every q9 test with its own hint
    return rates.astype("float64"), losses.astype("float64")


# A range test records one rate and one loss per step: 30 and 12 steps at most, a few hundred
# bytes; the batches trained on, 30 x 24 x 5 values at most, 29 kB.
BUDGETS = {"q9": Budget(array_bytes=32 << 10)}


def range_rates(exports):
    for name, (start, stop, steps, _, _) in RANGE_PROBES.items():
        rates, losses = _range(exports, name)
        if rates.ndim != 1 or rates.shape != losses.shape or not 1 <= len(rates) <= steps:
            return "return one rate and one loss per step taken, as two arrays of the same length"
        geometric = start * (stop / start) ** (np.arange(len(rates)) / (steps - 1))
        if not np.allclose(rates, geometric, rtol=1e-5):
            return "the rates should grow geometrically from `start`, reaching `stop` at the last of `steps` steps"
        after = exports.value(f"q9_{name}_rate_after")
        if not isinstance(after, float) or not np.isclose(after, rates[-1], rtol=1e-5):
            return "the optimizer should train each batch at that step's rate (set model.optimizer.learning_rate)"
    return None


def range_losses(exports):
    for name in RANGE_PROBES:
        rates, losses = _range(exports, name)
        if len(losses) == 0 or not np.isclose(losses[0], np.log(3), atol=1e-4):
            return "the first loss should be the untrained model's loss on its batch, which train_on_batch returns"
        last = losses[-1]
        if not np.isfinite(losses[:-1]).all() or (losses[:-1] < 0).any() or (np.isfinite(last) and last < 0):
            return "each loss is a cross-entropy: never negative, and finite until the step where it blows up"
    _, wide = _range(exports, "wide")
    if not np.nanmin(wide) < np.log(3) - 0.1:
        return "the model should learn from its batches while the rate is moderate: train on a batch at every step"
    return None


def _replayed_losses(batches_x, batches_y, rates) -> np.ndarray:
    """The probe's softmax regression from zero weights, trained by plain SGD on these batches at
    these rates: each batch's mean cross-entropy before its update (what train_on_batch returns)."""
    kernel, bias, losses = np.zeros((5, 3)), np.zeros(3), []
    for x, y, rate in zip(batches_x, batches_y.astype(int), rates, strict=True):
        logits = x @ kernel + bias
        logits -= logits.max(axis=1, keepdims=True)
        probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        losses.append(float(np.mean(-np.log(np.maximum(probabilities[np.arange(len(y)), y], 1e-300)))))
        error = (probabilities - np.eye(3)[y]) / len(y)
        kernel, bias = kernel - rate * x.T @ error, bias - rate * error.sum(axis=0)
    return np.array(losses)


def range_training(exports):
    """The losses come from training the probe with train_on_batch: batches of the probe's own
    examples, of the given size, at the step's rate, and each loss what that batch gave (replayed
    here in NumPy). (Found missing by a hostile-student review: made-up losses passed q9.)"""
    data_x, data_y = _range_data()
    examples = {tuple(row): label for row, label in zip(data_x.astype("float64"), data_y, strict=True)}
    for name, (_, _, _, batch, _) in RANGE_PROBES.items():
        rates, losses = _range(exports, name)
        try:  # recorded only when model.train_on_batch was called
            batches_x, batches_y = exports.array(f"q9_{name}_batch_x"), exports.array(f"q9_{name}_batch_y")
            batch_rates = exports.array(f"q9_{name}_batch_rates")
        except Exception:
            return "train on one batch of `batch_size` examples per step, with model.train_on_batch"
        if batches_x.ndim != 3 or batches_x.shape[1:] != (batch, 5) or batches_y.shape != batches_x.shape[:2]:
            return "train on one batch of `batch_size` examples per step, with model.train_on_batch"
        if (
            len(batches_x) != len(losses)
            or batch_rates.shape != rates.shape
            or not np.allclose(batch_rates, rates, rtol=1e-5)
        ):
            return "train on one batch of `batch_size` examples per step, with model.train_on_batch"
        if any(
            examples.get(tuple(row)) != label
            for x, y in zip(batches_x, batches_y, strict=True)
            for row, label in zip(x, y, strict=True)
        ):
            return "the batches must be examples of x with their labels from y"
        if len(batches_x) > 1 and all(np.array_equal(batches_x[0], other) for other in batches_x[1:]):
            return "draw a new batch at random for every step (np.random.default_rng(seed))"
        replayed = _replayed_losses(batches_x, batches_y, batch_rates)
        # float32 training drifts from this float64 replay once the rate is large: the last
        # step (where the loss blows up) within 5%, the others within 0.1%
        compared = np.isfinite(replayed) & (replayed < 50)
        tolerance = np.where(np.arange(len(replayed)) == len(replayed) - 1, 5e-2, 1e-3)
        if not (np.abs(losses - replayed) <= tolerance * np.abs(replayed) + 1e-4)[compared].all():
            return "record the loss that train_on_batch returns for each batch"
    return None


def range_stops(exports):
    for name, (_, _, steps, _, _) in RANGE_PROBES.items():
        _, losses = _range(exports, name)
        if len(losses) == 0:
            return "no losses were recorded"
        lowest = np.fmin.accumulate(np.where(np.isfinite(losses), losses, np.inf))
        blown_up = ~np.isfinite(losses) | (losses > 4 * lowest)
        if blown_up[:-1].any():
            return "the test went on after a loss above 4 times the lowest so far: stop right after it"
        if not blown_up[-1] and len(losses) < steps:
            return "the test stopped before `steps` though the loss had not blown up"
    _, wide = _range(exports, "wide")
    if len(wide) == RANGE_PROBES["wide"][2] and not (~np.isfinite(wide[-1:]) | (wide[-1:] > 4 * np.nanmin(wide))).any():
        return "the loss blows up on this probe before `stop`: the test should stop there"
    return None


def _plateau(losses, learning_rate, factor=0.1, patience=2, min_delta=1e-4):
    """ReduceLROnPlateau's rule (mode min, cooldown 0, min_lr 0), replayed in plain Python."""
    rates, best, wait = [], None, 0
    for loss in losses:
        rates.append(learning_rate)
        if best is None or loss + min_delta < best:
            best, wait = loss, 0
            continue
        wait += 1
        if wait >= patience:
            learning_rate, wait = learning_rate * factor, 0
    return rates


def plateau_rates(exports):
    schedules = exports.value("q10_schedules")
    if not isinstance(schedules, list) or len(schedules) != len(PLATEAU_PROBES):
        return "plateau_schedule did not return a list of rates for every probe"
    for got, (losses, rate, options) in zip(schedules, PLATEAU_PROBES, strict=True):
        expected = _plateau(losses, rate, **options)
        if not isinstance(got, list) or len(got) != len(expected):
            return "return one learning rate per epoch, as many as there are losses"
        if not np.allclose(got, expected, rtol=1e-6):
            return (
                "the rates differ from ReduceLROnPlateau's on curves with other factors, patiences and thresholds: "
                "compare with the best loss so far, by more than min_delta, and count again after a reduction"
            )
    return None


# -- 6. lighting ---------------------------------------------------------------------------------


def grey_levels(exports):
    guess = exports.value("q12_guess")
    if not isinstance(guess, float) or not np.isfinite(guess):
        return "`grey_levels_guess` must be a number of grey levels"
    if abs(guess - GREY_LEVELS) > GREY_LEVELS_TOLERANCE:
        return "this prediction is not what the layer did: compare it with the measurement printed below it"
    return None


TESTS = [
    HiddenTest("q1", "cross-entropy with a zero probability", 1.0, cross_entropy_loss),
    HiddenTest("q1", "L1 and L2 losses", 1.0, l1_l2_losses),
    HiddenTest("q1", "smooth L1 and Huber at other thresholds", 1.0, huber_losses),
    HiddenTest("q2", "SGD steps", 1.0, sgd),
    HiddenTest("q2", "momentum steps", 1.0, momentum),
    HiddenTest("q2", "Adam steps with other betas", 1.0, adam),
    HiddenTest("q3", "closest optimizer prediction", 1.0, closest_optimizer),
    HiddenTest("q4", "saturation prediction", 1.0, _prediction_test("q4")),
    HiddenTest("q5", "defaults: the lecture ConvNet", 1.0, plain_convnet),
    HiddenTest("q5", "dropout placement and rate", 1.0, dropout_layers),
    HiddenTest("q5", "L2 penalty on every kernel", 1.0, l2_penalty),
    HiddenTest("q5", "BatchNormalization before each ReLU", 1.0, batchnorm),
    HiddenTest("q6", "the transforms that keep every label", 1.0, label_preserving_transforms),
    HiddenTest("q7", "training below validation prediction", 1.0, _prediction_test("q7")),
    HiddenTest("q9", "range test: geometric rates, set on the optimizer", 1.0, range_rates),
    HiddenTest("q9", "range test: losses of the batches trained on", 1.0, range_losses),
    HiddenTest("q9", "range test: stops when the loss blows up", 1.0, range_stops),
    HiddenTest("q9", "range test: the batches trained on give those losses", 1.0, range_training),
    HiddenTest("q10", "plateau schedule on other curves", 1.0, plateau_rates),
    HiddenTest("q11", "shift prediction", 1.0, _prediction_test("q11")),
    HiddenTest("q12", "grey levels prediction", 1.0, grey_levels),
]
