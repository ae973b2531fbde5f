"""Curves and tables of a training run: learning curves, a live plot, confusion, shift robustness."""

from __future__ import annotations

import os
import time

import keras
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from cnnlab.viz.common import as_labels

UNNAMED = "run"  # the name of a single run given without one


def _as_runs(history_or_histories) -> dict[str, dict[str, list[float]]]:
    """Normalise a History, a dict of metric lists, or a list/dict of those to {run name: metrics}."""

    def metrics_of(item):
        data = item.history if isinstance(item, keras.callbacks.History) else item
        if not isinstance(data, dict):
            raise TypeError(
                f"`history_or_histories`: expected a keras History or a dict of lists, got {type(item).__name__}"
            )
        return data

    if isinstance(history_or_histories, keras.callbacks.History):
        return {UNNAMED: metrics_of(history_or_histories)}
    if isinstance(history_or_histories, dict) and history_or_histories:
        first = next(iter(history_or_histories.values()))
        if isinstance(first, (list, tuple, np.ndarray)):
            return {UNNAMED: history_or_histories}
        return {str(name): metrics_of(item) for name, item in history_or_histories.items()}
    if isinstance(history_or_histories, (list, tuple)) and history_or_histories:
        return {f"run {i + 1}": metrics_of(item) for i, item in enumerate(history_or_histories)}
    raise ValueError("`history_or_histories` is empty; pass model.fit(...)'s History, or several")


def _curve(run: dict, key: str, name: str) -> np.ndarray:
    values = np.asarray(run[key], dtype=float)
    if np.isnan(values).any():
        raise ValueError(f"`history_or_histories`: run {name!r} has NaN in {key!r} (did training diverge?)")
    return values


def _plot_curves(ax, run: dict, metric: str, name: str, color, label: str | None) -> None:
    """The run's training curve (solid) and validation curve (dashed) for one metric."""
    for key, style, suffix in ((metric, "-", "train"), (f"val_{metric}", "--", "val")):
        if key in run:
            values = _curve(run, key, name)
            line_label = suffix if label is None else f"{label} ({suffix})"
            ax.plot(np.arange(1, len(values) + 1), values, style, color=color, label=line_label)


def plot_history(
    history_or_histories, metrics=("loss", "accuracy"), title: str | None = None, max_overlaid: int = 3
) -> Figure:
    """Training (solid) and validation (dashed) curves per metric, one colour per run.

    Up to ``max_overlaid`` runs share one panel per metric. More runs are drawn as small
    multiples, so that their curves do not pile up in one panel: one column per run and one
    row per metric, with the y axis shared along each row and the other runs' validation
    curves in light grey behind each run's own, for comparison.

    Parameters
    ----------
    history_or_histories : History, dict of lists, list of those, or {run name: History}
        What ``model.fit`` returns; several runs are compared, named by the dict's keys.
    metrics : sequence of str
        One panel (row) per metric; ``val_<metric>`` is drawn dashed when present.
    title : str, optional
        The figure's title; default the run's name when there is one named run.
    max_overlaid : int
        The most runs drawn in one panel.

    Returns
    -------
    matplotlib.figure.Figure
    """
    runs = _as_runs(history_or_histories)
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    missing = [m for m in metrics if not any(m in run for run in runs.values())]
    if missing:
        available = sorted({key for run in runs.values() for key in run})
        raise ValueError(f"`metrics`: {missing} not recorded in any run; recorded: {available}")
    if max_overlaid < 1:
        raise ValueError(f"`max_overlaid` must be a positive integer, got {max_overlaid!r}")
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    if len(runs) <= max_overlaid:
        figure, axes = plt.subplots(
            1, len(metrics), figsize=(4.6 * len(metrics) + 1.2, 3.4), squeeze=False, layout="constrained"
        )
        single = len(runs) == 1
        for ax, metric in zip(axes[0], metrics, strict=True):
            for index, (name, run) in enumerate(runs.items()):
                _plot_curves(ax, run, metric, name, colors[index % len(colors)], None if single else name)
            ax.set_title(metric)
        if title is None and single and next(iter(runs)) != UNNAMED:
            title = next(iter(runs))
    else:
        figure, axes = plt.subplots(
            len(metrics),
            len(runs),
            figsize=(2.4 * len(runs) + 0.6, 2.3 * len(metrics) + 0.9),
            squeeze=False,
            sharex=True,
            sharey="row",
            layout="constrained",
        )
        for row, metric in enumerate(metrics):
            for column, (name, run) in enumerate(runs.items()):
                ax = axes[row, column]
                for other_name, other in runs.items():
                    key = f"val_{metric}" if f"val_{metric}" in other else metric
                    if other_name != name and key in other:
                        values = _curve(other, key, other_name)
                        ax.plot(np.arange(1, len(values) + 1), values, color="0.85", linewidth=1, zorder=1)
                _plot_curves(ax, run, metric, name, colors[column % len(colors)], None)
                if row == 0:
                    ax.set_title(name, fontsize=10)
            axes[row, 0].set_ylabel(metric)
    for ax in axes.flat:
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in axes[-1]:
        ax.set_xlabel("epoch")
    if len(runs) > max_overlaid:
        key = [
            Line2D([], [], color="black", linestyle="-", label="train"),
            Line2D([], [], color="black", linestyle="--", label="validation"),
            Line2D([], [], color="0.85", label="the other runs (validation)"),
        ]
        figure.legend(handles=key, loc="outside lower center", ncols=3, fontsize=9, frameon=False)
    else:
        handles, labels = axes[0, 0].get_legend_handles_labels()
        for ax in axes[0, 1:]:  # a metric that only some runs recorded
            more = [(h, lab) for h, lab in zip(*ax.get_legend_handles_labels(), strict=True) if lab not in labels]
            handles += [h for h, _ in more]
            labels += [lab for _, lab in more]
        figure.legend(handles, labels, loc="outside right center", fontsize=8, frameon=False)
    if title:
        figure.suptitle(title)
    return figure


