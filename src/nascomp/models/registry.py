"""A registry of model constructors that can be named, timm style.

Each entry carries the model's *input convention* (image size, channels, classes and the mean/std the
model was trained with): normalisation belongs to the model, not to the data. ``create_model`` attaches
that convention to the module as ``model.default_cfg`` so every pipeline reads it from one place.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from torch import nn

from ..errors import ConfigError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ModelCfg:
    """What a model expects as input and gives as output.

    ``interpolation`` and ``crop_pct`` give the evaluation transform of images larger than the input: the
    shorter side is resized to ``round(size / crop_pct)`` with that interpolation (``bilinear`` or ``bicubic``),
    then the centre ``size`` x ``size`` is cropped (the defaults are the usual ImageNet 256 -> 224).
    """

    num_classes: int
    input_size: tuple[int, int, int]  # (channels, height, width)
    mean: tuple[float, ...]
    std: tuple[float, ...]
    family: str = ""
    extra: dict = field(default_factory=dict)
    interpolation: str = "bilinear"
    crop_pct: float = 224 / 256

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ModelEntry:
    name: str
    builder: Callable[..., nn.Module]
    cfg: ModelCfg


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(name: str, cfg: ModelCfg, replace: bool = False) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator: ``@register_model("cifar_resnet20", cfg)`` over a constructor ``fn(num_classes=...)``;
    ``replace`` lets a name be registered again (the Python API registers a user's model object)."""

    def wrap(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY and not replace:
            raise ValueError(f"model {name!r} registered twice")
        _REGISTRY[name] = ModelEntry(name, fn, cfg)
        return fn

    return wrap


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a shell pattern (``torchvision:<name>`` is open-ended, not listed); a
    pattern starting with ``timm:`` lists timm's models (``timm:*resnet1*``)."""
    _import_families()
    if pattern.startswith("timm:"):
        from .timm_models import list_timm

        return list_timm(pattern.split(":", 1)[1])
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))


def model_entry(name: str) -> ModelEntry:
    """The registry entry for ``name``; ``torchvision:<name>`` and ``timm:<name>`` entries are made on demand."""
    _import_families()
    if name.startswith("torchvision:"):
        from .tv import torchvision_entry

        return torchvision_entry(name.split(":", 1)[1])
    if name.startswith("timm:"):
        from .timm_models import timm_entry

        return timm_entry(name.split(":", 1)[1])
    if name not in _REGISTRY:
        close = [n for n in _REGISTRY if name.split("_")[-1] in n or n in name]
        hint = f" (did you mean {', '.join(sorted(close)[:3])}?)" if close else ""
        raise ConfigError(
            f"unknown model {name!r}{hint}; choose one of {', '.join(sorted(_REGISTRY))}, torchvision:<name> or timm:<name>"
        )
    return _REGISTRY[name]


def create_model(name: str, weights: str | Path | None = None, num_classes: int | None = None) -> nn.Module:
    """Build model ``name`` (optionally with ``num_classes`` outputs) and load ``weights`` into it.

    The returned module has ``default_cfg`` (a :class:`ModelCfg`) and ``model_name`` attributes.
    """
    from .checkpoint import load_weights

    entry = model_entry(name)
    cfg = entry.cfg
    if num_classes is not None and num_classes != cfg.num_classes:
        cfg = replace(cfg, num_classes=num_classes, extra=dict(cfg.extra))
    model = entry.builder(num_classes=cfg.num_classes)
    model.default_cfg = cfg
    model.model_name = name
    if weights is not None:
        load_weights(model, weights, name)
    return model


def _import_families() -> None:
    """Import the package, whose ``__init__`` imports every family module (their decorators fill the registry)."""
    import nascomp.models  # noqa: F401
