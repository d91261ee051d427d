"""Where images come from: ``demo`` (8x8 digits shipped in ``digits.npz``), an ImageFolder directory, a ``.tar``/``.tar.gz`` of
one, or ``cifar10``/``cifar100`` (torchvision download). Every source yields an :class:`ImageSet`: images in
[0, 1] (in memory when small) and integer labels, class index = sorted folder name."""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..cache import cache_dir
from ..errors import DataError
from .archive import disk_error, extract_verified

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".webp", ".tif", ".tiff"}
IN_MEMORY_MAX_PIXELS = 64 * 64  # images up to this size are decoded once and kept as one uint8 tensor
DEMO_TEST_SIZE = 497  # held-out digits for evaluation; the other 1,300 train the demo teacher
DEMO_DIGITS = Path(__file__).with_name("digits.npz")


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
    if not path.is_dir():
        raise DataError(f"data {spec} is neither a folder nor a regular file (a device or a pipe?); pass an "
                        "ImageFolder directory or a .tar/.tar.gz of one")
    return image_folder(path, channels)


def demo_digits(split: str) -> ImageSet:
    """The 8x8 digits shipped with nascomp (``digits.npz``: the UCI optdigits test set as scikit-learn bundles
    it, 1,797 images, pixel counts 0..16; ``scripts/make_demo_digits.py``), split once with a fixed permutation."""
    with np.load(DEMO_DIGITS) as digits:
        counts, target = digits["images"], digits["target"]
    images = torch.from_numpy(np.round(counts.astype(np.float64) * 255.0 / 16.0).astype(np.uint8)).unsqueeze(1)
    labels = torch.from_numpy(target.astype(np.int64))
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))
    keep = order[:DEMO_TEST_SIZE] if split == "test" else order[DEMO_TEST_SIZE:]
    return ImageSet(labels[keep], [str(i) for i in range(10)], images=images[keep], origin=f"demo:{split}")


def image_folder(root: Path, channels: int = 3) -> ImageSet:
    """An ImageFolder tree ``root/<class>/<image>``: class index = position among the sorted class folders,
    empty ones included (their index is kept). A single top folder without images of its own (``test/`` in
    an archive) is descended into. Refused with one line, rather than mislabelled: one class folder only, a
    folder that cannot be read, and a class folder whose images lie in several subfolders (a folder of
    classes one level too high, e.g. an extra top-level folder beside ``test/``)."""
    subdirs = _class_folders(root)
    while len(subdirs) == 1 and not _has_images(subdirs[0]):
        root = subdirs[0]
        subdirs = _class_folders(root)
    if not subdirs:
        raise DataError(f"data folder {root} has no class folders; expected {root}/<class>/<image>.jpg (ImageFolder layout)")
    if len(subdirs) == 1:
        raise DataError(f"data folder {root} has one class folder only ({subdirs[0].name}); an ImageFolder needs "
                        f"one folder per class: pass the folder that holds {root}/<class>/ for every class")
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


IGNORED_FOLDERS = {"__MACOSX"}  # resource forks that macOS adds to archives


def _class_folders(root: Path) -> list[Path]:
    """The visible sub-folders of ``root``, sorted by name; an unreadable ``root`` is one DataError line."""
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
        return [Path(e.path) for e in entries
                if not e.name.startswith(".") and e.name not in IGNORED_FOLDERS and e.is_dir()]
    except OSError as e:
        raise DataError(f"data folder {root} cannot be read ({e.strerror or type(e).__name__}); fix its "
                        "permissions or pass another --data") from None


def _is_image(name: str) -> bool:
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES


def _has_images(folder: Path) -> bool:
    """Whether ``folder`` holds image files directly (not in sub-folders)."""
    try:
        return any(_is_image(e.name) and e.is_file() for e in os.scandir(folder))
    except OSError as e:
        raise DataError(f"data folder {folder} cannot be read ({e.strerror or type(e).__name__}); fix its "
                        "permissions or pass another --data") from None


