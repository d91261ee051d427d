"""Image folders of large images: DataLoader workers, the model's resize/crop, class indices with empty folders."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nascomp.data import ImageBatches, image_folder, open_images
from nascomp.data.folder import CenterCropTransform, available_cores
from nascomp.errors import ConfigError, DataError
from nascomp.models import ModelCfg, create_model
from shared_data import shared_path

# a 32x32 model input: images up to 64x64 pixels would be kept in memory, these (all larger) go through files
SMALL = ModelCfg(3, (3, 32, 32), (0.5, 0.4, 0.3), (0.2, 0.25, 0.3), interpolation="bicubic")
SIZES = [(90, 70), (70, 90), (81, 81), (100, 67), (66, 128)]  # (width, height): landscape, portrait, odd


def _write_folder(root: Path, classes: dict[str, int], sizes=SIZES, mode: str = "RGB") -> Path:
    """``root/<class>/<k>.png`` with ``classes[name]`` random images each (lossless, so any decoder agrees)."""
    rng = np.random.default_rng(0)
    k = 0
    for name, count in classes.items():
        (root / name).mkdir(parents=True)
        for _ in range(count):
            w, h = sizes[k % len(sizes)]
            shape = (h, w, 3) if mode == "RGB" else (h, w)
            Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(root / name / f"{k:03d}.png")
            k += 1
    return root


def _torchvision_reference(root: Path, cfg: ModelCfg, interpolation: str):
    """torchvision's own ImageFolder and evaluation transform, for comparison (not used by nascomp)."""
    from torchvision import datasets
    from torchvision import transforms as T

    mode = T.InterpolationMode.BICUBIC if interpolation == "bicubic" else T.InterpolationMode.BILINEAR
    size = cfg.input_size[1]
    tf = T.Compose([T.Resize(round(size / cfg.crop_pct), interpolation=mode), T.CenterCrop(size), T.ToTensor(),
                    T.Normalize(cfg.mean, cfg.std)])
    return datasets.ImageFolder(str(root), tf, allow_empty=True)


@pytest.mark.parametrize("interpolation", ["bicubic", "bilinear"])
def test_worker_batches_equal_torchvisions_transform_bit_for_bit(tmp_path, interpolation):
    root = _write_folder(tmp_path / "set", {"a": 4, "b": 3, "c": 3})
    imageset = image_folder(root)
    assert imageset.images is None and len(imageset.files) == 10  # large: decoded from files
    reference = _torchvision_reference(root, SMALL, interpolation)
    batches = ImageBatches(imageset, SMALL, batch_size=4, workers=2, interpolation=interpolation)
    xs, ys = zip(*batches, strict=True)
    assert [len(y) for y in ys] == [4, 4, 2]
    expected = torch.stack([reference[i][0] for i in range(10)])
    assert torch.equal(torch.cat(xs), expected)
    assert torch.cat(ys).tolist() == reference.targets


def test_the_model_config_chooses_resize_and_crop():
    cfg = create_model("efficientnet_lite0").default_cfg
    assert CenterCropTransform.for_model(cfg) == CenterCropTransform(224, 256, "bicubic", 3)
    assert CenterCropTransform.for_model(cfg, "bilinear").interpolation == "bilinear"
    with pytest.raises(ConfigError, match="interpolation 'nearest'"):
        CenterCropTransform.for_model(cfg, "nearest")


def test_workers_option_does_not_change_batches_or_order(tmp_path):
    imageset = image_folder(_write_folder(tmp_path / "set", {"a": 3, "b": 4}))
    runs = {w: list(ImageBatches(imageset, SMALL, batch_size=3, shuffle=True, seed=1, workers=w)) for w in (0, 1, 2)}
    for w in (1, 2):
        assert all(torch.equal(x0, x) and torch.equal(y0, y) for (x0, y0), (x, y) in zip(runs[0], runs[w], strict=True))
    assert sorted(torch.cat([y for _, y in runs[0]]).tolist()) == [0, 0, 0, 1, 1, 1, 1]
    assert available_cores() >= 1
    with pytest.raises(ConfigError, match="workers"):
        next(iter(ImageBatches(imageset, SMALL, workers=-1)))


