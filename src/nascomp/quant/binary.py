"""Binary building blocks: sign binarizers with straight-through gradients and a staged binary conv.

Activations follow Bi-Real Net (Liu et al., ECCV 2018), weights follow XNOR-Net (Rastegari et al., ECCV
2016) with the per-output-channel scale also used by Bi-Real Net and ReActNet (Liu et al., ECCV 2020).
``sign(0) := +1`` everywhere, so binarized tensors hold exactly two values.

Staged training (Real-to-Binary, Martinez et al., ICLR 2020; ReActNet) switches what a
:class:`BinaryConv2d` binarizes, see :func:`set_binary_stage`:

======  ===============  ===============  =====  =====
stage   binary_acts      binary_weights   abits  wbits
======  ===============  ===============  =====  =====
1       False            False            32     32
2       True             False            1      32
3       True             True             1      1
======  ===============  ===============  =====  =====
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..errors import ConfigError

FULL_PRECISION_BITS = 32


def _sign(x: torch.Tensor) -> torch.Tensor:
    """``+1`` where ``x >= 0``, ``-1`` elsewhere (``sign(0) := +1``), in ``x``'s dtype."""
    one = torch.ones_like(x)
    return torch.where(x >= 0, one, -one)


def approx_sign_grad(x: torch.Tensor) -> torch.Tensor:
    """Derivative of Bi-Real's ApproxSign: ``2 + 2x`` on [-1, 0), ``2 - 2x`` on [0, 1), 0 elsewhere.

    Both pieces equal ``2 - 2|x|``, which is <= 0 outside (-1, 1), so this is ``max(0, 2 - 2|x|)``.
    """
    return (2.0 - 2.0 * x.abs()).clamp_min(0.0)


def clipped_ste_grad(x: torch.Tensor) -> torch.Tensor:
    """Clipped straight-through estimator (Hubara et al., NeurIPS 2016): 1 where ``|x| <= 1``, else 0."""
    return (x.abs() <= 1.0).to(x.dtype)


STE_GRADS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "approx": approx_sign_grad,
    "clipped": clipped_ste_grad,
}


def _check_ste(ste: str) -> str:
    if ste not in STE_GRADS:
        raise ConfigError(f"unknown straight-through estimator {ste!r}; choose one of {', '.join(STE_GRADS)}")
    return ste


