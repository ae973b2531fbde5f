"""The generator's random transforms as a Keras layer, so they run inside the model."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from cnnlab.augment.params import N_UNIFORMS, AugmentSettings, sample_parameters
from cnnlab.augment.transform import transform_batch


@keras.saving.register_keras_serializable(package="cnnlab")
class RandomImageTransform(keras.layers.Layer):
    """Rotation, shift, shear, zoom, flips, channel shift and brightness in one resampling pass.

    Input and output: (batch, H, W, C) float. Active when ``training=True``; the identity at
    inference. Build it with ``ImageDataGenerator(...).as_layer()``.
    """

    def __init__(self, settings: AugmentSettings | dict, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(settings, dict):
            settings = AugmentSettings.from_arguments(**settings)
        self.settings = settings
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=None):
        if not training:
            return images
        batch = tf.shape(images)[0]
        uniforms = keras.random.uniform((batch, N_UNIFORMS), seed=self.seed_generator)
        height, width = images.shape[1], images.shape[2]
        params = sample_parameters(self.settings, uniforms, height, width)
        output = transform_batch(
            images, params, self.settings.fill_mode, self.settings.cval, self.settings.is_geometric
        )
        return tf.cast(output, images.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        s = dataclasses.asdict(self.settings)
        for key in ("width_shift_range", "height_shift_range"):
            if isinstance(s[key], np.ndarray):
                s[key] = s[key].tolist()
        s["zoom_range"] = list(s["zoom_range"])
        return {**super().get_config(), "settings": s, "seed": self.seed}
