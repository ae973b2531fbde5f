"""Plots for seeing what a ConvNet does. Every function returns a matplotlib Figure and never calls plt.show()."""

from cnnlab.viz.activation import class_activation_maps, show_class_activation
from cnnlab.viz.arithmetic_figure import conv_arithmetic_figure
from cnnlab.viz.filters import filter_response, show_feature_maps, show_filter_response, show_kernels
from cnnlab.viz.images import show_augmentations, show_images, show_misclassified
from cnnlab.viz.optimizers import plot_optimizer_paths
from cnnlab.viz.training import (
    LivePlot,
    accuracy_vs_shift,
    confusion_counts,
    confusion_matrix,
    plot_accuracy_vs_shift,
    plot_history,
    shift_images,
)

__all__ = [
    "LivePlot",
    "accuracy_vs_shift",
    "class_activation_maps",
    "confusion_counts",
    "confusion_matrix",
    "conv_arithmetic_figure",
    "filter_response",
    "plot_accuracy_vs_shift",
    "plot_history",
    "plot_optimizer_paths",
    "shift_images",
    "show_augmentations",
    "show_class_activation",
    "show_feature_maps",
    "show_filter_response",
    "show_images",
    "show_kernels",
    "show_misclassified",
]
