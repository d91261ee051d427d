"""The deployable form of a compressed model: integer weights with scales, constant activation grids.

:func:`freeze` turns every quantized or binary layer of a model into a :class:`FrozenConv2d` /
:class:`FrozenLinear` whose forward has no data-dependent branch, so ``torch.export`` and the ONNX exporter
trace it. The frozen model computes exactly what the fake-quantized student computes (same formulas, same
float32 operations):

* weights: ``W = (q - z) * s`` per output channel, ``q`` the stored integers (``uint8`` in [0, 2^b - 1]; for a
  binary layer ``int8`` in {-1, +1} with ``z = 0`` and ``s = alpha = mean|W|``, XNOR-Net's scale);
* activations (uniform, b bits, Jacob et al. CVPR 2018): ``Q(x) = clamp(round(x / s), -z, 2^b - 1 - z) * s``
  with ``s`` and ``z`` constants; binary activations: ``sign(x)`` with ``sign(0) := +1`` (Bi-Real Net);
* multiple binary bases (:mod:`nascomp.quant.multibase`): ABC-Net's weight is ``sum_i alpha_i B_i`` over M
  stored +-1 planes, its activation ``sum_n beta_n sign(x - s_n)`` with constant shifts and scales; a Group-Net
  layer is one binary conv of K stacked branches, grouped (``groups = K``) when its input holds K branches.

Under :func:`onnx_qdq` the two quantized pieces become custom ops that the ONNX exporter translates into
standard QuantizeLinear/DequantizeLinear nodes (see :mod:`.onnx`); elsewhere they are plain aten arithmetic,
so a ``.pt2`` program needs nothing of nascomp to load.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ExportError
from ..quant.binary import BinaryConv2d, channel_scale
from ..quant.modules import QuantConv2d, QuantLinear
from ..quant.multibase import ABCConv2d, GroupNetConv2d, abc_weight_bases, least_squares_alphas
from ..quant.quantizers import qparams

_QDQ = {"on": False}


@contextlib.contextmanager
def onnx_qdq() -> Iterator[None]:
    """Trace the quantized pieces as the custom ops that the ONNX translation table knows."""
    _QDQ["on"] = True
    try:
        yield
    finally:
        _QDQ["on"] = False


@torch.library.custom_op("nascomp::quantize_activation", mutates_args=())
def quantize_activation(x: torch.Tensor, scale: float, zero: int, bits: int) -> torch.Tensor:
    """``clamp(round(x / s), -z, 2^b - 1 - z) * s``: quantize and dequantize one activation tensor."""
    return torch.clamp(torch.round(x / scale), -zero, 2**bits - 1 - zero) * scale


@quantize_activation.register_fake
def _(x: torch.Tensor, scale: float, zero: int, bits: int) -> torch.Tensor:
    return torch.empty_like(x)


@torch.library.custom_op("nascomp::dequantize_weight", mutates_args=())
def dequantize_weight(q: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor, bits: int) -> torch.Tensor:
    """``(q - z) * s`` with one ``s``, ``z`` per output channel (dim 0 of ``q``)."""
    shape = (-1,) + (1,) * (q.dim() - 1)
    return (q.float() - zero.view(shape)) * scale.view(shape)


@dequantize_weight.register_fake
def _(q: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor, bits: int) -> torch.Tensor:
    return torch.empty(q.shape, dtype=torch.float32, device=q.device)


class UniformActivation(nn.Module):
    """``Q(x) = clamp(round(x / s), -z, 2^b - 1 - z) * s`` with constant ``s`` (float) and ``z`` (int)."""

    def __init__(self, scale: float, zero: int, bits: int):
        super().__init__()
        self.scale, self.zero, self.bits = float(scale), int(zero), int(bits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if _QDQ["on"]:
            return torch.ops.nascomp.quantize_activation(x, self.scale, self.zero, self.bits)
        return torch.clamp(torch.round(x / self.scale), -self.zero, 2**self.bits - 1 - self.zero) * self.scale

    def extra_repr(self) -> str:
        return f"bits={self.bits}, scale={self.scale:.6g}, zero={self.zero}"


def sign(x: torch.Tensor) -> torch.Tensor:
    """``sign(x)`` in {-1, +1} with ``sign(0) := +1``, in ``x``'s dtype."""
    return torch.where(x >= 0, 1.0, -1.0).to(x.dtype)


class SignActivation(nn.Module):
    """``sign(x)`` in {-1, +1}, ``sign(0) := +1`` (Bi-Real Net's binary activation, no gradient needed)."""

    bits = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return sign(x)


