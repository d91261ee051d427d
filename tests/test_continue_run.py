"""benchmarks/continue_run.py: one command line per lease starts, resumes and finally reports a run."""

import json
import os
import sys

from benchmark_script import load_benchmark

ARGS = ["dfq", "--gen-steps", "5", "--calib-size", "64", "--epochs", "2", "--batch-size", "32", "--quiet",
        "--device", "cpu"]


def test_the_same_line_starts_then_resumes_then_reports_the_finished_run(tmp_path, monkeypatch, capsys, demo_teacher):
    script = load_benchmark("continue_run")
    out = tmp_path / "run"
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(sys.path))
    assert script.command(out, 60, 1, ARGS)[-4:] == ["--out", str(out), "--stop-after", "60"]
    assert script.main(["--out", str(out), "--seconds", "1e-9", "--", *ARGS]) == 3  # paused at its first checkpoint
    assert script.command(out, 60, 2, ARGS)[-4:-2] == ["--resume", str(out)]
    assert "--nproc-per-node" in script.command(out, 60, 2, ARGS)
    assert script.main(["--out", str(out), "--seconds", "600", "--", *ARGS]) == 0
    assert json.loads((out / "metrics.json").read_text())["dfq_top1"] > 0
    capsys.readouterr()
    assert script.main(["--out", str(out), "--seconds", "600", "--", *ARGS]) == 0
    assert "finished" in capsys.readouterr().out and script.command(out, 60, 1, ARGS) is None
