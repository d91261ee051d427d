"""Building the pieces a DFQ run needs from its config: the teacher, the evaluation data, the generator."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from ..config import DFQConfig
from ..data import ImageBatches, ImageSet, open_images
from ..errors import ConfigError
from ..models import ModelCfg, create_model
from ..recon import OPTIMISED_SOURCES, DirectImages, GaussianNoise, GDFQGenerator, ImageSource


def load_teacher(cfg: DFQConfig) -> nn.Module:
    """The full-precision model: the built-in demo teacher, or ``--model`` with ``--weights``."""
    if cfg.model == "demo_net" and cfg.weights is None:
        from ..demo import demo_teacher

        return demo_teacher()
    if cfg.weights is None:
        raise ConfigError(f"--model {cfg.model} needs --weights PATH (a trained checkpoint); data-free "
                          "quantization of random weights means nothing")
    return create_model(cfg.model, cfg.weights).eval()


def eval_batches(cfg: DFQConfig, teacher: nn.Module, rank: int = 0, world_size: int = 1) -> ImageBatches:
    """The labelled evaluation set, normalised with the teacher's constants (this rank's share of it)."""
    mcfg = teacher.default_cfg
    if cfg.data == "demo" and cfg.model != "demo_net":
        raise ConfigError(f"--model {cfg.model} needs --data: the labelled evaluation images of its task (the "
                          "built-in demo digits are only for demo_net), e.g. --data ../shared/data/cifar10-jpeg/test.tar.gz")
    imageset = labelled_images(cfg.data, mcfg, cfg.model)
    batch = cfg.eval_batch_size or default_eval_batch(mcfg.input_size)
    return ImageBatches(imageset, mcfg, batch_size=batch, rank=rank, world_size=world_size)


def labelled_images(data: str, mcfg: ModelCfg, model: str) -> ImageSet:
    """The labelled test images of ``data`` for a model of convention ``mcfg``, checked against its classes."""
    return check_task(open_images(data, split="test", channels=mcfg.input_size[0]), mcfg.num_classes, data, model)


def check_task(imageset: ImageSet, num_classes: int, data: str, model: str) -> ImageSet:
    """The evaluation images must have exactly the model's classes: the class index is the folder's position,
    so one folder too many or too few shifts every label after it."""
    if len(imageset.classes) != num_classes:
        raise ConfigError(f"data {data} has {len(imageset.classes)} class folders but {model} predicts {num_classes} "
                          "classes; pass the evaluation set of the model's task (one folder per class, empty ones "
                          "included)")
    return imageset


def default_eval_batch(input_size: tuple[int, int, int], pixels: int = 2**21) -> int:
    """Images per evaluation batch: 500 at CIFAR's 32 x 32, fewer for larger inputs so that a batch of a
    fake-quantized model's activations stays within a few GB (about 40 at 224 x 224)."""
    _, h, w = input_size
    return max(8, min(500, pixels // (h * w)))


def build_generator(cfg: DFQConfig, teacher: nn.Module, workdir: Path | None = None,
                    quiet: bool = True) -> ImageSource:
    """``--generator``: ``gdfq`` (GDFQ's generator), ``noise`` (Gaussian control), ``direct`` or ``genie`` (images
    optimised pixel by pixel or as Genie-D latents, :mod:`nascomp.recon.direct`; nothing to train here),
    ``autorecon-<name>`` (a published AutoReCon genotype), ``PATH/genotype.json`` (a searched one) or ``search``
    (search one first, in ``<workdir>/search``; see :mod:`.generator_choice`)."""
    from . import generator_choice  # it imports load_teacher from here

    mcfg = teacher.default_cfg
    if cfg.generator == "gdfq":
        return GDFQGenerator(mcfg.num_classes, mcfg.input_size)
    if cfg.generator == "noise":
        return GaussianNoise(mcfg.num_classes, mcfg.input_size)
    if cfg.generator in OPTIMISED_SOURCES:
        return DirectImages(mcfg.num_classes, mcfg.input_size)
    if cfg.generator == "search":
        if workdir is None:
            raise ValueError("--generator search needs the run folder to search in (workdir)")
        return generator_choice.searched_generator(cfg, teacher, workdir, quiet)
    return generator_choice.genotype_generator(cfg.generator, teacher)
