"""NASB vs single- and multiple-binary-base networks on CIFAR-10, each pair at equal OPs, trained in stages.

    python benchmarks/nasb_cifar10.py [--preset quick|paper|full] [--genotype G] [--rows R ...] [--seeds S ...]
                                      [--train TAR] [--test TAR] [--out DIR] [--threads N] [--device D]
                                      [--report-only] [--write] [--title T]
    python benchmarks/nasb_cifar10.py --smoke      # demo digits, tiny settings, under a minute

Steps: (1) the found cells: ``nascomp nasb search`` on the training tar (the preset's subset, first seed), or
``--genotype`` (a genotype file or a shipped name such as ``nasb-cifar10-quick-seed0``, the cell the quick search
found with seed 0); (2) the rows (``--rows``, default all), each trained by ``nascomp nasb train`` with the same
stages, epochs, training subset, test subset and seed:

====================  =================================================================================
``birealnet``         Bi-Real-20 (``cifar_birealnet20``, one base)
``nasb``              the found network, one base, width C whose fully binary OPs are closest to Bi-Real-20's
``groupnet``          Group-Net-20 K = 4 (``cifar_groupnet20_k4``)
``abcnet``            ABC-Net-20 3 x 3 (``cifar_abcnet20_m3n3``)
``nasb-groupnet``     the found network with ``groupnet:4`` bases, width matched to Group-Net-20 K = 4's OPs
``nasb-abcnet``       the found network with ``abcnet:3x3`` bases, width matched to ABC-Net-20 3 x 3's OPs
====================  =================================================================================

Every row trains in its own folder ``<out>/<folder>-s<seed>`` (:data:`ROWS`): a finished one (``metrics.json``) is read back, an
unfinished one (``checkpoint.pt``) resumed, so an interrupted benchmark continues where it stopped (on a GPU:
across short leases). ``--report-only`` trains nothing and reports what the folders hold: finished stages, and
``-`` for stages not run yet. It prints its command, the machine, the budget, top-1 per stage (last epoch of
each), FLOPs/BOPs/OPs, params and train time; ``--write`` puts the section into docs/BENCHMARKS.md.

The quick preset on two CPU cores, one torch thread (on shared cores the thread hand-offs of small convs cost
more than a second thread gives): training on 6,000 images, 3 epochs per stage, test on 2,000 images. The test
images are ../shared's JPEG set: compare the rows with each other, not with published CIFAR-10 figures.
"""

from __future__ import annotations

import argparse
import datetime
import json
import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

import torch
from common import DOCS, SHARED, add_section_args, machine, mean_spread, shown, write_section

from nascomp.config import NASB_SEARCH_PRESETS, NASB_TRAIN_PRESETS, NASBSearchConfig, NASBTrainConfig, resolve
from nascomp.nasb import load_genotype, run_search, run_train, width_for_ops
from nascomp.nasb.data import input_cfg, open_split
from nascomp.nasb.report import student_cost
from nascomp.quant.cost import sci

ROOT = Path(__file__).resolve().parents[1]
CIFAR = SHARED / "data" / "cifar10-jpeg"
TITLE = "NASB vs single- and multiple-base binary networks (CIFAR-10)"
SMOKE_SEARCH = dict(channels=4, layers=3, subset=256, epochs=1, batch_size=32, plot=False)
SMOKE_TRAIN = dict(layers=3, subset=256, eval_subset=128, epochs=1, batch_size=32)
OPS_TOLERANCE = 0.10
DATA_NOTE = "../shared's CIFAR-10 *JPEG* sets: compare the rows with each other, not with published figures"


class Row(NamedTuple):
    """One network of the table: a registered model, or the found cells with ``bases`` matched to ``match``."""

    key: str
    label: str
    folder: str  # run folder name, <folder>-s<seed>
    model: str | None = None
    bases: str | None = None
    match: str | None = None  # the registered model whose OPs the found network's width is matched to


