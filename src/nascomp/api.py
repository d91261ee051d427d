"""``nascomp.quantize``: data-free quantization of a model object you already have (the CLI's ``nascomp dfq``).

The model is registered for the run as ``user:<ClassName>`` with the input convention you give, its weights
are handed to the run as a safetensors file in the run folder, and the run is the same DFQ run the CLI makes
(same presets, options, checkpoints and ``--resume``). The saved artefact records the architecture as yours, so
``nascomp.load(run, model=MyNet())`` reads it back.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import nn

from .errors import ConfigError


@dataclass
class DFQResult:
    """What :func:`quantize` gives back: the deployable model, the run's metrics and its folder."""

    model: nn.Module
    metrics: dict[str, Any]
    run_dir: Path


def _user_model(model: nn.Module, mean, std, input_size, num_classes: int) -> tuple[str, Any]:
    from .models import ModelCfg
    from .models.registry import register_model

    if not isinstance(model, nn.Module):
        raise ConfigError(f"nascomp.quantize needs a torch.nn.Module, got {type(model).__name__}")
    if len(tuple(input_size)) != 3 or len(tuple(mean)) != input_size[0] or len(tuple(std)) != input_size[0]:
        raise ConfigError("input_size is (channels, height, width) and mean/std hold one value per channel")
    cfg = ModelCfg(int(num_classes), tuple(int(v) for v in input_size), tuple(float(v) for v in mean),
                   tuple(float(v) for v in std), family="user")
    name = f"user:{type(model).__qualname__}"
    recipe = {"builder": "user", "class": f"{type(model).__module__}.{type(model).__qualname__}"}
    template = copy.deepcopy(model).cpu().eval()
    template.architecture = recipe

    def build(num_classes: int) -> nn.Module:
        return copy.deepcopy(template)

    register_model(name, cfg, replace=True)(build)
    return name, template


def quantize(model: nn.Module, *, mean, std, input_size, num_classes: int, data: str | None = None,
             wbits: int | None = None, abits: int | None = None, preset: str | None = None, seed: int | None = None,
             out: str | Path | None = None, resume: str | Path | None = None, force: bool = False,
             quiet: bool = True, keep_checkpoint: bool = False, **options: Any) -> DFQResult:
    """Quantize ``model`` to W``wbits``A``abits`` without its training data and return the result.

    ``mean``/``std``/``input_size`` are the normalisation and (C, H, W) input the model was trained with;
    ``data`` the labelled evaluation images of its task (ImageFolder, archive; accuracy is reported on it,
    nothing is trained on it); ``options`` any other field of :class:`nascomp.config.DFQConfig`
    (``method="recon+kd"``, ``generator="direct"``, ``first_last_bits=8``, ...). Without ``resume``, ``data`` is
    required and the rest defaults to ``preset="quick"``, W4A4, ``seed=0``. ``resume`` (a run folder) continues an
    interrupted run: give the same model (and its ``mean``/``std``/``input_size``/``num_classes``) again; every
    other setting is read from the run's ``config.yaml``, and one given again must equal the run's. As after the
    CLI's run, the folder gets its ``report.md`` and the resume checkpoint is removed unless ``keep_checkpoint``.
    """
    from .config import DFQ_PRESETS, DFQConfig, resolve, resume_config
    from .deploy.api import load_model
    from .dfq import run_dfq
    from .engine.distributed import current
    from .report import finish_run

    fields = {f.name for f in dataclasses.fields(DFQConfig)}
    unknown = sorted(set(options) - fields)
    if unknown:
        raise ConfigError(f"unknown DFQ option(s) {', '.join(unknown)}; see nascomp.config.DFQConfig")
    if resume is None and data is None:
        raise ConfigError("nascomp.quantize needs data= (the labelled evaluation images of the model's task), "
                          "or resume= (a run folder to continue)")
    name, template = _user_model(model, mean, std, input_size, num_classes)
    overrides = {"model": name, "weights": str(_weights_file(template)), "data": data, "wbits": wbits,
                 "abits": abits, "seed": seed, **options}
    if resume is not None:
        from .dfq.pipeline import DFQRun
        from .engine.rundir import saved_config

        cfg = resume_config(DFQConfig, saved_config(resume, DFQRun.job), preset, overrides)
    else:
        defaults = {"wbits": 4, "abits": 4, "seed": 0}
        cfg = resolve(DFQConfig, DFQ_PRESETS, preset or "quick",
                      {**overrides, **{k: v for k, v in defaults.items() if overrides[k] is None}})
    metrics = run_dfq(cfg, out=None if out is None else str(out), force=force,
                      resume=None if resume is None else str(resume), quiet=quiet)
    run_dir = Path(metrics["run_dir"])
    if current().is_main:
        finish_run(run_dir, keep_checkpoint)
    return DFQResult(load_model(run_dir, model=copy.deepcopy(template)), metrics, run_dir)


def _weights_file(model: nn.Module) -> Path:
    """The model's weights as a safetensors file in the cache, named by their hash (the same model gives the
    same path, so a resumed run sees the config it started with)."""
    import hashlib

    from .cache import cache_dir

    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    digest = hashlib.sha256()
    for key in sorted(state):
        digest.update(key.encode()), digest.update(state[key].flatten().view(torch.uint8).numpy().tobytes())
    path = cache_dir("user-models") / f"{type(model).__name__}-{digest.hexdigest()[:16]}.safetensors"
    if not path.is_file():
        tmp = path.with_suffix(".tmp")
        save_file(state, str(tmp))
        tmp.replace(path)
    return path
