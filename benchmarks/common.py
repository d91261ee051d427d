"""Helpers shared by the benchmark scripts: the machine description and writing a section of docs/BENCHMARKS.md."""

from __future__ import annotations

import os
import platform
import re
import shlex
import statistics
import sys
from pathlib import Path

import torch

DOCS = Path(__file__).resolve().parents[1] / "docs" / "BENCHMARKS.md"
SHARED = Path(__file__).resolve().parents[2] / "shared"
HEADER = "# Benchmarks\n\nEvery figure here was produced by the command shown above its table (scripts in `benchmarks/`).\n"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    gpu = f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ", no GPU"
    return (f"{platform.system()} {platform.machine()} ({cpu}), {os.cpu_count()} CPU cores, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads){gpu}, Python {platform.python_version()}")


def command() -> str:
    return "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(sys.argv[0])] + sys.argv[1:])


def mean_spread(values: list[float]) -> str:
    """``mean ± half-range`` (the spread over seeds), or the single value."""
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} ± {(max(values) - min(values)) / 2:.2f}"


def write_section(title: str, body: str, path: Path = DOCS) -> None:
    """Replace (or append) the ``## title`` section of docs/BENCHMARKS.md, keeping the rest of the file."""
    text = path.read_text() if path.is_file() else HEADER
    section = f"## {title}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    text = pattern.sub(lambda _: section + "\n", text) if pattern.search(text) else text.rstrip() + "\n\n" + section
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.rstrip() + "\n")
