"""ImageNet-size image folders, decoded on every core: a torch ``DataLoader`` whose worker processes open each
file with PIL and apply the standard evaluation transform of the model's config.

The transform is torchvision's ``Resize(round(size / crop_pct), interpolation)`` + ``CenterCrop(size)`` on PIL
images, written out here: the shorter side becomes ``resize = round(size / crop_pct)`` and the longer one
``int(resize * long / short)`` (PIL's resampling filters antialias), then the centre ``size`` x ``size`` is cut at
``round((H - size) / 2)``, ``round((W - size) / 2)``. Workers hand back uint8 crops (a quarter of the bytes of
float ones); the caller scales them to [0, 1] as ``ToTensor`` does (``x.float() / 255``), so a batch equals
torchvision's ``ImageFolder`` + ``Resize`` + ``CenterCrop`` + ``ToTensor`` bit for bit.

With ``workers = n`` decoding runs in n processes beside the model, so a 50,000-image evaluation is bounded by
decoding on all cores rather than by one Python loop.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..errors import ConfigError, DataError
from .sources import _open_image

INTERPOLATIONS = ("bilinear", "bicubic")


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one, else the machine's count)."""
    if hasattr(os, "sched_getaffinity"):
        return max(len(os.sched_getaffinity(0)), 1)
    return os.cpu_count() or 1


@dataclass(frozen=True)
class CenterCropTransform:
    """PIL image -> uint8 (C, size, size): convert to RGB/L, resize the shorter side to ``resize``, centre crop."""

    size: int
    resize: int
    interpolation: str = "bilinear"
    channels: int = 3

    @classmethod
    def for_model(cls, cfg, interpolation: str | None = None) -> CenterCropTransform:
        """The evaluation transform of a :class:`~nascomp.models.ModelCfg` (``interpolation`` overrides its own)."""
        channels, size, _ = cfg.input_size
        mode = interpolation or cfg.interpolation
        if mode not in INTERPOLATIONS:
            raise ConfigError(f"interpolation {mode!r} is not one of {', '.join(INTERPOLATIONS)}")
        return cls(size, round(size / cfg.crop_pct), mode, channels)

    def __call__(self, img) -> torch.Tensor:
        from PIL import Image

        img = img.convert("L" if self.channels == 1 else "RGB")
        w, h = img.size
        short, long = min(w, h), max(w, h)
        new_long = int(self.resize * long / short)
        new_w, new_h = (self.resize, new_long) if w <= h else (new_long, self.resize)
        if (new_w, new_h) != (w, h):
            resample = Image.Resampling.BICUBIC if self.interpolation == "bicubic" else Image.Resampling.BILINEAR
            img = img.resize((new_w, new_h), resample)
        top, left = int(round((new_h - self.size) / 2.0)), int(round((new_w - self.size) / 2.0))
        img = img.crop((left, top, left + self.size, top + self.size))
        arr = np.asarray(img, dtype=np.uint8)
        arr = arr[:, :, None] if arr.ndim == 2 else arr
        return torch.from_numpy(arr.copy()).permute(2, 0, 1).contiguous()


class FileImages(Dataset):
    """Item ``i`` = ``transform`` of the image file ``files[i]`` (uint8 tensor); labels stay with the caller."""

    def __init__(self, files: Sequence[Path], transform: CenterCropTransform):
        self.files, self.transform = list(files), transform

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> torch.Tensor:
        with _open_image(self.files[i]) as img:
            try:
                return self.transform(img)
            except (OSError, ValueError) as e:  # truncated or corrupt pixel data: PIL decodes lazily
                raise DataError(f"image {self.files[i]} cannot be decoded ({str(e)[:80] or type(e).__name__}); "
                                "remove or replace it") from None


def file_batches(files: Sequence[Path], batches: Sequence[Sequence[int]], transform: CenterCropTransform,
                 workers: int | None = None, quiet: bool = True, desc: str = "eval") -> Iterator[torch.Tensor]:
    """Float (B, C, size, size) batches in [0, 1] of ``files[batch]`` for each index list in ``batches``, in
    order, decoded by ``workers`` processes (default: every available core; 0 = in this process), with a tqdm
    bar on stderr unless ``quiet``."""
    from tqdm.auto import tqdm

    from ..engine.progress import bars_shown

    workers = available_cores() if workers is None else workers
    if workers < 0:
        raise ConfigError(f"workers must be >= 0, got {workers}")
    loader = DataLoader(FileImages(files, transform), batch_sampler=[list(b) for b in batches],
                        num_workers=workers)
    bar = tqdm(loader, desc=desc, total=len(batches), unit="batch", disable=not bars_shown(quiet), leave=False,
               dynamic_ncols=True, file=sys.stderr)
    try:
        for x in bar:
            yield x.float().div_(255.0)
    except DataError as e:  # from a worker, the message carries its traceback: keep the user's line only
        raise DataError(str(e).strip().splitlines()[-1].split("DataError: ", 1)[-1]) from None
