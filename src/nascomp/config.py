"""Pipeline configs: one dataclass per pipeline, presets, YAML round trip.

A preset fills every field it names; options given on the command line override it. The resolved config
is written into the run folder; ``--resume`` takes the run's own config from there, and refuses an option given
again with another value.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from .errors import ConfigError


@dataclass
class DFQConfig:
    """Data-free quantization (GDFQ loop or a fixed generated calibration set), see ``nascomp.dfq``."""

    model: str = "demo_net"
    weights: str | None = None
    data: str = "demo"  # evaluation data only: quantization never sees a real image
    generator: str = "gdfq"  # gdfq | noise | direct | genie | autorecon-<name> | PATH/genotype.json | search
    wbits: int = 4
    abits: int = 4
    first_last_bits: int | None = None  # None: GDFQ's protocol (all layers alike); 8: BRECQ/Genie's first/last layers
    layer_bits: list[str] = field(default_factory=list)  # PATTERN=W/A overrides (fnmatch on module names), in order
    preset: str = "demo"
    schedule: str = "calibset"  # calibset: train G, draw a fixed set, calibrate, KD; gdfq: GDFQ's loop
    seed: int = 0
    device: str = "auto"
    batch_size: int = 64
    gen_steps: int = 100  # calibset: generator updates before the set is drawn
    gen_lr: float = 1e-3
    calib_size: int = 512
    holdout_size: int = 128  # calibset: generated images kept out of training to select the delivered epoch
    epochs: int = 4
    fresh_images: bool = False  # calibset: KD epochs on newly drawn images (calib_size each) from the trained G
    iters_per_epoch: int = 0  # gdfq: iterations per epoch; calibset: one pass over the set
    warmup_epochs: int = 0  # gdfq: epochs in which only G trains and activation ranges are observed
    student_lr: float = 1e-4
    student_optimizer: str = "sgd"  # sgd: Nesterov momentum 0.9 (GDFQ); adam: betas (0.9, 0.999)
    milestones: list[int] = field(default_factory=list)
    lr_schedule: str = "step"  # step: x0.1 at each milestone (GDFQ); cosine: student lr to 0 over the epochs
    temperature: float = 20.0
    kd_weight: float = 1.0
    ce_weight: float = 1.0
    weight_decay: float = 1e-4
    act_observer: str = "mse"
    weight_observer: str = "mse"
    eval_every: int = 1
    eval_batch_size: int | None = None  # None: 500 for CIFAR-size inputs, fewer for larger ones (memory)
    precision: str = "fp32"  # generator and teacher: fp32 | bf16 | auto (bf16 where native), "+cl": channels-last
    method: str = "kd"  # after calibration: kd (GDFQ's fine-tune) | recon (BRECQ block reconstruction) | recon+kd
    recon_iters: int = 1000  # optimizer steps per reconstructed unit
    recon_batch: int = 32
    recon_round_lr: float = 1e-3  # AdaRound's rounding variables
    recon_step_lr: float = 4e-4  # LSQ activation steps
    recon_drop: float = 0.5  # QDrop: probability that an activation element stays full precision (0: BRECQ)
    recon_weight_quant: str = "adaround"  # weight quantizer learned in reconstruction: adaround | lsq | uniform
    recon_act_quant: str = "lsq"  # activation quantizer learned in reconstruction: lsq | uniform
    direct_steps: int = 200  # --generator direct | genie: Adam steps per batch of optimised images
    direct_lr: float | None = None  # Adam lr (cosine to 0) of the pixels (direct; None: 0.25) or latents (genie; 0.03)
    direct_jitter: int = 2  # --generator direct | genie: largest random circular shift per step, in pixels (0: none)
    refine_steps: int = 0  # a generator's calibration images then take this many direct steps each (0: none)
    refine_lr: float = 0.05  # Adam lr of that refinement (cosine to 0; jitter as direct_jitter)


# GDFQ's route at a CPU budget: train the generator, calibrate MSE ranges on its images, KD fine-tune on fresh ones
_QUICK_KD: dict[str, Any] = dict(schedule="calibset", batch_size=64, gen_steps=800, calib_size=2048, holdout_size=0,
                                 epochs=3, fresh_images=True, lr_schedule="cosine", ce_weight=0.0,
                                 act_observer="mse", weight_observer="mse", eval_every=1)

DFQ_PRESETS: dict[str, dict[str, Any]] = {
    "demo": {},
    # the same generator, its images refined toward the BN statistics, then block reconstruction (AdaRound + LSQ +
    # QDrop) in place of KD; chosen on CIFAR-10 train images (docs/DFQ.md)
    "quick": {**_QUICK_KD, "refine_steps": 50, "refine_lr": 0.05, "method": "recon"},
    "quick-kd": _QUICK_KD,
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
    return check_ranges(replace(cls(), **values))


def resume_config(cls: type, saved: dict[str, Any], preset: str | None, overrides: dict[str, Any]) -> Any:
    """The config of a run being resumed: the run's own ``config.yaml`` (``saved``), then every override that is
    not None (and ``preset`` when given). A resume so needs no option repeated, and an option given with another
    value than the run's is still refused by ``RunDir.resume``, in one line that names it. Settings a resume may
    change (the device: a run goes on on another machine) are the class defaults unless given again."""
    from .engine.rundir import RESUME_MAY_CHANGE

    known = {f.name for f in fields(cls)} - RESUME_MAY_CHANGE
    values = {**{k: v for k, v in saved.items() if k in known}, **{k: v for k, v in overrides.items() if v is not None}}
    if preset is not None:
        values["preset"] = preset
    return check_ranges(replace(cls(), **values))


# Allowed ranges of numeric options, by field name (a name means the same in every config): (low, high), inclusive.
RANGES: dict[str, tuple[float, float]] = {
    "batch_size": (2, 1 << 16), "gen_steps": (0, 10**8), "calib_size": (1, 10**6), "holdout_size": (0, 10**6),
    "epochs": (0, 10**6), "iters_per_epoch": (0, 10**8), "warmup_epochs": (0, 10**6), "steps_per_epoch": (1, 10**8),
    "student_lr": (0, 10), "gen_lr": (0, 10), "lr": (0, 10), "w_lr": (0, 10), "a_lr": (0, 10), "arch_lr": (0, 10),
    "temperature": (1e-3, 1e3), "kd_weight": (0, 1e6), "ce_weight": (0, 1e6), "weight_decay": (0, 1),
    "a_weight_decay": (0, 1), "arch_weight_decay": (0, 1), "grad_clip": (0, 1e9), "eval_every": (0, 10**6),
    "eval_batch_size": (1, 1 << 16), "subset": (0, 10**9), "eval_subset": (0, 10**9), "channels": (1, 4096),
    "layers": (1, 1000), "max_parameter_free": (0, 1000), "tau_max": (1e-6, 1e6), "tau_min": (1e-6, 1e6),
    "seed": (0, 2**63 - 1), "recon_iters": (0, 10**7), "recon_batch": (1, 1 << 16), "recon_round_lr": (0, 10),
    "recon_step_lr": (0, 10), "recon_drop": (0, 1), "direct_steps": (1, 10**7), "direct_lr": (0, 10), "direct_jitter": (0, 64),
    "refine_steps": (0, 10**7), "refine_lr": (0, 10),
    "stages": (1, 3), "order": (1, 2), "wbits": (1, 32), "abits": (1, 32),
    "first_last_bits": (1, 32),
    "workers": (0, 256), "input_side": (1, 4096),
}


def check_ranges(config: Any) -> Any:
    """Refuse a numeric option outside its range (or NaN/inf) with one line naming the option and the range."""
    for f in fields(config):
        value, bounds = getattr(config, f.name), RANGES.get(f.name)
        if bounds is None or value is None or isinstance(value, bool) or not isinstance(value, int | float):
            continue
        low, high = bounds
        if not (math.isfinite(value) and low <= value <= high):
            raise ConfigError(f"--{f.name.replace('_', '-')} {value}: must be a number from {low:g} to {high:g}")
    return config


def to_dict(config: Any) -> dict[str, Any]:
    return asdict(config)


@dataclass
class GeneratorSearchConfig:
    """AutoReCon generator search (DARTS on the generator supernet with L_r), see ``nascomp.recon.search``."""

    model: str = "demo_net"
    weights: str | None = None
    preset: str = "demo"
    order: int = 1  # 1: first-order DARTS; 2: unrolled (second-order) alpha gradient
    seed: int = 0
    device: str = "auto"
    precision: str = "fp32"  # forward arithmetic of the search steps (supernet and teacher): fp32 | bf16 | auto (+cl: channels-last)
    batch_size: int = 16
    epochs: int = 2
    steps_per_epoch: int = 5  # one step = one alpha update and one weight update, each on a fresh latent batch
    channels: int = 16  # supernet width; 64 is the published generator's, less is a search proxy
    gen_lr: float = 1e-3  # Adam, betas (0.5, 0.999): the GDFQ generator's optimiser
    arch_lr: float = 3e-4  # Adam, betas (0.5, 0.999), weight decay arch_weight_decay (DARTS)
    arch_weight_decay: float = 1e-3
    grad_clip: float = 5.0


GENERATOR_SEARCH_PRESETS: dict[str, dict[str, Any]] = {
    "demo": {},
    "quick": dict(batch_size=32, epochs=5, steps_per_epoch=20, channels=16),
    "paper": dict(batch_size=200, epochs=50, steps_per_epoch=200, channels=64),
}


@dataclass
class NASBSearchConfig:
    """Binary-cell architecture search (bi-level DARTS on the NASB supernet), see ``nascomp.nasb.search``."""

    data: str = "demo"  # labelled training images, split into two halves (weights / alphas)
    preset: str = "demo"
    seed: int = 0
    device: str = "auto"
    precision: str = "fp32"  # forward arithmetic of the search steps: fp32 | bf16 | auto (+cl: channels-last)
    channels: int = 16  # supernet width C (stem and first cells)
    layers: int = 8  # cells; reduction cells at layers // 3 and 2 * layers // 3
    subset: int = 0  # training images drawn (0 = all) before the split into halves
    epochs: int = 50
    batch_size: int = 64
    order: int = 1  # 1: first-order DARTS; 2: unrolled (second-order) alpha gradient
    relaxation: str = "softmax"  # softmax: DARTS mixture; gumbel: one sampled op per edge (GDAS)
    max_parameter_free: int | None = None  # cap on pool/skip edges kept per cell at derivation (P-DARTS); None: no cap
    tau_max: float = 10.0  # gumbel temperature, annealed linearly to tau_min over the epochs (GDAS)
    tau_min: float = 0.1
    w_lr: float = 1e-3  # Adam on the weights, cosine decay to 0 over the search
    weight_decay: float = 0.0  # on real-valued weights; binary conv weights get none
    a_lr: float = 3e-4  # Adam, betas (0.5, 0.999), weight decay a_weight_decay (DARTS)
    a_weight_decay: float = 1e-3
    grad_clip: float = 5.0
    augment: bool = True  # random crop (padding 4) + flip on both halves
    plot: bool = True  # draw alphas.png (matplotlib; seconds for 28 panels)
    binary_shortcut: bool = True  # False: binary ops without their real-valued shortcut (remedy ablation)
    bases: str | None = None  # binary bases of every binary conv: single (None) | groupnet:K | abcnet:MxN


NASB_SEARCH_PRESETS: dict[str, dict[str, Any]] = {
    "demo": dict(channels=8, layers=5, epochs=3, batch_size=64, augment=False),
    "quick": dict(channels=8, layers=5, subset=10000, epochs=4, batch_size=32, relaxation="gumbel"),
    "paper": {},
}


@dataclass
class NASBTrainConfig:
    """Staged training of a binary network (found genotype or a named model), see ``nascomp.nasb.train``."""

    genotype: str | None = None  # genotype.json (or a search run folder holding one) ...
    model: str | None = None  # ... or a registered binary model, e.g. cifar_birealnet20
    data: str = "demo"  # labelled training images
    eval_data: str | None = None  # labelled test images (default: the test split of demo)
    preset: str = "demo"
    seed: int = 0
    device: str = "auto"
    precision: str = "fp32"  # forward arithmetic of the training steps (student and teacher; evaluation stays fp32): fp32 | bf16 | auto (+cl: channels-last)
    channels: int | None = None  # width C of a genotype network (default 16); not for --model
    bases: str | None = None  # binary bases of a genotype network: single | groupnet:K | abcnet:MxN (None: the genotype's)
    layers: int = 8  # cells of a genotype network
    stages: int = 3  # 3: real -> binary acts -> binary all; 2: the last two; 1: fully binary only
    epochs: int = 2  # per stage
    batch_size: int = 64
    lr: float = 1e-3  # Adam, restarted at each stage
    lr_schedule: str = "linear"  # linear (ReActNet) | cosine, decay to 0 within each stage
    weight_decay: float = 1e-5  # L2 on real-valued weights; binary conv weights get none in stage 3
    subset: int = 0  # training images drawn (0 = all)
    eval_subset: int = 0  # test images drawn (0 = all)
    augment: bool = True  # random crop (padding 4) + horizontal flip
    stage1_act: str = "clip"  # activation of stage 1 in place of the sign: clip (Bi-Real) | identity
    teacher: str | None = None  # real-valued teacher for KD, e.g. cifar_resnet56 (demo_net: built-in)
    teacher_weights: str | None = None
    temperature: float = 1.0  # KD: kd_weight * T^2 * KL(teacher_T || student_T) + ce_weight * CE
    kd_weight: float = 1.0
    ce_weight: float = 1.0
    eval_every: int = 0  # evaluate every n epochs too (the last epoch of each stage always is)
    eval_batch_size: int = 500


NASB_TRAIN_PRESETS: dict[str, dict[str, Any]] = {
    "demo": dict(layers=5, epochs=2, batch_size=64, augment=False),
    "quick": dict(layers=8, subset=6000, eval_subset=2000, epochs=3, batch_size=64),
    "paper": dict(layers=8, epochs=100, batch_size=128),
    # all 50,000 CIFAR-10 images, 3 stages x 128 epochs (ReActNet recipe, our length; docs/NASB.md), for a GPU
    # lease: resumable with --resume (checkpoint every epoch), --stop-after to end a lease cleanly
    "full": dict(layers=8, subset=0, eval_subset=0, epochs=128, batch_size=256, lr=5e-4, eval_every=16),
}
