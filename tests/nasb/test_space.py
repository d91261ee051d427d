"""The NASB space, its ops and cells: declaration, shapes, exact dilated convs, supernet and derived network."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nascomp.errors import ConfigError
from nascomp.models import ModelCfg
from nascomp.nas import MixedOp, derive, validate
from nascomp.nasb import NASB_SPACE, NASBNetwork, Supernet, load_genotype, network_cost
from nascomp.nasb.macro import ChannelResize, cell_plan
from nascomp.nasb.ops import NASB_OPS, BinaryConvOp, Dilated2
from nascomp.nasb.space import OPS
from nascomp.quant.binary import BinaryConv2d, set_binary_stage
from nascomp.quant.cost import count_cost

CIFAR = ModelCfg(10, (3, 32, 32), (0.5,) * 3, (0.25,) * 3)


def _sign(x: torch.Tensor) -> torch.Tensor:
    return torch.where(x >= 0, 1.0, -1.0)


def _genotype(seed: int = 0):
    torch.manual_seed(seed)
    return derive(NASB_SPACE, NASB_SPACE.arch_params(init_std=1.0))


def test_space_declares_two_darts_cells_of_14_edges_over_the_eight_ops():
    assert list(NASB_SPACE.kinds) == ["normal", "reduce"]
    for kind in NASB_SPACE.kinds.values():
        assert kind.ops == OPS and kind.rule == "top2_no_none" and len(kind.edges) == 14
        assert kind.inputs["n3"] == ["c_k-2", "c_k-1", "n0", "n1", "n2"] and kind.concat == ["n0", "n1", "n2", "n3"]
    assert set(OPS) <= set(NASB_OPS.names()) and "none" in OPS and "skip_connect" in OPS


def test_cell_plan_puts_reductions_at_a_third_and_two_thirds_and_doubles_width():
    plan = cell_plan(16, 8, 4)
    assert [s.index for s in plan if s.reduction] == [2, 5]
    assert [s.c for s in plan] == [16, 16, 32, 32, 32, 64, 64, 64]
    assert plan[3].reduction_prev and plan[3].c_prev_prev == 64 and plan[3].c_prev == 128


def test_supernet_shapes_for_32x32_inputs():
    net = Supernet(3, 10, channels=4, layers=8)
    outs = []
    for cell in net.cells:
        cell.register_forward_hook(lambda m, args, out: outs.append(tuple(out.shape)))
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    sides = [32, 32, 16, 16, 16, 8, 8, 8]
    widths = [4 * c for c in (4, 4, 8, 8, 8, 16, 16, 16)]
    assert outs == [(2, w, s, s) for w, s in zip(widths, sides, strict=True)]
    assert all(isinstance(e, MixedOp) and e.candidates == OPS for c in net.cells for e in c.edges.values())
    assert {p.shape for p in net.arch.alphas()} == {torch.Size([14, 8])}


def test_gumbel_mixture_runs_one_op_per_edge():
    net = Supernet(1, 10, channels=4, layers=3)
    net.tau = 1.0
    calls = []
    for m in net.modules():
        if isinstance(m, MixedOp):
            for op in m.ops:
                op.register_forward_hook(lambda *_: calls.append(1))
    net(torch.randn(2, 1, 8, 8)).sum().backward()
    assert len(calls) == 3 * 14
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.arch.alphas())


@pytest.mark.parametrize("size", [(8, 8), (7, 9)])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("kernel", [3, 5])
def test_dilated2_equals_a_dilation_2_conv_of_the_binarized_operands(size, stride, kernel):
    torch.manual_seed(0)
    conv = BinaryConv2d(3, 5, kernel, 1, (kernel - 1) // 2, bias=False)
    x = torch.randn(2, 3, *size)
    w = _sign(conv.weight) * conv.weight.abs().mean((1, 2, 3), keepdim=True)
    expected = F.conv2d(_sign(x), w, stride=stride, padding=kernel - 1, dilation=2)
    torch.testing.assert_close(Dilated2(conv, stride)(x), expected, rtol=1e-5, atol=1e-5)


def test_binary_op_is_a_real_shortcut_plus_a_binary_conv_of_the_normalised_input():
    op = BinaryConvOp(4, 3, 1, 1, affine=True).eval()
    x = torch.randn(2, 4, 6, 6)
    with torch.no_grad():
        torch.testing.assert_close(op(x) - x, op.conv(op.bn(x)))
        op2 = BinaryConvOp(4, 3, 1, 2, affine=True).eval()
        torch.testing.assert_close(op2(x) - F.avg_pool2d(x, 2), op2.conv(op2.bn(x)))
    assert op.conv.binary_acts and op.conv.binary_weights


def test_channel_resize_averages_node_groups_or_repeats():
    x = torch.arange(8.0).view(1, 8, 1, 1)
    assert ChannelResize(8, 2)(x).flatten().tolist() == [3.0, 4.0]
    assert ChannelResize(2, 4)(x[:, :2]).flatten().tolist() == [0.0, 1.0, 0.0, 1.0]
    with pytest.raises(ConfigError, match="neither divides"):
        ChannelResize(6, 4)


def test_derived_network_keeps_two_edges_per_node_and_counts_binary_convs_as_bops():
    genotype = _genotype()
    validate(genotype, NASB_SPACE)
    net = NASBNetwork(genotype, 3, 10, channels=8, layers=5)
    assert all(len(cell.edges) == 8 for cell in net.cells)
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    report = network_cost(genotype, CIFAR, 8, 5)
    binary_rows = [r for r in report.layers if r.type == "BinaryConv2d"]
    assert binary_rows and report.bops == sum(r.macs for r in binary_rows)
    set_binary_stage(net, 1)
    assert count_cost(net, (3, 32, 32)).bops == 0
    assert sum(isinstance(m, nn.Linear) for m in net.modules()) == 1


def test_wider_derived_network_costs_more_ops():
    genotype = _genotype(1)
    ops = [network_cost(genotype, CIFAR, c, 5).ops for c in (4, 8, 16)]
    assert ops == sorted(ops) and ops[0] < ops[-1]


def test_unknown_op_in_a_genotype_file_is_a_config_error(tmp_path):
    data = _genotype().to_dict()
    data["edges"]["normal"][0]["op"] = "sep_conv_3x3"
    path = tmp_path / "genotype.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="unknown op 'sep_conv_3x3'"):
        load_genotype(tmp_path)
