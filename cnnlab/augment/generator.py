"""The lectures' ImageDataGenerator, on Keras 3 and TensorFlow ops.

Same constructor arguments, same meanings, same params dicts as
``keras.preprocessing.image.ImageDataGenerator`` (now ``keras.src.legacy``), but each batch is
resampled once with one projective transform per image, in TensorFlow, so that it is fast on
a CPU and can run on a GPU. Use it with ``model.fit``; there is no ``fit_generator``::

    image_gen = ImageDataGenerator(rescale=1./255, rotation_range=40, width_shift_range=0.2,
        height_shift_range=0.2, shear_range=0.2, zoom_range=0.2, horizontal_flip=True,
        channel_shift_range=9, fill_mode="nearest")
    train_flow = image_gen.flow_from_directory(train_folder, target_size=(150, 150))
    model.fit(train_flow, epochs=10)
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from cnnlab.augment.chunks import cache_sized_chunk, in_chunks
from cnnlab.augment.iterators import ArrayIterator, DirectoryIterator
from cnnlab.augment.params import N_UNIFORMS, AugmentSettings, sample_parameters, stateless_uniforms
from cnnlab.augment.transform import transform_batch

LEGACY_KEYS = (
    "theta",
    "tx",
    "ty",
    "shear",
    "zx",
    "zy",
    "flip_horizontal",
    "flip_vertical",
    "channel_shift_intensity",
    "brightness",
)


class ImageDataGenerator:
    """Real-time data augmentation with the legacy Keras interface.

    Parameters
    ----------
    rotation_range : float
        Degrees; each image is rotated by a uniform angle in [-r, r].
    width_shift_range, height_shift_range : float, int or list
        Float: a uniform fraction of the width (or pixels when >= 1); int n: one of 0..n-1
        pixels with a random sign; list: one of its values with a random sign.
    shear_range : float
        Degrees of shear, uniform in [-s, s].
    zoom_range : float or (low, high)
        Float z means [1 - z, 1 + z]; zoom factors are drawn separately for the two axes.
    channel_shift_range : float
        One intensity in [-c, c] is added to every channel, clipped to the image's range.
    brightness_range : (low, high), optional
        Pixel values are scaled by a factor in [low, high] (PIL's Brightness enhancer).
    horizontal_flip, vertical_flip : bool
        Flip with probability 1/2.
    fill_mode : {"nearest", "constant", "reflect", "wrap"}
    cval : float
        Fill value for ``fill_mode="constant"``.
    rescale : float, optional
        Multiplies pixel values after augmentation (``1./255``).
    preprocessing_function : callable, optional
        Called on each image (H, W, C) after augmentation and before ``rescale``.
    featurewise_center, featurewise_std_normalization : bool
        Per-channel mean / std from :meth:`fit`.
    samplewise_center, samplewise_std_normalization : bool
        Per-image mean / std.
    validation_split : float
        Fraction held out for ``subset="validation"``.
    data_format : "channels_last"
    dtype : str

    Raises
    ------
    ValueError
        For a bad value (the message names the argument), and for arguments that this
        implementation cannot honour: ``zca_whitening``, ``interpolation_order != 1`` and
        ``data_format="channels_first"``.
    """

    def __init__(
        self,
        featurewise_center=False,
        samplewise_center=False,
        featurewise_std_normalization=False,
        samplewise_std_normalization=False,
        zca_whitening=False,
        zca_epsilon=1e-6,
        rotation_range=0,
        width_shift_range=0.0,
        height_shift_range=0.0,
        brightness_range=None,
        shear_range=0.0,
        zoom_range=0.0,
        channel_shift_range=0.0,
        fill_mode="nearest",
        cval=0.0,
        horizontal_flip=False,
        vertical_flip=False,
        rescale=None,
        preprocessing_function=None,
        data_format="channels_last",
        validation_split=0.0,
        interpolation_order=1,
        dtype="float32",
    ):
        if zca_whitening:
            raise ValueError(
                "`zca_whitening` is not supported by cnnlab's ImageDataGenerator: a full "
                "(H*W*C)^2 whitening matrix does not fit the fused GPU pipeline. Use "
                "featurewise_center / featurewise_std_normalization instead."
            )
        if interpolation_order != 1:
            raise ValueError(
                f"`interpolation_order` must be 1 (bilinear, the legacy default); got {interpolation_order!r}"
            )
        if data_format != "channels_last":
            raise ValueError(f"`data_format` must be 'channels_last', got {data_format!r}")
        if not 0 <= validation_split < 1:
            raise ValueError(f"`validation_split` must be in [0, 1), got {validation_split!r}")
        if rescale is not None and (isinstance(rescale, bool) or not isinstance(rescale, (int, float))):
            raise ValueError(f"`rescale` must be a number or None, got {rescale!r}")
        if preprocessing_function is not None and not callable(preprocessing_function):
            raise ValueError(f"`preprocessing_function` must be callable, got {preprocessing_function!r}")
        self.settings = AugmentSettings.from_arguments(
            rotation_range=rotation_range,
            width_shift_range=width_shift_range,
            height_shift_range=height_shift_range,
            shear_range=shear_range,
            zoom_range=zoom_range,
            channel_shift_range=channel_shift_range,
            brightness_range=brightness_range,
            horizontal_flip=horizontal_flip,
            vertical_flip=vertical_flip,
            fill_mode=fill_mode,
            cval=cval,
        )
        # As in legacy: std normalisation implies centring.
        self.featurewise_center = bool(featurewise_center or featurewise_std_normalization)
        self.featurewise_std_normalization = bool(featurewise_std_normalization)
        self.samplewise_center = bool(samplewise_center or samplewise_std_normalization)
        self.samplewise_std_normalization = bool(samplewise_std_normalization)
        self.rescale = rescale
        self.preprocessing_function = preprocessing_function
        self.validation_split = validation_split
        self.dtype = dtype
        self.mean = None
        self.std = None

    # ---- statistics -------------------------------------------------------------------
    def fit(self, x, augment: bool = False, rounds: int = 1, seed: int | None = None) -> None:
        """Compute the per-channel mean and std used by the featurewise options.

        ``x`` is (N, H, W, C); ``rescale`` is applied first, as in legacy. With ``augment``,
        statistics are computed over ``rounds`` augmented copies.
        """
        x = np.asarray(x, dtype="float32")
        if x.ndim != 4:
            raise ValueError(f"`x` must have rank 4 (N, H, W, C), got shape {x.shape}")
        if augment:
            x = np.concatenate([self.augment(x, seed=(seed or 0, r)).numpy() for r in range(rounds)])
        if self.rescale:
            x = x * self.rescale
        self.mean = x.mean(axis=(0, 1, 2)).reshape(1, 1, -1)
        self.std = x.std(axis=(0, 1, 2)).reshape(1, 1, -1)

    # ---- the legacy single-image API --------------------------------------------------
    def get_random_transform(self, img_shape, seed: int | None = None) -> dict:
        """Random parameters for one image of shape (H, W, C), as a legacy params dict."""
        seed = int(np.random.default_rng().integers(2**31)) if seed is None else seed
        params = sample_parameters(self.settings, stateless_uniforms(1, (seed, 0)), img_shape[0], img_shape[1])
        result = {key: float(params[key][0]) if key in params else None for key in LEGACY_KEYS}
        result["flip_horizontal"] = bool(result["flip_horizontal"])
        result["flip_vertical"] = bool(result["flip_vertical"])
        return result

    def apply_transform(self, x, transform_parameters: dict) -> np.ndarray:
        """Apply a legacy params dict to one image (H, W, C); returns a float32 array."""
        x = np.asarray(x, dtype="float32")
        if x.ndim != 3:
            raise ValueError(f"`x` must be one image (H, W, C), got shape {x.shape}")
        defaults = {
            "theta": 0.0,
            "tx": 0.0,
            "ty": 0.0,
            "shear": 0.0,
            "zx": 1.0,
            "zy": 1.0,
            "flip_horizontal": 0.0,
            "flip_vertical": 0.0,
        }
        params = {}
        for key in LEGACY_KEYS:
            value = transform_parameters.get(key, defaults.get(key))
            if value is not None:
                params[key] = tf.constant([float(value)], tf.float32)
        geometric = any(params[k].numpy()[0] != v for k, v in defaults.items())
        images = transform_batch(x[None], params, self.settings.fill_mode, self.settings.cval, geometric)
        return images[0].numpy()

    def random_transform(self, x, seed: int | None = None) -> np.ndarray:
        """A randomly transformed copy of one image (H, W, C)."""
        return self.apply_transform(x, self.get_random_transform(np.shape(x), seed))

    def standardize(self, x):
        """Apply preprocessing_function, rescale and the sample/feature-wise normalisation to a
        batch (N, H, W, C), in the legacy order. Returns a new tensor; ``x`` is not modified."""
        x = tf.cast(x, tf.float32)
        if self.preprocessing_function is not None:
            x = tf.stack([tf.cast(self.preprocessing_function(image.numpy()), tf.float32) for image in x])
        return self._normalise_compiled(x, *self._normalisation_constants())

    def _normalisation_constants(self):
        if (self.featurewise_center or self.featurewise_std_normalization) and self.mean is None:
            raise ValueError(
                "featurewise_center / featurewise_std_normalization need statistics: call .fit(x_train) first"
            )
        mean = self.mean if self.featurewise_center else np.zeros((1, 1, 1))
        divisor = self.std + 1e-6 if self.featurewise_std_normalization else np.ones((1, 1, 1))
        return (
            tf.constant(self.rescale or 1.0, tf.float32),
            tf.constant(mean, tf.float32),
            tf.constant(divisor, tf.float32),
        )

    def _normalise(self, x, scale, mean, divisor):
        x = x * scale
        if self.samplewise_center:
            x = x - tf.reduce_mean(x, axis=(1, 2, 3), keepdims=True)
        if self.samplewise_std_normalization:
            x = x / (tf.math.reduce_std(x, axis=(1, 2, 3), keepdims=True) + 1e-6)
        return (x - mean) / divisor

    @tf.function(jit_compile=True)
    def _normalise_compiled(self, x, scale, mean, divisor):
        return self._normalise(x, scale, mean, divisor)

    # ---- batches ----------------------------------------------------------------------
    def augment(self, images, seed: tuple[int, int]):
        """Random transforms for a batch (N, H, W, C), reproducible for a given two-integer seed."""
        return self._augment_compiled(tf.cast(images, tf.float32), tf.constant(seed, tf.int64))

    def _sample(self, images, seed):
        uniforms = tf.random.stateless_uniform((tf.shape(images)[0], N_UNIFORMS), seed=seed)
        return sample_parameters(self.settings, uniforms, images.shape[1], images.shape[2])

    def _augment(self, images, seed):
        params = self._sample(images, seed)
        return transform_batch(images, params, self.settings.fill_mode, self.settings.cval, self.settings.is_geometric)

    @tf.function(jit_compile=True)
    def _augment_compiled(self, images, seed):
        return self._augment(images, seed)

    @tf.function(jit_compile=True)
    def _augment_and_normalise_compiled(self, images, seed, scale, mean, divisor):
        # Sampling, the single resampling pass, channel shift, brightness and rescaling are
        # compiled together by XLA, so the pointwise steps ride along with the resampling.
        # Large batches that need a per-image reduction go through in cache-sized chunks.
        params = self._sample(images, seed)

        def augment_and_normalise(chunk_images, chunk_params):
            augmented = transform_batch(
                chunk_images, chunk_params, self.settings.fill_mode, self.settings.cval, self.settings.is_geometric
            )
            return self._normalise(augmented, scale, mean, divisor)

        chunk = cache_sized_chunk(self.settings, *images.shape[:3])
        if chunk is None:
            return augment_and_normalise(images, params)
        return in_chunks(augment_and_normalise, images, params, chunk)

    def augment_and_standardize(self, images, seed: tuple[int, int]):
        """What one training batch goes through: :meth:`augment`, then :meth:`standardize`."""
        if self.preprocessing_function is not None:
            return self.standardize(self.augment(images, seed))
        images = tf.cast(images, tf.float32)
        return self._augment_and_normalise_compiled(
            images, tf.constant(seed, tf.int64), *self._normalisation_constants()
        )

    def flow(
        self,
        x,
        y=None,
        batch_size: int = 32,
        shuffle: bool = True,
        seed: int | None = None,
        subset: str | None = None,
        sample_weight=None,
    ):
        """Batches of augmented ``x`` (N, H, W, C) with labels ``y``, for ``model.fit``.

        Returns an :class:`~cnnlab.augment.iterators.ArrayIterator` (a ``keras.utils.PyDataset``).
        ``subset="validation"`` takes the first ``validation_split`` of the samples, as in
        legacy; ``"training"`` the rest.
        """
        return ArrayIterator(
            self, x, y, batch_size=batch_size, shuffle=shuffle, seed=seed, subset=subset, sample_weight=sample_weight
        )

    def flow_from_directory(
        self,
        directory,
        target_size=(256, 256),
        color_mode="rgb",
        classes=None,
        class_mode="categorical",
        batch_size: int = 32,
        shuffle: bool = True,
        seed: int | None = None,
        subset: str | None = None,
        interpolation: str = "nearest",
    ):
        """Batches of augmented images from ``directory/<class>/<image>``, for ``model.fit``.

        Unreadable files are skipped with one warning (see :func:`cnnlab.data.scan_image_folder`).
        Returns a :class:`~cnnlab.augment.iterators.DirectoryIterator` with ``class_indices``,
        ``classes``, ``filenames`` and ``samples``.
        """
        return DirectoryIterator(
            self,
            directory,
            target_size=target_size,
            color_mode=color_mode,
            classes=classes,
            class_mode=class_mode,
            batch_size=batch_size,
            shuffle=shuffle,
            seed=seed,
            subset=subset,
            interpolation=interpolation,
        )

    def as_layer(self, seed: int | None = None, name: str = "augmentation"):
        """The same random transforms as a Keras layer, active only when ``training=True``.

        Put it first in a model so that augmentation runs inside ``fit`` on the GPU. It does
        the random part only (geometry, channel shift, brightness); keep ``rescale`` as a
        ``keras.layers.Rescaling`` layer, which also applies at inference.
        """
        from cnnlab.augment.layer import RandomImageTransform

        if self.preprocessing_function is not None or self.samplewise_center or self.featurewise_center:
            raise ValueError(
                "as_layer() covers the random transforms only; preprocessing_function and the "
                "sample/feature-wise normalisations have no layer form here. Add Keras layers "
                "(Rescaling, Normalization) for those."
            )
        return RandomImageTransform(self.settings, seed=seed, name=name)
