"""Genotypes: the found architecture as a plain, versioned JSON record, and its derivation from alphas.

One format fits every space::

    {"format": "nascomp-genotype", "version": 1, "space": "<space name>",
     "edges": {"<kind>": [{"edge": "e0", "op": "conv_3x3"}, ...],                        # argmax kinds
               "<cell>": [{"edge": "n0<-c0", "node": "n0", "input": "c0", "op": "sep_conv_3x3"}, ...]},
     "concat": {"<cell>": ["n0", "n1", "n2", "n3"]},
     "meta": {...free-form: epoch, dataset, source...}}

``argmax`` kinds list every edge, in the space's edge order (an op may be ``none``); ``top<k>_no_none``
kinds list only the kept edges, node by node. Entries of kinds that declare a graph (``inputs``) also
record the edge's node and input. :func:`validate` checks a
genotype against its space and raises one-line ConfigErrors that name the file, the problem and the fix.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import ConfigError
from .mixed import ArchParams
from .space import EdgeKind, SearchSpace

FORMAT = "nascomp-genotype"
VERSION = 1


@dataclass
class Genotype:
    """The chosen op per edge (see the module docstring for the layout); ``source`` names where it came from."""

    space: str
    edges: dict[str, list[dict[str, str]]]
    concat: dict[str, list[str]] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    source: str = field(default="<genotype>", compare=False, repr=False)

    def ops(self, kind: str) -> list[str]:
        """The chosen ops of one kind, in entry order."""
        return [entry["op"] for entry in self.edges[kind]]

    def chosen(self, kind: str) -> dict[str, str]:
        """``{edge name: op}`` for one kind."""
        return {entry["edge"]: entry["op"] for entry in self.edges[kind]}

    @classmethod
    def from_ops(cls, space: SearchSpace, ops: Mapping[str, list[str]], **meta: Any) -> Genotype:
        """A genotype of ``argmax`` kinds from plain op lists in edge order (handy for published genotypes)."""
        source = f"<published genotype of {space.name}>"
        edges = {}
        for kind, names in ops.items():
            spec = space.kind(kind)
            if len(names) != len(spec.edges):
                raise ConfigError(
                    f"{source}: wrong edge count for kind {kind!r}: {len(names)} ops, the space has {len(spec.edges)} edges"
                )
            edges[kind] = [_entry(spec, e, op) for e, op in zip(spec.edges, names, strict=True)]
        genotype = cls(space=space.name, edges=edges, meta=dict(meta), source=source)
        validate(genotype, space)
        return genotype

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "format": FORMAT,
            "version": VERSION,
            "space": self.space,
            "edges": self.edges,
        }
        if self.concat:
            data["concat"] = self.concat
        if self.meta:
            data["meta"] = self.meta
        return data

    @classmethod
    def from_dict(cls, data: Any, source: str = "<genotype>") -> Genotype:
        """Read a genotype record, checking format, version and structure (not the space: see :func:`validate`)."""
        fix = "re-derive it or write it with Genotype.save"
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            found = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise ConfigError(f"{source}: not a genotype file (format {found!r}, expected {FORMAT!r}); {fix}")
        version = data.get("version")
        if type(version) is not int or version != VERSION:  # true == 1 in Python, not in a version field
            raise ConfigError(
                f"{source}: genotype version {version!r} is not supported (this nascomp reads version {VERSION}); "
                "upgrade nascomp or re-derive the genotype"
            )
        space, edges = data.get("space"), data.get("edges")
        if not isinstance(space, str) or not space:
            raise ConfigError(f"{source}: genotype has no 'space' name; {fix}")
        if not isinstance(edges, dict) or not all(isinstance(v, list) for v in edges.values()):
            raise ConfigError(f"{source}: 'edges' must map each edge kind to a list of entries; {fix}")
        for kind, entries in edges.items():
            for i, entry in enumerate(entries):
                if not (
                    isinstance(entry, dict)
                    and isinstance(entry.get("edge"), str)
                    and isinstance(entry.get("op"), str)
                ):
                    raise ConfigError(
                        f"{source}: entry {i} of kind {kind!r} needs string 'edge' and 'op', got {entry!r}; {fix}"
                    )
        concat = data.get("concat", {})
        if not isinstance(concat, dict) or not all(isinstance(v, list) for v in concat.values()):
            raise ConfigError(f"{source}: 'concat' must map kinds to lists of node names; {fix}")
        meta = data.get("meta", {})
        if not isinstance(meta, dict):
            raise ConfigError(f"{source}: 'meta' must be a JSON object; {fix}")
        return cls(space=space, edges=edges, concat=concat, meta=meta, source=source)

    def to_json(self) -> str:
        """JSON text with one line per edge entry (readable diffs between genotypes)."""
        return _dump(self.to_dict(), 0)

    @classmethod
    def from_json(cls, text: str, space: SearchSpace | None = None, source: str = "<genotype>") -> Genotype:
        """Parse JSON text; validate against ``space`` when given."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ConfigError(
                f"{source}: not valid JSON ({err}); fix the file or re-derive the genotype"
            ) from None
        except RecursionError:
            raise ConfigError(
                f"{source}: JSON nested too deeply to be a genotype; fix the file or re-derive the genotype"
            ) from None
        genotype = cls.from_dict(data, source=source)
        if space is not None:
            validate(genotype, space)
        return genotype

    def save(self, path: str | Path) -> Path:
        """Write the JSON record to ``path`` (parent folders created); returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_json() + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path, space: SearchSpace | None = None) -> Genotype:
        """Read a genotype file; validate against ``space`` when given."""
        path = Path(path)
        if not path.is_file():
            raise ConfigError(
                f"{path}: genotype file not found; give the path of a genotype.json written by a search"
            )
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as err:
            raise ConfigError(
                f"{path}: not UTF-8 text (byte {err.start}); a genotype is a JSON file written by a search"
            ) from None
        except OSError as err:
            raise ConfigError(f"{path}: genotype file cannot be read ({err.strerror}); check its permissions") from None
        return cls.from_json(text, space=space, source=str(path))


def _dump(value: Any, level: int) -> str:
    """Indented JSON whose innermost objects and lists stay on one line."""
    pad, inner = "  " * level, "  " * (level + 1)
    if isinstance(value, dict) and any(isinstance(v, dict | list) for v in value.values()):
        items = [f"{inner}{json.dumps(k)}: {_dump(v, level + 1)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    if isinstance(value, list) and any(isinstance(v, dict | list) for v in value):
        return "[\n" + ",\n".join(f"{inner}{_dump(v, level + 1)}" for v in value) + f"\n{pad}]"
    return json.dumps(value)


def validate(genotype: Genotype, space: SearchSpace) -> None:
    """Check a genotype against a space: space name, kinds, edge names and count, ops, per-node structure."""
    src = genotype.source
    if genotype.space != space.name:
        raise ConfigError(
            f"{src}: genotype is for space {genotype.space!r}, not {space.name!r}; use a genotype found in {space.name!r}"
        )
    missing = [k for k in space.kinds if k not in genotype.edges]
    extra = [k for k in genotype.edges if k not in space.kinds]
    if missing or extra:
        raise ConfigError(
            f"{src}: edge kinds do not match space {space.name!r} (missing {missing}, unknown {extra}); "
            f"expected kinds {list(space.kinds)}"
        )
    for kind, spec in space.kinds.items():
        entries = genotype.edges[kind]
        for entry in entries:
            _validate_entry(src, kind, spec, entry)
        if spec.top_k is None:
            _validate_argmax(src, kind, spec, entries)
        else:
            _validate_top_k(src, kind, spec, entries)
        concat = genotype.concat.get(kind, [])
        if concat != spec.concat:
            raise ConfigError(
                f"{src}: concat of kind {kind!r} is {concat}, the space says {spec.concat}; re-derive it"
            )


def _validate_entry(src: str, kind: str, spec: EdgeKind, entry: dict[str, str]) -> None:
    edge, op = entry["edge"], entry["op"]
    if edge not in spec.edges:
        raise ConfigError(f"{src}: unknown edge {edge!r} in kind {kind!r}; edges: {', '.join(spec.edges)}")
    if op not in spec.ops:
        raise ConfigError(
            f"{src}: unknown op {op!r} on edge {edge!r} of kind {kind!r}; choose one of {', '.join(spec.ops)}"
        )
    pair = spec.edge_pairs().get(edge)
    if pair is not None and (entry.get("node", pair[0]), entry.get("input", pair[1])) != pair:
        raise ConfigError(
            f"{src}: edge {edge!r} of kind {kind!r} runs {pair[1]!r} -> {pair[0]!r}, the entry says otherwise; "
            "fix its node/input"
        )


def _validate_argmax(src: str, kind: str, spec: EdgeKind, entries: list[dict[str, str]]) -> None:
    if len(entries) != len(spec.edges):
        raise ConfigError(
            f"{src}: wrong edge count for kind {kind!r}: {len(entries)} entries, the space has "
            f"{len(spec.edges)} edges; re-derive the genotype for this space"
        )
    for i, (entry, name) in enumerate(zip(entries, spec.edges, strict=True)):
        if entry["edge"] != name:
            raise ConfigError(
                f"{src}: entry {i} of kind {kind!r} is edge {entry['edge']!r}, expected {name!r}; "
                "list the edges in space order"
            )


def _validate_top_k(src: str, kind: str, spec: EdgeKind, entries: list[dict[str, str]]) -> None:
    pairs = spec.edge_pairs()
    per_node: dict[str, list[str]] = {node: [] for node in spec.inputs}
    for entry in entries:
        edge, node = entry["edge"], pairs[entry["edge"]][0]
        if entry["op"] == spec.none_op:
            raise ConfigError(
                f"{src}: edge {edge!r} of kind {kind!r} keeps {spec.none_op!r}, which rule {spec.rule!r} "
                "excludes; choose another op or re-derive"
            )
        if edge in per_node[node]:
            raise ConfigError(
                f"{src}: edge {edge!r} of kind {kind!r} is listed twice; keep one entry per edge"
            )
        per_node[node].append(edge)
    for node, kept in per_node.items():
        want = min(spec.top_k or 0, len(spec.inputs[node]))
        if len(kept) != want:
            raise ConfigError(
                f"{src}: wrong edge count at node {node!r} of kind {kind!r}: {len(kept)} edges, rule "
                f"{spec.rule!r} keeps {want}; re-derive the genotype"
            )


def derive(
    space: SearchSpace,
    arch_params: ArchParams | Mapping[str, torch.Tensor],
    meta: Mapping[str, Any] | None = None,
) -> Genotype:
    """Apply each kind's rule to the softmaxed alphas and return the genotype.

    ``arch_params`` is an :class:`ArchParams` or a mapping ``{kind: alpha logits}``. Ties go to the
    earlier op (and, when ranking edges, to the earlier edge).
    """
    edges: dict[str, list[dict[str, str]]] = {}
    concat: dict[str, list[str]] = {}
    for kind, spec in space.kinds.items():
        try:
            alpha = arch_params[kind]
        except KeyError:
            raise ConfigError(
                f"no alphas for edge kind {kind!r} of space {space.name!r}; load alphas searched in this space"
            ) from None
        if tuple(alpha.shape) != (len(spec.edges), len(spec.ops)):
            raise ConfigError(
                f"alphas of kind {kind!r} have shape {tuple(alpha.shape)}, space {space.name!r} expects "
                f"{(len(spec.edges), len(spec.ops))}; load alphas searched in this space"
            )
        weights = torch.softmax(alpha.detach().float(), dim=-1).tolist()
        edges[kind] = _argmax(spec, weights) if spec.top_k is None else _top_k(spec, weights, spec.top_k)
        if spec.concat:
            concat[kind] = list(spec.concat)
    return Genotype(space=space.name, edges=edges, concat=concat, meta=dict(meta or {}))


def _best(row: list[float], allowed: list[int]) -> int:
    return max(allowed, key=lambda i: (row[i], -i))


def _entry(spec: EdgeKind, edge: str, op: str) -> dict[str, str]:
    """One genotype entry; kinds with a declared graph also record the edge's node and input."""
    pair = spec.edge_pairs().get(edge)
    return (
        {"edge": edge, "op": op}
        if pair is None
        else {"edge": edge, "node": pair[0], "input": pair[1], "op": op}
    )


def _argmax(spec: EdgeKind, weights: list[list[float]]) -> list[dict[str, str]]:
    every = list(range(len(spec.ops)))
    return [_entry(spec, e, spec.ops[_best(row, every)]) for e, row in zip(spec.edges, weights, strict=True)]


def _top_k(spec: EdgeKind, weights: list[list[float]], k: int) -> list[dict[str, str]]:
    allowed = [i for i, op in enumerate(spec.ops) if op != spec.none_op]
    rows = dict(zip(spec.edges, weights, strict=True))
    pairs = spec.edge_pairs()
    out = []
    for node in spec.inputs:
        incoming = [e for e in spec.edges if pairs[e][0] == node]
        best = {e: _best(rows[e], allowed) for e in incoming}
        ranked = sorted(range(len(incoming)), key=lambda j: (-rows[incoming[j]][best[incoming[j]]], j))
        for j in sorted(ranked[:k]):
            e = incoming[j]
            out.append(_entry(spec, e, spec.ops[best[e]]))
    return out
