"""Drawing a genotype: Graphviz dot text always, PNG/SVG/PDF where the ``dot`` program exists.

Kinds that declare a graph (``inputs``) are drawn as edges ``input -> node`` labelled with the chosen op
(``none`` dashed and grey), one cluster per ``graph`` name, with ``concat`` nodes feeding an output node.
Kinds without a graph are drawn as a list of ``edge: op`` boxes.
"""

from __future__ import annotations

import shutil
import subprocess
import warnings
from pathlib import Path

from ..errors import ConfigError
from .genotype import Genotype
from .space import SearchSpace

FORMATS = ("png", "svg", "pdf")


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(genotype: Genotype, space: SearchSpace) -> str:
    """Graphviz dot text for ``genotype`` (drawn with the structure declared by ``space``)."""
    lines = ["digraph genotype {", "  rankdir=LR;", f"  label={_q(f'{genotype.space} genotype')};"]
    lines += ["  node [shape=box, style=rounded, fontname=Helvetica];", "  edge [fontname=Helvetica];"]
    graphs: dict[str, list[str]] = {}
    for kind, spec in space.kinds.items():
        body = graphs.setdefault(spec.graph, [])
        entries = genotype.edges.get(kind, [])
        if not spec.inputs:
            for entry in entries:
                edge, op = entry["edge"], entry["op"]
                style = ", style=dashed, color=grey" if op == spec.none_op else ""
                body.append(f"    {_q(kind + '/' + edge)} [label={_q(f'{kind} {edge}: {op}')}{style}];")
            continue
        pairs = spec.edge_pairs()
        for entry in entries:
            node, inp = pairs.get(entry["edge"], (entry.get("node", "?"), entry.get("input", "?")))
            style = ", style=dashed, color=grey, fontcolor=grey" if entry["op"] == spec.none_op else ""
            body.append(
                f"    {_q(f'{spec.graph}/{inp}')} -> {_q(f'{spec.graph}/{node}')} [label={_q(entry['op'])}{style}];"
            )
        for node in dict.fromkeys(name for pair in spec.pairs() for name in pair):
            body.append(f"    {_q(f'{spec.graph}/{node}')} [label={_q(node)}];")
        if spec.concat:
            out = f"{spec.graph}/output"
            body.append(f"    {_q(out)} [label={_q('output')}, shape=ellipse];")
            body += [f"    {_q(f'{spec.graph}/{node}')} -> {_q(out)};" for node in spec.concat]
    for i, (graph, body) in enumerate(graphs.items()):
        lines += [
            f"  subgraph cluster_{i} {{",
            f"    label={_q(graph)};",
            *sorted(set(body), key=body.index),
            "  }",
        ]
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(dot_text: str, path: str | Path) -> Path | None:
    """Render dot text to ``path`` (format from its suffix: .png, .svg or .pdf).

    Returns the path, or None when Graphviz's ``dot`` is not installed (or fails, with a warning): a
    drawing is an optional extra, never a reason for a run to fail.
    """
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        raise ConfigError(
            f"{path}: cannot render a genotype to {path.suffix or 'no suffix'!r}; use .png, .svg or .pdf"
        )
    dot = shutil.which("dot")
    if dot is None:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [dot, f"-T{fmt}", "-o", str(path)], input=dot_text, text=True, capture_output=True, check=False
    )
    if done.returncode != 0:
        warnings.warn(f"dot failed to render {path}: {done.stderr.strip()}", RuntimeWarning, stacklevel=2)
        return None
    return path