class SignSTE(torch.autograd.Function):
    """Activation binarizer ``y = sign(x)`` (``sign(0) := +1``) with a straight-through gradient.

    Backward: ``dL/dx = dL/dy * g(x)`` where ``g`` is :func:`approx_sign_grad` (``ste="approx"``, Bi-Real
    Net, Liu et al., ECCV 2018) or :func:`clipped_ste_grad` (``ste="clipped"``, Hubara et al., 2016).
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, ste: str) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        ctx.ste = ste
        return _sign(x)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return grad_out * STE_GRADS[ctx.ste](x), None


class ScaledSignSTE(torch.autograd.Function):
    """Weight binarizer ``Wb = sign(W) * alpha_c`` with ``alpha_c = mean(|W[c]|)`` per output channel ``c``.

    Forward: XNOR-Net's scaled sign (Rastegari et al., ECCV 2016), as in Bi-Real Net and ReActNet; the mean
    runs over every dimension but the first (``Cin * kh * kw`` for a conv weight).
    Backward: clipped straight-through, ``dL/dW = dL/dWb * 1{|W| <= 1}``; the scale is treated as a
    constant (no gradient through ``alpha``), as in ReActNet's public training recipe.
    """

    @staticmethod
    def forward(ctx, w: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(w)
        return _sign(w) * channel_scale(w)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        (w,) = ctx.saved_tensors
        return grad_out * clipped_ste_grad(w)


def channel_scale(w: torch.Tensor) -> torch.Tensor:
    """``alpha_c = mean(|W[c]|)`` per output channel, shaped to broadcast against ``w`` (a scalar if 1-D)."""
    if w.dim() < 2:
        return w.abs().mean()
    return w.abs().mean(dim=tuple(range(1, w.dim())), keepdim=True)


def binarize_activation(x: torch.Tensor, ste: str = "approx") -> torch.Tensor:
    """``sign(x)`` in {-1, +1} with the straight-through gradient ``ste`` (see :class:`SignSTE`)."""
    return SignSTE.apply(x, _check_ste(ste))


def binarize_weight(w: torch.Tensor) -> torch.Tensor:
    """``sign(W) * mean|W|`` per output channel with a clipped STE (see :class:`ScaledSignSTE`)."""
    return ScaledSignSTE.apply(w)


class BinaryActivation(nn.Module):
    """Module form of :func:`binarize_activation`; ``bits = 1`` for cost counting."""

    bits = 1

    def __init__(self, ste: str = "approx"):
        super().__init__()
        self.ste = _check_ste(ste)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return binarize_activation(x, self.ste)

    def extra_repr(self) -> str:
        return f"ste={self.ste!r}"


class BinaryConv2d(nn.Conv2d):
    """A ``nn.Conv2d`` that binarizes its input activation and its weights, each switchable.

    ``y = conv(sign(x), sign(W) * alpha) + b`` when both flags are set; a flag that is off leaves that
    operand real-valued. ``wbits``/``abits`` follow the flags (1 when binarized, 32 otherwise), so
    :func:`nascomp.quant.cost.count_cost` sees the current stage. Padding is zero padding, as in
    Bi-Real Net's reference model (the padded border is 0, not +-1).
    """

    def __init__(
        self,
        *args,
        binary_weights: bool = True,
        binary_acts: bool = True,
        ste: str = "approx",
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.binary_weights = binary_weights
        self.binary_acts = binary_acts
        self.ste = _check_ste(ste)

    @property
    def wbits(self) -> int:
        return 1 if self.binary_weights else FULL_PRECISION_BITS

    @property
    def abits(self) -> int:
        return 1 if self.binary_acts else FULL_PRECISION_BITS

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.binary_acts:
            x = binarize_activation(x, self.ste)
        weight = binarize_weight(self.weight) if self.binary_weights else self.weight
        return self._conv_forward(x, weight, self.bias)

    def extra_repr(self) -> str:
        flags = f"binary_weights={self.binary_weights}, binary_acts={self.binary_acts}, ste={self.ste!r}"
        return f"{super().extra_repr()}, {flags}"


# stage -> (binary_acts, binary_weights)
STAGES: dict[int, tuple[bool, bool]] = {1: (False, False), 2: (True, False), 3: (True, True)}


def set_binary_stage(model: nn.Module, stage: int) -> int:
    """Set every :class:`BinaryConv2d` in ``model`` to ``stage`` (1 real, 2 binary acts, 3 fully binary).

    Returns how many layers were set (0 means the model has no binary conv).
    """
    if stage not in STAGES:
        raise ConfigError(f"binary stage must be one of {sorted(STAGES)}, got {stage!r}")
    acts, weights = STAGES[stage]
    layers = [m for m in model.modules() if isinstance(m, BinaryConv2d)]
    for m in layers:
        m.binary_acts, m.binary_weights = acts, weights
    return len(layers)


def binary_stage(model: nn.Module) -> int | None:
    """The stage all :class:`BinaryConv2d` layers of ``model`` are in; ``None`` if it has none.

    The flags are plain attributes, not saved in a ``state_dict``: a resumed run restores them with
    :func:`set_binary_stage`. Raises ``ConfigError`` when the layers disagree.
    """
    found = {(m.binary_acts, m.binary_weights) for m in model.modules() if isinstance(m, BinaryConv2d)}
    if not found:
        return None
    stages = [s for s, flags in STAGES.items() if flags in found]
    if len(found) > 1 or not stages:
        raise ConfigError(
            f"binary layers are in mixed or unknown stages {sorted(found)}; call set_binary_stage"
        )
    return stages[0]
