"""A drawing of one convolution or pooling step, with the output-size formula filled in."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from cnnlab.arithmetic import output_size


def conv_arithmetic_figure(
    input_size: int = 5, kernel_size: int = 3, stride: int = 1, padding: int = 0, step=(0, 0), operation: str = "conv"
) -> Figure:
    """Input grid (padding shaded), the kernel window at output position ``step``, the output grid.

    Parameters
    ----------
    input_size, kernel_size, stride, padding : int
        W, F, S and P of the lecture's formula (W - F + 2P)/S + 1.
    step : (row, col)
        Which output cell to draw; the window sits at (row*S, col*S) of the padded input.
    operation : str
        A label for the title ("conv", "max pool", ...).
    """
    out = output_size(input_size, kernel_size, stride, padding, layer=operation)
    row, col = step
    if not (0 <= row < out and 0 <= col < out):
        raise ValueError(f"`step` {step!r} is outside the {out}x{out} output")
    padded = input_size + 2 * padding
    figure, (left, right) = plt.subplots(1, 2, figsize=(8, 4.4), gridspec_kw={"width_ratios": [padded, max(out, 1)]})
    for r in range(padded):
        for c in range(padded):
            is_pad = not (padding <= r < padding + input_size and padding <= c < padding + input_size)
            left.add_patch(Rectangle((c, r), 1, 1, facecolor="#dddddd" if is_pad else "#a6cee3", edgecolor="white"))
    left.add_patch(
        Rectangle((col * stride, row * stride), kernel_size, kernel_size, fill=False, edgecolor="#e31a1c", linewidth=3)
    )
    for r in range(out):
        for c in range(out):
            current = (r, c) == (row, col)
            right.add_patch(Rectangle((c, r), 1, 1, facecolor="#e31a1c" if current else "#b2df8a", edgecolor="white"))
    for ax, size, label in (
        (left, padded, f"input {input_size}x{input_size}, padding {padding}"),
        (right, out, f"output {out}x{out}"),
    ):
        ax.set_xlim(0, size)
        ax.set_ylim(size, 0)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(label, fontsize=10)
    figure.suptitle(
        f"{operation}: (W - F + 2P)/S + 1 = ({input_size} - {kernel_size} + 2*{padding})/{stride} + 1 = {out}",
        fontsize=11,
    )
    return figure
