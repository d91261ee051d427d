"""Bi-Real Nets (Liu et al., ECCV 2018): binary ResNets with a real-valued shortcut around every binary conv.

Layout: a full-precision stem, then stages of :class:`BiRealUnit` (``x -> BN(BinaryConv3x3(x)) + short(x)``,
the sign of ``x`` taken inside the conv), a full-precision classifier (global average pool + linear).
A ResNet basic block of two convs becomes two units, so each binary conv has its own shortcut.
Where a unit changes resolution or width, the shortcut is full precision: 2x2 average pool (stride 2),
1x1 conv, BN. The stem has no ReLU: its output feeds a sign, which would map every ReLU output to +1.

Each binary conv is a :class:`~nascomp.quant.binary.BinaryConv2d`, so
:func:`~nascomp.quant.binary.set_binary_stage` switches the whole net between training stages.
"""

from __future__ import annotations

import torch
from torch import nn

from ..quant.multibase import binary_conv, parse_bases
from .registry import IMAGENET_MEAN, IMAGENET_STD, ModelCfg, register_model


def real_shortcut(cin: int, cout: int, stride: int) -> nn.Module:
    """Identity, or (for a stride or width change) ``[AvgPool2d(2, 2)] -> 1x1 conv -> BN``, all real-valued."""
    if stride == 1 and cin == cout:
        return nn.Identity()
    layers: list[nn.Module] = [nn.AvgPool2d(2, 2)] if stride != 1 else []
    layers += [nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout)]
    return nn.Sequential(*layers)


class BiRealUnit(nn.Module):
    """``y = BN(BinaryConv3x3(x)) + shortcut(x)``: one binary conv with its own real-valued shortcut.

    ``bases`` ``"single"`` (Bi-Real) or ``"abcnet:MxN"`` (an ABC-Net conv, :mod:`nascomp.quant.multibase`);
    Group-Net's branches are blocks of their own (:mod:`.multibase`).
    """

    def __init__(self, cin: int, cout: int, stride: int = 1, bases: str = "single"):
        super().__init__()
        if parse_bases(bases).scheme == "groupnet":
            raise ValueError("a Bi-Real unit has one conv; Group-Net branches are built by models.multibase")
        self.conv = binary_conv(cin, cout, 3, stride, 1, bases)
        self.bn = nn.BatchNorm2d(cout)
        self.shortcut = real_shortcut(cin, cout, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x)) + self.shortcut(x)


def make_stages(
    cin: int, widths: tuple[int, ...], units: tuple[int, ...], first_stride: int, bases: str = "single"
) -> nn.Sequential:
    """Stages of ``units[i]`` units at ``widths[i]`` channels; every stage after the first starts with stride 2."""
    stages = []
    for i, (width, n) in enumerate(zip(widths, units, strict=True)):
        stride = first_stride if i == 0 else 2
        stage = [BiRealUnit(cin if j == 0 else width, width, stride if j == 0 else 1, bases) for j in range(n)]
        stages.append(nn.Sequential(*stage))
        cin = width
    return nn.Sequential(*stages)


class BiRealNet(nn.Module):
    """Full-precision stem -> Bi-Real stages -> global average pool -> full-precision linear."""

    def __init__(
        self,
        stem: nn.Module,
        stem_width: int,
        widths: tuple[int, ...],
        units: tuple[int, ...],
        num_classes: int,
        bases: str = "single",
    ):
        super().__init__()
        self.stem = stem
        self.stages = make_stages(stem_width, widths, units, first_stride=1, bases=bases)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(widths[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.stages(self.stem(x))).flatten(1))


def imagenet_stem(width: int = 64) -> nn.Sequential:
    """7x7 stride-2 conv -> BN -> 3x3 stride-2 max pool (ResNet stem without the ReLU), full precision."""
    return nn.Sequential(
        nn.Conv2d(3, width, 7, 2, 3, bias=False), nn.BatchNorm2d(width), nn.MaxPool2d(3, 2, 1)
    )


def cifar_stem(width: int = 16) -> nn.Sequential:
    """3x3 conv -> BN (CIFAR ResNet stem without the ReLU), full precision."""
    return nn.Sequential(nn.Conv2d(3, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width))


IMAGENET_CFG = ModelCfg(1000, (3, 224, 224), IMAGENET_MEAN, IMAGENET_STD, family="birealnet")
CIFAR_CFG = ModelCfg(10, (3, 32, 32), IMAGENET_MEAN, IMAGENET_STD, family="cifar_birealnet")
IMAGENET_WIDTHS = (64, 128, 256, 512)


def _units(blocks: tuple[int, ...]) -> tuple[int, ...]:
    """Units per stage for ResNet basic blocks per stage: two binary convs (two units) per block."""
    return tuple(2 * b for b in blocks)


@register_model("birealnet18", IMAGENET_CFG)
def birealnet18(num_classes: int = 1000) -> nn.Module:
    """Bi-Real-18: the ResNet-18 layout (2, 2, 2, 2 basic blocks), 16 binary convs."""
    return BiRealNet(imagenet_stem(), 64, IMAGENET_WIDTHS, _units((2, 2, 2, 2)), num_classes)


@register_model("birealnet34", IMAGENET_CFG)
def birealnet34(num_classes: int = 1000) -> nn.Module:
    """Bi-Real-34: the ResNet-34 layout (3, 4, 6, 3 basic blocks), 32 binary convs."""
    return BiRealNet(imagenet_stem(), 64, IMAGENET_WIDTHS, _units((3, 4, 6, 3)), num_classes)


@register_model("cifar_birealnet20", CIFAR_CFG)
def cifar_birealnet20(num_classes: int = 10) -> nn.Module:
    """Bi-Real on the CIFAR ResNet-20 layout (16/32/64 channels, 3 blocks per stage), 18 binary convs."""
    return BiRealNet(cifar_stem(), 16, (16, 32, 64), _units((3, 3, 3)), num_classes)
