"""Quantizer facts that mutation testing (docs/MUTATION.md) found unpinned by tests/quant: exact scale and
zero point, ranges widened to contain 0, bits=32 as the identity, defaults, fixed grids, old state dicts."""

from __future__ import annotations

import pytest
import torch

from nascomp.errors import ConfigError
from nascomp.quant.quantizers import ActQuantizer, WeightQuantizer, check_bits, check_observer, qparams


def test_scale_and_zero_point_are_exact():
    scale, zero = qparams(torch.tensor(-1.0), torch.tensor(2.0), 4)
    assert scale.item() == pytest.approx(0.2) and zero.item() == 5.0  # 3 / (2^4 - 1), round(1 / 0.2)


def test_a_range_is_widened_to_contain_zero():
    scale, zero = qparams(torch.tensor(0.5), torch.tensor(2.55), 8)  # all positive: lo becomes 0
    assert scale.item() == pytest.approx(0.01) and zero.item() == 0.0
    scale, zero = qparams(torch.tensor(-2.55), torch.tensor(-0.5), 8)  # all negative: hi becomes 0
    assert scale.item() == pytest.approx(0.01) and zero.item() == 255.0


def test_error_messages_name_the_value_and_the_choices():
    with pytest.raises(ConfigError, match=r"^bits=9 is not supported; use 2..8, or 32"):
        check_bits(9)
    with pytest.raises(ConfigError, match=r"^unknown range estimator 'max'; choose one of minmax, ema, mse$"):
        check_observer("max")


def test_defaults_and_the_fresh_state():
    act, weight = ActQuantizer(4), WeightQuantizer(4, 3)
    assert act.observer == "ema" and weight.observer == "minmax"
    assert act.observing is False and act.lo.item() == 0.0 and act.hi.item() == 0.0
    x = torch.randn(50)
    assert torch.equal(act(x), x) and act.steps.item() == 0  # not observing, not initialised: identity


def test_32_bits_is_the_identity_and_observes_nothing():
    act = ActQuantizer(32, "minmax")
    act.observing = True
    x = torch.randn(100) * 3
    assert torch.equal(act(x), x) and act.steps.item() == 0
    w = torch.randn(4, 3, 3, 3)
    assert torch.equal(WeightQuantizer(32, 4)(w), w)


def test_an_observed_activation_is_quantized_on_its_grid():
    act = ActQuantizer(2, "minmax")
    act.observing = True
    x = torch.linspace(-1.0, 2.0, 31)
    y = act(x)
    assert act.steps.item() == 1 and not torch.equal(y, x)
    assert len(torch.unique(y)) <= 4


def test_a_fixed_grid_pins_each_channels_range_whatever_the_weights():
    wq = WeightQuantizer(2, 2)
    wq.fix_grid(torch.tensor([-1.0, -3.0]), torch.tensor([2.0, 6.0]))  # steps 1 and 3 (2 bits: 3 steps)
    w = torch.tensor([[-0.9, 0.4, 1.6, 5.0], [-2.0, 0.2, 4.0, 10.0]])
    expected = torch.tensor([[-1.0, 0.0, 2.0, 2.0], [-3.0, 0.0, 3.0, 6.0]])
    assert torch.allclose(wq(w), expected)


def test_a_student_saved_before_fixed_grids_loads_and_follows_its_weights():
    wq = WeightQuantizer(4, 3, "mse")
    state = {k: v for k, v in wq.state_dict().items() if k != "grid"}
    fresh = WeightQuantizer(4, 3, "mse")
    fresh.load_state_dict(state)  # strict: an absent grid is no missing key
    assert torch.isnan(fresh.grid).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (device placement of the grid tensors)")
def test_quantizers_give_the_cpu_results_on_a_gpu():
    from nascomp.quant.quantizers import fake_quantize, mse_clip_ratio

    x = torch.randn(64, 9, generator=torch.Generator().manual_seed(0))
    lo, hi = x.min(1, keepdim=True).values, x.max(1, keepdim=True).values
    cuda = [t.cuda() for t in (x, lo, hi)]
    assert torch.allclose(fake_quantize(*cuda, 4).cpu(), fake_quantize(x, lo, hi, 4), atol=1e-6)
    ratio = mse_clip_ratio(*cuda, 4, dim=0)
    assert ratio.device.type == "cuda" and torch.equal(ratio.cpu(), mse_clip_ratio(x, lo, hi, 4, dim=0))
