"""Data parallelism through ``torchrun`` (PyTorch's launcher): the engine's one service for several processes.

``torchrun --nproc-per-node N -m nascomp ...`` starts N processes with ``RANK``, ``LOCAL_RANK`` and
``WORLD_SIZE`` in their environment; :func:`init_distributed` reads them and joins the process group (NCCL
on GPUs, one GPU per local rank; gloo on CPUs). Without those variables a run is one process and nothing
here does anything, so a plain ``nascomp`` command is unchanged.

Conventions the pipelines follow:
- ``batch_size`` is per process (as timm's ``--batch-size``): N processes see N times the images per step.
- Modules are built with the run's seed on every rank (identical weights), then every rank but 0 reseeds
  its random streams from ``(seed, rank)`` (:func:`rank_seed`), so ranks draw different latents and
  augmentations while rank 0 draws exactly what a single process draws.
- Trained modules are wrapped in :class:`Replicated` (DDP): gradients are averaged over ranks.
- Only rank 0 writes the run folder and prints; evaluation counts are summed over ranks.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel


@dataclass(frozen=True)
class Dist:
    """Where this process stands: its rank among ``world_size`` processes (and on its node)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1


def init_distributed(device_type: str = "cpu") -> Dist:
    """Join the process group torchrun set up (once per process); a single process when there is none."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
    return Dist(rank, world, local)


def current() -> Dist:
    """The :class:`Dist` of an initialised process group (a single process otherwise)."""
    if not (dist.is_available() and dist.is_initialized()):
        return Dist()
    return Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def rank_seed(seed: int, rank: int) -> int:
    """The seed of rank ``rank``'s random streams: ``seed`` on rank 0, a distinct one per other rank."""
    return seed if rank == 0 else (seed * 1_000_003 + rank * 7_919) % 2**63


def sum_over_ranks(values: list[float]) -> list[float]:
    """Element-wise sum of ``values`` over all ranks (the values themselves in a single process)."""
    if not current().active:
        return values
    t = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(t)
    return t.tolist()


def mean_over_ranks(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` with each float replaced by its mean over the ranks (losses of a unit); the row itself alone."""
    keys = [k for k, v in row.items() if isinstance(v, float)]
    if not current().active or not keys:
        return row
    n = current().world_size
    return {**row, **{k: v / n for k, v in zip(keys, sum_over_ranks([row[k] for k in keys]), strict=True)}}


def gather_to_main(obj: Any) -> list[Any] | None:
    """Every rank's ``obj``, in rank order, on rank 0 (None elsewhere); ``[obj]`` in a single process."""
    d = current()
    if not d.active:
        return [obj]
    out: list[Any] | None = [None] * d.world_size if d.is_main else None
    dist.gather_object(obj, out, dst=0)
    return out


def broadcast_from_main(obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank."""
    if not current().active:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def broadcast_state(module: nn.Module) -> None:
    """Every parameter and buffer of ``module`` set to rank 0's (in place); nothing in a single process."""
    if not current().active:
        return
    with torch.no_grad():
        for tensor in module.state_dict().values():
            dist.broadcast(tensor, src=0)


class Replicated(DistributedDataParallel):
    """DDP that still answers the wrapped module's own attributes (``sample_latent``, ``default_cfg``, ...)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.module, name)


def replicate(module: nn.Module, device: torch.device) -> nn.Module:
    """``module`` wrapped in DDP when several processes run (weights and buffers taken from rank 0), else itself."""
    if not current().active:
        return module
    ids = [device.index] if device.type == "cuda" else None
    return Replicated(module, device_ids=ids, find_unused_parameters=False)
