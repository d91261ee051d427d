import pytest
import torch
from torch import nn

from nascomp.recon import BNStatistics, GaussianNoise, GDFQGenerator, freeze_teacher, generator_step


def _net():
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 5, 3), nn.BatchNorm2d(5))


def test_bns_is_zero_when_batch_statistics_match_the_running_ones():
    torch.manual_seed(0)
    net, x = _net(), torch.randn(16, 3, 10, 10)
    net.train()
    for bn in (net[1], net[4]):
        bn.momentum = 1.0  # running stats := this batch's (unbiased var; the loss uses the biased one)
    net(x)
    n = {1: 16 * 8 * 8, 4: 16 * 6 * 6}
    for i, bn in ((1, net[1]), (4, net[4])):
        bn.running_var.mul_((n[i] - 1) / n[i])
    net.eval()
    bns = BNStatistics(net)
    with bns.capture():
        net(x)
    assert bns.loss().item() < 1e-10


def test_bns_is_the_mean_over_layers_of_mean_and_variance_errors():
    torch.manual_seed(0)
    net = _net().eval()
    bns = BNStatistics(net)
    x = torch.randn(8, 3, 10, 10)
    with bns.capture():
        net(x)
    h = net[0](x)
    expect1 = (h.mean((0, 2, 3)) - 0).pow(2).mean() + (h.var((0, 2, 3), unbiased=False) - 1).pow(2).mean()
    h2 = net[3](net[2](net[1](h)))
    expect2 = h2.mean((0, 2, 3)).pow(2).mean() + (h2.var((0, 2, 3), unbiased=False) - 1).pow(2).mean()
    assert torch.allclose(bns.loss(), (expect1 + expect2) / 2, atol=1e-6)


def test_hooks_stay_silent_outside_capture():
    net = _net().eval()
    bns = BNStatistics(net)
    net(torch.randn(2, 3, 10, 10))
    with pytest.raises(RuntimeError, match="no BNS terms"):
        bns.loss()


@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 32, 32), (3, 224, 224)])
def test_gdfq_generator_makes_images_of_the_model_input_shape(shape):
    g = GDFQGenerator(10, shape)
    z, y = g.sample_latent(4)
    out = g(z, y)
    assert out.shape == (4, *shape)
    assert torch.allclose(out.mean((0, 2, 3)), torch.zeros(shape[0]), atol=1e-5)  # final BN(affine=False)


def test_draws_for_any_device_come_from_the_cpu_generator():
    """One seed, the same latents (every source's ``sample_latent``) and noise images on a CPU and a GPU: a draw
    for another device (here ``meta``, which has no values) advances the CPU generator as a CPU draw does."""
    source = GaussianNoise(10, (1, 8, 8))

    def next_cpu_draw(device: str) -> torch.Tensor:
        torch.manual_seed(0)
        z, y = source.sample_latent(4, device)
        source(z, y)
        return torch.randn(3)

    assert torch.equal(next_cpu_draw("meta"), next_cpu_draw("cpu"))


def test_generator_steps_lower_the_reconstruction_loss(demo_teacher):
    torch.manual_seed(0)
    teacher = freeze_teacher(demo_teacher)
    bns = BNStatistics(teacher)
    g = GDFQGenerator(10, (1, 8, 8))
    opt = torch.optim.Adam(g.parameters(), lr=1e-3, betas=(0.5, 0.999))
    losses = [generator_step(g, teacher, bns, 64, opt).loss for _ in range(60)]
    assert sum(losses[-10:]) / 10 < 0.5 * sum(losses[:10]) / 10
    noise = generator_step(GaussianNoise(10, (1, 8, 8)), teacher, bns, 64, None)
    assert noise.images.shape == (64, 1, 8, 8) and noise.loss > losses[-1]
