"""Run folders: nothing of the user's deleted, no code run from a checkpoint, faults stopped with one line."""

from __future__ import annotations

import errno
import os
import pickle

import pytest
import torch

from nascomp.cli import main
from nascomp.engine import rundir
from nascomp.engine.rundir import RUN_MARKER, RunDir
from nascomp.errors import RunDirError

TINY = ["--gen-steps", "4", "--calib-size", "64", "--epochs", "2", "--batch-size", "32", "--quiet", "--device", "cpu"]


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    return err


class Payload:
    """Unpickling this runs ``os.system``: what a hostile checkpoint.pt would do."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_checkpoint_carrying_a_pickle_payload_is_refused_without_running_it(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["dfq", "--out", str(out), *TINY]) == 0
    marker = tmp_path / "pwned"
    with open(out / "checkpoint.pt", "wb") as f:
        pickle.dump({"progress": Payload(str(marker))}, f)
    assert main(["dfq", "--resume", str(out), *TINY]) == 2
    assert "checkpoint.pt" in _one_line(capsys) and not marker.exists()


def test_force_never_deletes_a_folder_that_nascomp_did_not_make(tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    for name, text in (("config.yaml", "lr: 1\n"), ("notes.txt", "keep me")):
        (mine / name).write_text(text)
    assert main(["dfq", "--out", str(mine), "--force", *TINY]) == 2
    assert "not a nascomp run folder" in _one_line(capsys)
    assert sorted(p.name for p in mine.iterdir()) == ["config.yaml", "notes.txt"]


def test_a_nan_learning_rate_is_refused_up_front(tmp_path, capsys):
    assert main(["dfq", "--out", str(tmp_path / "run"), "--student-lr", "nan", *TINY]) == 2
    assert "--student-lr nan" in _one_line(capsys) and not (tmp_path / "run").exists()


def test_a_diverging_loss_stops_the_run_at_that_step_and_keeps_the_last_checkpoint(tmp_path, capsys, monkeypatch):
    from nascomp.dfq import pipeline

    calls = []

    def diverging(*args, **kw):  # what a too-large lr does to the KD loss after one step
        calls.append(1)
        loss = pipeline_kd_loss(*args, **kw)
        return loss * float("nan") if len(calls) > 1 else loss

    pipeline_kd_loss = pipeline.kd_loss
    monkeypatch.setattr(pipeline, "kd_loss", diverging)
    out = tmp_path / "run"
    assert main(["dfq", "--out", str(out), "--holdout-size", "0", *TINY]) == 2
    line = _one_line(capsys)
    assert "fine-tune 1/2, step 2" in line and "nan" in line
    ckpt = RunDir(out).load_checkpoint()
    assert ckpt["progress"]["stage"] == 4 and ckpt["progress"]["unit"] == 0  # calibrated, before the fine-tune
    assert not (out / "metrics.json").exists()


def test_a_full_disk_gives_one_line_and_leaves_the_last_checkpoint_loadable(tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    real_fsync, calls = os.fsync, []

    def fsync(fd):
        calls.append(fd)
        if len(calls) > 8:  # the marker, config, first checkpoints: then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(rundir.os, "fsync", fsync)
    assert main(["dfq", "--out", str(out), *TINY]) == 2
    line = _one_line(capsys)
    assert "No space left on device" in line and "MiB free" in line and str(out) in line
    assert RunDir(out).load_checkpoint()["progress"]["stage"] >= 1
    assert [p.name for p in out.iterdir() if p.name.startswith(".") and p.name != RUN_MARKER] == []


def test_orphan_temporary_files_of_a_killed_write_are_removed_at_resume(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["dfq", "--out", str(out), "--keep-checkpoint", *TINY]) == 0
    orphan = out / ".checkpoint.pt.abc123"
    torch.save({"half": "written"}, orphan)
    (out / "metrics.json").unlink()
    assert main(["dfq", "--resume", str(out), *TINY]) == 0
    assert not orphan.exists() and (out / "metrics.json").is_file()


def test_metrics_json_is_strict_json(tmp_path):
    import json

    run = RunDir.create(tmp_path / "r", "test", {})
    run.write_json("metrics.json", {"loss": float("nan"), "rows": [float("inf"), 1.5]})
    assert json.loads((tmp_path / "r" / "metrics.json").read_text(), parse_constant=pytest.fail) == {
        "loss": None, "rows": [None, 1.5]}


def test_force_keeps_the_old_run_until_the_new_one_has_a_checkpoint(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["dfq", "--out", str(out), *TINY]) == 0
    old = (out / "metrics.json").read_text()
    assert main(["dfq", "--out", str(out), "--force", "--weights", str(tmp_path / "missing.pt"), *TINY]) == 2
    capsys.readouterr()
    assert (out / "metrics.json").read_text() == old  # the new run failed before its first step: old run back
    assert main(["dfq", "--out", str(out), "--force", "--epochs", "1", *TINY[:4], *TINY[6:]]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # the replaced run is gone


def test_run_files_follow_the_users_umask(tmp_path):
    old = os.umask(0o022)
    try:
        run = RunDir.create(tmp_path / "r", "test", {})
        run.write_json("metrics.json", {})
    finally:
        os.umask(old)
    assert (tmp_path / "r" / "metrics.json").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "r" / "config.yaml").stat().st_mode & 0o777 == 0o644


def test_resume_accepts_a_folder_written_before_an_option_existed_only_at_that_options_default(tmp_path):
    RunDir.create(tmp_path / "r", "test", {"epochs": 2}).close()
    defaults = {"epochs": 1, "precision": "fp32"}
    RunDir.resume(tmp_path / "r", {"epochs": 2, "precision": "fp32"}, defaults).close()
    with pytest.raises(RunDirError, match="precision: 'fp32' there, 'bf16' now"):
        RunDir.resume(tmp_path / "r", {"epochs": 2, "precision": "bf16"}, defaults)
    with pytest.raises(RunDirError, match="epochs: 2 there, 1 now"):
        RunDir.resume(tmp_path / "r", {"epochs": 1, "precision": "fp32"}, defaults)
