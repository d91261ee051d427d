"""A plain supervised training loop (cross-entropy, SGD with momentum, cosine lr), shared by pipelines."""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from .progress import fmt_losses, progress


def train_classifier(model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]], epochs: int,
                     lr: float = 0.05, weight_decay: float = 5e-4, device: torch.device | str = "cpu",
                     quiet: bool = True, desc: str = "train") -> nn.Module:
    """Train ``model`` for ``epochs`` passes over ``batches`` (re-iterable), SGD momentum 0.9, cosine lr."""
    model.to(device).train()
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay, nesterov=True)
    steps = epochs * len(batches)  # type: ignore[arg-type]
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(steps, 1))
    bar = progress(range(epochs), desc, quiet=quiet)
    for _ in bar:
        for x, y in batches:
            loss = F.cross_entropy(model(x.to(device)), y.to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            bar.set_postfix(fmt_losses({"loss": loss.item()}))
    return model.eval()
