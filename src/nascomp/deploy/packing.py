"""Packing integer weights into bytes, so a low-bit model is low-bit on disk.

Containers (the values ``q`` are the integers a quantized layer multiplies with):

* 5-8 bits: one ``uint8`` per weight (``q`` in [0, 2^b - 1]);
* 2-4 bits: two weights per byte, first weight in the low nibble (ONNX's INT4/UINT4 packing order), so a
  2- or 3-bit weight also takes 4 bits;
* 1 bit (binary ``q`` in {-1, +1}): eight weights per byte, first weight in the lowest bit, ``+1 -> 1``.

A trailing half or partial byte is padded with zeros; :func:`unpack` needs the element count back.
"""

from __future__ import annotations

import torch


def container_bits(bits: int) -> int:
    """Bits one weight takes on disk: 1, 4 or 8."""
    if bits == 1:
        return 1
    if 2 <= bits <= 4:
        return 4
    if 5 <= bits <= 8:
        return 8
    raise ValueError(f"no packed container for {bits}-bit weights")


def packed_size(numel: int, bits: int) -> int:
    """Bytes that :func:`pack` writes for ``numel`` weights of ``bits`` bits."""
    per_byte = 8 // container_bits(bits)
    return -(-numel // per_byte)


def pack(q: torch.Tensor, bits: int) -> torch.Tensor:
    """Flatten the integer tensor ``q`` into a 1-D ``uint8`` tensor of :func:`packed_size` bytes."""
    flat = q.detach().flatten().to(torch.int16).cpu()
    width = container_bits(bits)
    if width == 1:
        if not bool(((flat == 1) | (flat == -1)).all()):
            raise ValueError("binary weights must be -1 or +1")
        flat = (flat > 0).to(torch.int16)
    elif bool((flat < 0).any()) or bool((flat >= 2**bits).any()):
        raise ValueError(f"{bits}-bit weights must lie in [0, {2**bits - 1}]")
    per_byte = 8 // width
    padded = torch.zeros(packed_size(flat.numel(), bits) * per_byte, dtype=torch.int16)
    padded[: flat.numel()] = flat
    shifts = torch.arange(per_byte, dtype=torch.int16) * width
    return (padded.view(-1, per_byte) << shifts).sum(1).to(torch.uint8)


def unpack(data: torch.Tensor, bits: int, shape: tuple[int, ...] | list[int]) -> torch.Tensor:
    """The integer tensor of ``shape`` that :func:`pack` stored: ``uint8`` for 2-8 bits, ``int8`` +-1 for 1 bit."""
    width = container_bits(bits)
    per_byte = 8 // width
    numel = 1
    for n in shape:
        numel *= int(n)
    if data.dtype != torch.uint8 or data.dim() != 1 or data.numel() != packed_size(numel, bits):
        raise ValueError(f"packed {bits}-bit data for shape {tuple(shape)} must be {packed_size(numel, bits)} uint8 bytes")
    shifts = torch.arange(per_byte, dtype=torch.int16) * width
    values = (data.to(torch.int16).unsqueeze(1) >> shifts) & (2**width - 1)
    values = values.flatten()[:numel].view(*shape)
    if width == 1:
        return (values * 2 - 1).to(torch.int8)
    return values.to(torch.uint8)
