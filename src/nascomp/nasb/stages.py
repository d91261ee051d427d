"""Training stages of a binary network and what the real-valued stage uses in place of the sign.

Staged training (Real-to-Binary, Martinez et al. ICLR 2020; ReActNet, Liu et al. ECCV 2020): each stage
starts from the weights of the one before, with :func:`~nascomp.quant.binary.set_binary_stage`:

    stage 1: real weights, real activations -> stage 2: real weights, binary activations -> stage 3: binary both

``--stages n`` runs the last ``n`` of them, so the result is always fully binary: 3 = all, 2 = ReActNet's
two steps, 1 = binary from scratch.

In stage 1 a :class:`~nascomp.quant.binary.BinaryConv2d` passes its input through unchanged, which would
make a network of binary units linear between its pools. Bi-Real Net (Liu et al. ECCV 2018, Sec. 3.3)
pre-trains its real-valued network with ``clip(x, -1, 1)`` where the sign will be, the function whose
derivative the binary stages' straight-through gradients approximate; :func:`use_real_activation` puts that
in front of every binary conv whose activations are real (``stage1_act="clip"``, our default), through a
forward pre-hook, so it needs no change to the model and costs nothing in ``count_cost``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..quant.binary import BinaryConv2d

STAGE1_ACTS = ("clip", "identity")


def stage_plan(stages: int) -> list[int]:
    """The binary stages that ``--stages`` runs, in order: 3 -> [1, 2, 3], 2 -> [2, 3], 1 -> [3]."""
    if isinstance(stages, bool) or stages not in (1, 2, 3):
        raise ConfigError(
            f"--stages {stages!r}: choose 3 (real -> binary activations -> fully binary), 2 (the last two) "
            "or 1 (fully binary only)"
        )
    return list(range(4 - stages, 4))


def _clip_real_input(module: nn.Module, args: tuple) -> tuple | None:
    if module.binary_acts:
        return None
    return (F.hardtanh(args[0]), *args[1:])


def use_real_activation(model: nn.Module, kind: str) -> list[torch.utils.hooks.RemovableHandle]:
    """``clip``: ``clip(x, -1, 1)`` before every binary conv while its activations are real; ``identity``: none."""
    if kind not in STAGE1_ACTS:
        raise ConfigError(f"unknown stage-1 activation {kind!r}; choose one of {', '.join(STAGE1_ACTS)}")
    if kind == "identity":
        return []
    return [m.register_forward_pre_hook(_clip_real_input) for m in model.modules() if isinstance(m, BinaryConv2d)]
