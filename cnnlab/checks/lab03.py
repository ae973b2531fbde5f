"""Public checks for lab 03, VGG in Keras and the classic architectures.

They never hold an answer: the code checks run the student's functions on sizes of their own
and compare with Keras or `layer_table` there; the numbers the questions ask for are compared
with slow salted SHA-256 digests (PBKDF2), so that reading this file, or trying every number
in turn, does not give them away; the prediction checks only look at the form of the answer
(the cells after them show what happens).
"""

from __future__ import annotations

import hashlib

import keras
import numpy as np

from cnnlab.checks.report import Hint, letter_prediction, require, run_check

VGG16_PARAMS = 138_357_544
CHOICES = {"q2": ("a", "b", "c", "d"), "q8": ("a", "b", "c", "d")}
# PBKDF2-HMAC-SHA256 digests of the answers, written as `repr` of an int or of a tuple of ints.
DIGESTS = {
    "activations": "c48a9280b64a244ce6978359800de40a31cda33e554a53b36fcce9ea703814ac",
    "block5_shape": "40fc1b2fed679199b9af1ae24de4af6e724881de26b0c726a2bf44ece26dab72",
    "parameters": "d3163446e227018c00fe19d30b04fbcff510a394a1134decb7e2baac54ce4c15",
}
FLATTEN_VALUES = 7 * 7 * 512  # what counting Flatten adds (its output repeats block5_pool's values)
INPUT_VALUES = 224 * 224 * 3


def _digest(value) -> str:
    return hashlib.pbkdf2_hmac("sha256", repr(value).encode(), b"cnnlab lab03", 100_000).hex()


