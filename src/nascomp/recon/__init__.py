"""Data reconstruction from a pretrained model (knows nothing of quantization)."""

from .bns import BNStatistics
from .generators import GaussianNoise, GDFQGenerator, ImageSource
from .objective import BNS_WEIGHT, SyntheticBatch, freeze_teacher, generator_step, reconstruction_loss

__all__ = ["BNS_WEIGHT", "BNStatistics", "GDFQGenerator", "GaussianNoise", "ImageSource", "SyntheticBatch",
           "freeze_teacher", "generator_step", "reconstruction_loss"]
