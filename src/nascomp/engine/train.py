"""Plain supervised training (cross-entropy, SGD Nesterov momentum 0.9, cosine lr per step) on the engine's
loop: the demo teacher is trained with it."""

from __future__ import annotations

from collections.abc import Sized

import torch
import torch.nn.functional as F
from torch import nn

from .loop import lr_factor, optimizer_step, run_epoch, set_lr


def train_classifier(model: nn.Module, batches: Sized, epochs: int, lr: float = 0.05, weight_decay: float = 5e-4,
                     device: torch.device | str = "cpu", quiet: bool = True, desc: str = "train") -> nn.Module:
    """Train ``model`` for ``epochs`` passes over ``batches`` (re-iterable, sized)."""
    model.to(device).train()
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay, nesterov=True)
    n = len(batches)

    def step(batch: tuple[torch.Tensor, torch.Tensor]) -> dict[str, float]:
        x, y = batch
        return {"loss": optimizer_step(F.cross_entropy(model(x.to(device)), y.to(device)), opt)}

    for epoch in range(epochs):
        run_epoch(batches, step, f"{desc} {epoch + 1}/{epochs}", n, quiet,  # type: ignore[arg-type]
                  before_step=lambda i, e=epoch: set_lr(opt, lr * lr_factor(e * n + i, epochs * n, "cosine")))
    return model.eval()