ROWS = (
    Row("birealnet", "Bi-Real-20 (1 base)", "birealnet20", model="cifar_birealnet20"),
    Row("nasb", "NASB found (1 base)", "nasb", match="cifar_birealnet20"),
    Row("groupnet", "Group-Net-20 K=4", "groupnet20-k4", model="cifar_groupnet20_k4"),
    Row("abcnet", "ABC-Net-20 3x3", "abcnet20-m3n3", model="cifar_abcnet20_m3n3"),
    Row("nasb-groupnet", "NASB found, groupnet:4 bases", "nasb-groupnet4", bases="groupnet:4",
        match="cifar_groupnet20_k4"),
    Row("nasb-abcnet", "NASB found, abcnet:3x3 bases", "nasb-abcnet3x3", bases="abcnet:3x3",
        match="cifar_abcnet20_m3n3"),
)
BY_KEY = {r.key: r for r in ROWS}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="quick", help="quick (CPU) | paper | full (GPU; resumable)")
    p.add_argument("--train", default=str(CIFAR / "train.tar.gz"), help="labelled training images")
    p.add_argument("--test", default=str(CIFAR / "test.tar.gz"), help="labelled test images")
    p.add_argument("--out", default=None, help="folder of the run folders (default runs/nasb-cifar10-<time>)")
    p.add_argument("--genotype", help="train these cells instead of searching (file, run folder or shipped name)")
    p.add_argument("--rows", nargs="+", choices=list(BY_KEY), default=list(BY_KEY), help="rows to train (default all)")
    p.add_argument("--seed", type=int, default=0, help="seed of the search (and the only seed without --seeds)")
    p.add_argument("--seeds", type=int, nargs="+", help="training seeds (default: --seed)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1, see the module docstring)")
    p.add_argument("--device", default="auto")
    p.add_argument("--max-parameter-free", type=int, help="derivation cap on pool/skip edges per cell (remedy)")
    p.add_argument("--report-only", action="store_true", help="train nothing; report what the run folders hold")
    add_section_args(p, TITLE)
    p.add_argument("--smoke", action="store_true", help="demo digits with tiny settings (checks the script)")
    return p.parse_args(argv)


def configs(a: argparse.Namespace) -> tuple[NASBSearchConfig, NASBTrainConfig]:
    """The search config and the training config shared by every row (no student set yet)."""
    if a.smoke:
        search = resolve(NASBSearchConfig, NASB_SEARCH_PRESETS, "demo", {**SMOKE_SEARCH, "seed": a.seed})
        train = resolve(NASBTrainConfig, NASB_TRAIN_PRESETS, "demo", {**SMOKE_TRAIN, "seed": a.seed})
        return search, train
    common = {"seed": a.seed, "device": a.device}
    search_preset = a.preset if a.preset in NASB_SEARCH_PRESETS else "paper"
    search = resolve(NASBSearchConfig, NASB_SEARCH_PRESETS, search_preset,
                     {"data": a.train, "max_parameter_free": a.max_parameter_free, **common})
    train = resolve(NASBTrainConfig, NASB_TRAIN_PRESETS, a.preset, {"data": a.train, "eval_data": a.test, **common})
    return search, train


def budget(train: NASBTrainConfig) -> str:
    images = lambda n: "all" if n == 0 else f"{n:,}"  # noqa: E731
    return (f"training: {images(train.subset)} images, {train.stages} stages x {train.epochs} epochs, batch "
            f"{train.batch_size}, Adam {train.lr:g} ({train.lr_schedule}), found networks {train.layers} cells; "
            f"test: {images(train.eval_subset)} images")


def search_budget(search: NASBSearchConfig) -> str:
    images = lambda n: "all" if n == 0 else f"{n:,}"  # noqa: E731
    return (f"{images(search.subset)} training images (half weights, half alphas), C={search.channels}, "
            f"{search.layers} cells, {search.epochs} epochs, batch {search.batch_size}, {search.relaxation}, "
            f"order {search.order}, parameter-free cap {search.max_parameter_free}")


def cell_text(genotype, kind: str) -> str:
    """``n0 = op(input) + op(input); ...`` for one cell kind."""
    nodes: dict[str, list[str]] = {}
    for entry in genotype.edges[kind]:
        nodes.setdefault(entry["node"], []).append(f"{entry['op']}({entry['input']})")
    return "; ".join(f"{node} = {' + '.join(terms)}" for node, terms in nodes.items())


def found_cells(a: argparse.Namespace, search_cfg: NASBSearchConfig, out: Path) -> tuple[str, dict | None]:
    """The genotype to train (its spec for the training config) and the search's metrics (None with --genotype)."""
    if a.genotype:
        load_genotype(a.genotype)
        return a.genotype, None
    folder = out / "search"
    if (folder / "metrics.json").is_file():
        found = json.loads((folder / "metrics.json").read_text())
    elif a.report_only:
        raise SystemExit(f"--report-only: no finished search in {folder}; pass --genotype or run the search")
    else:
        resume = str(folder) if (folder / "checkpoint.pt").is_file() else None
        found = run_search(search_cfg, out=None if resume else str(folder), resume=resume, quiet=True)
    print(f"search: {found['steps']} steps, {found['seconds_per_step']:.3g} s/step, {found['seconds'] / 60:.1f} min; "
          f"parameter-free edges {found['parameter_free']}", flush=True)
    return found["genotype"], found


