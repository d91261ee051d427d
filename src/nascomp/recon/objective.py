"""The reconstruction objective and one generator update (GDFQ eq. 5; AutoReCon's L_r):

    L_r = CE(T(G(z, y)), y) + lambda * BNS(G(z, y)),   lambda = 0.1,

with T the frozen full-precision model. The teacher's logits are returned detached, to serve as the
knowledge-distillation targets of the same batch (no second teacher pass, as GDFQ's code).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .bns import BNStatistics

BNS_WEIGHT = 0.1


@dataclass
class SyntheticBatch:
    images: torch.Tensor  # detached
    labels: torch.Tensor
    teacher_logits: torch.Tensor  # detached
    loss: float  # L_r
    ce: float
    bns: float


def reconstruction_loss(generator: nn.Module, teacher: nn.Module, bns: BNStatistics, z: torch.Tensor,
                        y: torch.Tensor, bns_weight: float = BNS_WEIGHT) -> tuple[torch.Tensor, dict]:
    """L_r for the latent batch (z, y); returns the loss tensor and the parts (images, logits, ce, bns)."""
    images = generator(z, y)
    with bns.capture():
        logits = teacher(images)
        bns_loss = bns.loss()
    ce = F.cross_entropy(logits, y)
    return ce + bns_weight * bns_loss, {"images": images, "logits": logits, "ce": ce, "bns": bns_loss}


def generator_step(generator: nn.Module, teacher: nn.Module, bns: BNStatistics, batch_size: int,
                   optimizer: torch.optim.Optimizer | None, device: torch.device | str = "cpu",
                   bns_weight: float = BNS_WEIGHT) -> SyntheticBatch:
    """Draw (z, y), compute L_r, update the generator (when it has an optimizer) and return the batch."""
    z, y = generator.sample_latent(batch_size, device)
    with torch.set_grad_enabled(optimizer is not None):
        loss, parts = reconstruction_loss(generator, teacher, bns, z, y, bns_weight)
    if optimizer is not None:
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return SyntheticBatch(parts["images"].detach(), y, parts["logits"].detach(), loss.item(),
                          parts["ce"].item(), parts["bns"].item())


def freeze_teacher(teacher: nn.Module) -> nn.Module:
    """Eval mode (running BN statistics) and no parameter gradients; gradients still flow to the input."""
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher
