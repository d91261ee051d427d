"""The AutoReCon generators of a DFQ run: a published or saved genotype, or one searched first (``search``).

``--generator search`` runs the generator search (:mod:`nascomp.recon.search`) in ``<dfq run>/search`` with
the search preset of the same name as the DFQ preset (``quick`` for any other), the DFQ run's seed and device.
Its cost is kept apart: the DFQ ``seconds`` start after it, and metrics.json reports it as ``search_seconds``.
A resumed DFQ run resumes (or, when finished, reuses) that search, restoring the random state it ended with,
so an interrupted run ends with the same numbers as an uninterrupted one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from torch import nn

from ..config import GENERATOR_SEARCH_PRESETS, DFQConfig, GeneratorSearchConfig, resolve
from ..engine.rundir import RUN_MARKER
from ..errors import ConfigError
from ..recon import (
    AutoReConGenerator,
    ImageSource,
    generator_from_genotype,
    load_genotype,
    published_genotypes,
    search_generator,
)
from .sources import load_teacher

SEARCH_DIR = "search"
BUILT_IN = ("gdfq", "noise", "direct", "genie", "search")


def search_config_for(cfg: DFQConfig) -> GeneratorSearchConfig:
    """The search settings of ``--generator search`` in a DFQ run."""
    preset = cfg.preset if cfg.preset in GENERATOR_SEARCH_PRESETS else "quick"
    overrides = {"model": cfg.model, "weights": cfg.weights, "seed": cfg.seed, "device": cfg.device}
    return resolve(GeneratorSearchConfig, GENERATOR_SEARCH_PRESETS, preset, overrides)


def genotype_spec(spec: str) -> str:
    """The published name or genotype file that ``--generator spec`` names (a run folder: its genotype.json)."""
    path = Path(spec)
    if path.is_dir() and (path / "genotype.json").is_file():
        return str(path / "genotype.json")
    if spec.startswith("autorecon-") or spec.endswith(".json"):
        return spec
    raise ConfigError(f"unknown generator {spec!r}; choose gdfq, noise, direct, genie, autorecon-<name> "
                      f"({', '.join(published_genotypes())}), PATH/genotype.json or search")


def check_generator(spec: str) -> None:
    """Raise the one-line ConfigError of a bad ``--generator`` (unknown name, bad genotype file) early."""
    if spec not in BUILT_IN:
        load_genotype(genotype_spec(spec))


def genotype_generator(spec: str, teacher: nn.Module) -> AutoReConGenerator:
    """The generator of ``autorecon-<name>`` or ``PATH/genotype.json`` for ``teacher``'s classes and input."""
    mcfg = teacher.default_cfg
    return generator_from_genotype(genotype_spec(spec), mcfg.num_classes, mcfg.input_size)


def searched_generator(cfg: DFQConfig, teacher: nn.Module, workdir: Path, quiet: bool = True) -> ImageSource:
    """Search a genotype for ``teacher`` in ``<workdir>/search`` (resuming one there), then build its generator."""
    folder = Path(workdir) / SEARCH_DIR
    resume = str(folder) if (folder / RUN_MARKER).is_file() else None
    metrics = search_generator(search_config_for(cfg), teacher, out=str(folder), resume=resume, quiet=quiet)
    return genotype_generator(metrics["genotype"], teacher)


def search_seconds(workdir: str | Path) -> float | None:
    """Seconds the generator search of a DFQ run took (None when the run did not search)."""
    metrics = Path(workdir) / SEARCH_DIR / "metrics.json"
    return json.loads(metrics.read_text())["seconds"] if metrics.is_file() else None


def run_generator_search(cfg: GeneratorSearchConfig, out: str | None = None, force: bool = False,
                         resume: str | None = None, quiet: bool = False,
                         stop_after: float | None = None) -> dict[str, Any]:
    """``nascomp search-generator``: load the model named by ``cfg`` and search its generator."""
    return search_generator(cfg, load_teacher(cfg), out, force, resume, quiet, stop_after)  # type: ignore[arg-type]
