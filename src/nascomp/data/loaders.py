"""Batches of normalised images for a model: ``(x - mean) / std`` with the model's own constants.

In-memory image sets are batched by slicing one tensor (no per-item Python work); large image sets
(ImageNet-size files) are decoded by a DataLoader's worker processes, resized and centre-cropped as the
model's config says (:mod:`.folder`).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F

from ..models.registry import ModelCfg
from .folder import CenterCropTransform, file_batches
from .sources import ImageSet


class ImageBatches:
    """Iterate ``(x, y)`` batches of ``imageset`` normalised for ``cfg``.

    ``augment=True`` applies the standard CIFAR augmentation (random crop with 4-pixel zero padding and a
    horizontal flip) per image. ``shuffle`` draws a new order each pass from a generator seeded by ``seed``
    and the pass number, so a resumed run sees the same order. Image files are decoded by ``workers`` processes
    (default: every available core) with the model's resize ``interpolation`` unless one is given here, and
    show a progress bar on stderr unless ``quiet``. Under torchrun, rank ``rank`` of ``world_size`` takes
    batches rank, rank + world_size, ... of that order (the same order on every rank), so the ranks share
    one pass over the images.
    """

    def __init__(self, imageset: ImageSet, cfg: ModelCfg, batch_size: int = 256, shuffle: bool = False,
                 augment: bool = False, seed: int = 0, drop_last: bool = False, workers: int | None = None,
                 interpolation: str | None = None, quiet: bool = True, rank: int = 0, world_size: int = 1):
        self.imageset, self.cfg = imageset, cfg
        self.batch_size, self.shuffle, self.augment, self.seed, self.drop_last = batch_size, shuffle, augment, seed, drop_last
        self.workers, self.quiet = workers, quiet
        self.transform = CenterCropTransform.for_model(cfg, interpolation) if imageset.files is not None else None
        self.rank, self.world_size = rank, world_size
        self.epoch = 0
        self.mean = torch.tensor(cfg.mean).view(1, -1, 1, 1)
        self.std = torch.tensor(cfg.std).view(1, -1, 1, 1)

    def __len__(self) -> int:
        """Batches this rank yields per pass."""
        return -(-(self._batches() - self.rank) // self.world_size)

    def _batches(self) -> int:
        n = len(self.imageset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.imageset)
        gen = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        order = torch.randperm(n, generator=gen) if self.shuffle else torch.arange(n)
        self.epoch += 1
        bs, step = self.batch_size, self.world_size * self.batch_size
        batches = [order[start:start + bs] for start in range(self.rank * bs, self._batches() * bs, step)]
        if self.imageset.files is not None:
            pixels = file_batches(self.imageset.files, [b.tolist() for b in batches], self.transform,
                                  self.workers, self.quiet)
        else:
            pixels = (self._pixels(idx) for idx in batches)
        for idx, x in zip(batches, pixels, strict=True):
            if self.augment:
                x = random_crop_flip(x, gen)
            yield (x - self.mean) / self.std, self.imageset.labels[idx]

    def _pixels(self, idx: torch.Tensor) -> torch.Tensor:
        """In-memory images ``idx`` as float in [0, 1] at the model's input size."""
        c, h, w = self.cfg.input_size
        assert self.imageset.images is not None
        x = self.imageset.images[idx].float().div_(255.0)
        if x.shape[1] != c:
            x = x.mean(1, keepdim=True) if c == 1 else x.expand(-1, c, -1, -1)
        if x.shape[-2:] != (h, w):
            x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False, antialias=True)
        return x


def random_crop_flip(x: torch.Tensor, gen: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Per-image random crop of the zero-padded image (padding ``pad``) and a horizontal flip with p = 0.5."""
    n, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=gen).tolist()
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=gen).tolist()
    flip = torch.rand(n, generator=gen) < 0.5
    out = torch.stack([padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(n)])
    out[flip] = out[flip].flip(-1)
    return out
