"""The candidate ops of the NASB cells, as a named registry (DARTS ``OPS`` as data), and their modules.

Every factory has the signature ``factory(c, stride, affine, shortcut=True, bases=None) -> nn.Module``: ``c`` channels in and out
(a DARTS cell keeps its width; only the cell inputs change it, see :mod:`.macro`), ``stride`` 2 on the
edges that leave a reduction cell's inputs, ``affine`` False in the supernet (DARTS searches with
non-affine BN so that an op cannot rescale itself against its alpha) and True in the derived network;
``shortcut=False`` drops the real-valued shortcut of the binary ops (an ablation of the collapse remedy);
``bases`` (``single``, ``groupnet:K``, ``abcnet:MxN``, :mod:`nascomp.quant.multibase`) makes every binary conv a
multiple-binary-base conv (the parameter-free ops ignore it).

Binary ops (ours; NASB's exact cell is not public):

    binary(x) = shortcut(x) + BinaryConv(sign(BN(x)))        shortcut = x, or AvgPool2x2(x) at stride 2

``BinaryConv`` is a :class:`~nascomp.quant.binary.BinaryConv2d` (``sign(W) * mean|W|`` weights, sign
activations taken inside the conv), so :func:`~nascomp.quant.cost.count_cost` counts it as BOPs and
:func:`~nascomp.quant.binary.set_binary_stage` switches it between training stages. The BN before the sign
learns the threshold of the sign per channel (ReActNet's RSign shift, Liu et al. ECCV 2020). The real-valued
shortcut is Bi-Real Net's (Liu et al., ECCV 2018): it is also our remedy against the collapse of the search
into parameter-free ops (docs/NASB.md): at initialisation a binary conv adds noise, and without the shortcut
its edge loses to ``skip_connect`` and pooling before its weights have learnt anything (the failure BNAS,
Kim et al. ECCV 2020, reports for DARTS cells under binarization).

With bases (ours, so that a found cell can be compared with multi-base networks at their OPs): ``abcnet:MxN``
makes ``BinaryConv`` an ABC-Net conv (M weight x N activation bases, learned activation shifts and scales);
``groupnet:K`` runs K branches, each with its own BN (its own sign thresholds) and binary conv, summed with learned
scales (Group-Net's structure approximation at the edge level)::

    binary(x) = shortcut(x) + sum_k lambda_k BinaryConv_k(sign(BN_k(x)))

K = 1 / M = N = 1 is the single-base op above (same output for the same weights).

Other ops: ``max_pool_3x3``, ``avg_pool_3x3`` (padding not counted, DARTS), ``skip_connect`` (a real-valued
identity; on stride-2 edges a full-precision ``AvgPool2x2 -> 1x1 conv -> BN``, Bi-Real's downsampling
shortcut) and ``none`` (zeros).
"""

from __future__ import annotations

import torch
from torch import nn

from ..nas import Identity, OpRegistry, Zero
from ..quant.multibase import Bases, BranchSum, binary_conv, parse_bases

NASB_OPS = OpRegistry("nasb")


def half_pool() -> nn.AvgPool2d:
    """2x2 average pool of stride 2, rounding up (``ceil(H / 2)``, the output size of a stride-2 padded conv)."""
    return nn.AvgPool2d(2, 2, ceil_mode=True)


