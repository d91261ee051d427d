import json

import pytest
import torch

from interrupt import interrupted
from nascomp.config import DFQ_PRESETS, DFQConfig, resolve
from nascomp.deploy.student import load_student
from nascomp.dfq import DFQRun, kd_loss, run_dfq
from nascomp.dfq.evaluate import evaluate_checkpoint
from nascomp.engine.rundir import RunDir
from run_metrics import reproducible

TINY = dict(gen_steps=10, calib_size=128, epochs=3, batch_size=32, eval_every=1)
TINY_GDFQ = dict(schedule="gdfq", epochs=3, iters_per_epoch=3, warmup_epochs=1, batch_size=32,
                 act_observer="ema", weight_observer="minmax")


def _cfg(**kw) -> DFQConfig:
    return resolve(DFQConfig, DFQ_PRESETS, "demo", {**TINY, **kw})


def _comparable(metrics: dict) -> dict:
    return reproducible(metrics)


def test_kd_loss_is_zero_kl_plus_ce_when_student_equals_teacher():
    logits, y = torch.randn(4, 10), torch.tensor([1, 2, 3, 4])
    assert torch.allclose(kd_loss(logits, logits, y), torch.nn.functional.cross_entropy(logits, y), atol=1e-6)
    assert kd_loss(logits, -logits, y) > kd_loss(logits, logits, y)


def test_ce_weight_zero_leaves_the_kd_term_alone():
    s, t, y = torch.randn(4, 10), torch.randn(4, 10), torch.tensor([1, 2, 3, 4])
    kd_only = kd_loss(s, t, y, ce_weight=0.0)
    assert torch.allclose(kd_loss(s, t, y) - kd_only, torch.nn.functional.cross_entropy(s, y), atol=1e-6)
    assert kd_loss(s, s, y, ce_weight=0.0).abs() < 1e-6


@pytest.mark.parametrize("name,cls", [("sgd", torch.optim.SGD), ("adam", torch.optim.Adam)])
def test_student_optimizer_is_the_configured_one(tmp_path, name, cls):
    run = DFQRun(_cfg(student_optimizer=name, student_lr=3e-5), out=str(tmp_path / "r"), quiet=True)
    assert type(run.student_opt) is cls and run.student_opt.param_groups[0]["lr"] == 3e-5


def test_end_to_end_demo_run_writes_the_run_folder(tmp_path, demo_teacher):
    metrics = run_dfq(_cfg(), out=str(tmp_path / "run"), quiet=True)
    run = tmp_path / "run"
    for name in ("config.yaml", "log.txt", "checkpoint.pt", "metrics.json", "model.safetensors", "model.json"):
        assert (run / name).is_file(), name
    assert metrics["fp_top1"] > 90 and metrics["ptq_top1"] > 50 and metrics["dfq_top1"] > 50
    assert json.loads((run / "metrics.json").read_text())["dfq_top1"] == metrics["dfq_top1"]
    spec = json.loads((run / "model.json").read_text())
    assert spec["kind"] == "dfq-student" and spec["quant"]["wbits"] == 4 and spec["layers"]["features.3"]["abits"] == 4
    assert evaluate_checkpoint(None, str(run), "demo").top1 == pytest.approx(metrics["dfq_top1"])
    assert load_student(run).features[0].act_quant.frozen
    assert json.loads((run / "generator.json").read_text())["architecture"] == {"builder": "gdfq-generator"}


def test_student_carries_no_hooks_of_the_teacher(tmp_path):
    """The BNS hooks belong to the teacher; a student copied after they exist would compute BN statistics
    at every KD step for nothing."""
    run = DFQRun(_cfg(), out=str(tmp_path / "r"), quiet=True)
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in run.student.modules())
    assert any(m._forward_hooks or m._forward_pre_hooks for m in run.teacher.modules())


def test_same_seed_gives_the_same_numbers(tmp_path):
    a = run_dfq(_cfg(), out=str(tmp_path / "a"), quiet=True)
    b = run_dfq(_cfg(), out=str(tmp_path / "b"), quiet=True)
    assert _comparable(a) == _comparable(b)


