"""Quantizers chosen by name: the registry, and reconstruction with each learned weight/activation quantizer."""

import pytest
import torch

from nascomp.cli import main
from nascomp.errors import ConfigError
from nascomp.models import create_model
from nascomp.quant import ActQuantizer, WeightQuantizer, freeze_ranges, quantize_model, set_observing
from nascomp.quant import reconstruct as recon
from nascomp.quant.learned import AdaRoundQuantizer, LSQQuantizer
from nascomp.quant.quantizers import qparams
from nascomp.quant.registry import ACT_QUANTIZERS, WEIGHT_QUANTIZERS, quantizer_class


def test_every_quantizer_is_found_by_its_name():
    assert quantizer_class("weight", "uniform") is WeightQuantizer
    assert quantizer_class("weight", "lsq") is LSQQuantizer and quantizer_class("weight", "adaround") is AdaRoundQuantizer
    assert quantizer_class("activation", "uniform") is ActQuantizer and quantizer_class("activation", "lsq") is LSQQuantizer
    assert set(WEIGHT_QUANTIZERS) == {"uniform", "lsq", "adaround"} and set(ACT_QUANTIZERS) == {"uniform", "lsq"}


@pytest.mark.parametrize("role,name", [("weight", "brecq"), ("activation", "adaround")])
def test_an_unknown_name_is_a_config_error_naming_the_choices(role, name):
    with pytest.raises(ConfigError, match=f"unknown {role} quantizer '{name}'; choose one of"):
        quantizer_class(role, name)
    with pytest.raises(ConfigError):
        recon.ReconSettings(**{"weight_quant" if role == "weight" else "act_quant": name})


@pytest.mark.parametrize("option,value", [("--recon-weight-quant", "brecq"), ("--recon-act-quant", "adaround")])
def test_an_unknown_quantizer_on_the_command_line_is_one_line_and_exit_2(tmp_path, capsys, option, value):
    assert main(["dfq", "--method", "recon", option, value, "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert f"quantizer '{value}'" in err and "\n" not in err and not (tmp_path / "r").exists()


def _reconstruct(weight_quant: str, act_quant: str):
    torch.manual_seed(0)
    teacher = create_model("cifar_resnet20").eval()
    x = torch.randn(64, 3, 32, 32)
    student = quantize_model(teacher, 4, 4)
    with torch.no_grad():
        set_observing(student.eval(), True), student(x), freeze_ranges(student)
    calibrated = {k: v.clone() for k, v in student.state_dict().items()}
    inputs, targets = recon.capture(student, "layer1.0", x, "input"), recon.capture(teacher, "layer1.0", x, "output")
    before, after = recon.reconstruct_unit(
        student.get_submodule("layer1.0"), inputs, targets,
        recon.ReconSettings(iters=40, batch_size=16, drop=0.0, weight_quant=weight_quant, act_quant=act_quant,
                            step_lr=1e-3))
    return teacher, student, calibrated, before, after


def test_lsq_weights_end_rounded_to_nearest_on_their_learned_grid_in_the_uniform_quantizer():
    teacher, student, calibrated, before, after = _reconstruct("lsq", "lsq")
    assert after < before
    for name in ("conv1", "conv2"):
        layer, fp = student.layer1[0].get_submodule(name), teacher.layer1[0].get_submodule(name)
        assert type(layer.weight_quant) is WeightQuantizer and type(layer.act_quant) is ActQuantizer  # folded back
        lo, hi = layer.weight_quant._range(layer.weight)
        assert not torch.isnan(layer.weight_quant.grid).any()  # the learned grid is pinned
        assert not torch.allclose(layer.weight_quant.grid, calibrated[f"layer1.0.{name}.weight_quant.grid"].nan_to_num())
        scale, zero = qparams(lo, hi, 4)
        codes = layer.weight / scale + zero
        assert torch.allclose(codes, codes.round(), atol=1e-3)  # on the grid
        nearest = torch.clamp(torch.round(fp.weight / scale) + zero, 0, 15)
        assert torch.equal(codes.round(), nearest)  # LSQ learns steps, not rounding: round-to-nearest on its grid


def test_uniform_quantizers_keep_the_calibrated_grids_and_ranges():
    _, student, calibrated, before, after = _reconstruct("uniform", "uniform")
    assert after == before  # nothing to learn
    state = student.state_dict()
    assert all(torch.equal(state[k].nan_to_num(), v.nan_to_num()) for k, v in calibrated.items())


def test_uniform_activations_with_adaround_weights_learn_only_the_rounding():
    _, student, calibrated, _, _ = _reconstruct("adaround", "uniform")
    block = student.layer1[0]
    assert torch.equal(block.conv1.act_quant.hi, calibrated["layer1.0.conv1.act_quant.hi"])
    assert not torch.isnan(block.conv1.weight_quant.grid).any()  # the weights were rounded and folded
