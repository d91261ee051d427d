"""The NASB search space, declared through :mod:`nascomp.nas`, and the cells built from it.

Two edge kinds, ``normal`` and ``reduce`` (one alpha tensor each, shared by all cells of that kind), over the
same DARTS cell graph: inputs ``c_k-2`` and ``c_k-1``, nodes ``n0 .. n3``, node ``n_i`` reads both inputs and
every earlier node (2 + 3 + 4 + 5 = 14 edges), output = concatenation of the four nodes. Every edge mixes
:data:`OPS` (see :mod:`.ops`). Derivation: ``top2_no_none``, each node keeps its two strongest incoming
edges with their strongest op other than ``none`` (DARTS).

:class:`Cell` runs either every edge as a :class:`~nascomp.nas.MixedOp` (the supernet, :class:`Supernet`)
or the edges a genotype kept (the derived network, :mod:`.network`); both share :mod:`.macro`'s layout.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..nas import EdgeKind, MixedOp, SearchSpace, gumbel_hard
from ..quant.multibase import parse_bases
from .macro import CellInput, CellNetwork, CellSpec
from .ops import NASB_OPS

CELL_INPUTS = ("c_k-2", "c_k-1")
NODES = ("n0", "n1", "n2", "n3")
OPS = [
    "binary_conv_3x3",
    "binary_conv_5x5",
    "binary_dil_conv_3x3",
    "binary_dil_conv_5x5",
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "none",
]


def cell_graph(nodes: tuple[str, ...] = NODES) -> dict[str, list[str]]:
    """``{node: inputs}``: each node reads the two cell inputs and every earlier node."""
    return {node: [*CELL_INPUTS, *nodes[:i]] for i, node in enumerate(nodes)}


def _kind() -> EdgeKind:
    return EdgeKind(ops=OPS, rule="top2_no_none", inputs=cell_graph(), concat=list(NODES))


NASB_SPACE = SearchSpace("nasb", {"normal": _kind(), "reduce": _kind()})
MULTIPLIER = len(NODES)


def kind_of(spec: CellSpec) -> str:
    return "reduce" if spec.reduction else "normal"


def edge_stride(spec: CellSpec, source: str) -> int:
    """2 on the edges that leave a reduction cell's inputs, 1 elsewhere."""
    return 2 if spec.reduction and source in CELL_INPUTS else 1


class Cell(nn.Module):
    """One cell: two :class:`~.macro.CellInput` s, then ``node = sum of its edges``, output = concat of nodes.

    ``edges`` are ``(edge name, node, input)`` triples; ``make_edge(name, stride)`` builds each edge's module;
    ``bases`` are those of the cell inputs' binary convs (the edges get theirs from ``make_edge``).
    ``forward(s0, s1, weights)``: with ``weights`` (the kind's ``(n_edges, n_ops)`` softmax) every edge is
    a MixedOp called with its row; without, every edge is a plain op.
    """

    def __init__(
        self,
        spec: CellSpec,
        space: SearchSpace,
        edges: list[tuple[str, str, str]],
        make_edge: Callable[[str, int], nn.Module],
        affine: bool,
        bases: str = "single",
    ):
        super().__init__()
        self.kind = kind_of(spec)
        kind = space.kind(self.kind)
        self.pre0 = CellInput(spec.c_prev_prev, spec.c, spec.reduction_prev, affine, bases)
        self.pre1 = CellInput(spec.c_prev, spec.c, False, affine, bases)
        self.nodes = list(kind.inputs)
        self.concat = list(kind.concat)
        wiring = [(name, node, source, kind.edges.index(name)) for name, node, source in edges]
        self.wiring = sorted(wiring, key=lambda w: self.nodes.index(w[1]))  # a node is complete before it is read
        self.edges = nn.ModuleDict({name: make_edge(name, edge_stride(spec, source)) for name, _, source in edges})

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        states = {CELL_INPUTS[0]: self.pre0(s0), CELL_INPUTS[1]: self.pre1(s1)}
        for name, node, source, row in self.wiring:
            op = self.edges[name]
            out = op(states[source]) if weights is None else op(states[source], weights[row])
            states[node] = out if node not in states else states[node] + out
        return torch.cat([states[n] for n in self.concat], dim=1)


def search_cell(spec: CellSpec, space: SearchSpace = NASB_SPACE, binary_shortcut: bool = True,
                bases: str = "single") -> Cell:
    """A supernet cell: every edge of the graph, each a MixedOp over the kind's ops (non-affine BN)."""
    kind = space.kind(kind_of(spec))
    pairs = kind.edge_pairs()
    edges = [(name, *pairs[name]) for name in kind.edges]

    def make_edge(name: str, stride: int) -> nn.Module:
        return MixedOp(kind.ops, NASB_OPS, c=spec.c, stride=stride, affine=False, shortcut=binary_shortcut,
                       bases=bases)

    return Cell(spec, space, edges, make_edge, affine=False, bases=bases)


class Supernet(CellNetwork):
    """The search network: :mod:`.macro` layout with :func:`search_cell` cells and the space's alphas.

    Each cell mixes its edges with its kind's weights: ``softmax(alpha)`` (DARTS) while ``tau`` is None,
    else one straight-through Gumbel sample per edge and forward pass at temperature ``tau`` (GDAS,
    :func:`~nascomp.nas.gumbel_hard`), which runs one op per edge. ``binary_shortcut=False`` removes the
    real-valued shortcut of the binary ops (the ablation of the collapse remedy, docs/NASB.md); ``bases``
    (``single``, ``groupnet:K``, ``abcnet:MxN``) makes every binary conv a multi-base one.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        channels: int = 16,
        layers: int = 8,
        space: SearchSpace = NASB_SPACE,
        binary_shortcut: bool = True,
        bases: str = "single",
    ):
        chosen = str(parse_bases(bases))
        super().__init__(
            in_channels,
            channels,
            layers,
            num_classes,
            MULTIPLIER,
            lambda spec: search_cell(spec, space, binary_shortcut, chosen),
        )
        self.bases = chosen
        self.space = space
        self.arch = space.arch_params()
        self.tau: float | None = None

    def mixture(self, kind: str) -> torch.Tensor:
        """The ``(n_edges, n_ops)`` weights of one kind for this forward pass."""
        if self.tau is None:
            return self.arch.weights(kind)
        return gumbel_hard(self.arch[kind], self.tau)

    def run_cell(self, cell: nn.Module, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        return cell(s0, s1, self.mixture(cell.kind))