def row_config(row: Row, train_cfg: NASBTrainConfig, genotype: str, icfg) -> tuple[NASBTrainConfig, str, float]:
    """The training config of ``row``, its width text and its OPs gap to the network it is matched to (0 if none)."""
    if row.model is not None:
        return replace(train_cfg, model=row.model), "16/32/64", 0.0
    target = student_cost(replace(train_cfg, model=row.match), icfg).ops
    width, matched = width_for_ops(load_genotype(genotype), icfg, train_cfg.layers, target, bases=row.bases)
    cfg = replace(train_cfg, genotype=genotype, channels=width, bases=row.bases)
    return cfg, f"C={width}, {train_cfg.layers} cells", matched.ops / target - 1


def partial(folder: Path) -> dict | None:
    """What an unfinished run folder holds: the finished stages (from its checkpoint) and its seconds so far."""
    ckpt = folder / "checkpoint.pt"
    if not ckpt.is_file():
        return None
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    stages = state["results"]["stages"]
    progress = state["progress"]
    return {"stages": stages, "seconds": progress.get("seconds", 0.0), "finished": False,
            "units": len([h for h in progress.get("history", []) if "epoch" in h])}


def train_row(cfg: NASBTrainConfig, folder: Path, report_only: bool) -> dict | None:
    """Read back a finished row, resume an unfinished one, or train it (None: nothing there with --report-only)."""
    if (folder / "metrics.json").is_file():
        return {**json.loads((folder / "metrics.json").read_text()), "finished": True}
    if report_only:
        return partial(folder)
    resume = str(folder) if (folder / "checkpoint.pt").is_file() else None
    metrics = run_train(cfg, out=None if resume else str(folder), resume=resume, quiet=True)
    return {**metrics, "finished": True}


def run(a: argparse.Namespace) -> dict:
    search_cfg, train_cfg = configs(a)
    out = Path(a.out or ROOT / "runs" / f"nasb-cifar10-{time.strftime('%Y%m%d-%H%M%S')}")
    print(f"budget: {budget(train_cfg)}", flush=True)
    genotype, found = found_cells(a, search_cfg, out)
    icfg = input_cfg(open_split(train_cfg.data, "train"))
    rows = []
    for seed in a.seeds or [a.seed]:
        for key in a.rows:
            row = BY_KEY[key]
            cfg, width, gap = row_config(row, replace(train_cfg, seed=seed), genotype, icfg)
            metrics = train_row(cfg, out / f"{row.folder}-s{seed}", a.report_only)
            cost = student_cost(cfg, icfg)
            rows.append({"row": row, "seed": seed, "width": width, "gap": gap, "metrics": metrics,
                         "cost": {"flops": cost.flops, "bops": cost.bops, "ops": cost.ops, "params": cost.params}})
            if metrics is not None:
                tops = ", ".join(f"stage {s['stage']} {s['top1']:.2f} %" for s in metrics["stages"])
                print(f"{row.label} seed {seed}: {tops or 'no stage finished'}; OPs {sci(cost.ops)}", flush=True)
    return {"search": found, "genotype": genotype, "rows": rows, "search_cfg": search_cfg, "train_cfg": train_cfg,
            "out": out, "report_only": a.report_only}


def _stage_top1(metrics: dict | None, stage: int) -> float | None:
    found = [s["top1"] for s in metrics["stages"] if s["stage"] == stage] if metrics else []
    return found[0] if found else None


def _top1(metrics: dict | None, stage: int) -> str:
    if metrics is None:
        return "not run"
    value = _stage_top1(metrics, stage)
    return "-" if value is None else f"{value:.2f} %"


