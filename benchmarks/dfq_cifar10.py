"""Benchmark: data-free W4A4 quantization of the CIFAR-10 ResNet-20 of ../shared, GDFQ generator vs the
Gaussian-noise control, at one budget (a preset of ``nascomp dfq``), evaluated on the JPEG test set.

    python benchmarks/dfq_cifar10.py [--preset quick] [--seeds 0] [--write]
    python benchmarks/dfq_cifar10.py --smoke          # the demo teacher, a tiny budget, seconds

Prints a Markdown section (command, machine, budget, seconds per step, FP / PTQ / DFQ top-1); ``--write``
puts it into docs/BENCHMARKS.md. The JPEG test set reads 81.03 % for this teacher, about 10 points under its
clean-CIFAR figure (see ../shared/README.md): compare methods with each other here, not with paper figures.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from common import (
    SHARED,
    add_section_args,
    command,
    dfq_budget,
    machine,
    mean_spread,
    parse_overrides,
    run_config,
    stage_minutes,
    write_section,
)

from nascomp.config import DFQ_PRESETS, DFQConfig, resolve
from nascomp.dfq import run_dfq

TITLE = "GDFQ data-free quantization (CIFAR-10, ResNet-20, W4A4)"


def config(args: argparse.Namespace, generator: str, seed: int) -> DFQConfig:
    if args.smoke:
        return resolve(DFQConfig, DFQ_PRESETS, "demo", dict(generator=generator, seed=seed, gen_steps=20,
                                                            calib_size=128, epochs=2))
    weights = sorted((SHARED / "weights" / "cifar10").glob("resnet20-*.th"))
    data = SHARED / "data" / "cifar10-jpeg" / "test.tar.gz"
    if not weights or not data.is_file():
        raise SystemExit(f"needs ../shared (ResNet-20 weights and {data}); see ../shared/README.md")
    return resolve(DFQConfig, DFQ_PRESETS, args.preset, dict(
        model="cifar_resnet20", weights=str(weights[0]), data=str(data), generator=generator, seed=seed,
        wbits=args.wbits, abits=args.abits, device=args.device, **parse_overrides(args.set, DFQConfig)))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="quick")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--generators", nargs="+", default=["gdfq", "noise"])
    p.add_argument("--wbits", type=int, default=4)
    p.add_argument("--abits", type=int, default=4)
    p.add_argument("--device", default="auto")
    p.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE",
                   help="override fields of the preset (e.g. gen_steps=800); the budget line shows the result")
    p.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch CPU threads")
    p.add_argument("--runs", default="runs/bench-dfq", help="parent folder of the run folders")
    p.add_argument("--smoke", action="store_true")
    add_section_args(p, TITLE)
    p.add_argument("--machine", help="with --report-only: the machine the runs were made on (default: this one)")
    p.add_argument("--report-only", action="store_true", help="re-read the finished runs' metrics.json, run nothing")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    results: dict[str, list[dict]] = {}
    for generator in args.generators:
        for seed in args.seeds:
            cfg = config(args, generator, seed)
            out = Path(args.runs) / f"{generator}-seed{seed}"
            if args.report_only:
                if not (out / "metrics.json").is_file():
                    raise SystemExit(f"--report-only: {out / 'metrics.json'} not found; run without --report-only first")
                metrics = json.loads((out / "metrics.json").read_text())
            else:
                metrics = run_dfq(cfg, out=str(out), force=True, quiet=True)
            print(f"{generator} seed {seed}: FP {metrics['fp_top1']:.2f} PTQ {metrics['ptq_top1']:.2f} "
                  f"DFQ {metrics['dfq_top1']:.2f} ({metrics['seconds']:.0f} s)", flush=True)
            results.setdefault(generator, []).append(metrics)
    print(report(args, results))


def report(args: argparse.Namespace, results: dict[str, list[dict]]) -> str:
    first = next(iter(results.values()))[0]
    cfg = run_config(DFQConfig, first["run_dir"])  # the budget the runs were made with
    lines = [
        f"Command: `{command()}`" + (" (the runs were made by the same command without `--report-only`)" if args.report_only else "") + "  ",
        f"Machine: {args.machine or machine()}  ",
        f"Teacher: {cfg.model} ({'demo data' if args.smoke else 'JPEG CIFAR-10 test set, 10,000 images'}), "
        f"W{cfg.wbits}A{cfg.abits} ({first.get('protocol', 'GDFQ protocol')}), seeds {args.seeds}  ",
        f"Budget: {dfq_budget(cfg)}  ",
        f"Total wall time: {sum(r['seconds'] for runs in results.values() for r in runs) / 60:.1f} min of runs",
        "",
        "| generator | FP top-1 | PTQ top-1 | block reconstruction top-1 | DFQ top-1 (saved student) | DFQ last epoch "
        "| DFQ best epoch (chosen on test data) | calib. L_r | calib. BNS | s / generator step | s / student step "
        "| minutes per stage | run minutes |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for generator, runs in results.items():
        steps = [r["seconds_per_step"] for r in runs]
        lines.append(
            f"| {generator} | {first['fp_top1']:.2f} | {mean_spread([r['ptq_top1'] for r in runs])} "
            f"| {mean_spread([r.get('recon_top1') for r in runs])} "
            f"| {mean_spread([r['dfq_top1'] for r in runs])} | {mean_spread([r['dfq_last_epoch_top1'] for r in runs])} "
            f"| {mean_spread([r['dfq_best_top1'] for r in runs])} "
            f"| {mean_spread([r['calib_lr'] for r in runs])} | {mean_spread([r['calib_bns'] for r in runs])} "
            f"| {mean_spread([s.get('generator_step') for s in steps])} "
            f"| {mean_spread([s.get('student_step') for s in steps])} "
            f"| {stage_minutes(runs)} | {mean_spread([r['seconds'] / 60 for r in runs], '.1f')} |")
    saved = (f"the epoch (0 = PTQ) with the lowest KD loss on {cfg.holdout_size} held-out generated images"
             if cfg.holdout_size else "the reconstructed one (no KD epochs)" if cfg.method == "recon"
             else "the last epoch's")
    lines += ["", f"Mean ± half-range over the seeds. The saved student is {saved}; the last-epoch and test-selected "
              "figures are given beside it. Same seed, same numbers at the same thread count (CPU). The wall times "
              "were taken with other benchmark jobs running on the same machine."]
    text = "\n".join(lines)
    if args.write:
        write_section(args.title + (" [smoke]" if args.smoke else ""), text)
    return text


if __name__ == "__main__":
    main()
