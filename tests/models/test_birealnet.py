"""Bi-Real reference models: registry entries, output shapes, where binary and real layers sit, gradients."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nascomp.models import create_model, list_models
from nascomp.quant.binary import BinaryConv2d, set_binary_stage

CASES = [  # name, classes, input size, binary convs, real-valued convs (stem + downsample shortcuts)
    ("birealnet18", 1000, 224, 16, 1 + 3),
    ("birealnet34", 1000, 224, 32, 1 + 3),
    ("cifar_birealnet20", 10, 32, 18, 1 + 2),
]


def _convs(model: nn.Module) -> tuple[list[BinaryConv2d], list[nn.Conv2d]]:
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    return [m for m in convs if isinstance(m, BinaryConv2d)], [
        m for m in convs if not isinstance(m, BinaryConv2d)
    ]


@pytest.mark.parametrize(("name", "classes", "size", "n_binary", "n_real"), CASES)
def test_registry_cfg_and_layer_placement(name, classes, size, n_binary, n_real):
    model = create_model(name)
    assert name in list_models("*birealnet*")
    assert model.default_cfg.num_classes == classes and model.default_cfg.input_size == (3, size, size)
    binary, real = _convs(model)
    assert len(binary) == n_binary and all(m.kernel_size == (3, 3) for m in binary)
    assert len(real) == n_real and all(m.kernel_size == (1, 1) for m in real[1:])
    assert isinstance(model.fc, nn.Linear) and not hasattr(model.fc, "wbits")


@pytest.mark.parametrize(
    ("name", "size"), [("birealnet18", 64), ("birealnet34", 64), ("cifar_birealnet20", 32)]
)
def test_output_shape(name, size):
    model = create_model(name, num_classes=7)
    assert model(torch.randn(2, 3, size, size)).shape == (2, 7)


def test_every_binary_conv_has_its_own_real_valued_shortcut():
    model = create_model("cifar_birealnet20").eval()
    set_binary_stage(model, 3)
    unit = model.stages[0][1]
    x = torch.randn(1, 16, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(unit(x) - unit.bn(unit.conv(x)), x)


def test_staged_model_trains_end_to_end_with_gradients_in_every_layer():
    torch.manual_seed(0)
    model = create_model("cifar_birealnet20")
    x, y = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
    for stage in (1, 2, 3):
        model.zero_grad()
        set_binary_stage(model, stage)
        nn.functional.cross_entropy(model(x), y).backward()
        dead = [n for n, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
        assert not dead, (stage, dead)