def seed_summary(r: dict) -> list[str]:
    """Final-stage top-1 per network as mean ± half-range over the seeds that finished it, and each found network's
    lead over the registered network it is matched to: the mean of the per-seed differences, over the seeds where
    both finished (a paired comparison: the same seed draws the same training subset for both)."""
    last = r["train_cfg"].stages
    top1: dict[str, dict[int, float]] = {}
    for x in r["rows"]:
        value = _stage_top1(x["metrics"], last)
        if value is not None:
            top1.setdefault(x["row"].key, {})[x["seed"]] = value
    model_key = {row.model: row.key for row in ROWS if row.model}
    lines = [f"| network | seeds | stage {last} top-1 | lead over the matched network (paired seeds) |",
             "|---|---|---|---|"]
    for row in ROWS:
        if not any(x["row"] is row for x in r["rows"]):
            continue
        mine = top1.get(row.key, {})
        lead = "-"
        if row.match:
            theirs = top1.get(model_key.get(row.match, ""), {})
            paired = sorted(set(mine) & set(theirs))
            if paired:
                lead = (f"{mean_spread([mine[s] - theirs[s] for s in paired], '+.2f')} points vs {row.match} "
                        f"(seeds {', '.join(map(str, paired))})")
        seeds = ", ".join(map(str, sorted(mine))) or "none finished"
        lines.append(f"| {row.label} | {seeds} | {mean_spread(list(mine.values()))} | {lead} |")
    return lines


def table(r: dict) -> list[str]:
    stages = [1, 2, 3][3 - r["train_cfg"].stages:]
    head = ["network", "seed", "width", *[f"stage {s} top-1" for s in stages], "FLOPs", "BOPs", "OPs", "OPs vs match",
            "params", "train time"]
    lines = [f"| {' | '.join(head)} |", f"|{'---|' * len(head)}"]
    for x in r["rows"]:
        m, cost, row = x["metrics"], x["cost"], x["row"]
        seconds = "-" if m is None else f"{m['seconds'] / 60:.1f} min" + ("" if m["finished"] else " (unfinished)")
        gap = f"{x['gap']:+.1%} vs {row.match}" if row.match else ""
        cells = [row.label, str(x["seed"]), x["width"], *[_top1(m, s) for s in stages], sci(cost["flops"]),
                 sci(cost["bops"]), sci(cost["ops"]), gap, sci(cost["params"]), seconds]
        lines.append(f"| {' | '.join(cells)} |")
    return lines


def markdown(r: dict, command: str, machine_text: str, total_s: float) -> str:
    s_cfg, t_cfg, search = r["search_cfg"], r["train_cfg"], r["search"]
    genotype = load_genotype(r["genotype"])
    if search is None:
        origin = f"`{shown(r['genotype'])}` ({genotype.meta.get('source', 'given with --genotype')})"
    else:
        origin = (f"searched here ({search_budget(s_cfg)}): {search['steps']} steps, {search['seconds_per_step']:.3g} "
                  f"s/step, {search['seconds'] / 60:.1f} min; parameter-free edges kept {search['parameter_free']}")
    unfinished = [x for x in r["rows"] if x["metrics"] is None or not x["metrics"]["finished"]]
    lines = [
        f"Measured {datetime.date.today().isoformat()} with `{command}` on {machine_text}; "
        f"{'report from the run folders' if r['report_only'] else f'total wall time {total_s / 60:.1f} min'}.",
        "",
        f"Data: training images from `{shown(s_cfg.data if search else t_cfg.data)}`, test images from "
        f"`{shown(t_cfg.eval_data or 'demo')}` "
        f"({DATA_NOTE if t_cfg.data != 'demo' else 'the demo digits: a check of the script, not a result'}); "
        f"subsets drawn with the row's seed. Budget: {budget(t_cfg)}.",
        "",
        f"Found cells: {origin}.",
        f"Normal cell: {cell_text(genotype, 'normal')}.",
        f"Reduction cell: {cell_text(genotype, 'reduce')}.",
        "",
        *table(r),
        "",
        "Top-1 at the last epoch of each stage (stage 1 real-valued, 2 binary activations, 3 fully binary); costs of "
        "the fully binary networks (Bi-Real/ReActNet convention, OPs = FLOPs + BOPs/64; each base's binary convs "
        "counted). A found network's width C is the one whose OPs are closest to those of the network it is matched "
        f"to (within {OPS_TOLERANCE:.0%} is the aim; the gap is in the table).",
        "",
        *seed_summary(r),
        "",
        "Mean ± half-range over the seeds that finished the last stage; a lead is the mean of the per-seed "
        "differences.",
    ]
    if unfinished:
        lines += ["", "Not finished when this section was written: " + "; ".join(
            f"{x['row'].label} seed {x['seed']} ("
            + ("not started" if x["metrics"] is None else f"{len(x['metrics']['stages'])} of {t_cfg.stages} stages, "
               f"{x['metrics'].get('units', 0)} of {t_cfg.stages * t_cfg.epochs} epochs")
            + ")" for x in unfinished) + ". The same command continues them (each row resumes from its checkpoint)."]
    return "\n".join(lines) + "\n"


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
