"""The Python API: nascomp.quantize on a model object nascomp does not know by name, nascomp.load, nascomp.export."""

from __future__ import annotations

import pytest
import torch
from PIL import Image
from torch import nn

import nascomp
from interrupt import interrupted
from nascomp.data.sources import demo_digits
from nascomp.errors import CheckpointError, ConfigError, RunDirError
from run_metrics import reproducible


class MyDigitNet(nn.Module):
    """A model class of the user's own (not registered), holding the trained demo teacher's layers."""

    def __init__(self, teacher: nn.Module):
        super().__init__()
        self.body = teacher.features
        self.head = teacher.classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x).mean((2, 3)))


@pytest.fixture(scope="module")
def digits_folder(tmp_path_factory):
    """The demo test digits as an ImageFolder of 8x8 grayscale PNGs."""
    root = tmp_path_factory.mktemp("digits")
    test = demo_digits("test")
    for i, (image, label) in enumerate(zip(test.images, test.labels, strict=True)):
        folder = root / str(int(label))
        folder.mkdir(exist_ok=True)
        Image.fromarray(image[0].numpy(), mode="L").save(folder / f"{i:04d}.png")
    return root


def test_quantize_quantizes_an_unregistered_module_and_load_needs_its_architecture(tmp_path, demo_teacher,
                                                                              digits_folder):
    import copy

    mine = MyDigitNet(copy.deepcopy(demo_teacher))
    result = nascomp.quantize(mine, mean=demo_teacher.default_cfg.mean, std=demo_teacher.default_cfg.std,
                         input_size=(1, 8, 8), num_classes=10, data=str(digits_folder), preset="demo",
                         out=tmp_path / "run", gen_steps=10, calib_size=64, epochs=1, batch_size=32)
    assert result.run_dir == tmp_path / "run" and result.metrics["fp_top1"] > 90
    assert result.metrics["dfq_top1"] > 50
    assert type(result.model.body[0]).__name__ == "FrozenConv2d"
    with pytest.raises(CheckpointError, match="model of your own"):
        nascomp.load(result.run_dir)
    again = nascomp.load(result.run_dir, model=MyDigitNet(copy.deepcopy(demo_teacher)))
    x = torch.randn(4, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(again(x), result.model(x))
    onnx = nascomp.export(result.model, tmp_path / "mine.onnx", check=str(digits_folder))
    assert onnx["agreement"] == 100.0 and onnx["torch_top1"] == pytest.approx(result.metrics["dfq_top1"])


def test_quantize_resume_takes_the_runs_own_settings(tmp_path, monkeypatch, demo_teacher, digits_folder):
    """``quantize(model, ..., resume=run)`` continues an interrupted run with the run's own data, preset and
    options (none repeated) and ends with the numbers of an uninterrupted run; a setting given again must match."""
    import copy

    mine = MyDigitNet(copy.deepcopy(demo_teacher))
    model = dict(mean=demo_teacher.default_cfg.mean, std=demo_teacher.default_cfg.std, input_size=(1, 8, 8),
                 num_classes=10)
    settings = dict(data=str(digits_folder), preset="demo", wbits=3, gen_steps=6, calib_size=64, epochs=2,
                    batch_size=32)
    full = nascomp.quantize(mine, **model, **settings, out=tmp_path / "full")
    with interrupted(monkeypatch, "fine-tune", 1):
        nascomp.quantize(mine, **model, **settings, out=tmp_path / "cut")
    with pytest.raises(RunDirError, match="another config"):
        nascomp.quantize(mine, **model, resume=tmp_path / "cut", epochs=3)
    resumed = nascomp.quantize(mine, **model, resume=tmp_path / "cut")
    assert resumed.metrics["wbits"] == 3 and resumed.run_dir == tmp_path / "cut"
    assert reproducible(resumed.metrics, "run_dir") == reproducible(full.metrics, "run_dir")


def test_quantize_bad_options_are_one_clear_error(demo_teacher):
    with pytest.raises(ConfigError, match="unknown DFQ option"):
        nascomp.quantize(demo_teacher, mean=(0.5,), std=(0.5,), input_size=(1, 8, 8), num_classes=10, data="x",
                    no_such_option=1)
    with pytest.raises(ConfigError, match="one value per channel"):
        nascomp.quantize(demo_teacher, mean=(0.5, 0.5), std=(0.5,), input_size=(1, 8, 8), num_classes=10, data="x")
    with pytest.raises(ConfigError, match="needs data="):
        nascomp.quantize(demo_teacher, mean=(0.5,), std=(0.5,), input_size=(1, 8, 8), num_classes=10)
