"""Quantized layers and ``quantize_model``: every Conv2d/Linear becomes a layer that fake-quantizes its
weights (per output channel) and its input activation (per tensor). Quantizing each layer's *input* covers
functional ReLUs (as in the CIFAR ResNets) without touching the model's forward code. BatchNorm stays float.
The first layer's input (the image) stays full precision, as in GDFQ.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

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


def quantize_model(model: nn.Module, wbits: int, abits: int, weight_observer: str = "minmax",
                   act_observer: str = "ema", quantize_image: bool = False) -> nn.Module:
    """A copy of ``model`` with every Conv2d/Linear replaced by its quantized version.

    ``quantize_image=False`` keeps the first layer's input (the image) in full precision.
    """
    check_bits(wbits, "wbits"), check_bits(abits, "abits"), check_observer(weight_observer), check_observer(act_observer)
    student = copy.deepcopy(model)
    targets = [name for name, m in student.named_modules() if type(m) in QUANT_TYPES]  # forward-definition order
    for index, name in enumerate(targets):
        parent_name, _, attr = name.rpartition(".")
        parent = student.get_submodule(parent_name)
        layer = getattr(parent, attr)
        layer_abits = abits if (quantize_image or index > 0) else 32
        quantized = QUANT_TYPES[type(layer)].from_float(layer, wbits, layer_abits, weight_observer, act_observer)
        setattr(parent, attr, quantized.to(layer.weight.device))  # the quantizers' buffers join the weights' device
    student.quant_settings = {"wbits": wbits, "abits": abits, "weight_observer": weight_observer,
                              "act_observer": act_observer, "quantize_image": quantize_image}
    return student


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
