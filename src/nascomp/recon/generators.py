"""Sources of synthetic images G(z, y): the GDFQ generator and a Gaussian-noise control.

Every source exposes ``num_classes``, ``latent_dim``, ``image_shape`` and ``forward(z, y) -> images``;
``sample_latent`` draws (z, y) with z ~ N(0, I) and y uniform over the classes. Every random draw is made
by the CPU generator and then moved to the device, so one seed gives the same latents on a CPU and a GPU.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


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
        out = self.conv1(F.interpolate(self.bn0(out), scale_factor=2))
        out = self.conv2(F.interpolate(out, scale_factor=2))
        if out.shape[-2:] != self.image_shape[1:]:
            out = F.interpolate(out, size=self.image_shape[1:], mode="bilinear", align_corners=False)
        return out


class GaussianNoise(ImageSource):
    """Control: images drawn i.i.d. from N(0, 1) in the model's normalised input space (z and y ignored)."""

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.randn(z.shape[0], *self.image_shape).to(z.device)
