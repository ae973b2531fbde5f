"""Data augmentation: the lectures' ImageDataGenerator on TensorFlow ops, and AlexNet's recipe."""

from cnnlab.augment.alexnet import AlexNetCrop, PCALighting, pca_lighting_components
from cnnlab.augment.generator import ImageDataGenerator
from cnnlab.augment.iterators import ArrayIterator, DirectoryIterator
from cnnlab.augment.layer import RandomImageTransform

__all__ = [
    "AlexNetCrop",
    "ArrayIterator",
    "DirectoryIterator",
    "ImageDataGenerator",
    "PCALighting",
    "RandomImageTransform",
    "pca_lighting_components",
]
