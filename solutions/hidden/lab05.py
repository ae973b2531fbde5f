"""Hidden tests for lab 05, transfer learning with EfficientNet-Lite0. Instructor material:
never shipped to students.

The export cells run the student's functions on probes of their own, never on the notebook's
EfficientNet: a small base and head, a head for another feature-map shape and number of
classes, and an untrained EfficientNet-Lite0 at 64x64 unfrozen from two other layers with two
other head learning rates. The trusted side reads the models as the grader's own NumPy
networks (no TensorFlow there) and works out what they should do itself (the pooled softmax
of the head's own weights, the probe base and head run one after the other, the call of the
base recorded with training=False in the exported architecture, the trainable flags from the
layer names). The two predictions are compared with what the smoke run shows. Hints never contain
expected values.
"""

from inspect import getsource

import numpy as np

from cnnlab.grading.hidden import HiddenTest, letter_prediction_test

HEAD_SHAPE, HEAD_CLASSES = (3, 3, 7), 4  # not the notebook's (7, 7, 1280) and 2 classes
TUNING = (("block6c_expand_conv", 0.004), ("top_conv", 0.05))  # (first layer to tune, head learning rate)
LITE0_PROBE = dict(weights=None, include_top=False, input_shape=(64, 64, 3))
LITE0_PROBE_LAYERS = 141  # layers of that base (tests/grading/test_hidden_tests.py checks it against Keras)
# What a student must never find in the public checks or in the lab (tests/test_no_answers.py).
ANSWERS = [
    'zero_shot_guess = "d"',
    'comparison_guess = "c"',
    "head_learning_rate / 10",
    "not isinstance(layer, keras.layers.BatchNormalization)",
]
# What the smoke run shows (asserted in the notebook): zero-shot family accuracy over 90%, and
# feature extraction from 10 photos per class more than 5 points above from-scratch on all.
PREDICTIONS = {"q1": ("zero_shot_guess", "d"), "q5": ("comparison_guess", "c")}


def _probe_base():
    """A small base with BatchNormalization and Dropout. The q2 export cell defines and calls
    this very function (its source travels with the cell)."""
    import keras

    inputs = keras.Input((9, 9, 2))
    x = keras.layers.Conv2D(5, 3, activation="relu", name="probe_conv")(inputs)
    x = keras.layers.BatchNormalization(name="probe_bn")(x)
    x = keras.layers.Dropout(0.6, name="probe_dropout")(x)
    return keras.Model(inputs, keras.layers.Conv2D(7, 3, strides=2, name="probe_out")(x), name="probe_base")


def _probe_images():
    import numpy

    return numpy.random.default_rng(5105).uniform(size=(3, 9, 9, 2)).astype("float32")


def _probe_features():
    import numpy

    return numpy.random.default_rng(5106).normal(size=(3, *HEAD_SHAPE)).astype("float32")


EXPORTS = [
    *[
        (question, question, f"export_value('{question}_guess', {variable})")
        for question, (variable, _) in PREDICTIONS.items()
    ],
    (
        "q2",
        "q2",
        getsource(_probe_base)
        + getsource(_probe_images)
        + f"export_model('q2_head', new_head({HEAD_SHAPE!r}, {HEAD_CLASSES}))\n"
        "_base = _probe_base()\n"
        "_head = keras.Sequential([keras.Input(_base.output_shape[1:]), keras.layers.GlobalAveragePooling2D(), "
        "keras.layers.Dense(3, activation='softmax')])\n"
        "export_model('q2_probe_base', _base)\n"
        "export_model('q2_probe_head', _head)\n"
        "_model = transfer_model(_base, _head)\n"
        "export_model('q2_model', _model)\n"
        "export_array('q2_model_outputs', _model(_probe_images()))\n"
        "del _base, _head, _model",
    ),
    (
        "q3",
        "q3",
        f"for _first, _rate in {TUNING!r}:\n"
        f"    _base = cnnlab.models.efficientnet_lite0(**{LITE0_PROBE!r})\n"
        "    _base.trainable = False\n"
        "    _optimizer = start_fine_tuning(_base, _first, _rate)\n"
        "    export_value(f'q3_{_first}', {'model': bool(_base.trainable), "
        "'layers': [bool(_l.trainable) for _l in _base.layers], 'optimizer': type(_optimizer).__name__, "
        "'rate': float(keras.ops.convert_to_numpy(_optimizer.learning_rate)), "
        "'names': [_l.name for _l in _base.layers], "
        "'batchnorm': [isinstance(_l, keras.layers.BatchNormalization) for _l in _base.layers]})\n"
        "    del _base, _optimizer",
    ),
]


def _prediction(question):
    variable, key = PREDICTIONS[question]
    return letter_prediction_test(
        question,
        variable,
        key,
        "this prediction is not what the network did: compare it with the run below it in the notebook",
    )