@pytest.mark.parametrize("kw,stage,unit", [({}, "fine-tune", 1), ({"fresh_images": True}, "fine-tune", 1),
                                           (TINY_GDFQ, "gdfq", 1), ({}, "generator", 6)],
                         ids=["calibset", "fresh", "gdfq", "generator"])
def test_interrupted_run_resumed_gives_the_same_final_metrics(tmp_path, monkeypatch, kw, stage, unit):
    monkeypatch.setattr("nascomp.dfq.pipeline.GENERATOR_CHECKPOINT_EVERY", 4)  # generator step 6: 4 saved
    full = run_dfq(_cfg(**kw), out=str(tmp_path / "full"), quiet=True)
    with interrupted(monkeypatch, stage, unit):
        run_dfq(_cfg(**kw), out=str(tmp_path / "cut"), quiet=True)
    resumed = run_dfq(_cfg(**kw), resume=str(tmp_path / "cut"), quiet=True)
    assert _comparable(resumed) == _comparable(full)


@pytest.mark.parametrize("fresh", [False, True])
def test_kd_epochs_see_the_calibration_set_or_fresh_images(tmp_path, monkeypatch, fresh):
    """Fixed set: every epoch reuses the same images (reshuffled); fresh_images: each epoch draws new ones."""
    seen: list[torch.Tensor] = []
    original = DFQRun._student_step

    def record(self, images, labels, logits):
        seen.append(images.flatten(1).sum(1))
        return original(self, images, labels, logits)

    monkeypatch.setattr(DFQRun, "_student_step", record)
    run_dfq(_cfg(epochs=2, fresh_images=fresh), out=str(tmp_path / "r"), quiet=True)
    half = len(seen) // 2
    first, second = (torch.cat(part).sort().values for part in (seen[:half], seen[half:]))
    assert len(first) == len(second) == TINY["calib_size"]
    assert torch.allclose(first, second) is not fresh


def test_gdfq_schedule_freezes_ranges_after_warm_up(tmp_path):
    metrics = run_dfq(_cfg(**TINY_GDFQ), out=str(tmp_path / "g"), quiet=True)
    assert metrics["ptq_top1"] is not None and [r["epoch"] for r in metrics["history"]] == [1, 2, 3]
    student = load_student(tmp_path / "g")
    assert all(m.act_quant.frozen for m in student.modules() if hasattr(m, "act_quant"))


def test_noise_control_runs_without_generator_training(tmp_path):
    metrics = run_dfq(_cfg(generator="noise", epochs=1), out=str(tmp_path / "n"), quiet=True)
    assert metrics["generator"] == "noise" and metrics["dfq_top1"] is not None


def test_saved_student_is_the_epoch_with_the_lowest_held_out_generated_loss(tmp_path):
    metrics = run_dfq(_cfg(holdout_size=64), out=str(tmp_path / "h"), quiet=True)
    losses = {row["epoch"]: row["holdout_kd"] for row in metrics["history"]}
    selected = RunDir(tmp_path / "h").load_checkpoint()["results"]["selected_loss"]
    assert all(selected <= loss for loss in losses.values())
    if metrics["selected_epoch"] > 0:
        assert losses[metrics["selected_epoch"]] == selected
    assert evaluate_checkpoint(None, str(tmp_path / "h"), "demo").top1 == pytest.approx(metrics["dfq_top1"])


def test_without_a_held_out_set_the_last_epoch_is_saved(tmp_path):
    metrics = run_dfq(_cfg(holdout_size=0), out=str(tmp_path / "n"), quiet=True)
    assert metrics["selected_epoch"] is None and metrics["dfq_top1"] == metrics["dfq_last_epoch_top1"]


def test_the_evaluation_batch_shrinks_with_the_input_size():
    from nascomp.dfq.sources import default_eval_batch

    assert default_eval_batch((3, 32, 32)) == 500 and default_eval_batch((3, 224, 224)) == 41
