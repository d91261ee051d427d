"""Pipeline configs: one dataclass per pipeline, presets, YAML round trip.

A preset fills every field it names; options given on the command line override it. The resolved config
is written into the run folder, and ``--resume`` refuses a run folder whose config differs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from .errors import ConfigError


@dataclass
class DFQConfig:
    """Data-free quantization (GDFQ loop or a fixed generated calibration set), see ``nascomp.dfq``."""

    model: str = "demo_net"
    weights: str | None = None
    data: str = "demo"  # evaluation data only: quantization never sees a real image
    generator: str = "gdfq"  # gdfq | noise | autorecon-<name> | PATH/genotype.json | search
    wbits: int = 4
    abits: int = 4
    preset: str = "demo"
    schedule: str = "calibset"  # calibset: train G, draw a fixed set, calibrate, KD; gdfq: GDFQ's loop
    seed: int = 0
    device: str = "auto"
    batch_size: int = 64
    gen_steps: int = 100  # calibset: generator updates before the set is drawn
    gen_lr: float = 1e-3
    calib_size: int = 512
    epochs: int = 4
    iters_per_epoch: int = 0  # gdfq: iterations per epoch; calibset: one pass over the set
    warmup_epochs: int = 0  # gdfq: epochs in which only G trains and activation ranges are observed
    student_lr: float = 1e-4
    milestones: list[int] = field(default_factory=list)
    temperature: float = 20.0
    kd_weight: float = 1.0
    ce_weight: float = 1.0
    weight_decay: float = 1e-4
    act_observer: str = "mse"
    weight_observer: str = "mse"
    eval_every: int = 1
    eval_batch_size: int = 500


DFQ_PRESETS: dict[str, dict[str, Any]] = {
    "demo": {},
    "quick": dict(schedule="calibset", batch_size=64, gen_steps=200, calib_size=2048, epochs=10,
                  act_observer="mse", weight_observer="mse", eval_every=1),
    "paper": dict(schedule="gdfq", batch_size=200, epochs=400, iters_per_epoch=200, warmup_epochs=4,
                  milestones=[100, 200, 300], act_observer="ema", weight_observer="minmax", eval_every=1),
}


def resolve(cls: type, presets: dict[str, dict[str, Any]], preset: str, overrides: dict[str, Any]) -> Any:
    """``cls`` with the preset's values, then every override that is not None."""
    if preset not in presets:
        raise ConfigError(f"unknown preset {preset!r}; choose one of {', '.join(presets)}")
    known = {f.name for f in fields(cls)}
    unknown = set(overrides) - known
    if unknown:
        raise ConfigError(f"unknown option(s) {', '.join(sorted(unknown))} for {cls.__name__}")
    values = {**presets[preset], **{k: v for k, v in overrides.items() if v is not None}, "preset": preset}
    return replace(cls(), **values)


def to_dict(config: Any) -> dict[str, Any]:
    return asdict(config)
