"""Every public check passes the solution and fails a plausible wrong answer with a hint,
without printing the answer."""

from __future__ import annotations

from pathlib import Path

import keras
import nbformat
import numpy as np
import pytest

import cnnlab
from cnnlab.checks import lab01, lab02, lab03, lab04, lab05

ROOT = Path(__file__).resolve().parents[1]


def solution_answers(stem: str, **given) -> dict:
    """Run the answer cells of a solution notebook (only those) and return what they define."""
    namespace = {"np": np, "keras": keras, "cnnlab": cnnlab, **given}
    notebook = nbformat.read(ROOT / "solutions" / f"{stem}.ipynb", 4)
    for cell in notebook.cells:
        if cell.cell_type == "code" and "question" in cell.metadata.get("cnnlab", {}):  # not the written answers
            exec(cell.source, namespace)
    return namespace


def verdict(capsys, check, *args) -> tuple[bool, str]:
    result = check(*args)
    return result, capsys.readouterr().out


@pytest.fixture(scope="module")
def lab01_answers():
    return solution_answers("01_convolutions")


def test_lab01(lab01_answers, capsys):
    a = lab01_answers
    for question, answers in (
        ("q1", ["fixed_conv_layer"]),
        ("q2", ["prediction_q2"]),
        ("q3", ["cross_correlate", "convolve"]),
        ("q4", ["prediction_q4"]),
        ("q5", ["learn_kernel"]),
        ("q6", ["multichannel_response"]),
        ("q7", ["conv_output_size"]),
        ("q8", ["prediction_q8"]),
        ("q9", ["receptive_field"]),
        ("q10", ["compose_kernels"]),
        ("q12", ["max_pool", "average_pool_as_conv"]),
        ("q13", ["max_pool_backward"]),
        ("q14", ["conv1_output_shape", "conv1_parameters", "pool1_output_shape"]),
    ):
        ok, out = verdict(capsys, getattr(lab01, question), *(a[name] for name in answers))
        assert ok, out

    def valid_layer(kernel):
        layer = keras.layers.Conv2D(1, 3, use_bias=False)
        layer.build((None, None, None, 1))
        layer.set_weights([np.asarray(kernel, "float32")[:, :, None, None]])
        return layer

    ok, out = verdict(capsys, lab01.q1, valid_layer)
    assert not ok and "'same' padding" in out
    ok, out = verdict(capsys, lab01.q2, None)
    assert not ok and "assign your prediction" in out
    ok, out = verdict(capsys, lab01.q2, "three")
    assert not ok and "must be a number" in out
    ok, out = verdict(capsys, lab01.q3, a["cross_correlate"], a["cross_correlate"])
    assert not ok and "flip" in out
    # right for Sobel-like kernels only: the check's kernel has no symmetry
    ok, out = verdict(
        capsys, lab01.q3, a["cross_correlate"], lambda image, kernel: -a["cross_correlate"](image, kernel)
    )
    assert not ok and "not a true convolution" in out
    ok, out = verdict(capsys, lab01.q4, "d")
    assert not ok and "one of the letters" in out

    def learn_with_bias(images, targets, kernel_size):
        model = keras.Sequential([keras.Input((*np.shape(images)[1:], 1)), keras.layers.Conv2D(1, kernel_size)])
        model.compile(optimizer="adam", loss="mse")
        return model

    ok, out = verdict(capsys, lab01.q5, learn_with_bias)
    assert not ok and "no bias" in out

    def learn_nothing(images, targets, kernel_size):
        return keras.Sequential([keras.Input((*np.shape(images)[1:], 1)), keras.layers.Conv2D(1, 3, use_bias=False)])

    ok, out = verdict(capsys, lab01.q5, learn_nothing)
    assert not ok and "train for more steps" in out
    ok, out = verdict(capsys, lab01.q6, lambda image, kernel: a["multichannel_response"](image, kernel) / 3)
    assert not ok and "sum the channels" in out
    ok, out = verdict(capsys, lab01.q7, lambda W, F, S=1, P=0: (W - F + 2 * P) // S + 1)
    assert not ok and "raise ValueError" in out
    ok, out = verdict(capsys, lab01.q8, True)
    assert not ok and "must be a number" in out
    ok, out = verdict(capsys, lab01.q9, lambda layers: 1 + sum(kernel - 1 for kernel, _ in layers))
    assert not ok and "stride" in out  # strides ignored
    ok, out = verdict(capsys, lab01.q9, lambda layers: float(a["receptive_field"](layers)))
    assert not ok and "return an int" in out
    ok, out = verdict(capsys, lab01.q10, lambda first, second: a["compose_kernels"](first, second[::-1, ::-1]))
    assert not ok and "two correlations" in out
    ok, out = verdict(capsys, lab01.q12, lambda x, size=2: x[::size, ::size], a["average_pool_as_conv"])
    assert not ok and "MaxPooling2D" in out

    def spread(x, upstream, size=2):  # each upstream value shared by its whole window, as average pooling does
        share = np.kron(upstream, np.full((size, size), 1 / size**2))
        return np.pad(share, ((0, x.shape[0] - share.shape[0]), (0, x.shape[1] - share.shape[1])))

    ok, out = verdict(capsys, lab01.q13, spread)
    assert not ok and "more inputs get a gradient" in out
    ok, out = verdict(capsys, lab01.q14, (55, 55, 96), 11 * 11 * 3 * 96, (27, 27, 96))
    assert not ok and "bias" in out and "34,944" not in out and "34944" not in out
    ok, out = verdict(capsys, lab01.q14, (54, 54, 96), 34_944, (27, 27, 96))
    assert not ok and "55" not in out and "CONV1's width" in out


def test_lab01_checks_hold_no_answer():
    """No answer of the hidden tests' list, and no parameter formula, in lab 01's checks."""
    from cnnlab.grading.batch import hidden_tests_path
    from cnnlab.grading.trusted import load_hidden_tests

    source = Path(lab01.__file__).read_text()
    answers = load_hidden_tests(str(hidden_tests_path("01"))).ANSWERS
    assert len(answers) >= 10
    assert [answer for answer in answers if answer in source] == []
    assert "+ 1) *" not in source and "output_size(227" not in source and "output_size(55" not in source


def test_lab02(capsys):
    a = solution_answers("02_mlp_vs_convnet")
    for question, answer in (
        ("q1", "build_mlp"),
        ("q2", "build_convnet"),
        ("q3", "dense_parameters"),
        ("q4", "shift_right"),
        ("q5", "prediction_q5"),
        ("q7", "prediction_q7"),
    ):
        assert verdict(capsys, getattr(lab02, question), a[answer])[0]

    def wide_mlp():
        inputs = keras.Input((28, 28, 1))
        hidden = keras.layers.Dense(128, activation="relu")(keras.layers.Flatten()(inputs))
        return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(hidden))

    ok, out = verdict(capsys, lab02.q1, wide_mlp)
    assert not ok and "hidden layer's width" in out and "203,530" not in out

    def padded_convnet():
        inputs = keras.Input((28, 28, 1))
        x = keras.layers.MaxPooling2D(2)(keras.layers.Conv2D(32, 5, padding="same", activation="relu")(inputs))
        x = keras.layers.MaxPooling2D(2)(keras.layers.Conv2D(64, 3, padding="same", activation="relu")(x))
        x = keras.layers.Dense(256, activation="relu")(keras.layers.Flatten()(x))
        return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))

    ok, out = verdict(capsys, lab02.q2, padded_convnet)
    assert not ok and "padding" in out
    ok, out = verdict(capsys, lab02.q3, lambda h, w, c, units: h * w * c * units)
    assert not ok and "bias" in out
    ok, out = verdict(capsys, lab02.q3, lambda h, w, c, units: (h * w + c) * units)
    assert not ok and "wrong count" in out and "bias" not in out
    ok, out = verdict(capsys, lab02.q3, lambda h, w, c, units: float((h * w * c + 1) * units))
    assert not ok and "whole number" in out
    ok, out = verdict(capsys, lab02.q4, lambda images, pixels: np.roll(images, pixels, axis=2))
    assert not ok and "not wrapped around" in out
    ok, out = verdict(
        capsys, lab02.q4, lambda images, pixels: np.swapaxes(a["shift_right"](np.swapaxes(images, 1, 2), pixels), 1, 2)
    )
    assert not ok and "axis 2" in out  # shifted down instead
    ok, out = verdict(capsys, lab02.q4, lambda images, pixels: a["shift_right"](images, pixels + 1 if pixels else 0))
    assert not ok and "to the right" in out  # one pixel too far

    def shift_in_place(images, pixels):
        images[:, :, pixels:] = images[:, :, : images.shape[2] - pixels].copy()
        images[:, :, :pixels] = 0
        return images

    ok, out = verdict(capsys, lab02.q4, shift_in_place)
    assert not ok and "in place" in out
    # The predictions: only their form is checked, and nothing tells whether they are right.
    for good in ({"MLP": 50, "ConvNet": 90}, {"MLP": 12.5, "ConvNet": 99}):
        ok, out = verdict(capsys, lab02.q5, good)
        assert ok and "recorded" in out
    for bad, hint in (
        (None, "assign your prediction"),
        ((50, 90), "a dict with the keys"),
        ({"MLP": "fifty", "ConvNet": 90}, "a number"),
        ({"MLP": 0.5, "ConvNet": 0.9}, "percentages"),
        ({"MLP": 150, "ConvNet": 90}, "between 0 and 100"),
    ):
        ok, out = verdict(capsys, lab02.q5, bad)
        assert not ok and hint in out
    for letter in "abcd":
        ok, out = verdict(capsys, lab02.q7, letter)
        assert ok and "recorded" in out
    ok, out = verdict(capsys, lab02.q7, "e")
    assert not ok and "one of the letters" in out