class MultiSignActivation(nn.Module):
    """ABC-Net's activation ``sum_n beta_n sign(x - s_n)`` with constant shifts ``s_n`` and scales ``beta_n``
    (the frozen :meth:`~nascomp.quant.multibase.ABCConv2d.binary_input`, same order of operations)."""

    bits = 1

    def __init__(self, shifts: torch.Tensor, betas: torch.Tensor):
        super().__init__()
        self.register_buffer("shifts", shifts.detach().clone())
        self.register_buffer("betas", betas.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor | int = 0
        for n in range(len(self.betas)):
            out = out + self.betas[n] * sign(x - self.shifts[n])
        return out  # type: ignore[return-value]

    def extra_repr(self) -> str:
        return f"bases={len(self.betas)}"


class QuantizedWeight(nn.Module):
    """A weight held as integers: ``W = (q - z) * s`` per output channel (see the module docstring)."""

    def __init__(self, q: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor, bits: int):
        super().__init__()
        self.bits = int(bits)
        self.register_buffer("q", q)
        self.register_buffer("scale", scale.detach().flatten().float().clone())
        self.register_buffer("zero", zero.detach().flatten().float().clone())

    def forward(self) -> torch.Tensor:
        if _QDQ["on"]:
            return torch.ops.nascomp.dequantize_weight(self.q, self.scale, self.zero, self.bits)
        shape = (-1,) + (1,) * (self.q.dim() - 1)
        return (self.q.float() - self.zero.view(shape)) * self.scale.view(shape)

    def extra_repr(self) -> str:
        return f"bits={self.bits}, shape={tuple(self.q.shape)}"


class MultiBinaryWeight(nn.Module):
    """ABC-Net's weight ``W = sum_i alpha_i B_i``: M binary :class:`QuantizedWeight` planes, summed as
    :class:`~nascomp.quant.multibase.ABCWeightSTE` sums them (one stacked reduction, so the values are the same)."""

    bits = 1

    def __init__(self, planes: list[QuantizedWeight]):
        super().__init__()
        self.planes = nn.ModuleList(planes)

    def forward(self) -> torch.Tensor:
        return torch.stack([plane() for plane in self.planes]).sum(0)

    def extra_repr(self) -> str:
        return f"planes={len(self.planes)}"


class _FrozenLayer(nn.Module):
    """Shared part: the input activation ``act`` and the weight (a :class:`QuantizedWeight` or float)."""

    act: nn.Module

    def _init_weight(self, weight: nn.Module | torch.Tensor, bias: torch.Tensor | None) -> None:
        if isinstance(weight, QuantizedWeight | MultiBinaryWeight):
            self.quantized = weight
        else:
            self.register_buffer("float_weight", weight.detach().clone())
        self.register_buffer("bias", None if bias is None else bias.detach().clone())

    def weight_value(self) -> torch.Tensor:
        return self.quantized() if hasattr(self, "quantized") else self.float_weight

    @property
    def wbits(self) -> int:
        return self.quantized.bits if hasattr(self, "quantized") else 32

    @property
    def abits(self) -> int:
        return getattr(self.act, "bits", 32)


class FrozenConv2d(_FrozenLayer):
    """``conv(A(x), W) + b`` with the geometry of the layer it was frozen from (zero padding)."""

    def __init__(self, conv: nn.Conv2d, act: nn.Module, weight: nn.Module | torch.Tensor):
        super().__init__()
        if conv.padding_mode != "zeros":
            raise ExportError(f"cannot freeze a conv with padding_mode={conv.padding_mode!r}; only zero padding")
        self.stride, self.padding, self.dilation, self.groups = conv.stride, conv.padding, conv.dilation, conv.groups
        self.act = act
        self._init_weight(weight, conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(self.act(x), self.weight_value(), self.bias, self.stride, self.padding, self.dilation,
                        self.groups)


class FrozenBranchConv2d(FrozenConv2d):
    """Group-Net's K stacked binary branches (:class:`~nascomp.quant.multibase.GroupNetConv2d`): every branch reads
    the whole input, or, when the input holds K branches (``K * Cin`` channels), branch k reads its own
    (``groups = K``); the choice depends on the input's shape only, so tracing fixes it."""

    def __init__(self, conv: GroupNetConv2d, act: nn.Module, weight: nn.Module | torch.Tensor):
        super().__init__(conv, act, weight)
        self.branches, self.in_channels = conv.branches, conv.in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        groups = self.branches if self.branches > 1 and x.shape[1] == self.branches * self.in_channels else 1
        return F.conv2d(self.act(x), self.weight_value(), self.bias, self.stride, self.padding, self.dilation, groups)


class FrozenLinear(_FrozenLayer):
    """``A(x) W^T + b``."""

    def __init__(self, linear: nn.Linear, act: nn.Module, weight: nn.Module | torch.Tensor):
        super().__init__()
        self.act = act
        self._init_weight(weight, linear.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(self.act(x), self.weight_value(), self.bias)


def uniform_weight(w: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, bits: int) -> QuantizedWeight:
    """The integers of ``w`` on the per-channel ``bits``-bit grid of [lo, hi] (``quant.quantizers.qparams``)."""
    scale, zero = qparams(lo, hi, bits)
    q = torch.clamp(torch.round(w.detach() / scale), -zero, 2**bits - 1 - zero) + zero
    return QuantizedWeight(q.to(torch.uint8), scale, zero, bits)


def binary_weight(w: torch.Tensor) -> QuantizedWeight:
    """``sign(W)`` as int8 +-1 with ``s = mean|W|`` per output channel and ``z = 0`` (XNOR-Net)."""
    q = torch.where(w.detach() >= 0, 1, -1).to(torch.int8)
    return QuantizedWeight(q, channel_scale(w.detach()), torch.zeros(w.shape[0]), 1)


def _frozen_quant_layer(layer: QuantConv2d | QuantLinear, name: str) -> nn.Module:
    act: nn.Module = nn.Identity()
    if layer.abits < 32:
        aq = layer.act_quant
        if not bool(aq.frozen) or not aq.initialised:
            raise ExportError(f"layer {name} has no calibrated activation range; calibrate the student first")
        scale, zero = qparams(aq.lo, aq.hi, layer.abits)
        act = UniformActivation(scale.item(), int(zero.item()), layer.abits)
    weight: nn.Module | torch.Tensor = layer.weight
    if layer.wbits < 32:
        shape = (-1,) + (1,) * (layer.weight.dim() - 1)
        lo, hi = layer.weight_quant._range(layer.weight)
        weight = uniform_weight(layer.weight, lo.reshape(shape), hi.reshape(shape), layer.wbits)
    frozen_type = FrozenConv2d if isinstance(layer, nn.Conv2d) else FrozenLinear
    return frozen_type(layer, act, weight)  # type: ignore[arg-type]


def abc_weight(w: torch.Tensor, m: int) -> MultiBinaryWeight:
    """ABC-Net's M weight planes ``B_i`` as int8 +-1 with their least-squares ``alpha_i`` per output channel."""
    bases = abc_weight_bases(w.detach(), m)
    alphas = least_squares_alphas(w.detach(), bases)
    return MultiBinaryWeight([QuantizedWeight(b.to(torch.int8), a, torch.zeros(w.shape[0]), 1)
                              for b, a in zip(bases, alphas, strict=True)])


def _frozen_binary_layer(layer: BinaryConv2d, name: str) -> nn.Module:
    """Single-base layers, ABC-Net's M x N bases (M = 1 is XNOR's scaled sign) and Group-Net's K branches."""
    act: nn.Module = SignActivation() if layer.binary_acts else nn.Identity()
    weight: nn.Module | torch.Tensor = binary_weight(layer.weight) if layer.binary_weights else layer.weight
    if isinstance(layer, ABCConv2d):
        if layer.binary_acts:
            act = MultiSignActivation(layer.shifts, layer.betas)
        if layer.binary_weights and layer.weight_bases > 1:
            weight = abc_weight(layer.weight, layer.weight_bases)
    if isinstance(layer, GroupNetConv2d):
        return FrozenBranchConv2d(layer, act, weight)
    return FrozenConv2d(layer, act, weight)


def frozen_layer(layer: nn.Module, name: str) -> nn.Module | None:
    """The frozen form of one compressed layer, or None when ``layer`` is not one (kept as it is)."""
    if isinstance(layer, (QuantConv2d, QuantLinear)):
        return _frozen_quant_layer(layer, name)
    if type(layer) in (BinaryConv2d, ABCConv2d, GroupNetConv2d):  # another subclass may compute otherwise
        return _frozen_binary_layer(layer, name)
    if isinstance(layer, _FrozenLayer):
        return None
    if min(getattr(layer, "wbits", 32) or 32, getattr(layer, "abits", 32) or 32) < 32:
        raise ExportError(f"layer {name} ({type(layer).__name__}) is low-bit but has no frozen form; "
                          "it cannot be exported yet")
    return None


@torch.no_grad()
def freeze(model: nn.Module) -> nn.Module:
    """A copy of ``model`` in eval mode with every compressed layer replaced by its frozen form."""
    frozen = copy.deepcopy(model).eval()
    for name, module in list(frozen.named_modules()):
        replacement = frozen_layer(module, name) if name else None
        if replacement is not None:
            parent_name, _, attr = name.rpartition(".")
            setattr(frozen.get_submodule(parent_name), attr, replacement.to(_device(module)))
    return frozen  # the copy keeps the model's attributes (default_cfg, model_name, ...)


def _device(module: nn.Module) -> torch.device:
    return next(iter(module.parameters()), torch.empty(0)).device
