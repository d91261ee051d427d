"""The derived binary network: the :mod:`.macro` layout with the cells a genotype describes.

Each cell keeps the edges its genotype lists (two per node under ``top2_no_none``), each a plain op of
:mod:`.ops` with affine BN; the width (``channels``, the stem's and the first cells' C) and the depth
(``layers``) are options of the network, not of the genotype (DARTS trains its found cells wider and deeper
than it searched them). The search and the training pipelines, and ``nascomp cost``, build it from here.
"""

from __future__ import annotations

from pathlib import Path

from ..nas import Genotype, SearchSpace, validate
from .macro import CellNetwork, CellSpec
from .ops import NASB_OPS
from .space import MULTIPLIER, NASB_SPACE, Cell, kind_of

GENOTYPE_FILE = "genotype.json"


def derived_cell(spec: CellSpec, genotype: Genotype, space: SearchSpace = NASB_SPACE) -> Cell:
    """The cell of kind ``normal``/``reduce`` (from ``spec``) that ``genotype`` describes."""
    kind = kind_of(spec)
    pairs = space.kind(kind).edge_pairs()
    entries = genotype.edges[kind]
    chosen = {entry["edge"]: entry["op"] for entry in entries}
    edges = [(entry["edge"], *pairs[entry["edge"]]) for entry in entries]

    def make_edge(name: str, stride: int):
        return NASB_OPS.build(chosen[name], c=spec.c, stride=stride, affine=True)

    return Cell(spec, space, edges, make_edge, affine=True)


class NASBNetwork(CellNetwork):
    """A binary cell network built from a (validated) NASB genotype."""

    def __init__(
        self,
        genotype: Genotype,
        in_channels: int,
        num_classes: int,
        channels: int = 16,
        layers: int = 8,
        space: SearchSpace = NASB_SPACE,
    ):
        validate(genotype, space)
        super().__init__(
            in_channels,
            channels,
            layers,
            num_classes,
            MULTIPLIER,
            lambda spec: derived_cell(spec, genotype, space),
        )
        self.genotype = genotype


def load_genotype(path: str | Path, space: SearchSpace = NASB_SPACE) -> Genotype:
    """Read and validate a genotype file, or the ``genotype.json`` inside a search run folder."""
    path = Path(path)
    if path.is_dir():
        path = path / GENOTYPE_FILE
    return Genotype.load(path, space)
