"""Block reconstruction of a fake-quantized model on calibration images: BRECQ with AdaRound, LSQ and QDrop.

BRECQ (Li et al., ICLR 2021) reconstructs one *unit* at a time, in forward order: the unit's quantized output
should equal the full-precision unit's output on calibration images, with the unit's input taken from the
already-quantized model (so each unit corrects the error that reaches it):

    min over (V, s_a)   E || f_q(x_q) - f(x) ||^2  +  lambda * sum(1 - |2 h(V) - 1|^beta)

with f / f_q the full-precision / quantized unit, x / x_q its input in the full-precision / quantized model,
the squared error summed over channels and averaged over the batch and positions (BRECQ's code). Weights learn
their rounding (AdaRound, :class:`~.learned.AdaRoundQuantizer`; lambda = 0.01, beta 20 -> 2 after a 20 %
warm-up), activations their step sizes (LSQ, :class:`~.learned.LSQQuantizer`), both from the calibrated grids,
Adam with a cosine decay. Which quantizers learn is chosen by name (:mod:`.registry`): weights ``adaround``
(default), ``lsq`` (learned per-channel steps, weights rounded to nearest) or ``uniform`` (the calibrated grid kept),
activations ``lsq`` (default) or ``uniform``. QDrop (Wei et al., ICLR 2022): while reconstructing, each activation element is
quantized with probability 1 - p and kept full precision with probability p (p = 0: plain BRECQ).
Afterwards the rounding is hard: every weight is stored as its value on the grid, the weight quantizer keeps
that grid fixed, and each activation quantizer takes its learned range. A unit whose error on the calibration
images ends above its calibrated error (hard rounding after too few iterations can) keeps its calibrated state.

Units (:func:`reconstruction_units`): residual blocks by class name (``BasicBlock``, ``Bottleneck`` of the CIFAR
and torchvision ResNets, ``InvertedResidual`` of MobileNetV2), quantized layers outside them (stem, head), and,
in models this module knows nothing about, any direct child of a container that holds quantized layers.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..engine.loop import lr_factor
from .learned import AdaRoundQuantizer, beta_schedule
from .modules import _Quantized
from .registry import learns, quantizer_class

RESIDUAL_BLOCKS = ("BasicBlock", "Bottleneck", "InvertedResidual")
CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


@dataclass(frozen=True)
class ReconSettings:
    iters: int = 1000  # optimizer steps per unit
    batch_size: int = 32
    round_lr: float = 1e-3  # Adam lr of the AdaRound variables V
    step_lr: float = 4e-4  # Adam lr of the LSQ activation steps
    drop: float = 0.5  # QDrop: probability that an activation element stays full precision
    round_weight: float = 0.01  # lambda of the rounding regulariser
    weight_quant: str = "adaround"  # registry name: adaround | lsq | uniform (calibrated grid kept)
    act_quant: str = "lsq"  # registry name: lsq | uniform

    def __post_init__(self) -> None:
        quantizer_class("weight", self.weight_quant), quantizer_class("activation", self.act_quant)


def reconstruction_units(model: nn.Module) -> list[str]:
    """Names of the units to reconstruct, in definition (= forward, for sequential models) order."""
    units: list[str] = []

    def walk(module: nn.Module, prefix: str) -> None:
        for name, child in module.named_children():
            if not any(isinstance(m, _Quantized) for m in child.modules()):
                continue
            if isinstance(child, CONTAINERS) and type(child).__name__ not in RESIDUAL_BLOCKS:
                walk(child, f"{prefix}{name}.")
            else:
                units.append(f"{prefix}{name}")

    walk(model, "")
    return units


class _Stop(Exception):
    pass


@torch.no_grad()
def capture(model: nn.Module, unit: str, images: torch.Tensor, which: str, batch_size: int = 256) -> torch.Tensor:
    """The ``input`` or ``output`` of ``model``'s unit ``unit`` for every image (the forward stops there)."""
    seen: list[torch.Tensor] = []

    def hook(_m: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        seen.append((inputs[0] if which == "input" else output).detach())
        raise _Stop

    handle = model.get_submodule(unit).register_forward_hook(hook)
    try:
        for start in range(0, len(images), batch_size):
            try:
                model(images[start:start + batch_size])
            except _Stop:
                pass
    finally:
        handle.remove()
    return torch.cat(seen)


class QDrop(nn.Module):
    """``quantizer(x)`` where a uniform draw is >= ``prob``, ``x`` elsewhere (only in training mode)."""

    def __init__(self, quantizer: nn.Module, prob: float):
        super().__init__()
        self.quantizer, self.prob = quantizer, prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = self.quantizer(x)
        if not self.training or self.prob == 0:
            return q
        return torch.where(torch.rand(x.shape, device=x.device) < self.prob, x, q)


def output_error(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """BRECQ's reconstruction error: the squared error summed over channels (dim 1), averaged over the batch
    and the positions."""
    return (output - target).pow(2).sum(1).mean()


def _unit_error(unit: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, batch_size: int = 256) -> float:
    """:func:`output_error` over all ``inputs``."""
    with torch.no_grad():
        total = sum(float(output_error(unit(inputs[i:i + batch_size]), targets[i:i + batch_size])) * len(inputs[i:i + batch_size])
                    for i in range(0, len(inputs), batch_size))
    return total / max(len(inputs), 1)


def reconstruct_unit(unit: nn.Module, inputs: torch.Tensor, targets: torch.Tensor,
                     settings: ReconSettings) -> tuple[float, float]:
    """Reconstruct ``unit`` (in place) to map ``inputs`` to ``targets``; returns its error before and after."""
    layers = [m for m in unit.modules() if isinstance(m, _Quantized)]
    unit.eval()
    before = _unit_error(unit, inputs, targets)
    calibrated = {k: v.clone() for k, v in unit.state_dict().items()}
    frozen = [(p, p.requires_grad) for p in unit.parameters()]
    for p, _ in frozen:
        p.requires_grad_(False)
    weight_cls = quantizer_class("weight", settings.weight_quant)
    act_cls = quantizer_class("activation", settings.act_quant)
    rounding, steps, saved = [], [], []
    for layer in layers:
        saved.append((layer, layer.weight_quant, layer.act_quant))
        if layer.wbits < 32 and learns(weight_cls):
            layer.weight_quant = weight_cls.for_weight(layer.weight, layer.weight_quant, layer.wbits)
            (rounding if isinstance(layer.weight_quant, AdaRoundQuantizer) else steps).append(layer.weight_quant)
        if layer.abits < 32 and layer.act_quant.initialised:
            inner = act_cls.for_act(layer.act_quant) if learns(act_cls) else layer.act_quant
            layer.act_quant = QDrop(inner, settings.drop)
            if learns(act_cls):
                steps.append(inner)
    groups = [{"params": [q.v for q in rounding], "lr": settings.round_lr},
              {"params": [q.step for q in steps], "lr": settings.step_lr}]
    if not rounding and not steps:  # uniform weights and activations: nothing to learn
        _harden(saved)
        for p, requires_grad in frozen:
            p.requires_grad_(requires_grad)
        return before, before
    optimizer = torch.optim.Adam([g for g in groups if g["params"]])
    base_lrs = [g["lr"] for g in optimizer.param_groups]
    unit.train()  # QDrop draws its masks in training mode; BatchNorm must keep its running statistics
    for m in unit.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()
    for it in range(settings.iters):
        for group, lr in zip(optimizer.param_groups, base_lrs, strict=True):
            group["lr"] = lr * lr_factor(it, settings.iters, "cosine")
        idx = torch.randint(0, len(inputs), (settings.batch_size,))
        loss = output_error(unit(inputs[idx]), targets[idx])
        beta = beta_schedule(it, settings.iters)
        if beta is not None and rounding:
            loss = loss + settings.round_weight * sum(q.regulariser(beta) for q in rounding)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    _harden(saved)
    for p, requires_grad in frozen:
        p.requires_grad_(requires_grad)
    unit.eval()
    after = _unit_error(unit, inputs, targets)
    if after > before:  # hard rounding can land above the calibrated grid (too few iterations): keep that grid
        unit.load_state_dict(calibrated)
        return before, before
    return before, after


@torch.no_grad()
def _harden(saved: list[tuple[_Quantized, nn.Module, nn.Module]]) -> None:
    """Fold every learned quantizer back into the calibrated one it started from: the weights become their grid
    values (hard rounding for AdaRound) with that grid fixed, the activation quantizer takes its learned range."""
    for layer, weight_quant, act_quant in saved:
        learned_w, learned_a = layer.weight_quant, layer.act_quant
        if learned_w is not weight_quant:
            learned_w.fold_weight(layer.weight, weight_quant)
        inner = learned_a.quantizer if isinstance(learned_a, QDrop) else learned_a
        if inner is not act_quant:
            inner.fold_act(act_quant)
        layer.weight_quant, layer.act_quant = weight_quant, act_quant
