"""Batch-norm statistics (BNS) loss of a frozen pretrained model (GDFQ, Xu et al. ECCV 2020, eq. 4):

    BNS = 1/L * sum_l [ ||mu_l(x) - mu_l^run||^2 / C_l + ||sigma2_l(x) - sigma2_l^run||^2 / C_l ]

measured at the input of each of the L BatchNorm layers; mu_l(x) and sigma2_l(x) are the batch mean and the
biased batch variance over (N, H, W), compared with the layer's running statistics by a mean squared error
over its C_l channels, then averaged over layers - as in GDFQ's public code. The statistics are computed
in fp32 even when the model runs in bf16 (``nascomp.engine.precision``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError


def batchnorm_layers(model: nn.Module) -> list[nn.Module]:
    """The BatchNorm layers of ``model``; a ConfigError when it has none (nothing to match)."""
    layers = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not layers:
        raise ConfigError(f"{getattr(model, 'model_name', type(model).__name__)} has no BatchNorm layers, so it "
                          "stores no statistics for a generator to match; data-free quantization needs a model "
                          "with BatchNorm (e.g. a ResNet, MobileNet or EfficientNet)")
    return layers


class BNStatistics:
    """Forward hooks on every BatchNorm of ``model``; inside :meth:`capture` each forward adds its BNS terms."""

    def __init__(self, model: nn.Module):
        self.layers = batchnorm_layers(model)
        self._handles = [bn.register_forward_hook(self._hook) for bn in self.layers]
        self._terms: list[torch.Tensor] = []
        self._active = False

    def _hook(self, bn: nn.Module, inputs: tuple[torch.Tensor, ...], _output: torch.Tensor) -> None:
        if not self._active:
            return
        x = inputs[0].float()  # a no-op in fp32; under bf16 autocast the statistics are taken in fp32
        dims = [0] + list(range(2, x.dim()))
        mean, var = x.mean(dims), x.var(dims, unbiased=False)
        self._terms.append(F.mse_loss(mean, bn.running_mean) + F.mse_loss(var, bn.running_var))

    @contextmanager
    def capture(self) -> Iterator[BNStatistics]:
        """Collect BNS terms of the forwards run inside the ``with`` block."""
        self._terms, self._active = [], True
        try:
            yield self
        finally:
            self._active = False

    def loss(self) -> torch.Tensor:
        """Mean over BN layers of the captured terms (one forward's worth)."""
        if not self._terms:
            raise RuntimeError("no BNS terms captured: run the model inside `with bns.capture():`")
        return torch.stack(self._terms).mean()

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
