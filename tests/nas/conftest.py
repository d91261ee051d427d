"""A toy search space shared by the nas tests: two chained edges on R^4, target y = x."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nascomp.nas import ArchParams, EdgeKind, Identity, MixedOp, OpRegistry, SearchSpace, Zero

TOY_OPS = OpRegistry("toy")
TOY_OPS.add("none", lambda dim: Zero())
TOY_OPS.add("skip", lambda dim: Identity())
TOY_OPS.add("linear", lambda dim: nn.Linear(dim, dim))


@TOY_OPS.register("neg")
def _neg(dim: int) -> nn.Module:
    return Neg()


class Neg(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return -x


TOY_SPACE = SearchSpace("toy", {"e": EdgeKind(ops=TOY_OPS.names(), edges=2)})


class ToyNet(nn.Module):
    """``y = edge1(edge0(x))``; each edge mixes none / skip / linear / neg. ``skip`` on both is exact."""

    def __init__(self, dim: int = 4) -> None:
        super().__init__()
        self.arch = ArchParams(TOY_SPACE.arch_shapes())
        self.edges = nn.ModuleList(MixedOp(TOY_SPACE.kinds["e"].ops, TOY_OPS, dim=dim) for _ in range(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.arch.weights("e")
        return self.edges[1](self.edges[0](x, w[0]), w[1])


def make_toy(seed: int = 0, dtype: torch.dtype = torch.float32) -> ToyNet:
    torch.manual_seed(seed)
    return ToyNet().to(dtype)


def toy_batches(n: int, seed: int = 1, dtype: torch.dtype = torch.float32) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(16, 4, generator=gen, dtype=dtype) for _ in range(n)]


class Toy:
    """The toy problem as one fixture (test modules cannot import conftest under importlib mode)."""

    space = TOY_SPACE
    model = staticmethod(make_toy)
    batches = staticmethod(toy_batches)


@pytest.fixture
def toy() -> type[Toy]:
    return Toy
