"""Real 2-process runs (torchrun, gloo, CPU): what data parallelism must keep.

One torchrun launch of ``ddp_worker.py`` runs every scenario in both processes (a launch costs seconds of
start-up); the tests below read what each rank saved.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nascomp.cli import main

WORKER = Path(__file__).with_name("ddp_worker.py")


@pytest.fixture(scope="module")
def ranks(tmp_path_factory, demo_teacher):
    """What rank 0 and rank 1 saw (the demo teacher is trained first, so both ranks load it from the cache)."""
    out = tmp_path_factory.mktemp("ddp")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           str(WORKER), str(out)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        _, err = proc.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the launcher and both workers
        raise
    assert proc.returncode == 0, err[-3000:]
    return out, [torch.load(out / f"rank{r}.pt", weights_only=True) for r in (0, 1)]


def test_the_searchers_averaged_gradient_equals_one_process_on_the_whole_batch(ranks):
    _, (r0, r1) = ranks
    assert torch.equal(r0["searcher"], r1["searcher"])
    assert torch.allclose(r0["searcher"], r0["searcher_reference"], atol=1e-6)


def test_a_kd_step_under_ddp_equals_one_process_on_the_global_batch(ranks):
    _, (r0, r1) = ranks
    assert torch.equal(r0["kd"], r1["kd"])
    assert not torch.allclose(r0["kd"], r0["kd_start"])  # the step moved the weights
    assert torch.allclose(r0["kd"], r0["kd_reference"], atol=1e-6)


def test_dfq_parameters_are_equal_on_both_ranks_after_every_step(ranks):
    _, (r0, r1) = ranks
    for part in ("generator", "student"):
        assert len(r0["dfq"][part]) == len(r1["dfq"][part]) > 0
        assert all(torch.equal(a, b) for a, b in zip(r0["dfq"][part], r1["dfq"][part], strict=True)), part
    assert r0["dfq_metrics"] == r1["dfq_metrics"]  # evaluation counts summed over the ranks' shares


def test_each_rank_draws_its_own_latents(ranks):
    _, (r0, r1) = ranks
    assert not torch.allclose(r0["dfq"]["latents"][0], r1["dfq"]["latents"][0])


def test_nasb_training_parameters_are_equal_on_both_ranks_after_every_step(ranks):
    _, (r0, r1) = ranks
    assert len(r0["nasb"]) == len(r1["nasb"]) > 0
    assert all(torch.equal(a, b) for a, b in zip(r0["nasb"], r1["nasb"], strict=True))
    assert r0["nasb_top1"] == r1["nasb_top1"]


def test_only_rank_0_writes_the_run_folders(ranks):
    out, (r0, r1) = ranks
    assert r1["writes"] == [] and any(w.endswith("checkpoint.pt") for w in r0["writes"])
    assert (out / "dfq" / "metrics.json").is_file() and (out / "nasb" / "model.safetensors").is_file()


def test_a_resumed_2_process_run_ends_with_the_uninterrupted_numbers(ranks):
    _, (r0, r1) = ranks
    assert r0["resumed_metrics"] == r0["dfq_metrics"] == r1["resumed_metrics"]


def test_resuming_with_another_number_of_processes_is_refused(ranks, capsys):
    out, _ = ranks
    args = ["dfq", "--resume", str(out / "dfq-cut"), "--device", "cpu", "--gen-steps", "4", "--calib-size", "64",
            "--epochs", "2", "--batch-size", "16", "--holdout-size", "0"]
    assert main(args) == 2
    line = capsys.readouterr().err.strip()
    assert "2 process(es)" in line and "--nproc-per-node 2" in line and "\n" not in line
