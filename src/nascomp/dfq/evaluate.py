"""``nascomp eval``: accuracy of a checkpoint, or of the quantized student saved in a dfq run folder."""

from __future__ import annotations

from pathlib import Path

from ..data import ImageBatches
from ..deploy.student import is_student_folder, load_student
from ..engine import Accuracy, evaluate, resolve_device
from ..errors import ConfigError
from ..models import create_model
from .sources import labelled_images


def evaluate_checkpoint(model_name: str | None, weights: str, data: str, batch_size: int = 500,
                        device: str = "auto", workers: int | None = None, quiet: bool = True,
                        interpolation: str | None = None) -> Accuracy:
    """Top-1/top-5 of a checkpoint (or a saved student) on ``data``. Image files are decoded by ``workers``
    processes (default: every core) with the model's resize interpolation unless ``interpolation`` is given;
    a progress bar shows on stderr unless ``quiet``."""
    if Path(weights).is_dir() and is_student_folder(weights):
        model = load_student(weights)
    elif model_name is None:
        raise ConfigError("--model is needed unless --weights is a dfq run folder with a saved student")
    else:
        model = create_model(model_name, weights)
    dev = resolve_device(device)
    cfg = model.default_cfg
    imageset = labelled_images(data, cfg, getattr(model, "model_name", model_name or "the model"))
    batches = ImageBatches(imageset, cfg, batch_size=batch_size, workers=workers, interpolation=interpolation,
                           quiet=quiet)
    return evaluate(model.to(dev), batches, dev)
