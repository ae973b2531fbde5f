"""The container the array loaders return."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

log = logging.getLogger("cnnlab")


@dataclass
class ImageData:
    """Train and test images with their labels, and where they came from.

    Unpacks like ``keras.datasets``::

        (x_train, y_train), (x_test, y_test) = cnnlab.load_mnist()

    Attributes
    ----------
    x_train, x_test : np.ndarray
        uint8 images, shape (N, H, W) for grayscale or (N, H, W, 3) for colour.
    y_train, y_test : np.ndarray
        uint8 class indices, shape (N,).
    class_names : list of str
    name : str
        The manifest asset the data came from.
    subset : bool
        True when this is a subset of the real dataset, not all of it.
    source : str
        The folder the files were read from.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]
    name: str
    subset: bool
    source: str
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.subset:
            log.warning(
                "%s: this is a SUBSET (%d train / %d test images), not the full dataset.",
                self.name,
                len(self.x_train),
                len(self.x_test),
            )

    def __iter__(self):
        yield (self.x_train, self.y_train)
        yield (self.x_test, self.y_test)

    def __repr__(self) -> str:
        kind = "subset" if self.subset else "full dataset"
        return (
            f"ImageData({self.name!r}, {kind}: train {self.x_train.shape}, test {self.x_test.shape}, "
            f"{len(self.class_names)} classes, from {self.source})"
        )