def test_lab02_checks_hold_no_answer():
    """The counts the questions build, q3's formula and q4's slicing appear nowhere in the checks."""
    source = Path(lab02.__file__).read_text()
    for answer in ("203530", "203_530", "203,530", "431754", "431_754", "431,754", "409856", "409_856", "+ 1)"):
        assert answer not in source, answer
    assert "* units" not in source and "pixels:]" not in source and "- pixels]" not in source


def test_lab03(capsys):
    reference = keras.applications.VGG16(weights=None)
    a = solution_answers("03_vgg_and_classics", reference=reference)
    assert verdict(capsys, lab03.q1, a["build_vgg16"])[0]
    assert verdict(capsys, lab03.q2, a["padding_guess"])[0]
    assert verdict(capsys, lab03.q3, a["build_lecture_vgg16"], a["lecture_block5_shape"], a["lecture_parameters"])[0]
    total_activations, megabytes_per_image = a["activations_per_image"](reference)
    assert verdict(capsys, lab03.q4, total_activations, megabytes_per_image)[0]
    assert verdict(capsys, lab03.q5, a["adam_bytes_per_parameter"])[0]
    assert verdict(capsys, lab03.q7, a["residual_block"])[0]
    assert verdict(capsys, lab03.q8, a["reduction_guess"])[0]
    assert verdict(capsys, lab03.q9, a["inception_cost"])[0]
    assert verdict(capsys, lab03.q10, a["conv_costs"])[0]
    assert verdict(capsys, lab03.q11, a["build_small_vgg"])[0]
    assert verdict(capsys, lab03.q12, a["top_k_accuracy"])[0]
    answers = ("15,237,608", "15237608", "37,694,248", "37694248", "(1, 1, 512)", "1x1x512", "163,328", "387,072")

    def unnamed_vgg16(input_shape=(224, 224, 3), num_classes=1000):
        model = a["build_vgg16"](input_shape, num_classes)
        return keras.models.clone_model(
            model, clone_function=lambda layer: layer.__class__.from_config({**layer.get_config(), "name": None})
        )

    ok, out = verdict(capsys, lab03.q1, unnamed_vgg16)
    assert not ok and "load by name" in out
    for guess in (None, "e", 3):  # predictions: only the form is checked
        assert not verdict(capsys, lab03.q2, guess)[0] and not verdict(capsys, lab03.q8, guess)[0]
    assert verdict(capsys, lab03.q2, "a")[0] and verdict(capsys, lab03.q5, 12)[0]  # a wrong prediction passes
    ok, out = verdict(capsys, lab03.q5, 12.5)
    assert not ok and "whole number" in out

    def padded_slide(input_shape=(224, 224, 3), num_classes=1000):
        return cnnlab.models.vgg("D", input_shape=input_shape, num_classes=num_classes)

    padded = padded_slide()
    shape, parameters = tuple(padded.get_layer("block5_pool").output.shape[1:]), padded.count_params()
    ok, out = verdict(capsys, lab03.q3, padded_slide, shape, parameters)
    assert not ok and "padding" in out
    slide = a["build_lecture_vgg16"]
    ok, out = verdict(capsys, lab03.q3, slide, (7, 7, 512), a["lecture_parameters"])
    assert not ok and "last pooling" in out and not any(answer in out for answer in answers)
    ok, out = verdict(capsys, lab03.q4, 24_000_000, 93.0)
    assert not ok and "slide" in out
    ok, out = verdict(capsys, lab03.q4, total_activations + 25_088, (total_activations + 25_088) * 4 / 1e6)
    assert not ok and "Flatten" in out and not any(answer in out for answer in answers)
    ok, out = verdict(capsys, lab03.q4, total_activations, total_activations * 4 / 2**20)
    assert not ok and "10^6" in out

    def no_projection(x, filters, stride=1):
        y = keras.layers.Conv2D(filters, 3, strides=stride, padding="same")(x)
        y = keras.layers.BatchNormalization()(y)
        y = keras.layers.Conv2D(filters, 3, padding="same")(keras.layers.ReLU()(y))
        y = keras.layers.BatchNormalization()(y)
        return keras.layers.ReLU()(keras.layers.Add()([y, x]))

    ok, out = verdict(capsys, lab03.q7, no_projection)
    assert not ok

    def naive_with_projection(height, width, channels, f1, f3r, f3, f5r, f5, pool_proj, reductions=True):
        weights, macs = a["inception_cost"](height, width, channels, f1, f3r, f3, f5r, f5, pool_proj, reductions)
        extra = 0 if reductions else channels * pool_proj
        return weights + extra, macs + height * width * extra

    ok, out = verdict(capsys, lab03.q9, naive_with_projection)
    assert not ok and "without them" in out

    def depthwise_only(height, width, c_in, c_out, kernel):
        standard, _ = a["conv_costs"](height, width, c_in, c_out, kernel)
        return standard, (kernel * kernel * c_in, height * width * kernel * kernel * c_in)

    ok, out = verdict(capsys, lab03.q10, depthwise_only)
    assert not ok and "depthwise-separable weights" in out
    ok, out = verdict(capsys, lab03.q11, lambda: cnnlab.models.vgg("A", input_shape=(32, 32, 3), num_classes=10))
    assert not ok and "under 3 million" in out
    ok, out = verdict(capsys, lab03.q12, lambda p, y, k=5: float(np.mean(np.argsort(p, axis=1)[:, :k] == y[:, None])))
    assert not ok and "k=1" in out
    source = Path(lab03.__file__).read_text()
    assert not any(answer in source or answer.replace(",", "") in source for answer in answers)


