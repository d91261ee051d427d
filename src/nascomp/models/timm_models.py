"""``timm:<name>``: any timm model by name (``timm:resnet50``, ``timm:resnet10t.c3_in1k``), built with
``pretrained=False`` so nothing is downloaded; the weights come from the user's file (``--weights``).

The input convention (input size, mean/std, interpolation, crop fraction, classes) is the one timm's pretrained
config gives for that name and tag, at its *test* size where it has one (``test_input_size`` and
``test_crop_pct``, as timm's ``validate.py`` evaluates by default). timm is an optional extra
(``pip install nascomp[timm]``, pinned ``timm==1.0.31``); without it a ``timm:`` name is one ConfigError line.
"""

from __future__ import annotations

from ..errors import ConfigError
from .registry import ModelCfg, ModelEntry

PREFIX = "timm:"
TIMM_PIN = "timm==1.0.31"
INTERPOLATIONS = ("bilinear", "bicubic")  # the resizes nascomp's image loader does


def _timm():
    try:
        import timm
    except ImportError:
        raise ConfigError(f"timm models need timm: pip install 'nascomp[timm]' (or {TIMM_PIN})") from None
    return timm


def timm_entry(name: str) -> ModelEntry:
    """The registry entry of timm model ``name`` (``arch`` or ``arch.tag``), made from its pretrained config."""
    timm = _timm()
    cfg = timm.models.get_pretrained_cfg(name) if timm.is_model(name) else None
    if cfg is None:
        close = timm.list_models(f"*{name.split('.')[0]}*")[:3]
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ConfigError(f"unknown timm model {name!r}{hint}; see timm.list_models('pattern'), e.g. timm:resnet18")

    def build(num_classes: int = cfg.num_classes):
        return timm.create_model(name, pretrained=False, num_classes=num_classes)

    return ModelEntry(f"{PREFIX}{name}", build, model_cfg(name, cfg))


def model_cfg(name: str, cfg) -> ModelCfg:
    """nascomp's :class:`ModelCfg` from timm's ``PretrainedCfg`` (test size and crop where it has them)."""
    size = tuple(cfg.test_input_size or cfg.input_size)
    crop = cfg.test_crop_pct or cfg.crop_pct or 1.0
    interpolation = cfg.interpolation if cfg.interpolation in INTERPOLATIONS else "bicubic"
    return ModelCfg(cfg.num_classes or 1000, size, tuple(cfg.mean), tuple(cfg.std), family=f"{PREFIX}{name}",
                    interpolation=interpolation, crop_pct=float(crop))  # type: ignore[arg-type]


def list_timm(pattern: str) -> list[str]:
    """``timm:<name>`` for every timm model (architecture, no tag) matching the shell ``pattern``."""
    return [f"{PREFIX}{n}" for n in _timm().list_models(pattern)]