def _in_notebook_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and shell.__class__.__name__ == "ZMQInteractiveShell"


def live_updates_wanted() -> bool:
    """Live redraws only in an interactive notebook: not in scripts, CI, nbval or the grader."""
    if os.environ.get("CI") or os.environ.get("CNNLAB_LIVEPLOT", "1") == "0":
        return False
    return _in_notebook_kernel()


class LivePlot(keras.callbacks.Callback):
    """Learning curves that redraw in place during ``fit`` in an interactive notebook.

    Anywhere else (scripts, CI, nbval, the grader; or ``CNNLAB_LIVEPLOT=0``) it draws nothing
    during training and makes one static figure at the end, kept in ``.figure`` (and shown
    once when running inside a notebook kernel).

    Parameters
    ----------
    metrics : sequence of str
        Passed to :func:`plot_history`.
    min_interval_s : float
        Live mode redraws at most this often, so drawing never dominates an epoch.
    title : str, optional
        The figure's title; default the name of the model being trained (``model.name``).
    """

    def __init__(self, metrics=("loss", "accuracy"), min_interval_s: float = 1.0, title: str | None = None):
        super().__init__()
        self.metrics = metrics
        self.min_interval_s = min_interval_s
        self.title = title
        self.history: dict[str, list[float]] = {}
        self.figure: Figure | None = None
        self._display = None
        self._last_draw = 0.0
        self.live = live_updates_wanted()

    def on_train_begin(self, logs=None):
        self.history = {}
        self._display = None

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        if self.live and time.monotonic() - self._last_draw >= self.min_interval_s:
            self._draw_live()

    def on_train_end(self, logs=None):
        if not self.history:
            return
        self.figure = self._plot()
        plt.close(self.figure)  # keep it out of pyplot's global list; we show it ourselves
        if _in_notebook_kernel():
            from IPython.display import display

            if self._display is not None:
                self._display.update(self.figure)
            else:
                display(self.figure)

    def _title(self) -> str | None:
        """The given title, else the trained model's name (fit sets ``self.model``)."""
        return self.title if self.title is not None else getattr(self.model, "name", None)

    def _plot(self) -> Figure:
        metrics = [m for m in self.metrics if m in self.history]
        title = self._title()
        return plot_history({title or UNNAMED: self.history}, metrics=metrics or sorted(self.history)[:1], title=title)

    def _draw_live(self):
        from IPython.display import display

        figure = self._plot()
        plt.close(figure)
        if self._display is None:
            self._display = display(figure, display_id=True)
        else:
            self._display.update(figure)
        self._last_draw = time.monotonic()


