"""A search space declared as plain data: edge kinds, their candidate ops, edges and derivation rule.

Each edge kind owns one alpha tensor of shape ``(len(edges), len(ops))``: row ``e`` is edge
``edges[e]``, column ``i`` is op ``ops[i]`` (order matters: it is the alpha layout).

The graph of a kind is optional for ``argmax`` kinds and required for ``top<k>_no_none`` kinds:
``inputs`` maps each node to its input names, in order; the kind's edges are then its (node, input)
pairs node by node, named ``"<node><-<input>"`` unless ``edges`` gives other names (positionally).
Kinds with the same ``graph`` share node names (one drawing; e.g. all kinds of a generator), kinds with
different graphs do not (e.g. DARTS ``normal`` and ``reduce`` cells). ``concat`` lists the nodes whose
outputs form the graph's output (DARTS cells); it is copied into the genotype.

Examples (the two spaces this engine serves)::

    SearchSpace("autorecon", {
        "up": EdgeKind(ops=["nearest", "bilinear"], edges=6),
        "normal": EdgeKind(ops=["none", "skip_connect", "conv_1x1", ...], edges=15),
        "cross": EdgeKind(ops=["none", "nearest", "bilinear"], edges=12)})
    cell = {"n0": ["c_k-2", "c_k-1"], "n1": ["c_k-2", "c_k-1", "n0"], ...}
    SearchSpace("nasb", {
        "normal": EdgeKind(ops=[...], rule="top2_no_none", inputs=cell, concat=["n0", "n1", "n2", "n3"]),
        "reduce": EdgeKind(ops=[...], rule="top2_no_none", inputs=cell, concat=["n0", "n1", "n2", "n3"])})

Derivation rules:

- ``argmax``: every edge keeps its strongest op, ``none`` included (AutoReCon).
- ``top<k>_no_none`` (e.g. ``top2_no_none``): each node keeps its ``k`` incoming edges whose strongest
  non-``none`` weight is largest, each with that op (DARTS / NASB cells).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from ..errors import ConfigError
from .mixed import ArchParams

_TOPK = re.compile(r"^top([1-9][0-9]*)_no_none$")


def rule_top_k(rule: str) -> int | None:
    """``k`` of a ``top<k>_no_none`` rule, None for ``argmax``; ConfigError for any other rule."""
    if rule == "argmax":
        return None
    match = _TOPK.match(rule)
    if match is None:
        raise ConfigError(
            f"unknown derivation rule {rule!r}; use 'argmax' or 'top<k>_no_none' (e.g. 'top2_no_none')"
        )
    return int(match.group(1))


@dataclass
class EdgeKind:
    """One kind of edge: candidate ops (alpha columns), edges (alpha rows) and the derivation rule.

    ``edges`` may be given as a count ``n`` (names ``e0 .. e<n-1>``), as a list of names, or left empty
    when ``inputs`` is given (names ``"<node><-<input>"``).
    """

    ops: list[str]
    edges: list[str] | int = field(default_factory=list)
    rule: str = "argmax"
    inputs: dict[str, list[str]] = field(default_factory=dict)
    concat: list[str] = field(default_factory=list)
    graph: str = ""
    none_op: str = "none"

    def __post_init__(self) -> None:
        self.ops = list(self.ops)
        self.inputs = {node: list(ins) for node, ins in self.inputs.items()}
        self.concat = list(self.concat)
        pairs = self.pairs()
        if isinstance(self.edges, int):
            self.edges = [f"e{i}" for i in range(self.edges)]
        elif not self.edges and pairs:
            self.edges = [f"{node}<-{inp}" for node, inp in pairs]
        else:
            self.edges = list(self.edges)

    def pairs(self) -> list[tuple[str, str]]:
        """The (node, input) pair of every edge, in edge order (empty when no graph is declared)."""
        return [(node, inp) for node, ins in self.inputs.items() for inp in ins]

    def edge_pairs(self) -> dict[str, tuple[str, str]]:
        """``{edge name: (node, input)}`` (empty when no graph is declared)."""
        return dict(zip(self.edges, self.pairs(), strict=False)) if self.inputs else {}

    @property
    def top_k(self) -> int | None:
        """``k`` of a ``top<k>_no_none`` rule, None for ``argmax``."""
        return rule_top_k(self.rule)


@dataclass
class SearchSpace:
    """A named set of edge kinds; plain data, JSON-able, checked on construction."""

    name: str
    kinds: dict[str, EdgeKind]

    def __post_init__(self) -> None:
        kinds = {}
        for kind, spec in self.kinds.items():
            spec = replace(spec) if isinstance(spec, EdgeKind) else EdgeKind(**spec)  # a private copy
            spec.graph = spec.graph or kind
            _check_kind(self.name, kind, spec)
            kinds[kind] = spec
        self.kinds = kinds

    def kind(self, name: str) -> EdgeKind:
        """The edge kind ``name``; ConfigError naming the known kinds otherwise."""
        if name not in self.kinds:
            raise ConfigError(
                f"space {self.name!r} has no edge kind {name!r}; kinds: {', '.join(self.kinds)}"
            )
        return self.kinds[name]

    def arch_shapes(self) -> dict[str, tuple[int, int]]:
        """``{kind: (n_edges, n_ops)}``: the alpha layout."""
        return {kind: (len(spec.edges), len(spec.ops)) for kind, spec in self.kinds.items()}

    def arch_params(self, init_std: float = 1e-3, generator: Any = None) -> ArchParams:
        """Fresh architecture parameters laid out for this space."""
        return ArchParams(self.arch_shapes(), init_std=init_std, generator=generator)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SearchSpace:
        return cls(name=data["name"], kinds={k: EdgeKind(**v) for k, v in data["kinds"].items()})

    def to_json(self, indent: int = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_json(cls, text: str) -> SearchSpace:
        return cls.from_dict(json.loads(text))


def _check_kind(space: str, kind: str, spec: EdgeKind) -> None:
    where = f"space {space!r}, edge kind {kind!r}"
    if not kind or "." in kind:
        raise ConfigError(f"{where}: kind names must be non-empty and contain no '.'")
    if not spec.ops or len(set(spec.ops)) != len(spec.ops):
        raise ConfigError(f"{where}: ops must be a non-empty list of distinct names, got {spec.ops}")
    for node, ins in spec.inputs.items():
        if not ins or len(set(ins)) != len(ins):
            raise ConfigError(f"{where}: node {node!r} needs a non-empty list of distinct inputs, got {ins}")
    assert isinstance(spec.edges, list)
    if not spec.edges or len(set(spec.edges)) != len(spec.edges):
        raise ConfigError(
            f"{where}: edges must be a non-empty list of distinct names (or a count), got {spec.edges}"
        )
    k = spec.top_k
    if k is not None and not spec.inputs:
        raise ConfigError(
            f"{where}: rule {spec.rule!r} needs 'inputs' (node -> input names) to rank edges per node"
        )
    if k is not None and not [op for op in spec.ops if op != spec.none_op]:
        raise ConfigError(f"{where}: rule {spec.rule!r} needs at least one op other than {spec.none_op!r}")
    if spec.inputs and len(spec.pairs()) != len(spec.edges):
        raise ConfigError(
            f"{where}: {len(spec.edges)} edge names for {len(spec.pairs())} (node, input) pairs in 'inputs'"
        )
    if spec.concat and not spec.inputs:
        raise ConfigError(f"{where}: 'concat' names nodes, so it needs 'inputs'")
    unknown = [n for n in spec.concat if n not in spec.inputs]
    if unknown:
        raise ConfigError(f"{where}: concat names unknown nodes {unknown}; nodes: {list(spec.inputs)}")
