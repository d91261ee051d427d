"""Datasets: the built-in demo digits, ImageFolder directories and tars of them, CIFAR via torchvision."""

from .loaders import ImageBatches, random_crop_flip
from .sources import ImageSet, demo_digits, image_folder, open_images

__all__ = ["ImageBatches", "ImageSet", "demo_digits", "image_folder", "open_images", "random_crop_flip"]
