"""Cost reports for ``nascomp cost`` and the NASB runs: FLOPs, BOPs, OPs = FLOPs + BOPs / 64.

Counting is :func:`nascomp.quant.cost.count_cost` (Bi-Real / ReActNet convention); this module only builds
the model to count (a registered model, or the network a genotype describes, fully binary) and matches the
width of a searched network to an OPs budget (:func:`width_for_ops`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from ..config import NASBTrainConfig
from ..engine import atomic_write_text
from ..errors import ConfigError
from ..models import ModelCfg, create_model
from ..nas import Genotype
from ..quant.binary import set_binary_stage
from ..quant.cost import CostReport, count_cost, format_cost_table
from .network import NASBNetwork, load_genotype
from .student import build_student

GENOTYPE_INPUT = (3, 32, 32)  # default input of a genotype network: CIFAR


def parse_input_size(text: str) -> tuple[int, int, int]:
    """``"3x224x224"`` -> ``(3, 224, 224)``."""
    parts = text.lower().split("x")
    if len(parts) != 3 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise ConfigError(f"--input {text!r}: give channels x height x width, e.g. 3x224x224")
    c, h, w = (int(p) for p in parts)
    return c, h, w


def network_cost(genotype: Genotype, icfg: ModelCfg, channels: int, layers: int, stage: int = 3,
                 bases: str | None = None) -> CostReport:
    """Cost of the network ``genotype`` describes at width ``channels`` and depth ``layers``, in ``stage``, with
    ``bases`` (None: the genotype's own)."""
    c, _, _ = icfg.input_size
    net = NASBNetwork(genotype, c, icfg.num_classes, channels, layers, bases=bases)
    set_binary_stage(net, stage)
    return count_cost(net, icfg.input_size)


def student_cost(cfg: NASBTrainConfig, icfg: ModelCfg) -> CostReport:
    """Cost of the fully binary student that ``nascomp nasb train`` builds from ``cfg`` for data ``icfg``."""
    model, _ = build_student(cfg, icfg)
    set_binary_stage(model, 3)
    return count_cost(model, icfg.input_size)


def width_for_ops(
    genotype: Genotype, icfg: ModelCfg, layers: int, target_ops: float, widths: Iterable[int] = range(2, 129),
    bases: str | None = None,
) -> tuple[int, CostReport]:
    """The width whose fully binary network (with ``bases``; None: the genotype's) has the OPs closest to
    ``target_ops`` (OPs grow with width)."""
    best: tuple[int, CostReport] | None = None
    for width in widths:
        report = network_cost(genotype, icfg, width, layers, bases=bases)
        if best is None or abs(report.ops - target_ops) < abs(best[1].ops - target_ops):
            best = (width, report)
        if report.ops > target_ops:
            break
    if best is None:
        raise ConfigError("no width to try; pass a non-empty range of widths")
    return best


def write_cost(report: CostReport, folder: Path, name: str = "cost") -> None:
    """``<name>.json`` (totals and layer rows) and ``<name>.txt`` (the table) in ``folder``."""
    atomic_write_text(folder / f"{name}.json", json.dumps(report.to_dict(), indent=2) + "\n")
    atomic_write_text(folder / f"{name}.txt", format_cost_table(report) + "\n")


def cost_of(
    model: str | None = None,
    genotype: str | Path | None = None,
    input_size: str | None = None,
    include_other: bool = False,
    channels: int = 16,
    layers: int = 8,
    num_classes: int = 10,
    bases: str | None = None,
) -> CostReport:
    """``nascomp cost``: the cost of a registered model (at its own input size unless ``input_size``) or of
    the fully binary network a genotype describes (CIFAR input unless ``input_size``; ``bases`` None: its own)."""
    if (model is None) == (genotype is None):
        raise ConfigError("give exactly one of --model M or --genotype G")
    if model is not None and bases is not None:
        raise ConfigError(f"--bases sets the binary bases of a genotype network; --model {model} has its own")
    size = parse_input_size(input_size) if input_size else None
    if model is not None:
        net = create_model(model)
        size = size or tuple(net.default_cfg.input_size)
    else:
        assert genotype is not None
        size = size or GENOTYPE_INPUT
        net = NASBNetwork(load_genotype(genotype), size[0], num_classes, channels, layers, bases=bases)
    return count_cost(net, size, include_other=include_other)  # type: ignore[arg-type]


def cost_summary(report: CostReport) -> tuple[dict, str]:
    """The JSON record and the text table of ``report`` (what ``nascomp cost`` prints)."""
    return report.to_dict(), format_cost_table(report)
