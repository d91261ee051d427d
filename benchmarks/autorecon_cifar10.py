"""Benchmark: AutoReCon's searched generators vs the GDFQ generator for data-free W4A4 quantization of the
CIFAR-10 ResNet-20 of ../shared, at one DFQ budget and seed set, evaluated on the JPEG test set.

    python benchmarks/autorecon_cifar10.py [--seeds 0 1] [--dfq-preset quick] [--search-preset quick] [--write]
    python benchmarks/autorecon_cifar10.py --smoke      # the demo teacher, a tiny budget, under a minute

For each seed: (a) ``gdfq``, (b) ``autorecon-cifar10-resnet20`` (the published genotype), (c) a genotype
searched here for this teacher with the same seed (``nascomp search-generator``, preset ``--search-preset``),
each driving the same ``nascomp dfq`` run. Per generator: the L_r and BNS of its calibration images (metrics
``calib_lr`` / ``calib_bns``), PTQ and DFQ top-1 (last epoch), DFQ seconds; mean ± half-range over the seeds;
for (c) also the search cost (seconds, seconds per step, peak memory). AutoReCon claims (b) and (c) beat (a);
the section reports what we measure, whichever way it falls. ``--write`` puts the section into
docs/BENCHMARKS.md (replacing a previous one). The JPEG test set reads about 10 points under clean CIFAR-10
for this teacher: compare the generators with each other, not with the paper's figures.
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
    write_section,
)

from nascomp.config import DFQ_PRESETS, GENERATOR_SEARCH_PRESETS, DFQConfig, GeneratorSearchConfig, resolve
from nascomp.dfq import run_dfq
from nascomp.dfq.generator_choice import run_generator_search

TITLE = "AutoReCon vs GDFQ generator (CIFAR-10, ResNet-20, W4A4)"
PUBLISHED = "autorecon-cifar10-resnet20"
SMOKE_DFQ = dict(gen_steps=20, calib_size=128, epochs=2, batch_size=32)


def teacher(args: argparse.Namespace) -> dict[str, str | None]:
    """The model, weights and evaluation data of the benchmark (the demo teacher with --smoke)."""
    if args.smoke:
        return {"model": "demo_net", "weights": None, "data": "demo"}
    weights = sorted((SHARED / "weights" / "cifar10").glob("resnet20-*.th"))
    data = SHARED / "data" / "cifar10-jpeg" / "test.tar.gz"
    if not weights or not data.is_file():
        raise SystemExit(f"needs ../shared (ResNet-20 weights and {data}); see ../shared/README.md")
    return {"model": "cifar_resnet20", "weights": str(weights[0]), "data": str(data)}


def search_config(args: argparse.Namespace, seed: int) -> GeneratorSearchConfig:
    t = teacher(args)
    preset = "demo" if args.smoke else args.search_preset
    return resolve(GeneratorSearchConfig, GENERATOR_SEARCH_PRESETS, preset,
                   dict(model=t["model"], weights=t["weights"], seed=seed, device=args.device))


def dfq_config(args: argparse.Namespace, generator: str, seed: int) -> DFQConfig:
    extra = SMOKE_DFQ if args.smoke else parse_overrides(args.set, DFQConfig)
    return resolve(DFQConfig, DFQ_PRESETS, "demo" if args.smoke else args.dfq_preset, dict(
        **teacher(args), **extra, generator=generator, seed=seed, wbits=4, abits=4, device=args.device))


def read_metrics(run_dir: Path) -> dict:
    path = run_dir / "metrics.json"
    if not path.is_file():
        raise SystemExit(f"--report-only: {path} not found; run the benchmark without --report-only first")
    return json.loads(path.read_text())


def run(args: argparse.Namespace) -> tuple[dict[str, list[dict]], list[dict]]:
    """All DFQ runs (per generator label, one per seed) and the searches (one per seed)."""
    results: dict[str, list[dict]] = {}
    searches = []
    root = Path(args.runs)
    for seed in args.seeds:
        search_dir = root / f"search-seed{seed}"
        search = (read_metrics(search_dir) if args.report_only else
                  run_generator_search(search_config(args, seed), out=str(search_dir), force=True, quiet=True))
        searches.append(search)
        print(f"search seed {seed}: L_r {search['lr_first']:.4g} -> {search['lr_last']:.4g}, "
              f"{search['seconds']:.0f} s ({search['seconds_per_step']:.3g} s/step)", flush=True)
        for label, generator in (("gdfq", "gdfq"), (PUBLISHED, PUBLISHED), ("searched here", search["genotype"])):
            cfg = dfq_config(args, generator, seed)
            out = root / f"{label.replace(' ', '-')}-seed{seed}"
            metrics = read_metrics(out) if args.report_only else run_dfq(cfg, out=str(out), force=True, quiet=True)
            print(f"{label} seed {seed}: PTQ {metrics['ptq_top1']:.2f} DFQ {metrics['dfq_top1']:.2f} "
                  f"({metrics['seconds']:.0f} s)", flush=True)
            results.setdefault(label, []).append(metrics)
    return results, searches


def budget(d: DFQConfig, searches: list[dict]) -> str:
    """The budget the runs were made with (``d`` and the first search's config.yaml)."""
    s = run_config(GeneratorSearchConfig, searches[0]["run_dir"])
    return (f"DFQ {dfq_budget(d)}; search preset `{s.preset}` ({s.epochs} x {s.steps_per_epoch} steps, batch "
            f"{s.batch_size}, width {s.channels}, order {s.order})")


def report(args: argparse.Namespace, results: dict[str, list[dict]], searches: list[dict]) -> str:
    first = next(iter(results.values()))[0]
    dfq_cfg = run_config(DFQConfig, first["run_dir"])  # the budget the runs were made with
    t = teacher(args)
    lines = [
        f"Command: `{command()}`" + (" (the runs were made by the same command without `--report-only`, one "
                                      "process per seed)" if args.report_only else "") + "  ",
        f"Machine: {args.machine or machine()}  ",
        f"Teacher: {t['model']} (FP top-1 {first['fp_top1']:.2f} on "
        f"{'the demo digits' if args.smoke else 'the JPEG CIFAR-10 test set'}), W4A4, seeds {args.seeds}  ",
        f"Budget: {budget(dfq_cfg, searches)}  ",
        f"Total: {(sum(r['seconds'] for rs in results.values() for r in rs) + sum(s['seconds'] for s in searches)) / 60:.1f} "
        "min of runs and searches  ",
        "Figures: mean ± half-range over the seeds. The saved student is "
        + ("the KD epoch (0 = PTQ) with the lowest KD loss on held-out generated images, chosen without real data."
           if dfq_cfg.holdout_size else "the last epoch's."),
        "",
        "| generator | calib. L_r | calib. BNS | PTQ top-1 | DFQ top-1 (last epoch) | DFQ top-1 (saved student) "
        "| DFQ seconds | search seconds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    search_cost = mean_spread([s["seconds"] for s in searches], ".0f")
    for label, runs in results.items():
        lines.append(
            f"| {label} | {mean_spread([r.get('calib_lr') for r in runs], '.3f')} "
            f"| {mean_spread([r.get('calib_bns') for r in runs], '.3f')} | {mean_spread([r['ptq_top1'] for r in runs])} "
            f"| {mean_spread([r['dfq_last_epoch_top1'] for r in runs])} | {mean_spread([r['dfq_top1'] for r in runs])} "
            f"| {mean_spread([r['seconds'] for r in runs], '.0f')} "
            f"| {search_cost if label == 'searched here' else '-'} |")
    lines += ["", "Search cost per seed: " + "; ".join(
        f"{s['steps']} steps, {s['seconds_per_step']:.3g} s/step ({s['cpu_seconds_per_step']:.3g} CPU-s/step, "
        f"{s['torch_threads']} threads), process peak RSS {s['peak_rss_mb']:.0f} MiB"
        + (f", peak CUDA memory {s['peak_cuda_mb']:.0f} MiB" if s.get("peak_cuda_mb") else "") + f", L_r {s['lr_first']:.4g} -> "
        f"{s['lr_last']:.4g}" for s in searches)]
    for seed, s in zip(args.seeds, searches, strict=True):
        ops = s["ops"]
        lines.append(f"Searched genotype, seed {seed}: normal {sum(op != 'none' for op in ops['normal'])}/15 edges "
                     f"kept, cross {sum(op != 'none' for op in ops['cross'])}/12, up {ops['up']}, normal "
                     f"{ops['normal']}, cross {ops['cross']}  ")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--dfq-preset", default="quick")
    p.add_argument("--search-preset", default="quick")
    p.add_argument("--device", default="auto")
    p.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE",
                   help="override fields of the DFQ preset (e.g. gen_steps=800); the budget line shows the result")
    p.add_argument("--machine", help="with --report-only: the machine the runs were made on (default: this one)")
    p.add_argument("--report-only", action="store_true",
                   help="re-read the finished runs' metrics.json (e.g. seeds run as separate processes), run nothing")
    p.add_argument("--threads", type=int, help="torch threads (default: torch's; 1 with --smoke: tiny models)")
    p.add_argument("--runs", default="runs/bench-autorecon", help="parent folder of the run folders")
    p.add_argument("--smoke", action="store_true", help="the demo teacher and a tiny budget (a check, not a figure)")
    add_section_args(p, TITLE)
    args = p.parse_args()
    if args.smoke and args.write:
        raise SystemExit("--smoke numbers are a check, not a benchmark: run without --write")
    if args.threads or args.smoke:
        torch.set_num_threads(args.threads or 1)
    results, searches = run(args)
    text = report(args, results, searches)
    print(f"\n## {args.title}\n\n{text}")
    if args.write:
        write_section(args.title, text)


if __name__ == "__main__":
    main()
