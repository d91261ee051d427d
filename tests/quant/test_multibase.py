"""Multiple binary bases: one base reduces to the single-base layer, gradients reach the scales and shifts,
the weight bases and least-squares alphas are the paper's, and the cost grows with the number of bases."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nascomp.errors import ConfigError
from nascomp.quant.binary import BinaryConv2d, set_binary_stage
from nascomp.quant.cost import count_cost
from nascomp.quant.multibase import (
    ABCConv2d,
    Bases,
    BranchSum,
    GroupNetConv2d,
    SoftConnection,
    abc_weight_bases,
    least_squares_alphas,
    parse_bases,
)


def _pair(other: BinaryConv2d) -> BinaryConv2d:
    single = BinaryConv2d(4, 6, 3, 1, 1, bias=False)
    with torch.no_grad():
        single.weight.copy_(other.weight[: single.out_channels])
    return single


@pytest.mark.parametrize("stage", [1, 2, 3])
def test_abc_with_one_base_each_is_the_single_base_layer(stage):
    torch.manual_seed(0)
    abc = ABCConv2d(4, 6, 3, 1, 1, bias=False, weight_bases=1, act_bases=1)
    single = _pair(abc)
    for m in (abc, single):
        set_binary_stage(m, stage)
    x = torch.randn(2, 4, 5, 5)
    assert torch.equal(abc(x), single(x))


@pytest.mark.parametrize("stage", [1, 2, 3])
def test_groupnet_with_one_branch_is_the_single_base_layer(stage):
    torch.manual_seed(0)
    group = GroupNetConv2d(4, 6, 3, 1, 1, bias=False, branches=1)
    single = _pair(group)
    for m in (group, single):
        set_binary_stage(m, stage)
    x = torch.randn(2, 4, 5, 5)
    assert torch.equal(BranchSum(1)(group(x)), single(x))


def test_groupnet_branch_k_is_a_single_base_conv_of_its_own_input_slice():
    torch.manual_seed(0)
    group = GroupNetConv2d(4, 6, 3, 1, 1, bias=False, branches=3)
    x = torch.randn(2, 12, 5, 5)
    y = group(x)
    for k in range(3):
        single = BinaryConv2d(4, 6, 3, 1, 1, bias=False)
        with torch.no_grad():
            single.weight.copy_(group.weight[6 * k : 6 * (k + 1)])
        torch.testing.assert_close(y[:, 6 * k : 6 * (k + 1)], single(x[:, 4 * k : 4 * (k + 1)]))
    shared = group(x[:, :4])  # every branch reads the same input
    for k in range(3):
        single = BinaryConv2d(4, 6, 3, 1, 1, bias=False)
        with torch.no_grad():
            single.weight.copy_(group.weight[6 * k : 6 * (k + 1)])
        torch.testing.assert_close(shared[:, 6 * k : 6 * (k + 1)], single(x[:, :4]))


def test_abc_weight_bases_follow_the_shifted_signs_and_alphas_are_least_squares():
    torch.manual_seed(0)
    w = torch.randn(3, 2, 3, 3)
    bases = abc_weight_bases(w, 3)
    c = w[1]
    mean, std = c.mean(), c.std()
    for i, u in enumerate((-1.0, 0.0, 1.0)):
        assert torch.equal(bases[i, 1], torch.where(c - mean + u * std >= 0, 1.0, -1.0))
    alphas = least_squares_alphas(w, bases)
    design = bases[:, 1].reshape(3, -1).T.double()
    expected = torch.linalg.lstsq(design, c.reshape(-1, 1).double()).solution.squeeze(1)
    torch.testing.assert_close(alphas[:, 1].double(), expected, atol=1e-4, rtol=1e-4)
    one = least_squares_alphas(w, abc_weight_bases(w, 1))
    torch.testing.assert_close(one[0], w.abs().mean(dim=(1, 2, 3)))


def test_alphas_of_linearly_dependent_bases_are_finite_and_still_reconstruct_the_weight():
    # a two-valued channel: sign(x - std) = -1 and sign(x + std) = +1 everywhere, so B_1 = -B_3 (singular Gram)
    torch.manual_seed(0)
    w = torch.cat([torch.tensor([0.5, -0.5] * 72).view(1, 16, 3, 3), torch.randn(1, 16, 3, 3)])
    bases = abc_weight_bases(w, 3)
    assert torch.equal(bases[0, 0], -bases[2, 0])
    alphas = least_squares_alphas(w, bases)
    assert torch.isfinite(alphas).all()
    approx = (alphas[..., None, None, None] * bases).sum(0)
    torch.testing.assert_close(approx[0], w[0])  # sign(x) alone is exact for this channel
    regular = least_squares_alphas(w[1:], bases[:, 1:])  # the other channel is solved as before
    torch.testing.assert_close(alphas[:, 1:], regular)


def test_three_weight_bases_approximate_the_weight_better_than_one():
    torch.manual_seed(0)
    w = torch.randn(8, 4, 3, 3)
    errors = []
    for m in (1, 2, 3, 5):
        bases = abc_weight_bases(w, m)
        alphas = least_squares_alphas(w, bases)
        errors.append(((alphas[..., None, None, None] * bases).sum(0) - w).norm().item())
    assert errors == sorted(errors, reverse=True) and errors[-1] < 0.5 * errors[0]


def test_abc_activation_bases_are_shifted_signs_with_learned_scales():
    abc = ABCConv2d(1, 1, 1, bias=False, weight_bases=1, act_bases=3)
    x = torch.tensor([-1.0, -0.5, 0.1, 0.7, 2.0]).view(1, 1, 1, 5)
    shifts = torch.tensor([-2 / 3, 0.0, 2 / 3])
    expected = sum(torch.where(x - s >= 0, 1.0, -1.0) for s in shifts) / 3
    torch.testing.assert_close(abc.binary_input(x), expected)


def test_gradients_reach_abc_shifts_and_scales_and_groupnet_aggregation_and_gates():
    torch.manual_seed(0)
    abc = ABCConv2d(4, 6, 3, 1, 1, bias=False, weight_bases=3, act_bases=3)
    abc(torch.randn(2, 4, 5, 5) * 0.5).square().sum().backward()
    for p in (abc.shifts, abc.betas, abc.weight):
        assert p.grad is not None and p.grad.abs().sum() > 0
    group, agg, soft = GroupNetConv2d(4, 6, 3, 1, 1, bias=False, branches=3), BranchSum(3), SoftConnection(3)
    x = torch.randn(2, 4, 5, 5)
    branches = torch.randn(2, 12, 5, 5)
    mixed = soft(branches, x)
    agg(group(mixed)).square().sum().backward()
    for p in (group.weight, agg.scales, soft.theta):
        assert p.grad is not None and p.grad.abs().sum() > 0


def test_soft_connection_is_an_even_mix_at_init():
    soft = SoftConnection(2)
    branches, aggregate = torch.randn(1, 6, 2, 2), torch.randn(1, 3, 2, 2)
    out = soft(branches, aggregate)
    torch.testing.assert_close(out[:, :3], (branches[:, :3] + aggregate) / 2)
    torch.testing.assert_close(out[:, 3:], (branches[:, 3:] + aggregate) / 2)


def test_cost_of_k_branches_and_m_by_n_bases_is_that_many_times_one_binary_conv():
    one = count_cost(nn.Sequential(BinaryConv2d(8, 8, 3, 1, 1, bias=False)), (8, 8, 8)).bops
    group = count_cost(nn.Sequential(GroupNetConv2d(8, 8, 3, 1, 1, bias=False, branches=4)), (8, 8, 8))
    abc_net = nn.Sequential(ABCConv2d(8, 8, 3, 1, 1, bias=False, weight_bases=3, act_bases=2))
    abc = count_cost(abc_net, (8, 8, 8))
    assert one == 8 * 8 * 9 * 64
    assert group.bops == 4 * one and group.flops == 0
    assert abc.bops == 6 * one and abc.layers[0].convs == 6 and abc.flops == 0
    assert abc.size_bits == 3 * 8 * 8 * 9 + 32 * 2 * 2  # M = 3 bit planes per weight, 32-bit shifts and scales
    set_binary_stage(abc_net, 2)  # real weights: N activation bases, one weight base, 32-bit weights
    assert count_cost(abc_net, (8, 8, 8)).bops == 2 * 32 * one
    set_binary_stage(abc_net, 1)
    assert count_cost(abc_net, (8, 8, 8)).flops == one


@pytest.mark.parametrize("text, bases", [
    ("single", Bases()), (None, Bases()), ("groupnet:4", Bases("groupnet", branches=4)),
    ("ABCNET:3x2", Bases("abcnet", weights=3, acts=2)),
])
def test_bases_parse_and_print_back(text, bases):
    assert parse_bases(text) == bases
    assert parse_bases(str(bases)) == bases


@pytest.mark.parametrize("text, message", [
    ("groupnet:0", "at least 1"), ("abcnet:3x0", "at least 1"), ("xnor:2", "unknown base scheme 'xnor'"),
    ("groupnet", "bad bases"), ("abcnet:3", "bad bases"),
])
def test_bad_bases_are_one_line_config_errors(text, message):
    with pytest.raises(ConfigError, match=message) as err:
        parse_bases(text)
    assert "\n" not in str(err.value)
