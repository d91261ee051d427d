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

from ..config import GeneratorSearchConfig, to_dict
from ..engine import RunDir, fmt_losses, progress, resolve_device, seed_everything
from ..errors import ConfigError
from ..nas import ArchSearcher, Genotype, plot_alpha_history, render, split_parameters, to_dot
from .autorecon import SPACE, AutoReConSupernet
from .bns import BNStatistics
from .objective import freeze_teacher, reconstruction_loss


class ReconstructionObjective:
    """``loss_fn(generator, (z, y)) -> L_r`` for the searcher; keeps the CE and BNS parts of the last call."""

    def __init__(self, teacher: nn.Module, bns: BNStatistics) -> None:
        self.teacher, self.bns = teacher, bns
        self.last: dict[str, torch.Tensor] = {}

    def __call__(self, generator: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        loss, parts = reconstruction_loss(generator, self.teacher, self.bns, *batch)
        self.last = {"ce": parts["ce"].detach(), "bns": parts["bns"].detach()}
        return loss


@dataclass
class SearchProgress:
    """What a checkpoint must restore besides the modules and optimizers."""

    epoch: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    alpha_history: list[dict[str, list[list[float]]]] = field(default_factory=list)
    seconds: float = 0.0  # wall time of the finished epochs (steps and checkpoints)
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


class GeneratorSearch:
    """One generator search for a frozen ``teacher``; ``run()`` returns the metrics also in metrics.json."""

    def __init__(self, cfg: GeneratorSearchConfig, teacher: nn.Module, out: str | None = None,
                 force: bool = False, resume: str | None = None, quiet: bool = False) -> None:
        self.cfg, self.quiet = check_search_config(cfg), quiet
        self.device = resolve_device(cfg.device)
        seed_everything(cfg.seed)
        self.teacher = freeze_teacher(teacher).to(self.device)
        config = to_dict(cfg)
        self.rundir = RunDir.resume(resume, config) if resume else RunDir.create(out, "search-generator", config, force)
        mcfg = teacher.default_cfg
        self.supernet = AutoReConSupernet(mcfg.num_classes, mcfg.input_size, channels=cfg.channels)
        self.supernet.to(self.device).train()
        weights, alphas = split_parameters(self.supernet)
        w_opt = torch.optim.Adam(weights, lr=cfg.gen_lr, betas=(0.5, 0.999))
        a_opt = torch.optim.Adam(alphas, lr=cfg.arch_lr, betas=(0.5, 0.999), weight_decay=cfg.arch_weight_decay)
        self.bns = BNStatistics(self.teacher)
        self.objective = ReconstructionObjective(self.teacher, self.bns)
        self.searcher = ArchSearcher(self.supernet, self.supernet.arch, w_opt, a_opt, self.objective,
                                     order=cfg.order, grad_clip=cfg.grad_clip)
        self.state = SearchProgress()
        if resume:
            self._restore()

    def _log(self, message: str) -> None:
        self.rundir.note(message, echo=not self.quiet)

    def _epoch(self, epoch: int) -> dict[str, float]:
        """``steps_per_epoch`` search steps; returns the epoch's mean L_r (weight and alpha batches), CE, BNS."""
        cfg, st = self.cfg, self.state
        sums = {"L_r": 0.0, "L_r_alpha": 0.0, "ce": 0.0, "bns": 0.0}
        bar = progress(range(cfg.steps_per_epoch), f"search {epoch + 1}/{cfg.epochs}", quiet=self.quiet)
        for _ in bar:
            t0, c0 = time.perf_counter(), _cpu_seconds()
            weight_batch = self.supernet.sample_latent(cfg.batch_size, self.device)
            alpha_batch = self.supernet.sample_latent(cfg.batch_size, self.device)
            stats = self.searcher.step(weight_batch, alpha_batch)
            parts = {k: float(v) for k, v in self.objective.last.items()}  # the weight batch's (the last call)
            st.step_seconds += time.perf_counter() - t0
            st.step_cpu_seconds += _cpu_seconds() - c0
            step = {"L_r": stats["train_loss"], "L_r_alpha": stats["val_loss"], **parts}
            for k in sums:
                sums[k] += step[k] / cfg.steps_per_epoch
            bar.set_postfix(fmt_losses({"L_r": step["L_r"], "bns": step["bns"]}))
        return sums

    def _checkpoint(self) -> None:
        self.rundir.save_state(self.state, supernet=self.supernet, searcher=self.searcher)

    def _restore(self) -> None:
        restored = self.rundir.load_state(SearchProgress, supernet=self.supernet, searcher=self.searcher)
        if restored is not None:
            self.state = restored[0]
            self._log(f"resumed after epoch {self.state.epoch}")

    def run(self) -> dict[str, Any]:
        cfg, st = self.cfg, self.state
        if not st.alpha_history:
            st.alpha_history.append(self.searcher.alpha_snapshot())
        for epoch in range(st.epoch, cfg.epochs):
            t0 = time.perf_counter()
            row = {"epoch": epoch + 1, **self._epoch(epoch)}
            st.history.append(row)
            st.alpha_history.append(self.searcher.alpha_snapshot())
            st.epoch = epoch + 1
            self._log(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
            st.seconds += time.perf_counter() - t0
            self._checkpoint()
            self.rundir.write_json("alpha_history.json", st.alpha_history)
        try:
            return self._finish()
        finally:
            self.bns.remove()
            self.rundir.close()

    def genotype(self) -> Genotype:
        """The genotype of the alphas as they stand (per-edge argmax), with the search settings as meta."""
        cfg = self.cfg
        return self.supernet.derive(model=cfg.model, seed=cfg.seed, order=cfg.order, epochs=self.state.epoch,
                                    steps=self.state.epoch * cfg.steps_per_epoch, batch_size=cfg.batch_size,
                                    channels=cfg.channels, source="nascomp search-generator")

    def _finish(self) -> dict[str, Any]:
        """Derive and save the genotype, draw it and the alpha history; write and return the metrics."""
        st, path = self.state, self.rundir.path
        genotype = self.genotype()
        genotype.save(path / "genotype.json")
        dot = to_dot(genotype, SPACE)
        (path / "genotype.dot").write_text(dot)
        png = render(dot, path / "genotype.png")
        plot = plot_alpha_history(st.alpha_history, SPACE, path / "alphas.png")
        steps = max(st.epoch * self.cfg.steps_per_epoch, 1)
        metrics = {
            "genotype": str(path / "genotype.json"), "ops": {k: genotype.ops(k) for k in SPACE.kinds},
            "lr_first": st.history[0]["L_r"], "lr_last": st.history[-1]["L_r"], "bns_last": st.history[-1]["bns"],
            "ce_last": st.history[-1]["ce"], "epochs": st.epoch, "steps": steps, "order": self.cfg.order,
            "batch_size": self.cfg.batch_size, "channels": self.cfg.channels,
            "image_shape": list(self.supernet.image_shape), "seconds": round(st.seconds, 2),
            "seconds_per_step": round(st.step_seconds / steps, 4),
            "cpu_seconds_per_step": round(st.step_cpu_seconds / steps, 4), "peak_rss_mb": round(peak_rss_mb(), 1),
            "torch_threads": torch.get_num_threads(), "png": str(png) if png else None,
            "alpha_plot": str(plot) if plot else None, "run_dir": str(path), "history": st.history,
        }
        if self.device.type == "cuda":
            metrics["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated(self.device) / 2**20, 1)
        self._log(f"genotype: {json.dumps(metrics['ops'])}")
        self._log(f"{steps} steps, {metrics['seconds_per_step']:.3g} s/step ({metrics['cpu_seconds_per_step']:.3g} "
                  f"CPU-s/step, {metrics['torch_threads']} threads), peak RSS {metrics['peak_rss_mb']:.0f} MiB")
        if png is None:
            self._log("genotype.png not drawn: Graphviz `dot` is not installed (genotype.dot has the drawing)")
        if plot is None:
            self._log("alphas.png not drawn: matplotlib is not installed (pip install nascomp[plot])")
        self.rundir.write_json("metrics.json", metrics)
        return metrics


def search_generator(cfg: GeneratorSearchConfig, teacher: nn.Module, out: str | None = None, force: bool = False,
                     resume: str | None = None, quiet: bool = False) -> dict[str, Any]:
    """Search a generator for ``teacher``; returns the metrics (also in ``<run>/metrics.json``)."""
    return GeneratorSearch(cfg, teacher, out, force, resume, quiet).run()
