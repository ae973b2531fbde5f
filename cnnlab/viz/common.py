"""Input checks and small helpers shared by the plotting functions."""

from __future__ import annotations

import numpy as np

MISTAKE_COLOR = "#c0392b"  # titles of wrong predictions
OK_COLOR = "black"


def as_image_batch(images, argument: str = "images") -> np.ndarray:
    """Return images as a float batch in [0, 1], shape (N, H, W) or (N, H, W, 3).

    Accepts uint8, or floats in [0, 1] or [0, 255]; grayscale or RGB; one image or a batch:
    (H, W), (H, W, 1), (H, W, 3), (N, H, W), (N, H, W, 1), (N, H, W, 3).
    """
    array = np.asarray(images)
    if array.size == 0:
        raise ValueError(f"`{argument}` is empty; give at least one image")
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise ValueError(f"`{argument}` must be numeric, got dtype {array.dtype}")
    if array.ndim == 2 or (array.ndim == 3 and array.shape[-1] in (1, 3)):
        array = array[None]
    if array.ndim == 4 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (3, 4) or (array.ndim == 4 and array.shape[-1] != 3):
        raise ValueError(
            f"`{argument}` must have shape (H, W), (H, W, 1|3), (N, H, W) or (N, H, W, 1|3), got {np.shape(images)}"
        )
    if np.issubdtype(array.dtype, np.floating) and np.isnan(array).any():
        raise ValueError(f"`{argument}` contains NaN values")
    array = array.astype("float32")
    if np.asarray(images).dtype == np.uint8 or array.max() > 1.0:
        array = array / 255.0
    return np.clip(array, 0.0, 1.0)


def as_labels(values, count: int, argument: str) -> np.ndarray | None:
    """Class indices as a 1-D int array of length ``count`` (one-hot rows are argmax-ed)."""
    if values is None:
        return None
    array = np.asarray(values)
    if array.ndim == 2:
        array = array.argmax(axis=1)
    array = array.reshape(-1)
    if len(array) != count:
        raise ValueError(f"`{argument}` has {len(array)} entries but there are {count} images")
    return array.astype(int)


def class_name(index: int, class_names) -> str:
    return str(class_names[index]) if class_names is not None else str(index)


def grid(count: int, ncols: int | None) -> tuple[int, int]:
    """(rows, columns) for ``count`` panels, ``ncols`` per row; ``None``: as near square as possible."""
    if ncols is None:
        ncols = int(np.ceil(np.sqrt(count)))
    if ncols < 1:
        raise ValueError(f"`ncols` must be a positive integer, got {ncols!r}")
    ncols = min(ncols, count)
    return int(np.ceil(count / ncols)), ncols
