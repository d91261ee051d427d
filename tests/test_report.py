"""Run reports: every finished run folder gets report.md with its PNG figures, ``nascomp report RUN`` rebuilds
it, and the resume checkpoint is removed once the run has finished unless ``--keep-checkpoint``."""

import json
import re
from pathlib import Path

import pytest

from nascomp.cli import main

DFQ = ["dfq", "--gen-steps", "4", "--calib-size", "64", "--epochs", "2", "--batch-size", "32", "--quiet"]
NASB = ["--channels", "4", "--layers", "3", "--batch-size", "32", "--epochs", "2", "--quiet"]
PNG = b"\x89PNG\r\n\x1a\n"


def _figures(run: Path) -> list[Path]:
    """The pictures report.md shows; each must exist and be a PNG."""
    text = (run / "report.md").read_text()
    paths = [run / p for p in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)]
    for p in paths:
        assert p.is_file() and p.read_bytes()[:8] == PNG, p
    return paths


def _one_line_error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    return err


@pytest.fixture(scope="module")
def dfq_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "dfq"
    assert main([*DFQ, "--out", str(out)]) == 0
    return out


def test_dfq_report_shows_curves_generated_images_and_cost(dfq_run):
    text = (dfq_run / "report.md").read_text()
    names = {p.name for p in _figures(dfq_run)}
    assert {"curve-generator.png", "curve-fine-tune.png", "samples.png"} <= names
    assert "One row per class (every class: 0, 1, 2, 3, 4, 5, 6, 7, 8, 9), 8 images each, drawn from the run's " \
           "generator" in text
    assert "| W4A4 student |" in text and "| FP teacher top-1 (%) |" in text and "| metrics.json |" in text
    assert "checkpoint.pt" not in text  # removed right after the report: not listed among the files
    stages = {s["name"]: s["rows"] for s in json.loads((dfq_run / "curves.json").read_text())["stages"]}
    assert len(stages["generator"]) == 4 and {"L_r", "bns"} <= set(stages["generator"][0])
    assert [round(r["kd"], 6) for r in stages["fine-tune"]] == [
        round(r["kd"], 6) for r in json.loads((dfq_run / "metrics.json").read_text())["history"]]


def test_finished_run_loses_its_checkpoint_and_refuses_resume_in_one_line(dfq_run, capsys):
    assert not (dfq_run / "checkpoint.pt").exists()
    line = _one_line_error(capsys, [*DFQ, "--resume", str(dfq_run)])
    assert "has finished" in line and "--keep-checkpoint" in line


def test_nascomp_report_rebuilds_the_report(dfq_run, capsys):
    (dfq_run / "report.md").unlink()
    for png in (dfq_run / "report").glob("curve-*.png"):
        png.unlink()
    assert main(["report", str(dfq_run), "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert Path(result["report"]) == dfq_run / "report.md"
    assert sorted(map(Path, result["figures"])) == sorted(_figures(dfq_run))
    text = (dfq_run / "report.md").read_text()
    assert "One row per class" in text  # drawn again from generator.safetensors (the checkpoint is gone)
    (dfq_run / "generator.safetensors").unlink()
    assert main(["report", str(dfq_run)]) == 0
    assert "The grid written when the run ended" in (dfq_run / "report.md").read_text()
    (dfq_run / "curves.json").unlink()  # a run folder written before curves.json: its recorded history is drawn
    assert main(["report", str(dfq_run)]) == 0
    assert "curve-history.png" in {p.name for p in _figures(dfq_run)}


def test_keep_checkpoint_keeps_it_and_a_finished_run_resumes_to_the_same_metrics(tmp_path, capsys):
    out = tmp_path / "kept"
    argv = [*DFQ, "--epochs", "1", "--generator", "noise", "--json"]
    assert main([*argv, "--out", str(out), "--keep-checkpoint"]) == 0
    first = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (out / "checkpoint.pt").is_file() and "samples.png" in {p.name for p in _figures(out)}
    assert "images each, the first images of each class in the generated calibration set" in (out / "report.md").read_text()
    assert main([*argv, "--resume", str(out), "--keep-checkpoint"]) == 0
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert again["dfq_top1"] == first["dfq_top1"] and (out / "checkpoint.pt").is_file()


def test_a_folder_that_is_not_a_finished_run_is_one_line(tmp_path, capsys):
    assert "not a nascomp run folder" in _one_line_error(capsys, ["report", str(tmp_path)])
    assert main([*DFQ, "--out", str(tmp_path / "cut"), "--stop-after", "1e-9"]) == 3
    capsys.readouterr()
    assert "has not finished" in _one_line_error(capsys, ["report", str(tmp_path / "cut")])


def test_nasb_search_and_train_reports_show_alphas_genotype_stages_and_cost(tmp_path):
    search, train = tmp_path / "search", tmp_path / "train"
    assert main(["nasb", "search", *NASB, "--subset", "64", "--out", str(search)]) == 0
    text = (search / "report.md").read_text()
    assert {"alphas.png", "curve-search.png"} <= {p.name for p in _figures(search)}
    assert "| normal |" in text and "derived network (fully binary)" in text
    assert main(["nasb", "train", *NASB, "--genotype", str(search), "--stages", "1", "--subset", "64",
                 "--eval-subset", "32", "--out", str(train)]) == 0
    text = (train / "report.md").read_text()
    assert "curve-stage-3.png" in {p.name for p in _figures(train)}
    assert "| stage 3 top-1 (%) |" in text and "trained network" in text and "| parameters |" in text
    assert not (search / "checkpoint.pt").exists() and not (train / "checkpoint.pt").exists()
