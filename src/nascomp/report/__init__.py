"""Run reports: ``report.md`` in a run folder, with PNG figures in ``<run>/report/``.

One job: read a finished run folder (marker, config.yaml, metrics.json, curves.json, artefacts, and the resume
checkpoint while it exists) and write its page: the results, the loss curves of every stage, a grid of generated
images one row per class (DFQ), the architecture weights over the search and the genotype (searches), the cost
table (``nascomp.quant.cost``) and the files with their sizes. The CLI writes it when a run ends (rank 0) through
:func:`finish_run`, which then removes the resume checkpoint unless it is kept; ``nascomp report RUN`` rebuilds it.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from ..engine.rundir import RUN_MARKER, atomic_write_text
from . import sections
from .runfolder import RunFolder

REPORT_FILE = "report.md"


@dataclass
class Report:
    path: Path
    figures: list[Path]


def write_report(run_dir: str | Path) -> Report:
    """Write ``<run_dir>/report.md`` and its figures; a folder that is not a finished run is a RunDirError."""
    run = RunFolder.open(run_dir)
    figures = run.path / sections.FIGURES
    if figures.is_dir():  # pictures of an earlier report that this one may not draw again (samples.png is kept)
        for old in figures.glob("curve-*.png"):
            old.unlink()
    doc = sections.Doc(run)
    for section in _sections(run.job):
        section(doc)
    path = run.path / REPORT_FILE
    atomic_write_text(path, "\n".join(doc.lines).rstrip() + "\n")
    return Report(path, doc.figures)


def _sections(job: str) -> list:
    s = sections
    if job == "dfq":
        return [s.header, s.results, s.curves, s.generated, s.architecture, s.cost, s.files]
    return [s.header, s.results, s.curves, s.architecture, s.cost, s.files]


def finish_run(run_dir: str | Path, keep_checkpoint: bool = False) -> Report | None:
    """What follows a finished run (rank 0): its report, then the removal of the resume checkpoints (the run's
    and those of runs nested in it, e.g. a DFQ run's generator search) unless ``keep_checkpoint``. A report
    that cannot be written is one warning line on stderr, never a failed run."""
    report = None
    try:
        report = write_report(run_dir)
    except Exception as e:  # noqa: BLE001  (the run itself has finished and its artefacts are written)
        first = (str(e).splitlines() or [""])[0][:160]
        print(f"nascomp: report.md not written ({type(e).__name__}: {first}); retry with `nascomp report {run_dir}`",
              file=sys.stderr)
    if not keep_checkpoint:
        remove_checkpoints(Path(run_dir))
    return report


def remove_checkpoints(run_dir: Path) -> list[Path]:
    """Remove ``checkpoint.pt`` of the run in ``run_dir`` and of every run folder inside it."""
    removed = []
    for marker in [run_dir / RUN_MARKER, *run_dir.glob(f"*/{RUN_MARKER}")]:
        ckpt = marker.parent / "checkpoint.pt"
        if ckpt.is_file():
            ckpt.unlink()
            removed.append(ckpt)
    return removed


__all__ = ["REPORT_FILE", "Report", "finish_run", "remove_checkpoints", "write_report"]
