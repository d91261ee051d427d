"""Data-free quantization: a generator learns images the frozen teacher recognises (L_r = CE + 0.1 BNS), and
those images calibrate and fine-tune a fake-quantized student by knowledge distillation (GDFQ, Xu et al.
ECCV 2020). Two schedules share the same steps:

- ``gdfq`` (GDFQ's loop, the ``paper`` preset): each iteration one generator step, then one student KD step
  on the detached batch; during the warm-up epochs only the generator trains while the student's activation
  ranges observe the batches, then the ranges are frozen (PTQ is evaluated at that point).
- ``calibset`` (the ``quick`` preset): train the generator ``gen_steps`` steps, draw a fixed set of
  ``calib_size`` images with the teacher's logits, calibrate the ranges on it (PTQ), then fine-tune the
  student for ``epochs`` passes over the set, or (``fresh_images``) over ``calib_size`` newly drawn images
  per epoch from the trained generator.

Accuracy is reported at the last epoch; the best epoch (selected on the evaluation data) only as a second,
labelled figure. Every epoch ends with an atomic checkpoint, so ``--resume`` continues where a run stopped.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
from torch import nn

from ..config import DFQConfig, to_dict
from ..engine import (
    RunDir,
    evaluate,
    fmt_losses,
    progress,
    resolve_device,
    seed_everything,
)
from ..errors import ConfigError
from ..export.student import save_student
from ..quant import check_bits, freeze_ranges, quantize_model, set_observing
from ..recon import BNStatistics, freeze_teacher, generator_step
from .generator_choice import check_generator, search_seconds
from .kd import kd_loss
from .sources import build_generator, eval_batches, load_teacher


@dataclass
class Progress:
    """What a checkpoint must restore besides the modules and optimizers."""

    phase: str = "generator"  # generator -> calibrate -> finetune -> done   (calibset)
    step: int = 0  # generator steps done (calibset) / epochs done (gdfq, finetune)
    fp_top1: float | None = None
    ptq_top1: float | None = None
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    calib_lr: float | None = None  # L_r and BNS of the generated calibration images (calibset) or of the
    calib_bns: float | None = None  # last epoch's generator batches (gdfq)
    timing: dict[str, list[float]] = field(default_factory=dict)  # part -> [seconds, count]
    selected_epoch: int | None = None  # calibset with a held-out set: epoch of the lowest held-out KD loss
    selected_loss: float | None = None


class DFQRun:
    """One data-free quantization run; ``run()`` returns the metrics dict also written to metrics.json."""

    def __init__(self, cfg: DFQConfig, out: str | None = None, force: bool = False, resume: str | None = None,
                 quiet: bool = False):
        self.cfg, self.quiet = check_config(cfg), quiet
        self.device = resolve_device(cfg.device)
        seed_everything(cfg.seed)
        self.teacher = freeze_teacher(load_teacher(cfg)).to(self.device)
        self.eval_data = eval_batches(cfg, self.teacher)
        config = to_dict(cfg)
        self.rundir = RunDir.resume(resume, config) if resume else RunDir.create(out, "dfq", config, force)
        # the student is copied from the teacher before the BNS hooks exist: a copy would carry them along
        self.student = quantize_model(self.teacher, cfg.wbits, cfg.abits, cfg.weight_observer, cfg.act_observer)
        self.bns = BNStatistics(self.teacher)
        self.generator = build_generator(cfg, self.teacher, self.rundir.path, quiet).to(self.device).train()
        self.gen_opt = (torch.optim.Adam(self.generator.parameters(), lr=cfg.gen_lr, betas=(0.5, 0.999))
                        if self.generator.trainable else None)
        for p in self.student.parameters():
            p.requires_grad_(True)
        self.student_opt = student_optimizer(self.student, cfg)
        self.calib: dict[str, torch.Tensor] = {}
        self.selected: dict[str, torch.Tensor] | None = None  # student state chosen on held-out generated images
        self.state = Progress()
        if resume:
            self._restore()

    # --- steps shared by both schedules -------------------------------------------------------------------
    def _timed(self, part: str, fn, *args):
        t0 = time.perf_counter()
        out = fn(*args)
        seconds, count = self.state.timing.get(part, [0.0, 0])
        self.state.timing[part] = [seconds + time.perf_counter() - t0, count + 1]
        return out

    def _generator_step(self):
        return self._timed("generator_step", generator_step, self.generator, self.teacher, self.bns,
                           self.cfg.batch_size, self.gen_opt, self.device)

    def _student_step(self, images: torch.Tensor, labels: torch.Tensor, teacher_logits: torch.Tensor) -> float:
        return self._timed("student_step", self._kd_step, images, labels, teacher_logits)

    def _kd_step(self, images: torch.Tensor, labels: torch.Tensor, teacher_logits: torch.Tensor) -> float:
        """One KD step; the student's BN layers use their running (teacher) statistics (eval mode)."""
        self.student.eval()
        cfg = self.cfg
        loss = kd_loss(self.student(images), teacher_logits, labels, cfg.temperature, cfg.kd_weight, cfg.ce_weight)
        self.student_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.student_opt.step()
        return loss.item()

    def _evaluate(self, model: nn.Module) -> float:
        return self._timed("evaluation", evaluate, model, self.eval_data, self.device).top1

    def _log(self, message: str) -> None:
        self.rundir.note(message, echo=not self.quiet)

    def _end_epoch(self, epoch: int, losses: dict[str, float]) -> None:
        row = {"epoch": epoch, **losses}
        last = epoch == self._total_epochs()
        if last or (self.cfg.eval_every and epoch % self.cfg.eval_every == 0):
            row["top1"] = self._evaluate(self.student)
        self.state.history.append(row)
        self._log(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))

    def _total_epochs(self) -> int:
        return self.cfg.epochs

    # --- schedules ---------------------------------------------------------------------------------------
    def _run_calibset(self) -> None:
        cfg, st = self.cfg, self.state
        if st.phase == "generator":
            bar = progress(range(st.step, cfg.gen_steps if self.gen_opt else 0), "generator", quiet=self.quiet)
            for st.step in bar:
                batch = self._generator_step()
                bar.set_postfix(fmt_losses({"L_r": batch.loss, "bns": batch.bns}))
            st.phase, st.step = "calibrate", 0
            self._draw_calibration_set()
            self._checkpoint()
        if st.phase == "calibrate":
            self._observe(self._calib_batches(shuffle=False))
            st.ptq_top1 = self._evaluate(self.student)
            self._log(f"PTQ W{cfg.wbits}A{cfg.abits}: top1={st.ptq_top1:.2f}")
            self._select(0, {})
            st.phase = "finetune"
            self._checkpoint()
        bar = progress(range(st.step, cfg.epochs), "fine-tune", quiet=self.quiet)
        for epoch in bar:
            batches = self._fresh_batches() if cfg.fresh_images else self._calib_batches(shuffle=True)
            losses = [self._student_step(*b) for b in batches]
            self._scheduler_step()
            row = {"kd": sum(losses) / max(len(losses), 1)}
            self._select(epoch + 1, row)
            self._end_epoch(epoch + 1, row)
            bar.set_postfix(fmt_losses({"kd": row["kd"]}))
            st.step = epoch + 1
            self._checkpoint()
        if self.selected:
            self.student.load_state_dict(self.selected)

    @torch.no_grad()
    def _select(self, epoch: int, row: dict) -> None:
        """Keep the student state with the lowest KD loss on the held-out generated images (epoch 0 = PTQ),
        so fine-tuning cannot deliver a student that fits the held-out images worse than calibration alone."""
        if "holdout_images" not in self.calib:
            return
        self.student.eval()
        loss = kd_loss(self.student(self.calib["holdout_images"]), self.calib["holdout_logits"],
                       self.calib["holdout_labels"], self.cfg.temperature, self.cfg.kd_weight, self.cfg.ce_weight).item()
        row["holdout_kd"] = loss
        if self.state.selected_loss is None or loss < self.state.selected_loss:
            self.state.selected_epoch, self.state.selected_loss = epoch, loss
            self.selected = {k: v.clone() for k, v in self.student.state_dict().items()}

    @torch.no_grad()
    def _draw_calibration_set(self) -> None:
        images, labels, logits, bns, lr = [], [], [], [], []
        n, held = self.cfg.calib_size, self.cfg.holdout_size
        for _ in range(-(-(n + held) // self.cfg.batch_size)):
            batch = generator_step(self.generator, self.teacher, self.bns, self.cfg.batch_size, None, self.device)
            images.append(batch.images), labels.append(batch.labels), logits.append(batch.teacher_logits)
            bns.append(batch.bns), lr.append(batch.loss)
        images, labels, logits = torch.cat(images), torch.cat(labels), torch.cat(logits)
        self.calib = {"images": images[:n], "labels": labels[:n], "logits": logits[:n]}
        if held:
            self.calib |= {"holdout_images": images[n:n + held], "holdout_labels": labels[n:n + held],
                           "holdout_logits": logits[n:n + held]}
        self.state.calib_bns, self.state.calib_lr = sum(bns) / len(bns), sum(lr) / len(lr)
        self._log(f"calibration set: {n} generated images, L_r {self.state.calib_lr:.4g}, BNS {self.state.calib_bns:.4g}")

    def _fresh_batches(self):
        """``calib_size`` newly generated images in batches, with the teacher's logits (the generator is not
        trained further): each KD epoch sees new images, as GDFQ's loop does, at the cost of a forward pass."""
        for _ in range(-(-self.cfg.calib_size // self.cfg.batch_size)):
            batch = generator_step(self.generator, self.teacher, self.bns, self.cfg.batch_size, None, self.device)
            yield batch.images, batch.labels, batch.teacher_logits

    def _calib_batches(self, shuffle: bool):
        n, bs = len(self.calib["labels"]), self.cfg.batch_size
        order = torch.randperm(n) if shuffle else torch.arange(n)
        for start in range(0, n, bs):
            idx = order[start:start + bs]
            yield self.calib["images"][idx], self.calib["labels"][idx], self.calib["logits"][idx]

    @torch.no_grad()
    def _observe(self, batches) -> None:
        """Activation ranges observe ``batches`` (forward only), then freeze; weight clipping is chosen."""
        self.student.eval()
        set_observing(self.student, True)
        for images, *_ in batches:
            self.student(images)
        freeze_ranges(self.student)

    def _run_gdfq(self) -> None:
        cfg, st = self.cfg, self.state
        for epoch in range(st.step, cfg.epochs):
            warm = epoch < cfg.warmup_epochs
            set_observing(self.student, warm)
            bar = progress(range(cfg.iters_per_epoch), f"epoch {epoch + 1}/{cfg.epochs}", quiet=self.quiet)
            sums = {"L_r": 0.0, "bns": 0.0, "kd": 0.0}
            for _ in bar:
                batch = self._generator_step()
                if warm:
                    with torch.no_grad():
                        self.student.eval()(batch.images)
                    kd = 0.0
                else:
                    kd = self._student_step(batch.images, batch.labels, batch.teacher_logits)
                for k, v in (("L_r", batch.loss), ("bns", batch.bns), ("kd", kd)):
                    sums[k] += v / cfg.iters_per_epoch
                bar.set_postfix(fmt_losses({"L_r": batch.loss, "bns": batch.bns, "kd": kd}))
            if epoch + 1 == cfg.warmup_epochs:
                freeze_ranges(self.student)
                st.ptq_top1 = self._evaluate(self.student)
                self._log(f"PTQ W{cfg.wbits}A{cfg.abits} after warm-up: top1={st.ptq_top1:.2f}")
            st.calib_lr, st.calib_bns = sums["L_r"], sums["bns"]
            self._scheduler_step()
            self._end_epoch(epoch + 1, sums)
            st.step = epoch + 1
            self._checkpoint()

    def _scheduler_step(self) -> None:
        """Set the lrs for the next epoch: ``step`` = x0.1 at each milestone passed, for both optimizers
        (GDFQ's MultiStepLR); ``cosine`` = the student's lr follows lr0 * (1 + cos(pi * e / epochs)) / 2."""
        done, cfg = self.state.step + 1, self.cfg
        decay = 0.1 ** sum(done >= m for m in cfg.milestones)
        student = decay if cfg.lr_schedule == "step" else 0.5 * (1 + math.cos(math.pi * done / max(cfg.epochs, 1)))
        for opt, lr in ((self.gen_opt, cfg.gen_lr * decay), (self.student_opt, cfg.student_lr * student)):
            for group in opt.param_groups if opt is not None else []:
                group["lr"] = lr

    # --- checkpoint / resume -----------------------------------------------------------------------------
    def _checkpoint(self) -> None:
        self.state.seconds = self._seconds()
        self.rundir.save_state(self.state, generator=self.generator, student=self.student,
                               student_opt=self.student_opt, gen_opt=self.gen_opt, calib=self.calib,
                               selected=self.selected)

    def _restore(self) -> None:
        restored = self.rundir.load_state(Progress, generator=self.generator, student=self.student,
                                          student_opt=self.student_opt, gen_opt=self.gen_opt)
        if restored is not None:
            self.state, ckpt = restored
            self.calib, self.selected = ckpt["calib"], ckpt["selected"]
            self._log(f"resumed at phase {self.state.phase}, step {self.state.step}")

    def _seconds(self) -> float:
        return self._elapsed_before + time.perf_counter() - self._t0

    # --- the whole run -----------------------------------------------------------------------------------
    def run(self) -> dict:
        self._t0, self._elapsed_before = time.perf_counter(), self.state.seconds
        st = self.state
        if st.fp_top1 is None:
            st.fp_top1 = self._evaluate(self.teacher)
            self._log(f"FP teacher {self.cfg.model}: top1={st.fp_top1:.2f}")
        if st.phase != "done":
            self._run_calibset() if self.cfg.schedule == "calibset" else self._run_gdfq()
            st.phase = "done"
            self._checkpoint()
        metrics = self._metrics()
        save_student(self.student, self.rundir.path)
        self.rundir.write_json("metrics.json", metrics)
        self.rundir.close()
        return metrics

    def _delivered_top1(self, last: float | None) -> float | None:
        """Top-1 of the student that is saved: the last epoch's, or the one selected on held-out generated images."""
        epoch = self.state.selected_epoch
        if epoch is None or epoch == self.cfg.epochs:
            return last
        if epoch == 0:
            return self.state.ptq_top1
        rows = [r for r in self.state.history if r["epoch"] == epoch and "top1" in r]
        return rows[0]["top1"] if rows else self._evaluate(self.student)

    def _metrics(self) -> dict:
        st, cfg = self.state, self.cfg
        scored = [r for r in st.history if "top1" in r]
        best = max(scored, key=lambda r: r["top1"]) if scored else None
        last = scored[-1]["top1"] if scored else st.ptq_top1
        return {
            "fp_top1": st.fp_top1, "ptq_top1": st.ptq_top1,
            "dfq_top1": self._delivered_top1(last), "dfq_last_epoch_top1": last,
            "selected_epoch": st.selected_epoch,
            "dfq_best_top1": best["top1"] if best else None, "dfq_best_epoch": best["epoch"] if best else None,
            "wbits": cfg.wbits, "abits": cfg.abits, "generator": cfg.generator, "schedule": cfg.schedule,
            "calib_lr": st.calib_lr, "calib_bns": st.calib_bns, "search_seconds": search_seconds(self.rundir.path),
            "seconds_per_step": {part: round(sec / max(n, 1), 4) for part, (sec, n) in st.timing.items()},
            "seconds": round(self._seconds(), 2), "run_dir": str(self.rundir.path), "history": st.history,
        }


def student_optimizer(student: nn.Module, cfg: DFQConfig) -> torch.optim.Optimizer:
    """GDFQ's SGD (Nesterov momentum 0.9) or Adam, at ``student_lr`` with L2 weight decay ``weight_decay``."""
    if cfg.student_optimizer == "adam":
        return torch.optim.Adam(student.parameters(), lr=cfg.student_lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(student.parameters(), lr=cfg.student_lr, momentum=0.9, nesterov=True,
                           weight_decay=cfg.weight_decay)


def check_config(cfg: DFQConfig) -> DFQConfig:
    """Reject settings that cannot run, with the fix in the message."""
    check_bits(cfg.wbits, "wbits"), check_bits(cfg.abits, "abits")
    if cfg.schedule not in ("gdfq", "calibset"):
        raise ConfigError(f"unknown schedule {cfg.schedule!r}; choose gdfq or calibset")
    if cfg.schedule == "gdfq" and not (1 <= cfg.warmup_epochs <= cfg.epochs and cfg.iters_per_epoch > 0):
        raise ConfigError("the gdfq schedule needs 1 <= warmup_epochs <= epochs and iters_per_epoch > 0")
    if cfg.schedule == "calibset" and cfg.calib_size < 1:
        raise ConfigError("the calibset schedule needs calib_size >= 1")
    if cfg.student_optimizer not in ("sgd", "adam"):
        raise ConfigError(f"unknown student_optimizer {cfg.student_optimizer!r}; choose sgd or adam")
    if cfg.lr_schedule not in ("step", "cosine"):
        raise ConfigError(f"unknown lr_schedule {cfg.lr_schedule!r}; choose step or cosine")
    if cfg.batch_size < 2:
        raise ConfigError(f"batch_size={cfg.batch_size}: BN statistics need a batch of at least 2")
    check_generator(cfg.generator)
    return cfg


def run_dfq(cfg: DFQConfig, out: str | None = None, force: bool = False, resume: str | None = None,
            quiet: bool = False) -> dict:
    """Run data-free quantization with ``cfg``; returns the metrics (also in ``<run>/metrics.json``)."""
    return DFQRun(cfg, out, force, resume, quiet).run()
