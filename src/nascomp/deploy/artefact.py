"""One artefact format for every run kind: ``model.safetensors`` (tensors only) + ``model.json`` (the spec).

``model.json`` says what the tensors are::

    {"format": "nascomp-model", "version": 1,
     "kind": "dfq-student" | "nasb-network" | "float" | "generator",
     "architecture": {"builder": "registry", "name": "cifar_resnet20", ...},   # how to build the float model
     "input": {"num_classes": 10, "input_size": [3, 32, 32], "mean": [...], "std": [...], ...},
     "quant": {...},                                                          # the run's settings (dfq)
     "layers": {"layer1.0.conv1": {"type": "uniform", "wbits": 4, "abits": 4, "shape": [16, 16, 3, 3]},
                "cells.0.edge.conv": {"type": "binary", "binary_acts": true, "binary_weights": true, ...}}}

``model.safetensors`` holds, for every compressed layer ``L``, its weights as packed integers
(:mod:`.packing`: ``L.weight.q``, 4-bit in nibbles, binary in bits) with ``L.weight.scale`` and
``L.weight.zero`` per output channel (``W = (q - z) * s``), the weight grid ``L.weight.range`` ([lo, hi] per
channel, so the fake-quantized student is rebuilt exactly) and ``L.act_range``; and every other tensor of the
model (BatchNorm, biases, full-precision layers) as it is. No pickle anywhere. A DFQ run's trained generator is an
artefact of its own beside the student (``generator.safetensors`` + ``generator.json``, kind ``generator``; its
``input`` is the convention of the images it makes).

:func:`load_artefact` rebuilds the deployable :mod:`frozen <.frozen>` model (what ``eval`` and ``export`` use)
or, with ``trainable=True``, the fake-quantized student (what ``cost`` counts and what can be fine-tuned).
A binary student's scale ``alpha = mean|W|`` is recomputed from the stored ``+-alpha`` weights, equal to the
stored one up to float rounding; the frozen model uses the stored ``alpha``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from ..engine.rundir import atomic_write_text
from ..errors import CheckpointError, ExportError, UserError
from ..models import ModelCfg, create_model
from ..quant.binary import BinaryConv2d
from ..quant.modules import QUANT_TYPES, QuantConv2d, QuantLinear
from .frozen import (
    FrozenConv2d,
    FrozenLinear,
    QuantizedWeight,
    SignActivation,
    UniformActivation,
    frozen_layer,
)
from .packing import pack, unpack

FORMAT, VERSION = "nascomp-model", 1
KINDS = ("dfq-student", "nasb-network", "float", "generator")
WEIGHTS_FILE, SPEC_FILE = "model.safetensors", "model.json"

# builder name -> function(recipe, input cfg) -> float model; other parts register theirs with `architecture`
ARCHITECTURES: dict[str, Callable[[dict, ModelCfg], nn.Module]] = {}


def architecture(name: str) -> Callable:
    """Register a builder of float models from a JSON recipe (the ``architecture`` of a spec)."""

    def add(fn: Callable[[dict, ModelCfg], nn.Module]) -> Callable[[dict, ModelCfg], nn.Module]:
        ARCHITECTURES[name] = fn
        return fn

    return add


@architecture("nasb")
def _nasb_network(recipe: dict, cfg: ModelCfg) -> nn.Module:
    from ..nas import Genotype
    from ..nasb.network import NASBNetwork

    genotype = Genotype.from_dict(recipe["genotype"], source="model.json")
    return NASBNetwork(genotype, cfg.input_size[0], cfg.num_classes, recipe["channels"], recipe["layers"])


@architecture("gdfq-generator")
def _gdfq_generator(recipe: dict, cfg: ModelCfg) -> nn.Module:
    from ..recon import GDFQGenerator

    return GDFQGenerator(cfg.num_classes, cfg.input_size)


@architecture("autorecon-generator")
def _autorecon_generator(recipe: dict, cfg: ModelCfg) -> nn.Module:
    from ..nas import Genotype
    from ..recon import AutoReConGenerator

    genotype = Genotype.from_dict(recipe["genotype"], source="generator.json")
    return AutoReConGenerator(genotype, cfg.num_classes, cfg.input_size, channels=recipe["channels"])


def _generator_recipe(model: nn.Module) -> dict | None:
    from ..recon import AutoReConGenerator, GDFQGenerator

    if isinstance(model, GDFQGenerator):
        return {"builder": "gdfq-generator"}
    if isinstance(model, AutoReConGenerator):
        return {"builder": "autorecon-generator", "genotype": model.genotype.to_dict(), "channels": model.channels}
    return None


@architecture("registry")
def _registry_model(recipe: dict, cfg: ModelCfg) -> nn.Module:
    model = create_model(recipe["name"], num_classes=cfg.num_classes)
    if model.default_cfg.input_size[0] != cfg.input_size[0]:
        from ..nasb.student import adapt_input_channels

        model = adapt_input_channels(model, cfg.input_size[0])
    return model


def architecture_of(model: nn.Module) -> dict:
    """The recipe that rebuilds ``model``'s float architecture: its ``architecture`` attribute, or its
    registered name."""
    recipe = getattr(model, "architecture", None) or _generator_recipe(model)
    if recipe is not None:
        return dict(recipe)
    name = getattr(model, "model_name", None)
    if isinstance(name, str):
        from ..models.registry import model_entry

        try:
            model_entry(name)  # registered, or torchvision:<name> / timm:<name>
            return {"builder": "registry", "name": name}
        except UserError:
            pass
    return {"builder": "user", "class": f"{type(model).__module__}.{type(model).__qualname__}"}


def input_cfg(model: nn.Module) -> ModelCfg:
    cfg = getattr(model, "default_cfg", None)
    if not isinstance(cfg, ModelCfg):
        raise ExportError("the model has no input convention (default_cfg: classes, input size, mean, std); "
                          "build it with nascomp.models.create_model or give mean/std/input_size")
    return cfg


def _compressed_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Layers stored as integers; multi-base binary layers (BinaryConv2d subclasses) keep their float weights."""
    return [(n, m) for n, m in model.named_modules()
            if isinstance(m, (QuantConv2d, QuantLinear)) or type(m) is BinaryConv2d]


