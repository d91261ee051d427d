import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from nascomp.errors import ConfigError
from nascomp.quant import ActQuantizer, fake_quantize, qparams, quantize_model
from nascomp.quant.quantizers import WeightQuantizer, check_bits, mse_clip_ratio

bits_st = st.sampled_from([2, 3, 4, 5, 6, 7, 8])


def _case(seed: int, lo: float, width: float, n: int = 256):
    g = torch.Generator().manual_seed(seed)
    lo_t, hi_t = torch.tensor(lo), torch.tensor(lo + width)
    x = torch.rand(n, generator=g) * (hi_t - lo_t) + lo_t
    return x, lo_t, hi_t


@settings(max_examples=60, deadline=None)
@given(bits=bits_st, seed=st.integers(0, 10_000), lo=st.floats(-10, 0), width=st.floats(0.01, 20))
def test_fake_quantize_values_lie_on_the_grid(bits, seed, lo, width):
    x, lo_t, hi_t = _case(seed, lo, width)
    scale, zero = qparams(lo_t, hi_t, bits)
    q = fake_quantize(x, lo_t, hi_t, bits) / scale + zero
    assert torch.allclose(q, q.round(), atol=1e-3)
    assert q.min() >= -1e-3 and q.max() <= 2**bits - 1 + 1e-3


@settings(max_examples=60, deadline=None)
@given(bits=bits_st, seed=st.integers(0, 10_000), lo=st.floats(-10, 0), width=st.floats(0.01, 20))
def test_error_inside_the_range_is_at_most_half_a_step(bits, seed, lo, width):
    x, lo_t, hi_t = _case(seed, lo, width)
    scale, _ = qparams(lo_t, hi_t, bits)
    err = (fake_quantize(x, lo_t, hi_t, bits) - x).abs()
    assert err.max() <= scale / 2 + 1e-5 * (1 + x.abs().max())


@settings(max_examples=40, deadline=None)
@given(bits=bits_st, seed=st.integers(0, 10_000), lo=st.floats(-10, 0), width=st.floats(0.01, 20))
def test_quantization_is_idempotent(bits, seed, lo, width):
    x, lo_t, hi_t = _case(seed, lo, width)
    once = fake_quantize(x, lo_t, hi_t, bits)
    assert torch.allclose(fake_quantize(once, lo_t, hi_t, bits), once, atol=1e-5)


@settings(max_examples=40, deadline=None)
@given(bits=bits_st, seed=st.integers(0, 10_000))
def test_ste_gradient_is_one_inside_and_zero_outside_the_range(bits, seed):
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(200, generator=g) * 3).requires_grad_(True)
    lo, hi = torch.tensor(-1.0), torch.tensor(2.0)
    fake_quantize(x, lo, hi, bits).sum().backward()
    scale, zero = qparams(lo, hi, bits)
    q = torch.round(x.detach() / scale) + zero
    inside = (q >= 0) & (q <= 2**bits - 1)
    assert torch.equal(x.grad, inside.float())


def test_zero_is_exactly_representable():
    out = fake_quantize(torch.zeros(3), torch.tensor(-0.37), torch.tensor(1.91), 4)
    assert torch.equal(out, torch.zeros(3))


@pytest.mark.parametrize("bits", [1, 9, 16, 0])
def test_unsupported_bits_are_a_config_error(bits):
    with pytest.raises(ConfigError, match="2..8, or 32"):
        check_bits(bits)


def test_ema_range_is_bias_corrected_and_converges_to_the_data_range():
    q = ActQuantizer(4, "ema")
    q.observing = True
    for step in range(50):
        x = torch.linspace(0.0, 3.0, 1000)
        q(x)
        # with constant batches the corrected EMA equals the batch range from the first step on
        assert abs(q.hi.item() - 3.0) < 1e-4, step
        assert abs(q.lo.item()) < 1e-6


def test_ema_tracks_a_changing_range_without_blowing_up():
    q = ActQuantizer(4, "ema")
    q.observing = True
    highs = []
    for step in range(60):
        q(torch.tensor([0.0, 1.0 + (step >= 10)]))  # the range grows from 1 to 2 at step 10
        highs.append(q.hi.item())
    assert max(highs) <= 2.0 + 1e-6  # never beyond the largest range seen (the defective EMA blew up)
    assert abs(highs[-1] - 2.0) < 0.01


def test_minmax_observer_keeps_the_extremes_and_freeze_stops_updates():
    q = ActQuantizer(8, "minmax")
    q.observing = True
    q(torch.tensor([-1.0, 2.0]))
    q(torch.tensor([-0.5, 3.0]))
    q.freeze()
    q(torch.tensor([-9.0, 9.0]))
    assert (q.lo.item(), q.hi.item()) == (-1.0, 3.0)


def test_mse_observer_clips_a_long_tail():
    torch.manual_seed(0)
    q = ActQuantizer(4, "mse")
    q.observing = True
    x = torch.cat([torch.rand(100_000), torch.tensor([20.0])])  # one outlier
    q(x)
    q.freeze()
    assert q.hi.item() < 5.0
    assert (q(x[:-1]) - x[:-1]).pow(2).mean() < (fake_quantize(x[:-1], torch.tensor(0.0), torch.tensor(20.0), 4) - x[:-1]).pow(2).mean()


def test_mse_clip_ratio_per_channel_never_worse_than_minmax():
    torch.manual_seed(0)
    w = torch.randn(8, 16, 3, 3)
    w[0, 0, 0, 0] = 8.0
    q = WeightQuantizer(4, 8, "mse")
    plain = (WeightQuantizer(4, 8, "minmax")(w) - w).pow(2).flatten(1).mean(1)
    q.calibrate(w)
    clipped = (q(w) - w).pow(2).flatten(1).mean(1)
    assert (clipped <= plain + 1e-8).all() and q.clip_ratio[0] < 1.0
    lo, hi = w.flatten(1).min(1).values.view(-1, 1, 1, 1), w.flatten(1).max(1).values.view(-1, 1, 1, 1)
    assert torch.equal(mse_clip_ratio(w, lo, hi, 4, dim=0), q.clip_ratio)


def test_quantize_model_swaps_every_layer_and_keeps_the_image_in_float(demo_teacher):
    student = quantize_model(demo_teacher, 4, 3)
    layers = [m for m in student.modules() if hasattr(m, "wbits")]
    assert len(layers) == 4 and all(m.wbits == 4 for m in layers)
    assert [m.abits for m in layers] == [32, 3, 3, 3]
    assert not any(type(m) in (torch.nn.Conv2d, torch.nn.Linear) for m in student.modules())
    assert demo_teacher.features[0].__class__ is torch.nn.Conv2d  # the original is untouched


def test_32_bits_is_the_identity(demo_teacher):
    student = quantize_model(demo_teacher, 32, 32).eval()
    x = torch.randn(4, 1, 8, 8)
    assert torch.allclose(student(x), demo_teacher(x), atol=1e-6)


def test_quantize_model_puts_the_quantizers_on_the_models_device():
    """A model already on a GPU gets quantizers on the GPU (``meta`` stands in for it on a CPU machine)."""
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4, 2)).to("meta")
    student = quantize_model(model, 4, 4, "mse", "mse")
    assert {t.device.type for t in [*student.parameters(), *student.buffers()]} == {"meta"}
