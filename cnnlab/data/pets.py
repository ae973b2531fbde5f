"""Oxford-IIIT Pet (Parkhi et al., CVPR 2012) as a cats-vs-dogs class-folder tree."""

from __future__ import annotations

import shutil
import tarfile
from pathlib import Path

import numpy as np

from cnnlab.data.images import ImageFolder, scan_image_folder
from cnnlab.data.manifest import get_asset
from cnnlab.data.store import cache_dir, data_dir, locate

CLASS_NAMES = ["cats", "dogs"]
VARIANTS = ("subset", "full")
EXTRACTED = "oxford_pets/cats_vs_dogs"
STAMP = ".complete"


def load_pets(variant: str = "subset") -> ImageFolder:
    """The Oxford-IIIT Pet photos as two classes, ``cats`` (label 0) and ``dogs`` (label 1).

    Parameters
    ----------
    variant : {"subset", "full"}
        ``"subset"``: 370 real photos, 10 per breed (120 cats, 250 dogs), each checked
        against its SHA-256; the result has ``subset=True``.
        ``"full"``: all 7,390 photos from the official archive (about 790 MB, downloaded on
        first use), sorted by breed name into cats (capitalised names, 12 breeds) and dogs
        (25 breeds). Files that do not decode are skipped with one warning.

    Returns
    -------
    ImageFolder
        File paths, labels and class names; feed it to :func:`cnnlab.data.image_dataset`.
    """
    if variant not in VARIANTS:
        raise ValueError(f"load_pets: `variant` must be one of {VARIANTS}, got {variant!r}")
    return _load_subset() if variant == "subset" else _load_full()


def _load_subset() -> ImageFolder:
    entries = [e for e in get_asset("pets-subset").files if e.path.endswith(".jpg")]
    files = [locate("pets-subset", e.path) for e in entries]
    labels = np.array([CLASS_NAMES.index(p.parent.name) for p in files], dtype=np.int32)
    order = np.lexsort(([p.name for p in files], labels))
    files = [files[i] for i in order]
    return ImageFolder(files[0].parent.parent, list(CLASS_NAMES), files, labels[order], [], subset=True)


def _load_full() -> ImageFolder:
    for root in ([data_dir()] if data_dir() else []) + [cache_dir()]:
        if (root / EXTRACTED / STAMP).is_file():
            return scan_image_folder(root / EXTRACTED, CLASS_NAMES)
    archive = locate("pets", "oxford_pets/images.tar.gz")
    destination = cache_dir() / EXTRACTED
    _extract_as_class_folders(archive, destination)
    return scan_image_folder(destination, CLASS_NAMES)


def _extract_as_class_folders(archive: Path, destination: Path) -> None:
    """Unpack ``images/<Breed>_<n>.jpg`` into ``cats/`` (capitalised breed) and ``dogs/``."""
    partial = destination.with_name(destination.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    for name in CLASS_NAMES:
        (partial / name).mkdir(parents=True)
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar:
            filename = Path(member.name).name
            if not member.isfile() or not filename.lower().endswith(".jpg"):
                continue
            target = partial / ("cats" if filename[0].isupper() else "dogs") / filename
            with tar.extractfile(member) as source, open(target, "wb") as out:
                shutil.copyfileobj(source, out)
    (partial / STAMP).write_text(f"extracted from {archive}\n")
    shutil.rmtree(destination, ignore_errors=True)
    partial.rename(destination)
