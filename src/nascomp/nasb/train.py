"""``nascomp nasb train``: staged training of a binary network, found (``--genotype``) or hand-designed (``--model``).

Stages (see :mod:`.stages`): 1 real weights and activations -> 2 binary activations -> 3 binary weights and
activations, each initialised from the one before; ``stages`` < 3 runs only the last ones. Each stage runs
``epochs`` passes over the (optionally ``subset``) training images with the standard CIFAR augmentation, Adam
at ``lr`` restarted per stage and decayed to 0 within it (``lr_schedule``), L2 ``weight_decay`` on real-valued
weights and none on binary conv weights in stage 3 (:mod:`.optim`), and the loss of :mod:`.kd` (CE, plus KD
when a teacher is given). Top-1 on the evaluation data is reported at the last epoch of every stage, with the
cost (FLOPs/BOPs/OPs) of the network in that stage; the final figures are those of the last stage.

The run folder holds the resolved config, ``log.txt``, ``checkpoint.pt`` after every epoch (it stores the
stage; ``--resume`` restores the weights, re-applies the stage's binarization and continues), ``metrics.json``,
``cost.json``/``cost.txt`` of the final network, ``model.pt`` (its state dict) and, for a genotype network, a
copy of ``genotype.json``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import torch

from ..config import NASBTrainConfig, to_dict
from ..data import ImageBatches
from ..engine import (
    RunDir,
    atomic_torch_save,
    evaluate,
    fmt_losses,
    progress,
    resolve_device,
    seed_everything,
)
from ..errors import ConfigError
from ..quant.binary import set_binary_stage
from ..quant.cost import count_cost
from .data import check_same_task, input_cfg, open_split, take, train_batches
from .kd import student_loss
from .network import NASBNetwork
from .optim import SCHEDULES, lr_factor, param_groups, set_lr
from .report import write_cost
from .stages import STAGE1_ACTS, stage_plan, use_real_activation
from .student import build_student, load_teacher


@dataclass
class TrainProgress:
    """What a checkpoint restores besides the modules and the optimizer."""

    stage_index: int = 0  # index into the stage plan of the stage being trained
    epoch: int = 0  # epochs done in that stage
    history: list[dict] = field(default_factory=list)
    stages: list[dict] = field(default_factory=list)  # one result per finished stage
    seconds: float = 0.0


def _cost_totals(model: torch.nn.Module, input_size: tuple[int, int, int]) -> dict[str, float]:
    report = count_cost(model, input_size)
    return {"flops": report.flops, "bops": report.bops, "ops": report.ops, "params": report.params}


class NASBTrain:
    """One staged training run; ``run()`` returns the metrics also written to ``metrics.json``."""

    def __init__(
        self,
        cfg: NASBTrainConfig,
        out: str | None = None,
        force: bool = False,
        resume: str | None = None,
        quiet: bool = False,
    ):
        self.cfg, self.quiet = check_train_config(cfg), quiet
        self.plan = stage_plan(cfg.stages)
        self.device = resolve_device(cfg.device)
        seed_everything(cfg.seed)
        train = take(open_split(cfg.data, "train"), cfg.subset, cfg.seed)
        eval_spec = cfg.eval_data or _default_eval(cfg.data)
        test = take(open_split(eval_spec, "test"), cfg.eval_subset, cfg.seed)
        check_same_task(train, test, eval_spec)
        self.icfg = input_cfg(train)
        self.student, self.about = build_student(cfg, self.icfg)
        use_real_activation(self.student, cfg.stage1_act)
        self.student.to(self.device)
        self.teacher = load_teacher(cfg, self.icfg)
        if self.teacher is not None:
            self.teacher.to(self.device)
        self.batches = train_batches(train, self.icfg, cfg.batch_size, cfg.augment, cfg.seed)
        self.eval_batches = ImageBatches(test, self.icfg, batch_size=cfg.eval_batch_size)
        config = to_dict(cfg)
        self.rundir = RunDir.resume(resume, config) if resume else RunDir.create(out, "nasb-train", config, force)
        self.state = TrainProgress()
        self.optimizer: torch.optim.Optimizer | None = None
        self._log(f"student {self.about}; stages {self.plan}; {len(train)} training images, {len(test)} test images")
        if resume:
            self._restore()

    def _log(self, message: str) -> None:
        self.rundir.note(message, echo=not self.quiet)

    # --- one stage ------------------------------------------------------------------------------------
    def _start_stage(self, stage: int) -> torch.optim.Optimizer:
        """Binarize for ``stage`` and return its fresh Adam (binary weights undecayed once binarized)."""
        set_binary_stage(self.student, stage)
        cfg = self.cfg
        binary_decay = 0.0 if stage == 3 else cfg.weight_decay
        groups = param_groups(self.student, self.student.parameters(), cfg.weight_decay, binary_decay)
        return torch.optim.Adam(groups, lr=cfg.lr)

    def _train_epoch(self, optimizer: torch.optim.Optimizer, epoch: int) -> float:
        cfg, st = self.cfg, self.state
        n = len(self.batches)
        self.batches.epoch = st.stage_index * cfg.epochs + epoch
        self.student.train()
        total = 0.0
        stage = self.plan[st.stage_index]
        bar = progress(self.batches, f"stage {stage} epoch {epoch + 1}/{cfg.epochs}", n, self.quiet)
        for i, (x, y) in enumerate(bar):
            set_lr(optimizer, cfg.lr * lr_factor(epoch * n + i, cfg.epochs * n, cfg.lr_schedule))
            x, y = x.to(self.device), y.to(self.device)
            teacher_logits = None
            if self.teacher is not None:
                with torch.no_grad():
                    teacher_logits = self.teacher(x)
            loss = student_loss(self.student(x), y, teacher_logits, cfg.temperature, cfg.kd_weight, cfg.ce_weight)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() / n
            bar.set_postfix(fmt_losses({"loss": loss.item()}))
        return total

    def _end_epoch(self, epoch: int, loss: float) -> None:
        """Log the epoch; at a stage's last epoch evaluate, record the stage and move to the next."""
        cfg, st = self.cfg, self.state
        stage = self.plan[st.stage_index]
        row: dict[str, Any] = {"stage": stage, "epoch": epoch, "loss": loss}
        last = epoch == cfg.epochs
        if last or (cfg.eval_every and epoch % cfg.eval_every == 0):
            acc = evaluate(self.student, self.eval_batches, self.device)
            row.update(top1=acc.top1, top5=acc.top5)
        st.history.append(row)
        self._log(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
        st.epoch = epoch
        if last:
            cost = _cost_totals(self.student, self.icfg.input_size)
            st.stages.append({"stage": stage, "epochs": cfg.epochs, "top1": row["top1"], "top5": row["top5"], **cost})
            self._log(f"stage {stage} done: top1={row['top1']:.2f} (last epoch), OPs {cost['ops']:.3g}")
            st.stage_index, st.epoch = st.stage_index + 1, 0
            self.optimizer = None

    # --- the whole run --------------------------------------------------------------------------------
    def run(self) -> dict:
        st = self.state
        while st.stage_index < len(self.plan):
            if self.optimizer is None:
                self.optimizer = self._start_stage(self.plan[st.stage_index])
            epoch = st.epoch
            start = time.perf_counter()
            loss = self._train_epoch(self.optimizer, epoch)
            st.seconds += time.perf_counter() - start
            self._end_epoch(epoch + 1, loss)
            self._checkpoint()
        metrics = self._metrics()
        self._save_model()
        self.rundir.write_json("metrics.json", metrics)
        self.rundir.close()
        return metrics

    def _metrics(self) -> dict:
        st = self.state
        final = st.stages[-1]
        return {
            "student": self.about,
            "stages": st.stages,
            "top1": final["top1"],
            "top5": final["top5"],
            "cost": {k: final[k] for k in ("flops", "bops", "ops", "params")},
            "input_size": list(self.icfg.input_size),
            "seconds": round(st.seconds, 2),
            "run_dir": str(self.rundir.path),
            "history": st.history,
        }

    def _save_model(self) -> None:
        folder = self.rundir.path
        atomic_torch_save(self.student.state_dict(), folder / "model.pt")
        write_cost(count_cost(self.student, self.icfg.input_size), folder)
        if isinstance(self.student, NASBNetwork):
            self.student.genotype.save(folder / "genotype.json")

    # --- checkpoint / resume --------------------------------------------------------------------------
    def _checkpoint(self) -> None:
        self.rundir.save_state(self.state, student=self.student, optimizer=self.optimizer)

    def _restore(self) -> None:
        restored = self.rundir.load_state(TrainProgress, student=self.student)
        if restored is None:
            return
        self.state, ckpt = restored
        st = self.state
        if st.stage_index < len(self.plan):
            self.optimizer = self._start_stage(self.plan[st.stage_index])  # binarization is not in a state dict
            if ckpt["optimizer"] is not None:
                self.optimizer.load_state_dict(ckpt["optimizer"])
        where = f"stage {self.plan[st.stage_index]}, epoch {st.epoch}" if st.stage_index < len(self.plan) else "the end"
        self._log(f"resumed at {where}")


def _default_eval(data: str) -> str:
    if data == "demo":
        return "demo"
    raise ConfigError(f"--eval-data is needed with --data {data}: pass the labelled test set of the same task")


def check_train_config(cfg: NASBTrainConfig) -> NASBTrainConfig:
    """Reject settings that cannot run, with the fix in the message."""
    stage_plan(cfg.stages)
    if cfg.epochs < 1:
        raise ConfigError(f"--epochs {cfg.epochs}: each stage needs at least one epoch")
    if cfg.lr_schedule not in SCHEDULES:
        raise ConfigError(f"unknown lr schedule {cfg.lr_schedule!r}; choose one of {', '.join(SCHEDULES)}")
    if cfg.stage1_act not in STAGE1_ACTS:
        raise ConfigError(f"unknown stage-1 activation {cfg.stage1_act!r}; choose one of {', '.join(STAGE1_ACTS)}")
    if cfg.channels is not None and cfg.channels < 1 or cfg.layers < 1:
        raise ConfigError("a genotype network needs --channels >= 1 and --layers >= 1")
    return cfg


def run_train(
    cfg: NASBTrainConfig,
    out: str | None = None,
    force: bool = False,
    resume: str | None = None,
    quiet: bool = False,
) -> dict:
    """Train with ``cfg``; returns the metrics (also in ``<run>/metrics.json``)."""
    return NASBTrain(cfg, out, force, resume, quiet).run()
