"""CIFAR-10 (Krizhevsky, 2009): the real 5,000-image subset, or all 60,000 images."""

from __future__ import annotations

import csv
import pickle
import tarfile

import numpy as np
from PIL import Image

from cnnlab.data.arrays import ImageData
from cnnlab.data.errors import CorruptFileError
from cnnlab.data.store import locate

CLASS_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
VARIANTS = ("subset", "full")


def load_cifar10(variant: str = "subset") -> ImageData:
    """Load CIFAR-10 as uint8 arrays.

    Parameters
    ----------
    variant : {"subset", "full"}
        ``"subset"``: 4,000 training and 1,000 test images, the real images of the
        ConvNetJS PNG strips (the first 4,000 of ``data_batch_1``/``_2`` and the first 1,000
        of ``test_batch``). The result has ``subset=True`` and says so in a logged warning.
        ``"full"``: all 50,000 / 10,000 images from the official python archive
        (downloaded on first use, about 163 MB).

    Returns
    -------
    ImageData
        ``x_*`` of shape (N, 32, 32, 3) uint8, ``y_*`` of shape (N,) uint8.
    """
    if variant not in VARIANTS:
        raise ValueError(f"load_cifar10: `variant` must be one of {VARIANTS}, got {variant!r}")
    return _load_subset() if variant == "subset" else _load_full()


def _load_subset() -> ImageData:
    labels_path = locate("cifar10-subset", "cifar10/labels.csv")
    with open(labels_path, newline="") as stream:
        rows = list(csv.DictReader(stream))
    strips = {}
    for name in sorted({row["file"] for row in rows}):
        pixels = np.asarray(Image.open(locate("cifar10-subset", f"cifar10/{name}")).convert("RGB"))
        strips[name] = pixels.reshape(-1, 32, 32, 3)
    split = {"train": ([], []), "test": ([], [])}
    for row in rows:
        images, labels = split[row["split"]]
        images.append(strips[row["file"]][int(row["row"])])
        labels.append(int(row["label"]))
    return ImageData(
        x_train=np.stack(split["train"][0]),
        y_train=np.array(split["train"][1], dtype=np.uint8),
        x_test=np.stack(split["test"][0]),
        y_test=np.array(split["test"][1], dtype=np.uint8),
        class_names=list(CLASS_NAMES),
        name="cifar10-subset",
        subset=True,
        source=str(labels_path.parent),
    )


def _load_full() -> ImageData:
    archive = locate("cifar10", "cifar10/cifar-10-python.tar.gz")
    batches = {}
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar.getmembers():
                stem = member.name.rsplit("/", 1)[-1]
                if stem.startswith(("data_batch_", "test_batch")):
                    # The archive's checksum was verified by locate(), so these pickles are the
                    # official ones; pickle is how the CIFAR authors publish them.
                    batches[stem] = pickle.load(tar.extractfile(member), encoding="bytes")
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise CorruptFileError(f"{archive}: cannot read the CIFAR-10 archive ({exc}).") from exc

    def stack(names):
        data = np.concatenate([batches[n][b"data"] for n in names])
        labels = np.concatenate([batches[n][b"labels"] for n in names]).astype(np.uint8)
        return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels

    x_train, y_train = stack([f"data_batch_{i}" for i in range(1, 6)])
    x_test, y_test = stack(["test_batch"])
    return ImageData(x_train, y_train, x_test, y_test, list(CLASS_NAMES), "cifar10", False, str(archive.parent))
