"""Multiple-binary-base baselines shaped like the Bi-Real nets: Group-Net (K branches) and ABC-Net (M x N bases).

Both keep Bi-Real's real-valued stem, shortcuts (identity, or 2x2 average pool + 1x1 conv + BN) and classifier
(:mod:`.birealnet`), so their FLOPs equal the Bi-Real net's and their BOPs are K or M x N times its BOPs.

- **Group-Net** (Zhuang et al., CVPR 2019, group-wise decomposition with a ResNet basic block as the group):
  branch k of a block runs two Bi-Real units of its own binary convs and BNs,
  ``u_k = BN1_k(conv1_k(x_k)) + short(x)``, ``v_k = BN2_k(conv2_k(u_k)) + u_k``, and the block outputs
  ``y = sum_k lambda_k v_k`` (learned scales, :class:`~nascomp.quant.multibase.BranchSum`). ``x_k = y`` of the
  block before, or with ``soft=True`` the learned soft connection
  (:class:`~nascomp.quant.multibase.SoftConnection`). K = 1 is the Bi-Real net.
- **ABC-Net** (Lin et al., NeurIPS 2017): the Bi-Real net with every binary conv an
  :class:`~nascomp.quant.multibase.ABCConv2d` of M weight and N activation bases.

Constructor arguments are plain values (``num_classes``, ``branches``, ``soft``, ``bases``), so a network is
rebuilt from its registry name alone.
"""

from __future__ import annotations

import torch
from torch import nn

from ..quant.multibase import BranchSum, GroupNetConv2d, SoftConnection
from .birealnet import (
    CIFAR_CFG,
    IMAGENET_CFG,
    IMAGENET_WIDTHS,
    BiRealNet,
    cifar_stem,
    imagenet_stem,
    real_shortcut,
)
from .registry import ModelCfg, register_model


class GroupNetBlock(nn.Module):
    """A ResNet basic block as K binary branches of two Bi-Real units each (see the module docstring)."""

    def __init__(self, cin: int, cout: int, stride: int, branches: int):
        super().__init__()
        self.branches = branches
        self.conv1 = GroupNetConv2d(cin, cout, 3, stride, 1, bias=False, branches=branches)
        self.bn1 = nn.BatchNorm2d(branches * cout)
        self.shortcut = real_shortcut(cin, cout, stride)
        self.conv2 = GroupNetConv2d(cout, cout, 3, 1, 1, bias=False, branches=branches)
        self.bn2 = nn.BatchNorm2d(branches * cout)
        self.sum = BranchSum(branches)

    def forward(self, x: torch.Tensor, branch_inputs: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(y, v)``: the aggregated output and the K stacked branch outputs; ``branch_inputs`` (N, K*Cin) or x."""
        short = self.shortcut(x).repeat(1, self.branches, 1, 1)
        u = self.bn1(self.conv1(x if branch_inputs is None else branch_inputs)) + short
        v = self.bn2(self.conv2(u)) + u
        return self.sum(v), v


class GroupNet(nn.Module):
    """Real-valued stem -> Group-Net blocks (stage widths ``widths``, ``blocks`` per stage) -> pool -> linear."""

    def __init__(self, stem: nn.Module, stem_width: int, widths: tuple[int, ...], blocks: tuple[int, ...],
                 num_classes: int, branches: int, soft: bool = False):
        super().__init__()
        self.stem = stem
        layers, cin = [], stem_width
        for i, (width, n) in enumerate(zip(widths, blocks, strict=True)):
            for j in range(n):
                layers.append(GroupNetBlock(cin, width, 2 if i > 0 and j == 0 else 1, branches))
                cin = width
        self.blocks = nn.ModuleList(layers)
        self.soft = nn.ModuleList(SoftConnection(branches) for _ in layers[1:]) if soft else None
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(widths[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, v = self.stem(x), None
        for i, block in enumerate(self.blocks):
            inputs = self.soft[i - 1](v, y) if self.soft is not None and v is not None else None
            y, v = block(y, inputs)
        return self.fc(self.pool(y).flatten(1))


def _cfg(base: ModelCfg, family: str) -> ModelCfg:
    return ModelCfg(base.num_classes, base.input_size, base.mean, base.std, family=family)


CIFAR_GROUPNET = _cfg(CIFAR_CFG, "cifar_groupnet")
CIFAR_ABCNET = _cfg(CIFAR_CFG, "cifar_abcnet")
IMAGENET_GROUPNET = _cfg(IMAGENET_CFG, "groupnet")
IMAGENET_ABCNET = _cfg(IMAGENET_CFG, "abcnet")


def cifar_groupnet20(num_classes: int = 10, branches: int = 4, soft: bool = False) -> nn.Module:
    """Group-Net on the CIFAR ResNet-20 layout (16/32/64, 3 blocks per stage): K x 18 binary convs."""
    return GroupNet(cifar_stem(), 16, (16, 32, 64), (3, 3, 3), num_classes, branches, soft)


def groupnet18(num_classes: int = 1000, branches: int = 4, soft: bool = False) -> nn.Module:
    """Group-Net on the ResNet-18 layout (64..512, 2 blocks per stage): K x 16 binary convs."""
    return GroupNet(imagenet_stem(), 64, IMAGENET_WIDTHS, (2, 2, 2, 2), num_classes, branches, soft)


@register_model("cifar_groupnet20_k4", CIFAR_GROUPNET)
def cifar_groupnet20_k4(num_classes: int = 10) -> nn.Module:
    """Group-Net-20, K = 4 branches."""
    return cifar_groupnet20(num_classes, 4)


@register_model("cifar_groupnet20_k5", CIFAR_GROUPNET)
def cifar_groupnet20_k5(num_classes: int = 10) -> nn.Module:
    """Group-Net-20, K = 5 branches (the paper's ImageNet setting)."""
    return cifar_groupnet20(num_classes, 5)


@register_model("cifar_abcnet20_m3n3", CIFAR_ABCNET)
def cifar_abcnet20_m3n3(num_classes: int = 10) -> nn.Module:
    """ABC-Net-20: Bi-Real-20 with M = N = 3 bases per binary conv."""
    return BiRealNet(cifar_stem(), 16, (16, 32, 64), (6, 6, 6), num_classes, bases="abcnet:3x3")


@register_model("groupnet18_k4", IMAGENET_GROUPNET)
def groupnet18_k4(num_classes: int = 1000) -> nn.Module:
    """Group-Net ResNet-18, K = 4 branches."""
    return groupnet18(num_classes, 4)


@register_model("groupnet18_k5", IMAGENET_GROUPNET)
def groupnet18_k5(num_classes: int = 1000) -> nn.Module:
    """Group-Net ResNet-18, K = 5 branches (the paper's main ImageNet setting)."""
    return groupnet18(num_classes, 5)


@register_model("abcnet18_m3n3", IMAGENET_ABCNET)
def abcnet18_m3n3(num_classes: int = 1000) -> nn.Module:
    """ABC-Net ResNet-18 on the Bi-Real-18 layout, M = N = 3 bases per binary conv."""
    return BiRealNet(imagenet_stem(), 64, IMAGENET_WIDTHS, (4, 4, 4, 4), num_classes, bases="abcnet:3x3")
