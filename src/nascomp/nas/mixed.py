"""The continuous relaxation of DARTS (Liu et al., ICLR 2019): mixed ops and architecture parameters.

An edge with candidate ops ``o_1 .. o_n`` and architecture logits ``alpha`` computes

    MixedOp(x) = sum_i w_i * o_i(x),   w = softmax(alpha)

The alphas live in one :class:`ArchParams` module (one ``(n_edges, n_ops)`` tensor per edge kind) and
are optimised apart from the weights: :func:`split_parameters` divides a model's parameters by identity.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch import nn

from .ops import OpRegistry


class MixedOp(nn.Module):
    """One edge of a supernet: a module per candidate op, mixed by weights given at forward time.

    ``forward(x, weights, *args, **kwargs)`` takes the edge's weights already softmaxed (a 1-D tensor of
    ``len(candidates)``) and passes ``*args, **kwargs`` on to every op (e.g. labels for conditional BN).
    Ops whose weight is exactly 0 are skipped, so one-hot weights run only the chosen op (the output is
    the same; the skipped weight's gradient is 0 instead of ``o_i(x)``, which matters only for
    straight-through hard sampling, not for softmax weights, which are never exactly 0 in practice).
    """

    def __init__(self, candidates: list[str], registry: OpRegistry, **op_kwargs: Any) -> None:
        super().__init__()
        if not candidates:
            raise ValueError("a MixedOp needs at least one candidate op")
        if len(set(candidates)) != len(candidates):
            raise ValueError(f"duplicate candidate ops: {candidates}")
        self.candidates = list(candidates)
        self.ops = nn.ModuleList(registry.build(name, **op_kwargs) for name in self.candidates)

    def forward(self, x: torch.Tensor, weights: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        if weights.shape != (len(self.ops),):
            raise ValueError(f"expected weights of shape ({len(self.ops)},), got {tuple(weights.shape)}")
        active = torch.nonzero(weights).flatten().tolist() or range(len(self.ops))
        out: torch.Tensor | None = None
        for i in active:
            term = weights[i] * self.ops[i](x, *args, **kwargs)
            out = term if out is None else out + term
        assert out is not None
        return out

    def op(self, name: str) -> nn.Module:
        """The module of candidate ``name``."""
        return self.ops[self.candidates.index(name)]

    def extra_repr(self) -> str:
        return f"candidates={self.candidates}"


class ArchParams(nn.Module):
    """Architecture logits: one ``nn.Parameter`` of shape ``(n_edges, n_ops)`` per edge kind.

    Initialised as ``1e-3 * randn`` (DARTS) so the first softmax is nearly uniform. ``weights(kind)`` is
    ``softmax(alpha[kind], dim=-1)``: row ``e`` is the mixture of edge ``e`` of that kind.
    """

    def __init__(
        self,
        shapes: Mapping[str, tuple[int, int]],
        init_std: float = 1e-3,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.alpha = nn.ParameterDict()
        for kind, shape in shapes.items():
            if not kind or "." in kind:
                raise ValueError(f"edge kind names must be non-empty and contain no '.', got {kind!r}")
            n_edges, n_ops = shape
            if n_edges < 1 or n_ops < 1:
                raise ValueError(f"edge kind {kind!r} needs at least one edge and one op, got {shape}")
            self.alpha[kind] = nn.Parameter(init_std * torch.randn(n_edges, n_ops, generator=generator))

    @property
    def kinds(self) -> list[str]:
        """Edge kind names, in declaration order."""
        return list(self.alpha.keys())

    def __getitem__(self, kind: str) -> nn.Parameter:
        return self.alpha[kind]

    def weights(self, kind: str) -> torch.Tensor:
        """Mixture weights of one kind: softmax over the op dimension, shape ``(n_edges, n_ops)``."""
        return torch.softmax(self.alpha[kind], dim=-1)

    def alphas(self) -> Iterator[nn.Parameter]:
        """The architecture parameters, one per kind (give these, and only these, to the alpha optimizer)."""
        yield from self.alpha.values()

    def shapes(self) -> dict[str, tuple[int, int]]:
        """``{kind: (n_edges, n_ops)}``."""
        return {kind: tuple(p.shape) for kind, p in self.alpha.items()}  # type: ignore[misc]


def gumbel_hard(alpha: torch.Tensor, tau: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """One straight-through Gumbel-softmax sample per row of ``alpha`` (GDAS, Dong & Yang, CVPR 2019).

        soft = softmax((log_softmax(alpha) + g) / tau),   g ~ Gumbel(0, 1) i.i.d.
        hard = one_hot(argmax(soft)),                     w = hard - stop_grad(soft) + soft

    Forward: ``w`` is one-hot, with exact zeros, so a :class:`MixedOp` runs only the sampled op (the search
    costs about one op per edge instead of all of them). Backward: the gradient of ``soft``, which is spread
    over the whole row through the softmax; a low ``tau`` makes ``soft`` close to ``hard``.
    """
    if tau <= 0:
        raise ValueError(f"tau must be > 0, got {tau}")
    noise = -torch.empty_like(alpha).exponential_(generator=generator).log()
    soft = torch.softmax((torch.log_softmax(alpha, dim=-1) + noise) / tau, dim=-1)
    hard = torch.zeros_like(soft).scatter_(-1, soft.argmax(dim=-1, keepdim=True), 1.0)
    return hard - soft.detach() + soft


def split_parameters(
    model: nn.Module, arch_params: ArchParams | None = None
) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """Split parameters into ``(weight_params, arch_params)`` by identity, so optimisers never mix them.

    The architecture parameters are those of ``arch_params`` or, when it is not given, of every
    :class:`ArchParams` module inside ``model``; the weights are all other parameters of ``model``.
    """
    holders = (
        [arch_params]
        if arch_params is not None
        else [m for m in model.modules() if isinstance(m, ArchParams)]
    )
    if not holders:
        raise ValueError("no ArchParams module in the model; pass arch_params explicitly")
    arch: list[nn.Parameter] = []
    seen: set[int] = set()
    for holder in holders:
        for p in holder.parameters():
            if id(p) not in seen:
                seen.add(id(p))
                arch.append(p)
    weights = [p for p in model.parameters() if id(p) not in seen]
    return weights, arch