def _layer_entry(name: str, layer: nn.Module, tensors: dict[str, torch.Tensor]) -> dict:
    frozen = frozen_layer(layer, name)
    assert frozen is not None
    weight = getattr(frozen, "quantized", None)
    entry: dict[str, Any] = {"shape": list(layer.weight.shape)}
    if isinstance(layer, BinaryConv2d):
        entry.update(type="binary", binary_acts=layer.binary_acts, binary_weights=layer.binary_weights)
    else:
        entry.update(type="uniform", wbits=layer.wbits, abits=layer.abits)
        if layer.abits < 32:
            tensors[f"{name}.act_range"] = torch.stack([layer.act_quant.lo, layer.act_quant.hi]).float()
        if layer.wbits < 32:
            lo, hi = layer.weight_quant._range(layer.weight)
            tensors[f"{name}.weight.range"] = torch.stack([lo.flatten(), hi.flatten()], 1).float()
    if weight is not None:
        tensors[f"{name}.weight.q"] = pack(weight.q, weight.bits)
        tensors[f"{name}.weight.scale"] = weight.scale
        if weight.bits > 1:
            tensors[f"{name}.weight.zero"] = weight.zero
    else:
        tensors[f"{name}.weight"] = layer.weight.detach()
    return entry


def _owned_by_layer(key: str, layer: str) -> bool:
    rest = key[len(layer) + 1:] if key.startswith(layer + ".") else None
    return rest is not None and (rest == "weight" or rest.startswith(("act_quant.", "weight_quant.")))


