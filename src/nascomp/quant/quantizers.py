"""Uniform asymmetric fake quantization with a clipped straight-through gradient, and range estimators.

Forward (b bits, range [lo, hi] widened to contain 0, as in Jacob et al. CVPR 2018 / GDFQ):

    s = (hi - lo) / (2^b - 1),   z = round(-lo / s),
    q = clamp(round(x / s) + z, 0, 2^b - 1),   Q(x) = (q - z) * s

Backward (clipped straight-through estimator, Bengio et al. 2013; as in PACT/LSQ):

    dQ/dx = 1 if 0 <= round(x / s) + z <= 2^b - 1, else 0

so inside the range the gradient passes unchanged and clipped values get none. Weights use one range per
output channel, activations one range per tensor. Ranges come from an estimator: ``minmax`` (running
min/max), ``ema`` (exponential moving average of per-batch min/max, momentum 0.9 as GDFQ, bias-corrected once:
est_t = m_t / (1 - 0.9^t) with m_t = 0.9 m_{t-1} + 0.1 v_t, m_0 = 0) or ``mse`` (the clipping of the observed
range that minimises the quantization mean squared error, searched over clip ratios).
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError

VALID_BITS = (2, 3, 4, 5, 6, 7, 8, 32)
OBSERVERS = ("minmax", "ema", "mse")
CLIP_RATIOS = torch.linspace(0.05, 1.0, 96)
EMA_MOMENTUM = 0.9
MSE_SAMPLE = 1 << 16  # activation values kept per batch (random subsample) for the MSE clip search
MSE_RESERVOIR = 1 << 21  # values kept in all: 32 batches, the whole `quick` calibration set (2,048 images)


def check_bits(bits: int, what: str = "bits") -> int:
    """Return ``bits`` if supported (2..8, or 32 = float), else raise a ConfigError that says what is."""
    if bits not in VALID_BITS:
        raise ConfigError(f"{what}={bits} is not supported; use 2..8, or 32 for full precision")
    return int(bits)


def check_observer(name: str) -> str:
    if name not in OBSERVERS:
        raise ConfigError(f"unknown range estimator {name!r}; choose one of {', '.join(OBSERVERS)}")
    return name


def qparams(lo: torch.Tensor, hi: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Scale ``s`` and integer zero point ``z`` for the range [lo, hi] (widened to contain 0)."""
    lo, hi = lo.clamp(max=0.0), hi.clamp(min=0.0)
    scale = ((hi - lo) / (2**bits - 1)).clamp(min=1e-8)
    return scale, torch.round(-lo / scale)


class _FakeQuantize(torch.autograd.Function):
    """Q(x) with the clipped STE; the backward keeps only a boolean mask (1 byte per element)."""

    @staticmethod
    def forward(ctx, x, scale, zero, qmax):  # type: ignore[override]
        q = torch.round(x / scale)
        lo, hi = -zero, qmax - zero
        inside = (q >= lo) & (q <= hi)
        ctx.save_for_backward(inside)
        return torch.minimum(torch.maximum(q, lo), hi).mul_(scale)

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        (inside,) = ctx.saved_tensors
        return grad * inside, None, None, None


def fake_quantize(x: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, bits: int) -> torch.Tensor:
    """Q(x) on the ``bits``-bit grid of [lo, hi] (broadcast: per tensor or per channel), clipped STE gradient."""
    scale, zero = qparams(lo, hi, bits)
    return _FakeQuantize.apply(x, scale, zero, torch.tensor(float(2**bits - 1), device=x.device))


def mse_clip_ratio(x: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, bits: int, dim: int | None = None) -> torch.Tensor:
    """The ratio r in CLIP_RATIOS whose range [r*lo, r*hi] minimises mean((x - Q(x))^2).

    ``dim=None``: one ratio for the whole tensor; ``dim=0``: one per slice along dim 0 (output channels),
    with ``lo``/``hi`` broadcastable to ``x``.
    """
    x = x.detach()
    errors = []
    for r in CLIP_RATIOS.tolist():
        err = (fake_quantize(x, lo * r, hi * r, bits) - x).pow(2)
        errors.append(err.mean() if dim is None else err.flatten(1).mean(1))
    best = torch.stack(errors).argmin(0)
    return CLIP_RATIOS.to(x.device)[best]


