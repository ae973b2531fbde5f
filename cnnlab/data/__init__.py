"""Offline-first datasets: a read-only mirror, then the cache, then a verified download."""

from cnnlab.data.arrays import ImageData
from cnnlab.data.cifar10 import load_cifar10
from cnnlab.data.errors import ChecksumError, CorruptFileError, DataError, DataNotFoundError
from cnnlab.data.imagenet import decode_predictions, imagenet_class_index
from cnnlab.data.images import ImageFolder, SkippedFilesWarning, image_dataset, scan_image_folder
from cnnlab.data.manifest import assets, get_asset
from cnnlab.data.mnist import load_mnist
from cnnlab.data.pets import load_pets
from cnnlab.data.samples import load_sample_image
from cnnlab.data.store import cache_dir, data_dir, locate, locate_asset, offline

__all__ = [
    "ChecksumError",
    "CorruptFileError",
    "DataError",
    "DataNotFoundError",
    "ImageData",
    "ImageFolder",
    "SkippedFilesWarning",
    "assets",
    "cache_dir",
    "data_dir",
    "decode_predictions",
    "get_asset",
    "image_dataset",
    "imagenet_class_index",
    "load_cifar10",
    "load_mnist",
    "load_pets",
    "load_sample_image",
    "locate",
    "locate_asset",
    "offline",
    "scan_image_folder",
]
