"""Benchmark: how close to the teacher's batch-norm statistics each optimised image source gets in the same steps.

    python benchmarks/image_sources_bns.py [--steps 100] [--batch 64] [--seeds 0 1] [--threads 1] [--write]
    python benchmarks/image_sources_bns.py --smoke     # the demo teacher, a few steps (no ../shared needed)

Rows: pixels (``--generator direct``, its default lr) and Genie-D latents plus a generator per batch
(``--generator genie``) at several latent lrs, each optimising one batch of ``--batch`` images from the same
seed with the same objective (CE on balanced labels + 10 BNS, jitter 2 px and flips; :mod:`nascomp.recon.direct`)
for ``--steps`` Adam steps, cosine lr. Columns: BNS before and after (no jitter), the final CE, the share of
images the teacher assigns their requested label, and CPU seconds per step. Teacher: the CIFAR-10 ResNet-20 of
``../shared``. No image of any dataset is read, so choosing a source's lr on these figures is a data-free choice.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from common import SHARED, add_section_args, command, machine, mean_spread, write_section

from nascomp.demo import demo_teacher
from nascomp.models import create_model
from nascomp.recon import PARAMETERISATIONS, BNStatistics, freeze_teacher
from nascomp.recon.direct import DirectOptimizer, DirectSettings
from nascomp.recon.genie import GENERATOR_LR_RATIO

TITLE = "Optimised image sources: batch-norm statistics reached in the same steps (CIFAR-10 ResNet-20, data-free)"
WEIGHTS = SHARED / "weights" / "cifar10" / "resnet20-12fca82f.th"
ROWS = [("pixels", None), ("latent", 0.1), ("latent", None), ("latent", 0.01)]  # None: the default; 0.1: Genie's


def optimise(teacher: torch.nn.Module, settings: DirectSettings, batch: int, seed: int) -> dict[str, float]:
    bns = BNStatistics(teacher)
    try:
        torch.manual_seed(seed)
        opt = DirectOptimizer(teacher, bns, teacher.default_cfg.input_size, teacher.default_cfg.num_classes, settings)
        opt.start(batch)
        start = opt.result()
        cpu = time.process_time()
        while not opt.done:
            opt.update()
        seconds = (time.process_time() - cpu) / settings.steps
        end = opt.result()
        _, ce, _, _ = opt.objective(end["images"])
    finally:
        bns.remove()
    agree = (end["logits"].argmax(1) == end["labels"]).float().mean().item() * 100
    return {"bns_start": start["bns"], "bns_end": end["bns"], "ce": ce.item(), "agree": agree, "seconds": seconds}


def main(argv: list[str] | None = None) -> str:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--smoke", action="store_true", help="the demo teacher, 3 steps, batch 8: a check that it runs")
    add_section_args(p, TITLE)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.smoke:
        teacher, args.steps, args.batch = demo_teacher(), 3, 8
    elif not WEIGHTS.is_file():
        raise SystemExit(f"needs the ResNet-20 weights at {WEIGHTS} (../shared); --smoke runs without them")
    else:
        teacher = create_model("cifar_resnet20", str(WEIGHTS))
    teacher = freeze_teacher(teacher.eval())
    lines = ["| source | lr | BNS before | BNS after | CE after | teacher gives the requested label (%) | CPU s / step |",
             "|---|---|---|---|---|---|---|"]
    for form, lr in ROWS:
        lr = lr or PARAMETERISATIONS[form]
        settings = DirectSettings(steps=args.steps, lr=lr, parameterisation=form)
        runs = [optimise(teacher, settings, args.batch, seed) for seed in args.seeds]
        name = "pixels (`direct`)" if form == "pixels" else "Genie-D latents + generator (`genie`)"
        shown_lr = f"{lr:g}" if form == "pixels" else f"{lr:g} (generator {lr * GENERATOR_LR_RATIO:g})"
        if lr == PARAMETERISATIONS[form]:
            shown_lr += ", default"
        cells = [mean_spread([r[k] for r in runs], ".3f") for k in ("bns_start", "bns_end", "ce")]
        lines.append(f"| {name} | {shown_lr} | {' | '.join(cells)} | {mean_spread([r['agree'] for r in runs], '.1f')} "
                     f"| {statistics.mean(r['seconds'] for r in runs):.3f} |")
        print(lines[-1], flush=True)
    body = "\n".join([
        f"Command: `{command()}`  ",
        f"Machine: {machine()}  ",
        f"Budget: one batch of {args.batch} images per seed (seeds {', '.join(map(str, args.seeds))}), {args.steps} Adam "
        "steps, cosine lr, objective CE + 10 BNS on jittered and flipped batches; teacher "
        f"{'demo_net' if args.smoke else 'cifar_resnet20 (../shared)'}", "", *lines, "",
        "Mean ± half-range over the seeds. BNS: the batch-norm statistics distance of `nascomp.recon.bns` (no jitter); "
        "no dataset image is read."])
    if args.write:
        write_section(args.title, body)
    print(body)
    return body


if __name__ == "__main__":
    main()