def _image_files(folder: Path) -> list[Path]:
    """Every image file under the class folder ``folder`` (sorted); an unreadable folder anywhere inside is an
    error naming it (not silently empty), and images spread over several sub-folders with none directly
    inside mean ``folder`` is no class folder."""
    found: list[Path] = []
    holders: set[str] = set()

    def refuse(e: OSError) -> None:
        where = e.filename or folder
        raise DataError(f"class folder {where} cannot be read ({e.strerror or type(e).__name__}); fix its "
                        "permissions or remove it (its images would be missing from its class)")

    for dirpath, dirnames, filenames in os.walk(folder, onerror=refuse):
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and d not in IGNORED_FOLDERS]
        images = [n for n in filenames if _is_image(n)]
        if images:
            holders.add(os.path.relpath(dirpath, folder).split(os.sep)[0])
            found += [Path(dirpath) / n for n in images]
    if "." not in holders and len(holders) > 1:
        shown = ", ".join(sorted(holders)[:3])
        raise DataError(f"data folder {folder.parent}: {folder.name}/ holds folders of images ({shown}, ...) rather "
                        f"than images: it looks like a folder of classes, not a class; pass {folder} itself, or "
                        "remove the extra top-level folder")
    return sorted(found)


def _open_image(path: Path):
    from PIL import Image, UnidentifiedImageError

    try:
        return Image.open(path)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as e:
        raise DataError(f"image {path} cannot be read ({e.__class__.__name__}); remove or replace it") from None


def load_image(path: Path, channels: int) -> torch.Tensor:
    """One image file as uint8 (C, H, W) with ``channels`` = 1 (grey) or 3 (RGB)."""
    with _open_image(path) as img:
        try:
            arr = np.asarray(img.convert("L" if channels == 1 else "RGB"))
        except (OSError, ValueError) as e:  # truncated or corrupt pixel data: PIL decodes lazily
            raise DataError(f"image {path} cannot be decoded ({str(e)[:80] or type(e).__name__}); remove or "
                            "replace it") from None
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


CACHE_LAYOUT = "v2"  # v2: extractions verified completely (entries of v1 may be partial, so they are not reused)


def _archive(path: Path, channels: int) -> ImageSet:
    """Extract once, verified and all-or-nothing (:mod:`.archive`), into a cache keyed by the archive's sha256;
    keep decoded pixels beside it.

    Both cache entries appear atomically (``os.replace``), so runs started side by side on one archive share them.
    """
    try:
        key = f"{file_sha256(path)[:20]}-{CACHE_LAYOUT}"
    except OSError as e:
        raise DataError(f"data {path} cannot be read ({e.strerror or type(e).__name__}); check its permissions") from None
    target = cache_dir("archives") / key
    decoded = target.parent / f"{key}.c{channels}.pt"
    if decoded.is_file():
        try:
            blob = torch.load(decoded, weights_only=True)
            return ImageSet(blob["labels"], blob["classes"], images=blob["images"], origin=str(path))
        except Exception:  # a damaged cache entry is decoded again from the extracted images
            decoded.unlink(missing_ok=True)
    if not target.is_dir():
        extract_verified(path, target)
    imageset = image_folder(target, channels)
    imageset.origin = str(path)
    if imageset.images is not None:
        _save_decoded({"labels": imageset.labels, "classes": imageset.classes, "images": imageset.images}, decoded)
    return imageset


def _save_decoded(blob: dict, path: Path) -> None:
    """Write the decoded pixels atomically (fsync, ``os.replace``); a full disk is one line naming the cache."""
    buffer = io.BytesIO()
    torch.save(blob, buffer)  # in memory first: torch.save turns a failed file write into an opaque RuntimeError
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(fd, "wb") as f:
            f.write(buffer.getbuffer())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # a reader beside us never sees half a file
        tmp = None
    except OSError as e:
        raise disk_error(e, path.parent, buffer.getbuffer().nbytes, "decoded images cannot be cached in") from None
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


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
