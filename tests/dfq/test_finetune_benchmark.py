"""benchmarks/dfq_finetune.py: variants of one source start from its trained generator and see the same images."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from benchmark_script import load_benchmark
from image_folders import write_image_folder
from nascomp.config import DFQ_PRESETS, DFQConfig, resolve
from nascomp.dfq import run_dfq


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("dfq_finetune")


def test_variants_share_the_sources_generator_and_images(bench, tmp_path):
    cfg = resolve(DFQConfig, DFQ_PRESETS, "demo", dict(gen_steps=20, calib_size=128, epochs=1, batch_size=32,
                                                        holdout_size=0))
    source = tmp_path / "source"
    run_dfq(cfg, out=str(source), quiet=True)
    a = bench.run_variant(source, cfg, tmp_path / "a")
    b = bench.run_variant(source, replace(cfg, student_lr=1e-2, ce_weight=0.0), tmp_path / "b")
    assert "generator_step" not in a["seconds_per_step"]  # the generator was loaded, not trained again
    assert a["ptq_top1"] == b["ptq_top1"] and a["calib_lr"] == b["calib_lr"]  # the same calibration images
    assert a["history"] != b["history"]
    again = run_dfq(replace(cfg, gen_steps=0), out=str(tmp_path / "untrained"), quiet=True)
    assert again["calib_lr"] != a["calib_lr"]  # an untrained generator would not give those images


def test_a_source_that_is_not_a_finished_calibset_run_is_refused(bench, tmp_path, monkeypatch):
    monkeypatch.setattr("sys.argv", ["dfq_finetune.py", "--sources", str(tmp_path)])
    with pytest.raises(SystemExit, match="not a finished calibset run"):
        bench.main()


def test_a_direct_variant_replaces_the_sources_generator_by_optimised_images(bench, tmp_path):
    cfg = resolve(DFQConfig, DFQ_PRESETS, "demo", dict(gen_steps=5, calib_size=64, epochs=1, batch_size=32,
                                                        holdout_size=0))
    source = tmp_path / "source"
    run_dfq(cfg, out=str(source), quiet=True)
    direct = bench.run_variant(source, replace(cfg, generator="direct", direct_steps=2), tmp_path / "d")
    assert direct["generator"] == "direct" and "direct_step" in direct["seconds_per_step"]
    assert "generator_step" not in direct["seconds_per_step"]
    assert "2 Adam steps each" in load_benchmark("common").direct_budget(replace(cfg, generator="direct", direct_steps=2))


def test_the_report_gives_each_stages_mean_minutes_and_a_recon_budget_without_kd_epochs():
    common = load_benchmark("common")
    runs = [{"stage_seconds": {"calibrate": 1.0, "reconstruct": 300.0}}, {"stage_seconds": {"reconstruct": 420.0}}]
    assert common.stage_minutes(runs) == "reconstruct 6.0"  # (5 + 7) / 2; calibrate under 0.05 minutes
    assert common.stage_minutes([{}]) == "-"  # a run made before stages were timed
    budget = {name: common.dfq_budget(resolve(DFQConfig, DFQ_PRESETS, name, {})) for name in ("quick", "quick-kd")}
    assert "KD epochs" in budget["quick-kd"] and "KD epochs" not in budget["quick"]
    assert "block reconstruction 1000 iterations" in budget["quick"]
    direct = common.dfq_budget(resolve(DFQConfig, DFQ_PRESETS, "quick", dict(generator="direct", refine_steps=0)))
    assert "optimised directly" in direct and "generator" not in direct  # no generator trains for this source
    assert "lr 0.25 (cosine)" in direct
    genie = common.dfq_budget(resolve(DFQConfig, DFQ_PRESETS, "quick", dict(generator="genie", refine_steps=0)))
    assert "as Genie-D latents and a generator per batch" in genie and "lr 0.03 (latents; generator 0.003)" in genie


def test_a_variant_on_other_evaluation_data_measures_the_teacher_there(bench, tmp_path):
    """Settings chosen on train images report the teacher's top-1 on those images, not the source's test figure."""
    cfg = resolve(DFQConfig, DFQ_PRESETS, "demo", dict(gen_steps=5, calib_size=64, epochs=1, batch_size=32,
                                                        holdout_size=0))
    source = tmp_path / "source"
    own = run_dfq(cfg, out=str(source), quiet=True)
    other = write_image_folder(tmp_path / "noise-images", [str(c) for c in range(10)], per_class=3, size=16)
    same = bench.run_variant(source, cfg, tmp_path / "same")
    elsewhere = bench.run_variant(source, replace(cfg, data=str(other)), tmp_path / "elsewhere")
    assert same["fp_top1"] == own["fp_top1"] > 90
    assert elsewhere["fp_top1"] < 60  # random images: the teacher was evaluated on them


def test_reuse_images_calibrates_on_the_sources_own_set_and_only_where_the_image_settings_agree(bench, tmp_path):
    cfg = resolve(DFQConfig, DFQ_PRESETS, "demo", dict(generator="direct", direct_steps=2, calib_size=64, epochs=1,
                                                        batch_size=32, holdout_size=0))
    source = tmp_path / "source"
    own = run_dfq(cfg, out=str(source), quiet=True)
    same_bits = bench.run_variant(source, cfg, tmp_path / "same", reuse_images=True)
    assert "direct_step" not in same_bits["seconds_per_step"]  # no image optimised again
    assert same_bits["calib_lr"] == own["calib_lr"]
    assert torch.equal(calibration_images(tmp_path / "same"), calibration_images(source))  # the very same images
    w3a3 = bench.run_variant(source, replace(cfg, wbits=3, abits=3), tmp_path / "w3a3", reuse_images=True)
    assert "direct_step" not in w3a3["seconds_per_step"] and w3a3["wbits"] == 3
    other = bench.run_variant(source, replace(cfg, direct_steps=3), tmp_path / "other", reuse_images=True)
    assert "direct_step" in other["seconds_per_step"]  # other image settings: its own images
    assert bench.same_images(cfg, replace(cfg, wbits=2, method="recon")) and not bench.same_images(cfg, replace(cfg, seed=1))


def calibration_images(run_dir) -> torch.Tensor:
    """The calibration images kept in a finished run's checkpoint."""
    return torch.load(run_dir / "checkpoint.pt", weights_only=True)["ranks"][0]["parts"]["calib"]["images"]


