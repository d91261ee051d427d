"""``nascomp dfq --refine-steps N``: a generator's calibration images refined by direct optimisation (its resume
inside a batch: tests/dfq/test_direct_source.py)."""

import pytest
import torch

from nascomp.cli import main
from nascomp.config import DFQ_PRESETS, DFQConfig, resolve
from nascomp.dfq import run_dfq

TINY = dict(gen_steps=4, calib_size=64, holdout_size=0, batch_size=32, epochs=1, refine_steps=5)


def _cfg(**kw) -> DFQConfig:
    return resolve(DFQConfig, DFQ_PRESETS, "demo", {**TINY, **kw})


def test_refined_images_start_from_the_drawn_ones_and_match_the_statistics_better(tmp_path):
    drawn = run_dfq(_cfg(refine_steps=0), out=str(tmp_path / "drawn"), quiet=True)
    refined = run_dfq(_cfg(), out=str(tmp_path / "refined"), quiet=True)
    assert refined["calib_bns"] < drawn["calib_bns"]
    assert "direct_step" in refined["seconds_per_step"] and "generator_step" in refined["seconds_per_step"]
    log = (tmp_path / "refined" / "log.txt").read_text()
    assert f"generated images refined (5 steps each; BNS {drawn['calib_bns']:.4g} as drawn)" in log
    images = {name: torch.load(tmp_path / name / "checkpoint.pt", weights_only=False)["ranks"][0]["parts"]["calib"]
              for name in ("drawn", "refined")}
    a, b = images["drawn"]["images"], images["refined"]["images"]
    assert torch.equal(images["drawn"]["labels"], images["refined"]["labels"])  # the generator's labels are kept
    change = (b - a).pow(2).mean().sqrt() / a.pow(2).mean().sqrt()
    assert 0 < change < 0.5  # refined from the drawn images, not from new noise


@pytest.mark.parametrize("argv,needle", [
    (["--generator", "direct"], "--refine-steps 0"),
    (["--schedule", "gdfq", "--epochs", "2", "--warmup-epochs", "1", "--iters-per-epoch", "2"], "--schedule calibset"),
    (["--refine-lr", "-1"], "--refine-lr"),
])
def test_bad_refine_options_are_one_line_and_exit_2(tmp_path, capsys, argv, needle):
    assert main(["dfq", "--refine-steps", "3", "--out", str(tmp_path / "r"), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and "\n" not in err and not (tmp_path / "r").exists()
