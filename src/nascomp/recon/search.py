"""Generator search (AutoReCon, Zhu et al., IJCAI 2021, arXiv:2105.12151): DARTS on the generator supernet of
:mod:`.autorecon`, with the reconstruction loss of the frozen pretrained model as both objectives::

    L_r(w, alpha; z, y) = CE(T(G_{w,alpha}(z, y)), y) + 0.1 * BNS(G_{w,alpha}(z, y))

Each step (``nascomp.nas.ArchSearcher``) draws two fresh latent batches (z ~ N(0, I), y uniform): the alphas
take an Adam step (lr 3e-4, betas (0.5, 0.999), weight decay 1e-3) on the gradient of L_r on the first batch
(first order; ``order=2`` uses DARTS' unrolled gradient), then the generator weights take an Adam step (lr 1e-3,
betas (0.5, 0.999): the GDFQ generator's) on L_r of the second. The genotype is the per-edge argmax of the
alphas (``none`` may win). Same seed -> same genotype on the CPU; every epoch ends with an atomic checkpoint,
so ``resume`` continues where a run stopped and ends with the same genotype.

A run folder holds: config.yaml, log.txt, checkpoint.pt, alpha_history.json (softmax(alpha) per edge: entry 0
at the start, entry i after epoch i), genotype.json, genotype.dot (+ .png where Graphviz is installed),
alphas.png (where matplotlib is installed) and metrics.json (L_r / CE / BNS per epoch, seconds, seconds and
CPU-seconds per step, peak RSS).

Presets (``nascomp.config.GENERATOR_SEARCH_PRESETS``):

- ``paper``: the published generator width (C = 64) and GDFQ's CIFAR batch (200) and epoch length (200
  iterations). The paper does not state the search length in the text we have; we take DARTS' 50 epochs.
  It also leaves the generator's lr schedule during the search unstated: we keep it constant.
- ``quick``: a CPU search proxy in minutes. At C = 64 one first-order step on 32 x 32 images (cifar_resnet20,
  batch 32) costs about 14 CPU-seconds and 5 GB of memory, so a few minutes would buy a handful of steps;
  like DARTS (which searches at 16 channels and trains the found cells at 36), the quick search runs the same
  space at C = 16: 1.9 CPU-seconds and 1.9 GB per step (measured on our shared 2-core machine, one torch
  thread), batch 32, 5 epochs x 20 steps, about 3 minutes. The genotype does not depend on the width; the
  derived generator is built at C = 64. After 100 alpha steps at lr 3e-4 the mixture is still close to
  uniform: the argmax reflects the direction of the early alpha gradients, not a converged search.
- ``demo``: the 8 x 8 demo teacher, C = 16, batch 16, 2 x 5 steps: seconds, for tests.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..config import GeneratorSearchConfig
from ..engine import Run, Stage, run_epoch
from ..engine.precision import Precision
from ..errors import ConfigError
from ..nas import ArchSearcher, Genotype, plot_alpha_history, render, split_parameters, to_dot
from .autorecon import SPACE, AutoReConSupernet
from .bns import BNStatistics
from .objective import freeze_teacher, reconstruction_loss


class ReconstructionObjective:
    """``loss_fn(generator, (z, y)) -> L_r`` for the searcher; keeps the CE and BNS parts of the last call.
    The forward runs under ``precision``'s autocast (fp32 by default; the BNS statistics stay fp32)."""

    def __init__(self, teacher: nn.Module, bns: BNStatistics, precision: Precision | None = None,
                 device: torch.device | str = "cpu") -> None:
        self.teacher, self.bns, self.device = teacher, bns, device
        self.precision = precision or Precision()
        self.last: dict[str, torch.Tensor] = {}

    def __call__(self, generator: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        with self.precision.autocast(self.device):
            loss, parts = reconstruction_loss(generator, self.teacher, self.bns, *batch)
        self.last = {"ce": parts["ce"].detach(), "bns": parts["bns"].detach()}
        return loss


@dataclass
class SearchResults:
    """What a checkpoint keeps besides the modules: the alpha history and the time spent in search steps."""

    alpha_history: list[dict[str, list[list[float]]]] = field(default_factory=list)
    step_seconds: float = 0.0  # wall time inside the search steps only
    step_cpu_seconds: float = 0.0


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MiB (``getrusage``: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def check_search_config(cfg: GeneratorSearchConfig) -> GeneratorSearchConfig:
    """Reject settings that cannot run, with the fix in the message."""
    if cfg.order not in (1, 2):
        raise ConfigError(f"--order {cfg.order}: use 1 (first-order DARTS) or 2 (unrolled, second order)")
    if cfg.batch_size < 2:
        raise ConfigError(f"batch_size={cfg.batch_size}: BN statistics need a batch of at least 2")
    if cfg.epochs < 1 or cfg.steps_per_epoch < 1:
        raise ConfigError("the generator search needs epochs >= 1 and steps_per_epoch >= 1")
    if cfg.channels < 1:
        raise ConfigError(f"channels={cfg.channels}: the supernet needs at least one channel")
    return cfg


class GeneratorSearch(Run):
    """One generator search for a frozen ``teacher``; ``run()`` returns the metrics also in metrics.json."""

    job = "search-generator"
    Results = SearchResults
    parts = ("supernet", "searcher")

    def __init__(self, cfg: GeneratorSearchConfig, teacher: nn.Module, out: str | None = None,
                 force: bool = False, resume: str | None = None, quiet: bool = False,
                 stop_after: float | None = None) -> None:
        self.teacher = teacher
        super().__init__(cfg, out, force, resume, quiet, stop_after)

    def check(self, cfg: GeneratorSearchConfig) -> GeneratorSearchConfig:
        return check_search_config(cfg)

    def build(self) -> None:
        cfg = self.cfg
        self.teacher = freeze_teacher(self.teacher).to(self.device)
        mcfg = self.teacher.default_cfg
        self.supernet = AutoReConSupernet(mcfg.num_classes, mcfg.input_size, channels=cfg.channels)
        self.supernet.to(self.device).train()
        self.precision.prepare(self.supernet)  # channels-last when chosen, before the optimizers make their state
        self.precision.prepare(self.teacher)
        weights, alphas = split_parameters(self.supernet)
        w_opt = torch.optim.Adam(weights, lr=cfg.gen_lr, betas=(0.5, 0.999))
        a_opt = torch.optim.Adam(alphas, lr=cfg.arch_lr, betas=(0.5, 0.999), weight_decay=cfg.arch_weight_decay)
        self.bns = BNStatistics(self.teacher)
        self.objective = ReconstructionObjective(self.teacher, self.bns, self.precision, self.device)
        self.searcher = ArchSearcher(self.supernet, self.supernet.arch, w_opt, a_opt, self.objective,
                                     order=cfg.order, grad_clip=cfg.grad_clip)
        self.results.alpha_history.append(self.searcher.alpha_snapshot())

    def stages(self) -> list[Stage]:
        return [Stage("search", self.cfg.epochs, self._epoch)]

    def _epoch(self, epoch: int) -> dict[str, Any]:
        """``steps_per_epoch`` search steps; returns the epoch's mean L_r (weight and alpha batches), CE, BNS."""
        cfg, r = self.cfg, self.results

        def step(_: int) -> dict[str, float]:
            t0, c0 = time.perf_counter(), _cpu_seconds()
            weight_batch = self.supernet.sample_latent(cfg.batch_size, self.device)
            alpha_batch = self.supernet.sample_latent(cfg.batch_size, self.device)
            stats = self.searcher.step(weight_batch, alpha_batch)
            parts = {k: float(v) for k, v in self.objective.last.items()}  # the weight batch's (the last call)
            r.step_seconds += time.perf_counter() - t0
            r.step_cpu_seconds += _cpu_seconds() - c0
            return {"L_r": stats["train_loss"], "L_r_alpha": stats["val_loss"], **parts}

        row = {"epoch": epoch + 1, **run_epoch(range(cfg.steps_per_epoch), step, f"search {epoch + 1}/{cfg.epochs}",
                                               cfg.steps_per_epoch, self.quiet)}
        r.alpha_history.append(self.searcher.alpha_snapshot())
        self.rundir.write_json("alpha_history.json", r.alpha_history)
        return row

    def run(self) -> dict[str, Any]:
        try:
            return super().run()
        finally:
            self.bns.remove()

    def genotype(self) -> Genotype:
        """The genotype of the alphas as they stand (per-edge argmax), with the search settings as meta."""
        cfg, epochs = self.cfg, len(self.progress.history)
        return self.supernet.derive(model=cfg.model, seed=cfg.seed, order=cfg.order, epochs=epochs,
                                    steps=epochs * cfg.steps_per_epoch, batch_size=cfg.batch_size,
                                    channels=cfg.channels, source="nascomp search-generator")

    def finish(self) -> dict[str, Any]:
        """Derive and save the genotype, draw it and the alpha history; return the metrics."""
        r, path, history = self.results, self.rundir.path, self.progress.history
        genotype = self.genotype()
        png = plot = None
        if self.dist.is_main:
            genotype.save(path / "genotype.json")
            dot = to_dot(genotype, SPACE)
            (path / "genotype.dot").write_text(dot)
            png = render(dot, path / "genotype.png")
            plot = plot_alpha_history(r.alpha_history, SPACE, path / "alphas.png")
        steps = max(len(history) * self.cfg.steps_per_epoch, 1)
        metrics = {
            "genotype": str(path / "genotype.json"), "ops": {k: genotype.ops(k) for k in SPACE.kinds},
            "lr_first": history[0]["L_r"], "lr_last": history[-1]["L_r"], "bns_last": history[-1]["bns"],
            "ce_last": history[-1]["ce"], "epochs": len(history), "steps": steps, "order": self.cfg.order,
            "batch_size": self.cfg.batch_size, "channels": self.cfg.channels,
            "image_shape": list(self.supernet.image_shape), "seconds": self.seconds,
            "seconds_per_step": round(r.step_seconds / steps, 4),
            "cpu_seconds_per_step": round(r.step_cpu_seconds / steps, 4), "peak_rss_mb": round(peak_rss_mb(), 1),
            "torch_threads": torch.get_num_threads(), "png": str(png) if png else None,
            "alpha_plot": str(plot) if plot else None, "processes": self.dist.world_size, "run_dir": str(path),
            "history": history,
        }
        if self.device.type == "cuda":
            metrics["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated(self.device) / 2**20, 1)
        self.log(f"genotype: {json.dumps(metrics['ops'])}")
        self.log(f"{steps} steps, {metrics['seconds_per_step']:.3g} s/step ({metrics['cpu_seconds_per_step']:.3g} "
                  f"CPU-s/step, {metrics['torch_threads']} threads), peak RSS {metrics['peak_rss_mb']:.0f} MiB")
        if png is None and self.dist.is_main:
            self.log("genotype.png not drawn: Graphviz `dot` is not installed (genotype.dot has the drawing)")
        if plot is None and self.dist.is_main:
            self.log("alphas.png not drawn: matplotlib is not installed (pip install nascomp[plot])")
        return metrics


def search_generator(cfg: GeneratorSearchConfig, teacher: nn.Module, out: str | None = None, force: bool = False,
                     resume: str | None = None, quiet: bool = False, stop_after: float | None = None) -> dict[str, Any]:
    """Search a generator for ``teacher``; returns the metrics (also in ``<run>/metrics.json``)."""
    return GeneratorSearch(cfg, teacher, out, force, resume, quiet, stop_after).run()
