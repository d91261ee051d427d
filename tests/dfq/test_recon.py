"""Block reconstruction (BRECQ + AdaRound + LSQ + QDrop) as a stage of the DFQ run."""

from dataclasses import replace

import pytest
import torch

from interrupt import interrupted
from nascomp.cli import main
from nascomp.config import DFQ_PRESETS, DFQConfig, resolve
from nascomp.dfq import DFQRun, run_dfq
from nascomp.models import create_model
from nascomp.quant import quant_layers, quantize_model
from nascomp.quant import reconstruct as recon
from nascomp.quant.quantizers import qparams
from run_metrics import reproducible

TINY = dict(gen_steps=10, calib_size=128, epochs=1, batch_size=32, eval_every=1, holdout_size=0, method="recon",
            recon_iters=300, recon_batch=16, recon_drop=0.0)


def _cfg(**kw) -> DFQConfig:
    return resolve(DFQConfig, DFQ_PRESETS, "demo", {**TINY, **kw})


def test_units_of_a_cifar_resnet_are_the_stem_the_residual_blocks_and_the_head():
    student = quantize_model(create_model("cifar_resnet20"), 4, 4)
    assert recon.reconstruction_units(student) == [
        "conv1", *(f"layer{s}.{b}" for s in (1, 2, 3) for b in range(3)), "linear"]


@pytest.fixture(scope="module")
def reconstructed(tmp_path_factory, demo_teacher):
    out = tmp_path_factory.mktemp("recon") / "run"
    run = DFQRun(_cfg(), out=str(out), quiet=True)
    metrics = run.run()
    return run, metrics


def test_reconstruction_lowers_every_blocks_error_below_calibration_alone(reconstructed):
    _, metrics = reconstructed
    rows = [r for r in metrics["history"] if "block" in r]
    assert [r["block"] for r in rows] == ["features.0", "features.3", "features.6", "classifier"]
    assert all(r["error_after"] <= r["error_before"] for r in rows), rows  # never worse than calibration alone
    assert sum(r["error_after"] < r["error_before"] for r in rows) >= 3, rows
    assert metrics["recon_top1"] == metrics["dfq_top1"] > 50 and metrics["method"] == "recon"


def test_reconstructed_weights_lie_on_their_grid_within_one_step_of_rounding_to_nearest(reconstructed):
    run, _ = reconstructed
    teacher_layers = dict(run.teacher.named_modules())
    kept = [(name, layer) for name, layer in quant_layers(run.student) if not torch.isnan(layer.weight_quant.grid).any()]
    assert len(kept) >= 3  # a unit that ended above its calibrated error keeps the calibrated weights
    for name, layer in kept:
        lo, hi = layer.weight_quant._range(layer.weight)
        scale, zero = qparams(lo, hi, layer.wbits)
        codes = layer.weight / scale + zero
        assert torch.allclose(codes, codes.round(), atol=1e-3), name  # integers: the stored weights are on the grid
        assert torch.allclose(layer.weight_quant(layer.weight), layer.weight, atol=1e-5)  # quantizing keeps them
        nearest = torch.clamp(torch.round(teacher_layers[name].weight / scale) + zero, 0, 2**layer.wbits - 1)
        assert (codes.round() - nearest).abs().max() <= 1, name


def test_qdrop_with_probability_0_is_plain_brecq_and_draws_no_mask(monkeypatch):
    torch.manual_seed(0)
    teacher = create_model("cifar_resnet20").eval()
    x = torch.randn(32, 3, 32, 32)
    from nascomp.quant import freeze_ranges, set_observing

    def run(drop: float) -> torch.Tensor:
        torch.manual_seed(1)
        student = quantize_model(teacher, 4, 4)
        with torch.no_grad():
            set_observing(student.eval(), True), student(x), freeze_ranges(student)
        inputs, targets = recon.capture(student, "layer1.0", x, "input"), recon.capture(teacher, "layer1.0", x, "output")
        recon.reconstruct_unit(student.get_submodule("layer1.0"), inputs, targets,
                               recon.ReconSettings(iters=5, batch_size=8, drop=drop))
        return torch.cat([p.detach().flatten() for p in student.layer1[0].parameters()])

    masks = []
    real_rand = torch.rand
    monkeypatch.setattr(recon.torch, "rand", lambda *a, **k: masks.append(1) or real_rand(*a, **k))
    with_drop = run(0.5)
    assert masks  # QDrop draws its masks when p > 0
    masks.clear()
    plain = run(0.0)
    assert not masks and plain.shape == with_drop.shape


def test_a_run_interrupted_in_the_middle_of_reconstruction_resumes_to_the_same_numbers(tmp_path, monkeypatch):
    cfg = _cfg(method="recon+kd", recon_iters=40, recon_drop=0.5)  # QDrop's masks come from the restored RNG too
    full = run_dfq(cfg, out=str(tmp_path / "full"), quiet=True)
    with interrupted(monkeypatch, "reconstruct", 2):
        run_dfq(cfg, out=str(tmp_path / "cut"), quiet=True)
    resumed = run_dfq(cfg, resume=str(tmp_path / "cut"), quiet=True)
    assert reproducible(resumed) == reproducible(full)
    stages = ["evaluate teacher", "generator", "calibration set", "calibrate", "reconstruct", "fine-tune"]
    assert list(full["stage_seconds"]) == list(resumed["stage_seconds"]) == stages  # each stage's wall time
    assert resumed["stage_seconds"]["reconstruct"] > 0 and resumed["stage_seconds"]["fine-tune"] > 0


def test_the_quick_preset_refines_and_reconstructs_and_quick_kd_is_gdfqs_route_on_the_same_generator():
    quick, quick_kd = (resolve(DFQConfig, DFQ_PRESETS, name, {}) for name in ("quick", "quick-kd"))
    assert (quick.method, quick_kd.method) == ("recon", "kd")
    assert (quick.refine_steps, quick_kd.refine_steps) == (50, 0)
    assert replace(quick_kd, method="recon", refine_steps=50, refine_lr=0.05, preset="quick") == quick


@pytest.mark.parametrize("argv,needle", [
    (["--method", "brecq"], "unknown method"), (["--method", "recon", "--schedule", "gdfq", "--epochs", "2",
                                                "--warmup-epochs", "1", "--iters-per-epoch", "2"], "calibset"),
    (["--method", "recon", "--recon-iters", "-1"], "--recon-iters -1"), (["--recon-drop", "1.5"], "--recon-drop"),
])
def test_bad_reconstruction_options_are_one_line_and_exit_2(tmp_path, capsys, argv, needle):
    assert main(["dfq", "--out", str(tmp_path / "r"), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and "\n" not in err and not (tmp_path / "r").exists()


def test_a_student_saved_before_fixed_grids_existed_still_loads():
    student = quantize_model(create_model("cifar_resnet20"), 4, 4)
    old = {k: v for k, v in student.state_dict().items() if not k.endswith("weight_quant.grid")}
    again = quantize_model(create_model("cifar_resnet20"), 4, 4)
    again.load_state_dict(old)  # strict: the missing grids take their default (follow the weights)
    assert all(torch.isnan(layer.weight_quant.grid).all() for _, layer in quant_layers(again))
