"""Data reconstruction from a pretrained model (knows nothing of quantization)."""

from .autorecon import SPACE as AUTORECON_SPACE
from .autorecon import (
    AutoReConGenerator,
    AutoReConSupernet,
    generator_from_genotype,
    load_genotype,
    published_genotypes,
)
from .bns import BNStatistics
from .direct import (
    OPTIMISED_SOURCES,
    PARAMETERISATIONS,
    DirectImages,
    DirectOptimizer,
    DirectSettings,
    optimise_images,
)
from .generators import GaussianNoise, GDFQGenerator, ImageSource, upsample_nearest2x
from .objective import BNS_WEIGHT, SyntheticBatch, freeze_teacher, generator_step, reconstruction_loss
from .search import GeneratorSearch, search_generator

__all__ = ["AUTORECON_SPACE", "BNS_WEIGHT", "AutoReConGenerator", "AutoReConSupernet", "BNStatistics",
           "DirectImages", "DirectOptimizer", "DirectSettings", "OPTIMISED_SOURCES", "PARAMETERISATIONS",
           "GDFQGenerator", "GaussianNoise", "GeneratorSearch", "ImageSource", "SyntheticBatch", "freeze_teacher",
           "generator_from_genotype", "generator_step", "load_genotype", "optimise_images", "published_genotypes",
           "reconstruction_loss", "search_generator", "upsample_nearest2x"]
