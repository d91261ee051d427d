"""The reconstruction objective and one generator update (GDFQ eq. 5; AutoReCon's L_r):

    L_r = CE(T(G(z, y)), y) + lambda * BNS(G(z, y)),   lambda = 0.1,

with T the frozen full-precision model. The teacher's logits are returned detached, to serve as the
knowledge-distillation targets of the same batch (no second teacher pass, as GDFQ's code).

``generator_step`` runs the generator and the teacher at a :class:`~nascomp.engine.precision.Precision`
(fp32, or bf16 autocast; optionally channels-last); the batch it returns is fp32 whatever the precision.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..engine.precision import Precision, parse
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
                   bns_weight: float = BNS_WEIGHT, precision: Precision | None = None) -> SyntheticBatch:
    """Draw (z, y), compute L_r, update the generator (when it has an optimizer) and return the batch.

    ``precision`` (default fp32) sets the autocast of the generator and teacher forwards (the backward follows it) and,
    with channels-last, converts both modules once; images and teacher logits come back as fp32.
    """
    precision = parse("fp32", device) if precision is None else precision
    if precision.channels_last:
        _channels_last_once(generator), _channels_last_once(teacher)
    z, y = generator.sample_latent(batch_size, device)
    with torch.set_grad_enabled(optimizer is not None), precision.autocast(device):
        loss, parts = reconstruction_loss(generator, teacher, bns, z, y, bns_weight)
    if optimizer is not None:
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return SyntheticBatch(parts["images"].detach().float(), y, parts["logits"].detach().float(), loss.item(),
                          parts["ce"].item(), parts["bns"].item())


def _channels_last_once(module: nn.Module) -> None:
    """Channels-last parameters for ``module``, converted on the first call only (before optimizer state exists)."""
    if not getattr(module, "_nascomp_channels_last", False):
        module.to(memory_format=torch.channels_last)
        module._nascomp_channels_last = True


def freeze_teacher(teacher: nn.Module) -> nn.Module:
    """Eval mode (running BN statistics) and no parameter gradients; gradients still flow to the input."""
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher
