"""Genie-D's parameterisation of a batch of optimised images: latents and a small generator, both per batch.

Genie (Jeon et al., CVPR 2023, "Genie: Show Me the Data for Quantization"), its data-distillation half (Genie-D),
optimises each batch of B synthetic images not pixel by pixel but as

    X = G_b(z_b),   z_b in R^{B x 256} ~ N(0, I),   G_b freshly initialised for the batch,

and updates z_b and G_b's weights together with Adam on the batch-norm statistics objective. The generator
shares structure across the batch (smooth, natural-looking images), the latents keep every image its own; both
are thrown away once the batch is done. G_b is Genie's generator (its public code, ``distill.py``), a smaller
cousin of GDFQ's (no label embedding, one 3 x 3 conv fewer, BatchNorm eps at its default):

    G(z) = BN_3(tanh(conv_{64->3}(up2(LReLU_0.2(BN(conv_{128->64}(up2(BN(reshape(W z)))))))))),

with W z reshaped to 128 x H/4 x W/4, ``up2`` nearest-neighbour x2 upsampling, 3 x 3 convolutions, and a last
BatchNorm without affine parameters, so every batch comes out with zero mean and unit variance per channel (the
model's normalised input space). The BN layers use the batch's own statistics (train mode), as in Genie.

Taken from Genie's code: the generator above, latent size 256, Adam, and the latents' lr ten times the
generator's (0.1 and 0.01 there; here ``lr`` and ``lr / 10``, with ``lr`` 0.03 by default: at 100 steps on the
CIFAR-10 ResNet-20 it ends nearer the BN statistics than Genie's 0.1, ``benchmarks/image_sources_bns.py`` in
docs/BENCHMARKS.md; a data-free choice, no image seen). Not taken, so that every optimised source shares one
objective and one schedule (:mod:`.direct`): Genie's loss is BNS only (plus the image's own mean and std) and
its augmentation is "swing convolution" (a reflect-padded random shift of at most 1 pixel before every strided
convolution); here the objective is CE on balanced labels + 10 BNS on jittered and flipped batches, and both lrs
follow one cosine to 0 (Genie: plateau decay for z, x0.95 every 100 steps for G). Genie runs 4,000 steps per
batch of 128 on a GPU; CPU budgets here are far smaller: say the steps with every figure. G_b's linear layer
grows with the image (256 x 128 x H/4 x W/4 weights: 103 M parameters at 224 px), so a checkpoint taken inside a
batch then carries about 1.2 GB (G_b and its Adam moments) where one of a 32 px batch carries about 25 MB.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .generators import upsample_nearest2x

LATENT_DIM = 256
GENERATOR_LR_RATIO = 0.1  # Genie-D: generator lr 0.01 against the latents' 0.1


class GenieGenerator(nn.Module):
    """G_b of the module docstring for images of ``image_shape`` (C, H, W); H and W need not be multiples of 4
    (the last feature map is cropped to H x W)."""

    def __init__(self, image_shape: tuple[int, int, int], latent_dim: int = LATENT_DIM, c1: int = 128, c2: int = 64):
        super().__init__()
        channels, height, width = image_shape
        self.image_shape = tuple(image_shape)
        self.init = (math.ceil(height / 4), math.ceil(width / 4))
        self.c1 = c1
        self.linear = nn.Linear(latent_dim, c1 * self.init[0] * self.init[1])
        self.bn0 = nn.BatchNorm2d(c1)
        self.conv1 = nn.Conv2d(c1, c2, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(c2)
        self.conv2 = nn.Conv2d(c2, channels, 3, padding=1)
        self.bn_out = nn.BatchNorm2d(channels, affine=False)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.bn0(self.linear(z).view(len(z), self.c1, *self.init))
        x = nn.functional.leaky_relu(self.bn1(self.conv1(upsample_nearest2x(x))), 0.2)
        x = torch.tanh(self.conv2(upsample_nearest2x(x)))
        _, height, width = self.image_shape
        return self.bn_out(x[:, :, :height, :width])


class LatentBatch(nn.Module):
    """One batch of Genie-D images: ``forward()`` is X = G_b(z_b); :meth:`param_groups` gives Adam the latents at
    ``lr`` and the generator at ``lr * GENERATOR_LR_RATIO``. Its ``state_dict`` (z and G_b) resumes a batch."""

    def __init__(self, count: int, image_shape: tuple[int, int, int], latent_dim: int = LATENT_DIM):
        super().__init__()
        self.z = nn.Parameter(torch.randn(count, latent_dim))  # CPU draws: the same batch on any device
        self.generator = GenieGenerator(image_shape, latent_dim)

    def forward(self) -> torch.Tensor:
        return self.generator(self.z)

    def param_groups(self, lr: float) -> list[dict]:
        return [{"params": [self.z], "lr": lr},
                {"params": list(self.generator.parameters()), "lr": lr * GENERATOR_LR_RATIO}]
