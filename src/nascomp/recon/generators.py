"""Sources of synthetic images G(z, y): the GDFQ generator and a Gaussian-noise control.

Every source exposes ``num_classes``, ``latent_dim``, ``image_shape`` and ``forward(z, y) -> images``;
``sample_latent`` draws (z, y) with z ~ N(0, I) and y uniform over the classes. Every random draw is made
by the CPU generator and then moved to the device, so one seed gives the same latents on a CPU and a GPU.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _repeat2x(x: torch.Tensor) -> torch.Tensor:
    """``out[n, c, 2i + a, 2j + b] = x[n, c, i, j]`` (a, b in {0, 1}): one broadcast copy into a new tensor of
    ``x``'s memory format (a fresh tensor, not a view, so in-place ops downstream stay legal)."""
    n, c, h, w = x.shape
    if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        out = torch.empty((n, c, 2 * h, 2 * w), dtype=x.dtype, device=x.device, memory_format=torch.channels_last)
        nhwc = x.permute(0, 2, 3, 1)  # whole pixels copied, channels innermost
        out.permute(0, 2, 3, 1).view(n, h, 2, w, 2, c).copy_(nhwc[:, :, None, :, None, :])
        return out
    out = x.new_empty((n, c, 2 * h, 2 * w))
    out.view(n, c, h, 2, w, 2).copy_(x[:, :, :, None, :, None])
    return out


def _fold2x(grad: torch.Tensor) -> torch.Tensor:
    """The adjoint of :func:`_repeat2x`: ``g_in[i, j] = ((g[2i, 2j] + g[2i, 2j+1]) + g[2i+1, 2j]) + g[2i+1, 2j+1]``,
    summed in this order (the order of ``F.interpolate``'s CPU backward, so the two agree bit for bit)."""
    n, c, hh, ww = grad.shape
    h, w = hh // 2, ww // 2
    if grad.is_contiguous(memory_format=torch.channels_last) and not grad.is_contiguous():
        g = grad.permute(0, 2, 3, 1).reshape(n, h, 2, w, 2, c)
        return (g[:, :, 0, :, 0] + g[:, :, 0, :, 1] + g[:, :, 1, :, 0] + g[:, :, 1, :, 1]).permute(0, 3, 1, 2)
    g = grad.reshape(n, c, h, 2, w, 2)
    return g[:, :, :, 0, :, 0] + g[:, :, :, 0, :, 1] + g[:, :, :, 1, :, 0] + g[:, :, :, 1, :, 1]


class _Upsample2x(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return _repeat2x(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return _fold2x(grad)  # built of differentiable ops: double backward (DARTS order 2) works


def upsample_nearest2x(x: torch.Tensor) -> torch.Tensor:
    """Nearest-neighbour x2 upsampling of an ``(N, C, H, W)`` batch: ``out[n, c, y, x] = in[n, c, y // 2, x // 2]``.

    Equal, value for value, to ``F.interpolate(x, scale_factor=2)`` (mode ``nearest``) in the forward and in the
    gradient, ``dL/din[i, j] = sum_{a, b in {0, 1}} dL/dout[2i + a, 2j + b]`` (summed in the same order), but
    computed as a broadcast copy (``expand`` + ``reshape``) whose backward is three strided adds: on a
    contiguous CPU batch this is 3-5x faster than ``F.interpolate``'s kernels (``benchmarks/speed.py``). A
    channels-last input gives a channels-last output (and gradient).
    """
    if x.dim() != 4:
        raise ValueError(f"upsample_nearest2x expects an (N, C, H, W) batch, got shape {tuple(x.shape)}")
    return _Upsample2x.apply(x)


class ImageSource(nn.Module):
    """Base of the generators: the latent sampling and the shape bookkeeping."""

    def __init__(self, num_classes: int, image_shape: tuple[int, int, int], latent_dim: int = 100):
        super().__init__()
        self.num_classes, self.image_shape, self.latent_dim = num_classes, tuple(image_shape), latent_dim

    def sample_latent(self, batch_size: int, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
        z = torch.randn(batch_size, self.latent_dim)
        y = torch.randint(0, self.num_classes, (batch_size,))
        return z.to(device), y.to(device)

    @property
    def trainable(self) -> bool:
        return any(p.requires_grad for p in self.parameters())


class GDFQGenerator(ImageSource):
    """The label-conditioned generator of GDFQ (Xu et al. ECCV 2020), as in its public code:

    emb(y) * z -> Linear -> 128 x s x s (s = H/4) -> BN -> up x2 -> conv3x3(128) -> BN -> LeakyReLU(0.2)
    -> up x2 -> conv3x3(64) -> BN -> LeakyReLU(0.2) -> conv3x3(C) -> tanh -> BN(affine=False).

    The two inner BNs use eps = 0.8 as GDFQ's code does (``BatchNorm2d(128, 0.8)`` passes 0.8 as eps).
    """

    def __init__(self, num_classes: int, image_shape: tuple[int, int, int], latent_dim: int = 100, width: int = 128):
        super().__init__(num_classes, image_shape, latent_dim)
        channels, height, _ = image_shape
        self.init_size = max(1, height // 4)
        self.label_emb = nn.Embedding(num_classes, latent_dim)
        self.fc = nn.Linear(latent_dim, width * self.init_size**2)
        self.bn0 = nn.BatchNorm2d(width)
        self.conv1 = nn.Sequential(nn.Conv2d(width, width, 3, 1, 1), nn.BatchNorm2d(width, 0.8), nn.LeakyReLU(0.2))
        self.conv2 = nn.Sequential(
            nn.Conv2d(width, 64, 3, 1, 1), nn.BatchNorm2d(64, 0.8), nn.LeakyReLU(0.2),
            nn.Conv2d(64, channels, 3, 1, 1), nn.Tanh(), nn.BatchNorm2d(channels, affine=False),
        )

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        out = self.fc(self.label_emb(y) * z).view(z.shape[0], -1, self.init_size, self.init_size)
        out = self.conv1(upsample_nearest2x(self.bn0(out)))
        out = self.conv2(upsample_nearest2x(out))
        if out.shape[-2:] != self.image_shape[1:]:
            out = F.interpolate(out, size=self.image_shape[1:], mode="bilinear", align_corners=False)
        return out


class GaussianNoise(ImageSource):
    """Control: images drawn i.i.d. from N(0, 1) in the model's normalised input space (z and y ignored)."""

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.randn(z.shape[0], *self.image_shape).to(z.device)
