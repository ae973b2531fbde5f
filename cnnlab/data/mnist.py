"""MNIST from its four official IDX files (LeCun et al., 1998)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from cnnlab.data.arrays import ImageData
from cnnlab.data.errors import CorruptFileError
from cnnlab.data.store import locate

IDX_IMAGES_MAGIC = 0x00000803
IDX_LABELS_MAGIC = 0x00000801


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (gzip-compressed) into a uint8 array.

    Images come back with shape (N, 28, 28), labels with shape (N,).

    Raises
    ------
    CorruptFileError
        If the gzip stream is truncated or the header does not match the data.
    """
    try:
        with gzip.open(path, "rb") as stream:
            raw = stream.read()
    except (EOFError, gzip.BadGzipFile, OSError) as exc:
        raise CorruptFileError(f"{path}: cannot read this gzip file ({exc}).") from exc
    magic = int.from_bytes(raw[0:4], "big")
    if magic == IDX_IMAGES_MAGIC:
        count, rows, cols = (int.from_bytes(raw[i : i + 4], "big") for i in (4, 8, 12))
        shape, offset = (count, rows, cols), 16
    elif magic == IDX_LABELS_MAGIC:
        shape, offset = (int.from_bytes(raw[4:8], "big"),), 8
    else:
        raise CorruptFileError(f"{path}: not an IDX file (magic number {magic:#010x}).")
    expected = offset + int(np.prod(shape))
    if len(raw) != expected:
        raise CorruptFileError(f"{path}: header promises {expected} bytes, the payload has {len(raw)}.")
    return np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(shape)


def load_mnist() -> ImageData:
    """Load all of MNIST: 60,000 training and 10,000 test digits.

    Returns
    -------
    ImageData
        ``x_train`` (60000, 28, 28) uint8, ``y_train`` (60000,) uint8,
        ``x_test`` (10000, 28, 28) uint8, ``y_test`` (10000,) uint8.
        Unpacks as ``(x_train, y_train), (x_test, y_test)``.
    """
    parts = {}
    for stem in (
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ):
        parts[stem] = read_idx(locate("mnist", f"mnist/{stem}.gz"))
    source = locate("mnist", "mnist/t10k-labels-idx1-ubyte.gz").parent
    return ImageData(
        x_train=parts["train-images-idx3-ubyte"],
        y_train=parts["train-labels-idx1-ubyte"],
        x_test=parts["t10k-images-idx3-ubyte"],
        y_test=parts["t10k-labels-idx1-ubyte"],
        class_names=[str(d) for d in range(10)],
        name="mnist",
        subset=False,
        source=str(source),
    )
