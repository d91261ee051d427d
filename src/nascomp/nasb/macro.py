"""The macro layout shared by the supernet and the derived network: stem, cell plan, cell inputs, head.

DARTS layout (Liu et al., ICLR 2019), adapted to binary cells (ours):

- stem: full-precision ``Conv3x3(in_channels -> C) -> BN`` (no ReLU: Bi-Real's stem, whose output feeds signs);
- ``layers`` cells; cells ``layers // 3`` and ``2 * layers // 3`` are reduction cells (stride 2 on the edges
  that leave the cell inputs, width doubled); each cell reads the outputs of the two cells before it
  (``c_k-2``, ``c_k-1``; the stem output stands in for the missing ones) and outputs the concatenation of its
  intermediate nodes (``multiplier`` = 4 nodes, so 4C channels);
- cell inputs (DARTS' "preprocess") bring ``c_k-2`` and ``c_k-1`` to C channels and a common resolution with a
  *binary* 1x1 conv around a parameter-free real-valued shortcut (:class:`CellInput`);
- head: global average pool -> full-precision linear.

Only the stem, the head and the ``skip_connect`` of reduction edges are full precision, so FLOPs stay flat in
the width while BOPs grow with it, as in Bi-Real Net.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import ConfigError
from ..quant.multibase import Bases, BranchSum, binary_conv, parse_bases
from .ops import BranchInput, half_pool


@dataclass(frozen=True)
class CellSpec:
    """Widths and role of one cell: inputs of ``c_prev_prev`` and ``c_prev`` channels, ``c`` per node."""

    index: int
    reduction: bool
    reduction_prev: bool
    c_prev_prev: int
    c_prev: int
    c: int


def reduction_cells(layers: int) -> set[int]:
    """Indices of the reduction cells: ``layers // 3`` and ``2 * layers // 3`` (DARTS)."""
    return {layers // 3, 2 * layers // 3}


def cell_plan(channels: int, layers: int, multiplier: int) -> list[CellSpec]:
    """The :class:`CellSpec` of every cell for an initial width ``channels`` (the stem's width too)."""
    if channels < 1 or layers < 1:
        raise ConfigError(f"a cell network needs channels >= 1 and layers >= 1, got {channels} and {layers}")
    reductions = reduction_cells(layers)
    plan, c, c_pp, c_p, red_prev = [], channels, channels, channels, False
    for i in range(layers):
        red = i in reductions
        c = 2 * c if red else c
        plan.append(CellSpec(i, red, red_prev, c_pp, c_p, c))
        c_pp, c_p, red_prev = c_p, multiplier * c, red
    return plan


class ChannelResize(nn.Module):
    """Parameter-free channel change: the mean of ``c_in / c_out`` channel groups, or ``c_out / c_in`` copies.

    Reading a cell output (the concatenation of k node outputs) with ``c_out = c_in / k`` gives the mean of
    the k nodes; doubling repeats the tensor, as ReActNet's downsampling shortcut does (Liu et al., ECCV 2020).
    """

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        if c_in % c_out and c_out % c_in:
            raise ConfigError(f"cannot resize {c_in} channels to {c_out} without weights: neither divides the other")
        self.c_in, self.c_out = c_in, c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.c_in > self.c_out:
            n, _, h, w = x.shape
            return x.view(n, self.c_in // self.c_out, self.c_out, h, w).mean(1)
        return x.repeat(1, self.c_out // self.c_in, 1, 1) if self.c_out > self.c_in else x

    def extra_repr(self) -> str:
        return f"{self.c_in} -> {self.c_out}"


class CellInput(nn.Module):
    """``y = BN(BinaryConv1x1(sign(u))) + resize(u)`` with ``u = BN(p(x))``, ``p`` = 2x2 average pool when ``reduce``.

    The binary 1x1 conv replaces DARTS' ReLU-Conv1x1-BN / FactorizedReduce; the shortcut (see
    :class:`ChannelResize`) keeps a real-valued path through every cell, Bi-Real style, at no FLOPs. It reads
    the normalised input: a node sums several edges that each carry their input on a real-valued shortcut,
    so a cell's output is several times larger than its input, and without the BN the real-valued path
    would grow geometrically with depth.

    ``bases`` (:mod:`nascomp.quant.multibase`): ABC-Net bases inside the conv; Group-Net's K branches read ``u``
    through a BN each (``BinaryConv_k(sign(BN_k(u)))``) and are summed with learned scales before ``bn_out``.
    """

    def __init__(self, c_in: int, c_out: int, reduce: bool, affine: bool, bases: Bases | str | None = None):
        super().__init__()
        b = parse_bases(bases)
        self.pool: nn.Module = half_pool() if reduce else nn.Identity()
        self.bn_in = nn.BatchNorm2d(c_in, affine=affine)
        self.conv = binary_conv(c_in, c_out, 1, bases=b)
        self.bn_out = nn.BatchNorm2d(c_out, affine=affine)
        self.resize = ChannelResize(c_in, c_out)
        self.branches: nn.Module | None = None
        if b.branches > 1:
            self.branches = nn.Sequential(BranchInput(b.branches), nn.BatchNorm2d(b.branches * c_in, affine=affine))
            self.branch_sum = BranchSum(b.branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = self.bn_in(self.pool(x))
        if self.branches is None:
            return self.bn_out(self.conv(u)) + self.resize(u)
        return self.bn_out(self.branch_sum(self.conv(self.branches(u)))) + self.resize(u)


def stem(in_channels: int, channels: int) -> nn.Sequential:
    """Full-precision ``Conv3x3 -> BN`` (no ReLU)."""
    return nn.Sequential(nn.Conv2d(in_channels, channels, 3, 1, 1, bias=False), nn.BatchNorm2d(channels))


def classifier(c_in: int, num_classes: int) -> nn.Sequential:
    """Global average pool -> full-precision linear."""
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, num_classes))


class CellNetwork(nn.Module):
    """``stem -> cells (each reads the two previous outputs) -> head``; ``make_cell(spec)`` builds each cell."""

    def __init__(
        self,
        in_channels: int,
        channels: int,
        layers: int,
        num_classes: int,
        multiplier: int,
        make_cell: Callable[[CellSpec], nn.Module],
    ):
        super().__init__()
        plan = cell_plan(channels, layers, multiplier)
        self.stem = stem(in_channels, channels)
        self.cells = nn.ModuleList(make_cell(spec) for spec in plan)
        self.head = classifier(multiplier * plan[-1].c, num_classes)

    def run_cell(self, cell: nn.Module, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        return cell(s0, s1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, self.run_cell(cell, s0, s1)
        return self.head(s1)
