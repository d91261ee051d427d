"""Data-free quantization: a generator learns images the frozen teacher recognises (L_r = CE + 0.1 BNS), and
those images calibrate and fine-tune a fake-quantized student by knowledge distillation (GDFQ, Xu et al.
ECCV 2020). Two schedules share the same steps:

- ``gdfq`` (GDFQ's loop, the ``paper`` preset): each iteration one generator step, then one student KD step
  on the detached batch; during the warm-up epochs only the generator trains while the student's activation
  ranges observe the batches, then the ranges are frozen (PTQ is evaluated at that point).
- ``calibset`` (the ``quick`` preset): train the generator ``gen_steps`` steps, draw a fixed set of
  ``calib_size`` images with the teacher's logits, calibrate the ranges on it (PTQ), then fine-tune the
  student for ``epochs`` passes over the set, or (``fresh_images``) over ``calib_size`` newly drawn images
  per epoch from the trained generator. With ``--generator direct`` the set is optimised pixel by pixel instead
  (:mod:`nascomp.recon.direct`, one Adam step per unit, resumable inside a batch) and there is no generator;
  with ``--refine-steps N`` the drawn set takes N of those steps per batch, starting from the generator's images.

Accuracy is reported at the last epoch; the best epoch (selected on the evaluation data) only as a second,
labelled figure. Every epoch ends with an atomic checkpoint, so ``--resume`` continues where a run stopped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..config import DFQConfig
from ..deploy.student import save_generator, save_student
from ..engine import Run, Stage, evaluate, lr_factor, optimizer_step, run_epoch, set_lr
from ..engine.distributed import broadcast_state, replicate
from ..engine.precision import parse as parse_precision
from ..errors import ConfigError
from ..quant import check_bits, freeze_ranges, quantize_model, set_observing
from ..quant.modules import bits_by_layer, describe_protocol, parse_layer_bits, protocol_bits
from ..quant.reconstruct import ReconSettings, capture, reconstruct_unit, reconstruction_units
from ..quant.registry import quantizer_class
from ..recon import (
    OPTIMISED_SOURCES,
    BNStatistics,
    DirectOptimizer,
    DirectSettings,
    freeze_teacher,
    generator_step,
)
from ..recon.bns import batchnorm_layers
from ..recon.objective import BNS_WEIGHT
from .generator_choice import check_generator, search_seconds
from .kd import kd_loss
from .sources import build_generator, eval_batches, load_teacher

GENERATOR_CHECKPOINT_EVERY = 100  # generator steps between checkpoints
DIRECT_CHECKPOINT_EVERY = 50  # direct image-optimisation steps between checkpoints
METHODS = ("kd", "recon", "recon+kd")
# the settings that decide a calibset run's calibration images: two runs that agree on all of them make the same
# images, whatever their bits, protocol, method or fine-tune (what ``dfq_finetune.py --reuse-images`` relies on)
IMAGE_FIELDS = ("model", "weights", "generator", "schedule", "seed", "device", "precision", "batch_size",
                "gen_steps", "gen_lr", "calib_size", "holdout_size", "direct_steps", "direct_lr", "direct_jitter",
                "refine_steps", "refine_lr")


@dataclass
class Results:
    """What a DFQ run measured (saved in its checkpoints)."""

    fp_top1: float | None = None
    ptq_top1: float | None = None
    calib_lr: float | None = None  # L_r and BNS of the generated calibration images (calibset) or of the
    calib_bns: float | None = None  # last epoch's generator batches (gdfq)
    selected_epoch: int | None = None  # calibset with a held-out set: epoch of the lowest held-out KD loss
    selected_loss: float | None = None
    recon_top1: float | None = None  # after block reconstruction (method recon, recon+kd)


class DFQRun(Run):
    """One data-free quantization run; ``run()`` returns the metrics dict also written to metrics.json."""

    job = "dfq"
    Results = Results
    parts = ("generator", "student", "student_opt", "gen_opt", "selected")
    rank_parts = ("calib", "direct")  # under torchrun each rank draws (or optimises) its own calibration set

    def check(self, cfg: DFQConfig) -> DFQConfig:
        return check_config(cfg)

    def build(self) -> None:
        cfg = self.cfg
        self.teacher = freeze_teacher(load_teacher(cfg)).to(self.device)
        batchnorm_layers(self.teacher)  # refused before any data is read
        layer_bits = protocol_bits(self.teacher, cfg.wbits, cfg.abits, cfg.first_last_bits, cfg.layer_bits)  # idem
        self.eval_data = eval_batches(cfg, self.teacher, self.dist.rank, self.dist.world_size)
        # the student is copied from the teacher before the BNS hooks exist: a copy would carry them along
        self.student = quantize_model(self.teacher, cfg.wbits, cfg.abits, cfg.weight_observer, cfg.act_observer,
                                      layer_bits=layer_bits)
        self.precision.prepare(self.student)  # channels-last too when asked (the student's arithmetic stays fp32)
        self.bns = BNStatistics(self.teacher)
        self.generator = build_generator(cfg, self.teacher, self.rundir.path, self.quiet).to(self.device).train()
        self.gen_opt = (torch.optim.Adam(self.generator.parameters(), lr=cfg.gen_lr, betas=(0.5, 0.999))
                        if self.generator.trainable else None)
        self.generator_replica = replicate(self.generator, self.device) if self.gen_opt else self.generator
        for p in self.student.parameters():
            p.requires_grad_(True)
        self.student_opt = student_optimizer(self.student, cfg)
        self._student_replica: nn.Module | None = None
        self.units = reconstruction_units(self.student)
        self.direct = self._direct_optimizer() if cfg.generator in OPTIMISED_SOURCES or cfg.refine_steps else None
        self.calib: dict[str, torch.Tensor] = {}
        self.selected: dict[str, torch.Tensor] | None = None  # student state chosen on held-out generated images

    def stages(self) -> list[Stage]:
        cfg = self.cfg
        teacher = Stage("evaluate teacher", 1, self._evaluate_teacher, record=False, unit="pass")
        if cfg.schedule == "gdfq":
            return [teacher, Stage("gdfq", cfg.epochs, self._gdfq_epoch, evaluate=self._evaluate_student,
                                   eval_every=cfg.eval_every)]
        return [
            teacher,
            Stage("generator", cfg.gen_steps if self.gen_opt else 0, self._train_generator, record=False,
                  checkpoint_every=GENERATOR_CHECKPOINT_EVERY, unit="step"),
            *self._calibration_set_stages(),
            Stage("calibrate", 1, self._calibrate, record=False, unit="pass"),
            *([Stage("reconstruct", len(self.units), self._reconstruct_unit, end=self._end_reconstruction,
                     unit="block")] if cfg.method.startswith("recon") else []),
            *([Stage("fine-tune", cfg.epochs, self._finetune_epoch, end=self._deliver_selected,
                     evaluate=self._evaluate_student, eval_every=cfg.eval_every)] if cfg.method != "recon" else []),
        ]

    # --- steps shared by both schedules -------------------------------------------------------------------
    def _generator_step(self):
        return self.timed("generator_step", generator_step, self.generator_replica, self.teacher, self.bns,
                          self.cfg.batch_size, self.gen_opt, self.device, BNS_WEIGHT, self.precision)

    def _draw(self):
        """A batch of the generator as it stands (no update), with the teacher's logits."""
        return generator_step(self.generator, self.teacher, self.bns, self.cfg.batch_size, None, self.device,
                              BNS_WEIGHT, self.precision)

    def _student_step(self, images: torch.Tensor, labels: torch.Tensor, teacher_logits: torch.Tensor) -> float:
        return self.timed("student_step", self._kd_step, images, labels, teacher_logits)

    @property
    def student_replica(self) -> nn.Module:
        """The student as trained (DDP under torchrun, made once its ranges are final: rank 0's are taken)."""
        if self._student_replica is None:
            self._student_replica = replicate(self.student, self.device)
        return self._student_replica

    def _kd_step(self, images: torch.Tensor, labels: torch.Tensor, teacher_logits: torch.Tensor) -> float:
        """One KD step; the student's BN layers use their running (teacher) statistics (eval mode)."""
        student = self.student_replica.eval()
        cfg = self.cfg
        loss = kd_loss(student(images), teacher_logits, labels, cfg.temperature, cfg.kd_weight, cfg.ce_weight)
        return optimizer_step(loss, self.student_opt)

    def _evaluate(self, model: nn.Module) -> float:
        return self.timed("evaluation", evaluate, model, self.eval_data, self.device).top1

    def _evaluate_student(self) -> dict[str, float]:
        return {"top1": self._evaluate(self.student)}

    def _evaluate_teacher(self, _: int) -> dict[str, Any]:
        self.results.fp_top1 = self._evaluate(self.teacher)
        self.log(f"FP teacher {self.cfg.model}: top1={self.results.fp_top1:.2f}")
        cfg = self.cfg
        self.log(describe_protocol(cfg.wbits, cfg.abits, cfg.first_last_bits, cfg.layer_bits))  # not before a resume
        return {"top1": self.results.fp_top1}

    def _set_lrs(self, epochs_done: int) -> None:
        """The lrs for the next epoch: ``step`` = x0.1 at each milestone passed, for both optimizers (GDFQ's
        MultiStepLR); ``cosine`` = the student's lr follows lr0 * (1 + cos(pi * e / epochs)) / 2."""
        cfg = self.cfg
        decay = lr_factor(epochs_done, cfg.epochs, "step", cfg.milestones)
        student = lr_factor(epochs_done, cfg.epochs, cfg.lr_schedule, cfg.milestones)
        set_lr(self.gen_opt, cfg.gen_lr * decay)
        set_lr(self.student_opt, cfg.student_lr * student)

    # --- the calibset schedule -----------------------------------------------------------------------------
    def _train_generator(self, _: int) -> dict[str, Any]:
        batch = self._generator_step()
        return {"L_r": batch.loss, "bns": batch.bns}

    def _calibration_set_stages(self) -> list[Stage]:
        """Draw the set from the generator (then refine it, ``refine_steps``), or optimise it (``direct``)."""
        cfg = self.cfg
        batches = -(-(cfg.calib_size + cfg.holdout_size) // cfg.batch_size)
        optimise = ([] if self.direct is None else
                    [Stage("refine images" if cfg.refine_steps else f"{cfg.generator} images",
                           batches * self.direct.settings.steps, self._direct_step, end=self._end_direct,
                           record=False, checkpoint_every=DIRECT_CHECKPOINT_EVERY, unit="step")])
        if cfg.generator in OPTIMISED_SOURCES:
            return optimise
        return [Stage("calibration set", 1, self._draw_calibration_set, record=False, unit="pass"), *optimise]

    def _direct_optimizer(self) -> DirectOptimizer:
        mcfg = self.teacher.default_cfg
        return DirectOptimizer(self.teacher, self.bns, mcfg.input_size, mcfg.num_classes, direct_settings(self.cfg),
                               self.device)

    def _direct_step(self, unit: int) -> dict[str, Any]:
        """Step ``unit % steps`` of image batch ``unit // steps`` (a new batch starts at step 0: from noise, or
        from the drawn images being refined); a finished batch joins the calibration set with the teacher's
        logits on it."""
        cfg, direct = self.cfg, self.direct
        steps = direct.settings.steps
        if unit % steps == 0:
            first = unit // steps * cfg.batch_size
            count = min(cfg.batch_size, cfg.calib_size + cfg.holdout_size - first)
            drawn = self.calib.get("drawn_images")
            if drawn is None:
                direct.start(count, first_label=first)
            else:
                direct.start(count, images=drawn[first:first + count],
                             labels=self.calib["drawn_labels"][first:first + count])
        row = self.timed("direct_step", direct.update)
        if direct.done:
            batch = direct.result()
            for key in ("images", "labels", "logits"):
                self.calib[key] = torch.cat([self.calib[key], batch[key]]) if key in self.calib else batch[key]
            for key in ("L_r", "bns"):
                self.calib[f"batch_{key}"] = torch.cat([self.calib.get(f"batch_{key}", torch.zeros(0)),
                                                        torch.tensor([batch[key]])])
            direct.load_state_dict({})  # nothing in progress: checkpoints stay small
        return row

    def _end_direct(self) -> None:
        """Split the optimised images into the calibration set and the held-out images, as a drawn set is."""
        calib, r, refined = self.calib, self.results, self.cfg.refine_steps
        drawn_bns = r.calib_bns
        r.calib_lr, r.calib_bns = calib.pop("batch_L_r").mean().item(), calib.pop("batch_bns").mean().item()
        self._keep(calib["images"], calib["labels"], calib["logits"])
        how = (f"generated images refined ({refined} steps each; BNS {drawn_bns:.4g} as drawn)" if refined else
               f"{'Genie-D' if self.cfg.generator == 'genie' else 'directly'} optimised images "
               f"({self.cfg.direct_steps} steps each)")
        self.log(f"calibration set: {self.cfg.calib_size} {how}, L_r {r.calib_lr:.4g}, BNS {r.calib_bns:.4g}")

    def _keep(self, images: torch.Tensor, labels: torch.Tensor, logits: torch.Tensor) -> None:
        """The first ``calib_size`` images are the calibration set, the next ``holdout_size`` the held-out ones."""
        n, held = self.cfg.calib_size, self.cfg.holdout_size
        self.calib = {"images": images[:n], "labels": labels[:n], "logits": logits[:n]}
        if held:
            self.calib |= {"holdout_images": images[n:n + held], "holdout_labels": labels[n:n + held],
                           "holdout_logits": logits[n:n + held]}

    @torch.no_grad()
    def _draw_calibration_set(self, _: int) -> dict[str, Any]:
        images, labels, logits, bns, lr = [], [], [], [], []
        n, held = self.cfg.calib_size, self.cfg.holdout_size
        for _ in range(-(-(n + held) // self.cfg.batch_size)):
            batch = self._draw()
            images.append(batch.images), labels.append(batch.labels), logits.append(batch.teacher_logits)
            bns.append(batch.bns), lr.append(batch.loss)
        r = self.results
        r.calib_bns, r.calib_lr = sum(bns) / len(bns), sum(lr) / len(lr)
        if self.cfg.refine_steps:  # the next stage refines them batch by batch into the calibration set
            self.calib = {"drawn_images": torch.cat(images), "drawn_labels": torch.cat(labels)}
            self.log(f"drawn: {n + held} generated images to refine, L_r {r.calib_lr:.4g}, BNS {r.calib_bns:.4g}")
        else:
            self._keep(torch.cat(images), torch.cat(labels), torch.cat(logits))
            self.log(f"calibration set: {n} generated images, L_r {r.calib_lr:.4g}, BNS {r.calib_bns:.4g}")
        return {"L_r": r.calib_lr, "bns": r.calib_bns}

    def _calibrate(self, _: int) -> dict[str, Any]:
        self._observe(self._calib_batches(shuffle=False))
        self.results.ptq_top1 = self._evaluate(self.student)
        self.log(f"PTQ W{self.cfg.wbits}A{self.cfg.abits}: top1={self.results.ptq_top1:.2f}")
        self._select(0, {})
        return {"top1": self.results.ptq_top1}

    def _reconstruct_unit(self, index: int) -> dict[str, Any]:
        """BRECQ on unit ``index``: its FP output on the calibration images from the teacher, its input from
        the student as quantized so far (:mod:`nascomp.quant.reconstruct`)."""
        cfg, name = self.cfg, self.units[index]
        images = self.calib["images"]
        inputs = capture(self.student.eval(), name, images, "input", cfg.recon_batch * 8)
        targets = capture(self.teacher, name, images, "output", cfg.recon_batch * 8)
        settings = ReconSettings(iters=cfg.recon_iters, batch_size=cfg.recon_batch, round_lr=cfg.recon_round_lr,
                                 step_lr=cfg.recon_step_lr, drop=cfg.recon_drop, weight_quant=cfg.recon_weight_quant,
                                 act_quant=cfg.recon_act_quant)
        before, after = self.timed("reconstruct_unit", reconstruct_unit, self.student.get_submodule(name), inputs,
                                   targets, settings)
        broadcast_state(self.student)  # under torchrun rank 0's reconstruction is the one kept
        return {"block": name, "error_before": before, "error_after": after}

    def _end_reconstruction(self) -> None:
        """Evaluate the reconstructed student; it becomes epoch 0 of a held-out selection that may follow."""
        r = self.results
        r.recon_top1 = self._evaluate(self.student)
        self.log(f"reconstructed W{self.cfg.wbits}A{self.cfg.abits}: top1={r.recon_top1:.2f}")
        r.selected_epoch = r.selected_loss = self.selected = None
        self._select(0, {})

    def _finetune_epoch(self, epoch: int) -> dict[str, Any]:
        cfg = self.cfg
        batches = self._fresh_batches() if cfg.fresh_images else self._calib_batches(shuffle=True)
        steps = -(-cfg.calib_size // cfg.batch_size)
        row = run_epoch(batches, lambda b: {"kd": self._student_step(*b)}, f"fine-tune {epoch + 1}/{cfg.epochs}",
                        steps, self.quiet)
        row = {"epoch": epoch + 1, "kd": row.get("kd", 0.0)}
        self._set_lrs(epoch + 1)
        self._select(epoch + 1, row)
        return row

    def _deliver_selected(self) -> None:
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
        r = self.results
        if r.selected_loss is None or loss < r.selected_loss:
            r.selected_epoch, r.selected_loss = epoch, loss
            self.selected = {k: v.clone() for k, v in self.student.state_dict().items()}

    def _fresh_batches(self):
        """``calib_size`` newly generated images in batches, with the teacher's logits (the generator is not
        trained further): each KD epoch sees new images, as GDFQ's loop does, at the cost of a forward pass."""
        for _ in range(-(-self.cfg.calib_size // self.cfg.batch_size)):
            batch = self._draw()
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

    # --- the gdfq schedule ---------------------------------------------------------------------------------
    def _gdfq_epoch(self, epoch: int) -> dict[str, Any]:
        """GDFQ's epoch: each iteration one generator step, then one KD step on its detached batch; in the
        warm-up epochs the student only observes (ranges), and they are frozen at the end of the warm-up."""
        cfg = self.cfg
        warm = epoch < cfg.warmup_epochs
        set_observing(self.student, warm)

        def iteration(_: int) -> dict[str, float]:
            batch = self._generator_step()
            if warm:
                with torch.no_grad():
                    self.student.eval()(batch.images)
                kd = 0.0
            else:
                kd = self._student_step(batch.images, batch.labels, batch.teacher_logits)
            return {"L_r": batch.loss, "bns": batch.bns, "kd": kd}

        sums = run_epoch(range(cfg.iters_per_epoch), iteration, f"epoch {epoch + 1}/{cfg.epochs}",
                         cfg.iters_per_epoch, self.quiet)
        if epoch + 1 == cfg.warmup_epochs:
            freeze_ranges(self.student)
            self.results.ptq_top1 = self._evaluate(self.student)
            self.log(f"PTQ W{cfg.wbits}A{cfg.abits} after warm-up: top1={self.results.ptq_top1:.2f}")
        self.results.calib_lr, self.results.calib_bns = sums["L_r"], sums["bns"]
        self._set_lrs(epoch + 1)
        return {"epoch": epoch + 1, **sums}

    # --- the result ----------------------------------------------------------------------------------------
    def finish(self) -> dict[str, Any]:
        metrics = self._metrics()
        if self.dist.is_main:
            save_student(self.student, self.rundir.path)
            if self.gen_opt is not None:  # a generator trained in this run (not noise, direct or a frozen one)
                save_generator(self.generator, self.rundir.path, self.teacher.default_cfg)
        return metrics

    def _delivered_top1(self, last: float | None) -> float | None:
        """Top-1 of the student that is saved: the last epoch's, or the one selected on held-out generated images."""
        epoch = self.results.selected_epoch
        if epoch is None or epoch == self.cfg.epochs:
            return last
        if epoch == 0:  # the student before any fine-tune epoch
            return self.results.ptq_top1 if self.results.recon_top1 is None else self.results.recon_top1
        rows = [r for r in self.progress.history if r.get("epoch") == epoch and "top1" in r]
        return rows[0]["top1"] if rows else self._evaluate(self.student)

    def _metrics(self) -> dict:
        r, cfg, history = self.results, self.cfg, self.progress.history
        scored = [row for row in history if "top1" in row]
        best = max(scored, key=lambda row: row["top1"]) if scored else None
        last = scored[-1]["top1"] if scored else (r.recon_top1 if r.recon_top1 is not None else r.ptq_top1)
        return {
            "fp_top1": r.fp_top1, "ptq_top1": r.ptq_top1, "recon_top1": r.recon_top1, "method": cfg.method,
            "dfq_top1": self._delivered_top1(last), "dfq_last_epoch_top1": last,
            "selected_epoch": r.selected_epoch,
            "dfq_best_top1": best["top1"] if best else None, "dfq_best_epoch": best["epoch"] if best else None,
            "wbits": cfg.wbits, "abits": cfg.abits, "first_last_bits": cfg.first_last_bits,
            "protocol": describe_protocol(cfg.wbits, cfg.abits, cfg.first_last_bits, cfg.layer_bits),
            "bits_per_layer": bits_by_layer(self.student),
            "generator": cfg.generator, "schedule": cfg.schedule,
            **({"recon_quantizers": {"weight": cfg.recon_weight_quant, "activation": cfg.recon_act_quant}}
               if cfg.method != "kd" else {}),
            "calib_lr": r.calib_lr, "calib_bns": r.calib_bns, "search_seconds": search_seconds(self.rundir.path),
            "seconds_per_step": self.seconds_per_call(), "seconds": self.seconds,
            "processes": self.dist.world_size, "run_dir": str(self.rundir.path), "history": history,
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
    if cfg.first_last_bits is not None:
        check_bits(cfg.first_last_bits, "first_last_bits")
    for text in cfg.layer_bits:
        parse_layer_bits(text)
    parse_precision(cfg.precision)
    if cfg.schedule not in ("gdfq", "calibset"):
        raise ConfigError(f"unknown schedule {cfg.schedule!r}; choose gdfq or calibset")
    if cfg.schedule == "gdfq" and not (1 <= cfg.warmup_epochs <= cfg.epochs and cfg.iters_per_epoch > 0):
        raise ConfigError("the gdfq schedule needs 1 <= warmup_epochs <= epochs and iters_per_epoch > 0")
    if cfg.schedule == "calibset" and cfg.calib_size < 1:
        raise ConfigError("the calibset schedule needs calib_size >= 1")
    if cfg.method not in METHODS:
        raise ConfigError(f"unknown method {cfg.method!r}; choose one of {', '.join(METHODS)}")
    quantizer_class("weight", cfg.recon_weight_quant), quantizer_class("activation", cfg.recon_act_quant)
    if cfg.method != "kd" and cfg.schedule != "calibset":
        raise ConfigError(f"--method {cfg.method} reconstructs on the calibration set: use --schedule calibset")
    if cfg.student_optimizer not in ("sgd", "adam"):
        raise ConfigError(f"unknown student_optimizer {cfg.student_optimizer!r}; choose sgd or adam")
    if cfg.lr_schedule not in ("step", "cosine"):
        raise ConfigError(f"unknown lr_schedule {cfg.lr_schedule!r}; choose step or cosine")
    if cfg.batch_size < 2:
        raise ConfigError(f"batch_size={cfg.batch_size}: BN statistics need a batch of at least 2")
    check_generator(cfg.generator)
    optimised = cfg.generator in OPTIMISED_SOURCES
    if optimised and cfg.schedule != "calibset":
        raise ConfigError(f"--generator {cfg.generator} optimises a fixed calibration set: use --schedule calibset")
    if optimised and cfg.fresh_images and cfg.method != "recon":
        raise ConfigError(f"--generator {cfg.generator} cannot draw fresh images for each KD epoch (each image costs "
                          f"{cfg.direct_steps} optimisation steps): add --no-fresh-images")
    if cfg.refine_steps and (optimised or cfg.schedule != "calibset"):
        raise ConfigError("--refine-steps refines the generated calibration set of the calibset schedule: use a "
                          f"generator (not {cfg.generator}) with --schedule calibset, or --refine-steps 0")
    return cfg


def direct_settings(cfg: DFQConfig) -> DirectSettings:
    """The image optimisation of ``--generator direct | genie``, or of ``--refine-steps`` (the generated pixels
    move), with each parameterisation's default lr where ``--direct-lr`` is not given."""
    if cfg.refine_steps:
        return DirectSettings(steps=cfg.refine_steps, lr=cfg.refine_lr, jitter=cfg.direct_jitter)
    return DirectSettings(steps=cfg.direct_steps, lr=cfg.direct_lr, jitter=cfg.direct_jitter,
                          parameterisation=OPTIMISED_SOURCES.get(cfg.generator, "pixels"))


def run_dfq(cfg: DFQConfig, out: str | None = None, force: bool = False, resume: str | None = None,
            quiet: bool = False, stop_after: float | None = None) -> dict:
    """Run data-free quantization with ``cfg``; returns the metrics (also in ``<run>/metrics.json``)."""
    return DFQRun(cfg, out, force, resume, quiet, stop_after).run()