def test_every_dfq_setting_is_either_an_image_setting_or_one_that_acts_after_the_calibration_set():
    """A new DFQConfig field must be placed: --reuse-images would otherwise ignore a change that alters the images."""
    from dataclasses import fields

    from nascomp.dfq.pipeline import IMAGE_FIELDS

    after_images = {"data", "wbits", "abits", "first_last_bits", "layer_bits", "preset", "epochs", "fresh_images",
                    "iters_per_epoch", "warmup_epochs", "student_lr", "student_optimizer", "milestones", "lr_schedule",
                    "temperature", "kd_weight", "ce_weight", "weight_decay", "act_observer", "weight_observer",
                    "eval_every", "eval_batch_size", "method", "recon_iters", "recon_batch", "recon_round_lr",
                    "recon_step_lr", "recon_drop", "recon_weight_quant", "recon_act_quant"}
    assert set(IMAGE_FIELDS) | after_images == {f.name for f in fields(DFQConfig)}
    assert not set(IMAGE_FIELDS) & after_images


def test_a_variant_that_switches_source_takes_that_sources_lr_not_the_lr_an_old_source_run_saved(bench):
    """Source runs written before --direct-lr defaulted per source saved the pixels' 0.25; a genie variant of
    such a source must optimise its latents at the latents' own lr, and ``--set direct_lr=none`` asks for it."""
    from common import parse_overrides

    from nascomp.dfq.pipeline import direct_settings

    old_source = replace(DFQConfig(), generator="gdfq", direct_lr=0.25)
    assert direct_settings(bench.variant_config(old_source, {"generator": "genie"})).lr == 0.03
    assert bench.variant_config(old_source, {"generator": "genie", "direct_lr": 0.1}).direct_lr == 0.1
    direct_source = replace(DFQConfig(), generator="direct", direct_lr=0.1)
    assert bench.variant_config(direct_source, {"generator": "direct", "wbits": 3}).direct_lr == 0.1  # its own
    assert parse_overrides(["direct_lr=none", "wbits=3"], DFQConfig) == {"direct_lr": None, "wbits": 3}
