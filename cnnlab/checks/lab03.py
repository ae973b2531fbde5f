"""Public checks for lab 03, VGG in Keras and the classic architectures."""

from __future__ import annotations

import keras
import numpy as np

from cnnlab.checks.report import require, run_check

VGG16_PARAMS = 138_357_544


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


def q2(total_activations, megabytes_per_image) -> bool:
    """VGG16's forward activations for one image, the input included, and their memory at 4 bytes."""

    def check(total, megabytes):
        require(total != 24_000_000 and abs(megabytes - 93) > 1, "that is the slide's figure; add up the rows yourself")
        expected = (
            224 * 224 * 3
            + sum(
                size * size * channels * count
                for size, channels, count in [
                    (224, 64, 2),
                    (112, 64, 1),
                    (112, 128, 2),
                    (56, 128, 1),
                    (56, 256, 3),
                    (28, 256, 1),
                    (28, 512, 3),
                    (14, 512, 4),
                    (7, 512, 1),
                ]
            )
            + 4096
            + 4096
            + 1000
        )
        require(
            total == expected,
            "the total is off: count the input, every conv and pool output, and the three FC outputs (Flatten adds no new values)",
        )
        require(abs(megabytes - expected * 4 / 1e6) < 0.5, "memory: 4 bytes per value, and MB = 10^6 bytes")
        return "the true sum of the table's rows"

    return run_check("q2", check, total_activations, megabytes_per_image)


def q3(residual_block) -> bool:
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

    return run_check("q3", check, residual_block)


def q4(build_small_vgg) -> bool:
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

    return run_check("q4", check, build_small_vgg)
