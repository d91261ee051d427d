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
GPU ones); ``--set KEY=VALUE ...`` applies to every variant (e.g. ``data=`` another evaluation set: choose settings
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
    machine,
    mean_spread,
    parse_overrides,
    run_config,
    write_section,
)

from nascomp.config import DFQConfig
from nascomp.dfq.pipeline import DFQRun

TITLE = "KD fine-tune settings on the same trained generators (CIFAR-10, ResNet-20, W4A4)"


def run_variant(source: Path, cfg: DFQConfig, out: Path) -> dict:
    """Calibrate and fine-tune with ``cfg``, starting from the trained generator of the run ``source``."""
    if (out / "metrics.json").is_file():
        return json.loads((out / "metrics.json").read_text())
    ckpt = torch.load(source / "checkpoint.pt", map_location="cpu", weights_only=False)
    run = DFQRun(cfg, out=str(out), force=True, quiet=True)
    run.generator.load_state_dict(ckpt["generator"])
    run.state.step = cfg.gen_steps  # the generator phase is done: go straight to drawing the calibration set
    return run.run()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sources", nargs="+", required=True, help="finished calibset runs of nascomp dfq")
    p.add_argument("--variant", nargs="+", action="append", metavar="NAME [KEY=VALUE]",
                   help="a setting to measure (repeat the flag); default: the sources' own config")
    p.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", help="overrides for every variant")
    p.add_argument("--runs", default="runs/bench-ft", help="parent folder of the variants' run folders")
    p.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch CPU threads")
    p.add_argument("--no-tf32", action="store_true", help="torch.backends.cudnn.allow_tf32 = False")
    add_section_args(p, TITLE)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.backends.cudnn.allow_tf32 = not args.no_tf32
    variants = {v[0]: parse_overrides(v[1:], DFQConfig) for v in (args.variant or [["preset"]])}
    sources = [Path(s) for s in args.sources]
    for s in sources:
        if not (s / "checkpoint.pt").is_file() or run_config(DFQConfig, s).schedule != "calibset":
            raise SystemExit(f"--sources {s}: not a finished calibset run of nascomp dfq (config.yaml + checkpoint.pt)")
    results: dict[str, list[dict]] = {}
    for name, overrides in variants.items():
        for source in sources:
            cfg = replace(run_config(DFQConfig, source), **parse_overrides(args.set, DFQConfig), **overrides)
            metrics = run_variant(source, cfg, Path(args.runs) / f"{name}-{source.name}")
            epochs = " ".join(f"{r['top1']:.2f}" for r in metrics["history"] if "top1" in r)
            print(f"{name} {source}: PTQ {metrics['ptq_top1']:.2f} epochs {epochs} ({metrics['seconds']:.0f} s)", flush=True)
            results.setdefault(name, []).append(metrics)
    print(report(args, variants, sources, results))


def report(args: argparse.Namespace, variants: dict, sources: list[Path], results: dict[str, list[dict]]) -> str:
    base = replace(run_config(DFQConfig, sources[0]), **parse_overrides(args.set, DFQConfig))
    lines = [
        f"Command: `{command()}`  ",
        f"Machine: {machine()}{', cuDNN TF32 off' if args.no_tf32 else ''}  ",
        f"Sources (trained generators): {', '.join(f'`{s}`' for s in sources)}  ",
        f"Base budget (the first source's config): {dfq_budget(base)}; every variant skips the generator training  ",
        f"Evaluated on: `{base.data}`",
        "",
        "| variant | overrides | PTQ top-1 | top-1 after each KD epoch | last - PTQ | s / student step |",
        "|---|---|---|---|---|---|",
    ]
    for name, runs in results.items():
        n_epochs = max(len([r for r in m["history"] if "top1" in r]) for m in runs)
        per_epoch = [mean_spread([m["history"][e]["top1"] if e < len(m["history"]) else None for m in runs])
                     for e in range(n_epochs)]
        gain = [m["dfq_last_epoch_top1"] - m["ptq_top1"] for m in runs]
        overrides = ", ".join(f"{k}={v}" for k, v in variants[name].items()) or "-"
        lines.append(f"| {name} | {overrides} | {mean_spread([m['ptq_top1'] for m in runs])} | {' / '.join(per_epoch)} "
                     f"| {mean_spread(gain, '+.2f')} | {mean_spread([m['seconds_per_step'].get('student_step') for m in runs], '.3f')} |")
    lines += ["", "Mean ± half-range over the sources (one trained generator each); same images for every variant "
              "of a source."]
    text = "\n".join(lines)
    if args.write:
        write_section(args.title, text)
    return text


if __name__ == "__main__":
    main()
