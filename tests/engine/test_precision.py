"""engine.precision: resolving fp32/bf16/auto, the autocast of the generator step, channels-last, the env switch."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nascomp.engine import precision as prec
from nascomp.engine.precision import Precision, parse, resolve_precision, to_channels_last
from nascomp.errors import ConfigError
from nascomp.recon import BNStatistics, GDFQGenerator, freeze_teacher, generator_step


def test_resolve_and_parse(monkeypatch):
    assert resolve_precision("fp32") == "fp32" and resolve_precision("bf16") == "bf16"
    monkeypatch.setattr(prec, "bf16_native", lambda device="cpu": True)
    assert resolve_precision("auto") == "bf16"
    monkeypatch.setattr(prec, "bf16_native", lambda device="cpu": False)
    assert resolve_precision("auto") == "fp32"
    assert parse("bf16+cl") == Precision("bf16", True) and str(parse("BF16+CL")) == "bf16+cl"
    assert parse("fp32") == Precision() and parse("") == Precision()
    with pytest.raises(ConfigError, match="fp16"):
        resolve_precision("fp16")
    with pytest.raises(ConfigError, match=r"\+cl"):
        parse("bf16+nhwc")


def test_bf16_native_reads_the_cpu_capabilities(monkeypatch):
    for caps, expected in (({"amx_bf16": True}, True), ({"avx512_bf16": True}, True), ({"avx2": True}, False)):
        monkeypatch.setattr(torch.cpu, "get_capabilities", lambda caps=caps: caps)
        assert prec.bf16_native("cpu") is expected


def test_autocast_casts_convs_only_under_bf16_and_fp32_region_undoes_it():
    conv, x = nn.Conv2d(3, 4, 3), torch.randn(2, 3, 8, 8)
    with Precision("fp32").autocast():
        assert conv(x).dtype == torch.float32
    with Precision("bf16").autocast():
        assert conv(x).dtype == torch.bfloat16
        with prec.fp32():
            assert conv(x).dtype == torch.float32


def test_channels_last_changes_strides_not_values():
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 8, 3)
    x = torch.randn(2, 3, 8, 8)
    ref = conv(x)
    to_channels_last(conv)
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    out = conv(prec.channels_last_input(x, Precision("fp32", True)))
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(out, ref, atol=1e-5)
    assert prec.channels_last_input(x, Precision()) is x


def _teacher():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                        nn.Flatten(), nn.Linear(8, 10))
    with torch.no_grad():
        net[1].running_mean.uniform_(-0.5, 0.5), net[1].running_var.uniform_(0.5, 2.0)
    return freeze_teacher(net)


@pytest.mark.parametrize("setting", ["fp32", "bf16", "bf16+cl"])
def test_generator_step_at_each_precision_returns_fp32_and_trains(setting):
    teacher = _teacher()
    bns = BNStatistics(teacher)
    torch.manual_seed(1)
    gen = GDFQGenerator(10, (3, 8, 8), width=16)
    opt = torch.optim.Adam(gen.parameters(), lr=1e-3, betas=(0.5, 0.999))
    p = parse(setting)
    before = gen.fc.weight.detach().clone()
    batch = generator_step(gen, teacher, bns, 8, opt, precision=p)
    assert batch.images.dtype == torch.float32 and batch.teacher_logits.dtype == torch.float32
    assert gen.fc.weight.dtype == torch.float32 and not torch.equal(gen.fc.weight, before)
    assert gen.conv1[0].weight.is_contiguous(memory_format=torch.channels_last) == p.channels_last


def test_bf16_step_stays_close_to_fp32_and_bns_is_taken_in_fp32():
    """Same weights, same latents: L_r in bf16 within 2 % of fp32; the BNS hook sees an fp32 copy of its input."""
    teacher = _teacher()
    bns = BNStatistics(teacher)
    seen = []
    teacher[1].register_forward_hook(lambda m, i, o: seen.append(i[0].dtype))
    losses = {}
    for setting in ("fp32", "bf16"):
        torch.manual_seed(1)
        gen = GDFQGenerator(10, (3, 8, 8), width=16)
        torch.manual_seed(2)
        losses[setting] = generator_step(gen, teacher, bns, 16, None, precision=parse(setting)).loss
    assert seen == [torch.float32, torch.bfloat16]  # the teacher really ran in bf16 ...
    assert abs(losses["bf16"] - losses["fp32"]) <= 0.02 * abs(losses["fp32"])  # ... and L_r barely moved


def test_bns_hook_upcasts(monkeypatch):
    """The hook computes mean/var on x.float(): planted bf16 statistics would differ from fp32 ones."""
    teacher = _teacher()
    bns = BNStatistics(teacher)
    x = torch.randn(4, 8, 5, 5) * 3 + 1
    with bns.capture():
        bns._hook(teacher[1], (x.bfloat16(),), None)
        low = bns.loss()
    xb = x.bfloat16().float()  # the same values, handed in as fp32
    with bns.capture():
        bns._hook(teacher[1], (xb,), None)
        ref = bns.loss()
    assert low.dtype == torch.float32 and torch.equal(low, ref)
