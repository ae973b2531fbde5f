"""Hidden tests for lab 04, training and regularization. Instructor material: never shipped to students.

The export cells run the student's losses, optimizer steps and model builder on probes the
public checks do not use, and save plain data. The tests below run in the grader's trusted
process: the losses are recomputed with NumPy, the optimizer steps with Keras's own
optimizers, and the models are rebuilt through the allow-list. Hints never contain expected values.
"""

from inspect import getsource

import numpy as np

from cnnlab.grading.hidden import HiddenTest

STEPS = 4
SGD_RATE = 0.05
MOMENTUM_RATE, MOMENTUM = 0.05, 0.8
ADAM = dict(learning_rate=0.01, beta_1=0.8, beta_2=0.99)
CONFIGS = {"plain": {}, "dropout": {"dropout": 0.25}, "decay": {"weight_decay": 1e-3}, "batchnorm": {"batchnorm": True}}


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
    (
        "q3",
        "q3",
        f"for _name, _arguments in {CONFIGS!r}.items():\n"
        "    export_model(f'q3_{_name}', build_regularized_convnet(**_arguments))",
    ),
]


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


def _keras_path(optimizer):
    import keras

    w0, gradients = _gradient_probes()
    weight = keras.Variable(w0)
    path = []
    for gradient in gradients:
        optimizer.apply_gradients([(keras.ops.convert_to_tensor(gradient), weight)])
        path.append(np.asarray(weight.numpy(), dtype="float64"))
    return np.stack(path)


def _steps_match(exports, name, optimizer) -> bool:
    steps = exports.array(f"q2_{name}")
    expected = _keras_path(optimizer)
    return steps.shape == expected.shape and np.allclose(steps, expected, atol=1e-5)


def sgd(exports):
    import keras

    if not _steps_match(exports, "sgd", keras.optimizers.SGD(SGD_RATE)):
        return "four SGD steps differ from keras.optimizers.SGD"
    return None


def momentum(exports):
    import keras

    if not _steps_match(exports, "momentum", keras.optimizers.SGD(MOMENTUM_RATE, momentum=MOMENTUM)):
        return "four momentum steps differ from keras.optimizers.SGD(momentum=...): check the velocity you return"
    return None


def adam(exports):
    import keras

    if not _steps_match(exports, "adam", keras.optimizers.Adam(**ADAM)):
        return "four Adam steps with other betas differ from keras.optimizers.Adam: check the bias corrections"
    return None


def _lecture_convnet_parameters() -> int:
    conv1 = (5 * 5 * 1 + 1) * 32
    conv2 = (3 * 3 * 32 + 1) * 64
    flat = ((28 - 4) // 2 - 2) // 2
    return conv1 + conv2 + (flat * flat * 64 + 1) * 256 + (256 + 1) * 10


def _count(model, kind):
    import keras

    return sum(isinstance(layer, getattr(keras.layers, kind)) for layer in model.layers)


def plain_convnet(exports):
    model = exports.model("q3_plain")
    if _count(model, "Dropout") or _count(model, "BatchNormalization"):
        return "with the default arguments there must be no Dropout or BatchNormalization"
    if model.count_params() != _lecture_convnet_parameters():
        return "with the default arguments the network must be the lecture ConvNet"
    return None


def dropout_layers(exports):
    import keras

    model = exports.model("q3_dropout")
    rates = [layer.rate for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    if len(rates) != 3 or any(abs(rate - CONFIGS["dropout"]["dropout"]) > 1e-9 for rate in rates):
        return "dropout: one Dropout layer after each pooling layer and one after the hidden dense layer, at the given rate"
    return None


def weight_decay(exports):
    import keras

    model = exports.model("q3_decay")
    kernels = [layer for layer in model.layers if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))]
    strength = CONFIGS["decay"]["weight_decay"]
    regularizers = [getattr(layer.kernel_regularizer, "l2", None) for layer in kernels]
    if len(kernels) != 4 or any(r is None or abs(r - strength) > 1e-9 for r in regularizers):
        return "weight_decay: an L2 regularizer of the given strength on the kernel of every Conv2D and Dense layer"
    return None


def batchnorm(exports):
    import keras

    model = exports.model("q3_batchnorm")
    layers = model.layers
    normalised = [i for i, layer in enumerate(layers) if isinstance(layer, keras.layers.BatchNormalization)]
    if len(normalised) != 2:
        return "batchnorm: one BatchNormalization layer per convolution"
    for i in normalised:
        convolution = layers[i - 1]
        if not isinstance(convolution, keras.layers.Conv2D) or convolution.activation.__name__ != "linear":
            return "batchnorm: normalize the convolution's output before its ReLU (the Conv2D itself has no activation)"
    return None


TESTS = [
    HiddenTest("q1", "cross-entropy with a zero probability", 1.0, cross_entropy_loss),
    HiddenTest("q1", "L1 and L2 losses", 1.0, l1_l2_losses),
    HiddenTest("q1", "smooth L1 and Huber at other thresholds", 1.0, huber_losses),
    HiddenTest("q2", "SGD steps", 1.0, sgd),
    HiddenTest("q2", "momentum steps", 1.0, momentum),
    HiddenTest("q2", "Adam steps with other betas", 1.0, adam),
    HiddenTest("q3", "defaults: the lecture ConvNet", 1.0, plain_convnet),
    HiddenTest("q3", "dropout placement and rate", 1.0, dropout_layers),
    HiddenTest("q3", "L2 weight decay on every kernel", 1.0, weight_decay),
    HiddenTest("q3", "BatchNormalization before each ReLU", 1.0, batchnorm),
]
