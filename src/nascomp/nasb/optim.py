"""Optimiser settings shared by the NASB search and training: parameter groups and per-step decay.

Adam everywhere (Real-to-Binary and ReActNet train binary networks with Adam; SGD with momentum moves latent
binary weights poorly). Binary conv weights get no weight decay once they are binarized: decay pulls the
latent weights towards 0, where their sign flips at random (ReActNet trains its binary step with decay 0).
The learning rate decays to 0 within a schedule: ``linear`` (ReActNet) or ``cosine``:

    linear: lr_t = lr * (1 - t / T)          cosine: lr_t = lr * (1 + cos(pi * t / T)) / 2
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn

from ..errors import ConfigError
from ..quant.binary import BinaryConv2d

SCHEDULES = ("linear", "cosine")


def param_groups(
    model: nn.Module, params: Iterable[nn.Parameter], weight_decay: float, binary_decay: float
) -> list[dict]:
    """``params`` split into binary conv weights (``binary_decay``) and the rest (``weight_decay``)."""
    binary = {id(m.weight) for m in model.modules() if isinstance(m, BinaryConv2d)}
    params = [p for p in params if p.requires_grad]
    groups = [
        {"params": [p for p in params if id(p) in binary], "weight_decay": binary_decay},
        {"params": [p for p in params if id(p) not in binary], "weight_decay": weight_decay},
    ]
    return [g for g in groups if g["params"]]


def lr_factor(step: int, total: int, schedule: str) -> float:
    """The decay factor at ``step`` of ``total`` (see the module docstring)."""
    if schedule not in SCHEDULES:
        raise ConfigError(f"unknown lr schedule {schedule!r}; choose one of {', '.join(SCHEDULES)}")
    t = min(step / max(total, 1), 1.0)
    return 1.0 - t if schedule == "linear" else 0.5 * (1.0 + math.cos(math.pi * t))


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