def confusion_counts(y_true, y_pred, num_classes: int | None = None) -> np.ndarray:
    """Counts[i, j] = number of examples of true class i predicted as class j."""
    truth = as_labels(y_true, len(np.asarray(y_true)), "y_true")
    predicted = as_labels(y_pred, len(truth), "y_pred")
    if len(truth) == 0:
        raise ValueError("`y_true` is empty")
    num_classes = num_classes or int(max(truth.max(), predicted.max()) + 1)
    return np.bincount(truth * num_classes + predicted, minlength=num_classes**2).reshape(num_classes, num_classes)


def confusion_matrix(y_true, y_pred, class_names=None, normalize: bool = True) -> Figure:
    """A confusion matrix: colour is the fraction of each true class (row), text gives count and %.

    ``y_true`` and ``y_pred`` are class indices (or one-hot / probability rows).
    """
    num_classes = len(class_names) if class_names is not None else None
    counts = confusion_counts(y_true, y_pred, num_classes)
    n = counts.shape[0]
    names = [str(c) for c in class_names] if class_names is not None else [str(i) for i in range(n)]
    fractions = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    figure, ax = plt.subplots(figsize=(1.0 + 0.6 * n, 0.8 + 0.6 * n))
    image = ax.imshow(fractions if normalize else counts, cmap="Blues", vmin=0, vmax=1 if normalize else counts.max())
    for (i, j), count in np.ndenumerate(counts):
        dark = fractions[i, j] > 0.5
        label = f"{count}\n{fractions[i, j]:.0%}" if normalize else f"{count}"
        ax.text(j, i, label, ha="center", va="center", fontsize=7, color="white" if dark else "black")
    ax.set_xticks(range(n), names, rotation=45, ha="right")
    ax.set_yticks(range(n), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    accuracy = np.trace(counts) / counts.sum()
    ax.set_title(f"confusion matrix (accuracy {accuracy:.2%})")
    figure.colorbar(image, ax=ax, shrink=0.8)
    figure.tight_layout()
    return figure


def shift_images(images, pixels: int, axis: int = 2) -> np.ndarray:
    """Shift a batch (N, H, W[, C]) by ``pixels`` along ``axis`` (2 = right), filling with zeros."""
    images = np.asarray(images)
    shifted = np.zeros_like(images)
    if pixels == 0:
        return images.copy()
    source = [slice(None)] * images.ndim
    target = [slice(None)] * images.ndim
    source[axis] = slice(0, -pixels) if pixels > 0 else slice(-pixels, None)
    target[axis] = slice(pixels, None) if pixels > 0 else slice(0, pixels)
    shifted[tuple(target)] = images[tuple(source)]
    return shifted


def accuracy_vs_shift(model, x, y, shifts=range(0, 7), axis: int = 2) -> list[float]:
    """Test accuracy of ``model`` on ``x`` shifted by each number of pixels in ``shifts``."""
    truth = as_labels(y, len(x), "y")
    return [
        float((np.asarray(model.predict(shift_images(x, s, axis), verbose=0)).argmax(1) == truth).mean())
        for s in shifts
    ]


def plot_accuracy_vs_shift(models: dict, x, y, shifts=range(0, 7), axis: int = 2) -> Figure:
    """Accuracy against the translation of the test images, one line per model.

    Parameters
    ----------
    models : dict of {name: model}
        Anything with ``predict`` returning class probabilities.
    x, y : test images (N, H, W[, C]) and labels
    shifts : iterable of int
        Pixels to shift by (right when ``axis=2``, down when ``axis=1``).
    """
    if not models:
        raise ValueError("`models` is empty; pass {name: model}")
    shifts = list(shifts)
    figure, ax = plt.subplots(figsize=(5.5, 3.6))
    for name, model in models.items():
        ax.plot(shifts, accuracy_vs_shift(model, x, y, shifts, axis), "o-", label=name)
    ax.set_xlabel(f"shift ({'right' if axis == 2 else 'down'}, pixels)")
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title("accuracy vs translation")
    figure.tight_layout()
    return figure
