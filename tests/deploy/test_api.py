"""The Python API: nascomp.quantize on a model object nascomp does not know by name, nascomp.load, nascomp.export."""

from __future__ import annotations

import pytest
import torch
from PIL import Image
from torch import nn

import nascomp
from nascomp.data.sources import demo_digits
from nascomp.errors import CheckpointError, ConfigError


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


def test_quantize_bad_options_are_one_clear_error(demo_teacher):
    with pytest.raises(ConfigError, match="unknown DFQ option"):
        nascomp.quantize(demo_teacher, mean=(0.5,), std=(0.5,), input_size=(1, 8, 8), num_classes=10, data="x",
                    no_such_option=1)
    with pytest.raises(ConfigError, match="one value per channel"):
        nascomp.quantize(demo_teacher, mean=(0.5, 0.5), std=(0.5,), input_size=(1, 8, 8), num_classes=10, data="x")
