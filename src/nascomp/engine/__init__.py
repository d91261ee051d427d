"""Shared by every pipeline: seeding, device, run folders and checkpoints, evaluation, progress."""

from .device import resolve_device
from .evaluate import Accuracy, evaluate
from .progress import fmt_losses, progress
from .rundir import RunDir, atomic_torch_save, atomic_write_text
from .seed import rng_state, seed_everything, set_rng_state
from .train import train_classifier

__all__ = ["Accuracy", "RunDir", "atomic_torch_save", "atomic_write_text", "evaluate", "fmt_losses", "progress",
           "resolve_device", "rng_state", "seed_everything", "set_rng_state", "train_classifier"]
