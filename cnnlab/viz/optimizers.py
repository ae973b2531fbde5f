"""Optimizers' paths over a two-weight loss surface, where their steps can be seen."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure


def _as_paths(paths) -> dict[str, np.ndarray]:
    if not isinstance(paths, Mapping) or not paths:
        raise ValueError("`paths` must be a non-empty dict {name: points of shape (steps + 1, 2)}")
    checked = {}
    for name, points in paths.items():
        array = np.asarray(points, dtype=float)
        if array.ndim != 2 or array.shape[1] != 2 or len(array) == 0:
            raise ValueError(
                f"`paths[{name!r}]` must be the points (w0, w1) of each step, shape (steps + 1, 2); got {array.shape}"
            )
        if not np.isfinite(array).all():
            raise ValueError(f"`paths[{name!r}]` has infinite or NaN values (did it diverge?)")
        checked[str(name)] = array
    return checked


def _surface(loss_fn, grid, extent, paths, minimum, resolution):
    """(W0, W1, L) for the contours, from ``loss_fn`` over ``extent`` or from ``grid`` as given."""
    if (loss_fn is None) == (grid is None):
        raise ValueError(
            "give either `loss_fn` (the loss at one point w of shape (2,)) or `grid` (W0, W1, L) for the contours"
        )
    if grid is not None:
        try:
            w0, w1, loss = (np.asarray(a, dtype=float) for a in grid)
        except (TypeError, ValueError) as error:
            raise ValueError(f"`grid` must be three arrays (W0, W1, L), as from np.meshgrid: {error}") from None
        if w0.ndim != 2 or not (w0.shape == w1.shape == loss.shape) or min(w0.shape) < 2:
            raise ValueError(
                f"`grid`: W0, W1 and L must be 2-D arrays of one shape, at least 2x2; got {w0.shape}, {w1.shape}, {loss.shape}"
            )
        return w0, w1, loss
    if not callable(loss_fn):
        raise ValueError(f"`loss_fn` must be a function of w (shape (2,)), got {type(loss_fn).__name__}")
    if extent is None:
        marked = [np.asarray(minimum, dtype=float).reshape(1, 2)] if minimum is not None else []
        points = np.concatenate([*paths.values(), *marked])
        low, high = points.min(axis=0), points.max(axis=0)
        margin = 0.15 * np.maximum(high - low, 1e-3 * np.maximum(np.abs(high), 1.0))
        extent = (low[0] - margin[0], high[0] + margin[0], low[1] - margin[1], high[1] + margin[1])
    if len(extent) != 4 or not (extent[0] < extent[1] and extent[2] < extent[3]):
        raise ValueError(f"`extent` must be (w0_min, w0_max, w1_min, w1_max) with min < max, got {extent!r}")
    w0, w1 = np.meshgrid(np.linspace(extent[0], extent[1], resolution), np.linspace(extent[2], extent[3], resolution))
    loss = np.array([float(loss_fn(np.array([a, b]))) for a, b in zip(w0.ravel(), w1.ravel(), strict=True)])
    return w0, w1, loss.reshape(w0.shape)


def _levels(loss: np.ndarray, count: int) -> np.ndarray:
    """Geometrically spaced for a positive loss (lines in the valley and on the walls), else even."""
    finite = loss[np.isfinite(loss)]
    if finite.size == 0 or finite.min() == finite.max():
        raise ValueError("the loss is constant (or not finite) over the grid: there are no contours to draw")
    if finite.min() >= 0 and finite.max() > 0:
        lowest = max(finite[finite > 0].min(), finite.max() * 1e-4)
        return np.geomspace(lowest, finite.max(), count)
    return np.linspace(finite.min(), finite.max(), count)


def plot_optimizer_paths(
    paths,
    loss_fn: Callable | None = None,
    *,
    grid=None,
    minimum=None,
    extent=None,
    levels: int = 20,
    resolution: int = 150,
    title: str | None = None,
) -> Figure:
    """The steps of several optimizers over the contour lines of a loss of two weights.

    Parameters
    ----------
    paths : dict of {name: points of shape (steps + 1, 2)}
        The weights (w0, w1) before the first step and after each step, for example a list of
        arrays of shape (2,).
    loss_fn : callable, optional
        ``loss_fn(w)`` for one point ``w`` of shape (2,), returning a number. It is evaluated on
        a ``resolution`` x ``resolution`` grid over ``extent``; a second panel then shows the loss
        along each path.
    grid : (W0, W1, L), optional
        The contours' values instead of ``loss_fn``: W0 and W1 as ``np.meshgrid`` makes them, L
        the loss there, all three 2-D arrays of one shape.
    minimum : (w0, w1), optional
        Where the minimum lies; drawn as a star.
    extent : (w0_min, w0_max, w1_min, w1_max), optional
        The area of the contours from ``loss_fn``; default the paths (and the minimum) with a margin.
    levels : int
        Number of contour lines: spaced geometrically when the loss is positive, evenly otherwise.
    resolution : int
        Grid points along each axis when ``loss_fn`` is given.
    title : str, optional
        The figure's title.

    Returns
    -------
    matplotlib.figure.Figure
        Left, the paths on the contours, with equal scales on both axes so that a narrow valley
        looks narrow; right (with ``loss_fn``), the loss after each step, on a log scale when the
        loss is positive.

    Examples
    --------
    >>> import numpy as np
    >>> from cnnlab.viz import plot_optimizer_paths
    >>> def loss(w):
    ...     return 0.5 * (w[0] ** 2 + 25 * w[1] ** 2)
    >>> steps = [np.array([-4.0, 1.0])]
    >>> for _ in range(20):
    ...     steps.append(steps[-1] - 0.07 * np.array([steps[-1][0], 25 * steps[-1][1]]))
    >>> figure = plot_optimizer_paths({"SGD": steps}, loss, minimum=(0, 0))
    """
    paths = _as_paths(paths)
    if int(levels) < 2 or int(resolution) < 2:
        raise ValueError(f"`levels` and `resolution` must be at least 2, got {levels!r} and {resolution!r}")
    w0, w1, loss = _surface(loss_fn, grid, extent, paths, minimum, int(resolution))
    with_loss_panel = loss_fn is not None
    figure, axes = plt.subplots(
        1,
        2 if with_loss_panel else 1,
        figsize=(11, 4.4) if with_loss_panel else (7, 4.4),
        squeeze=False,
        layout="constrained",
        gridspec_kw={"width_ratios": [2, 1]} if with_loss_panel else None,
    )
    surface = axes[0, 0]
    surface.contour(w0, w1, loss, levels=_levels(loss, int(levels)), colors="0.6", linewidths=0.7)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for index, (name, points) in enumerate(paths.items()):
        color = colors[index % len(colors)]
        surface.plot(points[:, 0], points[:, 1], "o-", color=color, markersize=3, linewidth=1.2, label=name)
        surface.plot(*points[0], "s", color=color, markersize=7, markerfacecolor="none")  # where it started
    if minimum is not None:
        surface.plot(*np.asarray(minimum, dtype=float).reshape(2), "*", color="black", markersize=12, label="minimum")
    surface.set(xlim=(w0.min(), w0.max()), ylim=(w1.min(), w1.max()), aspect="equal")
    surface.set_xlabel("$w_0$")
    surface.set_ylabel("$w_1$")
    surface.set_title("paths on the loss's contour lines (squares: starts)")
    surface.legend(fontsize=8)
    if with_loss_panel:
        curves = axes[0, 1]
        all_positive = True
        for index, points in enumerate(paths.values()):
            values = np.array([float(loss_fn(point)) for point in points])
            all_positive &= bool((values > 0).all())
            curves.plot(np.arange(len(values)), values, "o-", color=colors[index % len(colors)], markersize=3)
        if all_positive:
            curves.set_yscale("log")
        curves.set_xlabel("step")
        curves.set_title("loss after each step")
        curves.grid(alpha=0.3)
    if title:
        figure.suptitle(title)
    return figure
