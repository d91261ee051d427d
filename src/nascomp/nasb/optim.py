"""Optimiser settings shared by the NASB search and training: parameter groups and per-step decay.

Adam everywhere (Real-to-Binary and ReActNet train binary networks with Adam; SGD with momentum moves latent
binary weights poorly). Binary conv weights get no weight decay once they are binarized: decay pulls the
latent weights towards 0, where their sign flips at random (ReActNet trains its binary step with decay 0).
The learning rate decays to 0 within a schedule (:func:`nascomp.engine.lr_factor`): ``linear`` (ReActNet) or
``cosine``:

    linear: lr_t = lr * (1 - t / T)          cosine: lr_t = lr * (1 + cos(pi * t / T)) / 2
"""

from __future__ import annotations

from collections.abc import Iterable

from torch import nn

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
