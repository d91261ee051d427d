"""gumbel_hard: exact one-hot forward (so a MixedOp runs one op), softmax-relaxed gradient (GDAS)."""

from __future__ import annotations

import pytest
import torch

from nascomp.nas import MixedOp, gumbel_hard


def test_forward_is_exactly_one_hot_per_row():
    alpha = torch.randn(5, 7, requires_grad=True)
    w = gumbel_hard(alpha, tau=1.0, generator=torch.Generator().manual_seed(0))
    assert torch.count_nonzero(w, dim=1).tolist() == [1] * 5
    assert torch.allclose(w.max(1).values, torch.ones(5))


def test_samples_follow_the_softmax_of_alpha():
    alpha = torch.tensor([[0.0, 1.0, 2.0]])
    gen = torch.Generator().manual_seed(1)
    counts = sum(gumbel_hard(alpha, 1.0, gen).detach() for _ in range(4000))
    torch.testing.assert_close(counts[0] / 4000, torch.softmax(alpha[0], 0), atol=0.03, rtol=0)


def test_gradient_reaches_every_alpha_of_the_row_through_the_sampled_op(toy):
    model = toy.model()
    with torch.no_grad():
        model.arch["e"][:, toy.space.kinds["e"].ops.index("none")] = -30.0  # sample an op whose output moves
    w = gumbel_hard(model.arch["e"], tau=0.5, generator=torch.Generator().manual_seed(0))
    out = model.edges[0](toy.batches(1)[0], w[0])
    out.pow(2).mean().backward()
    grad = model.arch["e"].grad
    assert grad[0].abs().min() > 0 and torch.equal(grad[1], torch.zeros(4))


def test_mixed_op_runs_only_the_sampled_op():
    from torch import nn

    from nascomp.nas import OpRegistry

    calls = []
    reg = OpRegistry("count")
    for name in ("a", "b", "c"):
        reg.add(name, lambda name=name: _Tag(name, calls))
    op = MixedOp(["a", "b", "c"], reg)
    op(torch.ones(2), gumbel_hard(torch.zeros(3), 1.0))
    assert len(calls) == 1 and isinstance(op.ops[0], nn.Module)


class _Tag(torch.nn.Module):
    def __init__(self, name: str, calls: list):
        super().__init__()
        self.name, self.calls = name, calls

    def forward(self, x):
        self.calls.append(self.name)
        return x


def test_tau_must_be_positive():
    with pytest.raises(ValueError, match="tau"):
        gumbel_hard(torch.zeros(2, 3), 0.0)