class Dilated2(nn.Module):
    """A dilation-2 conv computed exactly as the undilated ``conv`` on the polyphase components of ``x``.

    For ``y = conv_{k, dilation 2, padding k-1}(x)``, output pixel ``(2m + a, 2n + b)`` only reads input pixels
    of the same parity, so ``y[..., a::2, b::2] = conv_{k, padding (k-1)/2}(x[..., a::2, b::2])`` (zero
    padding maps onto zero padding); at stride 2 only the even component is read:
    ``y = conv(x[..., ::2, ::2])``. Even sizes run the four components as one batch (space-to-batch).
    Same numbers as ``dilation=2``; on a CPU it is about 4x faster in PyTorch 2.x, whose dilated convs take a
    slow path. ``conv`` keeps its own class (e.g. :class:`BinaryConv2d`), so cost counting and staging see it;
    its MACs add up to those of the dilated conv.
    """

    def __init__(self, conv: nn.Conv2d, stride: int):
        super().__init__()
        if conv.stride != (1, 1) or conv.dilation != (1, 1):
            raise ValueError("Dilated2 wraps an undilated conv of stride 1")
        self.conv, self.stride = conv, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 2:
            return self.conv(x[:, :, ::2, ::2])
        n, c, h, w = x.shape
        if h % 2 == 0 and w % 2 == 0:
            z = x.view(n, c, h // 2, 2, w // 2, 2).permute(0, 3, 5, 1, 2, 4).reshape(4 * n, c, h // 2, w // 2)
            y = self.conv(z)
            co = y.shape[1]
            return y.view(n, 2, 2, co, h // 2, w // 2).permute(0, 3, 4, 1, 5, 2).reshape(n, co, h, w)
        parts = {(a, b): self.conv(x[:, :, a::2, b::2]) for a in (0, 1) for b in (0, 1)}
        y = x.new_zeros(n, parts[0, 0].shape[1], h, w)
        for (a, b), part in parts.items():
            y[:, :, a::2, b::2] = part
        return y

    def extra_repr(self) -> str:
        return f"dilation=2, stride={self.stride}"


class BranchInput(nn.Module):
    """K copies of ``x`` stacked on the channels, ``(N, C, ...) -> (N, K * C, ...)``, for K branches (identity for 1)."""

    def __init__(self, branches: int):
        super().__init__()
        self.branches = branches

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.branches == 1 else x.repeat(1, self.branches, *([1] * (x.dim() - 2)))


class BinaryConvOp(nn.Module):
    """``shortcut(x) + BinaryConv_k,d(sign(BN(x)))``, see the module docstring (Bi-Real unit inside an edge).

    ``dilation`` 1 or 2; a dilated conv runs through :class:`Dilated2`. ``bases``: see the module docstring.
    """

    def __init__(self, c: int, kernel: int, dilation: int, stride: int, affine: bool, shortcut: bool = True,
                 bases: Bases | str | None = None):
        super().__init__()
        if dilation not in (1, 2):
            raise ValueError(f"dilation must be 1 or 2, got {dilation}")
        b = parse_bases(bases)
        self.branches = BranchInput(b.branches)
        self.bn = nn.BatchNorm2d(b.branches * c, affine=affine)
        pad = (kernel - 1) // 2
        conv = binary_conv(c, c, kernel, stride if dilation == 1 else 1, pad, b)
        self.conv: nn.Module = conv if dilation == 1 else Dilated2(conv, stride)
        self.branch_sum: nn.Module | None = BranchSum(b.branches) if b.branches > 1 else None
        self.shortcut: nn.Module | None = None
        if shortcut:
            self.shortcut = nn.Identity() if stride == 1 else half_pool()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(self.bn(self.branches(x)))
        if self.branch_sum is not None:
            out = self.branch_sum(out)
        return out if self.shortcut is None else self.shortcut(x) + out


class ReduceSkip(nn.Module):
    """``skip_connect`` on a stride-2 edge, full precision: ``BN(Conv1x1(AvgPool2x2(x)))`` (Bi-Real downsample)."""

    def __init__(self, c: int, affine: bool):
        super().__init__()
        self.pool = half_pool()
        self.conv = nn.Conv2d(c, c, 1, bias=False)
        self.bn = nn.BatchNorm2d(c, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(self.pool(x)))


def _binary(kernel: int, dilation: int):
    def factory(c: int, stride: int, affine: bool = True, shortcut: bool = True,
                bases: Bases | str | None = None) -> nn.Module:
        return BinaryConvOp(c, kernel, dilation, stride, affine, shortcut, bases)

    return factory


for _name, _kernel, _dilation in (
    ("binary_conv_3x3", 3, 1),
    ("binary_conv_5x5", 5, 1),
    ("binary_dil_conv_3x3", 3, 2),
    ("binary_dil_conv_5x5", 5, 2),
):
    NASB_OPS.add(_name, _binary(_kernel, _dilation))


@NASB_OPS.register("max_pool_3x3")
def _max_pool(c: int, stride: int, affine: bool = True, **_) -> nn.Module:
    return nn.MaxPool2d(3, stride, 1)


@NASB_OPS.register("avg_pool_3x3")
def _avg_pool(c: int, stride: int, affine: bool = True, **_) -> nn.Module:
    return nn.AvgPool2d(3, stride, 1, count_include_pad=False)


@NASB_OPS.register("skip_connect")
def _skip(c: int, stride: int, affine: bool = True, **_) -> nn.Module:
    return Identity() if stride == 1 else ReduceSkip(c, affine)


@NASB_OPS.register("none")
def _none(c: int, stride: int, affine: bool = True, **_) -> nn.Module:
    return Zero(stride=stride)


#: The ops a collapsed DARTS search ends up choosing: no weights in normal cells (``skip_connect`` has a
#: 1x1 conv on stride-2 edges).
PARAMETER_FREE = ("max_pool_3x3", "avg_pool_3x3", "skip_connect")
