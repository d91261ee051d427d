"""A small CNN for the built-in demo (scikit-learn's 8x8 digits): seconds to train on a CPU."""

from __future__ import annotations

import torch
from torch import nn

from .registry import ModelCfg, register_model

# Pixel mean/std of sklearn's digits scaled to [0, 1] (values/16), over all 1,797 images.
DIGITS_MEAN = (0.3053,)
DIGITS_STD = (0.3760,)


def _conv_bn(cin: int, cout: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class DemoNet(nn.Module):
    """conv16 -> conv32/2 -> conv32 (each conv-BN-ReLU) -> global average pool -> linear."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1):
        super().__init__()
        self.features = nn.Sequential(*_conv_bn(in_channels, 16), *_conv_bn(16, 32, 2), *_conv_bn(32, 32))
        self.classifier = nn.Linear(32, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).mean((2, 3)))


@register_model("demo_net", ModelCfg(10, (1, 8, 8), DIGITS_MEAN, DIGITS_STD, family="demo"))
def demo_net(num_classes: int = 10) -> nn.Module:
    return DemoNet(num_classes)
