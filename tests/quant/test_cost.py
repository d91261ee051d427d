"""Cost counting: hand-computed FLOPs/BOPs/size, the published Bi-Real/ResNet figures, modes and errors."""

from __future__ import annotations

import json

import pytest
import torch
import torchvision
from torch import nn

from nascomp.errors import ConfigError
from nascomp.models import create_model
from nascomp.quant.binary import BinaryConv2d, set_binary_stage
from nascomp.quant.cost import count_cost, format_cost_table, sci


class Quant4Conv2d(nn.Conv2d):
    """Stands in for another module's k-bit conv: only the ``wbits``/``abits`` attributes matter."""

    wbits = 4
    abits = 4


def mixed_model() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),  # 8x8 out
        nn.BatchNorm2d(8),
        BinaryConv2d(8, 16, 3, stride=2, padding=1, bias=False),  # 4x4 out
        Quant4Conv2d(16, 4, 1),
        nn.MaxPool2d(3, 2, 1),  # 2x2 out
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 10),
    )


def test_mixed_model_gives_hand_computed_flops_bops_ops_and_size():
    report = count_cost(mixed_model(), (3, 8, 8))
    fp_macs = 3 * 8 * 9 * 8 * 8 + 4 * 10
    binary_macs = 8 * 16 * 9 * 4 * 4
    four_bit_macs = 16 * 4 * 1 * 4 * 4
    assert report.flops == fp_macs
    assert report.bops == binary_macs * 1 * 1 + four_bit_macs * 4 * 4
    assert report.ops == fp_macs + report.bops / 64
    assert [(r.wbits, r.abits) for r in report.layers] == [(32, 32), (1, 1), (4, 4), (32, 32)]
    assert [r.name for r in report.layers] == ["0", "2", "3", "7"]
    params32 = (3 * 8 * 9 + 8) + 2 * 8 + 4 + (4 * 10 + 10)
    assert report.params == params32 + 8 * 16 * 9 + 16 * 4
    assert report.size_bits == params32 * 32 + 8 * 16 * 9 * 1 + 16 * 4 * 4


def test_include_other_adds_batchnorm_and_pooling_flops_only():
    base = count_cost(mixed_model(), (3, 8, 8))
    full = count_cost(mixed_model(), (3, 8, 8), include_other=True)
    bn = 8 * 8 * 8
    maxpool = 4 * 2 * 2 * 9
    avgpool = 4 * 1 * 1 * 2 * 2
    assert full.flops == base.flops + bn + maxpool + avgpool
    assert full.bops == base.bops
    assert {r.type for r in full.layers} - {r.type for r in base.layers} == {
        "BatchNorm2d",
        "MaxPool2d",
        "AdaptiveAvgPool2d",
    }


def test_count_restores_each_module_mode_and_leaves_bn_statistics_alone():
    model = mixed_model().train()
    model[1].eval()
    before = {k: v.clone() for k, v in model[1].state_dict().items()}
    count_cost(model, (3, 8, 8))
    assert model.training and model[2].training and not model[1].training
    for k, v in model[1].state_dict().items():
        assert torch.equal(v, before[k]), k


def test_bit_attributes_follow_binary_stage():
    model = mixed_model()
    set_binary_stage(model, 1)
    real = count_cost(model, (3, 8, 8))
    set_binary_stage(model, 2)
    acts_only = count_cost(model, (3, 8, 8))
    binary_macs, four_bit_macs = 8 * 16 * 9 * 4 * 4, 16 * 4 * 1 * 4 * 4
    assert real.flops == count_cost(mixed_model(), (3, 8, 8)).flops + binary_macs
    assert acts_only.bops == binary_macs * 32 * 1 + four_bit_macs * 4 * 4


@pytest.mark.parametrize("size", [(3, 8), (3, 0, 8), (3.0, 8, 8)])
def test_bad_input_size_is_a_config_error(size):
    with pytest.raises(ConfigError, match="input size"):
        count_cost(mixed_model(), size)


def test_input_the_model_cannot_take_is_a_config_error():
    with pytest.raises(ConfigError, match="does not accept"):
        count_cost(mixed_model(), (1, 8, 8))


