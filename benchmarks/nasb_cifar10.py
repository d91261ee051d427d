"""NASB vs Bi-Real on CIFAR-10: search binary cells, match the OPs of ``cifar_birealnet20``, train both in stages.

    python benchmarks/nasb_cifar10.py [--preset quick|paper] [--train TAR] [--test TAR] [--out DIR]
                                      [--seed S] [--threads N] [--device D] [--write]
    python benchmarks/nasb_cifar10.py --smoke      # demo digits, tiny settings, under a minute

Steps, all with one seed: (1) ``nascomp nasb search`` on the training tar (the preset's subset), (2) the width C
of the found network (8 cells) whose fully binary OPs are closest to the baseline's (``count_cost``; within
10 % or the run says so), (3) ``nascomp nasb train`` of the found network and of ``cifar_birealnet20`` with the
same stages, epochs, training subset, test subset and seed. It prints its command, the machine, the budget,
top-1 per stage (last epoch), FLOPs/BOPs/OPs and wall times; ``--write`` puts the section
"## NASB vs Bi-Real (CIFAR-10)" into docs/BENCHMARKS.md (replacing that section, keeping the rest).

The quick preset is sized for about an hour on two CPU cores (one torch thread: on shared cores the thread
hand-offs of small convs cost more than a second thread gives; ``--threads 2`` on idle cores): search on 10,000
training images (5,000 for weights, 5,000 for alphas) with GDAS sampling, 4 epochs; training on 6,000 images,
3 epochs per stage, test on 2,000 images. The test images are ../shared's JPEG set: compare the two networks
with each other, not with published CIFAR-10 figures.
"""

from __future__ import annotations

import argparse
import datetime
import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
from common import DOCS, SHARED, add_section_args, machine, shown, write_section

from nascomp.config import NASB_SEARCH_PRESETS, NASB_TRAIN_PRESETS, NASBSearchConfig, NASBTrainConfig, resolve
from nascomp.nasb import load_genotype, run_search, run_train, width_for_ops
from nascomp.nasb.data import input_cfg, open_split
from nascomp.nasb.report import student_cost
from nascomp.quant.cost import sci

ROOT = Path(__file__).resolve().parents[1]
CIFAR = SHARED / "data" / "cifar10-jpeg"
TITLE = "NASB vs Bi-Real (CIFAR-10)"
BASELINE = "cifar_birealnet20"
SMOKE_SEARCH = dict(channels=4, layers=3, subset=256, epochs=1, batch_size=32, plot=False)
SMOKE_TRAIN = dict(layers=3, subset=256, eval_subset=128, epochs=1, batch_size=32)
OPS_TOLERANCE = 0.10
DATA_NOTE = "../shared's CIFAR-10 *JPEG* sets: compare the rows with each other, not with published figures"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="quick", help="quick (CPU, about an hour) | paper")
    p.add_argument("--train", default=str(CIFAR / "train.tar.gz"), help="labelled training images")
    p.add_argument("--test", default=str(CIFAR / "test.tar.gz"), help="labelled test images")
    p.add_argument("--out", default=None, help="folder of the three run folders (default runs/nasb-cifar10-<time>)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1, see the module docstring)")
    p.add_argument("--device", default="auto")
    p.add_argument("--max-parameter-free", type=int, help="derivation cap on pool/skip edges per cell (remedy)")
    add_section_args(p, TITLE)
    p.add_argument("--smoke", action="store_true", help="demo digits with tiny settings (checks the script)")
    return p.parse_args(argv)


def configs(a: argparse.Namespace) -> tuple[NASBSearchConfig, NASBTrainConfig]:
    """The search config and the training config shared by both networks (no student set yet)."""
    if a.smoke:
        search = resolve(NASBSearchConfig, NASB_SEARCH_PRESETS, "demo", {**SMOKE_SEARCH, "seed": a.seed})
        train = resolve(NASBTrainConfig, NASB_TRAIN_PRESETS, "demo", {**SMOKE_TRAIN, "seed": a.seed})
        return search, train
    common = {"seed": a.seed, "device": a.device}
    search = resolve(NASBSearchConfig, NASB_SEARCH_PRESETS, a.preset,
                     {"data": a.train, "max_parameter_free": a.max_parameter_free, **common})
    train = resolve(NASBTrainConfig, NASB_TRAIN_PRESETS, a.preset, {"data": a.train, "eval_data": a.test, **common})
    return search, train


def budget(search: NASBSearchConfig, train: NASBTrainConfig) -> str:
    images = lambda n: "all" if n == 0 else f"{n:,}"  # noqa: E731
    return (f"search: {images(search.subset)} training images (half weights, half alphas), C={search.channels}, "
            f"{search.layers} cells, {search.epochs} epochs, batch {search.batch_size}, {search.relaxation}, "
            f"order {search.order}, parameter-free cap {search.max_parameter_free}; training: {images(train.subset)} images, {train.stages} stages x "
            f"{train.epochs} epochs, batch {train.batch_size}, Adam {train.lr:g} ({train.lr_schedule}), "
            f"{train.layers} cells; test: {images(train.eval_subset)} images")


def cell_text(genotype, kind: str) -> str:
    """``n0 = op(input) + op(input); ...`` for one cell kind."""
    nodes: dict[str, list[str]] = {}
    for entry in genotype.edges[kind]:
        nodes.setdefault(entry["node"], []).append(f"{entry['op']}({entry['input']})")
    return "; ".join(f"{node} = {' + '.join(terms)}" for node, terms in nodes.items())


