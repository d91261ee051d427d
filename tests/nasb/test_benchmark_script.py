"""The benchmark scripts write their Markdown section into BENCHMARKS.md without touching the rest."""

from __future__ import annotations

import json

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
    lines = [line for line in out.splitlines() if line.startswith("| ") and "network" not in line]
    rows = [line for line in lines if line.count(" | ") > 4]
    summary = [line for line in lines if line.count(" | ") == 3]
    assert [r.split(" | ")[0][2:] for r in rows] == [row.label for row in bench.ROWS]
    assert all("not run" in r for r in rows)
    assert [r.split(" | ")[0][2:] for r in summary] == [row.label for row in bench.ROWS]
    assert all("none finished" in r for r in summary)
    assert "vs cifar_groupnet20_k4" in out and "vs cifar_abcnet20_m3n3" in out
    assert "Not finished when this section was written" in out and "(not started)" in out


def test_seed_summary_averages_the_last_stage_and_pairs_each_found_network_with_its_match(bench, tmp_path, capsys):
    def finished(folder: str, seed: int, top1: float) -> None:
        run = tmp_path / f"{folder}-s{seed}"
        run.mkdir()
        stages = [{"stage": 2, "top1": 1.0}, {"stage": 3, "top1": top1}]
        (run / "metrics.json").write_text(json.dumps({"stages": stages, "seconds": 60.0}))

    finished("birealnet20", 0, 40.0)
    finished("birealnet20", 1, 44.0)
    finished("nasb", 0, 50.0)
    finished("nasb", 1, 52.0)
    finished("groupnet20-k4", 1, 47.0)  # its found partner never ran: no lead can be given
    finished("abcnet20-m3n3", 0, 46.0)
    finished("abcnet20-m3n3", 1, 49.0)
    finished("nasb-abcnet3x3", 1, 60.0)  # paired with seed 1 only: +11, where unpaired means would say +12.5
    argv = ["--smoke", "--genotype", "nasb-cifar10-quick-seed0", "--report-only", "--out", str(tmp_path),
            "--seeds", "0", "1"]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(bench, "SMOKE_TRAIN", {**bench.SMOKE_TRAIN, "stages": 3})
        assert bench.main(argv) == 0
    summary = {line.split(" | ")[0][2:]: line.split(" | ")[1:] for line in capsys.readouterr().out.splitlines()
               if line.startswith("| ") and "top-1 | lead" not in line and len(line.split(" | ")) == 4}
    assert summary["Bi-Real-20 (1 base)"] == ["0, 1", "42.00 ± 2.00", "- |"]
    # paired differences 10 and 8: mean 9, half-range 1 (not the 50/40 gap of unpaired means over other seeds)
    assert summary["NASB found (1 base)"] == ["0, 1", "51.00 ± 1.00",
                                              "+9.00 ± +1.00 points vs cifar_birealnet20 (seeds 0, 1) |"]
    assert summary["Group-Net-20 K=4"] == ["1", "47.00", "- |"]
    assert summary["NASB found, groupnet:4 bases"] == ["none finished", "-", "- |"]
    assert summary["NASB found, abcnet:3x3 bases"] == ["1", "60.00",
                                                       "+11.00 points vs cifar_abcnet20_m3n3 (seeds 1) |"]
