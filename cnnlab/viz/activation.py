"""Class-activation maps (Grad-CAM): where in an image the evidence for a class lies.

Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks via Gradient-based
Localization", ICCV 2017. For the feature maps ``A`` of shape (h, w, C) of the last
convolutional layer and the class score ``y`` (before the softmax), each channel's weight is
the spatial mean of ``dy/dA[..., k]``, and the map is ``relu(sum_k weight_k * A[..., k])``.
With a classifier that is global average pooling and one Dense layer, this is the class
activation map of Zhou et al. (CVPR 2016): ``relu(A @ W[:, class])``.
"""

from __future__ import annotations

import keras
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from cnnlab.viz.common import MISTAKE_COLOR, OK_COLOR, as_image_batch, as_labels, class_name, grid


def class_activation_maps(feature_model, classifier, images, classes=None) -> tuple[np.ndarray, np.ndarray]:
    """Grad-CAM maps of a network split at its last convolutional feature maps.

    Parameters
    ----------
    feature_model : keras.Model
        Images (N, H, W, channels) -> feature maps (N, h, w, C).
    classifier : keras.Model
        Feature maps -> class probabilities (N, classes); its last layer must be a Dense
        layer, whose score before the activation is the one explained.
    images : array of shape (N, H, W, channels)
        Model inputs (preprocessed as ``feature_model`` expects).
    classes : array of N class indices, optional
        The class to explain for each image; default the predicted one.

    Returns
    -------
    maps : array of shape (N, h, w)
        Each map scaled to [0, 1] (all zeros where no location has positive evidence).
    probabilities : array of shape (N, classes)
    """
    import tensorflow as tf

    last = classifier.layers[-1]
    if not isinstance(last, keras.layers.Dense):
        raise ValueError(
            f"class_activation_maps: the classifier must end with a Dense layer, got {type(last).__name__}"
        )
    before_last = keras.Model(classifier.inputs, last.input)
    features = tf.convert_to_tensor(feature_model(np.asarray(images, dtype="float32"), training=False))
    if features.shape.rank != 4:
        raise ValueError(f"class_activation_maps: `feature_model` must output (N, h, w, C), got {features.shape}")
    probabilities = classifier(features, training=False).numpy()
    chosen = probabilities.argmax(axis=1) if classes is None else as_labels(classes, len(probabilities), "classes")
    with tf.GradientTape() as tape:
        tape.watch(features)
        scores = tf.matmul(before_last(features, training=False), last.kernel) + last.bias
        chosen_scores = tf.gather(scores, chosen, axis=1, batch_dims=1)
    gradients = tape.gradient(chosen_scores, features)
    weights = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)
    maps = tf.nn.relu(tf.reduce_sum(weights * features, axis=-1)).numpy()
    peaks = maps.max(axis=(1, 2), keepdims=True)
    return np.divide(maps, peaks, out=np.zeros_like(maps), where=peaks > 0), probabilities


def show_class_activation(
    feature_model,
    classifier,
    images,
    pixels=None,
    labels=None,
    class_names=None,
    ncols: int = 4,
    alpha: float = 0.5,
    size: float = 2.4,
) -> Figure:
    """Each image with its Grad-CAM map for the predicted class laid over it.

    Parameters
    ----------
    feature_model, classifier : keras.Model
        The network split at its last convolutional feature maps (see
        :func:`class_activation_maps`): for a transfer model, the pretrained base and the new head.
    images : array of shape (N, H, W, channels)
        Model inputs.
    pixels : array of shape (N, H, W, 3), optional
        The same images for display (uint8, or floats in [0, 1] or [0, 255]); default ``images``.
    labels : array of N class indices, optional
        The true classes; a wrong prediction gets a red title.
    class_names : list of str, optional
    ncols : int
        Images per row.
    alpha : float
        Opacity of the map, in [0, 1].

    Returns
    -------
    matplotlib.figure.Figure
        Titles give the predicted class and its probability (and the true class when it differs).
    """
    if not 0 <= alpha <= 1:
        raise ValueError(f"show_class_activation: `alpha` must be in [0, 1], got {alpha!r}")
    maps, probabilities = class_activation_maps(feature_model, classifier, images)
    shown = as_image_batch(images if pixels is None else pixels, "pixels")
    if len(shown) != len(maps):
        raise ValueError(f"show_class_activation: {len(shown)} pixel images for {len(maps)} model inputs")
    labels = as_labels(labels, len(maps), "labels")
    rows, cols = grid(len(maps), ncols)
    figure, axes = plt.subplots(rows, cols, figsize=(size * cols, size * rows + 0.3 * rows), squeeze=False)
    for index, ax in enumerate(axes.flat):
        ax.axis("off")
        if index >= len(maps):
            continue
        height, width = shown[index].shape[:2]
        ax.imshow(shown[index], cmap="gray" if shown[index].ndim == 2 else None, vmin=0, vmax=1)
        extent = (-0.5, width - 0.5, height - 0.5, -0.5)  # the coarse map stretched over the whole image
        ax.imshow(maps[index], cmap="jet", alpha=alpha, extent=extent, vmin=0, vmax=1, interpolation="bilinear")
        predicted = int(probabilities[index].argmax())
        title = f"{class_name(predicted, class_names)} {probabilities[index, predicted]:.0%}"
        wrong = labels is not None and labels[index] != predicted
        if wrong:
            title += f"\n(true: {class_name(labels[index], class_names)})"
        ax.set_title(title, fontsize=9, color=MISTAKE_COLOR if wrong else OK_COLOR)
    figure.tight_layout()
    return figure
