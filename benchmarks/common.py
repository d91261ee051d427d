"""Helpers shared by the benchmark scripts: the machine description and writing a section of docs/BENCHMARKS.md."""

from __future__ import annotations

import os
import platform
import re
import shlex
import statistics
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch
import yaml

from nascomp.dfq.pipeline import direct_settings
from nascomp.recon import OPTIMISED_SOURCES
from nascomp.recon.genie import GENERATOR_LR_RATIO

DOCS = Path(__file__).resolve().parents[1] / "docs" / "BENCHMARKS.md"
SHARED = Path(os.environ.get("NASCOMP_SHARED") or Path(__file__).resolve().parents[2] / "shared")  # ../shared
HEADER = "# Benchmarks\n\nEvery figure here was produced by the command shown above its table (scripts in `benchmarks/`).\n"


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> str:
    cpu = cpu_model()
    gpu = f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ", no GPU"
    return (f"{platform.system()} {platform.machine()} ({cpu}), {os.cpu_count()} CPU cores, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads){gpu}, Python {platform.python_version()}")


def command() -> str:
    return "python " + " ".join(shlex.quote(shown(a)) for a in [os.path.relpath(sys.argv[0])] + sys.argv[1:])


def shown(text: str | Path) -> str:
    """``text`` as a reader can use it: the shared folder written ``../shared``, paths inside the project
    relative to its root (the absolute paths of the machine a run was made on mean nothing elsewhere)."""
    text = str(text)
    root = str(DOCS.parents[1])
    for prefix, short in ((str(SHARED.resolve()), "../shared"), (str(SHARED), "../shared"), (root + "/", "")):
        text = text.replace(prefix, short)
    return text


def mean_spread(values: list[float | None], spec: str = ".2f") -> str:
    """``mean ± half-range`` (the spread over seeds), the single value for one, ``-`` when none was recorded."""
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    if len(values) == 1:
        return format(values[0], spec)
    return f"{format(statistics.mean(values), spec)} ± {format((max(values) - min(values)) / 2, spec)}"


def stage_minutes(runs: list[dict]) -> str:
    """Mean wall minutes of each stage over ``runs`` (their metrics' ``stage_seconds``), e.g. ``generator 12.1,
    reconstruct 5.8``; stages under 0.05 minutes are left out, ``-`` for runs made before stages were timed."""
    names = dict.fromkeys(name for run in runs for name in run.get("stage_seconds", {}))
    means = {name: statistics.mean(run.get("stage_seconds", {}).get(name, 0.0) for run in runs) / 60 for name in names}
    return ", ".join(f"{name} {minutes:.1f}" for name, minutes in means.items() if minutes >= 0.05) or "-"


def parse_overrides(pairs: list[str], cls: type) -> dict[str, Any]:
    """``["gen_steps=800", "milestones=10,20"]`` -> typed overrides of the config dataclass ``cls``.

    Used by the benchmarks' ``--set`` to measure a budget other than a preset's; the resolved budget is
    printed in the section, so the figures always name what produced them.
    """
    types = {f.name: f.type for f in fields(cls)}
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or key not in types:
            raise SystemExit(f"--set {pair!r}: expected KEY=VALUE with KEY one of {', '.join(types)}")
        kind = str(types[key])
        try:
            out[key] = (None if value.lower() == "none" and "None" in kind
                        else [int(v) for v in value.split(",") if v] if kind.startswith("list[int]")
                        else int(value) if kind.startswith("int") else float(value) if kind.startswith("float")
                        else value.lower() in ("1", "true", "yes") if kind.startswith("bool") else value)
        except ValueError:
            raise SystemExit(f"--set {pair!r}: {key} takes a value of type {kind}") from None
    return out


def run_config(cls: type, run_dir: str | Path) -> Any:
    """The resolved config a finished run wrote (``config.yaml``): a section describes the budget its runs
    were made with, not what the presets say today."""
    return cls(**yaml.safe_load((Path(run_dir) / "config.yaml").read_text()))


