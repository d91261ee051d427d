import io
import tarfile

import pytest
import torch

from image_folders import write_image_folder
from nascomp.cache import cache_dir
from nascomp.data import ImageBatches, open_images
from nascomp.data.sources import CACHE_LAYOUT, file_sha256
from nascomp.errors import DataError
from nascomp.models import create_model
from shared_data import shared_path


def _write_folder(root, classes=("cat", "ant", "dog"), per_class=3, size=8):
    return write_image_folder(root, classes, per_class, size)


def test_image_folder_labels_follow_sorted_class_names(tmp_path):
    imageset = open_images(str(_write_folder(tmp_path / "d")))
    assert imageset.classes == ["ant", "cat", "dog"]
    assert imageset.labels.tolist() == [0] * 3 + [1] * 3 + [2] * 3
    assert imageset.images.shape == (9, 3, 8, 8) and imageset.images.dtype == torch.uint8


def test_single_top_folder_is_descended_into(tmp_path):
    _write_folder(tmp_path / "outer" / "test")
    assert open_images(str(tmp_path / "outer")).classes == ["ant", "cat", "dog"]


def test_tar_gz_is_extracted_into_a_cache_and_read(tmp_path):
    src = _write_folder(tmp_path / "src" / "train")
    archive = tmp_path / "data.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src, arcname="train")
    first = open_images(str(archive))
    again = open_images(str(archive))  # from the decoded cache
    assert first.classes == again.classes == ["ant", "cat", "dog"]
    assert torch.equal(first.images, again.images)


def test_archive_extracted_by_another_process_meanwhile_is_used(tmp_path, monkeypatch):
    """Two runs started side by side on one archive: the one that finishes extracting second keeps the other's
    copy (its own ``os.replace`` onto the existing folder fails) and leaves no temporary folder behind."""
    src = _write_folder(tmp_path / "src" / "train")
    archive = tmp_path / "data.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(src, arcname="train")
    target = cache_dir("archives") / f"{file_sha256(archive)[:20]}-{CACHE_LAYOUT}"
    extract = tarfile.TarFile.extractall

    def extract_while_another_process_finishes(self, path, **kwargs):
        extract(self, path, **kwargs)
        extract(self, target, **kwargs)  # the other process's copy lands first

    monkeypatch.setattr(tarfile.TarFile, "extractall", extract_while_another_process_finishes)
    imageset = open_images(str(archive))
    assert imageset.classes == ["ant", "cat", "dog"] and imageset.images.shape == (9, 3, 8, 8)
    assert not [p.name for p in target.parent.iterdir() if p.name.startswith(".")]


def test_tar_with_an_escaping_member_is_refused(tmp_path):
    archive = tmp_path / "evil.tar"
    with tarfile.open(archive, "w") as tar:
        info = tarfile.TarInfo("../escape.txt")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    with pytest.raises(DataError, match="broken or not a tar"):
        open_images(str(archive))
    assert not (tmp_path.parent / "escape.txt").exists()


def test_broken_archive_and_bad_paths_are_data_errors(tmp_path):
    bad = tmp_path / "x.tar.gz"
    bad.write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(DataError, match="broken"):
        open_images(str(bad))
    with pytest.raises(DataError, match="not found"):
        open_images(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no class folders"):
        open_images(str(tmp_path / "empty"))
    (tmp_path / "noimg" / "a").mkdir(parents=True)
    (tmp_path / "noimg" / "b").mkdir(parents=True)
    with pytest.raises(DataError, match="no images"):
        open_images(str(tmp_path / "noimg"))
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(DataError, match="not a .tar"):
        open_images(str(tmp_path / "file.txt"))


def test_offline_cifar_download_is_a_clear_error(monkeypatch):
    import torchvision

    def refuse(*a, **k):
        raise OSError("network unreachable")

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", refuse)
    with pytest.raises(DataError, match="could not be downloaded.*ImageFolder or tar"):
        open_images("cifar10")


def test_batches_are_normalised_with_the_model_constants(tmp_path):
    imageset = open_images(str(_write_folder(tmp_path / "d", size=32)))
    cfg = create_model("cifar_resnet20").default_cfg
    x, y = next(iter(ImageBatches(imageset, cfg, batch_size=4)))
    raw = imageset.images[:4].float() / 255
    expect = (raw - torch.tensor(cfg.mean).view(1, 3, 1, 1)) / torch.tensor(cfg.std).view(1, 3, 1, 1)
    assert torch.allclose(x, expect) and y.tolist() == [0, 0, 0, 1]


def test_shuffled_augmented_batches_repeat_for_the_same_seed(tmp_path):
    imageset = open_images(str(_write_folder(tmp_path / "d", size=16)))
    cfg = create_model("demo_net").default_cfg
    a = [x for x, _ in ImageBatches(imageset, cfg, 4, shuffle=True, augment=True, seed=3)]
    b = [x for x, _ in ImageBatches(imageset, cfg, 4, shuffle=True, augment=True, seed=3)]
    assert all(torch.equal(p, q) for p, q in zip(a, b, strict=True))


def test_demo_split_is_disjoint_and_fixed():
    test, train = open_images("demo", "test"), open_images("demo", "train")
    assert len(test) + len(train) == 1797
    assert torch.equal(open_images("demo", "test").images, test.images)


def test_cifar10_jpeg_test_set_reads_10000_images_in_label_order():
    imageset = open_images(str(shared_path("data", "cifar10-jpeg", "test.tar.gz")))
    assert len(imageset) == 10_000 and imageset.classes[0] == "airplane" and imageset.classes[9] == "truck"
    assert torch.bincount(imageset.labels).tolist() == [1000] * 10


def test_crop_flip_shifts_within_the_padding_and_mirrors_about_half_of_the_images():
    """Each augmented image is one crop of the 4-pixel-padded image, mirrored or not; shifts and mirrors vary."""
    import torch.nn.functional as F

    from nascomp.data.loaders import random_crop_flip

    x = torch.rand(64, 1, 8, 8, generator=torch.Generator().manual_seed(1)) + 1
    out = random_crop_flip(x, torch.Generator().manual_seed(0), pad=4)
    found = []
    for original, crop in zip(x, out, strict=True):
        matches = [(dy, dx, flip) for flip in (False, True) for dy in range(9) for dx in range(9)
                   if torch.equal(crop, F.pad(original.flip(-1) if flip else original, (4, 4, 4, 4))[:, dy:dy + 8, dx:dx + 8])]
        assert matches, "not a crop of the padded image"
        found.append(matches[0])
    flips = sum(f for _, _, f in found)
    assert 16 < flips < 48 and sum((dy, dx) != (4, 4) for dy, dx, _ in found) > 48


def test_training_batches_are_augmented_when_asked(tmp_path):
    imageset = open_images(str(_write_folder(tmp_path / "d", size=16)))
    cfg = create_model("demo_net").default_cfg
    plain = [x for x, _ in ImageBatches(imageset, cfg, 4, shuffle=True, seed=3)]
    augmented = [x for x, _ in ImageBatches(imageset, cfg, 4, shuffle=True, augment=True, seed=3)]
    assert len(plain) == len(augmented) and not all(torch.equal(p, a) for p, a in zip(plain, augmented, strict=True))