@torch.no_grad()
def save_artefact(model: nn.Module, folder: str | Path, kind: str, extra: dict | None = None,
                  stem: str = "model", cfg: ModelCfg | None = None) -> Path:
    """Write ``model`` as ``<stem>.safetensors`` + ``<stem>.json`` into ``folder``; returns the spec's path.
    ``cfg``: the input convention when the model carries none (a generator: that of its images)."""
    if kind not in KINDS:
        raise ValueError(f"unknown artefact kind {kind!r}")
    folder = Path(folder)
    tensors: dict[str, torch.Tensor] = {}
    layers = {name: _layer_entry(name, layer, tensors) for name, layer in _compressed_layers(model)}
    for key, value in model.state_dict().items():
        if not any(_owned_by_layer(key, name) for name in layers):
            tensors[key] = value.detach()
    spec = {"format": FORMAT, "version": VERSION, "kind": kind, "architecture": architecture_of(model),
            "input": _cfg_to_json(cfg or input_cfg(model)), **(extra or {}), "layers": layers}
    tmp = folder / f".{stem}.safetensors.tmp"
    save_file({k: v.contiguous().cpu() for k, v in tensors.items()}, str(tmp))
    tmp.replace(folder / f"{stem}.safetensors")
    atomic_write_text(folder / f"{stem}.json", json.dumps(spec, indent=1) + "\n")
    return folder / f"{stem}.json"


def _cfg_to_json(cfg: ModelCfg) -> dict:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()}


def _cfg_from_json(data: dict, path: Path) -> ModelCfg:
    try:
        return ModelCfg(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items()})
    except TypeError as e:
        raise CheckpointError(f"{path}: the 'input' entry is not an input convention ({e})") from None


def is_artefact(path: str | Path) -> bool:
    return (Path(path) / SPEC_FILE).is_file()


def read_spec(folder: str | Path, stem: str = "model") -> dict:
    """The spec ``<stem>.json`` of the artefact in ``folder``, checked to be one this version reads."""
    path = Path(folder) / f"{stem}.json"
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{folder} holds no {path.name}; pass a finished nascomp run folder") from None
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise CheckpointError(f"{path} is not valid JSON ({type(e).__name__}); the run folder is damaged") from None
    if not isinstance(spec, dict) or spec.get("format") != FORMAT or spec.get("version") != VERSION:
        raise CheckpointError(f"{path} is not a nascomp model spec (format {FORMAT}, version {VERSION})")
    missing = [k for k in ("kind", "architecture", "input", "layers") if k not in spec]
    if missing or spec["kind"] not in KINDS:
        raise CheckpointError(f"{path} lacks {', '.join(missing) or 'a known kind'}; the run folder is damaged")
    return spec


def _read_tensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except FileNotFoundError:
        raise CheckpointError(f"{path.parent} holds {path.stem}.json but no {path.name}; the run folder is damaged") from None
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path} could not be read ({str(e).splitlines()[0][:100]}); is it complete?") from None


def _float_model(spec: dict, cfg: ModelCfg, folder: Path, model: nn.Module | None) -> nn.Module:
    if model is not None:
        return model
    recipe = spec["architecture"]
    builder = ARCHITECTURES.get(recipe.get("builder"))
    if builder is None:
        raise CheckpointError(f"{folder} holds a model of your own ({recipe.get('class', recipe.get('builder'))}); "
                              "pass the same architecture: nascomp.load(run, model=MyNet())")
    return builder(recipe, cfg)


def _take(tensors: dict[str, torch.Tensor], key: str, source: Path) -> torch.Tensor:
    try:
        return tensors.pop(key)
    except KeyError:
        raise CheckpointError(f"{source} lacks {key}; the run folder is damaged") from None


def _stored_weight(name: str, entry: dict, bits: int, tensors: dict, source: Path) -> QuantizedWeight:
    shape = entry["shape"]
    try:
        q = unpack(_take(tensors, f"{name}.weight.q", source), bits, shape)
    except ValueError as e:
        raise CheckpointError(f"{source}: {name}.weight.q: {e}") from None
    scale = _take(tensors, f"{name}.weight.scale", source)
    zero = _take(tensors, f"{name}.weight.zero", source) if bits > 1 else torch.zeros(shape[0])
    return QuantizedWeight(q, scale, zero, bits)


