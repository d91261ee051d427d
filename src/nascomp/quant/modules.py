"""Quantized layers and ``quantize_model``: every Conv2d/Linear becomes a layer that fake-quantizes its
weights (per output channel) and its input activation (per tensor). Quantizing each layer's *input* covers
functional ReLUs (as in the CIFAR ResNets) without touching the model's forward code. BatchNorm stays float.
The first layer's input (the image) stays full precision, as in GDFQ.

Bits per layer (the *protocol*, :func:`protocol_bits`): GDFQ's protocol quantizes every layer at the given bits
(the default); the BRECQ/Genie protocol keeps the first and the last layer at 8 bits, weights and activations
(``first_last_bits=8``; the image entering the first layer stays float either way); name patterns
(``PATTERN=W/A``, fnmatch on module names) override any layer, e.g. to keep a sensitive layer wider.
"""

from __future__ import annotations

import copy
import fnmatch
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from .quantizers import ActQuantizer, WeightQuantizer, check_bits, check_observer

SPEC_FORMAT = "nascomp-quant-spec"


class _Quantized:
    """Shared part of QuantConv2d and QuantLinear: the two quantizers and the ``wbits``/``abits`` attributes
    that cost counting reads."""

    act_quant: ActQuantizer
    weight_quant: WeightQuantizer

    def _init_quantizers(self, wbits: int, abits: int, weight_observer: str, act_observer: str) -> None:
        self.wbits, self.abits = check_bits(wbits, "wbits"), check_bits(abits, "abits")
        self.act_quant = ActQuantizer(abits, act_observer)
        self.weight_quant = WeightQuantizer(wbits, self.weight.shape[0], weight_observer)

    @classmethod
    def from_float(cls, layer: nn.Module, wbits: int, abits: int, weight_observer: str = "minmax",
                   act_observer: str = "ema") -> nn.Module:
        """A quantized copy of ``layer`` that shares nothing with it (weights copied)."""
        new = copy.deepcopy(layer)
        new.__class__ = cls
        new._init_quantizers(wbits, abits, weight_observer, act_observer)
        return new


class QuantConv2d(_Quantized, nn.Conv2d):
    """Conv2d computing conv(Q_a(x), Q_w(W)) + b (bias kept in float)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(self.act_quant(x), self.weight_quant(self.weight), self.bias)


class QuantLinear(_Quantized, nn.Linear):
    """Linear computing Q_a(x) Q_w(W)^T + b (bias kept in float)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(self.act_quant(x), self.weight_quant(self.weight), self.bias)


QUANT_TYPES = {nn.Conv2d: QuantConv2d, nn.Linear: QuantLinear}


def quantizable_layers(model: nn.Module) -> list[str]:
    """Names of the Conv2d/Linear layers that :func:`quantize_model` replaces, in definition order."""
    return [name for name, m in model.named_modules() if type(m) in QUANT_TYPES]


LAYER_BITS = re.compile(r"^(?P<pattern>.+)=(?P<w>\d+)/(?P<a>\d+)$")


def parse_layer_bits(text: str) -> tuple[str, tuple[int, int]]:
    """``"PATTERN=W/A"`` -> (pattern, (W, A)); a ConfigError that shows the form otherwise."""
    match = LAYER_BITS.match(text.strip())
    if not match:
        raise ConfigError(f"--layer-bits {text!r}: write PATTERN=W/A, e.g. 'layer3.*=8/8' or 'conv1=8/32'")
    w, a = int(match["w"]), int(match["a"])
    return match["pattern"], (check_bits(w, f"--layer-bits {text} weight bits"), check_bits(a, f"--layer-bits {text} "
                                                                                                   "activation bits"))


def protocol_bits(model: nn.Module, wbits: int, abits: int, first_last_bits: int | None = None,
                  patterns: Iterable[str] = ()) -> dict[str, tuple[int, int]]:
    """(weight bits, activation bits) of every quantizable layer of ``model``: ``wbits``/``abits``, then the
    first and the last layer at ``first_last_bits`` (the BRECQ/Genie protocol; None: GDFQ's, all layers alike),
    then each ``PATTERN=W/A`` in turn (fnmatch on the module name; a later pattern wins). A pattern that matches no
    layer is a ConfigError. The first layer's input stays float unless ``quantize_model(quantize_image=True)``."""
    check_bits(wbits, "wbits"), check_bits(abits, "abits")
    names = quantizable_layers(model)
    bits = {name: (wbits, abits) for name in names}
    if first_last_bits is not None and names:
        check_bits(first_last_bits, "first_last_bits")
        bits[names[0]] = bits[names[-1]] = (first_last_bits, first_last_bits)
    for text in patterns:
        pattern, wa = parse_layer_bits(text)
        matched = fnmatch.filter(names, pattern)
        if not matched:
            shown = ", ".join(names if len(names) <= 6 else names[:3] + ["..."] + names[-2:])
            raise ConfigError(f"--layer-bits {text}: {pattern!r} matches no Conv2d/Linear layer of the model "
                              f"({len(names)} layers: {shown})")
        bits.update({name: wa for name in matched})
    return bits


