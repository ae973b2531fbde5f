"""What a convolution layer holds and does: its kernels, its feature maps, one filter's response."""

from __future__ import annotations

import keras
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from cnnlab.viz.common import as_image_batch, grid


def _kernel_array(layer_or_weights) -> np.ndarray:
    if isinstance(layer_or_weights, keras.layers.Layer):
        if not isinstance(layer_or_weights, keras.layers.Conv2D) or not layer_or_weights.built:
            raise ValueError(
                f"`layer_or_weights` must be a built Conv2D layer, got {layer_or_weights.__class__.__name__}"
            )
        return np.asarray(layer_or_weights.kernel)
    if isinstance(layer_or_weights, (list, tuple)):
        layer_or_weights = layer_or_weights[0]  # [kernel, bias] from get_weights()
    kernel = np.asarray(layer_or_weights, dtype="float32")
    if kernel.ndim == 2:
        kernel = kernel[:, :, None, None]
    if kernel.ndim != 4:
        raise ValueError(f"`layer_or_weights` must be a Conv2D kernel (kh, kw, in, out), got shape {kernel.shape}")
    if np.isnan(kernel).any():
        raise ValueError("`layer_or_weights` contains NaN values")
    return kernel


def show_kernels(layer_or_weights, max_filters: int = 64, ncols: int = 8) -> Figure:
    """The filters of a Conv2D layer, on one symmetric colour scale shared by all of them.

    A first layer with 3 input channels is shown as one RGB picture per filter (0 maps to
    mid-grey); otherwise each filter gets one panel per input channel (rows: filters,
    columns: input channels), in a blue-white-red map centred on 0.

    Parameters
    ----------
    layer_or_weights : keras.layers.Conv2D, or kernel array (kh, kw, in, out), or [kernel, bias]
    max_filters : int
        At most this many filters are drawn; the title says when some are left out.
    """
    kernel = _kernel_array(layer_or_weights)
    kh, kw, channels, filters = kernel.shape
    shown = min(filters, max_filters)
    limit = float(np.abs(kernel).max()) or 1.0
    note = f" (first {shown} of {filters})" if shown < filters else ""
    if channels == 3:
        rows, cols = grid(shown, ncols)
        figure, axes = plt.subplots(rows, cols, figsize=(1.2 * cols, 1.2 * rows + 0.5), squeeze=False)
        for index, ax in enumerate(axes.flat):
            ax.axis("off")
            if index < shown:
                ax.imshow(kernel[:, :, :, index] / (2 * limit) + 0.5, interpolation="nearest")
                ax.set_title(str(index), fontsize=7)
        figure.suptitle(f"{filters} kernels {kh}x{kw}x3 as RGB, scale ±{limit:.3g}{note}", fontsize=10)
        return figure
    shown_channels = min(channels, ncols)
    figure, axes = plt.subplots(
        shown, shown_channels, figsize=(1.0 * shown_channels + 1, 1.0 * shown + 0.6), squeeze=False
    )
    for f in range(shown):
        for c in range(shown_channels):
            ax = axes[f, c]
            image = ax.imshow(kernel[:, :, c, f], cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if f == 0:
                ax.set_title(f"in {c}", fontsize=7)
            if c == 0:
                ax.set_ylabel(f"filter {f}", fontsize=7)
    figure.colorbar(image, ax=axes, shrink=0.6)
    channel_note = f", first {shown_channels} of {channels} input channels" if shown_channels < channels else ""
    figure.suptitle(f"{filters} kernels {kh}x{kw}x{channels}{note}{channel_note}", fontsize=10)
    return figure


def show_feature_maps(model: keras.Model, layer_names, image, max_channels: int = 16, ncols: int = 8) -> Figure:
    """Activations of the named layers for one image: one panel per channel.

    Parameters
    ----------
    model : keras.Model
    layer_names : str or list of str
    image : array (H, W, C) or (1, H, W, C), already preprocessed as the model expects
    max_channels : int
        Channels drawn per layer; the row title notes how many were left out.
    """
    names = [layer_names] if isinstance(layer_names, str) else list(layer_names)
    if not names:
        raise ValueError("`layer_names` is empty; name at least one layer")
    known = [layer.name for layer in model.layers]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(f"`layer_names`: no layer named {unknown} in model {model.name!r}; layers are {known}")
    batch = np.asarray(image, dtype="float32")
    batch = batch[None] if batch.ndim == 3 else batch
    if batch.ndim != 4 or batch.shape[0] != 1:
        raise ValueError(f"`image` must be one image (H, W, C) or (1, H, W, C), got shape {np.shape(image)}")
    if np.isnan(batch).any():
        raise ValueError("`image` contains NaN values")
    probe = keras.Model(model.inputs, [model.get_layer(name).output for name in names])
    outputs = probe.predict(batch, verbose=0)
    outputs = outputs if isinstance(outputs, list) else [outputs]
    layout = []
    for name, activation in zip(names, outputs, strict=True):
        if activation.ndim != 4:
            raise ValueError(
                f"`layer_names`: layer {name!r} outputs shape {activation.shape[1:]}, not feature maps (H, W, C)"
            )
        channels = activation.shape[-1]
        shown = min(channels, max_channels)
        layout.append((name, activation[0], channels, shown, grid(shown, ncols)))
    total_rows = sum(rows for *_, (rows, _) in layout)
    cols = max(c for *_, (_, c) in layout)
    figure = plt.figure(figsize=(1.3 * cols, 1.3 * total_rows + 0.5 * len(layout)))
    subfigures = figure.subfigures(len(layout), 1, height_ratios=[rows for *_, (rows, _) in layout], squeeze=False)
    for subfigure, (name, maps, channels, shown, (rows, _)) in zip(subfigures[:, 0], layout, strict=True):
        axes = subfigure.subplots(rows, cols, squeeze=False)
        for index, ax in enumerate(axes.flat):
            ax.axis("off")
            if index < shown:
                ax.imshow(maps[:, :, index], cmap="viridis")
        note = f" (showing {shown} of {channels} channels)" if shown < channels else ""
        subfigure.suptitle(f"{name}: {maps.shape[0]}x{maps.shape[1]}x{channels}{note}", fontsize=10)
    return figure


def filter_response(image, kernel) -> np.ndarray:
    """Cross-correlate a grayscale image (H, W) with a 2-D kernel, as Keras Conv2D does ('same' padding)."""
    import tensorflow as tf

    image = np.asarray(image, dtype="float32")
    kernel = np.asarray(kernel, dtype="float32")
    return tf.nn.conv2d(image[None, :, :, None], kernel[:, :, None, None], strides=1, padding="SAME").numpy()[
        0, :, :, 0
    ]


def show_filter_response(image, kernel, title: str | None = None) -> Figure:
    """Input, kernel and output side by side, for one fixed 2-D kernel on a photo.

    A colour image is converted to grayscale first (ITU-R 601 luma). The kernel panel prints
    each weight; the output is what a Conv2D layer with that kernel (no bias, 'same'
    padding) computes.
    """
    kernel = np.asarray(kernel, dtype="float32")
    if kernel.ndim != 2:
        raise ValueError(f"`kernel` must be a 2-D array (kh, kw), got shape {kernel.shape}")
    if np.isnan(kernel).any():
        raise ValueError("`kernel` contains NaN values")
    picture = as_image_batch(image, "image")
    if len(picture) != 1:
        raise ValueError(f"`image` must be one image, got a batch of {len(picture)}")
    gray = picture[0] if picture.ndim == 3 else picture[0] @ np.array([0.299, 0.587, 0.114], dtype="float32")
    output = filter_response(gray, kernel)
    figure, (left, middle, right) = plt.subplots(1, 3, figsize=(10, 3.6), gridspec_kw={"width_ratios": [3, 2, 3]})
    left.imshow(gray, cmap="gray", vmin=0, vmax=1)
    left.set_title("input")
    limit = float(np.abs(kernel).max()) or 1.0
    middle.imshow(kernel, cmap="RdBu_r", vmin=-limit, vmax=limit)
    for (row, col), value in np.ndenumerate(kernel):
        middle.text(col, row, f"{value:.3g}", ha="center", va="center", fontsize=8)
    middle.set_title(f"kernel {kernel.shape[0]}x{kernel.shape[1]}")
    right.imshow(output, cmap="gray")
    right.set_title(f"output [{output.min():.2f}, {output.max():.2f}]")
    for ax in (left, middle, right):
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return figure
