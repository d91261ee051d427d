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
``cost.json``/``cost.txt`` of the final network, ``model.safetensors`` + ``model.json`` (the artefact of
:mod:`nascomp.deploy`, kind ``nasb-network``) and, for a genotype network, a
copy of ``genotype.json``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from ..config import NASBTrainConfig
from ..data import ImageBatches
from ..deploy.artefact import save_artefact
from ..engine import Run, Stage, evaluate, lr_factor, optimizer_step, run_epoch, set_lr
from ..engine.distributed import replicate
from ..engine.precision import channels_last_input
from ..errors import ConfigError
from ..quant.binary import set_binary_stage
from ..quant.cost import count_cost
from ..quant.multibase import parse_bases
from .data import check_same_task, input_cfg, open_split, take, train_batches
from .kd import student_loss
from .network import NASBNetwork
from .optim import SCHEDULES, param_groups
from .report import write_cost
from .stages import STAGE1_ACTS, stage_plan, use_real_activation
from .student import build_student, load_teacher


@dataclass
class TrainResults:
    """One result per finished stage (top-1/top-5 at its last epoch, and the network's cost in it)."""

    stages: list[dict] = field(default_factory=list)


def _cost_totals(model: torch.nn.Module, input_size: tuple[int, int, int]) -> dict[str, float]:
    report = count_cost(model, input_size)
    return {"flops": report.flops, "bops": report.bops, "ops": report.ops, "params": report.params}


class NASBTrain(Run):
    """One staged training run; ``run()`` returns the metrics also written to ``metrics.json``."""

    job = "nasb-train"
    Results = TrainResults
    parts = ("student",)

    def check(self, cfg: NASBTrainConfig) -> NASBTrainConfig:
        return check_train_config(cfg)

    def build(self) -> None:
        cfg, d = self.cfg, self.dist
        self.plan = stage_plan(cfg.stages)
        train = take(open_split(cfg.data, "train"), cfg.subset, cfg.seed)
        eval_spec = cfg.eval_data or _default_eval(cfg.data)
        test = take(open_split(eval_spec, "test"), cfg.eval_subset, cfg.seed)
        check_same_task(train, test, eval_spec)
        self.icfg = input_cfg(train)
        self.student, self.about = build_student(cfg, self.icfg)
        use_real_activation(self.student, cfg.stage1_act)
        self.precision.prepare(self.student.to(self.device))
        self.replica = replicate(self.student, self.device)
        self.teacher = load_teacher(cfg, self.icfg)
        if self.teacher is not None:
            self.precision.prepare(self.teacher.to(self.device))
        self.batches = train_batches(train, self.icfg, cfg.batch_size, cfg.augment, cfg.seed, d.rank, d.world_size)
        self.eval_batches = ImageBatches(test, self.icfg, batch_size=cfg.eval_batch_size, rank=d.rank,
                                         world_size=d.world_size)
        self.optimizer: torch.optim.Optimizer | None = None
        self.log(f"student {self.about}; stages {self.plan}; {len(train)} training images, {len(test)} test images"
                 + (f", {d.world_size} processes" if d.active else ""))

    def stages(self) -> list[Stage]:
        return [Stage(f"stage {stage}", self.cfg.epochs, lambda e, i=i: self._train_epoch(i, e),
                      begin=lambda s=stage: self._start_stage(s), end=lambda i=i: self._end_stage(i),
                      evaluate=self._evaluate, eval_every=self.cfg.eval_every, parts=("optimizer",))
                for i, stage in enumerate(self.plan)]

    # --- one stage ------------------------------------------------------------------------------------
    def _start_stage(self, stage: int) -> None:
        """Binarize for ``stage`` and make its fresh Adam (binary weights undecayed once binarized)."""
        set_binary_stage(self.student, stage)
        cfg = self.cfg
        binary_decay = 0.0 if stage == 3 else cfg.weight_decay
        groups = param_groups(self.student, self.student.parameters(), cfg.weight_decay, binary_decay)
        self.optimizer = torch.optim.Adam(groups, lr=cfg.lr)

    def _train_epoch(self, index: int, epoch: int) -> dict[str, Any]:
        cfg, n, optimizer = self.cfg, len(self.batches), self.optimizer
        assert optimizer is not None
        self.batches.epoch = index * cfg.epochs + epoch
        self.replica.train()

        def step(batch: tuple[torch.Tensor, torch.Tensor]) -> dict[str, float]:
            x, y = channels_last_input(batch[0].to(self.device), self.precision), batch[1].to(self.device)
            teacher_logits = None
            with self.precision.autocast(self.device):  # fp32, or bf16 autocast of the forward (--precision)
                if self.teacher is not None:
                    with torch.no_grad():
                        teacher_logits = self.teacher(x)
                loss = student_loss(self.replica(x), y, teacher_logits, cfg.temperature, cfg.kd_weight, cfg.ce_weight)
            return {"loss": optimizer_step(loss, optimizer)}

        def schedule(i: int) -> None:
            set_lr(optimizer, cfg.lr * lr_factor(epoch * n + i, cfg.epochs * n, cfg.lr_schedule))

        stage = self.plan[index]
        losses = run_epoch(self.batches, step, f"stage {stage} epoch {epoch + 1}/{cfg.epochs}", n, self.quiet, schedule)
        return {"stage": stage, "epoch": epoch + 1, "loss": losses.get("loss", 0.0)}

    def _evaluate(self) -> dict[str, float]:
        acc = evaluate(self.student, self.eval_batches, self.device)
        return {"top1": acc.top1, "top5": acc.top5}

    def _end_stage(self, index: int) -> None:
        """Record the stage: top-1/top-5 of its last epoch and the network's cost in it."""
        row, stage = self.progress.history[-1], self.plan[index]
        cost = _cost_totals(self.student, self.icfg.input_size)
        self.results.stages.append({"stage": stage, "epochs": self.cfg.epochs, "top1": row["top1"],
                                    "top5": row["top5"], **cost})
        self.log(f"stage {stage} done: top1={row['top1']:.2f} (last epoch), OPs {cost['ops']:.3g}")
        self.optimizer = None

    # --- the result -----------------------------------------------------------------------------------
    def finish(self) -> dict:
        final = self.results.stages[-1]
        metrics = {
            "student": self.about,
            "stages": self.results.stages,
            "top1": final["top1"],
            "top5": final["top5"],
            "cost": {k: final[k] for k in ("flops", "bops", "ops", "params")},
            "input_size": list(self.icfg.input_size),
            "seconds": self.seconds,
            "processes": self.dist.world_size,
            "run_dir": str(self.rundir.path),
            "history": self.progress.history,
        }
        if self.dist.is_main:
            self._save_model()
        return metrics

    def _save_model(self) -> None:
        folder = self.rundir.path
        save_artefact(self.student, folder, "nasb-network")
        write_cost(count_cost(self.student, self.icfg.input_size), folder)
        if isinstance(self.student, NASBNetwork):
            self.student.genotype.save(folder / "genotype.json")


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
    if cfg.bases is not None:
        parse_bases(cfg.bases)
    return cfg


def run_train(
    cfg: NASBTrainConfig,
    out: str | None = None,
    force: bool = False,
    resume: str | None = None,
    quiet: bool = False,
    stop_after: float | None = None,
) -> dict:
    """Train with ``cfg``; returns the metrics (also in ``<run>/metrics.json``)."""
    return NASBTrain(cfg, out, force, resume, quiet, stop_after).run()
