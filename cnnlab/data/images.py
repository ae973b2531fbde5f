"""Image folders in the class-folder layout (``root/<class>/<image>``), with bad files skipped.

Every file is checked once, before training starts: a file that is not an image, or that
does not decode completely, is left out, and one warning lists all of them. Training then
never meets a bad file halfway through an epoch.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

# The formats tf.io.decode_image reads; anything else would fail inside the input pipeline.
DECODABLE_FORMATS = {"JPEG", "PNG", "GIF", "BMP"}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".bmp"}
SPLITS = ("training", "validation")


class SkippedFilesWarning(UserWarning):
    """Some files in an image folder were left out because they are not readable images."""


@dataclass
class ImageFolder:
    """The usable images of a class-folder tree.

    Attributes
    ----------
    directory : Path
    class_names : list of str
        Sorted sub-folder names; the label of a file is the index of its folder here.
    files : list of Path
        Every usable image, sorted by class then by name.
    labels : np.ndarray
        int32 class index of each file, shape (len(files),).
    skipped : list of (Path, reason)
        Files that were left out, and why.
    subset : bool
        True when the folder is a subset of a larger dataset.
    """

    directory: Path
    class_names: list[str]
    files: list[Path]
    labels: np.ndarray
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    subset: bool = False

    @property
    def class_indices(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.class_names)}

    def counts(self) -> dict[str, int]:
        return {name: int(np.sum(self.labels == i)) for i, name in enumerate(self.class_names)}

    def split(self, validation_split: float, subset: str, seed: int = 0) -> tuple[list[Path], np.ndarray]:
        """The files and labels of one side of a seeded, stratified train/validation split.

        ``subset="training"`` and ``subset="validation"`` with the same seed are disjoint and
        together hold every file.
        """
        if not 0 < validation_split < 1:
            raise ValueError(f"`validation_split` must be strictly between 0 and 1, got {validation_split!r}")
        if subset not in SPLITS:
            raise ValueError(f"`subset` must be one of {SPLITS}, got {subset!r}")
        shuffler = np.random.default_rng(seed)
        chosen = []
        for label in range(len(self.class_names)):
            members = np.flatnonzero(self.labels == label)
            members = members[shuffler.permutation(len(members))]
            n_val = int(round(len(members) * validation_split))
            chosen.extend(members[:n_val] if subset == "validation" else members[n_val:])
        chosen = np.sort(np.array(chosen, dtype=int))
        return [self.files[i] for i in chosen], self.labels[chosen]


def check_image(path: Path) -> str | None:
    """Return why ``path`` is not a usable image, or None when it decodes completely."""
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        return f"not an image file (suffix {path.suffix or 'none'!r})"
    try:
        with Image.open(path) as image:
            if image.format not in DECODABLE_FORMATS:
                return f"format {image.format} is not one of {sorted(DECODABLE_FORMATS)}"
            image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        return f"cannot decode: {exc}"
    return None


def scan_image_folder(directory, classes: list[str] | None = None, subset: bool = False) -> ImageFolder:
    """List the usable images below ``directory/<class>/``.

    Parameters
    ----------
    directory : str or Path
        A folder with one sub-folder per class.
    classes : list of str, optional
        The class folders to use, in label order. Default: every sub-folder, sorted.

    Raises
    ------
    FileNotFoundError
        ``directory`` or a named class folder does not exist.
    ValueError
        There are no class folders, or a class folder holds no usable image.

    Warns
    -----
    SkippedFilesWarning
        Once, listing every file that was left out and why.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"`directory` {str(directory)!r} does not exist or is not a folder")
    if classes is None:
        classes = sorted(p.name for p in directory.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise ValueError(
            f"`directory` {str(directory)!r} has no class sub-folders (expected {directory}/<class>/<image>)"
        )
    files, labels, skipped = [], [], []
    for label, name in enumerate(classes):
        folder = directory / name
        if not folder.is_dir():
            raise FileNotFoundError(f"class folder {str(folder)!r} (from `classes`) does not exist")
        usable = 0
        for path in sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")):
            reason = check_image(path)
            if reason:
                skipped.append((path, reason))
                continue
            files.append(path)
            labels.append(label)
            usable += 1
        if usable == 0:
            raise ValueError(f"class folder {str(folder)!r} holds no usable image; remove it or add images")
    if skipped:
        listing = "\n".join(f"  {p}: {why}" for p, why in skipped)
        warnings.warn(
            f"skipped {len(skipped)} unusable file(s) in {directory}:\n{listing}", SkippedFilesWarning, stacklevel=2
        )
    return ImageFolder(directory, list(classes), files, np.array(labels, dtype=np.int32), skipped, subset)


def decode_and_resize(path, image_size: tuple[int, int], channels: int = 3):
    """Read one image file as a float32 tensor of shape (height, width, channels), values 0..255."""
    import tensorflow as tf

    image = tf.io.decode_image(tf.io.read_file(path), channels=channels, expand_animations=False)
    image = tf.image.resize(image, image_size)
    image.set_shape((*image_size, channels))
    return image


def image_dataset(
    folder: ImageFolder,
    image_size: tuple[int, int] = (224, 224),
    batch_size: int = 32,
    shuffle: bool = True,
    seed: int = 0,
    validation_split: float | None = None,
    subset: str | None = None,
):
    """A batched ``tf.data.Dataset`` of (images, labels) from a scanned folder.

    Images are float32 of shape (batch, height, width, 3) with values 0..255 (apply the
    model's own preprocessing); labels are int32 of shape (batch,).
    """
    import tensorflow as tf

    if (validation_split is None) != (subset is None):
        raise ValueError("give both `validation_split` and `subset`, or neither")
    files, labels = (folder.files, folder.labels) if subset is None else folder.split(validation_split, subset, seed)
    paths = tf.data.Dataset.from_tensor_slices(([str(p) for p in files], labels))
    if shuffle:
        paths = paths.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    images = paths.map(lambda p, y: (decode_and_resize(p, image_size), y), num_parallel_calls=tf.data.AUTOTUNE)
    return images.batch(batch_size).prefetch(tf.data.AUTOTUNE)
