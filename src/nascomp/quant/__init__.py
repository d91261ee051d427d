"""Quantizers (straight-through gradients), quantized layers, binary blocks and cost counting."""

from .modules import (
                      QuantConv2d,
                      QuantLinear,
                      freeze_ranges,
                      mark_frozen,
                      protocol_bits,
                      quant_layers,
                      quant_spec,
                      quantize_model,
                      set_observing,
)
from .quantizers import ActQuantizer, WeightQuantizer, check_bits, fake_quantize, mse_clip_ratio, qparams
from .registry import quantizer_class

__all__ = ["ActQuantizer", "QuantConv2d", "QuantLinear", "WeightQuantizer", "check_bits", "fake_quantize",
           "freeze_ranges", "mark_frozen", "mse_clip_ratio", "protocol_bits", "qparams", "quant_layers",
           "quant_spec", "quantize_model", "quantizer_class", "set_observing"]
