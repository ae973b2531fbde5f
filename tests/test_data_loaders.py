"""The loaders on the real course data; expected values come from shared/data/MANIFEST.md."""

from __future__ import annotations

import logging

import numpy as np
import pytest

import cnnlab
from cnnlab.data import ImageFolder

# Per-class counts and opening labels as published in the data manifest (an independent source).
MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
CIFAR_FIRST_TRAIN = ["frog", "truck", "truck", "deer", "automobile", "automobile", "bird", "horse", "ship", "cat"]
CIFAR_FIRST_TEST = ["cat", "ship", "ship", "airplane", "frog", "frog", "automobile", "frog", "cat", "automobile"]


def test_mnist_is_complete_and_keras_shaped(real_data):
    data = cnnlab.load_mnist()
    (x_train, y_train), (x_test, y_test) = data
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert x_train.dtype == np.uint8 and y_train.dtype == np.uint8
    assert np.bincount(y_train).tolist() == MNIST_TRAIN_COUNTS
    assert np.bincount(y_test).tolist() == MNIST_TEST_COUNTS
    assert data.subset is False
    # Real digits, not blank or noise: the border is background and the centre carries ink.
    assert x_train[:, 0, :].mean() < 1 and x_train[:, 10:18, 10:18].mean() > 60


def test_cifar10_subset_says_it_is_a_subset(real_data, caplog):
    with caplog.at_level(logging.WARNING, logger="cnnlab"):
        data = cnnlab.load_cifar10("subset")
    assert data.subset is True
    assert "SUBSET" in caplog.text and "4000 train / 1000 test" in caplog.text
    assert "subset" in repr(data)
    assert data.x_train.shape == (4000, 32, 32, 3) and data.x_test.shape == (1000, 32, 32, 3)
    assert [data.class_names[i] for i in data.y_train[:10]] == CIFAR_FIRST_TRAIN
    assert [data.class_names[i] for i in data.y_test[:10]] == CIFAR_FIRST_TEST
    assert data.x_train.std() > 40  # real photos, not a constant fill


def test_cifar10_rejects_unknown_variant():
    with pytest.raises(ValueError, match="`variant` must be one of"):
        cnnlab.load_cifar10("tiny")


def test_cifar10_full_is_download_only(empty_env):
    with pytest.raises(cnnlab.data.DataNotFoundError, match="cnnlab fetch cifar10"):
        cnnlab.load_cifar10("full")


def test_pets_subset_class_folders(real_data):
    folder = cnnlab.load_pets("subset")
    assert isinstance(folder, ImageFolder) and folder.subset
    assert folder.class_names == ["cats", "dogs"]
    assert folder.counts() == {"cats": 120, "dogs": 250}
    # Oxford-IIIT naming: cat breeds are capitalised, dog breeds are not.
    for path, label in zip(folder.files, folder.labels, strict=True):
        assert path.name[0].isupper() == (label == 0)


def test_imagenet_class_index_decodes_offline(real_data):
    index = cnnlab.imagenet_class_index()
    assert len(index) == 1000 and index[285] == ("n02124075", "Egyptian_cat")
    scores = np.full((2, 1000), 1e-4)
    scores[0, 285], scores[0, 281], scores[1, 0] = 0.7, 0.2, 0.9
    decoded = cnnlab.decode_predictions(scores, top=2)
    assert [d[1] for d in decoded[0]] == ["Egyptian_cat", "tabby"]
    assert decoded[1][0][:2] == ("n01440764", "tench")
    with pytest.raises(ValueError, match=r"shape \(batch, 1000\)"):
        cnnlab.decode_predictions(np.zeros((2, 10)))


def test_sample_image_is_a_real_photo(real_data):
    image = cnnlab.load_sample_image("cat")
    assert image.shape == (375, 500, 3) and image.dtype == np.uint8
    assert image.std() > 30
    assert cnnlab.load_sample_image("cat", grayscale=True).shape == (375, 500)
    with pytest.raises(ValueError, match="`name` must be one of"):
        cnnlab.load_sample_image("giraffe")
