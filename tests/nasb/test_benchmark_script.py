"""benchmarks/nasb_cifar10.py writes its Markdown section into BENCHMARKS.md without touching the rest."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "nasb_cifar10.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("nasb_cifar10", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_section_is_appended_then_replaced_in_place(bench, tmp_path):
    path = tmp_path / "BENCHMARKS.md"
    path.write_text("# Benchmarks\n\n## DFQ\n\nkeep me\n")
    bench.write_section(path, f"{bench.SECTION}\n\nfirst\n")
    assert path.read_text() == f"# Benchmarks\n\n## DFQ\n\nkeep me\n\n{bench.SECTION}\n\nfirst\n"
    path.write_text(path.read_text() + "\n## Later\n\nalso kept\n")
    bench.write_section(path, f"{bench.SECTION}\n\nsecond\n")
    text = path.read_text()
    assert "first" not in text and "second" in text and text.count(bench.SECTION) == 1
    assert text.startswith("# Benchmarks\n\n## DFQ\n\nkeep me\n") and text.endswith("## Later\n\nalso kept\n")


def test_smoke_and_write_together_are_refused(bench, capsys):
    assert bench.main(["--smoke", "--write"]) == 2
    assert "--write" in capsys.readouterr().err
