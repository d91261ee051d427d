"""``nascomp nasb search``: bi-level search of binary cells on labelled images (NASB, Zhu et al. IJCNN 2020).

The training images (optionally a seeded ``subset``) are split into two halves: the supernet's weights learn
on one, the alphas on the other (DARTS, Liu et al. ICLR 2019), one :class:`~nascomp.nas.ArchSearcher` step at
a time (first order by default, ``order=2`` for the unrolled gradient). Weights: Adam with cosine decay to 0,
no decay on binary conv weights; alphas: Adam 3e-4, betas (0.5, 0.999), decay 1e-3 (DARTS). The binary ops
are fully binary during the search (stage 3), since the found cell is meant for a binary network.

Collapse into parameter-free ops is countered by the real-valued shortcut inside every binary op (see
:mod:`.ops` and docs/NASB.md); each epoch logs how many of the derived cell's edges are pools or skips.
``relaxation="gumbel"`` samples one op per edge and step (GDAS) instead of running the whole mixture, so a
search fits a CPU budget (the ``quick`` preset).

The run folder holds ``genotype.json``, ``cell_normal.dot``/``cell_reduce.dot`` (and ``.png`` where Graphviz
is installed), ``alphas.png`` (where matplotlib is), ``cost.json``/``cost.txt`` of the derived network at the
search width and depth and the data's input size, ``metrics.json``, and ``checkpoint.pt`` after every epoch
(``--resume`` continues from it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from ..config import NASBSearchConfig
from ..engine import Run, Stage, lr_factor, run_epoch, set_lr
from ..engine.precision import channels_last_input
from ..errors import ConfigError
from ..nas import ArchSearcher, Genotype, derive, split_parameters
from ..quant.multibase import parse_bases
from .data import halves, input_cfg, open_split, take, train_batches
from .drawing import draw_cells, plot_alphas
from .network import with_bases
from .ops import PARAMETER_FREE
from .optim import param_groups
from .report import network_cost, write_cost
from .space import NASB_SPACE, Supernet

RELAXATIONS = ("softmax", "gumbel")


@dataclass
class SearchResults:
    """softmax(alpha) per kind: at the start, then after every epoch."""

    alphas: list[dict] = field(default_factory=list)


def parameter_free_edges(genotype: Genotype) -> dict[str, int]:
    """How many kept edges of each cell kind are pools or skips (a collapsed search keeps nearly only those)."""
    return {kind: sum(op in PARAMETER_FREE for op in genotype.ops(kind)) for kind in genotype.edges}


def derive_capped(arch: Mapping[str, torch.Tensor], max_free: int | None, meta: dict | None = None) -> Genotype:
    """Derive (two strongest incoming edges per node, no ``none``), then, while a cell keeps more than
    ``max_free`` pool/skip edges, forbid the parameter-free ops on the weakest such edge and derive again
    (the cap of P-DARTS, Chen et al. ICCV 2019, against the collapse into parameter-free ops)."""
    alphas = {kind: arch[kind].detach().clone() for kind in NASB_SPACE.kinds}
    while True:
        genotype = derive(NASB_SPACE, alphas, meta=meta)
        if max_free is None:
            return genotype
        over = [kind for kind, n in parameter_free_edges(genotype).items() if n > max_free]
        if not over:
            return genotype
        kind = over[0]
        spec = NASB_SPACE.kind(kind)
        free = [i for i, op in enumerate(spec.ops) if op in PARAMETER_FREE]
        weights = torch.softmax(alphas[kind], -1)
        rows = [spec.edges.index(e["edge"]) for e in genotype.edges[kind] if e["op"] in PARAMETER_FREE]
        weakest = min(rows, key=lambda r: weights[r, free].max().item())
        alphas[kind][weakest, free] = float("-inf")


class NASBSearch(Run):
    """One search run; ``run()`` returns the metrics also written to ``metrics.json``."""

    job = "nasb-search"
    Results = SearchResults
    parts = ("model", "searcher")

    def check(self, cfg: NASBSearchConfig) -> NASBSearchConfig:
        return check_search_config(cfg)

    def build(self) -> None:
        cfg, d = self.cfg, self.dist
        images = take(open_split(cfg.data, "train"), cfg.subset, cfg.seed)
        self.icfg = input_cfg(images)
        weight_half, arch_half = halves(images, cfg.seed)
        self.w_batches = train_batches(weight_half, self.icfg, cfg.batch_size, cfg.augment, cfg.seed, d.rank,
                                       d.world_size)
        self.a_batches = train_batches(arch_half, self.icfg, cfg.batch_size, cfg.augment, cfg.seed + 1, d.rank,
                                       d.world_size)
        self.steps_per_epoch = min(len(self.w_batches), len(self.a_batches))
        c, _, _ = self.icfg.input_size
        self.model = Supernet(
            c, self.icfg.num_classes, cfg.channels, cfg.layers, binary_shortcut=cfg.binary_shortcut,
            bases=cfg.bases or "single",
        ).to(self.device).train()
        self.precision.prepare(self.model)  # channels-last (when chosen) before the optimizers make their state
        weights, alphas = split_parameters(self.model)
        w_opt = torch.optim.Adam(param_groups(self.model, weights, cfg.weight_decay, 0.0), lr=cfg.w_lr)
        a_opt = torch.optim.Adam(alphas, lr=cfg.a_lr, betas=(0.5, 0.999), weight_decay=cfg.a_weight_decay)
        self.searcher = ArchSearcher(
            self.model, self.model.arch, w_opt, a_opt, self._loss, order=cfg.order, grad_clip=cfg.grad_clip
        )
        self.results.alphas.append(self.searcher.alpha_snapshot())

    def stages(self) -> list[Stage]:
        return [Stage("search", self.cfg.epochs, self._epoch)]

    def _loss(self, model: torch.nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x, y = batch
        with self.precision.autocast(self.device):  # fp32, or bf16 autocast of the forward (--precision)
            return F.cross_entropy(model(channels_last_input(x.to(self.device), self.precision)), y.to(self.device))

    def _tau(self, epoch: int) -> float | None:
        """GDAS temperature of ``epoch``: linear from ``tau_max`` to ``tau_min``; None for softmax."""
        cfg = self.cfg
        if cfg.relaxation == "softmax":
            return None
        return cfg.tau_max - (cfg.tau_max - cfg.tau_min) * epoch / max(cfg.epochs - 1, 1)

    # --- the search -----------------------------------------------------------------------------------
    def _epoch(self, epoch: int) -> dict[str, Any]:
        """One epoch of alternating steps; the row holds its mean losses and the derived cells' pool/skip count."""
        cfg, n = self.cfg, self.steps_per_epoch
        self.model.tau = self._tau(epoch)
        self.w_batches.epoch = self.a_batches.epoch = epoch
        pairs = zip(self.w_batches, self.a_batches, strict=False)  # the longer half's last batch is left over

        def step(batches: tuple[Any, Any]) -> dict[str, float]:
            stats = self.searcher.step(*batches)
            return {"train_loss": stats["train_loss"], "val_loss": stats["val_loss"]}

        def schedule(i: int) -> None:
            set_lr(self.searcher.w_optimizer, cfg.w_lr * lr_factor(epoch * n + i, cfg.epochs * n, "cosine"))

        losses = run_epoch(pairs, step, f"search {epoch + 1}/{cfg.epochs}", n, self.quiet, schedule)
        self.results.alphas.append(self.searcher.alpha_snapshot())
        genotype = derive_capped(self.model.arch, cfg.max_parameter_free)
        row: dict[str, Any] = {"epoch": epoch + 1, **losses, "parameter_free": parameter_free_edges(genotype)}
        if self.model.tau is not None:
            row["tau"] = self.model.tau
        return row

    def finish(self) -> dict:
        cfg = self.cfg
        steps = cfg.epochs * self.steps_per_epoch
        meta = {
            "source": "nascomp nasb search",
            "data": cfg.data,
            "epochs": cfg.epochs,
            "channels": cfg.channels,
            "layers": cfg.layers,
            "order": cfg.order,
            "relaxation": cfg.relaxation,
            "binary_shortcut": cfg.binary_shortcut,
            "max_parameter_free": cfg.max_parameter_free,
            "seed": cfg.seed,
        }
        genotype = with_bases(derive_capped(self.model.arch, cfg.max_parameter_free, meta=meta), cfg.bases)
        report = network_cost(genotype, self.icfg, cfg.channels, cfg.layers)
        path = self.rundir.path / "genotype.json"
        drawings, plot = [], None
        if self.dist.is_main:
            genotype.save(path)
            drawings = draw_cells(genotype, self.rundir.path)
            plot = plot_alphas(self.results.alphas, self.rundir.path / "alphas.png") if cfg.plot else None
            write_cost(report, self.rundir.path)
        self.log(f"genotype {path}; parameter-free edges {parameter_free_edges(genotype)}; OPs {report.ops:.3g}")
        return {
            "genotype": str(path),
            "parameter_free": parameter_free_edges(genotype),
            "cost": {k: v for k, v in report.to_dict().items() if k != "layers"},
            "drawings": [str(p) for p in drawings],
            "alpha_plot": str(plot) if plot else None,
            "steps": steps,
            "seconds": self.seconds,
            "seconds_per_step": round(self.progress.seconds / max(steps, 1), 4),
            "processes": self.dist.world_size,
            "run_dir": str(self.rundir.path),
            "history": self.progress.history,
        }


