"""cnnlab.augment against the legacy Keras generator, and its own promises.

Equivalence bounds (on a [0, 1] scale, real photos of 96x128 pixels, non-square on purpose):

- interior pixels, whose source point lies at least one pixel inside the input: max error
  <= 2/255 (in practice 0: both resample with the same bilinear arithmetic);
- all pixels: mean absolute error <= 0.5/255 for "nearest" and "reflect" (identical
  conventions), <= 1.5/255 for "constant" (SciPy does not blend cval across the border, TF
  does, in a one-pixel seam) and <= 3/255 for "wrap" (SciPy wraps with period n - 1,
  TensorFlow and cnnlab with period n, so the wrapped-in region is offset by a pixel);
- channel shift and brightness: <= 1/255 (legacy rounds through a uint8 PIL image).
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras.src.legacy.preprocessing.image import ImageDataGenerator as LegacyGenerator
from PIL import Image

import cnnlab
from cnnlab.augment import AlexNetCrop, ImageDataGenerator, PCALighting, chunks, pca_lighting_components
from cnnlab.augment import generator as generator_module
from cnnlab.augment.params import N_UNIFORMS, sample_parameters
from cnnlab.augment.transform import legacy_matrices

PETS = "oxford_pets_cats_vs_dogs"
IDENTITY = {
    "theta": 0.0,
    "tx": 0.0,
    "ty": 0.0,
    "shear": 0.0,
    "zx": 1.0,
    "zy": 1.0,
    "flip_horizontal": False,
    "flip_vertical": False,
}
GEOMETRIC = {
    "rotation": {"theta": 27.0},
    "shift_rows": {"tx": 11.0},
    "shift_cols": {"ty": -14.0},
    "shear": {"shear": 16.0},
    "zoom": {"zx": 0.8, "zy": 1.25},
    "flip_horizontal": {"flip_horizontal": True},
    "flip_vertical": {"flip_vertical": True},
    "combined": {"theta": -33.0, "tx": 6.0, "ty": 9.0, "shear": 12.0, "zx": 1.1, "zy": 0.85, "flip_horizontal": True},
}
MAE_BOUND = {"nearest": 0.5, "reflect": 0.5, "constant": 1.5, "wrap": 3.0}


@pytest.fixture(scope="module")
def photo(real_data):
    image = Image.open(real_data / PETS / "cats" / "Egyptian_Mau_140.jpg").convert("RGB").resize((128, 96))
    return np.asarray(image, dtype="float32")


def interior_mask(params: dict, height: int, width: int) -> np.ndarray:
    tensors = {k: tf.constant([float(v)]) for k, v in params.items()}
    matrix = legacy_matrices(tensors, height, width)[0].numpy()
    rows, cols = np.mgrid[0:height, 0:width]
    source = matrix @ np.stack([rows.ravel(), cols.ravel(), np.ones(rows.size)])
    inside = (source[0] >= 1) & (source[0] <= height - 2) & (source[1] >= 1) & (source[1] <= width - 2)
    return inside.reshape(height, width)


@pytest.mark.parametrize("fill_mode", ["nearest", "constant", "reflect", "wrap"])
@pytest.mark.parametrize("family", sorted(GEOMETRIC))
def test_geometric_transforms_match_legacy(photo, family, fill_mode):
    params = {**IDENTITY, **GEOMETRIC[family]}
    legacy = LegacyGenerator(fill_mode=fill_mode, cval=40.0).apply_transform(photo.copy(), params)
    ours = ImageDataGenerator(fill_mode=fill_mode, cval=40.0).apply_transform(photo, params)
    error = np.abs(legacy - ours) / 255.0
    interior = interior_mask(params, *photo.shape[:2])
    assert interior.mean() > 0.5
    assert error[interior].max() <= 2 / 255
    assert error.mean() <= MAE_BOUND[fill_mode] / 255
    assert np.abs(ours - photo).mean() > 5  # it really moved the pixels


@pytest.mark.parametrize(
    ("key", "value"),
    [("channel_shift_intensity", 37.0), ("channel_shift_intensity", -52.0), ("brightness", 0.6), ("brightness", 1.4)],
)
def test_pointwise_transforms_match_legacy(photo, key, value):
    params = {**IDENTITY, key: value}
    legacy = LegacyGenerator().apply_transform(photo.copy(), params)
    ours = ImageDataGenerator().apply_transform(photo, params)
    assert np.abs(legacy - ours).mean() / 255 <= 1 / 255
    assert np.abs(ours - photo).mean() > 5


def uniforms(count: int, seed: int = 0):
    return tf.random.stateless_uniform((count, N_UNIFORMS), seed=(seed, 1))


def test_sampled_parameters_stay_in_range_with_the_right_distribution():
    generator = ImageDataGenerator(
        rotation_range=40,
        width_shift_range=0.2,
        height_shift_range=[5, 10],
        shear_range=20,
        zoom_range=0.2,
        horizontal_flip=True,
        channel_shift_range=9,
        brightness_range=(0.5, 1.5),
    )
    n = 20000
    p = {k: v.numpy() for k, v in sample_parameters(generator.settings, uniforms(n), 100, 150).items()}
    assert -40 <= p["theta"].min() and p["theta"].max() <= 40 and abs(p["theta"].mean()) < 1
    assert np.abs(p["ty"]).max() <= 0.2 * 150 and p["ty"].std() > 0.2 * 150 / 2  # fraction of the width
    assert set(np.unique(p["tx"])) == {-10.0, -5.0, 5.0, 10.0}  # list: one value, random sign
    assert 0.8 <= p["zx"].min() and p["zx"].max() <= 1.2 and abs(np.corrcoef(p["zx"], p["zy"])[0, 1]) < 0.05
    assert 0.48 < p["flip_horizontal"].mean() < 0.52 and p["flip_vertical"].max() == 0
    assert (
        np.abs(p["channel_shift_intensity"]).max() <= 9
        and 0.5 <= p["brightness"].min()
        and p["brightness"].max() <= 1.5
    )
    integer = ImageDataGenerator(width_shift_range=3)
    cols = sample_parameters(integer.settings, uniforms(n), 100, 150)["ty"].numpy()
    assert set(np.unique(cols)) == {-2.0, -1.0, 0.0, 1.0, 2.0}  # legacy int n: one of 0..n-1 pixels


def test_get_random_transform_is_a_legacy_dict_and_seeded():
    generator = ImageDataGenerator(rotation_range=30, horizontal_flip=True)
    first = generator.get_random_transform((64, 64, 3), seed=5)
    assert set(first) == set(LegacyGenerator().get_random_transform((64, 64, 3)))
    assert first == generator.get_random_transform((64, 64, 3), seed=5)
    assert first != generator.get_random_transform((64, 64, 3), seed=6)
    assert first["channel_shift_intensity"] is None and first["brightness"] is None
    image = np.random.default_rng(0).uniform(0, 255, (64, 64, 3)).astype("float32")
    np.testing.assert_array_equal(generator.random_transform(image, seed=5), generator.apply_transform(image, first))


def test_flow_is_reproducible_and_subsets_partition_the_data():
    x = np.random.default_rng(0).uniform(0, 255, (50, 16, 16, 3)).astype("float32")
    y = np.arange(50)
    generator = ImageDataGenerator(rotation_range=20, horizontal_flip=True, validation_split=0.2, rescale=1 / 255)
    a, b, c = (generator.flow(x, y, batch_size=8, seed=s) for s in (1, 1, 2))
    assert len(a) == 7 and a.samples == 50
    xa, ya = a[0]
    xb, yb = b[0]
    np.testing.assert_array_equal(xa, xb)
    np.testing.assert_array_equal(ya, yb)
    assert not np.array_equal(ya, c[0][1])
    assert float(np.max(xa)) <= 1.0  # rescaled
    train = generator.flow(x, y, batch_size=8, subset="training", seed=0)
    val = generator.flow(x, y, batch_size=8, subset="validation", seed=0)
    seen_train = np.concatenate([train[i][1] for i in range(len(train))])
    seen_val = np.concatenate([val[i][1] for i in range(len(val))])
    assert set(seen_train).isdisjoint(seen_val) and set(seen_train) | set(seen_val) == set(y)
    assert sorted(seen_val) == list(range(10))  # legacy: the first fraction is validation
    train.on_epoch_end()
    assert sorted(np.concatenate([train[i][1] for i in range(len(train))])) == sorted(seen_train)


@pytest.mark.parametrize("batch", [16, 19])  # 19: the last chunk is padded
def test_large_batches_in_chunks_equal_the_whole_batch(photo, batch, monkeypatch):
    """Batches of big photos with a channel shift are processed a few images at a time
    (cnnlab.augment.chunks); the result must be that of the whole batch."""
    big = np.asarray(Image.fromarray(photo.astype("uint8")).resize((224, 224)), dtype="float32")
    x = np.stack([np.roll(big, k, axis=1) for k in range(batch)])
    settings = dict(
        rotation_range=40,
        zoom_range=0.2,
        horizontal_flip=True,
        channel_shift_range=9,
        brightness_range=(0.7, 1.2),
        rescale=1 / 255,
    )
    chunk = chunks.cache_sized_chunk(ImageDataGenerator(**settings).settings, batch, 224, 224)
    assert chunk is not None and chunk < batch  # this batch really goes through the chunks
    in_chunks = ImageDataGenerator(**settings).augment_and_standardize(x, (3, 4)).numpy()
    monkeypatch.setattr(generator_module, "cache_sized_chunk", lambda *args: None)
    whole = ImageDataGenerator(**settings).augment_and_standardize(x, (3, 4)).numpy()
    assert in_chunks.shape == whole.shape == (batch, 224, 224, 3)
    # Same images, same order, same transforms; XLA compiles the two programs separately and
    # may round the rotation's sine and cosine differently: 1e-5 here, 0.003 of a grey level.
    np.testing.assert_allclose(in_chunks, whole, rtol=0, atol=1e-4)
    assert len({float(np.abs(image - big / 255).mean()) for image in in_chunks}) == batch  # each its own transform


def test_flow_from_directory_on_the_pets(real_data):
    generator = ImageDataGenerator(rescale=1 / 255, horizontal_flip=True, validation_split=0.2)
    whole = generator.flow_from_directory(real_data / PETS, target_size=(64, 64), batch_size=32, seed=0)
    assert whole.class_indices == {"cats": 0, "dogs": 1}
    assert whole.samples == 370 and len(whole) == 12 and np.bincount(whole.classes).tolist() == [120, 250]
    images, labels = whole[0]
    assert images.shape == (32, 64, 64, 3) and labels.shape == (32, 2) and labels.sum(axis=1).tolist() == [1.0] * 32
    train = generator.flow_from_directory(
        real_data / PETS, target_size=(64, 64), subset="training", class_mode="binary"
    )
    val = generator.flow_from_directory(
        real_data / PETS, target_size=(64, 64), subset="validation", class_mode="binary"
    )
    assert set(train.filenames).isdisjoint(val.filenames)
    assert sorted(train.filenames + val.filenames) == sorted(whole.filenames)
    assert (train.samples, val.samples) == (296, 74) and np.bincount(val.classes).tolist() == [24, 50]


def test_flow_from_directory_skips_corrupt_files(real_data, tmp_path):
    for name in ("cats", "dogs"):
        (tmp_path / name).mkdir()
        for photo in sorted((real_data / PETS / name).iterdir())[:3]:
            (tmp_path / name / photo.name).write_bytes(photo.read_bytes())
    (tmp_path / "dogs" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    with pytest.warns(cnnlab.data.SkippedFilesWarning, match="broken.jpg"):
        flow = ImageDataGenerator().flow_from_directory(tmp_path, target_size=(32, 32), batch_size=4)
    assert flow.samples == 6 and sum(len(flow[i][0]) for i in range(len(flow))) == 6


def test_fit_featurewise_statistics():
    x = np.random.default_rng(0).normal([10.0, 50.0, 90.0], [2.0, 5.0, 9.0], (40, 8, 8, 3)).astype("float32")
    generator = ImageDataGenerator(featurewise_center=True, featurewise_std_normalization=True)
    with pytest.raises(ValueError, match="call .fit"):
        generator.flow(x, batch_size=40)[0]
    generator.fit(x)
    np.testing.assert_allclose(generator.mean.ravel(), x.mean(axis=(0, 1, 2)), rtol=1e-5)
    out = np.asarray(generator.flow(x, batch_size=40, shuffle=False)[0])
    np.testing.assert_allclose(out.mean(axis=(0, 1, 2)), 0, atol=1e-4)
    np.testing.assert_allclose(out.std(axis=(0, 1, 2)), 1, atol=1e-3)


def test_samplewise_and_preprocessing_function():
    x = np.random.default_rng(1).uniform(0, 255, (4, 8, 8, 3)).astype("float32")
    calls = []

    def invert(image):
        calls.append(image.shape)
        return 255.0 - image

    generator = ImageDataGenerator(samplewise_std_normalization=True, preprocessing_function=invert)
    out = np.asarray(generator.flow(x, batch_size=4, shuffle=False)[0])
    assert calls == [(8, 8, 3)] * 4
    expected = 255.0 - x
    expected = (expected - expected.mean(axis=(1, 2, 3), keepdims=True)) / (
        expected.std(axis=(1, 2, 3), keepdims=True) + 1e-6
    )
    np.testing.assert_allclose(out, expected, atol=1e-4)


def test_model_fit_takes_the_flow_directly():
    (x, y), _ = cnnlab.load_mnist()
    x = x[:256, ..., None].astype("float32")
    flow = ImageDataGenerator(rescale=1 / 255, rotation_range=10).flow(x, y[:256], batch_size=64, seed=0)
    model = cnnlab.models.convnet()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(flow, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2 and history.history["loss"][1] < history.history["loss"][0]


def test_as_layer_is_active_only_in_training(photo):
    layer = ImageDataGenerator(rotation_range=30, zoom_range=0.2, horizontal_flip=True).as_layer(seed=1)
    batch = np.stack([photo, photo])
    np.testing.assert_array_equal(layer(batch, training=False), batch)
    augmented = np.asarray(layer(batch, training=True))
    assert augmented.shape == batch.shape and np.abs(augmented - batch).mean() > 5
    assert not np.array_equal(augmented[0], augmented[1])  # a transform per image
    inputs = keras.Input(photo.shape)
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(layer(inputs)))
    rebuilt = keras.models.model_from_json(model.to_json())
    assert rebuilt.layers[1].settings == layer.settings
    with pytest.raises(ValueError, match="random transforms only"):
        ImageDataGenerator(samplewise_center=True).as_layer()


def test_fancy_pca_lighting(real_data):
    images = cnnlab.load_cifar10("subset").x_train[:500].astype("float32")
    eigenvalues, eigenvectors = pca_lighting_components(images)
    np.testing.assert_allclose(eigenvectors.T @ eigenvectors, np.eye(3), atol=1e-5)
    assert (np.diff(eigenvalues) <= 0).all() and (eigenvalues > 0).all()
    covariance = np.cov(images.reshape(-1, 3) / 255, rowvar=False)  # of pixels scaled to [0, 1]
    np.testing.assert_allclose(covariance @ eigenvectors[:, 0], eigenvalues[0] * eigenvectors[:, 0], rtol=1e-3)
    same, _ = pca_lighting_components(images / 255, value_range=1.0)
    np.testing.assert_allclose(same, eigenvalues, rtol=1e-5)
    layer = PCALighting(eigenvalues, eigenvectors, seed=0)
    assert layer.stddev == 0.1  # the paper's
    batch = images[:64]
    shifted = np.asarray(layer(batch, training=True))
    offsets = shifted - batch
    np.testing.assert_allclose(
        offsets, np.broadcast_to(offsets[:, :1, :1, :], offsets.shape), atol=1e-3
    )  # constant per image
    draws = np.asarray(layer.lighting_shift(20000))
    assert np.abs(draws.mean(axis=0)).max() < 0.05 * draws.std(axis=0).max()  # zero-mean
    expected_std = 255 * np.sqrt((eigenvectors**2) @ (0.1 * eigenvalues) ** 2)
    np.testing.assert_allclose(draws.std(axis=0), expected_std, rtol=0.05)
    np.testing.assert_array_equal(layer(batch, training=False), batch)
    with pytest.raises(ValueError, match="`images` must be RGB"):
        pca_lighting_components(images[..., :1])


def test_fancy_pca_lighting_moves_pixels_by_a_few_grey_levels(real_data):
    """The size of the perturbation, in grey levels of 0..255 images: a few, as in the paper's
    recipe, never hundreds (the eigenvalues of 0..255 pixels made it about a thousand)."""
    images = cnnlab.load_cifar10("subset").x_train[:500].astype("float32")
    eigenvalues, eigenvectors = pca_lighting_components(images)
    assert 0.1 < eigenvalues[0] < 0.3  # brightness variance of CIFAR-10 in [0, 1] units (~0.17)
    draws = np.asarray(PCALighting(eigenvalues, eigenvectors, seed=1).lighting_shift(20000))
    along_first = draws @ eigenvectors[:, 0]
    assert 2 < along_first.std() < 8  # 0.1 x lambda_1 x 255, about 4.4 grey levels
    assert np.abs(draws).max() < 40 and np.sqrt((draws**2).sum(axis=1)).mean() < 10
    with pytest.raises(ValueError, match="variances of pixels in \\[0, 1\\]"):
        PCALighting(*np.linalg.eigh(np.cov(images.reshape(-1, 3), rowvar=False)))  # of 0..255 pixels
    with pytest.raises(ValueError, match="value_range=1.0"):
        pca_lighting_components(images / 255)
    with pytest.raises(ValueError, match="outside 0..1"):
        pca_lighting_components(images, value_range=1.0)
    on_unit_images = PCALighting(eigenvalues, eigenvectors, value_range=1.0, seed=1).lighting_shift(20000)
    np.testing.assert_allclose(np.asarray(on_unit_images) * 255, draws, rtol=1e-4, atol=1e-4)
    layer = PCALighting(eigenvalues, eigenvectors, value_range=1.0, seed=2)
    assert keras.layers.deserialize(keras.layers.serialize(layer)).value_range == 1.0


def test_alexnet_crops_and_centre_crop():
    images = np.random.default_rng(0).uniform(0, 255, (6, 256, 256, 3)).astype("float32")
    layer = AlexNetCrop(224, seed=3)
    np.testing.assert_array_equal(layer(images, training=False), images[:, 16:240, 16:240])
    crops = np.asarray(layer(images, training=True))
    assert crops.shape == (6, 224, 224, 3)
    offsets = set()
    for crop, image in zip(crops, images, strict=True):
        found = [
            (top, left, flipped)
            for top in range(33)
            for left in range(33)
            for flipped in (False, True)
            if np.array_equal(
                (image[top : top + 224, left : left + 224])[:, ::-1]
                if flipped
                else image[top : top + 224, left : left + 224],
                crop,
            )
        ]
        assert len(found) == 1  # an exact crop, perhaps mirrored
        offsets.add(found[0])
    assert len(offsets) > 1


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"rotation_range": -5}, "`rotation_range`"),
        ({"fill_mode": "mirror"}, "`fill_mode`"),
        ({"zoom_range": (1.2, 0.8)}, "`zoom_range`"),
        ({"zoom_range": 1.5}, "`zoom_range`"),
        ({"width_shift_range": -0.1}, "`width_shift_range`"),
        ({"brightness_range": 0.5}, "`brightness_range`"),
        ({"validation_split": 1.0}, "`validation_split`"),
        ({"zca_whitening": True}, "`zca_whitening` is not supported"),
        ({"interpolation_order": 0}, "`interpolation_order`"),
        ({"data_format": "channels_first"}, "`data_format`"),
        ({"rescale": "1/255"}, "`rescale`"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, named):
    with pytest.raises(ValueError, match=named):
        ImageDataGenerator(**kwargs)


def test_bad_flow_arguments(real_data, tmp_path):
    generator = ImageDataGenerator()
    with pytest.raises(FileNotFoundError, match="`directory`"):
        generator.flow_from_directory(tmp_path / "missing")
    (tmp_path / "pets" / "cats").mkdir(parents=True)
    with pytest.raises(ValueError, match="cats.*holds no usable image"):
        generator.flow_from_directory(tmp_path / "pets")
    with pytest.raises(ValueError, match="`subset` needs the generator's `validation_split`"):
        generator.flow(np.zeros((4, 8, 8, 3)), subset="training")
    with pytest.raises(ValueError, match="`x` must be a batch of images"):
        generator.flow(np.zeros((8, 8, 3)))
    with pytest.raises(ValueError, match="`class_mode`"):
        generator.flow_from_directory(real_data / PETS, class_mode="onehot")
    with pytest.raises(ValueError, match="`batch_size`"):
        generator.flow(np.zeros((4, 8, 8, 3)), batch_size=0)
