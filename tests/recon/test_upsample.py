"""upsample_nearest2x: the same values and gradients as F.interpolate (nearest, x2), bit for bit."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from nascomp.recon import GDFQGenerator, upsample_nearest2x
from nascomp.recon.autorecon import UpEdge

FORMATS = [torch.contiguous_format, torch.channels_last]


def _pair(fn, x: torch.Tensor, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x = x.detach().requires_grad_()
    out = fn(x)
    (g,) = torch.autograd.grad(out, x, grad)
    return out, g


@pytest.mark.parametrize("fmt", FORMATS, ids=["nchw", "nhwc"])
@pytest.mark.parametrize("shape", [(3, 5, 7, 9), (4, 16, 8, 8), (2, 1, 1, 1)])
def test_output_and_gradient_equal_interpolate_exactly(shape, fmt):
    torch.manual_seed(0)
    x = torch.randn(*shape).contiguous(memory_format=fmt)
    n, c, h, w = shape
    grad = torch.randn(n, c, 2 * h, 2 * w).contiguous(memory_format=fmt)
    ref, ref_grad = _pair(lambda t: F.interpolate(t, scale_factor=2), x, grad)
    out, out_grad = _pair(upsample_nearest2x, x, grad)
    assert out.shape == ref.shape and torch.equal(out, ref)
    assert torch.equal(out_grad, ref_grad)  # same sums in the same order: not merely close
    assert out.is_contiguous(memory_format=fmt) and out_grad.is_contiguous(memory_format=fmt)
    out.add_(1.0)  # a fresh tensor (no stride-0 view): in-place ops downstream stay legal


def test_gradient_of_a_non_contiguous_grad_and_pixel_layout():
    x = torch.arange(4.0).view(1, 1, 2, 2)
    assert upsample_nearest2x(x)[0, 0].tolist() == [[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]]
    x = torch.randn(2, 3, 4, 5, requires_grad=True)
    grad = torch.randn(2, 3, 10, 8).transpose(2, 3)  # not contiguous in any format
    (g,) = torch.autograd.grad(upsample_nearest2x(x), x, grad)
    (ref,) = torch.autograd.grad(F.interpolate(x, scale_factor=2), x, grad)
    assert torch.equal(g, ref)


def test_double_backward_matches_interpolate():
    """DARTS' second-order step differentiates through gradients: the backward must itself be differentiable."""
    torch.manual_seed(1)
    x, v = torch.randn(2, 3, 4, 4, requires_grad=True), torch.randn(2, 3, 8, 8)
    results = []
    for fn in (lambda t: F.interpolate(t, scale_factor=2), upsample_nearest2x):
        (g,) = torch.autograd.grad((fn(x) * v).pow(2).sum(), x, create_graph=True)
        (gg,) = torch.autograd.grad(g.pow(2).sum(), x)
        results.append((g.detach(), gg))
    assert torch.allclose(results[0][0], results[1][0]) and torch.allclose(results[0][1], results[1][1])


def test_generators_use_it(monkeypatch):
    """The GDFQ generator and the AutoReCon nearest edges call upsample_nearest2x (counted by a wrapper)."""
    import nascomp.recon.autorecon as autorecon
    import nascomp.recon.generators as generators

    calls = []

    def counting(x):
        calls.append(tuple(x.shape))
        return upsample_nearest2x(x)

    monkeypatch.setattr(generators, "upsample_nearest2x", counting)
    monkeypatch.setattr(autorecon, "upsample_nearest2x", counting)
    gen = GDFQGenerator(10, (3, 32, 32))
    gen(*gen.sample_latent(2))
    assert calls == [(2, 128, 8, 8), (2, 128, 16, 16)]
    edge = UpEdge("nearest", 4, 10)
    edge(torch.randn(2, 4, 3, 3), torch.tensor([0, 1]))
    assert calls[-1] == (2, 4, 3, 3)
    calls.clear()
    UpEdge("bilinear", 4, 10)(torch.randn(2, 4, 3, 3), torch.tensor([0, 1]))
    assert calls == []


def test_rejects_other_ranks():
    with pytest.raises(ValueError, match="N, C, H, W"):
        upsample_nearest2x(torch.randn(2, 3, 4))
