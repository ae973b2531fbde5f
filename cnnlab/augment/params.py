"""The generator's settings: validated once, then sampled per image with TensorFlow ops.

Every random number of one image comes from one row of uniforms (one column per parameter),
drawn with a stateless seed, so the same seed always gives the same augmentation, on the
CPU or the GPU, inside ``model.fit`` or outside it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf

FILL_MODES = ("nearest", "constant", "reflect", "wrap")
# Column of each parameter in the (batch, N_UNIFORMS) table of uniforms.
COLUMNS = (
    "theta",
    "tx",
    "tx_sign",
    "ty",
    "ty_sign",
    "shear",
    "zx",
    "zy",
    "flip_horizontal",
    "flip_vertical",
    "channel",
    "brightness",
)
N_UNIFORMS = len(COLUMNS)


def _number(name: str, value, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"`{name}` must be a number, got {value!r}")
    if value < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}, got {value!r}")
    return float(value)


def _shift_range(name: str, value):
    """Legacy meaning: float = uniform fraction (or pixels when >= 1), int n = one of 0..n-1 pixels
    with a random sign, list = one of its values with a random sign; values < 1 are fractions."""
    if isinstance(value, (list, tuple, np.ndarray)):
        choices = np.asarray(value, dtype="float32").reshape(-1)
        if choices.size == 0 or (choices < 0).any():
            raise ValueError(f"`{name}` as a list must be non-empty and non-negative, got {value!r}")
        return choices
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"`{name}` must be >= 0, got {value!r}")
        return np.arange(int(value), dtype="float32") if value else 0.0
    return _number(name, value)


@dataclass(frozen=True)
class AugmentSettings:
    """The random-transform part of an ImageDataGenerator, validated."""

    rotation_range: float = 0.0
    width_shift_range: object = 0.0
    height_shift_range: object = 0.0
    shear_range: float = 0.0
    zoom_range: tuple = (1.0, 1.0)
    channel_shift_range: float = 0.0
    brightness_range: tuple | None = None
    horizontal_flip: bool = False
    vertical_flip: bool = False
    fill_mode: str = "nearest"
    cval: float = 0.0

    @classmethod
    def from_arguments(
        cls,
        rotation_range=0,
        width_shift_range=0.0,
        height_shift_range=0.0,
        shear_range=0.0,
        zoom_range=0.0,
        channel_shift_range=0.0,
        brightness_range=None,
        horizontal_flip=False,
        vertical_flip=False,
        fill_mode="nearest",
        cval=0.0,
    ) -> AugmentSettings:
        if isinstance(zoom_range, (list, tuple)):
            if len(zoom_range) != 2:
                raise ValueError(f"`zoom_range` must be a number or a pair (low, high), got {zoom_range!r}")
            low, high = (_number("zoom_range", v) for v in zoom_range)
        else:
            z = _number("zoom_range", zoom_range)
            low, high = 1.0 - z, 1.0 + z
        if not 0 < low <= high:
            raise ValueError(f"`zoom_range` must give 0 < low <= high, got ({low}, {high})")
        if brightness_range is not None:
            if not isinstance(brightness_range, (list, tuple)) or len(brightness_range) != 2:
                raise ValueError(f"`brightness_range` must be a pair (low, high), got {brightness_range!r}")
            brightness_range = tuple(_number("brightness_range", v) for v in brightness_range)
            if brightness_range[0] > brightness_range[1]:
                raise ValueError(f"`brightness_range` must have low <= high, got {brightness_range!r}")
        if fill_mode not in FILL_MODES:
            raise ValueError(f"`fill_mode` must be one of {FILL_MODES}, got {fill_mode!r}")
        return cls(
            rotation_range=_number("rotation_range", rotation_range),
            width_shift_range=_shift_range("width_shift_range", width_shift_range),
            height_shift_range=_shift_range("height_shift_range", height_shift_range),
            shear_range=_number("shear_range", shear_range),
            zoom_range=(low, high),
            channel_shift_range=_number("channel_shift_range", channel_shift_range),
            brightness_range=brightness_range,
            horizontal_flip=bool(horizontal_flip),
            vertical_flip=bool(vertical_flip),
            fill_mode=fill_mode,
            cval=_number("cval", cval, minimum=-np.inf),
        )

    @property
    def is_geometric(self) -> bool:
        """True when some setting moves pixels (and a resampling pass is needed)."""
        shifts = [np.max(s) if np.ndim(s) else s for s in (self.width_shift_range, self.height_shift_range)]
        return (
            bool(self.rotation_range or any(shifts) or self.shear_range or self.zoom_range != (1.0, 1.0))
            or self.horizontal_flip
            or self.vertical_flip
        )


def _shift(uniform, sign_uniform, setting, size: float):
    """One shift per image, in pixels, with the legacy meaning of ``setting``."""
    if np.ndim(setting):
        choices = tf.constant(setting)
        index = tf.minimum(tf.cast(uniform * len(setting), tf.int32), len(setting) - 1)
        value = tf.gather(choices, index) * tf.where(sign_uniform < 0.5, -1.0, 1.0)
        largest = float(np.max(setting))
    else:
        value = (2.0 * uniform - 1.0) * setting
        largest = setting
    return value * size if largest < 1 else value


def sample_parameters(settings: AugmentSettings, uniforms, height: int, width: int) -> dict:
    """Turn a (batch, N_UNIFORMS) table of uniforms in [0, 1) into per-image parameters.

    Returns a dict of float32 tensors of shape (batch,), with the legacy keys: ``theta`` and
    ``shear`` in degrees, ``tx`` (rows) and ``ty`` (columns) in pixels, ``zx``, ``zy``,
    ``flip_horizontal``, ``flip_vertical`` (0 or 1), ``channel_shift_intensity`` and
    ``brightness`` (absent when not configured).
    """
    u = {name: uniforms[:, i] for i, name in enumerate(COLUMNS)}
    s = settings
    low, high = s.zoom_range
    params = {
        "theta": (2.0 * u["theta"] - 1.0) * s.rotation_range,
        "tx": _shift(u["tx"], u["tx_sign"], s.height_shift_range, height),
        "ty": _shift(u["ty"], u["ty_sign"], s.width_shift_range, width),
        "shear": (2.0 * u["shear"] - 1.0) * s.shear_range,
        "zx": low + (high - low) * u["zx"],
        "zy": low + (high - low) * u["zy"],
        "flip_horizontal": tf.cast(u["flip_horizontal"] < 0.5, tf.float32) * float(s.horizontal_flip),
        "flip_vertical": tf.cast(u["flip_vertical"] < 0.5, tf.float32) * float(s.vertical_flip),
    }
    if s.channel_shift_range:
        params["channel_shift_intensity"] = (2.0 * u["channel"] - 1.0) * s.channel_shift_range
    if s.brightness_range is not None:
        b_low, b_high = s.brightness_range
        params["brightness"] = b_low + (b_high - b_low) * u["brightness"]
    return params


def stateless_uniforms(batch: int, seed: tuple[int, int]):
    """A reproducible (batch, N_UNIFORMS) table of uniforms for the given two-integer seed."""
    return tf.random.stateless_uniform((batch, N_UNIFORMS), seed=tf.constant(seed, dtype=tf.int64))