class ActQuantizer(nn.Module):
    """Per-tensor activation fake quantizer with a range estimator (registry name ``uniform``).

    Forward Q(x) = (clamp(round(x / s) + z, 0, 2^b - 1) - z) * s with s = (hi - lo) / (2^b - 1), z = round(-lo / s);
    gradient dQ/dx = 1 inside the grid, 0 outside (clipped STE); the range [lo, hi] comes from ``minmax``, ``ema``
    or ``mse`` (the module docstring). Jacob et al. CVPR 2018; ranges as GDFQ (Xu et al. ECCV 2020).

    While ``observing`` it updates its range from each batch (and quantizes with the current estimate, as
    GDFQ's warm-up does); :meth:`freeze` fixes the range (for ``mse``: the MSE-optimal clip of the observed
    values). ``bits=32`` is the identity.
    """

    def __init__(self, bits: int, observer: str = "ema"):
        super().__init__()
        self.bits = check_bits(bits)
        self.observer = check_observer(observer)
        self.observing = False
        self.register_buffer("lo", torch.tensor(0.0))
        self.register_buffer("hi", torch.tensor(0.0))
        self.register_buffer("ema", torch.zeros(2))  # raw (not bias-corrected) EMA of (min, max)
        self.register_buffer("steps", torch.tensor(0))
        self.register_buffer("frozen", torch.tensor(False))
        self._sample: list[torch.Tensor] = []

    @property
    def initialised(self) -> bool:
        return bool(self.steps > 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.bits >= 32:
            return x
        if self.observing and not self.frozen:
            self.observe(x.detach())
        if not self.initialised:
            return x
        return fake_quantize(x, self.lo, self.hi, self.bits)

    @torch.no_grad()
    def observe(self, x: torch.Tensor) -> None:
        lo, hi = x.min(), x.max()
        self.steps += 1
        if self.observer == "ema":
            self.ema.mul_(EMA_MOMENTUM).add_((1 - EMA_MOMENTUM) * torch.stack([lo, hi]))
            corrected = self.ema / (1 - EMA_MOMENTUM ** self.steps.item())
            self.lo.copy_(corrected[0]), self.hi.copy_(corrected[1])
            return
        first = self.steps.item() == 1
        self.lo.copy_(lo if first else torch.minimum(self.lo, lo))
        self.hi.copy_(hi if first else torch.maximum(self.hi, hi))
        if self.observer == "mse" and sum(s.numel() for s in self._sample) < MSE_RESERVOIR:
            flat = x.flatten()
            pick = torch.randint(0, flat.numel(), (min(MSE_SAMPLE, flat.numel()),)).to(x.device)  # CPU RNG
            self._sample.append(flat[pick])

    @torch.no_grad()
    def freeze(self) -> None:
        """Stop observing; for ``mse`` shrink the range to the MSE-optimal clip of the observed values."""
        if self.observer == "mse" and self._sample:
            values = torch.cat(self._sample)
            ratio = mse_clip_ratio(values, self.lo, self.hi, self.bits)
            self.lo.mul_(ratio), self.hi.mul_(ratio)
        self._sample = []
        self.observing = False
        self.frozen.fill_(True)

    def extra_repr(self) -> str:
        return f"bits={self.bits}, observer={self.observer}, range=[{self.lo.item():.4g}, {self.hi.item():.4g}]"


class WeightQuantizer(nn.Module):
    """Per-output-channel weight fake quantizer: range = clip_ratio_c * [min(W_c, 0), max(W_c, 0)] (registry name
    ``uniform``; forward Q(W_c) and its clipped straight-through gradient as :class:`ActQuantizer`, one grid per
    output channel c).

    The range follows the current weights (as GDFQ's min/max), scaled by ``clip_ratio`` (ones for ``minmax``;
    for ``mse``, :meth:`calibrate` sets each channel's ratio to minimise its quantization MSE), until
    :meth:`fix_grid` pins it (after learned rounding the weights lie on a grid that their own min/max would not
    give back).
    """

    def __init__(self, bits: int, out_channels: int, observer: str = "minmax"):
        super().__init__()
        self.bits = check_bits(bits)
        self.observer = check_observer(observer)
        self.register_buffer("clip_ratio", torch.ones(out_channels))
        self.register_buffer("grid", torch.full((out_channels, 2), float("nan")))  # fixed [lo, hi]; NaN: follow W

    def _range(self, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        shape = (-1,) + (1,) * (w.dim() - 1)
        if not torch.isnan(self.grid[0, 0]):
            return self.grid[:, 0].view(shape), self.grid[:, 1].view(shape)
        flat = w.detach().flatten(1)
        ratio = self.clip_ratio.view(shape)
        return flat.min(1).values.view(shape) * ratio, flat.max(1).values.view(shape) * ratio

    @torch.no_grad()
    def fix_grid(self, lo: torch.Tensor, hi: torch.Tensor) -> None:
        """Pin each channel's range to [lo, hi] (per output channel) whatever the weights are."""
        self.grid.copy_(torch.stack([lo.flatten(), hi.flatten()], 1))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # type: ignore[override]
        state_dict.setdefault(prefix + "grid", self.grid.clone())  # students saved before the grid existed
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        if self.bits >= 32:
            return w
        lo, hi = self._range(w)
        return fake_quantize(w, lo, hi, self.bits)

    @torch.no_grad()
    def calibrate(self, w: torch.Tensor) -> None:
        if self.bits >= 32 or self.observer != "mse":
            return
        self.clip_ratio.fill_(1.0)
        lo, hi = self._range(w)
        self.clip_ratio.copy_(mse_clip_ratio(w, lo, hi, self.bits, dim=0))

    def extra_repr(self) -> str:
        return f"bits={self.bits}, observer={self.observer}, per_channel=True"
