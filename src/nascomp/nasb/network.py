"""The derived binary network: the :mod:`.macro` layout with the cells a genotype describes.

Each cell keeps the edges its genotype lists (two per node under ``top2_no_none``), each a plain op of
:mod:`.ops` with affine BN; the width (``channels``, the stem's and the first cells' C) and the depth
(``layers``) are options of the network, not of the genotype (DARTS trains its found cells wider and deeper
than it searched them). The search and the training pipelines, and ``nascomp cost``, build it from here.

The binary bases of every binary conv (``single``, ``groupnet:K``, ``abcnet:MxN``,
:mod:`nascomp.quant.multibase`) belong to the genotype: ``meta["bases"]`` (absent = ``single``), set by a search
with bases or by :func:`with_bases`; a network built with ``bases=`` records them in its ``genotype``, so the
``genotype.json`` a training run writes rebuilds the same network. Genotypes shipped with nascomp load by name
(``nasb-cifar10-quick-seed0``, see :func:`published_genotypes`).
"""

from __future__ import annotations

from dataclasses import replace
from importlib import resources
from pathlib import Path

from ..errors import ConfigError
from ..nas import Genotype, SearchSpace, validate
from ..quant.multibase import SINGLE, Bases, parse_bases
from .macro import CellNetwork, CellSpec
from .ops import NASB_OPS
from .space import MULTIPLIER, NASB_SPACE, Cell, kind_of

GENOTYPE_FILE = "genotype.json"
PREFIX = "nasb-"


def genotype_bases(genotype: Genotype) -> Bases:
    """The bases a genotype records in ``meta["bases"]`` (single when absent); a bad entry names the file."""
    value = genotype.meta.get("bases")
    try:
        return parse_bases(value)
    except ConfigError as err:
        raise ConfigError(f"{genotype.source}: meta.bases: {err}") from None


def with_bases(genotype: Genotype, bases: Bases | str | None) -> Genotype:
    """A copy of ``genotype`` whose binary convs have ``bases`` (``meta["bases"]``; dropped for single)."""
    chosen = parse_bases(bases)
    meta = {k: v for k, v in genotype.meta.items() if k != "bases"}
    if chosen != SINGLE:
        meta["bases"] = str(chosen)
    return replace(genotype, meta=meta, source=genotype.source)


def derived_cell(spec: CellSpec, genotype: Genotype, space: SearchSpace = NASB_SPACE) -> Cell:
    """The cell of kind ``normal``/``reduce`` (from ``spec``) that ``genotype`` describes (with its bases)."""
    kind = kind_of(spec)
    pairs = space.kind(kind).edge_pairs()
    entries = genotype.edges[kind]
    chosen = {entry["edge"]: entry["op"] for entry in entries}
    edges = [(entry["edge"], *pairs[entry["edge"]]) for entry in entries]
    bases = str(genotype_bases(genotype))

    def make_edge(name: str, stride: int):
        return NASB_OPS.build(chosen[name], c=spec.c, stride=stride, affine=True, bases=bases)

    return Cell(spec, space, edges, make_edge, affine=True, bases=bases)


class NASBNetwork(CellNetwork):
    """A binary cell network built from a (validated) NASB genotype; ``bases`` (a string, None: the genotype's
    own) overrides the genotype's bases and is recorded in ``self.genotype``."""

    def __init__(
        self,
        genotype: Genotype,
        in_channels: int,
        num_classes: int,
        channels: int = 16,
        layers: int = 8,
        space: SearchSpace = NASB_SPACE,
        bases: str | None = None,
    ):
        validate(genotype, space)
        genotype = with_bases(genotype, genotype_bases(genotype) if bases is None else bases)
        super().__init__(
            in_channels,
            channels,
            layers,
            num_classes,
            MULTIPLIER,
            lambda spec: derived_cell(spec, genotype, space),
        )
        self.genotype = genotype
        self.bases = str(genotype_bases(genotype))


def published_genotypes() -> list[str]:
    """Names of the NASB genotypes shipped with nascomp (``nasb-<dataset>-<how found>``)."""
    folder = resources.files(__package__).joinpath("genotypes")
    return sorted(p.name[: -len(".json")] for p in folder.iterdir() if p.name.endswith(".json"))


def load_genotype(path: str | Path, space: SearchSpace = NASB_SPACE) -> Genotype:
    """Read and validate a published genotype by name, a genotype file, or the ``genotype.json`` of a run folder."""
    text = str(path)
    if text.startswith(PREFIX) and not text.endswith(".json") and not Path(text).exists():
        known = published_genotypes()
        if text not in known:
            raise ConfigError(f"unknown published genotype {text!r}; choose one of {', '.join(known)} "
                              "or give the path of a genotype.json")
        resource = resources.files(__package__).joinpath("genotypes", f"{text}.json")
        genotype = Genotype.from_json(resource.read_text(), space, source=text)
    else:
        path = Path(path)
        if path.is_dir():
            path = path / GENOTYPE_FILE
        genotype = Genotype.load(path, space)
    genotype_bases(genotype)
    return genotype
