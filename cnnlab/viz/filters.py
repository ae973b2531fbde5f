"""What a convolution layer holds and does: its kernels, its feature maps, one filter's response."""

from __future__ import annotations

import keras
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

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


def show_kernels(layer_or_weights, max_filters: int = 64, ncols: int | None = None, max_channels: int = 8) -> Figure:
    """The filters of a Conv2D layer, on one symmetric colour scale shared by all of them.

    - 3 input channels (a first layer on RGB images): one RGB picture per filter, 0 at mid-grey.
    - 1 input channel: one panel per filter, in a grid as near square as ``ncols`` allows.
    - otherwise: one row per filter, one column per input channel.

    The last two use a blue-white-red map centred on 0, with one colour bar beside the grid.

    Parameters
    ----------
    layer_or_weights : keras.layers.Conv2D, or kernel array (kh, kw, in, out), or [kernel, bias]
    max_filters : int
        At most this many filters are drawn; the title says when some are left out.
    ncols : int, optional
        Filters per row of the grid (RGB and one-channel kernels); default near square.
    max_channels : int
        Input channels drawn per filter when there are several (not 3).

    Returns
    -------
    matplotlib.figure.Figure
    """
    kernel = _kernel_array(layer_or_weights)
    kh, kw, channels, filters = kernel.shape
    shown = min(filters, max_filters)
    limit = float(np.abs(kernel).max()) or 1.0
    note = f" (first {shown} of {filters})" if shown < filters else ""
    if channels in (1, 3):
        rows, cols = grid(shown, ncols)
        figure, axes = plt.subplots(
            rows, cols, figsize=(0.9 * cols + 1.2, 0.9 * rows + 0.5), squeeze=False, layout="constrained"
        )
        for index, ax in enumerate(axes.flat):
            if index >= shown:
                ax.axis("off")
                continue
            ax.set_xticks([])
            ax.set_yticks([])  # the frame stays: pale kernels would melt into the page
            if channels == 3:
                ax.imshow(kernel[:, :, :, index] / (2 * limit) + 0.5, interpolation="nearest")
            else:
                image = ax.imshow(
                    kernel[:, :, 0, index], cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest"
                )
            ax.set_title(str(index), fontsize=7)
        if channels == 3:
            figure.suptitle(f"{filters} kernels {kh}x{kw}x3 as RGB, scale ±{limit:.3g}{note}", fontsize=10)
            return figure
    else:
        shown_channels = min(channels, max_channels)
        figure, axes = plt.subplots(
            shown,
            shown_channels,
            figsize=(0.9 * shown_channels + 1.4, 0.9 * shown + 0.6),
            squeeze=False,
            layout="constrained",
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
        channel_note = f", first {shown_channels} of {channels} input channels" if shown_channels < channels else ""
        note += channel_note
    # One bar for the whole grid, beside it; no taller than about six panels.
    figure.colorbar(image, ax=axes, shrink=min(0.8, 6 / axes.shape[0]), label="weight")
    figure.suptitle(f"{filters} kernels {kh}x{kw}x{channels}{note}", fontsize=10)
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


def show_filter_response(image, kernel, title: str | None = None, zoom: int | None = None, zoom_at=None) -> Figure:
    """Input, kernel and output for one fixed 2-D kernel on a photo, in full and zoomed in.

    A colour image is converted to grayscale first (ITU-R 601 luma). The output is what a
    Conv2D layer with that kernel (no bias, 'same' padding) computes, drawn on a fixed scale
    so that its greys mean what the input's mean:

    - weights that sum to ``s != 0`` turn a flat region of brightness ``b`` into ``s * b``: the
      output is shown on the input's range times ``s`` (``[0, 1]`` for a blur or a sharpen),
      and values beyond it are clipped;
    - weights that sum to 0 (edges, derivatives) turn flat regions into 0: the output is shown
      on a symmetric range around mid-grey, up to the 98th percentile of ``|output|``.

    A 3x3 kernel changes a full-size photo too little to see, so the second row zooms into the
    square (marked in the first row) where the photo has the most fine detail; for weights
    that sum to 1 it also shows ``output - input``, what the kernel took away or added.

    Parameters
    ----------
    image : array (H, W) or (H, W, 3)
        uint8, or floats in [0, 1] or [0, 255].
    kernel : array (kh, kw)
    title : str, optional
        The figure's title.
    zoom : int, optional
        Side of the zoomed square in pixels; default a sixth of the shorter side, at least 16.
    zoom_at : (row, col), optional
        Top-left corner of the zoomed square; default where the photo has the most fine detail.

    Returns
    -------
    matplotlib.figure.Figure
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
    size = min(gray.shape) // 6 if zoom is None else int(zoom)
    size = min(max(size, 16) if zoom is None else size, *gray.shape)
    if size < 2:
        raise ValueError(f"`zoom` must be at least 2 pixels, got {zoom!r}")
    top, left = _most_detail(gray, size) if zoom_at is None else _checked_corner(zoom_at, size, gray.shape)
    output = filter_response(gray, kernel)
    low, high = _display_range(kernel, output)

    figure, axes = plt.subplots(
        2, 3, figsize=(10, 7), gridspec_kw={"width_ratios": [3, 2, 3]}, layout="constrained", squeeze=False
    )
    (full_in, kernel_ax, full_out), (zoom_in, zoom_diff, zoom_out) = axes
    window = (slice(top, top + size), slice(left, left + size))
    full_in.imshow(gray, cmap="gray", vmin=0, vmax=1)
    full_in.set_title("input")
    full_out.imshow(output, cmap="gray", vmin=low, vmax=high)
    full_out.set_title(f"output [{output.min():.2f}, {output.max():.2f}]\nshown on [{low:.3g}, {high:.3g}]")
    for ax in (full_in, full_out):
        ax.add_patch(Rectangle((left - 0.5, top - 0.5), size, size, fill=False, edgecolor="#e31a1c", linewidth=1.5))
    zoom_in.imshow(gray[window], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    zoom_in.set_title(f"input, {size}x{size} zoom")
    zoom_out.imshow(output[window], cmap="gray", vmin=low, vmax=high, interpolation="nearest")
    zoom_out.set_title(f"output, {size}x{size} zoom")
    limit = float(np.abs(kernel).max()) or 1.0
    kernel_ax.imshow(kernel, cmap="RdBu_r", vmin=-limit, vmax=limit)
    for (row, col), value in np.ndenumerate(kernel):
        dark = abs(value) > 0.6 * limit
        kernel_ax.text(
            col, row, f"{value:.3g}", ha="center", va="center", fontsize=8, color="white" if dark else "black"
        )
    kernel_ax.set_title(f"kernel {kernel.shape[0]}x{kernel.shape[1]}, sum {kernel.sum():.3g}")
    if abs(float(kernel.sum()) - 1.0) < 1e-3:
        change = output[window] - gray[window]
        reach = float(np.abs(change).max()) or 1.0
        zoom_diff.imshow(change, cmap="gray", vmin=-reach, vmax=reach, interpolation="nearest")
        zoom_diff.set_title(f"output - input (±{reach:.2g})")
    else:
        zoom_diff.axis("off")
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        figure.suptitle(title)
    return figure


def _display_range(kernel: np.ndarray, output: np.ndarray) -> tuple[float, float]:
    """Where a filter's output is shown: the input's [0, 1] times the weights' sum, or ±r for a sum of 0."""
    total = float(kernel.sum())
    if abs(total) <= 1e-3 * float(np.abs(kernel).sum()):
        reach = float(np.percentile(np.abs(output), 98)) or float(np.abs(output).max()) or 1.0
        return -reach, reach
    return min(0.0, total), max(0.0, total)


def _most_detail(gray: np.ndarray, size: int) -> tuple[int, int]:
    """Top-left corner of the size x size square with the most fine detail (energy of the Laplacian)."""
    laplacian = np.zeros_like(gray)
    laplacian[1:-1, 1:-1] = (
        4 * gray[1:-1, 1:-1] - gray[:-2, 1:-1] - gray[2:, 1:-1] - gray[1:-1, :-2] - gray[1:-1, 2:]
    ) ** 2
    sums = np.pad(laplacian.cumsum(axis=0).cumsum(axis=1), ((1, 0), (1, 0)))
    windows = sums[size:, size:] - sums[:-size, size:] - sums[size:, :-size] + sums[:-size, :-size]
    top, left = np.unravel_index(int(np.argmax(windows)), windows.shape)
    return int(top), int(left)


def _checked_corner(zoom_at, size: int, shape) -> tuple[int, int]:
    top, left = (int(v) for v in zoom_at)
    if not (0 <= top <= shape[0] - size and 0 <= left <= shape[1] - size):
        raise ValueError(f"`zoom_at` {tuple(zoom_at)!r}: a {size}x{size} square there leaves the {shape} image")
    return top, left
