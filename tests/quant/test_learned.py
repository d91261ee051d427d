"""LSQ step sizes and AdaRound rounding: the formulas of the papers, checked on hand-computed cases."""

import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from nascomp.quant.learned import AdaRoundQuantizer, LSQQuantizer, beta_schedule, rectified_sigmoid
from nascomp.quant.quantizers import qparams


def test_lsq_forward_and_gradients_are_those_of_eq_3_with_the_gradient_scale():
    # 3 bits (q_max 7), s = 0.5, z = 2: Q_N = 2, Q_P = 5; v/s = 0.6, -10, 20, 2.52
    q = LSQQuantizer(torch.tensor(0.5), torch.tensor(2.0), bits=3, numel=4)
    v = torch.tensor([0.3, -5.0, 10.0, 1.26], requires_grad=True)
    out = q(v)
    assert torch.allclose(out, torch.tensor([0.5, -1.0, 2.5, 1.5]))
    out.sum().backward()
    # dQ/ds per element: round(v/s) - v/s = 0.4 | -Q_N = -2 | Q_P = 5 | 3 - 2.52 = 0.48; scaled by 1/sqrt(N Q_P)
    assert q.grad_scale == 1 / math.sqrt(4 * 5)
    assert torch.allclose(q.step.grad, torch.tensor((0.4 - 2 + 5 + 0.48) / math.sqrt(20)))
    assert torch.equal(v.grad, torch.tensor([1.0, 0.0, 0.0, 1.0]))  # straight through inside, 0 when clipped


def test_lsq_per_channel_steps_get_their_own_gradients():
    steps, zero = torch.tensor([[0.5], [1.0]]), torch.tensor([[2.0], [2.0]])
    q = LSQQuantizer(steps, zero, bits=3, numel=2)
    v = torch.tensor([[0.3, 1.26], [0.3, 1.26]])
    q(v).sum().backward()
    expected = torch.tensor([[0.4 + 0.48], [(0 - 0.3) + (1 - 1.26)]]) / math.sqrt(2 * 5)
    assert torch.allclose(q.step.grad, expected)


def test_lsq_starts_on_the_calibrated_grid():
    lo, hi = torch.tensor(-1.0), torch.tensor(3.0)
    q = LSQQuantizer.from_range(lo, hi, bits=4, numel=10)
    scale, zero = qparams(lo, hi, 4)
    assert torch.equal(q.step.data, scale) and torch.equal(q.zero, zero)


def _weights(seed: int, shape=(4, 3, 3, 3)):
    w = torch.randn(*shape, generator=torch.Generator().manual_seed(seed))
    lo, hi = w.flatten(1).min(1).values, w.flatten(1).max(1).values
    return w, *qparams(lo, hi, 4)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_adaround_starts_at_the_float_weights_and_ends_on_the_grid_within_one_step_of_rounding(seed):
    w, scale, zero = _weights(seed)
    q = AdaRoundQuantizer(w, scale, zero, bits=4)
    lo, hi = -q.zero * q.scale, (15 - q.zero) * q.scale
    inside = (w >= lo) & (w <= hi)  # the grid's range (z is rounded, so the extreme weights may fall just outside)
    assert inside.float().mean() > 0.9
    err = (q() - w).abs() / q.scale
    assert err[inside].max() < 1e-3  # soft rounding = the float weight at the start
    with torch.no_grad():
        q.v.add_(torch.randn_like(q.v) * 3)  # any learned rounding
    q.hard = True
    ints = q.integers()
    assert torch.equal(ints, ints.round()) and ints.min() >= 0 and ints.max() <= 15
    nearest = torch.clamp(torch.round(w / q.scale) + q.zero, 0, 15)
    assert (ints - nearest).abs().max() <= 1


def test_adaround_regulariser_is_zero_at_hard_rounding_and_largest_halfway():
    w, scale, zero = _weights(0)
    q = AdaRoundQuantizer(w, scale, zero, bits=4)
    with torch.no_grad():
        q.v.fill_(10.0)
    assert q.regulariser(2.0).item() == 0.0  # h = 1 everywhere: rounding decided
    with torch.no_grad():
        q.v.fill_(-math.log((1.1 + 0.1) / (0.5 + 0.1) - 1))  # h(V) = 0.5
    assert torch.allclose(rectified_sigmoid(q.v), torch.full_like(q.v, 0.5))
    assert torch.isclose(q.regulariser(2.0), torch.tensor(float(q.v.numel())))


def test_beta_is_off_in_the_warm_up_then_anneals_from_20_to_2():
    assert beta_schedule(199, 1000) is None
    assert beta_schedule(200, 1000) == 20.0 and beta_schedule(1000, 1000) == 2.0
    assert 2.0 < beta_schedule(600, 1000) < 20.0
