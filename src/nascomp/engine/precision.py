"""Numeric precision and memory format of the hot steps: ``fp32`` | ``bf16`` | ``auto``, and channels-last.

``bf16`` runs the *generator* and the frozen *teacher* (the reconstruction step ``L_r = CE + 0.1 BNS``, and
the teacher's forward that labels generated images) under :func:`torch.autocast` with ``dtype=bfloat16``:

- cast to bf16 (autocast's own op lists): convolutions, linear layers and matmuls, i.e. nearly all FLOPs.
  bf16 keeps fp32's 8-bit exponent and 8 of its 24 mantissa bits (relative rounding 2^-9 ~ 0.2 %); the
  products are accumulated in fp32 inside the kernels (oneDNN on CPUs, cuBLAS/cuDNN on GPUs);
- kept in fp32: the parameters and their gradients, the optimizer state and update (autocast casts copies
  of the weights per op, so Adam sees fp32 gradients); the losses (``cross_entropy``, ``mse_loss``,
  ``log_softmax`` are on autocast's fp32 lists); the BNS statistics, which :class:`~nascomp.recon.BNStatistics`
  takes from an fp32 copy of each BN input (a batch mean/variance rounded to bf16 would carry a 0.2 % error
  into a loss that compares them with the stored statistics); the images and teacher logits handed on to the
  student (:func:`~nascomp.recon.generator_step` returns them in fp32: the images as bf16 rounded them, about
  8 significant bits, the same resolution as an 8-bit image);
- never cast: the *student*. Its fake quantizers compute ``round(x / s)`` on the activations; in bf16 the
  quotient ``x / s`` itself is rounded (at 8 <= x/s < 16, to multiples of 1/16), which moves values across
  the rounding boundaries of a 4-bit grid, and its range estimators would observe bf16 minima/maxima. The KD
  step therefore stays fp32 (:func:`fp32` disables autocast around a region if a caller nests it).

``auto`` picks bf16 where the hardware multiplies bf16 natively and fp32 elsewhere: on a CUDA device when
``torch.cuda.is_bf16_supported()``; on a CPU with AMX tiles (Intel Sapphire Rapids and later) or AVX512-BF16
(e.g. AMD Zen 4/5), where oneDNN's bf16 GEMMs/convolutions run at several times the fp32 rate (the peaks
are measured by ``benchmarks/speed.py``); plain fp32 otherwise (bf16 emulated in fp32 would be slower).

Channels-last (``NHWC``) is a separate switch, :func:`to_channels_last`: it stores parameters of 4-d
convolutions as NHWC so that oneDNN/cuDNN pick their NHWC kernels; activations follow the memory format
of the tensors fed in. It changes no value beyond float rounding (other kernels, other summation orders).

The setting is an option of the runs that use it (``nascomp dfq --precision fp32|bf16|auto[+cl]``); the
``NASCOMP_PRECISION`` environment switch that came before it is gone.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import ConfigError

PRECISIONS = ("fp32", "bf16", "auto")


def _device_type(device: torch.device | str) -> str:
    return torch.device(device).type


def bf16_native(device: torch.device | str = "cpu") -> bool:
    """Whether ``device`` multiplies bf16 natively: CUDA with bf16 support; a CPU with AMX or AVX512-BF16."""
    kind = _device_type(device)
    if kind == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if kind == "cpu":
        caps = torch.cpu.get_capabilities() if hasattr(torch.cpu, "get_capabilities") else {}
        return bool(caps.get("amx_bf16") or caps.get("avx512_bf16"))
    return False


def resolve_precision(name: str, device: torch.device | str = "cpu") -> str:
    """``fp32`` or ``bf16`` for the setting ``name`` on ``device`` (``auto``: bf16 where :func:`bf16_native`)."""
    if name not in PRECISIONS:
        raise ConfigError(f"unknown precision {name!r}; choose one of {', '.join(PRECISIONS)}")
    if name == "auto":
        return "bf16" if bf16_native(device) else "fp32"
    return name


@dataclass(frozen=True)
class Precision:
    """A resolved choice: ``dtype`` (``fp32`` | ``bf16``) of the generator and teacher, and channels-last.

    ``Precision.of("auto", device)`` resolves a setting; :meth:`autocast` is the context of the generator
    step and the teacher's forward; :meth:`prepare` puts a module in the chosen memory format.
    """

    dtype: str = "fp32"
    channels_last: bool = False

    @classmethod
    def of(cls, name: str = "fp32", device: torch.device | str = "cpu", channels_last: bool = False) -> Precision:
        return cls(resolve_precision(name, device), channels_last)

    @property
    def torch_dtype(self) -> torch.dtype:
        return torch.bfloat16 if self.dtype == "bf16" else torch.float32

    def autocast(self, device: torch.device | str = "cpu") -> AbstractContextManager:
        """``torch.autocast(device, bfloat16)`` for ``bf16``; a no-op context for ``fp32``."""
        if self.dtype == "fp32":
            return nullcontext()
        return torch.autocast(_device_type(device), dtype=torch.bfloat16)

    def prepare(self, module: nn.Module) -> nn.Module:
        """``module`` in channels-last when chosen (in place, returned); unchanged otherwise."""
        return to_channels_last(module) if self.channels_last else module

    def __str__(self) -> str:
        return self.dtype + ("+cl" if self.channels_last else "")


def to_channels_last(module: nn.Module) -> nn.Module:
    """Store the 4-d parameters and buffers of ``module`` (conv weights) as NHWC, in place; returns it.

    Call it before an optimizer makes its state (Adam's moments follow the parameters' format then).
    Values are unchanged; only the strides differ.
    """
    return module.to(memory_format=torch.channels_last)


def channels_last_input(x: torch.Tensor, precision: Precision) -> torch.Tensor:
    """``x`` in NHWC if ``precision.channels_last`` and ``x`` is a 4-d batch, else ``x`` itself."""
    if precision.channels_last and x.dim() == 4:
        return x.contiguous(memory_format=torch.channels_last)
    return x


@contextmanager
def fp32(device: torch.device | str = "cpu") -> Iterator[None]:
    """A region that runs in fp32 even inside a bf16 :meth:`Precision.autocast` (the student's quantizers)."""
    with torch.autocast(_device_type(device), enabled=False):
        yield


def parse(setting: str, device: torch.device | str = "cpu") -> Precision:
    """``"bf16"``, ``"auto+cl"``, ``"fp32"`` ... -> a resolved :class:`Precision` (``+cl``: channels-last)."""
    name, _, suffix = setting.strip().lower().partition("+")
    if suffix not in ("", "cl"):
        raise ConfigError(f"precision {setting!r}: the only suffix is '+cl' (channels-last), e.g. 'bf16+cl'")
    return Precision.of(name or "fp32", device, channels_last=suffix == "cl")
