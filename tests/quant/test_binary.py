"""Binarizers (values and straight-through gradients), BinaryConv2d and the training stages."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from nascomp.errors import ConfigError
from nascomp.quant.binary import (
    BinaryActivation,
    BinaryConv2d,
    binarize_activation,
    binarize_weight,
    binary_stage,
    set_binary_stage,
)

floats = st.floats(-3.0, 3.0, allow_nan=False, width=32)
values = st.lists(floats, min_size=1, max_size=64)


def approx_sign_formula(v: float) -> float:
    """Bi-Real ApproxSign derivative, written piecewise as in the paper."""
    if -1.0 <= v < 0.0:
        return 2.0 + 2.0 * v
    if 0.0 <= v < 1.0:
        return 2.0 - 2.0 * v
    return 0.0


def clipped_formula(v: float) -> float:
    return 1.0 if abs(v) <= 1.0 else 0.0


def _grad_of(fn, x: torch.Tensor, upstream: torch.Tensor) -> torch.Tensor:
    x = x.clone().requires_grad_(True)
    fn(x).backward(upstream)
    return x.grad


@settings(max_examples=50, deadline=None)
@given(values)
def test_activation_sign_is_plus_minus_one_with_sign_zero_plus_one(xs):
    x = torch.tensor(xs)
    y = binarize_activation(x)
    assert set(y.unique().tolist()) <= {-1.0, 1.0}
    assert torch.equal(y, torch.where(x >= 0, 1.0, -1.0))


@pytest.mark.parametrize(("ste", "formula"), [("approx", approx_sign_formula), ("clipped", clipped_formula)])
@settings(max_examples=50, deadline=None)
@given(xs=values, seed=st.integers(0, 2**16))
def test_activation_gradient_matches_the_documented_ste(ste, formula, xs, seed):
    x = torch.tensor(xs)
    upstream = torch.randn(x.shape, generator=torch.Generator().manual_seed(seed))
    grad = _grad_of(lambda t: binarize_activation(t, ste), x, upstream)
    expected = upstream * torch.tensor([formula(v) for v in x.tolist()])
    torch.testing.assert_close(grad, expected)


@pytest.mark.parametrize(
    ("ste", "x", "g"),
    [
        ("approx", -1.0, 0.0),
        ("approx", -0.5, 1.0),
        ("approx", 0.0, 2.0),
        ("approx", 0.25, 1.5),
        ("approx", 1.0, 0.0),
        ("clipped", 1.0, 1.0),
        ("clipped", -1.0, 1.0),
        ("clipped", 1.01, 0.0),
    ],
)
def test_activation_gradient_at_landmarks(ste, x, g):
    assert _grad_of(lambda t: binarize_activation(t, ste), torch.tensor([x]), torch.ones(1)).item() == g


def test_unknown_ste_is_a_config_error():
    with pytest.raises(ConfigError, match="straight-through"):
        BinaryActivation("tanh")
    with pytest.raises(ConfigError):
        BinaryConv2d(2, 2, 3, ste="nope")


@settings(max_examples=30, deadline=None)
@given(cout=st.integers(1, 4), cin=st.integers(1, 3), k=st.sampled_from([1, 3]), seed=st.integers(0, 2**16))
def test_weight_binarizer_is_sign_times_mean_abs_per_output_channel(cout, cin, k, seed):
    w = torch.randn(cout, cin, k, k, generator=torch.Generator().manual_seed(seed)) * 1.5
    wb = binarize_weight(w)
    for c in range(cout):
        alpha = w[c].abs().mean()
        expected = torch.where(w[c] >= 0, alpha, -alpha)
        torch.testing.assert_close(wb[c], expected)
        assert wb[c].abs().unique().numel() == 1


def test_weight_binarizer_maps_zero_to_plus_alpha():
    w = torch.tensor([[0.0, -2.0, 1.0]])
    assert binarize_weight(w).tolist() == [[1.0, -1.0, 1.0]]


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**16))
def test_weight_gradient_is_clipped_straight_through(seed):
    gen = torch.Generator().manual_seed(seed)
    w = torch.randn(3, 2, 3, 3, generator=gen) * 1.5
    upstream = torch.randn(w.shape, generator=gen)
    grad = _grad_of(binarize_weight, w, upstream)
    torch.testing.assert_close(grad, upstream * (w.abs() <= 1).float())


def test_binary_conv_equals_conv_of_explicitly_binarized_operands():
    torch.manual_seed(0)
    conv = BinaryConv2d(4, 6, 3, stride=2, padding=1, bias=True)
    x = torch.randn(2, 4, 9, 9)
    xb = torch.where(x >= 0, 1.0, -1.0)
    alpha = conv.weight.abs().mean(dim=(1, 2, 3), keepdim=True)
    wb = torch.where(conv.weight >= 0, alpha, -alpha)
    expected = F.conv2d(xb, wb, conv.bias, stride=2, padding=1)
    torch.testing.assert_close(conv(x), expected)
    assert (conv.wbits, conv.abits) == (1, 1)


def test_stages_switch_operands_bits_and_outputs():
    torch.manual_seed(0)
    model = nn.Sequential(BinaryConv2d(3, 5, 3, padding=1), nn.ReLU(), BinaryConv2d(5, 2, 1))
    plain = nn.Conv2d(3, 5, 3, padding=1)
    plain.load_state_dict(model[0].state_dict())
    x = torch.randn(1, 3, 6, 6)

    outs, bits = {}, {}
    for stage in (1, 2, 3):
        assert set_binary_stage(model, stage) == 2
        assert binary_stage(model) == stage
        outs[stage] = model[0](x)
        bits[stage] = [(m.wbits, m.abits) for m in model if isinstance(m, BinaryConv2d)]

    assert bits == {1: [(32, 32)] * 2, 2: [(32, 1)] * 2, 3: [(1, 1)] * 2}
    torch.testing.assert_close(outs[1], plain(x))
    xb = torch.where(x >= 0, 1.0, -1.0)
    torch.testing.assert_close(outs[2], plain(xb))
    assert not torch.allclose(outs[2], outs[3])


def test_set_binary_stage_rejects_unknown_stage_and_reports_mixed_stages():
    model = nn.Sequential(BinaryConv2d(2, 2, 3), BinaryConv2d(2, 2, 3))
    with pytest.raises(ConfigError, match="stage"):
        set_binary_stage(model, 4)
    model[0].binary_weights = False
    with pytest.raises(ConfigError, match="mixed"):
        binary_stage(model)
    assert binary_stage(nn.Conv2d(1, 1, 1)) is None


def test_binary_conv_passes_gradient_to_weights_and_input_in_stage3():
    torch.manual_seed(0)
    conv = BinaryConv2d(3, 4, 3, padding=1)
    x = (torch.rand(2, 3, 5, 5) - 0.5).requires_grad_(True)
    conv(x).square().sum().backward()
    assert conv.weight.grad.abs().sum() > 0 and x.grad.abs().sum() > 0
