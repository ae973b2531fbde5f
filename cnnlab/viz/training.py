"""Curves and tables of a training run: learning curves, a live plot, confusion, shift robustness."""

from __future__ import annotations

import os
import time

import keras
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from cnnlab.viz.common import as_labels


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
        return {"run": metrics_of(history_or_histories)}
    if isinstance(history_or_histories, dict) and history_or_histories:
        first = next(iter(history_or_histories.values()))
        if isinstance(first, (list, tuple, np.ndarray)):
            return {"run": history_or_histories}
        return {str(name): metrics_of(item) for name, item in history_or_histories.items()}
    if isinstance(history_or_histories, (list, tuple)) and history_or_histories:
        return {f"run {i + 1}": metrics_of(item) for i, item in enumerate(history_or_histories)}
    raise ValueError("`history_or_histories` is empty; pass model.fit(...)'s History, or several")


def plot_history(history_or_histories, metrics=("loss", "accuracy"), title: str | None = None) -> Figure:
    """Training (solid) and validation (dashed) curves per metric, one colour per run.

    Parameters
    ----------
    history_or_histories : History, dict of lists, list of those, or {run name: History}
        What ``model.fit`` returns; several runs are overlaid with their names in the legend.
    metrics : sequence of str
        One panel per metric; ``val_<metric>`` is drawn dashed when present.
    """
    runs = _as_runs(history_or_histories)
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    missing = [m for m in metrics if not any(m in run for run in runs.values())]
    if missing:
        available = sorted({key for run in runs.values() for key in run})
        raise ValueError(f"`metrics`: {missing} not recorded in any run; recorded: {available}")
    figure, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.6), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, metric in zip(axes[0], metrics, strict=True):
        for index, (name, run) in enumerate(runs.items()):
            color = colors[index % len(colors)]
            for key, style, suffix in ((metric, "-", "train"), (f"val_{metric}", "--", "val")):
                if key in run:
                    values = np.asarray(run[key], dtype=float)
                    if np.isnan(values).any():
                        raise ValueError(
                            f"`history_or_histories`: run {name!r} has NaN in {key!r} (did training diverge?)"
                        )
                    ax.plot(np.arange(1, len(values) + 1), values, style, color=color, label=f"{name} ({suffix})")
        ax.set_xlabel("epoch")
        ax.set_title(metric)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
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
    """

    def __init__(self, metrics=("loss", "accuracy"), min_interval_s: float = 1.0):
        super().__init__()
        self.metrics = metrics
        self.min_interval_s = min_interval_s
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
        metrics = [m for m in self.metrics if m in self.history]
        self.figure = plot_history({"run": self.history}, metrics=metrics or sorted(self.history)[:1])
        plt.close(self.figure)  # keep it out of pyplot's global list; we show it ourselves
        if _in_notebook_kernel():
            from IPython.display import display

            if self._display is not None:
                self._display.update(self.figure)
            else:
                display(self.figure)

    def _draw_live(self):
        from IPython.display import display

        metrics = [m for m in self.metrics if m in self.history]
        figure = plot_history({"run": self.history}, metrics=metrics or sorted(self.history)[:1])
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
