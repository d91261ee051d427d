"""Named candidate operations: a registry per search space, plus the two parameter-free helpers.

A search space creates its own registry and fills it with factories (DARTS ``OPS`` as data)::

    GEN_OPS = OpRegistry("autorecon")
    GEN_OPS.add("none", lambda c_in, c_out, stride, **_: Zero(c_out, stride))

    @GEN_OPS.register("conv_3x3")
    def _conv3(c_in, c_out, stride, **kw): ...

The factory signature is the space's choice: ``build(name, **kwargs)`` passes the keyword arguments
through unchanged. Ops used inside a :class:`~nascomp.nas.mixed.MixedOp` receive any extra forward
arguments the supernet passes (e.g. class labels for conditional BN); :class:`Zero` and
:class:`Identity` accept and ignore them.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError

OpFactory = Callable[..., nn.Module]


class OpRegistry:
    """A name -> factory table for one search space (no global state: each space owns its registry)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._factories: dict[str, OpFactory] = {}

    def add(self, name: str, factory: OpFactory) -> None:
        """Register ``factory`` under ``name``; registering a name twice is a programming error."""
        if not name or not isinstance(name, str):
            raise ValueError(f"op name must be a non-empty string, got {name!r}")
        if name in self._factories:
            raise ValueError(f"op {name!r} registered twice in op registry {self.name!r}")
        self._factories[name] = factory

    def register(self, name: str) -> Callable[[OpFactory], OpFactory]:
        """Decorator form of :meth:`add`; returns the factory unchanged."""

        def wrap(factory: OpFactory) -> OpFactory:
            self.add(name, factory)
            return factory

        return wrap

    def build(self, name: str, **kwargs: Any) -> nn.Module:
        """Build op ``name`` with ``factory(**kwargs)``; an unknown name raises ConfigError listing the known ones."""
        return self.factory(name)(**kwargs)

    def factory(self, name: str) -> OpFactory:
        """The factory registered under ``name``."""
        if name not in self._factories:
            raise ConfigError(
                f"unknown op {name!r} in op registry {self.name!r}; known ops: {', '.join(self._factories)}"
            )
        return self._factories[name]

    def names(self, pattern: str = "*") -> list[str]:
        """Registered op names matching a shell pattern, in registration order."""
        return [n for n in self._factories if fnmatch.fnmatch(n, pattern)]

    def __contains__(self, name: object) -> bool:
        return name in self._factories

    def __len__(self) -> int:
        return len(self._factories)

    def __repr__(self) -> str:
        return f"OpRegistry({self.name!r}, ops={list(self._factories)})"


def _out_size(size: int, stride: int, upsample: int) -> int:
    return -(-size // stride) * upsample


class Zero(nn.Module):
    """The ``none`` op: zeros shaped like the edge's output.

    For an input ``(N, C, *spatial)`` the output is ``(N, c_out or C, *[ceil(d / stride) * upsample])``,
    i.e. the shape a padded conv of that stride (or an x``upsample`` interpolation) would give. The output
    does not depend on the input, so no gradient flows through this op.
    """

    def __init__(self, c_out: int | None = None, stride: int = 1, upsample: int = 1) -> None:
        super().__init__()
        if stride < 1 or upsample < 1:
            raise ValueError(f"stride and upsample must be >= 1, got {stride} and {upsample}")
        self.c_out = c_out
        self.stride = stride
        self.upsample = upsample

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        channels = x.shape[1] if self.c_out is None else self.c_out
        spatial = [_out_size(d, self.stride, self.upsample) for d in x.shape[2:]]
        return x.new_zeros((x.shape[0], channels, *spatial))

    def extra_repr(self) -> str:
        return f"c_out={self.c_out}, stride={self.stride}, upsample={self.upsample}"


class Identity(nn.Module):
    """The ``skip_connect`` op for same-shape edges: returns its input (extra forward arguments ignored)."""

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        return x