def _frozen_from_entry(name: str, entry: dict, layer: nn.Module, tensors: dict, source: Path) -> nn.Module:
    act: nn.Module = nn.Identity()
    weight: nn.Module | torch.Tensor
    if entry["type"] == "binary":
        act = SignActivation() if entry["binary_acts"] else nn.Identity()
        weight = (_stored_weight(name, entry, 1, tensors, source) if entry["binary_weights"]
                  else _take(tensors, f"{name}.weight", source))
    else:
        if entry["abits"] < 32:
            from ..quant.quantizers import qparams

            lo, hi = _take(tensors, f"{name}.act_range", source)
            scale, zero = qparams(lo, hi, entry["abits"])
            act = UniformActivation(scale.item(), int(zero.item()), entry["abits"])
        if entry["wbits"] < 32:
            tensors.pop(f"{name}.weight.range", None)
            weight = _stored_weight(name, entry, entry["wbits"], tensors, source)
        else:
            weight = _take(tensors, f"{name}.weight", source)
    frozen_type = FrozenConv2d if isinstance(layer, nn.Conv2d) else FrozenLinear
    bias = tensors.pop(f"{name}.bias", None)
    if bias is not None:
        layer.bias = nn.Parameter(bias)
    return frozen_type(layer, act, weight)  # type: ignore[arg-type]


@torch.no_grad()
def _student_from_entry(name: str, entry: dict, layer: nn.Module, tensors: dict, spec: dict, source: Path) -> nn.Module:
    if entry["type"] == "binary":
        if not isinstance(layer, BinaryConv2d):
            raise CheckpointError(f"{source}: {name} is binary but the architecture builds a {type(layer).__name__}")
        layer.binary_acts, layer.binary_weights = entry["binary_acts"], entry["binary_weights"]
        if entry["binary_weights"]:
            layer.weight.copy_(_stored_weight(name, entry, 1, tensors, source)())
        return layer
    quant = spec.get("quant", {})
    new = QUANT_TYPES[type(layer)].from_float(layer, entry["wbits"], entry["abits"],
                                              quant.get("weight_observer", "minmax"), quant.get("act_observer", "ema"))
    if entry["abits"] < 32:
        lo, hi = _take(tensors, f"{name}.act_range", source)
        new.act_quant.lo.copy_(lo), new.act_quant.hi.copy_(hi), new.act_quant.steps.fill_(1)
    new.act_quant.frozen.fill_(True)
    if entry["wbits"] < 32:
        grid = _take(tensors, f"{name}.weight.range", source)
        new.weight.copy_(_stored_weight(name, entry, entry["wbits"], tensors, source)())
        new.weight_quant.fix_grid(grid[:, 0], grid[:, 1])
    return new


def load_artefact(folder: str | Path, trainable: bool = False, model: nn.Module | None = None,
                  stem: str = "model") -> nn.Module:
    """Rebuild the model saved in ``folder`` in eval mode: frozen (deployable) or, with ``trainable``, the
    fake-quantized student. ``model``: the float architecture, for models nascomp cannot build by name;
    ``stem="generator"``: a DFQ run's generator."""
    folder = Path(folder)
    spec = read_spec(folder, stem)
    cfg = _cfg_from_json(spec["input"], folder / f"{stem}.json")
    source = folder / f"{stem}.safetensors"
    tensors = _read_tensors(source)
    net = _float_model(spec, cfg, folder, model)
    for name, entry in spec["layers"].items():
        try:
            layer = net.get_submodule(name)
        except AttributeError:
            raise CheckpointError(f"{folder / (stem + '.json')} names layer {name}, which the architecture lacks") from None
        new = (_student_from_entry(name, entry, layer, tensors, spec, source) if trainable
               else _frozen_from_entry(name, entry, layer, tensors, source))
        parent, _, attr = name.rpartition(".")
        setattr(net.get_submodule(parent), attr, new)
    missing, unexpected = net.load_state_dict(tensors, strict=False)
    missing = [k for k in missing if not any(k.startswith(name + ".") for name in spec["layers"])]
    if missing or unexpected:
        what = f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}"
        raise CheckpointError(f"{source} does not fit its spec ({what})")
    net.default_cfg = cfg
    net.artefact = spec
    if spec["architecture"].get("builder") == "registry":
        net.model_name = spec["architecture"]["name"]
    if "quant" in spec:
        net.quant_settings = spec["quant"]
    return net.eval()

