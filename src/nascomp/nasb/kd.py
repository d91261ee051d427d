"""The training loss of a binary student, with or without a real-valued teacher.

With a teacher (Hinton et al. 2015; ReActNet's distributional loss is the case T = 1, ce_weight = 0):

    L = kd_weight * T^2 * KL(softmax(t / T) || softmax(s / T)) + ce_weight * CE(s, y)

the KL summed over classes and averaged over the batch. Without a teacher, ``L = CE(s, y)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def student_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    teacher_logits: torch.Tensor | None = None,
    temperature: float = 1.0,
    kd_weight: float = 1.0,
    ce_weight: float = 1.0,
) -> torch.Tensor:
    ce = F.cross_entropy(logits, labels)
    if teacher_logits is None:
        return ce
    t = temperature
    log_q = F.log_softmax(logits / t, dim=1)
    log_p = F.log_softmax(teacher_logits / t, dim=1)
    kl = F.kl_div(log_q, log_p, reduction="batchmean", log_target=True)
    return kd_weight * t * t * kl + ce_weight * ce
