"""The bi-level search step of DARTS (Liu et al., ICLR 2019), generic over the loss.

Each :meth:`ArchSearcher.step` first updates the alphas on a validation batch, then the weights on a
training batch (``loss_fn(model, batch) -> scalar tensor``; batches are opaque to the searcher).

- First order: ``grad_a L_val(w, a)`` at the current weights.
- Second order (eq. 7-8): with the virtual step ``w' = w - xi * grad_w L_train(w, a)``,

      grad_a L_val(w', a) - xi * (grad_a L_train(w+, a) - grad_a L_train(w-, a)) / (2 * eps),
      w+- = w +- eps * grad_w' L_val(w', a),   eps = 0.01 / ||grad_w' L_val(w', a)||

  The virtual step is the plain gradient step of eq. 7 (no momentum or weight decay); ``xi`` defaults
  to the weight optimizer's current learning rate. Weights *and buffers* (BN running statistics) are
  restored exactly afterwards, so the extra passes leave no trace but the alpha gradient.

The weight step clips the weights' gradient norm to ``grad_clip``. After a step each alpha's ``.grad``
holds the architecture gradient that was applied.

Gradients are taken with ``torch.autograd.grad``, so do not wrap the model in DDP (its hooks would not
fire). Under ``torch.distributed`` (torchrun), the searcher itself averages the alpha gradient and the
weight gradient over ranks before each update (``distributed=None`` does so whenever a process group is
initialised); each rank unrolls on its own batch and the reported losses are the local ones.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from .mixed import ArchParams

LossFn = Callable[[nn.Module, Any], torch.Tensor]


def _grads(loss: torch.Tensor, params: list[nn.Parameter]) -> list[torch.Tensor]:
    got = torch.autograd.grad(loss, params, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, got, strict=True)]


def _all_reduce_mean(grads: list[torch.Tensor]) -> list[torch.Tensor]:
    """Average same-shaped gradient lists over all ranks in one coalesced all-reduce."""
    import torch.distributed as dist

    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    return [chunk.view_as(g) for chunk, g in zip(flat.split([g.numel() for g in grads]), grads, strict=True)]


def _params(optimizer: torch.optim.Optimizer) -> list[nn.Parameter]:
    return [p for group in optimizer.param_groups for p in group["params"]]


class ArchSearcher:
    """Alternating alpha / weight updates for a supernet whose mixtures read ``arch_params``."""

    def __init__(
        self,
        model: nn.Module,
        arch_params: ArchParams,
        w_optimizer: torch.optim.Optimizer,
        a_optimizer: torch.optim.Optimizer,
        loss_fn: LossFn,
        order: int = 1,
        grad_clip: float | None = 5.0,
        xi: float | None = None,
        distributed: bool | None = None,
    ) -> None:
        if order not in (1, 2):
            raise ValueError(f"order must be 1 (first-order DARTS) or 2 (unrolled), got {order}")
        self.model = model
        self.arch_params = arch_params
        self.w_optimizer = w_optimizer
        self.a_optimizer = a_optimizer
        self.loss_fn = loss_fn
        self.order = order
        self.grad_clip = grad_clip
        self.xi = xi
        if distributed is None:
            distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
        self.distributed = distributed
        self.steps = 0
        self._alphas = list(arch_params.alphas())
        arch_ids = {id(p) for p in self._alphas}
        if any(id(p) in arch_ids for p in _params(w_optimizer)):
            raise ValueError(
                "w_optimizer holds architecture parameters; build it from split_parameters(model)[0]"
            )
        if any(id(p) not in arch_ids for p in _params(a_optimizer)):
            raise ValueError(
                "a_optimizer holds parameters that are not alphas; build it from arch_params.alphas()"
            )
        self._weights = [p for p in _params(w_optimizer) if p.requires_grad]

    def step(self, train_batch: Any, val_batch: Any) -> dict[str, float]:
        """One alpha update on ``val_batch``, then one weight update on ``train_batch``; returns scalars."""
        if self.order == 1:
            val_loss = self.loss_fn(self.model, val_batch)
            arch_grads = _grads(val_loss, self._alphas)
        else:
            val_loss, arch_grads = self._unrolled_arch_grads(train_batch, val_batch)
        if self.distributed:
            arch_grads = _all_reduce_mean(arch_grads)
        self.a_optimizer.zero_grad(set_to_none=True)
        for p, g in zip(self._alphas, arch_grads, strict=True):
            p.grad = g.detach()
        self.a_optimizer.step()

        train_loss = self.loss_fn(self.model, train_batch)
        self.w_optimizer.zero_grad(set_to_none=True)
        got: list[torch.Tensor | None] = list(
            torch.autograd.grad(train_loss, self._weights, allow_unused=True)
        )
        if self.distributed:
            got = list(
                _all_reduce_mean(
                    [torch.zeros_like(p) if g is None else g for p, g in zip(self._weights, got, strict=True)]
                )
            )
        for p, g in zip(self._weights, got, strict=True):
            p.grad = g
        limit = float("inf") if not self.grad_clip else self.grad_clip
        grad_norm = torch.nn.utils.clip_grad_norm_([p for p in self._weights if p.grad is not None], limit)
        self.w_optimizer.step()
        self.steps += 1
        return {
            "train_loss": float(train_loss.detach()),
            "val_loss": float(val_loss.detach()),
            "grad_norm": float(grad_norm),
            "arch_grad_norm": float(torch.linalg.vector_norm(torch.stack([g.norm() for g in arch_grads]))),
        }

    def _virtual_xi(self) -> float:
        return float(self.w_optimizer.param_groups[0]["lr"]) if self.xi is None else self.xi

    def _unrolled_arch_grads(
        self, train_batch: Any, val_batch: Any
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        xi = self._virtual_xi()
        weights, alphas = self._weights, self._alphas
        saved_w = [w.detach().clone() for w in weights]
        saved_b = [b.detach().clone() for b in self.model.buffers()]
        try:
            g_train = _grads(self.loss_fn(self.model, train_batch), weights)
            self._set(weights, [w - xi * g for w, g in zip(saved_w, g_train, strict=True)])
            val_loss = self.loss_fn(self.model, val_batch)
            grads = _grads(val_loss, alphas + weights)
            d_alpha, d_w = grads[: len(alphas)], grads[len(alphas) :]
            norm = float(torch.linalg.vector_norm(torch.stack([g.norm() for g in d_w]))) if d_w else 0.0
            if norm > 0.0 and xi != 0.0:
                eps = 0.01 / norm
                self._set(weights, [w + eps * d for w, d in zip(saved_w, d_w, strict=True)])
                g_plus = _grads(self.loss_fn(self.model, train_batch), alphas)
                self._set(weights, [w - eps * d for w, d in zip(saved_w, d_w, strict=True)])
                g_minus = _grads(self.loss_fn(self.model, train_batch), alphas)
                d_alpha = [
                    g - xi * (gp - gm) / (2 * eps) for g, gp, gm in zip(d_alpha, g_plus, g_minus, strict=True)
                ]
        finally:
            self._set(weights, saved_w)
            self._set(list(self.model.buffers()), saved_b)
        return val_loss, d_alpha

    @staticmethod
    @torch.no_grad()
    def _set(targets: Iterable[torch.Tensor], values: Iterable[torch.Tensor]) -> None:
        for t, v in zip(targets, values, strict=True):
            t.copy_(v)

    def alpha_snapshot(self) -> dict[str, list[list[float]]]:
        """``{kind: softmax weights as nested lists}``: one entry of the alpha history."""
        with torch.no_grad():
            return {
                kind: self.arch_params.weights(kind).float().cpu().tolist() for kind in self.arch_params.kinds
            }

    def state_dict(self) -> dict[str, Any]:
        """Both optimizers, the alphas and the step count (the model's weights are the caller's to save)."""
        return {
            "w_optimizer": self.w_optimizer.state_dict(),
            "a_optimizer": self.a_optimizer.state_dict(),
            "arch_params": self.arch_params.state_dict(),
            "steps": self.steps,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved."""
        self.w_optimizer.load_state_dict(state["w_optimizer"])
        self.a_optimizer.load_state_dict(state["a_optimizer"])
        self.arch_params.load_state_dict(state["arch_params"])
        self.steps = int(state["steps"])