def test_shuffled_file_batches_keep_each_image_with_its_label(tmp_path):
    """Class c's images are all black, class a's all white: the label must follow the pixels through the order."""
    root = tmp_path / "set"
    for name, value in (("a", 255), ("c", 0)):
        (root / name).mkdir(parents=True)
        for k in range(5):
            Image.new("RGB", (80, 80), (value,) * 3).save(root / name / f"{k}.png")
    cfg = ModelCfg(2, (3, 32, 32), (0.0,) * 3, (1.0,) * 3)
    for x, y in ImageBatches(image_folder(root), cfg, batch_size=4, shuffle=True, seed=3, workers=1):
        assert torch.equal(x.mean((1, 2, 3)), 1.0 - y.float())


def test_progress_bar_on_stderr_unless_quiet(tmp_path, capsys):
    from nascomp.engine.progress import set_progress_mode

    imageset = image_folder(_write_folder(tmp_path / "set", {"a": 1, "b": 1}))
    set_progress_mode("on")  # pytest's stderr is no terminal: as --progress on
    try:
        list(ImageBatches(imageset, SMALL, workers=0, quiet=True))
        assert capsys.readouterr().err == ""
        list(ImageBatches(imageset, SMALL, workers=0, quiet=False))
        assert "eval" in capsys.readouterr().err
    finally:
        set_progress_mode("auto")


def test_a_broken_image_is_one_line_data_error_from_a_worker(tmp_path):
    root = _write_folder(tmp_path / "set", {"a": 2, "b": 1})
    (root / "a" / "zzz.png").write_bytes(b"not an image")
    with pytest.raises(DataError, match=r"zzz.png cannot be read") as info:
        list(ImageBatches(image_folder(root), SMALL, workers=1))
    assert "\n" not in str(info.value)


def test_empty_class_folders_keep_their_index(tmp_path):
    root = _write_folder(tmp_path / "set", {"a": 2, "b": 0, "c": 2, "d": 0, "e": 1})
    imageset = image_folder(root)
    assert imageset.classes == ["a", "b", "c", "d", "e"]
    assert imageset.labels.tolist() == [0, 0, 2, 2, 4]
    assert imageset.labels.tolist() == _torchvision_reference(root, SMALL, "bilinear").targets


def test_imagenet_sample_has_1000_classes_and_the_standard_indices():
    imageset = open_images(str(shared_path("data", "imagenet-val1300", "val.tar.gz")))
    assert len(imageset) == 1300 and len(imageset.classes) == 1000
    assert imageset.classes == sorted(imageset.classes) and imageset.classes[0] == "n01440764"
    counts = torch.bincount(imageset.labels, minlength=1000)
    assert int((counts == 0).sum()) == 275
    assert all(imageset.classes[int(y)] == f.parent.name for f, y in zip(imageset.files, imageset.labels, strict=True))


def test_eval_command_takes_workers_and_interpolation(tmp_path, capsys):
    from nascomp.cli import main

    root = _write_folder(tmp_path / "set", {f"c{k}": 1 for k in range(10)} | {"c0": 3})  # the model's 10 classes
    weights = tmp_path / "resnet20.pt"
    torch.save(create_model("cifar_resnet20").state_dict(), weights)
    argv = ["eval", "--model", "cifar_resnet20", "--weights", str(weights), "--data", str(root), "--json"]
    assert main([*argv, "--workers", "1", "--interpolation", "bicubic", "--progress", "on"]) == 0
    out, err = capsys.readouterr()
    assert '"n": 12' in out.splitlines()[-1] and "eval" in err  # the bar on stderr, JSON on stdout
    assert main([*argv, "--workers", "0", "--quiet"]) == 0
    assert capsys.readouterr().err == ""
