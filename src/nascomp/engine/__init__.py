"""The run engine every pipeline uses: run folders and checkpoints, stages, the training loop and lr schedule,
seeding, device, torchrun data parallelism, evaluation, progress."""

from .device import resolve_device
from .evaluate import Accuracy, evaluate
from .loop import lr_factor, optimizer_step, run_epoch, set_lr
from .progress import fmt_losses, progress
from .run import Run, Stage
from .rundir import RunDir, atomic_torch_save, atomic_write_text
from .seed import rng_state, seed_everything, set_rng_state
from .train import train_classifier

__all__ = ["Accuracy", "Run", "RunDir", "Stage", "atomic_torch_save", "atomic_write_text", "evaluate", "fmt_losses",
           "lr_factor", "optimizer_step", "progress", "resolve_device", "rng_state", "run_epoch", "seed_everything",
           "set_lr", "set_rng_state", "train_classifier"]
