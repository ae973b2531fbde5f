"""Grids of images: a batch with labels, the worst mistakes, and augmentations of one image."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from cnnlab.viz.common import MISTAKE_COLOR, OK_COLOR, as_image_batch, as_labels, class_name, grid


def show_images(
    images, labels=None, predictions=None, class_names=None, ncols: int = 8, titles=None, size: float = 1.6
) -> Figure:
    """A grid of images with titles; titles of wrong predictions are red and bold.

    Parameters
    ----------
    images : array, or list of arrays
        One image or a batch: (H, W), (H, W, 1|3), (N, H, W) or (N, H, W, 1|3); uint8, or
        floats in [0, 1] or [0, 255]. A list may hold images of different sizes.
    labels, predictions : array of N class indices (or one-hot rows), optional
    class_names : list of str, optional
    ncols : int
        Images per row.
    titles : list of str, optional
        Explicit titles, used instead of labels and predictions.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if isinstance(images, (list, tuple)) and len({np.shape(image) for image in images}) > 1:
        batch = [as_image_batch(image, f"images[{i}]")[0] for i, image in enumerate(images)]
    else:
        batch = list(as_image_batch(images))
    count = len(batch)
    labels = as_labels(labels, count, "labels")
    predictions = as_labels(predictions, count, "predictions")
    if titles is not None and len(titles) != count:
        raise ValueError(f"`titles` has {len(titles)} entries but there are {count} images")
    rows, cols = grid(count, ncols)
    figure, axes = plt.subplots(
        rows, cols, figsize=(size * cols, size * rows + 0.4 * rows), squeeze=False, layout="constrained"
    )
    for index, ax in enumerate(axes.flat):
        ax.axis("off")
        if index >= count:
            continue
        ax.imshow(batch[index], cmap="gray" if batch[index].ndim == 2 else None, vmin=0, vmax=1)
        title, wrong = _title(index, labels, predictions, class_names, titles)
        ax.set_title(
            title, fontsize=9, color=MISTAKE_COLOR if wrong else OK_COLOR, fontweight="bold" if wrong else "normal"
        )
    return figure  # constrained layout also makes room for a suptitle added later


def _title(index, labels, predictions, class_names, titles) -> tuple[str, bool]:
    if titles is not None:
        return str(titles[index]), False
    if labels is not None and predictions is not None:
        wrong = labels[index] != predictions[index]
        return (
            f"true: {class_name(labels[index], class_names)}\npred: {class_name(predictions[index], class_names)}",
            wrong,
        )
    if labels is not None:
        return class_name(labels[index], class_names), False
    if predictions is not None:
        return f"pred: {class_name(predictions[index], class_names)}", False
    return "", False


def show_misclassified(model, x, y, n: int = 8, class_names=None, ncols: int = 8) -> Figure:
    """The ``n`` most confidently wrong predictions of ``model`` on ``x``.

    Each title gives the true class and the predicted class with its probability.
    ``model`` is anything with ``predict(x)`` returning class probabilities (N, classes).
    """
    probabilities = np.asarray(model.predict(x, verbose=0))
    truth = as_labels(y, len(probabilities), "y")
    predicted = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != truth)
    if n < 1:
        raise ValueError(f"`n` must be a positive integer, got {n!r}")
    if len(wrong) == 0:
        figure = plt.figure(figsize=(4, 1))
        figure.text(0.5, 0.5, f"no misclassified examples among {len(truth)}", ha="center", va="center")
        return figure
    worst = wrong[np.argsort(-probabilities[wrong, predicted[wrong]], kind="stable")][:n]
    titles = [
        f"true: {class_name(truth[i], class_names)}\npred: {class_name(predicted[i], class_names)} ({probabilities[i, predicted[i]]:.0%})"
        for i in worst
    ]
    figure = show_images(np.asarray(x)[worst], titles=titles, ncols=ncols)
    for ax in figure.axes[: len(worst)]:
        ax.title.set_color(MISTAKE_COLOR)
    figure.suptitle(f"{len(worst)} most confident mistakes ({len(wrong)} wrong of {len(truth)})", fontsize=10)
    return figure


def show_augmentations(generator, image, n: int = 8, ncols: int = 5, seed: int = 0) -> Figure:
    """One image next to ``n`` random augmentations of it (which may change its size, like crops).

    ``generator`` is either an ImageDataGenerator-like object with ``random_transform(x, seed)``
    or a Keras augmentation layer / model called with ``training=True``.
    """
    if n < 1:
        raise ValueError(f"`n` must be a positive integer, got {n!r}")
    original = np.asarray(image, dtype="float32")
    if original.ndim != 3:
        raise ValueError(f"`image` must be one image (H, W, C), got shape {original.shape}")
    if hasattr(generator, "random_transform"):
        variants = [np.asarray(generator.random_transform(original, seed=seed + i)) for i in range(n)]
    elif callable(generator):
        variants = [np.asarray(generator(original[None], training=True))[0] for _ in range(n)]
    else:
        raise TypeError(f"`generator` must have random_transform() or be a Keras layer, got {type(generator).__name__}")
    scale = 255.0 if original.max() > 1.0 else 1.0
    pictures = [np.clip(picture / scale, 0.0, 1.0) for picture in (original, *variants)]  # crops may change the size
    titles = ["original"] + [f"augmented {i + 1}" for i in range(n)]
    return show_images(pictures, titles=titles, ncols=ncols)
