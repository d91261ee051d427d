"""Evaluation: top-1 / top-5 accuracy (percent) over batches; under torchrun the counts of every rank's
share of the batches are summed, so every rank reports the accuracy on the whole set."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn

from .distributed import sum_over_ranks


@dataclass
class Accuracy:
    top1: float
    top5: float
    n: int


@torch.no_grad()
def evaluate(model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
             device: torch.device | str = "cpu") -> Accuracy:
    was_training = model.training
    model.eval()
    correct1 = correct5 = n = 0
    for x, y in batches:
        x, y = x.to(device), y.to(device)
        logits = model(x)
        top = logits.topk(min(5, logits.shape[1]), dim=1).indices
        correct1 += (top[:, 0] == y).sum().item()
        correct5 += (top == y[:, None]).any(1).sum().item()
        n += len(y)
    model.train(was_training)
    correct1, correct5, n = sum_over_ranks([correct1, correct5, n])
    return Accuracy(100.0 * correct1 / max(n, 1), 100.0 * correct5 / max(n, 1), int(n))
