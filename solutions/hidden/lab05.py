"""Hidden tests for lab 05, transfer learning and fine-tuning. Instructor material: never shipped to students.

The export cells run the student's functions on the notebook's own pretrained digit network
and on a fresh MobileNetV2 (random weights: only the layer structure matters), and save plain
data. The tests below run in the grader's trusted process, which rebuilds the pretrained
network through the allow-list and works out the expected features and trainable flags
itself. Hints never contain expected values.
"""

from inspect import getsource

import numpy as np

from cnnlab.grading.hidden import HiddenTest

NEW_CLASSES = 3  # not the notebook's 5
MOBILENET = dict(input_shape=(96, 96, 3), alpha=0.35, include_top=False, weights=None)
UNFREEZE = (7, 30)


def _probe():
    """Seeded digit-shaped inputs. The q1 export cell defines and calls this very function (its
    source travels with the cell), and the tests call it here: one source for both sides."""
    import numpy

    return numpy.random.default_rng(5101).random((3, 28, 28, 1)).astype("float32")


EXPORTS = [
    (
        "q1",
        "q1",
        getsource(_probe) + "import numpy as _np\n_probe = _probe()\n"
        "_extractor = feature_extractor(pretrained)\n"
        "export_model('q1_pretrained', pretrained)\n"
        "export_value('q1_extractor', {'output': list(_extractor.output_shape[1:]), 'trainable_weights': len(_extractor.trainable_weights)})\n"
        "export_array('q1_features', _np.asarray(_extractor(_probe, training=False)))\n"
        f"export_model('q1_new', with_new_head(_extractor, {NEW_CLASSES}))",
    ),
    (
        "q2",
        "q2",
        f"for _n in {UNFREEZE!r}:\n"
        f"    _base = keras.applications.MobileNetV2(**{MOBILENET!r})\n"
        "    _base.trainable = False\n"
        "    unfreeze_top(_base, _n)\n"
        "    export_value(f'q2_flags_{_n}', {'model': bool(_base.trainable), 'layers': [bool(_l.trainable) for _l in _base.layers], "
        "'trainable_weights': len(_base.trainable_weights)})\n"
        "    del _base",
    ),
]


def _hidden_features(pretrained):
    """The output of the pretrained network's 256-unit dense layer, the one before its classifier."""
    import keras

    dense = [layer for layer in pretrained.layers if isinstance(layer, keras.layers.Dense)]
    features = keras.Model(pretrained.inputs, dense[-2].output)
    return np.asarray(features(_probe(), training=False))


def extractor(exports):
    pretrained = exports.model("q1_pretrained")
    summary = exports.value("q1_extractor")
    if not isinstance(summary, dict) or summary.get("output") != [256]:
        return "the extractor must end at the 256-unit dense layer, before the classifier"
    if summary.get("trainable_weights") != 0:
        return "the extractor must be frozen: no trainable weights"
    features = exports.array("q1_features")
    expected = _hidden_features(pretrained)
    if features.shape != expected.shape or not np.allclose(features, expected, atol=1e-4):
        return "the extractor's features differ from the pretrained network's: reuse its layers and weights"
    return None


def new_head(exports):
    import keras

    model = exports.model("q1_new")
    if tuple(model.input_shape[1:]) != (28, 28, 1) or tuple(model.output_shape[1:]) != (NEW_CLASSES,):
        return "the new model takes 28x28x1 digits and has one output per new class"
    last = model.layers[-1]  # the new classifier
    if not isinstance(last, keras.layers.Dense) or last.activation.__name__ != "softmax":
        return "the new head is a softmax Dense layer"
    trainable = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    if trainable != 256 * NEW_CLASSES + NEW_CLASSES:
        return "only the new head may be trainable: the extractor stays frozen inside the new model"
    return None


def _expected_flags(n):
    import keras

    base = keras.applications.MobileNetV2(**MOBILENET)
    top = set(range(len(base.layers) - n, len(base.layers)))
    flags = [i in top and not isinstance(layer, keras.layers.BatchNormalization) for i, layer in enumerate(base.layers)]
    weights = sum(len(layer.trainable_weights) for layer, flag in zip(base.layers, flags, strict=True) if flag)
    return flags, weights, [isinstance(layer, keras.layers.BatchNormalization) for layer in base.layers]


def _flags(exports, n):
    flags = exports.value(f"q2_flags_{n}")
    return flags if isinstance(flags, dict) and isinstance(flags.get("layers"), list) else None


def top_layers_trainable(exports):
    for n in UNFREEZE:
        flags, weights, is_batchnorm = _expected_flags(n)
        mine = _flags(exports, n)
        if mine is None or mine.get("model") is not True:
            return "the base model itself must be trainable again, or none of its layers train"
        if len(mine["layers"]) != len(flags):
            return "unfreeze_top must not add or remove layers"
        wrong = [
            i for i, (a, b, bn) in enumerate(zip(mine["layers"], flags, is_batchnorm, strict=True)) if a != b and not bn
        ]
        if wrong:
            return f"for n = {n}: exactly the last n layers (BatchNormalization aside) must be trainable"
    return None


def batchnorm_frozen(exports):
    for n in UNFREEZE:
        flags, weights, is_batchnorm = _expected_flags(n)
        mine = _flags(exports, n)
        if mine is None or len(mine["layers"]) != len(flags):
            return "unfreeze_top did not leave the base with its layers"
        if any(a for a, bn in zip(mine["layers"], is_batchnorm, strict=True) if bn):
            return "every BatchNormalization layer must stay frozen, in the top n layers too"
        if mine.get("trainable_weights") != weights:
            return "the number of trainable weight tensors differs from the top n layers' without BatchNormalization"
    return None


TESTS = [
    HiddenTest("q1", "feature extractor: frozen, the pretrained 256 features", 1.0, extractor),
    HiddenTest("q1", "new head on the extractor, for another number of classes", 1.0, new_head),
    HiddenTest("q2", "top layers trainable, for two depths", 1.0, top_layers_trainable),
    HiddenTest("q2", "BatchNormalization stays frozen", 1.0, batchnorm_frozen),
]
