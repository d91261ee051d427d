"""Pictures of a NASB search: one Graphviz drawing per cell kind and the alpha history plot."""

from __future__ import annotations

from pathlib import Path

from ..engine import atomic_write_text
from ..nas import Genotype, SearchSpace, plot_alpha_history, render, to_dot
from .space import NASB_SPACE


def cell_dot(genotype: Genotype, kind: str, space: SearchSpace = NASB_SPACE) -> str:
    """Graphviz dot text of the ``kind`` cell (``normal`` or ``reduce``) of ``genotype``."""
    one_space = SearchSpace(space.name, {kind: space.kind(kind)})
    one = Genotype(genotype.space, {kind: genotype.edges[kind]}, {kind: genotype.concat.get(kind, [])})
    return to_dot(one, one_space)


def draw_cells(genotype: Genotype, folder: Path, space: SearchSpace = NASB_SPACE) -> list[Path]:
    """Write ``cell_<kind>.dot`` for every kind, and ``cell_<kind>.png`` where Graphviz is installed."""
    written = []
    for kind in space.kinds:
        text = cell_dot(genotype, kind, space)
        dot_path = folder / f"cell_{kind}.dot"
        atomic_write_text(dot_path, text)
        written.append(dot_path)
        png = render(text, folder / f"cell_{kind}.png")
        if png is not None:
            written.append(png)
    return written


def plot_alphas(history: list[dict], path: Path, space: SearchSpace = NASB_SPACE) -> Path | None:
    """The alpha history (one snapshot per epoch) as a figure; None without matplotlib."""
    return plot_alpha_history(history, space, path)
