"""The one training loop every pipeline uses: an epoch of steps, an optimizer step, the lr schedule.

``run_epoch`` calls a pipeline's ``step(batch) -> {name: scalar}`` on every batch (forward, loss, backward
and update live in the step, usually through :func:`optimizer_step`), shows a progress bar with the latest
values and returns the epoch's means. A value that is not finite stops the run at that step
(:class:`~nascomp.errors.NumericalError`), before anything of it is checkpointed.

The lr schedule, decay factor at step t of T (t counts optimizer steps or epochs, as the caller chooses):

    constant: 1      linear: 1 - t/T (ReActNet)      cosine: (1 + cos(pi t / T)) / 2 (SGDR without restarts)
    step:     0.1 ** #{milestones m <= t} (GDFQ's MultiStepLR; t and the milestones in epochs)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch

from ..errors import ConfigError, NumericalError
from .progress import fmt_losses, progress

SCHEDULES = ("constant", "linear", "cosine", "step")


def lr_factor(t: int, total: int, schedule: str, milestones: Sequence[int] = ()) -> float:
    """The decay factor of the lr at step ``t`` of ``total`` (see the module docstring)."""
    if schedule == "constant":
        return 1.0
    if schedule == "step":
        return 0.1 ** sum(t >= m for m in milestones)
    if schedule == "linear":
        return 1.0 - min(t / max(total, 1), 1.0)
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * min(t, total) / max(total, 1)))
    raise ConfigError(f"unknown lr schedule {schedule!r}; choose one of {', '.join(SCHEDULES)}")


def set_lr(optimizer: torch.optim.Optimizer | None, lr: float) -> None:
    for group in optimizer.param_groups if optimizer is not None else []:
        group["lr"] = lr


def optimizer_step(loss: torch.Tensor, optimizer: torch.optim.Optimizer, grad_clip: float | None = None) -> float:
    """``zero_grad``, backward, optional gradient-norm clip, step; returns the loss as a float."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip:
        params = [p for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
        torch.nn.utils.clip_grad_norm_(params, grad_clip)
    optimizer.step()
    return loss.item()


def check_finite(values: dict[str, Any], where: str) -> None:
    """Stop with one line when a reported scalar is NaN or infinite (a diverging lr, a broken input)."""
    for name, value in values.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise NumericalError(f"{where}: {name} is {value}; the run stopped there and its last checkpoint is "
                                 "kept; lower the learning rate or check the inputs, then --resume or start anew")


def run_epoch(batches: Iterable[Any], step: Callable[[Any], dict[str, float]], desc: str,
              total: int | None = None, quiet: bool = False,
              before_step: Callable[[int], None] | None = None) -> dict[str, float]:
    """Run ``step`` on each batch (``before_step(i)`` first, e.g. to set the lr); return each value's mean."""
    sums: dict[str, float] = {}
    n = 0
    bar = progress(batches, desc, total, quiet)
    for i, batch in enumerate(bar):
        if before_step is not None:
            before_step(i)
        values = step(batch)
        check_finite(values, f"{desc}, step {i + 1}")
        for k, v in values.items():
            sums[k] = sums.get(k, 0.0) + v
        n += 1
        bar.set_postfix(fmt_losses(values))
    return {k: v / max(n, 1) for k, v in sums.items()}