def check_search_config(cfg: NASBSearchConfig) -> NASBSearchConfig:
    """Reject settings that cannot run, with the fix in the message."""
    if cfg.order not in (1, 2):
        raise ConfigError(f"--order {cfg.order}: choose 1 (first-order DARTS) or 2 (unrolled)")
    if cfg.relaxation not in RELAXATIONS:
        raise ConfigError(f"unknown relaxation {cfg.relaxation!r}; choose one of {', '.join(RELAXATIONS)}")
    if cfg.epochs < 1 or cfg.channels < 1 or cfg.layers < 1:
        raise ConfigError("a search needs epochs >= 1, channels >= 1 and layers >= 1")
    if not 0 < cfg.tau_min <= cfg.tau_max:
        raise ConfigError(f"gumbel temperatures need 0 < tau_min <= tau_max, got {cfg.tau_min} and {cfg.tau_max}")
    parse_bases(cfg.bases)
    return cfg


def run_search(
    cfg: NASBSearchConfig,
    out: str | None = None,
    force: bool = False,
    resume: str | None = None,
    quiet: bool = False,
    stop_after: float | None = None,
) -> dict:
    """Search with ``cfg``; returns the metrics (also in ``<run>/metrics.json``)."""
    return NASBSearch(cfg, out, force, resume, quiet, stop_after).run()