def dfq_budget(cfg: Any) -> str:
    """One line describing a ``nascomp dfq`` budget (a resolved ``DFQConfig``)."""
    if cfg.schedule == "calibset":
        kd_data = (f"{cfg.calib_size} newly generated images per epoch" if cfg.fresh_images
                   else "the calibration set")
        held = f" (+{cfg.holdout_size} held out to select the saved epoch)" if cfg.holdout_size else ""
        held += refine_budget(cfg)
        kd = (f", {cfg.epochs} KD epochs on {kd_data} at lr {cfg.student_lr} ({cfg.lr_schedule}), student loss "
              f"{kd_terms(cfg)}") if getattr(cfg, "method", "kd") != "recon" else ""
        images = (f"a calibration set of {direct_budget(cfg)}" if cfg.generator in OPTIMISED_SOURCES
                  else f"{cfg.calib_size} Gaussian-noise calibration images" if cfg.generator == "noise"
                  else f"generator {cfg.gen_steps} steps at batch {cfg.batch_size}, {cfg.calib_size} generated "
                       "calibration images")
        return (f"preset `{cfg.preset}`: {images}{held}, {cfg.act_observer}/{cfg.weight_observer} "
                f"ranges (activations/weights){kd}{recon_budget(cfg)}")
    return (f"preset `{cfg.preset}`: GDFQ loop {cfg.epochs} epochs x {cfg.iters_per_epoch} iterations, batch "
            f"{cfg.batch_size}, {cfg.warmup_epochs} warm-up epochs, milestones {cfg.milestones}")


def direct_budget(cfg: Any) -> str:
    """The image budget of an optimised source: ``direct`` (pixel by pixel) or ``genie`` (Genie-D latents)."""
    count, s = cfg.calib_size + cfg.holdout_size, direct_settings(cfg)
    how = ("as Genie-D latents and a generator per batch (nascomp.recon.genie)" if s.parameterisation == "latent"
           else "directly (nascomp.recon.direct)")
    lr = f"{s.lr} (latents; generator {s.lr * GENERATOR_LR_RATIO:g})" if s.parameterisation == "latent" else s.lr
    return (f"{count} images optimised {how} in batches of {cfg.batch_size}, {s.steps} Adam steps each at lr {lr} "
            f"(cosine), jitter {s.jitter} px + flips")


def refine_budget(cfg: Any) -> str:
    """How the generated calibration images were refined (empty when they were not)."""
    if not getattr(cfg, "refine_steps", 0):
        return ""
    return (f" refined by {cfg.refine_steps} direct steps each (Adam lr {cfg.refine_lr}, cosine, jitter "
            f"{cfg.direct_jitter} px + flips)")


def recon_budget(cfg: Any) -> str:
    """The block-reconstruction settings of a run that reconstructs (empty for the KD route)."""
    if getattr(cfg, "method", "kd") == "kd":
        return ""
    return (f"; method {cfg.method}: block reconstruction {cfg.recon_iters} iterations per unit at batch "
            f"{cfg.recon_batch} on the calibration images, AdaRound lr {cfg.recon_round_lr}, LSQ step lr "
            f"{cfg.recon_step_lr}, QDrop p {cfg.recon_drop}")


def kd_terms(cfg: Any) -> str:
    """The student's loss as configured: ``KD`` (at temperature T) with or without the CE term on the generated labels."""
    kd = f"{cfg.kd_weight:g} x KD (T = {cfg.temperature:g})"
    return f"{kd} + {cfg.ce_weight:g} x CE" if cfg.ce_weight else kd


def add_section_args(parser, title: str) -> None:
    """``--write`` and ``--title``: a run at another budget or on another machine gets its own section."""
    parser.add_argument("--write", action="store_true", help="write the section into docs/BENCHMARKS.md")
    parser.add_argument("--title", default=title, help=f"section title (default: {title!r}; replaced when it exists)")


def write_section(title: str, body: str, path: Path = DOCS) -> None:
    """Replace (or append) the ``## title`` section of docs/BENCHMARKS.md, keeping the rest of the file."""
    text = path.read_text() if path.is_file() else HEADER
    section = f"## {title}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    text = pattern.sub(lambda _: section + "\n", text) if pattern.search(text) else text.rstrip() + "\n\n" + section
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.rstrip() + "\n")
