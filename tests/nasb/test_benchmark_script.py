"""The benchmark scripts write their Markdown section into BENCHMARKS.md without touching the rest."""

from __future__ import annotations

import pytest

from benchmark_script import load_benchmark


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("nasb_cifar10")


def test_section_is_appended_then_replaced_in_place(bench, tmp_path):
    from common import write_section

    path, heading = tmp_path / "BENCHMARKS.md", f"## {bench.TITLE}"
    path.write_text("# Benchmarks\n\n## DFQ\n\nkeep me\n")
    write_section(bench.TITLE, "first", path)
    assert path.read_text() == f"# Benchmarks\n\n## DFQ\n\nkeep me\n\n{heading}\n\nfirst\n"
    path.write_text(path.read_text() + "\n## Later\n\nalso kept\n")
    write_section(bench.TITLE, "second", path)
    text = path.read_text()
    assert "first" not in text and "second" in text and text.count(heading) == 1
    assert text.startswith("# Benchmarks\n\n## DFQ\n\nkeep me\n") and text.endswith("## Later\n\nalso kept\n")


def test_smoke_and_write_together_are_refused(bench, capsys):
    assert bench.main(["--smoke", "--write"]) == 2
    assert "--write" in capsys.readouterr().err


def test_report_only_lists_every_row_with_matched_widths_and_what_did_not_run(bench, tmp_path, capsys):
    genotype = "nasb-cifar10-quick-seed0"
    assert bench.main(["--smoke", "--genotype", genotype, "--report-only", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| ") and "network" not in line]
    assert [r.split(" | ")[0][2:] for r in rows] == [row.label for row in bench.ROWS]
    assert all("not run" in r for r in rows)
    assert "vs cifar_groupnet20_k4" in out and "vs cifar_abcnet20_m3n3" in out
    assert "Not finished when this section was written" in out and "(not started)" in out
