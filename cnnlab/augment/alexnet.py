"""AlexNet's augmentation (Krizhevsky, Sutskever & Hinton, NIPS 2012, section 4.1).

1. Random 224x224 crops of the 256x256 images, and their horizontal reflections; at test
   time, the centre crop.
2. "Fancy PCA" lighting: with p_i and lambda_i the eigenvectors and eigenvalues of the 3x3
   covariance of RGB pixel values over the training set, every pixel of an image gets
   [p1 p2 p3] [a1*l1, a2*l2, a3*l3]^T added, with a_i drawn once per image from a Gaussian
   of mean 0 and standard deviation 0.1.

The scale of the pixel values matters. The shift is a_i times an eigenvalue, a *variance*:
measure the pixels in a unit twice as large and the eigenvalues grow four times, the image
only twice. The paper does not state the unit. The implementation of the recipe that most
others copy, in Facebook's fb.resnet.torch (ImageNet eigenvalues 0.2175, 0.0188, 0.0045),
takes pixels in [0, 1]. Then a_1*l_1 has a standard deviation of
0.1 x 0.2175 = 0.022 of the range, 5.5 grey levels out of 255: a small change of lighting.
With the eigenvalues of 0..255 pixels (about 14,000 on ImageNet, 11,000 on CIFAR-10) the
same formula shifts pixels by a thousand grey levels and more. So here the eigenvalues are
always those of pixels scaled to [0, 1], and the layer scales the shift back to the images'
own range (``value_range``).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from cnnlab.augment.transform import resample

# The variance of any projection u.x of points x in the unit cube [0, 1]^3 (|u| = 1) is at most
# (sqrt(3) / 2)^2: an eigenvalue above it cannot come from pixels scaled to [0, 1].
MAX_UNIT_EIGENVALUE = 0.75


def pca_lighting_components(images, value_range: float = 255.0) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues and eigenvectors of the RGB covariance of pixels scaled to [0, 1].

    Parameters
    ----------
    images : array of shape (N, H, W, 3)
        Training images, RGB, with values from 0 to ``value_range``.
    value_range : float
        The value of white in ``images``: 255 for 8-bit pixels, 1.0 for images already in
        [0, 1]. The pixels are divided by it before the covariance is taken.

    Returns
    -------
    eigenvalues : ndarray of shape (3,)
        Largest first; variances of pixels in [0, 1], so each is at most 0.75.
    eigenvectors : ndarray of shape (3, 3)
        One unit eigenvector per column, in the order of the eigenvalues.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> images = rng.uniform(0, 255, (8, 4, 4, 1)) * np.ones(3)  # grey: R = G = B
    >>> eigenvalues, eigenvectors = pca_lighting_components(images)
    >>> np.round(np.abs(eigenvectors[:, 0]), 3).tolist()  # brightness
    [0.577, 0.577, 0.577]
    """
    pixels = np.asarray(images, dtype="float64")
    if pixels.ndim != 4 or pixels.shape[-1] != 3:
        raise ValueError(f"`images` must be RGB images (N, H, W, 3), got shape {pixels.shape}")
    if isinstance(value_range, bool) or not isinstance(value_range, (int, float)) or not value_range > 0:
        raise ValueError(f"`value_range` must be a positive number (255 or 1.0), got {value_range!r}")
    low, high = float(pixels.min()), float(pixels.max())
    if low < 0 or high > value_range * (1 + 1e-6):
        raise ValueError(
            f"`images` hold values from {low:g} to {high:g}, outside 0..{value_range:g}: "
            "pass the value of white as `value_range` (255 for 8-bit pixels, 1.0 for images in [0, 1])"
        )
    if value_range > 1 and 0 < high <= 1:
        raise ValueError(
            f"`images` hold values from {low:g} to {high:g}, which looks like pixels already in [0, 1], "
            f"while value_range={value_range:g}: pass value_range=1.0"
        )
    covariance = np.cov(pixels.reshape(-1, 3) / value_range, rowvar=False)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    order = np.argsort(eigenvalues)[::-1]
    return eigenvalues[order].astype("float32"), eigenvectors[:, order].astype("float32")


@keras.saving.register_keras_serializable(package="cnnlab")
class PCALighting(keras.layers.Layer):
    """Fancy-PCA lighting noise, one RGB offset per image; the identity at inference.
    (batch, H, W, 3) -> (batch, H, W, 3).

    Parameters
    ----------
    eigenvalues : array of shape (3,)
        From :func:`pca_lighting_components` on the training set: variances of pixels scaled
        to [0, 1] (so at most 0.75 each).
    eigenvectors : array of shape (3, 3)
        One eigenvector per column, from the same call.
    stddev : float
        Standard deviation of the a_i (0.1 in the paper).
    value_range : float
        The value of white in the images the layer receives (255 for 0..255 pixels, 1.0 for
        [0, 1]): the offset p (a * lambda), in [0, 1] units, is multiplied by it.
    seed : int, optional
        Seed of the a_i.
    """

    def __init__(
        self,
        eigenvalues,
        eigenvectors,
        stddev: float = 0.1,
        value_range: float = 255.0,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.eigenvalues = np.asarray(eigenvalues, dtype="float32").reshape(3)
        self.eigenvectors = np.asarray(eigenvectors, dtype="float32").reshape(3, 3)
        if (self.eigenvalues < 0).any() or self.eigenvalues.max() > MAX_UNIT_EIGENVALUE:
            raise ValueError(
                f"`eigenvalues` must be variances of pixels in [0, 1] (each from 0 to {MAX_UNIT_EIGENVALUE}), "
                f"got {self.eigenvalues.tolist()}: take them from pca_lighting_components(images, value_range=...), "
                "which scales the pixels first (eigenvalues of 0..255 pixels would shift them by thousands of grey levels)"
            )
        if stddev < 0:
            raise ValueError(f"`stddev` must be >= 0, got {stddev!r}")
        if isinstance(value_range, bool) or not isinstance(value_range, (int, float)) or not value_range > 0:
            raise ValueError(f"`value_range` must be a positive number (255 or 1.0), got {value_range!r}")
        self.stddev, self.value_range, self.seed = stddev, float(value_range), seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def lighting_shift(self, batch_size):
        """The per-image RGB offsets (batch, 3) in the images' units: value_range * p @ (a * lambda)."""
        alphas = keras.random.normal((batch_size, 3), stddev=self.stddev, seed=self.seed_generator)
        return self.value_range * tf.matmul(alphas * self.eigenvalues, self.eigenvectors, transpose_b=True)

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
            "value_range": self.value_range,
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