def pooled_softmax_head(exports):
    head = exports.network("q2_head")
    if tuple(head.input_shape) != HEAD_SHAPE or tuple(head.output_shape) != (HEAD_CLASSES,):
        return "new_head must map a feature map of the given shape to one probability per class"
    dense, dropout = head.layers_of("Dense"), head.layers_of("Dropout")
    if len(dense) != 1 or not dropout or any(abs(layer.config["rate"] - 0.2) > 1e-9 for layer in dropout):
        return "the head is pooling, Dropout(0.2) and one Dense layer"
    features = _probe_features()
    kernel, bias = dense[0].weights
    if kernel.shape != (HEAD_SHAPE[-1], HEAD_CLASSES):
        return "the head must average the feature map over all positions before its Dense layer"
    logits = features.mean(axis=(1, 2)) @ kernel + bias
    wanted = np.exp(logits - logits.max(axis=1, keepdims=True))
    wanted /= wanted.sum(axis=1, keepdims=True)
    produced = head.predict(features)
    if produced.shape != wanted.shape or not np.allclose(produced, wanted, atol=1e-4):
        return "the head's output is not a softmax of its Dense layer on the spatial average of the feature map"
    return None


def _nested_model(config: dict, name: str):
    """The entry of the model config's layer ``name`` (the probe base, used as a layer)."""
    layers = config.get("config", {}).get("layers", []) if isinstance(config, dict) else []
    return [entry for entry in layers if isinstance(entry, dict) and entry.get("name") == name]


def frozen_base(exports):
    config = exports.value("q2_model.model")  # the exported architecture, as plain JSON
    base = _nested_model(config, "probe_base")
    others = [
        e for e in config.get("config", {}).get("layers", []) if e not in base and e.get("class_name") != "InputLayer"
    ]
    if len(base) != 1 or base[0].get("config", {}).get("trainable") is not False:
        return "in the transfer model only the head may train: the base must be frozen"
    if not others or any(e.get("config", {}).get("trainable") is False for e in others):
        return "in the transfer model the head must stay trainable"
    return None


def base_in_inference_mode(exports):
    base_entries = _nested_model(exports.value("q2_model.model"), "probe_base")
    call_kwargs = [call.get("kwargs", {}) for entry in base_entries for call in entry.get("inbound_nodes", [])]
    if not call_kwargs or any(kwargs.get("training") is not False for kwargs in call_kwargs):
        return "the transfer model must call the base with training=False"
    base, probe_head = exports.network("q2_probe_base"), exports.network("q2_probe_head")
    expected = probe_head.predict(base.predict(_probe_images()))
    produced = exports.array("q2_model_outputs")
    if produced.shape != expected.shape or not np.allclose(produced, expected, atol=1e-4):
        return "the transfer model's output must be the head applied to the base's output"
    return None


def _tuning_flags(exports, first):
    """The exported flags, and the ones wanted: from the named layer to the end, BatchNormalization aside."""
    mine = exports.value(f"q3_{first}")
    if not isinstance(mine, dict) or not all(
        isinstance(mine.get(key), list) for key in ("layers", "names", "batchnorm")
    ):
        return None, [], []
    names, is_batchnorm = mine["names"], mine["batchnorm"]
    if first not in names or not (len(names) == len(is_batchnorm) == len(mine["layers"]) == LITE0_PROBE_LAYERS):
        return None, [], []
    start = names.index(first)
    return mine, [i >= start and not bn for i, bn in enumerate(is_batchnorm)], is_batchnorm


def tuned_from_the_named_layer(exports):
    for first, _ in TUNING:
        mine, wanted, is_batchnorm = _tuning_flags(exports, first)
        if mine is None:
            return "start_fine_tuning must leave the base with all its layers"
        if mine.get("model") is not True:
            return "the base itself must be trainable again, or none of its layers train"
        if any(a != b for a, b, bn in zip(mine["layers"], wanted, is_batchnorm, strict=True) if not bn):
            return "exactly the layers from the named one to the end (BatchNormalization aside) must be trainable"
    return None


def batchnorm_frozen(exports):
    for first, _ in TUNING:
        mine, _, is_batchnorm = _tuning_flags(exports, first)
        if mine is None or any(flag for flag, bn in zip(mine["layers"], is_batchnorm, strict=True) if bn):
            return "every BatchNormalization layer must stay frozen, the ones after the named layer too"
    return None


def smaller_learning_rate(exports):
    for first, rate in TUNING:
        mine = exports.value(f"q3_{first}")
        if not isinstance(mine, dict) or mine.get("optimizer") != "Adam":
            return "start_fine_tuning must return a keras.optimizers.Adam"
        if not isinstance(mine.get("rate"), float) or not np.isclose(mine["rate"], rate / 10, rtol=1e-5):
            return "the fine-tuning learning rate must be a tenth of the head's, whatever the head's was"
    return None


TESTS = [
    HiddenTest("q1", "zero-shot prediction", 1.0, _prediction("q1")),
    HiddenTest("q2", "new head: pooled softmax of a Dense layer, with dropout", 1.0, pooled_softmax_head),
    HiddenTest("q2", "transfer model: only the head trains", 1.0, frozen_base),
    HiddenTest("q2", "transfer model: the base called in inference mode, then the head", 1.0, base_in_inference_mode),
    HiddenTest("q3", "fine-tuning from the named layer on, for two layers", 1.0, tuned_from_the_named_layer),
    HiddenTest("q3", "BatchNormalization stays frozen", 1.0, batchnorm_frozen),
    HiddenTest("q3", "Adam at a tenth of the head's learning rate", 1.0, smaller_learning_rate),
    HiddenTest("q5", "comparison prediction", 1.0, _prediction("q5")),
]
