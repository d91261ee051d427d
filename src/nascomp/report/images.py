"""Generated images of a DFQ run, one row per class: drawn with a fixed seed from the run's generator (the saved
``generator.safetensors``, else the generator in the resume checkpoint), or, for runs without a trainable
generator (``noise``, ``direct``), taken from the generated calibration set in the checkpoint."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..models import ModelCfg, model_entry
from .runfolder import RunFolder

PER_CLASS, MAX_ROWS, SEED = 8, 10, 0


def shown_classes(num_classes: int, rows: int = MAX_ROWS) -> list[int]:
    """All classes when there are at most ``rows``, else ``rows`` of them evenly spread over the range."""
    if num_classes <= rows:
        return list(range(num_classes))
    return sorted({round(i * (num_classes - 1) / (rows - 1)) for i in range(rows)})


def model_cfg(run: RunFolder) -> ModelCfg:
    """The model's input convention: as saved with the run's model (``model.json``), else from the registry."""
    spec = run.path / "model.json"
    if spec.is_file():
        try:
            data = json.loads(spec.read_text())["input"]
            return ModelCfg(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})
        except (OSError, ValueError, KeyError, TypeError):
            pass
    return model_entry(str(run.config.get("model", "demo_net"))).cfg


@dataclass
class Samples:
    """``per_class`` images of each of ``classes``, class by class, and how they were obtained."""

    images: torch.Tensor
    classes: list[int]
    per_class: int
    how: str


def generated_images(run: RunFolder, mcfg: ModelCfg) -> Samples | None:
    """Generated images, one row per shown class; None when the run kept neither a generator nor a set."""
    classes = shown_classes(mcfg.num_classes)
    generator = saved_generator(run, mcfg)
    if generator is not None:
        return Samples(draw(generator, classes), classes, PER_CLASS,
                       f"drawn from the run's generator with seed {SEED} (batch statistics, as in the run)")
    calib = _calibration_set(run)
    if calib is not None:
        images, labels = calib
        per_class = min([PER_CLASS, *(int((labels == c).sum()) for c in classes)])
        if per_class > 0:
            rows = [images[labels == c][:per_class] for c in classes]
            return Samples(torch.cat(rows), classes, per_class, "the first images of each class in the generated "
                           "calibration set")
    return None


@torch.no_grad()
def draw(generator: nn.Module, classes: list[int], per_class: int = PER_CLASS, seed: int = SEED) -> torch.Tensor:
    """``per_class`` images of each class from latents of a private random generator (the global one is left
    alone), in train mode: the generator's BatchNorm layers normalise the batch as they did in the run."""
    g = torch.Generator().manual_seed(seed)
    y = torch.tensor(classes).repeat_interleave(per_class)
    z = torch.randn(len(y), generator.latent_dim, generator=g)
    return generator.train()(z, y)


def saved_generator(run: RunFolder, mcfg: ModelCfg) -> nn.Module | None:
    """The run's trained generator rebuilt from its config and saved weights; None when there is none."""
    from ..dfq.generator_choice import genotype_spec
    from ..recon import GDFQGenerator, generator_from_genotype

    spec = str(run.config.get("generator", "gdfq"))
    state = _generator_state(run)
    if state is None:
        return None
    try:
        if spec == "gdfq":
            generator: nn.Module = GDFQGenerator(mcfg.num_classes, mcfg.input_size)
        elif spec == "search":
            genotype = run.path / "search" / "genotype.json"
            generator = generator_from_genotype(genotype, mcfg.num_classes, mcfg.input_size)
        else:
            generator = generator_from_genotype(genotype_spec(spec), mcfg.num_classes, mcfg.input_size)
        generator.load_state_dict(state)
    except Exception:  # another generator kind, or weights that do not fit: no picture from it
        return None
    return generator


def _generator_state(run: RunFolder) -> dict[str, torch.Tensor] | None:
    file = Path(run.path) / "generator.safetensors"
    if file.is_file():
        from safetensors.torch import load_file

        return load_file(str(file))
    ckpt = run.checkpoint
    state = ckpt.get("parts", {}).get("generator") if ckpt else None
    return state if isinstance(state, dict) and state else None


def _calibration_set(run: RunFolder) -> tuple[torch.Tensor, torch.Tensor] | None:
    ckpt = run.checkpoint
    try:
        calib = ckpt["ranks"][0]["parts"]["calib"]  # type: ignore[index]
        return calib["images"], calib["labels"]
    except (TypeError, KeyError, IndexError):
        return None
