"""The sections of ``report.md``, each written from what the run folder holds (see :mod:`nascomp.report`)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .figures import plot_stage, save_grid
from .runfolder import RunFolder

FIGURES = "report"  # sub-folder of the run that holds the report's own pictures
RESULT_ROWS = {  # metrics key -> label, per job
    "dfq": [("fp_top1", "FP teacher top-1 (%)"), ("ptq_top1", "PTQ top-1 (%)"),
            ("recon_top1", "block reconstruction top-1 (%)"), ("dfq_top1", "DFQ top-1, saved student (%)"),
            ("dfq_last_epoch_top1", "DFQ top-1, last epoch (%)"),
            ("dfq_best_top1", "DFQ top-1, best epoch on the eval data (%)"),
            ("calib_lr", "L_r of the generated images"), ("calib_bns", "BNS of the generated images"),
            ("search_seconds", "generator search (s)")],
    "search-generator": [("lr_first", "L_r, first epoch"), ("lr_last", "L_r, last epoch"),
                         ("bns_last", "BNS, last epoch"), ("ce_last", "CE, last epoch"), ("steps", "search steps"),
                         ("seconds_per_step", "seconds per step")],
    "nasb-search": [("steps", "search steps"), ("seconds_per_step", "seconds per step")],
    "nasb-train": [("top1", "top-1, last stage (%)"), ("top5", "top-5, last stage (%)")],
}


@dataclass
class Doc:
    """Markdown lines and the figures they show (paths relative to the run folder in the text)."""

    run: RunFolder
    lines: list[str] = field(default_factory=list)
    figures: list[Path] = field(default_factory=list)

    def add(self, *lines: str) -> None:
        self.lines.extend(lines)

    def image(self, path: Path, alt: str) -> None:
        self.add(f"![{alt}]({path.relative_to(self.run.path).as_posix()})", "")
        self.figures.append(path)

    def table(self, header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
        self.add("| " + " | ".join(header) + " |", "|" + "---|" * len(header))
        self.add(*("| " + " | ".join(_cell(v) for v in row) + " |" for row in rows), "")


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e4 else f"{value:.3e}"
    return "-" if value is None else str(value)


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "stage"


def header(doc: Doc) -> None:
    run, cfg, m = doc.run, doc.run.config, doc.run.metrics
    what = {"dfq": f"W{cfg.get('wbits')}A{cfg.get('abits')} data-free quantization of {cfg.get('model')} "
                   f"({cfg.get('generator')} generator, {cfg.get('schedule')} schedule, method {cfg.get('method')})",
            "search-generator": f"AutoReCon generator search for {cfg.get('model')} (order {cfg.get('order')})",
            "nasb-search": f"NASB cell search on {cfg.get('data')} ({cfg.get('relaxation')}, order {cfg.get('order')})",
            "nasb-train": f"NASB staged training of {m.get('student', cfg.get('genotype') or cfg.get('model'))} "
                          f"on {cfg.get('data')}"}.get(run.job, run.job)
    doc.add(f"# nascomp {run.job}: {run.path.name}", "",
            f"{what}; preset {cfg.get('preset')}, seed {cfg.get('seed')}, {m.get('processes', 1)} process(es), "
            f"{_cell(m.get('seconds'))} s. Rebuild this page with `nascomp report {run.path}`.", "")


def results(doc: Doc) -> None:
    m = doc.run.metrics
    rows = [(label, m[key]) for key, label in RESULT_ROWS.get(doc.run.job, []) if m.get(key) is not None]
    if doc.run.job == "nasb-train":
        rows = [(f"stage {s['stage']} top-1 (%)", s["top1"]) for s in m.get("stages", [])] + rows
    if rows:
        doc.add("## Results", "")
        doc.table(("", "value"), rows)


def curves(doc: Doc) -> None:
    folder = doc.run.path / FIGURES
    stages = [c for c in doc.run.curves() if c.rows]
    if not stages:
        return
    doc.add("## Loss curves", "", "Every unit (epoch, step or block) of every stage, averaged over its batches "
            "and over processes.", "")
    single = []
    for curve in stages:
        if len(curve.rows) > 1:
            doc.image(plot_stage(curve, folder / f"curve-{_slug(curve.name)}.png"), f"{curve.name} curves")
        else:
            single.append((curve.name, ", ".join(f"{k} {_cell(v)}" for k, v in curve.rows[0].items())))
    if single:
        doc.add("Stages of one unit:", "")
        doc.table(("stage", "values"), single)


def generated(doc: Doc) -> None:
    from ..errors import UserError
    from .images import generated_images, model_cfg

    doc.add("## Generated images", "")
    path = doc.run.path / FIGURES / "samples.png"
    try:
        mcfg = model_cfg(doc.run)
        found = generated_images(doc.run, mcfg)
    except UserError as e:  # e.g. a timm model without timm installed: no input convention to draw with
        doc.add(f"Not drawn: {e}", "")
        return
    if found is not None:
        save_grid(found.images, mcfg.mean, mcfg.std, found.per_class, path)
        classes = found.classes
        shown = "every class" if len(classes) == mcfg.num_classes else f"{len(classes)} of {mcfg.num_classes} classes"
        doc.add(f"One row per class ({shown}: {', '.join(map(str, classes))}), {found.per_class} images each, "
                f"{found.how}, de-normalised with the model's mean and std.", "")
        doc.image(path, "generated images, one row per class")
    elif path.is_file():
        doc.add("The grid written when the run ended (its generator is no longer in the folder).", "")
        doc.image(path, "generated images, one row per class")
    else:
        doc.add(f"None kept: the {doc.run.config.get('generator')} generator leaves no weights in the run folder.", "")


def architecture(doc: Doc) -> None:
    """The alpha history plot and the genotype (drawing where Graphviz made one, else a table)."""
    run = doc.run
    base = run.path / "search" if run.job == "dfq" else run.path
    genotype = base / "genotype.json"
    if not genotype.is_file():
        return
    doc.add("## Architecture", "")
    if (base / "alphas.png").is_file():
        doc.add("Architecture weights (softmax of alpha) per edge over the search:", "")
        doc.image(base / "alphas.png", "architecture weights over the search")
    drawings = sorted(base.glob("genotype.png")) + sorted(base.glob("cell_*.png"))
    for png in drawings:
        doc.image(png, png.stem)
    edges = json.loads(genotype.read_text()).get("edges", {})
    doc.add(f"Genotype (`{genotype.relative_to(run.path).as_posix()}`):", "")
    doc.table(("kind", "edge", "op"),
              [(kind, e.get("edge"), e.get("op")) for kind, rows in edges.items() for e in rows])


def cost(doc: Doc) -> None:
    """Params, size, FLOPs/BOPs/OPs (``nascomp.quant.cost``): of the saved student beside its FP model (dfq), or
    of the network a NASB run delivers (its cost.json / cost.txt)."""
    from .costs import run_costs

    found = run_costs(doc.run)
    if not found:
        return
    columns, table = found
    doc.add("## Cost", "", "Bi-Real / ReActNet convention: OPs = FLOPs + BOPs / 64; size counts each weight at its "
            "bits.", "")
    keys = [("params", "parameters"), ("size_mbytes", "size (MiB)"), ("flops", "FLOPs"), ("bops", "BOPs"),
            ("ops", "OPs")]
    doc.table(("", *columns), [(label, *(c.get(k) for c in columns.values())) for k, label in keys])
    if table:
        doc.add("<details><summary>per layer</summary>", "", "```", table, "```", "", "</details>", "")


def files(doc: Doc) -> None:
    """The run's files and sizes, without the report's own pictures and the resume checkpoints (removed when the
    run ends unless --keep-checkpoint)."""
    rows = [(p.relative_to(doc.run.path).as_posix(), f"{p.stat().st_size / 2**10:,.1f} KiB")
            for p in sorted(doc.run.path.rglob("*")) if p.is_file() and not p.name.startswith(".")
            and p.name != "checkpoint.pt" and FIGURES not in p.relative_to(doc.run.path).parts[:1]]
    doc.add("## Files", "")
    doc.table(("file", "size"), rows)
