"""``torchvision:<name>``: any torchvision classifier, built with ``weights=None`` (weights come from a file)."""

from __future__ import annotations

from ..errors import ConfigError
from .registry import IMAGENET_MEAN, IMAGENET_STD, ModelCfg, ModelEntry


def torchvision_entry(arch: str) -> ModelEntry:
    import torchvision

    available = torchvision.models.list_models(module=torchvision.models)
    if arch not in available:
        raise ConfigError(f"unknown torchvision model {arch!r}; see torchvision.models.list_models() (e.g. resnet18)")
    size = 299 if arch == "inception_v3" else 224

    def build(num_classes: int = 1000):
        return torchvision.models.get_model(arch, weights=None, num_classes=num_classes)

    cfg = ModelCfg(1000, (3, size, size), IMAGENET_MEAN, IMAGENET_STD, family=f"torchvision:{arch}")
    return ModelEntry(f"torchvision:{arch}", build, cfg)
