"""Quantizers whose parameters are learned: LSQ step sizes and AdaRound weight rounding.

Both start from a calibrated uniform grid (scale ``s``, integer zero point ``z``, ``b`` bits, ``q_max = 2^b - 1``;
see :mod:`.quantizers`) and keep ``z`` fixed, so they serve the same asymmetric protocol as the calibrated
quantizers they replace.

**LSQ** (Esser et al., ICLR 2020, "Learned Step Size Quantization"): the step ``s`` is a parameter.

    forward:   Q(v) = (clamp(round(v / s) + z, 0, q_max) - z) * s
    dQ/ds:     round(v/s) - v/s   if -Q_N <= v/s <= Q_P      (Q_N = z, Q_P = q_max - z; the paper's eq. 3,
               -Q_N               if v/s < -Q_N                 with the fixed zero point z in place of its
               Q_P                if v/s > Q_P                  symmetric/unsigned ranges)
    dQ/dv:     1 inside, 0 outside (straight-through round, clipped)

and the step's gradient is scaled by g = 1 / sqrt(N * Q_P) (the paper's section 2.2), N = the number of values
one step serves: the features of a layer for an activation step, the weights of an output channel for a
per-channel weight step.

**AdaRound** (Nagel et al., ICML 2020, "Up or Down? Adaptive Rounding"): each weight learns whether it rounds up
or down. With ``h(V) = clamp(sigmoid(V) * (zeta - gamma) + gamma, 0, 1)``, zeta = 1.1, gamma = -0.1:

    soft:      W~ = (clamp(floor(W / s) + h(V) + z, 0, q_max) - z) * s
    regulariser: sum(1 - |2 h(V) - 1|^beta), beta annealed from 20 to 2 after a 20 % warm-up (no regulariser then)
    hard:      h = 1[V >= 0], so W~ lies on the grid, within one step of round-to-nearest

V starts where h(V) equals the fractional part of W / s (soft rounding = the float weight at the start).

Both are built from a calibrated quantizer (``for_weight`` / ``for_act``) and, after learning, fold back into it
(``fold_weight`` / ``fold_act``): the weights become their grid values, the uniform weight quantizer keeps that grid
fixed (``fix_grid``) and the activation quantizer takes the learned range, so a frozen model holds only the
uniform quantizers of :mod:`.quantizers` (branch-free, what export traces). They are chosen by name in
:mod:`.registry`.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .quantizers import ActQuantizer, WeightQuantizer, qparams

ZETA, GAMMA = 1.1, -0.1


def grad_scale(x: torch.Tensor, scale: float) -> torch.Tensor:
    """``x`` in the forward pass, ``scale * grad`` in the backward pass (LSQ's gradient scaling)."""
    return (x - x * scale).detach() + x * scale


def round_ste(x: torch.Tensor) -> torch.Tensor:
    """``round(x)`` forward, identity gradient."""
    return (x.round() - x).detach() + x


def lsq_quantize(v: torch.Tensor, step: torch.Tensor, zero: torch.Tensor, qmax: int, g: float) -> torch.Tensor:
    """LSQ's Q(v) with the gradients of the module docstring (``step``, ``zero`` broadcastable to ``v``)."""
    s = grad_scale(step, g)
    q = torch.clamp(round_ste(v / s) + zero, 0, qmax)
    return (q - zero) * s


class LSQQuantizer(nn.Module):
    """A uniform quantizer with a learned step (one per tensor, or one per output channel for weights).

    Forward Q(v) = (clamp(round(v / s) + z, 0, q_max) - z) * s; gradient dQ/dv = 1 inside the grid, 0 outside;
    dQ/ds = round(v/s) - v/s inside, -z below, q_max - z above, scaled by 1 / sqrt(N * Q_P) (Esser et al., ICLR
    2020, eq. 3 and section 2.2; the module docstring). ``numel`` is N: the values that one step serves (None: the
    features of one sample of the first input, as for an activation).
    """

    def __init__(self, step: torch.Tensor, zero: torch.Tensor, bits: int, numel: int | None = None):
        super().__init__()
        self.bits = bits
        self.qmax = 2**bits - 1
        self.step = nn.Parameter(step.detach().clone().float())
        self.register_buffer("zero", zero.detach().clone().float())
        self.numel = numel

    @property
    def q_p(self) -> float:
        return max(float((self.qmax - self.zero).max()), 1.0)

    @property
    def grad_scale(self) -> float:
        return 1.0 / math.sqrt(max(self.numel or 1, 1) * self.q_p)

    @classmethod
    def from_range(cls, lo: torch.Tensor, hi: torch.Tensor, bits: int, numel: int | None = None) -> LSQQuantizer:
        """Start at the calibrated grid of [lo, hi] (``qparams``)."""
        scale, zero = qparams(lo, hi, bits)
        return cls(scale, zero, bits, numel)

    @classmethod
    def for_weight(cls, weight: torch.Tensor, calibrated: WeightQuantizer, bits: int) -> LSQQuantizer:
        """Per-output-channel steps from the calibrated weight grid (N = the weights of one output channel)."""
        lo, hi = calibrated._range(weight)
        return cls.from_range(lo, hi, bits, numel=weight[0].numel())

    @classmethod
    def for_act(cls, calibrated: ActQuantizer) -> LSQQuantizer:
        """One step from the calibrated activation range."""
        return cls.from_range(calibrated.lo, calibrated.hi, calibrated.bits)

    @torch.no_grad()
    def fold_weight(self, weight: torch.Tensor, calibrated: WeightQuantizer) -> None:
        """``weight`` := Q(weight) on the learned grid, which ``calibrated`` keeps fixed from now on."""
        weight.copy_(self(weight))
        calibrated.fix_grid(*self.range())

    @torch.no_grad()
    def fold_act(self, calibrated: ActQuantizer) -> None:
        """``calibrated`` takes the learned range."""
        lo, hi = self.range()
        calibrated.lo.copy_(lo), calibrated.hi.copy_(hi)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        if self.numel is None:
            self.numel = v[0].numel()
        return lsq_quantize(v, self.step, self.zero, self.qmax, self.grad_scale)

    def range(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The grid as a range [lo, hi] = [-z s, (q_max - z) s] (what a calibrated quantizer takes)."""
        s = self.step.detach()
        return -self.zero * s, (self.qmax - self.zero) * s

    def extra_repr(self) -> str:
        return f"bits={self.bits}, steps={self.step.numel()}, grad_scale={self.grad_scale:.3g}"


def rectified_sigmoid(v: torch.Tensor) -> torch.Tensor:
    """AdaRound's h(V) = clamp(sigmoid(V) (zeta - gamma) + gamma, 0, 1)."""
    return torch.clamp(torch.sigmoid(v) * (ZETA - GAMMA) + GAMMA, 0.0, 1.0)


class AdaRoundQuantizer(nn.Module):
    """Per-output-channel weight quantizer with learned rounding ``V`` on a fixed grid (``scale``, ``zero``).

    Forward W~ = (clamp(floor(W / s) + h(V) + z, 0, q_max) - z) * s with h(V) = clamp(sigmoid(V) (zeta - gamma) +
    gamma, 0, 1); the gradient reaches V only, dW~/dV = s * h'(V) inside the grid (the weights stay fixed); the
    regulariser sum(1 - |2 h(V) - 1|^beta) drives h to 0 or 1 (Nagel et al., ICML 2020; the module docstring).
    ``hard`` switches from the soft rounding h(V) to 1[V >= 0]; :meth:`integers` gives the integer weights.
    """

    def __init__(self, weight: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor, bits: int):
        super().__init__()
        self.bits, self.qmax = bits, 2**bits - 1
        shape = (-1,) + (1,) * (weight.dim() - 1)
        self.register_buffer("scale", scale.detach().reshape(shape).float().clone())
        self.register_buffer("zero", zero.detach().reshape(shape).float().clone())
        w = weight.detach() / self.scale
        self.register_buffer("floor", w.floor())
        rest = (w - w.floor()).clamp(1e-4, 1 - 1e-4)  # h(V) = rest at the start
        self.v = nn.Parameter(-torch.log((ZETA - GAMMA) / (rest - GAMMA) - 1))
        self.hard = False

    @classmethod
    def for_weight(cls, weight: torch.Tensor, calibrated: WeightQuantizer, bits: int) -> AdaRoundQuantizer:
        """Learned rounding on the calibrated weight grid."""
        lo, hi = calibrated._range(weight)
        return cls(weight, *qparams(lo, hi, bits), bits)

    @torch.no_grad()
    def fold_weight(self, weight: torch.Tensor, calibrated: WeightQuantizer) -> None:
        """Hard rounding: ``weight`` := its grid value, which ``calibrated`` keeps fixed from now on."""
        self.hard = True
        weight.copy_(self())
        calibrated.fix_grid(-self.zero * self.scale, (self.qmax - self.zero) * self.scale)

    def rounding(self) -> torch.Tensor:
        """h(V) (soft) or 1[V >= 0] (hard): what is added to floor(W / s)."""
        return (self.v >= 0).float() if self.hard else rectified_sigmoid(self.v)

    def integers(self) -> torch.Tensor:
        """The quantized weights on the integer grid [0, q_max] (exact integers once ``hard``)."""
        return torch.clamp(self.floor + self.rounding() + self.zero, 0, self.qmax)

    def forward(self, _: torch.Tensor | None = None) -> torch.Tensor:
        """The quantized weights (the float weight argument is ignored: the rounding holds them)."""
        return (self.integers() - self.zero) * self.scale

    def regulariser(self, beta: float) -> torch.Tensor:
        """sum(1 - |2 h(V) - 1|^beta): pushes every h(V) to 0 or 1."""
        return (1 - (2 * rectified_sigmoid(self.v) - 1).abs().pow(beta)).sum()

    def extra_repr(self) -> str:
        return f"bits={self.bits}, hard={self.hard}"


def beta_schedule(step: int, total: int, warmup: float = 0.2, start: float = 20.0, end: float = 2.0) -> float | None:
    """AdaRound's beta at ``step`` of ``total``: None during the warm-up (no regulariser), then a linear decay
    from ``start`` to ``end`` (as the temperature decay of the AdaRound/BRECQ code)."""
    begin = warmup * total
    if step < begin:
        return None
    t = (step - begin) / max(total - begin, 1)
    return end + (start - end) * max(0.0, 1.0 - t)
