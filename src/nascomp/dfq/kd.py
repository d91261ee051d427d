"""The student's loss: knowledge distillation from the full-precision teacher plus cross-entropy (GDFQ):

    L_S = a * T^2 * KL(softmax(t / T) || softmax(s / T)) + b * CE(s, y)

with the KL averaged over all batch x class elements (PyTorch ``kl_div(reduction="mean")``, as GDFQ's code),
T = 20 and a = b = 1 by default (GDFQ). The ``quick`` preset sets b = 0: the labels y are only what the
generator was asked for, and on the same trained generators the fine-tune gained about three times as much
without the CE term (docs/DFQ.md, measured with ``benchmarks/dfq_finetune.py`` on CIFAR-10 train images).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor,
            temperature: float = 20.0, kd_weight: float = 1.0, ce_weight: float = 1.0) -> torch.Tensor:
    t = temperature
    log_q = F.log_softmax(student_logits / t, 1)
    log_p = F.log_softmax(teacher_logits / t, 1)
    kl = (log_p.exp() * (log_p - log_q)).mean()
    return kd_weight * t * t * kl + ce_weight * F.cross_entropy(student_logits, labels)
