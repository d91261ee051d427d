"""Where images come from: ``demo`` (scikit-learn digits), an ImageFolder directory, a ``.tar``/``.tar.gz`` of
one, or ``cifar10``/``cifar100`` (torchvision download). Every source yields an :class:`ImageSet`: images in
[0, 1] (in memory when small) and integer labels, class index = sorted folder name."""

from __future__ import annotations

import hashlib
import os
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..cache import cache_dir
from ..errors import DataError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".webp", ".tif", ".tiff"}
IN_MEMORY_MAX_PIXELS = 64 * 64  # images up to this size are decoded once and kept as one uint8 tensor
DEMO_TEST_SIZE = 497  # held-out digits for evaluation; the other 1,300 train the demo teacher


@dataclass
class ImageSet:
    """Labelled images: ``images`` uint8 (N, C, H, W) in memory, or ``files`` decoded lazily."""

    labels: torch.Tensor
    classes: list[str]
    images: torch.Tensor | None = None
    files: list[Path] | None = None
    origin: str = ""

    def __len__(self) -> int:
        return len(self.labels)


def open_images(spec: str, split: str = "test", channels: int = 3) -> ImageSet:
    """Resolve ``--data`` to an :class:`ImageSet` (``split`` only matters for demo and cifar10/100)."""
    if spec == "demo":
        return demo_digits(split)
    if spec in ("cifar10", "cifar100"):
        return _torchvision_cifar(spec, split)
    path = Path(spec).expanduser()
    if not path.exists():
        raise DataError(f"data {spec} not found; pass an ImageFolder directory, a .tar/.tar.gz of one, demo or cifar10")
    if path.is_file():
        if not (path.name.endswith((".tar", ".tar.gz", ".tgz"))):
            raise DataError(f"data {spec} is a file but not a .tar/.tar.gz archive; pass an ImageFolder or a tar of one")
        return _archive(path, channels)
    return image_folder(path, channels)


def demo_digits(split: str) -> ImageSet:
    """scikit-learn's bundled 8x8 digits (1,797 images, no download), split once with a fixed permutation."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.from_numpy(np.round(digits.images * 255.0 / 16.0).astype(np.uint8)).unsqueeze(1)
    labels = torch.from_numpy(digits.target.astype(np.int64))
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))
    keep = order[:DEMO_TEST_SIZE] if split == "test" else order[DEMO_TEST_SIZE:]
    return ImageSet(labels[keep], [str(i) for i in range(10)], images=images[keep], origin=f"demo:{split}")


def image_folder(root: Path, channels: int = 3) -> ImageSet:
    """An ImageFolder tree ``root/<class>/<image>``; a single top folder without images is descended into."""
    subdirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    while len(subdirs) == 1 and not any(p.suffix.lower() in IMAGE_SUFFIXES for p in subdirs[0].iterdir()):
        root = subdirs[0]
        subdirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not subdirs:
        raise DataError(f"data folder {root} has no class folders; expected {root}/<class>/<image>.jpg (ImageFolder layout)")
    files, labels = [], []
    for index, folder in enumerate(subdirs):
        found = _image_files(folder)
        files += found
        labels += [index] * len(found)
    if not files:
        raise DataError(f"data folder {root} has class folders but no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    classes = [p.name for p in subdirs]
    imageset = ImageSet(torch.tensor(labels), classes, files=files, origin=str(root))
    with _open_image(files[0]) as first:
        small = first.width * first.height <= IN_MEMORY_MAX_PIXELS
    return _decode_all(imageset, channels) if small else imageset


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def _open_image(path: Path):
    from PIL import Image, UnidentifiedImageError

    try:
        return Image.open(path)
    except (UnidentifiedImageError, OSError) as e:
        raise DataError(f"image {path} cannot be read ({e.__class__.__name__}); remove or replace it") from None


def load_image(path: Path, channels: int) -> torch.Tensor:
    """One image file as uint8 (C, H, W) with ``channels`` = 1 (grey) or 3 (RGB)."""
    with _open_image(path) as img:
        arr = np.asarray(img.convert("L" if channels == 1 else "RGB"))
    arr = arr[:, :, None] if arr.ndim == 2 else arr
    return torch.from_numpy(arr.copy()).permute(2, 0, 1)


def _decode_all(imageset: ImageSet, channels: int) -> ImageSet:
    assert imageset.files is not None
    decoded = [load_image(p, channels) for p in imageset.files]
    shapes = {tuple(t.shape) for t in decoded}
    if len(shapes) > 1:
        raise DataError(f"images in {imageset.origin} differ in size {sorted(shapes)[:2]}; resize them to one size")
    imageset.images = torch.stack(decoded)
    imageset.files = None
    return imageset


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _archive(path: Path, channels: int) -> ImageSet:
    """Extract once (``filter="data"``, safe) into a cache keyed by the archive's sha256; keep decoded pixels.

    Both cache entries appear atomically (``os.replace``), so runs started side by side on one archive share them.
    """
    key = file_sha256(path)[:20]
    target = cache_dir("archives") / key
    decoded = target.with_suffix(f".c{channels}.pt")
    if decoded.is_file():
        blob = torch.load(decoded, weights_only=True)
        return ImageSet(blob["labels"], blob["classes"], images=blob["images"], origin=str(path))
    if not target.is_dir():
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{key}-"))
        try:
            with tarfile.open(path) as tar:
                tar.extractall(tmp, filter="data")
        except (tarfile.TarError, EOFError, OSError, ValueError) as e:
            _remove_tree(tmp)
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise DataError(f"archive {path} is broken or not a tar ({reason}); re-download or re-create it") from None
        try:
            os.replace(tmp, target)
        except OSError:  # another process extracted the same archive meanwhile: use its copy
            _remove_tree(tmp)
            if not target.is_dir():
                raise
    imageset = image_folder(target, channels)
    imageset.origin = str(path)
    if imageset.images is not None:
        blob = {"labels": imageset.labels, "classes": imageset.classes, "images": imageset.images}
        fd, tmp_file = tempfile.mkstemp(dir=target.parent, prefix=f".{key}-", suffix=".pt")
        os.close(fd)
        torch.save(blob, tmp_file)
        os.replace(tmp_file, decoded)  # atomic: a reader beside us never sees half a file
    return imageset


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def _torchvision_cifar(name: str, split: str) -> ImageSet:
    import torchvision

    cls = torchvision.datasets.CIFAR10 if name == "cifar10" else torchvision.datasets.CIFAR100
    try:
        ds = cls(root=str(cache_dir("torchvision")), train=(split == "train"), download=True)
    except Exception as e:  # urllib / ssl / socket errors differ by platform
        raise DataError(
            f"{name} could not be downloaded ({e.__class__.__name__}); offline, pass an ImageFolder or tar instead, "
            "e.g. --data ../shared/data/cifar10-jpeg/test.tar.gz"
        ) from None
    images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()
    return ImageSet(torch.tensor(ds.targets), list(ds.classes), images=images, origin=name)
