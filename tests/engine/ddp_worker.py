"""One process of the 2-process tests (``torchrun --nproc-per-node 2 ddp_worker.py OUT``; gloo on the CPU).

Each rank runs the scenarios below in order and saves what it saw to ``OUT/rank<r>.pt`` for
``test_distributed.py`` to compare across ranks and against a single process.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from nascomp.config import DFQ_PRESETS, NASB_TRAIN_PRESETS, DFQConfig, NASBTrainConfig, resolve
from nascomp.dfq import DFQRun
from nascomp.dfq.kd import kd_loss
from nascomp.engine import Run, rundir
from nascomp.engine.distributed import replicate
from nascomp.models import create_model
from nascomp.nas import ArchParams, ArchSearcher, EdgeKind, Identity, MixedOp, OpRegistry, SearchSpace, Zero
from nascomp.nasb import train as nasb_train
from nascomp.quant import freeze_ranges, quantize_model, set_observing

DFQ_TINY = dict(gen_steps=4, calib_size=64, epochs=2, batch_size=16, eval_every=1, holdout_size=0)


def flat(module: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1).clone() for p in module.parameters()])


# --- the architecture searcher's own all-reduce: SGD, so a gradient twice too large shows ---------------
OPS = OpRegistry("ddp-toy")
OPS.add("none", lambda dim: Zero())
OPS.add("skip", lambda dim: Identity())
OPS.add("linear", lambda dim: nn.Linear(dim, dim))
SPACE = SearchSpace("ddp-toy", {"e": EdgeKind(ops=OPS.names(), edges=2)})


class Toy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.arch = ArchParams(SPACE.arch_shapes())
        self.edges = nn.ModuleList(MixedOp(SPACE.kinds["e"].ops, OPS, dim=4) for _ in range(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.arch.weights("e")
        return self.edges[1](self.edges[0](x, w[0]), w[1])


def searcher_step(model: Toy, train: torch.Tensor, val: torch.Tensor, distributed: bool) -> torch.Tensor:
    from nascomp.nas import split_parameters

    weights, alphas = split_parameters(model)
    s = ArchSearcher(model, model.arch, torch.optim.SGD(weights, lr=0.1), torch.optim.SGD(alphas, lr=0.1),
                     lambda m, x: F.mse_loss(m(x), x), grad_clip=None, distributed=distributed)
    s.step(train, val)
    return flat(model)


def searcher_scenario(rank: int) -> dict:
    torch.manual_seed(0)
    model = Toy()
    reference = copy.deepcopy(model)
    gen = torch.Generator().manual_seed(1)
    train, val = torch.randn(16, 4, generator=gen), torch.randn(16, 4, generator=gen)
    half = slice(8 * rank, 8 * rank + 8)
    got = searcher_step(model, train[half], val[half], distributed=True)
    return {"searcher": got, "searcher_reference": searcher_step(reference, train, val, distributed=False)}


# --- a KD step of the quantized student under DDP (BN in eval mode: no batch statistics) --------------
def kd_scenario(rank: int) -> dict:
    torch.manual_seed(0)
    teacher = create_model("cifar_resnet20").eval()
    student = quantize_model(teacher, 4, 4, "minmax", "minmax")
    gen = torch.Generator().manual_seed(2)
    calib, images = torch.randn(8, 3, 32, 32, generator=gen), torch.randn(8, 3, 32, 32, generator=gen)
    with torch.no_grad():
        set_observing(student.eval(), True)
        student(calib)
        freeze_ranges(student)
        targets = teacher(images)
    labels = targets.argmax(1)
    reference = copy.deepcopy(student)

    def step(model: nn.Module, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        opt = torch.optim.SGD(model.parameters(), lr=0.5)
        loss = kd_loss(model.eval()(x), t, y, 4.0, 1.0, 0.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return flat(model)

    half = slice(4 * rank, 4 * rank + 4)
    got = step(replicate(student, torch.device("cpu")), images[half], targets[half], labels[half])
    return {"kd": got, "kd_reference": step(reference, images, targets, labels),
            "kd_start": flat(copy.deepcopy(reference))}


# --- whole pipelines: parameters after every step, latents, writes -------------------------------------
def record_dfq(out: Path) -> dict:
    seen: dict[str, list] = {"generator": [], "student": [], "latents": []}
    gen_step, kd_step = DFQRun._generator_step, DFQRun._kd_step

    def generator_step(self):
        batch = gen_step(self)
        seen["generator"].append(flat(self.generator))
        seen["latents"].append(batch.images[:2].clone())
        return batch

    def student_step(self, *args):
        loss = kd_step(self, *args)
        seen["student"].append(flat(self.student))
        return loss

    DFQRun._generator_step, DFQRun._kd_step = generator_step, student_step
    try:
        metrics = DFQRun(resolve(DFQConfig, DFQ_PRESETS, "demo", {**DFQ_TINY, "device": "cpu"}), out=str(out),
                         quiet=True).run()
    finally:
        DFQRun._generator_step, DFQRun._kd_step = gen_step, kd_step
    return {"dfq": seen, "dfq_metrics": {k: metrics[k] for k in ("fp_top1", "ptq_top1", "dfq_top1", "history")}}


def record_nasb(out: Path) -> dict:
    seen: list[torch.Tensor] = []
    original = nasb_train.optimizer_step

    def step(loss, optimizer, grad_clip=None):
        value = original(loss, optimizer, grad_clip)
        seen.append(torch.cat([p.detach().reshape(-1).clone() for g in optimizer.param_groups for p in g["params"]]))
        return value

    nasb_train.optimizer_step = step
    try:
        cfg = resolve(NASBTrainConfig, NASB_TRAIN_PRESETS, "demo",
                      dict(model="cifar_birealnet20", stages=2, epochs=1, subset=256, eval_subset=64, batch_size=32,
                           device="cpu"))
        metrics = nasb_train.NASBTrain(cfg, out=str(out), quiet=True).run()
    finally:
        nasb_train.optimizer_step = original
    return {"nasb": seen, "nasb_top1": metrics["top1"]}


def interrupted_then_resumed(out: Path) -> dict:
    cfg = resolve(DFQConfig, DFQ_PRESETS, "demo", {**DFQ_TINY, "device": "cpu"})
    original = Run.run_unit

    def cut(self, stage, unit):
        if stage.name == "fine-tune" and unit == 1:
            raise KeyboardInterrupt
        return original(self, stage, unit)

    Run.run_unit = cut
    try:
        DFQRun(cfg, out=str(out), quiet=True).run()
    except KeyboardInterrupt:
        pass
    finally:
        Run.run_unit = original
    metrics = DFQRun(cfg, resume=str(out), quiet=True).run()
    return {"resumed_metrics": {k: metrics[k] for k in ("fp_top1", "ptq_top1", "dfq_top1", "history")}}


def main() -> None:
    out = Path(sys.argv[1])
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    torch.set_num_threads(1)
    writes: list[str] = []
    original_write = rundir.atomic_write

    def recording_write(path, write):
        writes.append(str(path))
        original_write(path, write)

    rundir.atomic_write = recording_write
    result = {**searcher_scenario(rank), **kd_scenario(rank)}
    result |= record_dfq(out / "dfq")
    result |= record_nasb(out / "nasb")
    result |= interrupted_then_resumed(out / "dfq-cut")
    result["writes"] = writes
    torch.save(result, out / f"rank{rank}.pt")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
