"""The batches that ``flow`` and ``flow_from_directory`` return: ``keras.utils.PyDataset``s
that go straight into ``model.fit``, with ``len()``, ``samples`` and ``class_indices``."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from cnnlab.data.images import scan_image_folder

SUBSETS = (None, "training", "validation")
CLASS_MODES = ("categorical", "binary", "sparse", "input", None)
COLOR_MODES = {"rgb": 3, "grayscale": 1, "rgba": 4}


class _Batches(keras.utils.PyDataset):
    """Shared machinery: seeded shuffling per epoch, and augmentation seeded per batch."""

    def __init__(self, generator, count: int, batch_size: int, shuffle: bool, seed: int | None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"`batch_size` must be a positive integer, got {batch_size!r}")
        if count == 0:
            raise ValueError("there are no samples to iterate over")
        self.generator = generator
        self.n = self.samples = count
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = int(np.random.default_rng().integers(2**31)) if seed is None else int(seed)
        self.epoch = 0
        self._order = self._epoch_order()

    def _epoch_order(self) -> np.ndarray:
        if not self.shuffle:
            return np.arange(self.n)
        return np.random.default_rng([self.seed, self.epoch]).permutation(self.n)

    def __len__(self) -> int:
        return int(np.ceil(self.n / self.batch_size))

    def on_epoch_end(self):
        self.epoch += 1
        self._order = self._epoch_order()

    def _indices(self, index: int) -> np.ndarray:
        if not 0 <= index < len(self):
            raise IndexError(f"batch index {index} out of range for {len(self)} batches")
        return self._order[index * self.batch_size : (index + 1) * self.batch_size]

    def _augment(self, images, index: int):
        seed = (self.seed, self.epoch * len(self) + index)
        return self.generator.augment_and_standardize(images, seed)


class ArrayIterator(_Batches):
    """Batches of (augmented images, labels) from in-memory arrays; see ImageDataGenerator.flow."""

    def __init__(
        self, generator, x, y=None, batch_size=32, shuffle=True, seed=None, subset=None, sample_weight=None, **kwargs
    ):
        x = np.asarray(x)
        if x.ndim != 4:
            raise ValueError(f"`x` must be a batch of images (N, H, W, C), got shape {x.shape}")
        if y is not None and len(y) != len(x):
            raise ValueError(f"`x` and `y` must have the same length, got {len(x)} and {len(y)}")
        if subset not in SUBSETS:
            raise ValueError(f"`subset` must be one of {SUBSETS}, got {subset!r}")
        if subset is not None:
            split = generator.validation_split
            if not split:
                raise ValueError("`subset` needs the generator's `validation_split` to be set")
            cut = int(len(x) * split)  # legacy: the first fraction is the validation set
            part = slice(0, cut) if subset == "validation" else slice(cut, None)
            x = x[part]
            y = None if y is None else np.asarray(y)[part]
            sample_weight = None if sample_weight is None else np.asarray(sample_weight)[part]
        self.x = tf.constant(x, dtype=tf.float32)
        self.y = None if y is None else np.asarray(y)
        self.sample_weight = sample_weight
        super().__init__(generator, len(x), batch_size, shuffle, seed, **kwargs)

    def __getitem__(self, index):
        chosen = self._indices(index)
        images = self._augment(tf.gather(self.x, chosen), index)
        if self.y is None:
            return images
        if self.sample_weight is not None:
            return images, self.y[chosen], self.sample_weight[chosen]
        return images, self.y[chosen]


class DirectoryIterator(_Batches):
    """Batches from a class-folder tree; see ImageDataGenerator.flow_from_directory.

    Attributes follow the legacy iterator: ``filenames`` (relative to ``directory``),
    ``filepaths``, ``classes`` (label per file), ``class_indices``, ``num_classes``,
    ``samples``, ``image_shape``.
    """

    def __init__(
        self,
        generator,
        directory,
        target_size=(256, 256),
        color_mode="rgb",
        classes=None,
        class_mode="categorical",
        batch_size=32,
        shuffle=True,
        seed=None,
        subset=None,
        interpolation="nearest",
        **kwargs,
    ):
        if color_mode not in COLOR_MODES:
            raise ValueError(f"`color_mode` must be one of {sorted(COLOR_MODES)}, got {color_mode!r}")
        if class_mode not in CLASS_MODES:
            raise ValueError(f"`class_mode` must be one of {CLASS_MODES}, got {class_mode!r}")
        if subset not in SUBSETS:
            raise ValueError(f"`subset` must be one of {SUBSETS}, got {subset!r}")
        if subset is not None and not generator.validation_split:
            raise ValueError("`subset` needs the generator's `validation_split` to be set")
        if len(target_size) != 2 or min(target_size) < 1:
            raise ValueError(f"`target_size` must be (height, width), got {target_size!r}")
        folder = scan_image_folder(directory, classes)
        files, labels = [], []
        for label in range(len(folder.class_names)):
            members = [f for f, y in zip(folder.files, folder.labels, strict=True) if y == label]
            cut = int(len(members) * generator.validation_split) if subset else 0
            # legacy: within each class folder, the first fraction of the files is validation
            chosen = members[:cut] if subset == "validation" else members[cut:]
            files += chosen
            labels += [label] * len(chosen)
        self.directory = folder.directory
        self.filepaths = [str(f) for f in files]
        self.filenames = [str(f.relative_to(folder.directory)) for f in files]
        self.classes = np.array(labels, dtype=np.int32)
        self.class_indices = folder.class_indices
        self.num_classes = len(folder.class_names)
        self.class_mode = class_mode
        self.target_size = tuple(target_size)
        self.channels = COLOR_MODES[color_mode]
        self.image_shape = (*self.target_size, self.channels)
        self.interpolation = interpolation
        self.skipped = folder.skipped
        super().__init__(generator, len(files), batch_size, shuffle, seed, **kwargs)

    def _load(self, path: str):
        image = tf.io.decode_image(tf.io.read_file(path), channels=self.channels, expand_animations=False)
        return tf.cast(tf.image.resize(image, self.target_size, method=self.interpolation), tf.float32)

    def __getitem__(self, index):
        chosen = self._indices(index)
        images = self._augment(tf.stack([self._load(self.filepaths[i]) for i in chosen]), index)
        labels = self.classes[chosen]
        if self.class_mode == "categorical":
            return images, np.eye(self.num_classes, dtype="float32")[labels]
        if self.class_mode == "binary":
            return images, labels.astype("float32")
        if self.class_mode == "sparse":
            return images, labels
        if self.class_mode == "input":
            return images, images
        return images
