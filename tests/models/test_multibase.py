"""Multi-base baselines: registry entries, K = 1 is Bi-Real, FLOPs equal Bi-Real's and BOPs are K / M x N times
its BOPs, forward passes and gradients in every stage."""

from __future__ import annotations

import pytest
import torch

from nascomp.models import create_model, list_models
from nascomp.models.multibase import cifar_groupnet20
from nascomp.quant.binary import set_binary_stage
from nascomp.quant.cost import count_cost

CIFAR = [("cifar_groupnet20_k4", 4), ("cifar_groupnet20_k5", 5), ("cifar_abcnet20_m3n3", 9)]
IMAGENET = [("groupnet18_k4", 4), ("groupnet18_k5", 5), ("abcnet18_m3n3", 9)]


def _cost(name: str):
    model = create_model(name)
    set_binary_stage(model, 3)
    return count_cost(model, tuple(model.default_cfg.input_size))


@pytest.fixture(scope="module")
def birealnet20():
    return _cost("cifar_birealnet20")


@pytest.mark.parametrize(("name", "convs"), CIFAR)
def test_cifar_baselines_cost_k_or_m_by_n_times_bi_real_20(birealnet20, name, convs):
    r = _cost(name)
    assert r.flops == birealnet20.flops
    assert r.bops == convs * birealnet20.bops
    assert r.ops == birealnet20.flops + convs * birealnet20.bops / 64


def test_the_benchmark_ops_of_the_cifar_baselines(birealnet20):
    """The OPs the NASB benchmark table reports (BENCHMARKS.md), pinned."""
    assert birealnet20.ops == 1_331_840
    assert [_cost(n).ops for n, _ in CIFAR] == [3_211_904, 3_838_592, 6_345_344]


def test_registry_lists_the_multi_base_models():
    names = list_models("*net*")
    assert all(n in names for n, _ in CIFAR + IMAGENET)


@pytest.mark.parametrize("name", ["cifar_groupnet20_k4", "cifar_abcnet20_m3n3"])
def test_cifar_baselines_run_forward_and_backward_in_every_stage(name):
    torch.manual_seed(0)
    model = create_model(name)
    x, y = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
    for stage in (1, 2, 3):
        set_binary_stage(model, stage)
        model.zero_grad()
        out = model(x)
        assert out.shape == (4, 10)
        torch.nn.functional.cross_entropy(out, y).backward()
        assert all(m.weight.grad is not None for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    assert all(p.grad is not None for p in model.parameters())  # stage 3: shifts and scales too


def _copy_bi_real_into_groupnet(groupnet, bireal) -> None:
    units = [u for stage in bireal.stages for u in stage]
    groupnet.stem.load_state_dict(bireal.stem.state_dict())
    groupnet.fc.load_state_dict(bireal.fc.state_dict())
    for i, block in enumerate(groupnet.blocks):
        first, second = units[2 * i], units[2 * i + 1]
        block.conv1.load_state_dict(first.conv.state_dict())
        block.conv2.load_state_dict(second.conv.state_dict())
        block.bn1.load_state_dict(first.bn.state_dict())
        block.bn2.load_state_dict(second.bn.state_dict())
        block.shortcut.load_state_dict(first.shortcut.state_dict())


@pytest.mark.parametrize("stage", [1, 2, 3])
def test_groupnet_with_one_branch_is_bi_real_20(stage):
    torch.manual_seed(0)
    bireal, groupnet = create_model("cifar_birealnet20"), cifar_groupnet20(10, branches=1)
    _copy_bi_real_into_groupnet(groupnet, bireal)
    x = torch.randn(3, 3, 32, 32)
    for m in (bireal, groupnet):
        set_binary_stage(m, stage)
    assert torch.equal(groupnet(x), bireal(x))


def test_soft_connections_change_the_output_and_learn():
    torch.manual_seed(0)
    plain, soft = cifar_groupnet20(10, branches=2), cifar_groupnet20(10, branches=2, soft=True)
    soft.load_state_dict(plain.state_dict(), strict=False)
    x = torch.randn(2, 3, 32, 32)
    assert not torch.allclose(plain(x), soft(x))
    soft(x).sum().backward()
    assert all(s.theta.grad is not None and s.theta.grad.abs().sum() > 0 for s in soft.soft)