def timed(fn, *args, **kwargs) -> tuple[dict, float]:
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


def run(a: argparse.Namespace) -> dict:
    search_cfg, train_cfg = configs(a)
    out = Path(a.out or ROOT / "runs" / f"nasb-cifar10-{time.strftime('%Y%m%d-%H%M%S')}")
    print(f"budget: {budget(search_cfg, train_cfg)}", flush=True)
    found, search_s = timed(run_search, search_cfg, out=str(out / "search"), quiet=True)
    genotype = load_genotype(found["genotype"])
    print(f"search: {found['steps']} steps, {found['seconds_per_step']:.3g} s/step, {search_s / 60:.1f} min; "
          f"parameter-free edges {found['parameter_free']}", flush=True)

    icfg = input_cfg(open_split(train_cfg.data, "train"))
    base_cfg = replace(train_cfg, model=BASELINE)
    base_cost = student_cost(base_cfg, icfg)
    width, matched = width_for_ops(genotype, icfg, train_cfg.layers, base_cost.ops)
    gap = matched.ops / base_cost.ops - 1
    print(f"width: C={width} gives OPs {sci(matched.ops)} vs {BASELINE} {sci(base_cost.ops)} ({gap:+.1%})", flush=True)
    nets = {}
    for name, cfg in (("NASB (searched)", replace(train_cfg, genotype=found["genotype"], channels=width)),
                      (f"Bi-Real ({BASELINE})", base_cfg)):
        metrics, seconds = timed(run_train, cfg, out=str(out / name.split()[0].lower()), quiet=True)
        nets[name] = {**metrics, "wall_seconds": seconds}
        tops = ", ".join(f"stage {s['stage']} {s['top1']:.2f} %" for s in metrics["stages"])
        print(f"{name}: {tops}; OPs {sci(metrics['cost']['ops'])}; {seconds / 60:.1f} min", flush=True)
    return {"search": {**found, "wall_seconds": search_s}, "genotype": genotype, "width": width, "ops_gap": gap,
            "nets": nets, "search_cfg": search_cfg, "train_cfg": train_cfg, "out": out}


def markdown(r: dict, command: str, machine_text: str, total_s: float) -> str:
    s_cfg, t_cfg, search = r["search_cfg"], r["train_cfg"], r["search"]
    stages = [s["stage"] for s in next(iter(r["nets"].values()))["stages"]]
    head = ["network", "width", *[f"stage {s} top-1" for s in stages], "FLOPs", "BOPs", "OPs", "params", "train time"]
    rows = []
    for name, m in r["nets"].items():
        width = f"C={r['width']}, {t_cfg.layers} cells" if name.startswith("NASB") else "16/32/64"
        cost = m["cost"]
        rows.append([name, width, *[f"{s['top1']:.2f} %" for s in m["stages"]], sci(cost["flops"]),
                     sci(cost["bops"]), sci(cost["ops"]), sci(cost["params"]), f"{m['wall_seconds'] / 60:.1f} min"])
    table = [f"| {' | '.join(head)} |", f"|{'---|' * len(head)}", *[f"| {' | '.join(row)} |" for row in rows]]
    nasb, base = (m["stages"][-1]["top1"] for m in r["nets"].values())
    gap_ok = "within" if abs(r["ops_gap"]) <= OPS_TOLERANCE else "NOT within"
    lines = [
        f"Measured {datetime.date.today().isoformat()} with `{command}` on {machine_text}; "
        f"total wall time {total_s / 60:.1f} min.",
        "",
        f"Data: training images from `{shown(s_cfg.data)}`, test images from `{shown(t_cfg.eval_data or 'demo')}` "
        f"({DATA_NOTE if s_cfg.data != 'demo' else 'the demo digits: a check of the script, not a result'}); "
        f"subsets drawn with seed {t_cfg.seed}. Budget: {budget(s_cfg, t_cfg)}.",
        "",
        f"Search: {search['steps']} steps, {search['seconds_per_step']:.3g} s/step, "
        f"{search['wall_seconds'] / 60:.1f} min wall; parameter-free edges kept {search['parameter_free']}.",
        f"Found normal cell: {cell_text(r['genotype'], 'normal')}.",
        f"Found reduction cell: {cell_text(r['genotype'], 'reduce')}.",
        f"Width of the found network chosen by OPs: C={r['width']} ({r['ops_gap']:+.1%} OPs vs the baseline, "
        f"{gap_ok} {OPS_TOLERANCE:.0%}).",
        "",
        *table,
        "",
        "Top-1 at the last epoch of each stage (stage 1 real-valued, 2 binary activations, 3 fully binary); costs "
        "of the fully binary networks (Bi-Real/ReActNet convention, OPs = FLOPs + BOPs/64). "
        f"Searched minus hand-designed at stage 3: {nasb - base:+.2f} points, one seed.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    if a.smoke and a.write:
        print("--write records measured CIFAR-10 figures; a --smoke run has none", file=sys.stderr)
        return 2
    torch.set_num_threads(a.threads)
    command = shlex.join(["python", "benchmarks/nasb_cifar10.py", *(sys.argv[1:] if argv is None else argv)])
    machine_text = machine()
    print(f"command: {command}\nmachine: {machine_text}", flush=True)
    start = time.perf_counter()
    result = run(a)
    total = time.perf_counter() - start
    section = markdown(result, command, machine_text, total)
    print(f"\n## {a.title}\n\n{section}")
    if a.write:
        write_section(a.title, section)
        print(f"wrote the section into {DOCS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