def quantize_model(model: nn.Module, wbits: int, abits: int, weight_observer: str = "minmax",
                   act_observer: str = "ema", quantize_image: bool = False,
                   layer_bits: Mapping[str, Sequence[int]] | None = None) -> nn.Module:
    """A copy of ``model`` with every Conv2d/Linear replaced by its quantized version.

    Every layer gets ``wbits``/``abits`` unless ``layer_bits`` names it (module name -> (weight bits, activation
    bits), e.g. from :func:`protocol_bits`, or a saved spec's ``layer_bits``). ``quantize_image=False`` keeps the
    first layer's input (the image) in full precision whatever its bits say.
    """
    check_bits(wbits, "wbits"), check_bits(abits, "abits"), check_observer(weight_observer), check_observer(act_observer)
    student = copy.deepcopy(model)
    targets = quantizable_layers(student)  # forward-definition order
    layer_bits = {name: (int(w), int(a)) for name, (w, a) in (layer_bits or {}).items()}
    unknown = sorted(set(layer_bits) - set(targets))
    if unknown:
        raise ConfigError(f"layer_bits names layers the model does not have as Conv2d/Linear: {', '.join(unknown[:5])}")
    for index, name in enumerate(targets):
        parent_name, _, attr = name.rpartition(".")
        parent = student.get_submodule(parent_name)
        layer = getattr(parent, attr)
        layer_wbits, layer_abits = layer_bits.get(name, (wbits, abits))
        layer_abits = layer_abits if (quantize_image or index > 0) else 32
        quantized = QUANT_TYPES[type(layer)].from_float(layer, layer_wbits, layer_abits, weight_observer, act_observer)
        setattr(parent, attr, quantized.to(layer.weight.device))  # the quantizers' buffers join the weights' device
    student.quant_settings = {"wbits": wbits, "abits": abits, "weight_observer": weight_observer,
                              "act_observer": act_observer, "quantize_image": quantize_image,
                              "layer_bits": {n: list(wa) for n, wa in layer_bits.items() if wa != (wbits, abits)}}
    return student


def describe_protocol(wbits: int, abits: int, first_last_bits: int | None, patterns: Sequence[str] = (),
                      quantize_image: bool = False) -> str:
    """One line naming the protocol, for logs, metrics and benchmark tables."""
    if first_last_bits is None:
        text = f"GDFQ protocol: every layer W{wbits}A{abits}"
    else:
        text = f"BRECQ/Genie protocol: first and last layer at {first_last_bits} bits, the others W{wbits}A{abits}"
    text += "; the image is quantized" if quantize_image else "; the image stays float"
    return text + (f"; overrides {', '.join(patterns)}" if patterns else "")


def bits_by_layer(model: nn.Module) -> dict[str, list[int]]:
    """[weight bits, activation bits] of every quantized layer as built (the first layer's 32: a float image)."""
    return {name: [layer.wbits, layer.abits] for name, layer in quant_layers(model)}


def quant_layers(model: nn.Module) -> Iterator[tuple[str, _Quantized]]:
    for name, module in model.named_modules():
        if isinstance(module, _Quantized):
            yield name, module


def set_observing(model: nn.Module, observing: bool) -> None:
    """Let every activation quantizer update its range from the batches that follow (or stop)."""
    for _, layer in quant_layers(model):
        layer.act_quant.observing = observing and not bool(layer.act_quant.frozen)


def freeze_ranges(model: nn.Module) -> None:
    """Fix every activation range (MSE estimators pick their clip now) and calibrate weight clipping."""
    for _, layer in quant_layers(model):
        layer.act_quant.freeze()
        layer.weight_quant.calibrate(layer.weight)


def quant_spec(model: nn.Module) -> dict:
    """A JSON-able description of the quantization: settings and per-layer bits and ranges."""
    layers = {
        name: {
            "type": type(layer).__name__,
            "wbits": layer.wbits,
            "abits": layer.abits,
            "act_range": [layer.act_quant.lo.item(), layer.act_quant.hi.item()],
            "weight_clip_ratio": [round(r, 4) for r in layer.weight_quant.clip_ratio.tolist()],
        }
        for name, layer in quant_layers(model)
    }
    return {"format": SPEC_FORMAT, "version": 1, "model": getattr(model, "model_name", None),
            "num_classes": getattr(getattr(model, "default_cfg", None), "num_classes", None),
            **getattr(model, "quant_settings", {}), "layers": layers}


def mark_frozen(model: nn.Module) -> None:
    """After loading a saved student: ranges are final, nothing observes."""
    for _, layer in quant_layers(model):
        layer.act_quant.observing = False
        layer.act_quant.frozen.fill_(True)
