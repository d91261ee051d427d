"""MixedOp, ArchParams and the weight / alpha parameter split."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nascomp.errors import ConfigError
from nascomp.nas import ArchParams, MixedOp, OpRegistry, split_parameters


class Counting(nn.Module):
    """Scales its input by ``k`` and counts its calls; also records the extra forward arguments."""

    def __init__(self, k: float) -> None:
        super().__init__()
        self.k = k
        self.calls = 0
        self.extra: tuple = ()

    def forward(self, x: torch.Tensor, *args: object) -> torch.Tensor:
        self.calls += 1
        self.extra = args
        return self.k * x


def counting_registry() -> OpRegistry:
    reg = OpRegistry("count")
    for name, k in (("a", 1.0), ("b", 2.0), ("c", -3.0)):
        reg.add(name, lambda k=k: Counting(k))
    return reg


def test_one_hot_weights_equal_the_chosen_op_and_run_only_it() -> None:
    mixed = MixedOp(["a", "b", "c"], counting_registry())
    x = torch.randn(4, 5)
    out = mixed(x, torch.tensor([0.0, 1.0, 0.0]))
    assert torch.equal(out, mixed.op("b")(x))
    assert [op.calls for op in mixed.ops] == [0, 2, 0]  # one in the mixture, one for the reference


def test_soft_weights_give_the_weighted_sum_of_all_ops() -> None:
    mixed = MixedOp(["a", "b", "c"], counting_registry())
    x = torch.randn(4, 5)
    w = torch.softmax(torch.tensor([0.1, -0.4, 0.7]), dim=0)
    assert torch.allclose(mixed(x, w), (w[0] * 1 + w[1] * 2 + w[2] * -3) * x)
    assert all(op.calls == 1 for op in mixed.ops)


def test_extra_forward_arguments_reach_every_op() -> None:
    mixed = MixedOp(["a", "b"], counting_registry())
    labels = torch.tensor([1, 0])
    mixed(torch.randn(2, 3), torch.tensor([0.5, 0.5]), labels)
    assert all(op.extra[0] is labels for op in mixed.ops)


def test_op_kwargs_are_passed_to_every_factory() -> None:
    reg = OpRegistry("lin")
    reg.add("lin", lambda dim: nn.Linear(dim, dim))
    reg.add("lin2", lambda dim: nn.Sequential(nn.Linear(dim, dim), nn.Linear(dim, dim)))
    mixed = MixedOp(["lin", "lin2"], reg, dim=7)
    assert mixed(torch.randn(2, 7), torch.tensor([0.3, 0.7])).shape == (2, 7)


def test_wrong_weight_length_and_unknown_candidate_are_refused() -> None:
    mixed = MixedOp(["a", "b"], counting_registry())
    with pytest.raises(ValueError, match="shape"):
        mixed(torch.randn(2, 3), torch.tensor([1.0, 0.0, 0.0]))
    with pytest.raises(ConfigError, match="unknown op 'z'"):
        MixedOp(["a", "z"], counting_registry())


def test_arch_params_start_near_uniform_and_softmax_rows_sum_to_one() -> None:
    arch = ArchParams(
        {"up": (2, 2), "normal": (5, 7), "cross": (6, 3)}, generator=torch.Generator().manual_seed(0)
    )
    assert arch.kinds == ["up", "normal", "cross"]
    assert arch.shapes() == {"up": (2, 2), "normal": (5, 7), "cross": (6, 3)}
    for kind in arch.kinds:
        w = arch.weights(kind)
        assert torch.allclose(w.sum(-1), torch.ones(w.shape[0]))
        assert arch[kind].abs().max() < 1e-2
        assert torch.allclose(w, torch.full_like(w, 1 / w.shape[1]), atol=1e-2)
    assert [p.shape for p in arch.alphas()] == [(2, 2), (5, 7), (6, 3)]
    assert all(isinstance(p, nn.Parameter) for p in arch.alphas())


class Supernet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Linear(3, 3)
        self.arch = ArchParams({"e": (1, 2)})
        self.edge = MixedOp(["a", "b"], counting_registry())
        self.head = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))


def test_split_parameters_gives_disjoint_sets_covering_all_parameters() -> None:
    net = Supernet()
    weights, arch = split_parameters(net)
    ids_w, ids_a = {id(p) for p in weights}, {id(p) for p in arch}
    assert not ids_w & ids_a
    assert ids_w | ids_a == {id(p) for p in net.parameters()}
    assert ids_a == {id(p) for p in net.arch.alphas()}
    torch.optim.SGD([{"params": weights}, {"params": arch}], lr=0.1)  # no parameter in two groups


def test_split_parameters_with_arch_params_outside_the_model() -> None:
    net = nn.Linear(3, 3)
    arch = ArchParams({"e": (2, 2)})
    weights, alphas = split_parameters(net, arch)
    assert {id(p) for p in weights} == {id(p) for p in net.parameters()}
    assert {id(p) for p in alphas} == {id(p) for p in arch.alphas()}
    with pytest.raises(ValueError, match="no ArchParams"):
        split_parameters(net)
