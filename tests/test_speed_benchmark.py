"""benchmarks/speed.py: the variants side by side, FLOPs counted, the section written once and replaced."""

from __future__ import annotations

import importlib

import pytest
import torch
import torch.nn.functional as F


@pytest.fixture(scope="module")
def bench():
    return importlib.import_module("speed")  # benchmarks/ is on the test path; its dataclasses need a real module


def test_legacy_upsample_swaps_in_interpolate_and_restores(bench):
    real = bench.generators_module.upsample_nearest2x
    with bench.legacy_upsample(True):
        swapped = bench.generators_module.upsample_nearest2x
        assert swapped is not real and bench.autorecon_module.upsample_nearest2x is swapped
        x = torch.randn(1, 2, 3, 3)
        assert torch.equal(swapped(x), F.interpolate(x, scale_factor=2))
    assert bench.generators_module.upsample_nearest2x is real and bench.autorecon_module.upsample_nearest2x is real
    with bench.legacy_upsample(False):
        assert bench.generators_module.upsample_nearest2x is real


def test_smoke_reports_every_variant_and_writes_its_section(bench, tmp_path):
    doc = tmp_path / "BENCHMARKS.md"
    doc.write_text("# Benchmarks\n\n## Other\n\nkept\n")
    args = ["--smoke", "--threads", "1", "--write", "--doc", str(doc), "--kinds"]
    text = bench.main(args + ["gdfq"])
    gdfq = text.split("**GDFQ/DFQ iteration")[1]
    rows = [line for line in gdfq.splitlines() if line.startswith("| ") and "variant" not in line]
    assert [r.split(" | ")[0][2:] for r in rows] == [v.name for v in bench.VARIANTS]
    assert rows[0].split(" | ")[5] == "1.00x"  # the baseline's speed-up
    flops = {r.split(" | ")[6] for r in rows}
    assert len(flops) == 1 and float(flops.pop()) > 0  # the levers change the time, not the work
    assert "Matmul peak" in text and "Command: `python" in text
    bench.main(args + ["nasb-train"])  # a second run replaces the section
    written = doc.read_text()
    assert written.count(f"## {bench.TITLE}") == 1 and "## Other\n\nkept" in written
    assert "**NASB train step" in written and "**GDFQ/DFQ iteration" not in written


def test_smoke_times_one_reconstruction_block_against_its_flops(bench, tmp_path):
    text = bench.main(["--smoke", "--threads", "1", "--kinds", "recon"])
    recon = text.split("**block reconstruction")[1]
    rows = [line for line in recon.splitlines() if line.startswith("| ") and "variant" not in line]
    assert [r.split(" | ")[0][2:] for r in rows] == ["baseline (F.interpolate, fp32, NCHW)", "channels-last",
                                                    "reuse freed memory"]
    assert all(float(r.split(" | ")[4]) > 0 for r in rows)  # GFLOP per step: the block's convs were counted
