"""Conv arithmetic from the lectures: output sizes, parameter counts, activations and MACs.

The formulas, for a square input of width W, a kernel of size F, padding P and stride S:

- output size:  (W - F + 2P) / S + 1, which must be a whole number;
- dilation d widens the kernel to d*(F - 1) + 1;
- parameters of a conv layer:  (F*F*Ci + 1) * Co  (weights plus one bias per filter);
- multiply-accumulates (MACs) of a conv layer:  Ho*Wo*Co * F*F*Ci.

See Dumoulin & Visin, "A guide to convolution arithmetic for deep learning", arXiv:1603.07285.
"""

from __future__ import annotations

import math


def _check_positive_int(name: str, value, layer: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{layer}: `{name}` must be a positive integer, got {value!r}")


def output_size(
    input_size: int,
    kernel_size: int,
    stride: int = 1,
    padding: int | str = 0,
    dilation: int = 1,
    *,
    layer: str = "layer",
    rounding: str = "exact",
) -> int:
    """Spatial output size of a convolution or pooling layer along one axis.

    Parameters
    ----------
    input_size : int
        W, the input width (or height).
    kernel_size : int
        F, the kernel (or pooling window) size.
    stride : int
        S.
    padding : int, "valid" or "same"
        P zeros on each side; "valid" means P = 0; "same" means the Keras rule
        ceil(W / S), whatever the kernel.
    dilation : int
        d; the kernel covers d*(F - 1) + 1 input pixels.
    layer : str
        A name used in error messages.
    rounding : {"exact", "floor"}
        "exact" (the lecture's rule) raises when (W - F + 2P)/S + 1 is not whole;
        "floor" rounds down, as Keras does for "valid".

    Returns
    -------
    int

    Examples
    --------
    >>> output_size(227, 11, stride=4)   # AlexNet CONV1
    55
    >>> output_size(55, 3, stride=2)     # AlexNet POOL1
    27
    """
    for name, value in (
        ("input_size", input_size),
        ("kernel_size", kernel_size),
        ("stride", stride),
        ("dilation", dilation),
    ):
        _check_positive_int(name, value, layer)
    if rounding not in ("exact", "floor"):
        raise ValueError(f"{layer}: `rounding` must be 'exact' or 'floor', got {rounding!r}")
    if padding == "same":
        return math.ceil(input_size / stride)
    if padding == "valid":
        padding = 0
    if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
        raise ValueError(f"{layer}: `padding` must be a non-negative integer, 'valid' or 'same', got {padding!r}")
    effective = dilation * (kernel_size - 1) + 1
    span = input_size - effective + 2 * padding
    if span < 0:
        raise ValueError(
            f"{layer}: the kernel ({effective} pixels wide) does not fit in the padded input "
            f"({input_size} + 2*{padding} = {input_size + 2 * padding})"
        )
    if span % stride and rounding == "exact":
        raise ValueError(
            f"{layer}: output size (W - F + 2P)/S + 1 = ({input_size} - {effective} + 2*{padding})/{stride} + 1 "
            f"= {span / stride + 1:.2f} is not a whole number. Change the padding or use a stride that divides {span}."
        )
    return span // stride + 1


def conv_params(kernel_size: int | tuple[int, int], in_channels: int, filters: int, use_bias: bool = True) -> int:
    """Parameters of a Conv2D layer: (F*F*Ci + 1) * Co, or F*F*Ci*Co without biases.

    >>> conv_params(11, 3, 96)   # AlexNet CONV1; the UT Dallas lecture's (11*11*3)*96 = 35K leaves out the biases
    34944
    """
    kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    return (kh * kw * in_channels + int(use_bias)) * filters


def dense_params(in_units: int, units: int, use_bias: bool = True) -> int:
    """Parameters of a Dense layer: (in + 1) * out.

    >>> dense_params(640 * 480 * 3, 1000)   # one Dense layer on a VGA photo
    921601000
    """
    return (in_units + int(use_bias)) * units


def conv_macs(output_hw: tuple[int, int], kernel_size: int | tuple[int, int], in_channels: int, filters: int) -> int:
    """Multiply-accumulates of a Conv2D layer for one image: Ho*Wo*Co * F*F*Ci."""
    kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    return output_hw[0] * output_hw[1] * filters * kh * kw * in_channels


def activation_bytes(values: int, bytes_per_value: int = 4, backward: bool = False) -> int:
    """Memory for ``values`` activations of one image; doubled when the backward pass keeps gradients."""
    return values * bytes_per_value * (2 if backward else 1)