def test_invalid_bit_attribute_is_a_config_error():
    conv = nn.Conv2d(3, 4, 1)
    conv.wbits = 0
    with pytest.raises(ConfigError, match="wbits"):
        count_cost(conv, (3, 4, 4))


@pytest.fixture(scope="module")
def reports():
    torch.manual_seed(0)
    return {
        "resnet18": count_cost(torchvision.models.resnet18(weights=None)),
        "birealnet18": count_cost(create_model("birealnet18")),
        "birealnet34": count_cost(create_model("birealnet34")),
    }


def close(value: float, published: float, rel: float = 0.01) -> bool:
    return abs(value - published) <= rel * published


def test_resnet18_flops_match_published(reports):
    assert close(reports["resnet18"].flops, 1.81e9)
    assert reports["resnet18"].bops == 0


def test_birealnet18_matches_published_bops_flops_ops(reports):
    r = reports["birealnet18"]
    stem = 3 * 64 * 7 * 7 * 112 * 112
    downsample = 64 * 128 * 28 * 28 + 128 * 256 * 14 * 14 + 256 * 512 * 7 * 7
    assert r.flops == stem + downsample + 512 * 1000
    assert close(r.bops, 1.68e9)
    assert close(r.flops, 1.39e8)
    assert close(r.ops, 1.63e8)


def test_birealnet34_matches_published_ops(reports):
    assert close(reports["birealnet34"].ops, 1.93e8)
    assert close(reports["birealnet34"].bops, 3.53e9)


def test_model_sizes_match_bi_real_memory_figures(reports):
    """Bi-Real Net reports 374.1 / 33.6 / 43.7 Mbit for ResNet-18 / Bi-Real-18 / Bi-Real-34."""
    assert close(reports["resnet18"].size_bits, 374.1e6)
    assert close(reports["birealnet18"].size_bits, 33.6e6)
    assert close(reports["birealnet34"].size_bits, 43.7e6)


def test_table_and_dict_carry_the_totals(reports):
    r = reports["birealnet18"]
    table = format_cost_table(r)
    assert "stages.0.0.conv" in table and "BinaryConv2d" in table
    assert f"OPs        {sci(r.ops)}" in table and sci(r.ops) == "1.64e8"
    data = json.loads(json.dumps(r.to_dict()))
    assert data["ops"] == r.ops and data["bops"] == r.bops
    assert len(data["layers"]) == len(r.layers) == 1 + 16 + 3 + 1


@pytest.mark.parametrize(("x", "text"), [(0, "0"), (1.63e8, "1.63e8"), (1813e6, "1.81e9"), (0.5, "5.00e-1")])
def test_sci_notation(x, text):
    assert sci(x) == text


@pytest.mark.parametrize(("name", "convs"), [("groupnet18_k4", 4), ("groupnet18_k5", 5), ("abcnet18_m3n3", 9)])
def test_multi_base_resnet18_costs_match_the_figures_derived_from_bi_real_18(reports, name, convs):
    """Derived by hand from the published Bi-Real-18 figures (Liu et al. ECCV 2018: BOPs 1.68e9, FLOPs 1.39e8):
    a multi-base ResNet-18 with Bi-Real's real-valued stem, downsampling shortcuts and classifier runs every one of
    its 16 binary 3x3 convs K times (Group-Net, Zhuang et al. CVPR 2019) or M x N times (ABC-Net, Lin et al.
    NeurIPS 2017), so BOPs = convs x 1.68e9 and OPs = 1.39e8 + convs x 1.68e9 / 64:
    Group-Net K=4: 6.72e9 BOPs, 1.39e8 + 1.05e8 = 2.44e8 OPs; K=5: 8.40e9, 1.39e8 + 1.31e8 = 2.70e8;
    ABC-Net 3x3: 1.51e10, 1.39e8 + 2.36e8 = 3.75e8."""
    model = create_model(name)
    set_binary_stage(model, 3)
    r = count_cost(model)
    assert r.bops == convs * reports["birealnet18"].bops and r.flops == reports["birealnet18"].flops
    assert close(r.bops, convs * 1.68e9)
    assert close(r.ops, 1.39e8 + convs * 1.68e9 / 64)
    assert close(r.ops, {4: 2.44e8, 5: 2.70e8, 9: 3.75e8}[convs])
