"""Labelled images for the NASB pipelines: the input convention read from the data, seeded subsets, halves.

The networks here are built for the data (their stem reads ``in_channels``, their head ``num_classes``), so
the input convention comes from the images: ``(C, H, W)`` of the training images, mean/std of the family the
data belongs to: scikit-learn digits (``--data demo``, 1x8x8) use the demo net's constants, 3-channel images
the ImageNet constants that every CIFAR model of this package was trained with (so the searched net, the
Bi-Real baseline and a ResNet teacher read identical tensors). Only small images (decoded into memory,
CIFAR size) are accepted: a DARTS cell network at ImageNet resolution is not what these pipelines train.
"""

from __future__ import annotations

import torch

from ..data import ImageBatches, ImageSet, open_images
from ..errors import ConfigError, DataError
from ..models.demo_net import DIGITS_MEAN, DIGITS_STD
from ..models.registry import IMAGENET_MEAN, IMAGENET_STD, ModelCfg

CONSTANTS = {1: (DIGITS_MEAN, DIGITS_STD), 3: (IMAGENET_MEAN, IMAGENET_STD)}


def open_split(spec: str, split: str) -> ImageSet:
    """``open_images(spec, split)``: grey for ``demo``, RGB otherwise; the images must be in memory."""
    imageset = open_images(spec, split=split, channels=1 if spec == "demo" else 3)
    if imageset.images is None:
        raise DataError(
            f"data {spec} holds large images (decoded lazily); NASB trains on small images such as CIFAR's 32x32"
        )
    return imageset


def input_cfg(imageset: ImageSet) -> ModelCfg:
    """The input convention of a network trained on ``imageset`` (see the module docstring)."""
    assert imageset.images is not None
    c, h, w = (int(s) for s in imageset.images.shape[1:])
    mean, std = CONSTANTS[c]
    return ModelCfg(len(imageset.classes), (c, h, w), mean, std, family="nasb")


def check_same_task(train: ImageSet, test: ImageSet, test_spec: str) -> None:
    """The evaluation set must have the training set's classes and image size."""
    assert train.images is not None and test.images is not None
    if train.classes != test.classes or train.images.shape[1:] != test.images.shape[1:]:
        raise ConfigError(
            f"evaluation data {test_spec} does not match the training data ({len(test.classes)} classes of "
            f"{tuple(test.images.shape[1:])} vs {len(train.classes)} of {tuple(train.images.shape[1:])}); "
            "pass the test set of the same task"
        )


def subset(imageset: ImageSet, index: torch.Tensor, tag: str) -> ImageSet:
    """The images at ``index`` (an in-memory :class:`ImageSet`)."""
    assert imageset.images is not None
    return ImageSet(
        imageset.labels[index], imageset.classes, images=imageset.images[index], origin=f"{imageset.origin}{tag}"
    )


def take(imageset: ImageSet, n: int, seed: int) -> ImageSet:
    """``n`` images drawn without replacement with ``seed`` (all when ``n`` is 0 or at least the set's size)."""
    if n <= 0 or n >= len(imageset):
        return imageset
    order = torch.randperm(len(imageset), generator=torch.Generator().manual_seed(seed))
    return subset(imageset, order[:n], f"[{n} of {len(imageset)}, seed {seed}]")


def halves(imageset: ImageSet, seed: int) -> tuple[ImageSet, ImageSet]:
    """Two disjoint random halves (DARTS: weights learn on one, alphas on the other)."""
    order = torch.randperm(len(imageset), generator=torch.Generator().manual_seed(seed))
    half = len(imageset) // 2
    if half < 2:
        raise DataError(f"data {imageset.origin} has {len(imageset)} images; a search needs at least 4")
    return subset(imageset, order[:half], "[half 1]"), subset(imageset, order[half : 2 * half], "[half 2]")


def train_batches(imageset: ImageSet, cfg: ModelCfg, batch_size: int, augment: bool, seed: int, rank: int = 0,
                  world_size: int = 1) -> ImageBatches:
    """Shuffled, optionally augmented (random crop with 4-pixel padding + flip) batches; the last partial
    batch is dropped (BN needs more than one image). Under torchrun each rank takes its share of every pass."""
    if batch_size < 2 or batch_size > len(imageset):
        raise ConfigError(
            f"batch_size={batch_size} does not fit {len(imageset)} training images; use 2..{len(imageset)}"
        )
    if len(imageset) // batch_size < world_size:
        raise ConfigError(f"{len(imageset)} training images give fewer batches of {batch_size} than the "
                          f"{world_size} processes; use a smaller batch or fewer processes")
    return ImageBatches(imageset, cfg, batch_size, shuffle=True, augment=augment, seed=seed, drop_last=True,
                        rank=rank, world_size=world_size)
