"""AlexNet's augmentation (Krizhevsky, Sutskever & Hinton, NIPS 2012, section 4.1).

1. Random 224x224 crops of the 256x256 images, and their horizontal reflections; at test
   time, the centre crop.
2. "Fancy PCA" lighting: with p_i and lambda_i the eigenvectors and eigenvalues of the 3x3
   covariance of RGB pixel values over the training set, every pixel of an image gets
   [p1 p2 p3] [a1*l1, a2*l2, a3*l3]^T added, with a_i ~ N(0, 0.1) drawn once per image.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from cnnlab.augment.transform import resample


def pca_lighting_components(images) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (3,) and eigenvectors (3, 3), one per column, of the RGB covariance.

    ``images`` is (N, H, W, 3) in the scale the model will see (AlexNet used 0..255).
    Eigenvalues come largest first.
    """
    pixels = np.asarray(images, dtype="float64")
    if pixels.ndim != 4 or pixels.shape[-1] != 3:
        raise ValueError(f"`images` must be RGB images (N, H, W, 3), got shape {pixels.shape}")
    covariance = np.cov(pixels.reshape(-1, 3), rowvar=False)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    order = np.argsort(eigenvalues)[::-1]
    return eigenvalues[order].astype("float32"), eigenvectors[:, order].astype("float32")


@keras.saving.register_keras_serializable(package="cnnlab")
class PCALighting(keras.layers.Layer):
    """Fancy-PCA lighting noise; the identity at inference.

    Parameters
    ----------
    eigenvalues : (3,) and eigenvectors : (3, 3)
        From :func:`pca_lighting_components` on the training set.
    stddev : float
        Standard deviation of the a_i (0.1 in the paper).
    """

    def __init__(self, eigenvalues, eigenvectors, stddev: float = 0.1, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.eigenvalues = np.asarray(eigenvalues, dtype="float32").reshape(3)
        self.eigenvectors = np.asarray(eigenvectors, dtype="float32").reshape(3, 3)
        if stddev < 0:
            raise ValueError(f"`stddev` must be >= 0, got {stddev!r}")
        self.stddev = stddev
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def lighting_shift(self, batch_size):
        """The per-image RGB offsets (batch, 3): p @ (a * lambda) with a ~ N(0, stddev)."""
        alphas = keras.random.normal((batch_size, 3), stddev=self.stddev, seed=self.seed_generator)
        return tf.matmul(alphas * self.eigenvalues, self.eigenvectors, transpose_b=True)

    def call(self, images, training=None):
        if not training:
            return images
        shift = self.lighting_shift(tf.shape(images)[0])
        return images + tf.cast(shift[:, None, None, :], images.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "eigenvalues": self.eigenvalues.tolist(),
            "eigenvectors": self.eigenvectors.tolist(),
            "stddev": self.stddev,
            "seed": self.seed,
        }


@keras.saving.register_keras_serializable(package="cnnlab")
class AlexNetCrop(keras.layers.Layer):
    """Random ``size`` x ``size`` crops with random horizontal flips when training (a different
    crop per image); the centre crop at inference. (batch, H, W, C) -> (batch, size, size, C).

    Keras's RandomCrop crops every image of a batch at the same place and resizes at
    inference; AlexNet's recipe needs a crop per image and a plain centre crop.
    """

    def __init__(self, size: int = 224, flip: bool = True, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"`size` must be a positive integer, got {size!r}")
        self.size, self.flip, self.seed = size, flip, seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=None):
        height, width = images.shape[1], images.shape[2]
        if height < self.size or width < self.size:
            raise ValueError(
                f"AlexNetCrop: images of {height}x{width} are smaller than the {self.size}x{self.size} crop"
            )
        if not training:
            top, left = (height - self.size) // 2, (width - self.size) // 2
            return images[:, top : top + self.size, left : left + self.size, :]
        batch = tf.shape(images)[0]
        u = keras.random.uniform((batch, 3), seed=self.seed_generator)
        top = tf.floor(u[:, 0] * (height - self.size + 1))
        left = tf.floor(u[:, 1] * (width - self.size + 1))
        flip = tf.cast(u[:, 2] < 0.5, tf.float32) * float(self.flip)
        # A crop is a translation, a flip a reflection: one exact resampling at whole pixels.
        zero, one = tf.zeros_like(top), tf.ones_like(top)
        a0 = 1 - 2 * flip
        a2 = left + flip * (self.size - 1)
        projective = tf.stack([a0, zero, a2, zero, one, top, zero, zero], axis=1)
        output = resample(tf.cast(images, tf.float32), projective, "nearest", 0.0, (self.size, self.size))
        return tf.cast(output, images.dtype)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.size, self.size, input_shape[3])

    def get_config(self):
        return {**super().get_config(), "size": self.size, "flip": self.flip, "seed": self.seed}
