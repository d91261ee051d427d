"""EfficientNet-Lite0 (Tan & Le, ICML 2019, arXiv:1905.11946; the "Lite" edge variant of the TensorFlow TPU
repository): EfficientNet-B0's MBConv stages with ReLU6 instead of swish and no squeeze-excitation.

Module and parameter names follow the converted TF checkpoint (``_conv_stem``, ``_bn0``,
``_blocks.{i}._expand_conv``/``_bn0``/``_depthwise_conv``/``_bn1``/``_project_conv``/``_bn2``, ``_conv_head``,
``_bn1``, ``_fc``), so its state dict loads without a key map. Two TensorFlow details matter for the
pretrained weights:

* BatchNorm ``eps = 1e-3`` (PyTorch's default is 1e-5);
* TensorFlow ``"SAME"`` padding: the output has ``ceil(H / s)`` rows, the input gets
  ``total = max((ceil(H / s) - 1) * s + k - H, 0)`` zero rows, ``total // 2`` on top and the rest at the bottom
  (likewise left/right). For stride 1 and odd k this is the symmetric ``(k - 1) / 2``; for stride 2 on an even
  size it puts the extra zero row/column at the bottom/right, where PyTorch's symmetric padding would shift
  every output by half a pixel. Stride-2 convs are therefore plain unpadded ``nn.Conv2d`` layers preceded by a
  :class:`SamePad` module (a separate module, so quantization, which swaps exactly ``nn.Conv2d``, and cost
  counting see an ordinary conv).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .registry import ModelCfg, register_model

BN_EPS = 1e-3
# (repeats, kernel, stride, expand ratio, in channels, out channels) per stage, EfficientNet-Lite0
LITE0_STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
STEM_CHANNELS, HEAD_CHANNELS = 32, 1280
# the TF Lite checkpoints' preprocessing: pixels in [0, 1], (x - 127/255) / (128/255), bicubic resize to 256, crop 224
LITE_MEAN = (127.0 / 255.0,) * 3
LITE_STD = (128.0 / 255.0,) * 3


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow "SAME" zero padding of one spatial axis as (before, after); the odd extra goes after."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class SamePad(nn.Module):
    """Zero-pad the last two axes as TensorFlow's "SAME" does for a ``kernel`` x ``kernel`` conv of ``stride``.

    Computed from the input's size at every call, so any input resolution gets TF's padding.
    """

    def __init__(self, kernel: int, stride: int):
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top, bottom = same_padding(x.shape[-2], self.kernel, self.stride)
        left, right = same_padding(x.shape[-1], self.kernel, self.stride)
        return F.pad(x, (left, right, top, bottom))

    def extra_repr(self) -> str:
        return f"kernel={self.kernel}, stride={self.stride}"


def _pad_and_conv(cin: int, cout: int, kernel: int, stride: int, groups: int = 1) -> tuple[nn.Module, nn.Conv2d]:
    """A bias-free conv with TF "SAME" padding: symmetric conv padding at stride 1, an explicit SamePad otherwise."""
    if stride == 1:
        return nn.Identity(), nn.Conv2d(cin, cout, kernel, 1, kernel // 2, groups=groups, bias=False)
    return SamePad(kernel, stride), nn.Conv2d(cin, cout, kernel, stride, 0, groups=groups, bias=False)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS)


class MBConvBlock(nn.Module):
    """Inverted residual (MobileNetV2, arXiv:1801.04381) without squeeze-excitation:
    [1x1 expand, BN, ReLU6] (absent at expand ratio 1), kxk depthwise, BN, ReLU6, 1x1 project, BN, and an
    identity skip when the block keeps both resolution and width."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int):
        super().__init__()
        mid = cin * expand
        self.expands = expand != 1
        if self.expands:
            self._expand_conv = nn.Conv2d(cin, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_pad, self._depthwise_conv = _pad_and_conv(mid, mid, kernel, stride, groups=mid)
        self._bn1 = _bn(mid)
        self._project_conv = nn.Conv2d(mid, cout, 1, bias=False)
        self._bn2 = _bn(cout)
        self.act = nn.ReLU6()
        self.has_skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        if self.expands:
            out = self.act(self._bn0(self._expand_conv(out)))
        out = self.act(self._bn1(self._depthwise_conv(self._depthwise_pad(out))))
        out = self._bn2(self._project_conv(out))
        return out + x if self.has_skip else out


class EfficientNetLite(nn.Module):
    """Stem (3x3 stride-2 conv, BN, ReLU6), MBConv ``stages``, head (1x1 conv, BN, ReLU6), average pool,
    dropout, linear classifier."""

    def __init__(self, stages=LITE0_STAGES, num_classes: int = 1000, dropout: float = 0.2):
        super().__init__()
        self._stem_pad, self._conv_stem = _pad_and_conv(3, STEM_CHANNELS, 3, 2)
        self._bn0 = _bn(STEM_CHANNELS)
        blocks = []
        for repeats, kernel, stride, expand, cin, cout in stages:
            for i in range(repeats):
                blocks.append(MBConvBlock(cin if i == 0 else cout, cout, kernel, stride if i == 0 else 1, expand))
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = nn.Conv2d(stages[-1][5], HEAD_CHANNELS, 1, bias=False)
        self._bn1 = _bn(HEAD_CHANNELS)
        self.act = nn.ReLU6()
        self._avg_pooling = nn.AdaptiveAvgPool2d(1)
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(HEAD_CHANNELS, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self._bn0(self._conv_stem(self._stem_pad(x))))
        for block in self._blocks:
            x = block(x)
        x = self.act(self._bn1(self._conv_head(x)))
        return self._fc(self._dropout(self._avg_pooling(x).flatten(1)))


@register_model(
    "efficientnet_lite0",
    ModelCfg(1000, (3, 224, 224), LITE_MEAN, LITE_STD, family="efficientnet_lite",
             interpolation="bicubic", crop_pct=224 / 256),
)
def efficientnet_lite0(num_classes: int = 1000) -> EfficientNetLite:
    return EfficientNetLite(LITE0_STAGES, num_classes)
