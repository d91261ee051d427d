"""Benchmark: seconds per step of each pipeline's hot step, its FLOPs and achieved GFLOP/s, against the
machine's own fp32 and bf16 matmul peaks measured in the same run, for the speed levers side by side.

    python benchmarks/speed.py [--threads 2] [--steps 5] [--kinds gdfq gensearch nasb-search nasb-train] [--write]
    python benchmarks/speed.py --smoke          # tiny shapes, seconds (random-weight teacher without ../shared)

Hot steps (built from the pipelines' parts, no run folders):

- ``gdfq``: one GDFQ/DFQ iteration = ``recon.generator_step`` (GDFQ generator, Adam) + one student KD step
  (``dfq.kd.kd_loss``, GDFQ's SGD) of the W4A4 fake-quantized student after its ranges were frozen; batch 200
  (the ``paper`` preset), the CIFAR-10 ResNet-20 of ../shared as teacher;
- ``gensearch``: one first-order AutoReCon generator-search step (``nas.ArchSearcher``: an alpha step and a
  weight step, each on a fresh latent batch) at the ``quick`` preset's shapes (supernet width 16, batch 32);
- ``nasb-search``: one NASB search step (binary-cell supernet, C = 8, 5 cells, Gumbel tau = 10, batch 32);
- ``nasb-train``: one NASB training step (8-cell network of a genotype derived from the initial alphas,
  C = 16, fully binary stage 3, Adam, batch 64); random 32 x 32 images, since the time does not depend on them.

Variants (every lever alone on top of the baseline, then all together):

- baseline = today's main: nearest x2 upsampling by ``F.interpolate``, fp32, contiguous (NCHW) tensors;
- ``upsample``: :func:`nascomp.recon.upsample_nearest2x` (same values and gradients);
- ``channels-last``: parameters (and so activations) in NHWC (:func:`nascomp.engine.precision.to_channels_last`);
- ``bf16``: bf16 autocast of the generator and the teacher (NASB: of the whole step), student in fp32;
- ``reuse freed memory``: glibc keeps freed blocks for the next step instead of unmapping them and faulting in
  fresh zeroed pages (:mod:`nascomp.engine.memory`, what every ``Run`` and the CLI set; the other variants run
  with glibc's defaults, switched before each step);
- ``all``: the four levers, student fp32 (what ``Precision("auto", channels_last=True)`` gives on bf16 hardware);
- ``all + bf16 student``: also the student's KD step under autocast, measured only: its fake quantizers
  would compute ``round(x / s)`` in bf16 (see ``nascomp.engine.precision``), so no pipeline uses it.

The CPU is shared: the variants are interleaved (one step of each in turn, the order rotated every round),
after one warm-up step each, and each figure is the median over ``--steps`` rounds. FLOPs are counted once per
variant by ``torch.utils.flop_counter.FlopCounterMode`` (convolutions and matmuls, forward and backward);
GFLOP/s = FLOPs / median seconds. The peaks are the best of repeated ``n x n`` matmuls (``torch.mm``, n = 2048)
at the same thread count, taken before and after the steps.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from common import DOCS, SHARED, add_section_args, command, machine, write_section
from torch.utils.flop_counter import FlopCounterMode

import nascomp.recon.autorecon as autorecon_module
import nascomp.recon.generators as generators_module
from nascomp.config import DFQ_PRESETS, DFQConfig, resolve
from nascomp.dfq.kd import kd_loss
from nascomp.engine.memory import KEEP, SYSTEM, set_malloc
from nascomp.engine.precision import Precision, bf16_native
from nascomp.models import create_model
from nascomp.nas import ArchSearcher, derive, split_parameters
from nascomp.quant import freeze_ranges, quantize_model, set_observing
from nascomp.quant.binary import set_binary_stage
from nascomp.recon import (
    AutoReConSupernet,
    BNStatistics,
    GDFQGenerator,
    freeze_teacher,
    generator_step,
    reconstruction_loss,
)

TITLE = "Speed of the hot steps (CPU)"
TEACHER = SHARED / "weights" / "cifar10" / "resnet20-12fca82f.th"
TEST_SET = SHARED / "data" / "cifar10-jpeg" / "test.tar.gz"
KINDS = ("gdfq", "gensearch", "nasb-search", "nasb-train", "recon")
NASB_KINDS = ("nasb-search", "nasb-train")


@dataclass(frozen=True)
class Variant:
    name: str
    legacy_upsample: bool  # F.interpolate for nearest x2, as on main before upsample_nearest2x
    precision: Precision
    student_bf16: bool = False
    keep_memory: bool = False  # glibc reuses freed memory (nascomp.engine.memory) instead of fresh kernel pages


VARIANTS = [
    Variant("baseline (F.interpolate, fp32, NCHW)", True, Precision()),
    Variant("upsample_nearest2x", False, Precision()),
    Variant("channels-last", True, Precision("fp32", True)),
    Variant("bf16 autocast", True, Precision("bf16")),
    Variant("reuse freed memory", True, Precision(), keep_memory=True),
    Variant("all levers (student fp32)", False, Precision("bf16", True), keep_memory=True),
    Variant("all levers + bf16 student (not used)", False, Precision("bf16", True), student_bf16=True,
            keep_memory=True),
]


@contextmanager
def legacy_upsample(active: bool) -> Iterator[None]:
    """While active, the generators upsample with ``F.interpolate`` (main before ``upsample_nearest2x``)."""
    if not active:
        yield
        return
    saved = generators_module.upsample_nearest2x, autorecon_module.upsample_nearest2x

    def interpolate(x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=2)

    generators_module.upsample_nearest2x = autorecon_module.upsample_nearest2x = interpolate
    try:
        yield
    finally:
        generators_module.upsample_nearest2x, autorecon_module.upsample_nearest2x = saved


@dataclass
class Shapes:
    """The shapes of each hot step (the presets'; tiny ones for ``--smoke``)."""

    gdfq_batch: int = 200
    search_batch: int = 32
    search_channels: int = 16
    nasb_search_batch: int = 32
    nasb_search_channels: int = 8
    nasb_search_layers: int = 5
    nasb_train_batch: int = 64
    nasb_train_channels: int = 16
    nasb_train_layers: int = 8
    recon_iters: int = 20  # iterations per timed call of one block's reconstruction
    recon_batch: int = 32
    recon_images: int = 64
    matmul_n: int = 2048

    @classmethod
    def smoke(cls) -> Shapes:
        return cls(gdfq_batch=4, search_batch=4, search_channels=4, nasb_search_batch=4, nasb_search_channels=4,
                   nasb_search_layers=3, nasb_train_batch=4, nasb_train_channels=4, nasb_train_layers=3,
                   recon_iters=2, recon_batch=4, recon_images=8, matmul_n=256)

    def describe(self, kind: str) -> str:
        return {
            "gdfq": f"GDFQ/DFQ iteration: generator step + student KD step, batch {self.gdfq_batch}, W4A4",
            "gensearch": (f"generator-search step (AutoReCon supernet, width {self.search_channels}, "
                          f"batch {self.search_batch}, first order)"),
            "nasb-search": (f"NASB search step (C = {self.nasb_search_channels}, {self.nasb_search_layers} cells, "
                            f"gumbel, batch {self.nasb_search_batch})"),
            "nasb-train": (f"NASB train step (C = {self.nasb_train_channels}, {self.nasb_train_layers} cells, "
                           f"stage 3, batch {self.nasb_train_batch})"),
            "recon": (f"block reconstruction: {self.recon_iters} iterations on {RECON_UNIT} (W4A4, AdaRound + LSQ + "
                      f"QDrop 0.5) at batch {self.recon_batch}, with the block's error on {self.recon_images} images "
                      "before and after (`quant.reconstruct.reconstruct_unit`, one call per step)"),
        }[kind]


def load_teacher(smoke: bool) -> tuple[torch.nn.Module, str]:
    """The CIFAR-10 ResNet-20 of ../shared; with ``--smoke`` and no ../shared, random weights (timing only)."""
    if TEACHER.is_file():
        return freeze_teacher(create_model("cifar_resnet20", TEACHER)), f"cifar_resnet20 ({TEACHER.name})"
    if not smoke:
        raise SystemExit(f"{TEACHER} not found: the benchmark needs ../shared (or NASCOMP_SHARED), or --smoke")
    torch.manual_seed(0)
    return freeze_teacher(create_model("cifar_resnet20")), "cifar_resnet20 (random weights: no ../shared)"


Step = Callable[[], dict[str, float]]  # one hot step; returns seconds per part


def _timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def gdfq_step(variant: Variant, teacher: torch.nn.Module, shapes: Shapes) -> Step:
    """One GDFQ iteration: ``generator_step`` then the KD step of the calibrated W4A4 student (paper preset)."""
    cfg = resolve(DFQConfig, DFQ_PRESETS, "paper", {})
    prec = variant.precision
    teacher = copy.deepcopy(teacher)
    student = quantize_model(teacher, 4, 4, cfg.weight_observer, cfg.act_observer)  # before the BNS hooks
    for p in student.parameters():
        p.requires_grad_(True)
    bns = BNStatistics(teacher)
    torch.manual_seed(0)
    generator = GDFQGenerator(10, (3, 32, 32)).train()
    prec.prepare(generator), prec.prepare(teacher)
    gen_opt = torch.optim.Adam(generator.parameters(), lr=cfg.gen_lr, betas=(0.5, 0.999))
    student_opt = torch.optim.SGD(student.parameters(), lr=cfg.student_lr, momentum=0.9, nesterov=True,
                                  weight_decay=cfg.weight_decay)  # dfq.pipeline.student_optimizer (sgd)
    with torch.no_grad(), legacy_upsample(variant.legacy_upsample):  # warm-up: the ranges observe, then freeze
        set_observing(student, True)
        student.eval()(generator_step(generator, teacher, bns, shapes.gdfq_batch, None, precision=prec).images)
        freeze_ranges(student)
    student_cast = prec.autocast() if variant.student_bf16 else nullcontext()
    state: dict = {}

    def gen() -> None:
        with legacy_upsample(variant.legacy_upsample):
            state["batch"] = generator_step(generator, teacher, bns, shapes.gdfq_batch, gen_opt, precision=prec)

    def kd() -> None:
        batch = state.pop("batch")
        student.eval()
        with student_cast:
            loss = kd_loss(student(batch.images), batch.teacher_logits, batch.labels, cfg.temperature,
                           cfg.kd_weight, cfg.ce_weight)
        student_opt.zero_grad(set_to_none=True)
        loss.backward()
        student_opt.step()

    return lambda: {"generator": _timed(gen), "student": _timed(kd)}


def gensearch_step(variant: Variant, teacher: torch.nn.Module, shapes: Shapes) -> Step:
    """One first-order AutoReCon search step (alpha step + weight step, each on fresh latents)."""
    prec = variant.precision
    teacher = prec.prepare(copy.deepcopy(teacher))
    bns = BNStatistics(teacher)
    torch.manual_seed(0)
    supernet = prec.prepare(AutoReConSupernet(10, (3, 32, 32), channels=shapes.search_channels).train())
    weights, alphas = split_parameters(supernet)
    w_opt = torch.optim.Adam(weights, lr=1e-3, betas=(0.5, 0.999))
    a_opt = torch.optim.Adam(alphas, lr=3e-4, betas=(0.5, 0.999), weight_decay=1e-3)

    def objective(gen: torch.nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        return reconstruction_loss(gen, teacher, bns, *batch)[0]

    searcher = ArchSearcher(supernet, supernet.arch, w_opt, a_opt, objective, order=1, grad_clip=5.0)

    def step() -> None:
        with legacy_upsample(variant.legacy_upsample), prec.autocast():
            searcher.step(supernet.sample_latent(shapes.search_batch), supernet.sample_latent(shapes.search_batch))

    return lambda: {"step": _timed(step)}


def _images(n: int, prec: Precision) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(n, 3, 32, 32)
    return (x.contiguous(memory_format=torch.channels_last) if prec.channels_last else x), torch.randint(0, 10, (n,))


def nasb_search_step(variant: Variant, teacher: torch.nn.Module, shapes: Shapes) -> Step:
    """One NASB search step (alpha + weight step) on random images, Gumbel relaxation at tau = 10."""
    from nascomp.nasb.space import Supernet

    prec = variant.precision
    torch.manual_seed(0)
    model = prec.prepare(Supernet(3, 10, shapes.nasb_search_channels, shapes.nasb_search_layers).train())
    model.tau = 10.0
    weights, alphas = split_parameters(model)
    w_opt = torch.optim.Adam(weights, lr=1e-3)
    a_opt = torch.optim.Adam(alphas, lr=3e-4, betas=(0.5, 0.999), weight_decay=1e-3)

    def loss(net: torch.nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        return F.cross_entropy(net(batch[0]), batch[1])

    searcher = ArchSearcher(model, model.arch, w_opt, a_opt, loss, order=1, grad_clip=5.0)
    batches = [_images(shapes.nasb_search_batch, prec) for _ in range(2)]

    def step() -> None:
        with prec.autocast():
            searcher.step(batches[0], batches[1])

    return lambda: {"step": _timed(step)}


def nasb_train_step(variant: Variant, teacher: torch.nn.Module, shapes: Shapes) -> Step:
    """One fully binary (stage 3) training step of a genotype network, Adam, cross-entropy."""
    from nascomp.nasb.network import NASBNetwork
    from nascomp.nasb.space import NASB_SPACE, Supernet

    prec = variant.precision
    torch.manual_seed(0)
    genotype = derive(NASB_SPACE, Supernet(3, 10, 4, 3).arch)
    model = NASBNetwork(genotype, 3, 10, shapes.nasb_train_channels, shapes.nasb_train_layers).train()
    set_binary_stage(model, 3)
    prec.prepare(model)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = _images(shapes.nasb_train_batch, prec)

    def step() -> None:
        with prec.autocast():
            loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return lambda: {"step": _timed(step)}


RECON_UNIT = "layer2.0"  # ResNet-20's first stride-2 block (two 3x3 convs and the 1x1 downsample shortcut)


def recon_step(variant: Variant, teacher: torch.nn.Module, shapes: Shapes) -> Step:
    """One call of ``reconstruct_unit`` on a fresh copy of the calibrated W4A4 block (the student stays fp32;
    only the memory format differs between variants)."""
    from nascomp.quant.reconstruct import ReconSettings, capture, reconstruct_unit

    prec = variant.precision
    torch.manual_seed(0)
    images = torch.randn(shapes.recon_images, 3, 32, 32)
    student = quantize_model(copy.deepcopy(teacher), 4, 4, "mse", "mse").eval()
    with torch.no_grad():
        set_observing(student, True)
        student(images)
        freeze_ranges(student)
    inputs = capture(student, RECON_UNIT, images, "input")
    targets = capture(teacher, RECON_UNIT, images, "output")
    if prec.channels_last:
        inputs, targets = (t.contiguous(memory_format=torch.channels_last) for t in (inputs, targets))
    block = prec.prepare(student.get_submodule(RECON_UNIT))
    settings = ReconSettings(iters=shapes.recon_iters, batch_size=shapes.recon_batch)

    def step() -> None:
        reconstruct_unit(copy.deepcopy(block), inputs, targets, settings)

    return lambda: {"step": _timed(step)}


BUILDERS = {"gdfq": gdfq_step, "gensearch": gensearch_step, "nasb-search": nasb_search_step,
            "nasb-train": nasb_train_step, "recon": recon_step}


def variants_of(kind: str) -> list[Variant]:
    """Every variant for the generator steps; NASB has no upsampling and no student, so fewer."""
    if kind == "gdfq":
        return VARIANTS
    keep = [v for v in VARIANTS if not v.student_bf16]
    if kind == "recon":  # the student's arithmetic is fp32 (its quantizers): only the memory format varies
        return [v for v in keep if v.precision.dtype == "fp32" and v.legacy_upsample]
    if kind in NASB_KINDS:
        keep = [v for v in keep if v.legacy_upsample or v.precision.dtype == "bf16"]
    return keep


def count_flops(step: Step) -> float:
    """FLOPs of one step (forward and backward of convolutions and matmuls)."""
    with FlopCounterMode(display=False) as counter:
        step()
    return float(counter.get_total_flops())


def matmul_peak(dtype: torch.dtype, n: int, reps: int = 8) -> float:
    """Best GFLOP/s of an ``n x n`` by ``n x n`` matmul (2 n^3 FLOPs) over ``reps`` runs after a warm-up."""
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    torch.mm(a, b)
    return max(2 * n**3 / _timed(lambda: torch.mm(a, b)) / 1e9 for _ in range(reps))


@dataclass
class Result:
    variant: Variant
    parts: dict[str, list[float]] = field(default_factory=dict)
    cpu: list[float] = field(default_factory=list)  # process CPU seconds per step (all threads)
    flops: float = 0.0

    @property
    def totals(self) -> list[float]:
        return [sum(vals) for vals in zip(*self.parts.values(), strict=True)]

    def median(self, part: str | None = None) -> float:
        return statistics.median(self.totals if part is None else self.parts[part])


def apply_memory_lever(variant: Variant) -> None:
    """glibc keeps freed memory for this variant's step, or runs with its defaults (the process-wide setting)."""
    set_malloc(KEEP if variant.keep_memory else SYSTEM)


def measure(kind: str, teacher: torch.nn.Module, shapes: Shapes, steps: int) -> list[Result]:
    """Build every variant's step, warm each up once, then ``steps`` interleaved rounds (order rotated)."""
    variants = variants_of(kind)
    runners = [BUILDERS[kind](v, teacher, shapes) for v in variants]
    results = [Result(v) for v in variants]
    for run, res in zip(runners, results, strict=True):
        apply_memory_lever(res.variant)
        run()  # warm-up (oneDNN primitive creation, allocator)
        res.flops = count_flops(run)
    for r in range(steps):
        for i in range(len(runners)):
            j = (i + r) % len(runners)
            apply_memory_lever(variants[j])
            c0 = time.process_time()
            for part, seconds in runners[j]().items():
                results[j].parts.setdefault(part, []).append(seconds)
            results[j].cpu.append(time.process_time() - c0)
    return results


def precision_check(teacher: torch.nn.Module) -> str:
    """Top-1 on the JPEG test set of the teacher and of a W4A4 student in fp32 and under bf16 autocast, and how
    many predictions agree. The student's ranges (MSE) are calibrated in fp32 on 400 test images (8 from each
    batch of 200, so every class): a numeric check of the arithmetic, not a data-free result."""
    from nascomp.data import ImageBatches, open_images

    batches = list(ImageBatches(open_images(str(TEST_SET), "test"), teacher.default_cfg, batch_size=200))
    student = quantize_model(teacher, 4, 4, "mse", "mse")
    with torch.no_grad():
        set_observing(student.eval(), True)
        student(torch.cat([x[:8] for x, _ in batches]))
        freeze_ranges(student)
    rows = ["| model | fp32 top-1 | bf16 autocast top-1 | same prediction |", "|---|---|---|---|"]
    labels = torch.cat([y for _, y in batches])
    for name, model in (("teacher (FP)", teacher), ("student W4A4, quantizers under autocast", student)):
        preds = {}
        for dtype in ("fp32", "bf16"):
            with torch.no_grad(), Precision(dtype).autocast():
                preds[dtype] = torch.cat([model.eval()(x).argmax(1) for x, _ in batches])
        top1 = {k: 100.0 * (v == labels).float().mean().item() for k, v in preds.items()}
        same = 100.0 * (preds["fp32"] == preds["bf16"]).float().mean().item()
        rows.append(f"| {name} | {top1['fp32']:.2f} | {top1['bf16']:.2f} | {same:.2f} % |")
    return (f"bf16 arithmetic on the {len(labels):,} JPEG test images (student ranges calibrated in fp32 on 400 of "
            "them: a numeric check, not a data-free result):\n\n" + "\n".join(rows))


def table(kind: str, results: list[Result], peak32: float, peak16: float) -> str:
    base = results[0].median()
    parts = list(results[0].parts) if len(results[0].parts) > 1 else []
    head = (["variant", "s / step"] + [f"s {p}" for p in parts] + ["CPU-s / step"]
            + ["speed-up", "GFLOP / step", "GFLOP/s", "% fp32 peak", "% bf16 peak"])
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for res in results:
        sec = res.median()
        rate = res.flops / sec / 1e9
        cells = ([res.variant.name, f"{sec:.3f}"] + [f"{res.median(p):.3f}" for p in parts]
                 + [f"{statistics.median(res.cpu):.3f}"]
                 + [f"{base / sec:.2f}x", f"{res.flops / 1e9:.1f}", f"{rate:.0f}", f"{100 * rate / peak32:.0f} %",
                    f"{100 * rate / peak16:.0f} %"])
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> str:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch CPU threads")
    p.add_argument("--steps", type=int, default=5, help="interleaved rounds per hot step (median reported)")
    p.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    p.add_argument("--smoke", action="store_true", help="tiny shapes, 1 round: seconds")
    p.add_argument("--no-accuracy", action="store_true",
                   help="skip the fp32-vs-bf16 top-1 check on the test set (always skipped with --smoke)")
    p.add_argument("--doc", type=Path, default=DOCS, help=argparse.SUPPRESS)
    add_section_args(p, TITLE)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    shapes = Shapes.smoke() if args.smoke else Shapes()
    steps = 1 if args.smoke else args.steps
    t0, load0 = time.perf_counter(), os.getloadavg()[0]
    teacher, teacher_name = load_teacher(args.smoke)
    peaks = {torch.float32: [matmul_peak(torch.float32, shapes.matmul_n)],
             torch.bfloat16: [matmul_peak(torch.bfloat16, shapes.matmul_n)]}
    tables = []
    for kind in args.kinds:
        results = measure(kind, teacher, shapes, steps)
        tables.append((kind, results))
        print(f"{kind}: " + ", ".join(f"{r.variant.name} {r.median():.3f} s" for r in results), flush=True)
    for dtype in peaks:
        peaks[dtype].append(matmul_peak(dtype, shapes.matmul_n))
    peak32, peak16 = max(peaks[torch.float32]), max(peaks[torch.bfloat16])
    caps = torch.cpu.get_capabilities() if hasattr(torch.cpu, "get_capabilities") else {}
    body = [
        f"Command: `{command()}`  ",
        f"Machine: {machine()}; CPU {caps.get('cpu_name', '?')}, AMX-BF16 {bool(caps.get('amx_bf16'))}, "
        f"AVX512-BF16 {bool(caps.get('avx512_bf16'))} (`auto` precision -> "
        f"{'bf16' if bf16_native('cpu') else 'fp32'})  ",
        f"Teacher: {teacher_name}; threads: {torch.get_num_threads()}; {steps} interleaved rounds per hot step "
        f"after one warm-up step per variant; total wall time {(time.perf_counter() - t0) / 60:.1f} min; "
        f"1-min load average {load0:.1f} at the start, {os.getloadavg()[0]:.1f} at the end (other jobs)  ",
        f"Matmul peak ({shapes.matmul_n} x {shapes.matmul_n}, best of 8, before / after the steps): fp32 "
        f"{peaks[torch.float32][0]:.0f} / {peaks[torch.float32][1]:.0f} GFLOP/s, bf16 "
        f"{peaks[torch.bfloat16][0]:.0f} / {peaks[torch.bfloat16][1]:.0f} GFLOP/s; the percentages below use "
        f"the higher of each pair ({peak32:.0f} and {peak16:.0f}).",
        "",
        "The CPU is shared with other jobs, so the variants ran side by side in one process: one step of each "
        "in turn, the order rotated every round, the median over the rounds reported (wall seconds; CPU-s = "
        "the process's CPU seconds over all its threads, less sensitive to other jobs). Baseline = main before "
        "this work: nearest x2 by `F.interpolate`, fp32, NCHW. bf16 = autocast of the generator and the teacher "
        "(NASB: of the whole step); the student's KD step stays fp32 except in the last, unused row. FLOPs by "
        "`torch.utils.flop_counter.FlopCounterMode` (convolutions and matmuls, forward + backward).",
    ]
    for kind, results in tables:
        body += ["", f"**{shapes.describe(kind)}**", "", table(kind, results, peak32, peak16)]
    if not (args.no_accuracy or args.smoke) and TEST_SET.is_file() and TEACHER.is_file():
        body += ["", precision_check(teacher)]
    text = "\n".join(body)
    print(f"## {args.title}\n\n{text}")
    if args.write:
        write_section(args.title, text, args.doc)
    return text


if __name__ == "__main__":
    main()
