"""``nascomp dfq --generator direct``: images optimised directly are the calibration set of any method."""

import json

import pytest
import torch

from interrupt import interrupted
from nascomp.cli import main
from nascomp.config import DFQ_PRESETS, DFQConfig, resolve
from nascomp.dfq import run_dfq
from run_metrics import reproducible

TINY = dict(generator="direct", direct_steps=5, calib_size=64, holdout_size=0, batch_size=32, epochs=1)


def _cfg(**kw) -> DFQConfig:
    return resolve(DFQConfig, DFQ_PRESETS, "demo", {**TINY, **kw})


@pytest.mark.parametrize("generator,how", [("direct", "directly"), ("genie", "Genie-D")])
def test_dfq_with_an_optimised_source_runs_end_to_end_on_the_demo(tmp_path, capsys, generator, how):
    out = tmp_path / "run"
    argv = ["dfq", "--generator", generator, "--direct-steps", "3", "--calib-size", "64", "--holdout-size", "0",
            "--batch-size", "32", "--epochs", "1", "--out", str(out), "--json", "--quiet"]
    assert main(argv) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["generator"] == generator and printed["dfq_top1"] == metrics["dfq_top1"] > 50
    assert "direct_step" in metrics["seconds_per_step"] and "generator_step" not in metrics["seconds_per_step"]
    assert metrics["calib_bns"] is not None
    assert f"calibration set: 64 {how} optimised images (3 steps each)" in (out / "log.txt").read_text()


def test_genie_and_direct_make_other_images_from_one_seed(tmp_path):
    """The two sources share the objective and the steps; only the parameterisation differs."""
    from nascomp.dfq.pipeline import DFQRun, direct_settings

    assert direct_settings(_cfg(generator="genie")).lr == 0.03 and direct_settings(_cfg()).lr == 0.25
    assert direct_settings(_cfg(generator="genie", direct_lr=0.1)).lr == 0.1
    images = {}
    for generator in ("direct", "genie"):
        run = DFQRun(_cfg(generator=generator, method="kd", epochs=0), out=str(tmp_path / generator), quiet=True)
        run.run()
        images[generator] = run.calib["images"]
    assert images["direct"].shape == images["genie"].shape == (64, *images["direct"].shape[1:])
    assert not torch.allclose(images["direct"], images["genie"])


@pytest.mark.parametrize("method", ["recon", "recon+kd"])
def test_the_direct_images_feed_block_reconstruction_too(tmp_path, method):
    metrics = run_dfq(_cfg(method=method, recon_iters=5, recon_batch=8), out=str(tmp_path / "r"), quiet=True)
    assert metrics["recon_top1"] is not None and metrics["generator"] == "direct"


@pytest.mark.parametrize("stage,source", [
    ("direct images", {}),  # optimised from noise
    ("genie images", dict(generator="genie")),  # Genie-D latents and a generator per batch
    ("refine images", dict(generator="gdfq", gen_steps=4, refine_steps=5)),  # a generator's images refined
])
def test_a_run_interrupted_inside_a_batch_of_optimised_images_resumes_to_the_same_numbers(tmp_path, monkeypatch,
                                                                                         stage, source):
    monkeypatch.setattr("nascomp.dfq.pipeline.DIRECT_CHECKPOINT_EVERY", 4)  # cut at step 7: 4 saved, mid-batch
    full = run_dfq(_cfg(**source), out=str(tmp_path / "full"), quiet=True)
    with interrupted(monkeypatch, stage, 7):
        run_dfq(_cfg(**source), out=str(tmp_path / "cut"), quiet=True)
    resumed = run_dfq(_cfg(**source), resume=str(tmp_path / "cut"), quiet=True)
    assert reproducible(resumed) == reproducible(full)


@pytest.mark.parametrize("argv,needle", [
    (["--schedule", "gdfq", "--epochs", "2", "--warmup-epochs", "1", "--iters-per-epoch", "2"], "--schedule calibset"),
    (["--fresh-images"], "--no-fresh-images"), (["--direct-steps", "0"], "--direct-steps 0"),
    (["--direct-jitter", "-1"], "--direct-jitter"),
])
@pytest.mark.parametrize("generator", ["direct", "genie"])
def test_bad_direct_options_are_one_line_and_exit_2(tmp_path, capsys, argv, needle, generator):
    assert main(["dfq", "--generator", generator, "--out", str(tmp_path / "r"), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and "\n" not in err and not (tmp_path / "r").exists()
