"""The builders against the lectures' counts and against keras.applications."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from cnnlab import models


def test_mlp_and_convnet_parameter_counts():
    assert models.mlp().count_params() == 203_530
    convnet = models.convnet()
    assert convnet.count_params() == 431_754
    shapes = {layer.name: tuple(layer.output.shape[1:]) for layer in convnet.layers}
    assert shapes["conv1"] == (24, 24, 32) and shapes["pool2"] == (5, 5, 64) and shapes["flatten"] == (1600,)


@pytest.mark.parametrize(("config", "millions"), [("A", 133), ("B", 133), ("C", 134), ("D", 138), ("E", 144)])
def test_vgg_configs_match_table_2_of_the_paper(config, millions):
    model = models.vgg(config)
    assert round(model.count_params() / 1e6) == millions
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert len(convs) + 3 == {"A": 11, "B": 13, "C": 16, "D": 16, "E": 19}[config]
    assert sum(layer.kernel_size == (1, 1) for layer in convs) == (3 if config == "C" else 0)


@pytest.mark.parametrize(
    ("builder", "reference"), [(models.vgg16, keras.applications.VGG16), (models.vgg19, keras.applications.VGG19)]
)
def test_vgg_matches_keras_applications(builder, reference):
    ours, theirs = builder(), reference(weights=None)
    assert ours.count_params() == theirs.count_params()
    their_shapes = {layer.name: tuple(layer.output.shape[1:]) for layer in theirs.layers}
    for layer in ours.layers:
        if layer.name in their_shapes:
            assert tuple(layer.output.shape[1:]) == their_shapes[layer.name], layer.name
    weighted = [layer.name for layer in theirs.layers if layer.weights]
    assert all(ours.get_layer(name).weights for name in weighted)
    for name in weighted:
        ours.get_layer(name).set_weights(theirs.get_layer(name).get_weights())
    images = np.random.default_rng(0).uniform(0, 255, (2, 224, 224, 3)).astype("float32")
    np.testing.assert_allclose(ours.predict(images, verbose=0), theirs.predict(images, verbose=0), rtol=1e-5, atol=1e-6)


def test_alexnet_and_lenet():
    assert models.alexnet().count_params() == 62_378_344
    classic, modern = models.lenet5(), models.lenet5(variant="modern")
    assert classic.count_params() == modern.count_params() == 61_706
    assert isinstance(classic.get_layer("S2"), keras.layers.AveragePooling2D)
    assert isinstance(modern.get_layer("S2"), keras.layers.MaxPooling2D)
    assert classic.get_layer("C1").activation.__name__ == "tanh"


def test_alexnet_lrn_layer_round_trips_through_json():
    model = models.alexnet(input_shape=(67, 67, 3), num_classes=5, include_top=False)
    rebuilt = keras.models.model_from_json(model.to_json())
    assert isinstance(rebuilt.get_layer("norm1"), models.LocalResponseNormalization)


def test_resnet_blocks_shapes():
    inputs = keras.Input((32, 32, 16))
    basic = models.basic_block(inputs, 32, stride=2, name="b")
    bottleneck = models.bottleneck_block(inputs, 16, stride=1, name="n")
    assert tuple(basic.shape[1:]) == (16, 16, 32)
    assert tuple(bottleneck.shape[1:]) == (32, 32, 64)
    resnet20 = models.small_resnet()
    assert resnet20.name == "resnet20" and 0.26e6 < resnet20.count_params() < 0.28e6  # paper: 0.27M


def test_common_arguments():
    headless = models.vgg("A", input_shape=(32, 32, 3), include_top=False)
    assert tuple(headless.output.shape[1:]) == (1, 1, 512)
    regularised = models.convnet(dropout=0.3, weight_decay=1e-4)
    assert any(isinstance(layer, keras.layers.Dropout) for layer in regularised.layers)
    assert len(regularised.losses) == 4  # one L2 penalty per kernel
    assert models.simple_cnn().output.shape[-1] == 1


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"input_shape": (28, 28)}, "`input_shape`"),
        ({"num_classes": 0}, "`num_classes`"),
        ({"dropout": 1.5}, "`dropout`"),
        ({"weight_decay": -1.0}, "`weight_decay`"),
    ],
)
def test_bad_builder_arguments(kwargs, named):
    with pytest.raises(ValueError, match=named):
        models.convnet(**kwargs)


def test_unknown_variants():
    with pytest.raises(ValueError, match="`config`"):
        models.vgg("F")
    with pytest.raises(ValueError, match="`variant`"):
        models.lenet5(variant="relu")