def test_lab04(capsys):
    a = solution_answers("04_training_and_regularization")
    assert verdict(
        capsys, lab04.q1, a["cross_entropy"], a["l1_loss"], a["l2_loss"], a["smooth_l1_loss"], a["huber_loss"]
    )[0]
    assert verdict(capsys, lab04.q2, a["sgd_step"], a["momentum_step"], a["adam_step"])[0]
    assert verdict(capsys, lab04.q5, a["build_regularized_convnet"])[0]
    assert verdict(capsys, lab04.q9, a["learning_rate_range_test"])[0]
    assert verdict(capsys, lab04.q10, a["plateau_schedule"])[0]

    def summed_cross_entropy(y, p):
        return float(np.sum(-np.sum(y * np.log(np.clip(p, 1e-7, 1)), axis=-1)))

    ok, out = verdict(
        capsys, lab04.q1, summed_cross_entropy, a["l1_loss"], a["l2_loss"], a["smooth_l1_loss"], a["huber_loss"]
    )
    assert not ok and "average over the batch" in out

    def adam_without_correction(w, g, m, v, t, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
        m = beta_1 * m + (1 - beta_1) * g
        v = beta_2 * v + (1 - beta_2) * g**2
        return w - learning_rate * m / (np.sqrt(v) + epsilon), m, v

    ok, out = verdict(capsys, lab04.q2, a["sgd_step"], a["momentum_step"], adam_without_correction)
    assert not ok and "bias corrections" in out
    ok, out = verdict(
        capsys,
        lab04.q5,
        lambda dropout=0.0, l2=0.0, batchnorm=False: a["build_regularized_convnet"](0.5, l2, batchnorm),
    )
    assert not ok and "no Dropout" in out

    def range_test_without_stopping(model, x, y, start, stop, steps, batch_size=64, seed=0):
        rng, rates, losses = np.random.default_rng(seed), np.geomspace(start, stop, steps), []
        for rate in rates:
            model.optimizer.learning_rate = rate
            batch = rng.choice(len(x), batch_size, replace=False)
            losses.append(float(model.train_on_batch(x[batch], y[batch], return_dict=True)["loss"]))
        return rates, np.array(losses)

    ok, out = verdict(capsys, lab04.q9, range_test_without_stopping)
    assert not ok and "4 x the lowest" in out

    def plateau_against_the_previous_epoch(losses, learning_rate, factor=0.1, patience=2, min_delta=1e-4):
        rates, previous, waited = [], None, 0
        for loss in losses:
            rates.append(learning_rate)
            waited = 0 if previous is None or loss < previous - min_delta else waited + 1
            if waited >= patience:
                learning_rate, waited = learning_rate * factor, 0
            previous = loss
        return rates

    ok, out = verdict(capsys, lab04.q10, plateau_against_the_previous_epoch)
    assert not ok and "best" in out
    guesses = {
        lab04.q3: a["closest_guess"],
        lab04.q4: a["saturation_guess"],
        lab04.q6: a["label_preserving"],
        lab04.q7: a["below_guess"],
        lab04.q11: a["shift_guess"],
        lab04.q12: a["grey_levels_guess"],
    }
    for check, guess in guesses.items():  # the form only: a right answer and a wrong one look alike
        ok, out = verdict(capsys, check, guess)
        assert ok and "recorded" in out and "right" not in out and "wrong" not in out
    wrong = {lab04.q3: "c", lab04.q4: "aaa", lab04.q6: "abcdef", lab04.q7: "", lab04.q11: "a", lab04.q12: 11.0}
    for check, guess in wrong.items():
        ok, out = verdict(capsys, check, guess)
        assert ok and "recorded" in out
    for check, guess, hint in (
        (lab04.q3, "d", "one of the letters"),
        (lab04.q4, "ab", "3 letters"),
        (lab04.q6, "bb", "twice"),
        (lab04.q7, None, "assign your answer"),
        (lab04.q12, "4", "a number"),
        (lab04.q12, -1.0, "positive"),
    ):
        ok, out = verdict(capsys, check, guess)
        assert not ok and hint in out, out


def test_lab05(capsys):
    a = solution_answers("05_transfer_learning")
    for check, guess in ((lab05.q1, a["zero_shot_guess"]), (lab05.q5, a["comparison_guess"])):
        ok, out = verdict(capsys, check, guess)
        assert ok and "recorded" in out and "right" not in out and "wrong" not in out
    ok, out = verdict(capsys, lab05.q1, "e")
    assert not ok and "one of the letters" in out
    ok, out = verdict(capsys, lab05.q5, None)
    assert not ok and "assign your prediction" in out
    assert verdict(capsys, lab05.q2, a["new_head"], a["transfer_model"])[0]
    assert verdict(capsys, lab05.q3, a["start_fine_tuning"])[0]

    def base_in_training_mode(base, head):
        base.trainable = False
        images = keras.Input(base.input_shape[1:])
        return keras.Model(images, head(base(images)))

    ok, out = verdict(capsys, lab05.q2, a["new_head"], base_in_training_mode)
    assert not ok and "training=False" in out

    def base_left_trainable(base, head):
        images = keras.Input(base.input_shape[1:])
        return keras.Model(images, head(base(images, training=False)))

    ok, out = verdict(capsys, lab05.q2, a["new_head"], base_left_trainable)
    assert not ok and "freeze it" in out

    def flattening_head(feature_shape, num_classes):
        features = keras.Input(feature_shape)
        flat = keras.layers.Dropout(0.2)(keras.layers.Flatten()(features))
        return keras.Model(features, keras.layers.Dense(num_classes, activation="softmax")(flat))

    ok, out = verdict(capsys, lab05.q2, flattening_head, a["transfer_model"])
    assert not ok and "global average pooling" in out

    def batchnorm_tuned_too(base, first_layer, head_learning_rate):
        base.trainable = True
        names = [layer.name for layer in base.layers]
        for index, layer in enumerate(base.layers):
            layer.trainable = index >= names.index(first_layer)
        return keras.optimizers.Adam(head_learning_rate / 10)

    ok, out = verdict(capsys, lab05.q3, batchnorm_tuned_too)
    assert not ok and "BatchNormalization" in out

    def same_learning_rate(base, first_layer, head_learning_rate):
        a["start_fine_tuning"](base, first_layer, head_learning_rate)
        return keras.optimizers.Adam(head_learning_rate)

    ok, out = verdict(capsys, lab05.q3, same_learning_rate)
    assert not ok and "10 times smaller" in out and "0.002" not in out


def test_a_crashing_answer_is_reported_not_raised(capsys):
    ok, out = verdict(capsys, lab02.q3, lambda *args: 1 / 0)
    assert not ok and "ZeroDivisionError" in out