def _is_whole(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _prediction(question: str, name: str, guess) -> bool:
    return letter_prediction(question, name, guess, CHOICES[question])


def q1(build_vgg16) -> bool:
    """VGG16 block by block, with keras.applications' layer names so that weights load by name."""

    def check(build):
        model = build(input_shape=(224, 224, 3), num_classes=1000)
        require(isinstance(model, keras.Model), f"build_vgg16 must return a keras.Model, got {type(model).__name__}")
        convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
        require(len(convs) == 13, f"found {len(convs)} Conv2D layers; VGG16 has 13 (2, 2, 3, 3, 3 per block)")
        require(
            all(c.kernel_size == (3, 3) and c.padding == "same" for c in convs),
            "every VGG convolution is 3x3 with 'same' padding",
        )
        names = {layer.name for layer in model.layers}
        missing = [
            n for n in ("block1_conv1", "block3_conv3", "block5_pool", "fc1", "fc2", "predictions") if n not in names
        ]
        require(
            not missing,
            f"layers named {missing} are missing; use keras.applications' names so the weights load by name",
        )
        require(
            tuple(model.get_layer("block5_pool").output.shape[1:]) == (7, 7, 512),
            "block5_pool should output 7x7x512 at 224x224: five 2x2 poolings",
        )
        require(
            model.count_params() == VGG16_PARAMS,
            f"{model.count_params():,} parameters; compare with keras.applications.VGG16(weights=None)",
        )
        return f"{VGG16_PARAMS:,} parameters, names match keras.applications"

    return run_check("q1", check, build_vgg16)


def q2(padding_guess) -> bool:
    """The prediction of the parameters of the slide's code as printed: one of the stated letters."""
    return _prediction("q2", "padding_guess", padding_guess)


def q3(build_lecture_vgg16, lecture_block5_shape, lecture_parameters) -> bool:
    """The slide's VGG16 code as printed, in Keras 3; its block-5 shape and parameter count."""

    def check(build, shape, parameters):
        probe = build(input_shape=(236, 250, 3), num_classes=4)  # not the question's size
        require(isinstance(probe, keras.Model), f"must return a keras.Model, got {type(probe).__name__}")
        convs = [layer for layer in probe.layers if isinstance(layer, keras.layers.Conv2D)]
        pools = [layer for layer in probe.layers if isinstance(layer, keras.layers.MaxPooling2D)]
        dense = [layer for layer in probe.layers if isinstance(layer, keras.layers.Dense)]
        require(
            len(convs) == 13 and all(c.kernel_size == (3, 3) for c in convs),
            "the slide's code has thirteen 3x3 convolutions",
        )
        require(
            all(c.padding == "valid" for c in convs),
            "the slide gives its convolutions no padding: keep Keras's default",
        )
        require(len(pools) == 5, f"found {len(pools)} MaxPooling2D layers; the slide has one after each of 5 blocks")
        require(
            [d.units for d in dense] == [4096, 4096, 4] and dense[-1].activation.__name__ == "softmax",
            "the classifier is two Dense(4096) with ReLU and a softmax Dense(num_classes)",
        )
        require(tuple(probe.output_shape[1:]) == (4,), "the output is one probability per class, for any num_classes")
        require(
            isinstance(shape, (tuple, list)) and len(shape) == 3 and all(_is_whole(v) for v in shape),
            "lecture_block5_shape: a tuple of three ints (height, width, channels), without the batch axis",
        )
        require(_is_whole(parameters), "lecture_parameters: a whole number (an int)")
        model = build()
        last_pool = [layer for layer in model.layers if isinstance(layer, keras.layers.MaxPooling2D)][-1]
        require(
            tuple(shape) == tuple(last_pool.output.shape[1:]),
            "lecture_block5_shape is not the output shape of your network's last pooling at 224x224x3",
        )
        require(parameters == model.count_params(), "lecture_parameters is not your network's count_params()")
        require(
            _digest(tuple(int(v) for v in shape)) == DIGESTS["block5_shape"]
            and _digest(int(parameters)) == DIGESTS["parameters"],
            "your network differs from the slide's code: compare them line by line",
        )
        return "the slide's network as printed, measured"

    return run_check("q3", check, build_lecture_vgg16, lecture_block5_shape, lecture_parameters)


def q4(total_activations, megabytes_per_image) -> bool:
    """VGG16's forward activations for one image, the input included, and their memory at 4 bytes."""

    def check(total, megabytes):
        require(_is_whole(total), "total_activations: a whole number (an int)")
        require(isinstance(megabytes, (int, float, np.number)), "megabytes_per_image: a number")
        require(total != 24_000_000 and abs(megabytes - 93) > 1, "that is the slide's figure; add up the rows yourself")
        if _digest(int(total)) != DIGESTS["activations"]:
            if _digest(int(total) - FLATTEN_VALUES) == DIGESTS["activations"]:
                raise Hint("Flatten only reshapes block5_pool's output: its values are already counted")
            if _digest(int(total) + INPUT_VALUES) == DIGESTS["activations"]:
                raise Hint("count the input image too")
            raise Hint("the total is off: count the input, every conv and pool output, and the three FC outputs")
        require(abs(megabytes * 1e6 / 4 - total) < 125_000, "memory: 4 bytes per value, and MB = 10^6 bytes")
        return "the true sum of the table's rows"

    return run_check("q4", check, total_activations, megabytes_per_image)


def q5(adam_bytes_per_parameter) -> bool:
    """The prediction of Adam's training memory per parameter: a whole number of bytes."""

    def check(value):
        require(
            value is not None, "assign your prediction to `adam_bytes_per_parameter` before running the cells below"
        )
        require(
            isinstance(value, (int, float, np.number)) and not isinstance(value, bool) and value > 0,
            f"`adam_bytes_per_parameter` must be a positive number of bytes, got {value!r}",
        )
        require(float(value).is_integer(), "a whole number of bytes: every value is a float32 of 4 bytes")
        return f"prediction {int(value)} recorded; the next cells measure it"

    return run_check("q5", check, adam_bytes_per_parameter)


def q7(residual_block) -> bool:
    """A basic residual block: two 3x3 conv + BN, a shortcut (1x1 projection when the shape changes), add, ReLU."""

    def check(block):
        for channels, filters, stride in [(16, 16, 1), (16, 32, 2)]:
            inputs = keras.Input((16, 16, channels))
            outputs = block(inputs, filters, stride)
            model = keras.Model(inputs, outputs)
            expected_shape = (16 // stride, 16 // stride, filters)
            require(
                tuple(outputs.shape[1:]) == expected_shape,
                f"with {channels} channels in, {filters} filters, stride {stride}: output {tuple(outputs.shape[1:])}",
            )
            require(
                any(isinstance(layer, keras.layers.Add) for layer in model.layers),
                "a residual block adds its input (the shortcut) to the convolutions' output",
            )
            convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
            wanted = 2 if (stride == 1 and channels == filters) else 3
            require(
                len(convs) == wanted,
                f"{len(convs)} Conv2D layers for stride {stride}, {channels}->{filters} channels; the shortcut needs a 1x1 projection only when the shape changes",
            )
            require(
                sum(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers) >= 2,
                "use BatchNormalization after each 3x3 convolution",
            )
            x = np.random.default_rng(0).normal(size=(2, 16, 16, channels)).astype("float32")
            require(np.asarray(model(x)).min() >= 0, "the block ends with a ReLU after the addition")
        return "shapes, shortcut and projection as in He et al."

    return run_check("q7", check, residual_block)


def q8(reduction_guess) -> bool:
    """The prediction of what the 1x1 reductions save: one of the stated letters."""
    return _prediction("q8", "reduction_guess", reduction_guess)


def _measured(model) -> tuple[int, int]:
    """Weights without biases and MACs of a built model, from layer_table."""
    from cnnlab.layer_table import layer_table

    table = layer_table(model)
    return table.total_params_no_bias, table.total_macs


def q9(inception_cost) -> bool:
    """Weights and multiply-adds of an inception module, with and without its 1x1 reductions."""
    from cnnlab.models import inception_module, inception_module_naive

    def check(cost):
        height, width, channels, widths = 5, 7, 6, (2, 3, 4, 1, 2, 3)  # a made-up module, not 3a
        inputs = keras.Input((height, width, channels))
        reduced = keras.Model(inputs, inception_module(inputs, *widths))
        naive = keras.Model(inputs, inception_module_naive(inputs, widths[0], widths[2], widths[4]))
        for label, model, flag in (("with reductions", reduced, True), ("without them", naive, False)):
            answer = cost(height, width, channels, *widths, reductions=flag)
            require(
                isinstance(answer, (tuple, list)) and len(answer) == 2 and all(_is_whole(v) for v in answer),
                "inception_cost must return (weights, macs), two ints",
            )
            weights, macs = _measured(model)
            require(
                int(answer[0]) == weights,
                f"weights {label} differ from the Keras module's on a made-up {height}x{width}x{channels} input",
            )
            require(int(answer[1]) == macs, f"multiply-adds {label} differ from layer_table's on a made-up input")
        return "weights and multiply-adds agree with layer_table on a made-up module"

    return run_check("q9", check, inception_cost)


def q10(conv_costs) -> bool:
    """Weights and multiply-adds of a standard and of a depthwise-separable convolution."""

    def check(costs):
        height, width, c_in, c_out, kernel = 6, 5, 4, 7, 3  # made-up sizes
        answer = costs(height, width, c_in, c_out, kernel)
        require(
            isinstance(answer, (tuple, list))
            and len(answer) == 2
            and all(isinstance(pair, (tuple, list)) and len(pair) == 2 for pair in answer)
            and all(_is_whole(v) for pair in answer for v in pair),
            "conv_costs must return ((standard_weights, standard_macs), (separable_weights, separable_macs)), ints",
        )
        inputs = keras.Input((height, width, c_in))
        layers = {
            "standard": keras.layers.Conv2D(c_out, kernel, padding="same", use_bias=False),
            "depthwise-separable": keras.layers.SeparableConv2D(c_out, kernel, padding="same", use_bias=False),
        }
        for (label, layer), (weights, macs) in zip(layers.items(), answer, strict=True):
            measured = _measured(keras.Model(inputs, layer(inputs)))
            require(int(weights) == measured[0], f"{label} weights differ from Keras's on made-up sizes")
            require(int(macs) == measured[1], f"{label} multiply-adds differ from layer_table's on made-up sizes")
        return "both agree with Keras's layers on made-up sizes"

    return run_check("q10", check, conv_costs)


def q11(build_small_vgg) -> bool:
    """A VGG-style network for CIFAR-10: stacks of 3x3 convolutions and 2x2 pooling, a small head."""

    def check(build):
        model = build()
        require(
            tuple(model.input_shape[1:]) == (32, 32, 3), f"input {model.input_shape[1:]}; CIFAR-10 images are 32x32x3"
        )
        require(tuple(model.output_shape[1:]) == (10,), f"output {model.output_shape[1:]}; CIFAR-10 has 10 classes")
        convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
        pools = [layer for layer in model.layers if isinstance(layer, keras.layers.MaxPooling2D)]
        require(
            len(convs) >= 6 and all(c.kernel_size == (3, 3) for c in convs),
            "use at least six 3x3 convolutions, VGG style",
        )
        require(len(pools) >= 3, "pool 2x2 after each block (at least three blocks)")
        require(
            model.count_params() < 3_000_000,
            f"{model.count_params():,} parameters: too big to train on a CPU in minutes; keep it under 3 million",
        )
        return f"{len(convs)} convolutions, {model.count_params():,} parameters"

    return run_check("q11", check, build_small_vgg)


def q12(top_k_accuracy) -> bool:
    """Top-k accuracy of predicted probabilities, compared with Keras's metric on made-up predictions."""

    def check(accuracy):
        rng = np.random.default_rng(3)
        probabilities = rng.dirichlet(np.ones(6), size=40).astype("float32")  # 40 made-up predictions, 6 classes
        labels = rng.integers(0, 6, size=40)
        for k in (1, 2, 4):
            value = accuracy(probabilities, labels, k)
            require(
                isinstance(value, (float, np.floating)) and 0 <= value <= 1,
                f"top_k_accuracy must return a fraction between 0 and 1 (a float), got {value!r}",
            )
            metric = keras.metrics.SparseTopKCategoricalAccuracy(k=k)
            metric.update_state(labels, probabilities)
            require(
                abs(float(value) - float(metric.result())) < 1e-6,
                f"with k={k}, differs from keras.metrics.SparseTopKCategoricalAccuracy on made-up predictions",
            )
        return "agrees with Keras's top-k metric on made-up predictions"

    return run_check("q12", check, top_k_accuracy)
