"""Benchmark: settings of the KD fine-tune of ``nascomp dfq`` (calibset schedule), compared on the same trained
generators, so that only the setting differs.

Each source is a finished ``nascomp dfq`` run folder (e.g. made by ``benchmarks/dfq_cifar10.py``). For every
source and every variant a new run is made with the source's config plus the variant's overrides and the
source's trained generator (from its checkpoint; the generator is not trained again). The latents are drawn
by the CPU generator with the run's seed, so all variants of one source calibrate and fine-tune on the same
generated images, also across devices (up to the device's arithmetic).

    python benchmarks/dfq_finetune.py --sources runs/bench-dfq-v2/gdfq-seed0 runs/bench-dfq-v2/gdfq-seed1 \\
        --variant preset --variant lr1e-3 student_lr=0.001 --runs runs/bench-ft [--write --title T]

A variant is ``NAME [KEY=VALUE ...]`` with keys of ``DFQConfig`` (``device=cpu`` runs one on the CPU beside
GPU ones; ``generator=direct`` replaces the source's generator by images optimised directly, with the same seed,
count and method, so the image source is the only difference); ``--set KEY=VALUE ...`` applies to every variant (e.g. ``data=`` another evaluation set: choose settings
on CIFAR-10 *train* images, then confirm on the test set with ``benchmarks/dfq_cifar10.py``); ``--no-tf32``
turns off cuDNN's TF32 convolutions for all variants of the call.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import torch
from common import (
    add_section_args,
    command,
    dfq_budget,
    direct_budget,
    machine,
    mean_spread,
    parse_overrides,
    recon_budget,
    refine_budget,
    run_config,
    shown,
    stage_minutes,
    write_section,
)

from nascomp.config import DFQConfig
from nascomp.dfq.pipeline import IMAGE_FIELDS, DFQRun
from nascomp.engine import evaluate
from nascomp.recon import OPTIMISED_SOURCES

TITLE = "KD fine-tune settings on the same trained generators (CIFAR-10, ResNet-20, W4A4)"


def run_variant(source: Path, cfg: DFQConfig, out: Path, reuse_images: bool = False) -> dict:
    """Calibrate and fine-tune with ``cfg``, starting from the trained generator of the run ``source`` (or, for a
    variant with an untrained source such as ``generator=direct``, from that source's own image stage).

    ``reuse_images``: a variant whose image settings (``IMAGE_FIELDS``) equal the source's takes the source's own
    calibration set from its checkpoint and starts at calibration, so no image is drawn, refined or optimised again
    (the image stages' minutes stay in the source run's)."""
    if (out / "metrics.json").is_file():
        return json.loads((out / "metrics.json").read_text())
    ckpt = torch.load(source / "checkpoint.pt", map_location="cpu", weights_only=True)
    run = DFQRun(cfg, out=str(out), force=True, quiet=True)
    source_cfg = run_config(DFQConfig, source)
    if cfg.generator == source_cfg.generator:
        run.generator.load_state_dict(ckpt["parts"]["generator"])
    elif run.generator.trainable:
        raise SystemExit(f"variant generator={cfg.generator}: it would need training; only sources without a "
                         "generator to train (direct, noise) may replace the source's")
    run.results.fp_top1 = (ckpt["results"]["fp_top1"] if cfg.data == source_cfg.data  # same teacher, same data
                           else evaluate(run.teacher, run.eval_data, run.device).top1)
    stages = [stage.name for stage in run.stages()]
    if reuse_images and same_images(cfg, source_cfg):
        run.calib = source_images(source, ckpt)
        run.results.calib_lr, run.results.calib_bns = ckpt["results"]["calib_lr"], ckpt["results"]["calib_bns"]
        run.progress.stage = stages.index("calibrate")
    else:  # the generator is trained (or there is none): go straight to the calibration set (drawn or optimised)
        run.progress.stage = stages.index("generator") + 1
    return run.run()


def same_images(a: DFQConfig, b: DFQConfig) -> bool:
    """Whether runs with configs ``a`` and ``b`` make the same calibration images."""
    return all(getattr(a, name) == getattr(b, name) for name in IMAGE_FIELDS)


def source_images(source: Path, ckpt: dict) -> dict[str, torch.Tensor]:
    """The calibration set (images, labels, teacher logits, held-out ones) that the finished run ``source`` used."""
    ranks = ckpt["ranks"]
    calib = ranks[0]["parts"].get("calib") or {}
    if len(ranks) != 1 or "images" not in calib:
        raise SystemExit(f"--reuse-images: {source} holds no single-process calibration set (a torchrun run draws one "
                         "per process); leave out --reuse-images")
    return calib


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sources", nargs="+", required=True, help="finished calibset runs of nascomp dfq")
    p.add_argument("--variant", nargs="+", action="append", metavar="NAME [KEY=VALUE]",
                   help="a setting to measure (repeat the flag); default: the sources' own config")
    p.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", help="overrides for every variant")
    p.add_argument("--runs", default="runs/bench-ft", help="parent folder of the variants' run folders")
    p.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch CPU threads")
    p.add_argument("--no-tf32", action="store_true", help="torch.backends.cudnn.allow_tf32 = False")
    p.add_argument("--reuse-images", action="store_true",
                   help="variants with the source's image settings calibrate on the source's own images")
    add_section_args(p, TITLE)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.backends.cudnn.allow_tf32 = not args.no_tf32
    variants = {v[0]: parse_overrides(v[1:], DFQConfig) for v in (args.variant or [["preset"]])}
    sources = [Path(s) for s in args.sources]
    common = parse_overrides(args.set, DFQConfig)
    own = {}  # source -> its own config, read once
    for s in sources:
        if not (s / "checkpoint.pt").is_file() or run_config(DFQConfig, s).schedule != "calibset":
            raise SystemExit(f"--sources {s}: not a finished calibset run of nascomp dfq (config.yaml + checkpoint.pt; a CLI run keeps its checkpoint with --keep-checkpoint)")
        own[s] = run_config(DFQConfig, s)
    bases = {s: variant_config(cfg, common) for s, cfg in own.items()}  # with the --set overrides
    results: dict[tuple[str, str], list[dict]] = {}  # (variant, generator) -> one metrics dict per source
    reused: set[str] = set()  # variants that calibrated on their sources' own images
    for name, overrides in variants.items():
        for source in sources:
            cfg = variant_config(bases[source], overrides)  # a variant's own value wins over --set
            if args.reuse_images and same_images(cfg, own[source]):
                reused.add(name)
            metrics = run_variant(source, cfg, Path(args.runs) / f"{name}-{source.name}", args.reuse_images)
            epochs = " ".join(f"{top1:.2f}" for top1 in scored(metrics))
            recon = f" recon {metrics['recon_top1']:.2f}" if metrics.get("recon_top1") is not None else ""
            print(f"{name} {source}: PTQ {metrics['ptq_top1']:.2f}{recon} epochs {epochs or '-'} "
                  f"({metrics['seconds']:.0f} s)", flush=True)
            results.setdefault((name, cfg.generator), []).append(metrics)
    print(report(args, variants, sources, bases[sources[0]], results, reused))


def variant_config(base: DFQConfig, overrides: dict) -> DFQConfig:
    """``base`` (a source run's config) with a variant's overrides. A variant that switches to another image
    source without an lr of its own takes that source's default lr (``direct_lr=None``), not the lr the source run
    saved: configs written before the lr defaulted per source hold the pixels' 0.25 even for other sources."""
    if overrides.get("generator", base.generator) != base.generator and "direct_lr" not in overrides:
        overrides = {**overrides, "direct_lr": None}
    return replace(base, **overrides)


def scored(metrics: dict) -> list[float]:
    """Top-1 after each evaluated KD epoch (every epoch with ``eval_every=1``, the last one with 0)."""
    return [row["top1"] for row in metrics["history"] if "top1" in row]


def report(args: argparse.Namespace, variants: dict, sources: list[Path], base: DFQConfig,
           results: dict[tuple[str, str], list[dict]], reused: set[str] = frozenset()) -> str:
    lines = [
        f"Command: `{command()}`  ",
        f"Machine: {machine()}{', cuDNN TF32 off' if args.no_tf32 else ''}  ",
        f"Sources (trained generators): {', '.join(f'`{shown(s)}`' for s in sources)}  ",
        f"Base budget (the first source's config): {dfq_budget(base)}; every variant skips the generator training  ",
        f"Teacher: {base.model}, FP top-1 {next(iter(results.values()))[0]['fp_top1']:.2f} on `{shown(base.data)}`, "
        "where every row is evaluated",
        "",
        "| variant | generator | overrides | PTQ top-1 | block reconstruction top-1 | top-1 after each evaluated KD epoch "
        "| delivered - PTQ | s / student step | s / reconstructed block | minutes per stage | run minutes |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (name, generator), runs in results.items():
        curves = [scored(m) for m in runs]
        per_epoch = [mean_spread([c[e] if e < len(c) else None for c in curves]) for e in range(max(map(len, curves)))]
        gain = [m["dfq_top1"] - m["ptq_top1"] for m in runs]
        overrides = ", ".join(f"{k}={v}" for k, v in variants[name].items()) or "-"
        steps = {part: mean_spread([m["seconds_per_step"].get(part) for m in runs], ".3f")
                 for part in ("student_step", "reconstruct_unit")}
        lines.append(f"| {name} | {generator} | {overrides} | {mean_spread([m['ptq_top1'] for m in runs])} "
                     f"| {mean_spread([m.get('recon_top1') for m in runs])} | {' / '.join(per_epoch) or '-'} "
                     f"| {mean_spread(gain, '+.2f')} | {steps['student_step']} | {steps['reconstruct_unit']} "
                     f"| {stage_minutes(runs)} | {mean_spread([m['seconds'] / 60 for m in runs], '.1f')} |")
    lines += ["", "Mean ± half-range over the sources of that generator (one trained generator each); same images for "
              "every variant of a source."]
    configs = {name: variant_config(base, overrides) for name, overrides in variants.items()}
    lines += [f"Variant {name}{recon_budget(cfg)}." for name, cfg in configs.items() if recon_budget(cfg)]
    lines += [f"Variant {name}: {direct_budget(cfg)}." for name, cfg in configs.items()
              if cfg.generator in OPTIMISED_SOURCES]
    lines += [f"Variant {name}: the generated images{refine_budget(cfg)}." for name, cfg in configs.items()
              if refine_budget(cfg)]
    lines += [f"Variant {name}: calibrated on its source's own calibration images (`--reuse-images`, read from the "
              "source's checkpoint): no image stage of its own, its run minutes leave the images' cost to the source "
              "run." for name in variants if name in reused]
    lines += ["Run minutes: wall time of the variant's stages (image source, calibration, reconstruction, KD, "
              "evaluations), without the source's generator training; minutes per stage: the mean wall time of each "
              "stage (its evaluations included)."]
    text = "\n".join(lines)
    if args.write:
        write_section(args.title, text)
    return text


if __name__ == "__main__":
    main()
