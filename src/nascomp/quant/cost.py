"""Cost of a model from one forward pass: parameters, size in bits, FLOPs, BOPs and OPs.

Convention of Bi-Real Net (Liu et al., ECCV 2018) and ReActNet (Liu et al., ECCV 2020):

* a ``nn.Conv2d`` (or any subclass) costs ``MACs = Cin * Cout * kh * kw * Hout * Wout / groups``;
  a ``nn.Linear`` costs ``MACs = in_features * out_features`` per output row; biases are not counted;
* bit widths are read from the module's ``wbits`` / ``abits`` attributes (32 when absent or ``None``);
  a layer with ``wbits * abits < 32 * 32`` gives ``BOPs = MACs * wbits * abits`` (binary: BOPs = MACs),
  any other layer gives ``FLOPs = MACs``;
* a multiple-binary-base layer (ABC-Net, :mod:`nascomp.quant.multibase`) runs ``binary_convs`` binary
  convolutions per call (M x N), read from that attribute (1 when absent): its BOPs are
  ``MACs * wbits * abits * binary_convs`` with MACs those of one base. Group-Net's K branches are K times
  the filters of one conv, so its MACs already count K convolutions;
* ``OPs = FLOPs + BOPs / 64``;
* BatchNorm, activations, pooling, sign and residual adds are free, unless ``include_other=True``: then
  BatchNorm costs one FLOP per output element (a folded scale and shift) and pooling one FLOP per window
  element (``Hout * Wout * C * window``); activations, sign and adds stay free;
* model size in bits = sum over parameters of ``numel * bits``, where ``bits`` is the owning layer's
  ``wbits`` for a ``weight`` of a layer with ``wbits < 32`` and 32 for everything else (biases, BN affine,
  full-precision layers); a layer that stores several binary planes per weight (ABC-Net's M weight bases,
  its ``weight_planes`` attribute) counts ``wbits * weight_planes`` bits per weight. Buffers (BN running
  statistics) and the per-channel scales that a binarizer derives from the weights at run time are not counted.

The forward pass uses a batch of one zero image on the model's device, in eval mode and without
gradients; the modes of all modules are restored afterwards.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from ..errors import ConfigError

FULL_PRECISION_BITS = 32
BOPS_PER_OP = 64
POOLS = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)


@dataclass
class LayerCost:
    """One counted call of one module."""

    name: str
    type: str
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    macs: int
    wbits: int
    abits: int
    flops: int
    bops: int
    convs: int = 1


@dataclass
class CostReport:
    """Totals and per-layer rows of :func:`count_cost`; ``ops = flops + bops / 64``."""

    input_size: tuple[int, ...]
    params: int
    size_bits: int
    flops: int
    bops: int
    layers: list[LayerCost] = field(default_factory=list)

    @property
    def ops(self) -> float:
        return self.flops + self.bops / BOPS_PER_OP

    @property
    def size_mbytes(self) -> float:
        return self.size_bits / 8 / 2**20

    def to_dict(self) -> dict:
        """A JSON-serialisable dict (totals, including ``ops`` and ``size_mbytes``, and the layer rows)."""
        out = asdict(self)
        out["ops"] = self.ops
        out["size_mbytes"] = self.size_mbytes
        return out


def layer_bits(module: nn.Module) -> tuple[int, int]:
    """``(wbits, abits)`` of ``module``; a missing or ``None`` attribute means full precision (32)."""
    bits = []
    for attr in ("wbits", "abits"):
        value = getattr(module, attr, None)
        value = FULL_PRECISION_BITS if value is None else value
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{type(module).__name__}.{attr} must be a positive int, got {value!r}")
        bits.append(value)
    return bits[0], bits[1]


def binary_convs(module: nn.Module) -> int:
    """Binary convolutions one call of ``module`` runs (its ``binary_convs`` attribute; 1 when absent)."""
    value = getattr(module, "binary_convs", 1)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{type(module).__name__}.binary_convs must be a positive int, got {value!r}")
    return value


def _macs(module: nn.Module, out: torch.Tensor) -> int:
    """MACs of a conv or linear call; ``out`` is its output (batch of 1)."""
    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        return out.numel() * (module.in_channels // module.groups) * kh * kw
    return out.numel() * module.in_features


def _other_flops(module: nn.Module, inp: torch.Tensor, out: torch.Tensor) -> int:
    """FLOPs of BatchNorm (one per output element) or pooling (one per window element)."""
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return out.numel()
    if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
        k = module.kernel_size
        kh, kw = (k, k) if isinstance(k, int) else k
        return out.numel() * kh * kw
    hin, win = inp.shape[-2:]
    hout, wout = out.shape[-2:]
    return out.numel() * -(-hin // hout) * -(-win // wout)


def _row(name: str, module: nn.Module, inp: torch.Tensor, out: torch.Tensor) -> LayerCost:
    """The cost row of one call of ``module``."""
    kind = type(module).__name__
    shapes = (tuple(inp.shape), tuple(out.shape))
    if not isinstance(module, (nn.Conv2d, nn.Linear)):
        return LayerCost(
            name,
            kind,
            *shapes,
            0,
            FULL_PRECISION_BITS,
            FULL_PRECISION_BITS,
            _other_flops(module, inp, out),
            0,
        )
    macs = _macs(module, out)
    wbits, abits = layer_bits(module)
    if wbits * abits < FULL_PRECISION_BITS**2:
        convs = binary_convs(module)
        return LayerCost(name, kind, *shapes, macs, wbits, abits, 0, macs * wbits * abits * convs, convs)
    return LayerCost(name, kind, *shapes, macs, wbits, abits, macs, 0)


def model_size_bits(model: nn.Module) -> tuple[int, int]:
    """``(params, size_bits)``: parameter count and storage in bits (see the module docstring)."""
    seen: set[int] = set()
    params = size = 0
    for module in model.modules():
        for pname, p in module.named_parameters(recurse=False):
            if id(p) in seen:
                continue
            seen.add(id(p))
            bits = FULL_PRECISION_BITS
            if pname == "weight" and hasattr(module, "wbits"):
                bits = min(layer_bits(module)[0] * getattr(module, "weight_planes", 1), FULL_PRECISION_BITS)
            params += p.numel()
            size += p.numel() * bits
    return params, size


def _check_input_size(input_size: tuple[int, ...]) -> tuple[int, ...]:
    size = tuple(input_size)
    if len(size) != 3 or not all(isinstance(s, int) and s > 0 for s in size):
        raise ConfigError(
            f"input size must be three positive ints (channels, height, width), got {input_size!r}"
        )
    return size


def _counted(module: nn.Module, include_other: bool) -> bool:
    if isinstance(module, (nn.Conv2d, nn.Linear)):
        return True
    return include_other and isinstance(module, (nn.modules.batchnorm._BatchNorm, *POOLS))


def _trace(model: nn.Module, x: torch.Tensor, include_other: bool) -> list[LayerCost]:
    """Run ``model(x)`` once with hooks on the counted modules and return their rows in call order."""
    rows: list[LayerCost] = []

    def hook_for(name: str):
        def hook(module: nn.Module, args: tuple, out: torch.Tensor) -> None:
            rows.append(_row(name, module, args[0], out))

        return hook

    handles = [
        m.register_forward_hook(hook_for(n or type(m).__name__))
        for n, m in model.named_modules()
        if _counted(m, include_other)
    ]
    try:
        model(x)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(f"the model does not accept input of size {tuple(x.shape[1:])}: {first}") from err
    finally:
        for h in handles:
            h.remove()
    return rows


def count_cost(
    model: nn.Module, input_size: tuple[int, int, int] = (3, 224, 224), include_other: bool = False
) -> CostReport:
    """Count params, size in bits, FLOPs, BOPs and OPs of ``model`` on one ``input_size`` image.

    Every ``nn.Conv2d``/``nn.Linear`` (subclasses included, e.g. ``BinaryConv2d``, ``QuantConv2d``) is
    counted through its ``wbits``/``abits`` attributes; see the module docstring for the convention.
    """
    size = _check_input_size(input_size)
    modes = {m: m.training for m in model.modules()}
    first = next(model.parameters(), None)
    device = first.device if first is not None else torch.device("cpu")
    dtype = first.dtype if first is not None and first.is_floating_point() else torch.float32
    model.eval()
    try:
        with torch.no_grad():
            rows = _trace(model, torch.zeros(1, *size, device=device, dtype=dtype), include_other)
    finally:
        for m, mode in modes.items():
            m.training = mode
    params, size_bits = model_size_bits(model)
    flops = sum(r.flops for r in rows)
    bops = sum(r.bops for r in rows)
    return CostReport(size, params, size_bits, flops, bops, rows)


def sci(x: float) -> str:
    """Scientific notation with three significant digits and a bare exponent: ``1.63e8``, ``0`` for 0."""
    if x == 0:
        return "0"
    mantissa, exponent = f"{x:.2e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def _shape(shape: tuple[int, ...]) -> str:
    return "x".join(str(s) for s in shape[1:])


def format_cost_table(report: CostReport) -> str:
    """A per-layer text table (name, type, shapes, MACs, W/A bits [x binary convs], FLOPs, BOPs), then the totals."""
    header = ("layer", "type", "in", "out", "MACs", "W/A", "FLOPs", "BOPs")
    body = [
        (
            r.name,
            r.type,
            _shape(r.in_shape),
            _shape(r.out_shape),
            sci(r.macs),
            f"{r.wbits}/{r.abits}" + (f" x{r.convs}" if r.convs > 1 else ""),
            sci(r.flops),
            sci(r.bops),
        )
        for r in report.layers
    ]
    widths = [max(len(row[i]) for row in (header, *body)) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in (header, *body)
    ]
    lines.insert(1, "-" * len(lines[0]))
    lines += [
        "",
        f"input      {'x'.join(map(str, report.input_size))}",
        f"params     {sci(report.params)}",
        f"size       {sci(report.size_bits)} bits ({report.size_mbytes:.2f} MiB)",
        f"FLOPs      {sci(report.flops)}",
        f"BOPs       {sci(report.bops)}",
        f"OPs        {sci(report.ops)}  (FLOPs + BOPs/{BOPS_PER_OP})",
    ]
    return "\n".join(lines)
