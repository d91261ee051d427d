"""Keep freed memory in the process (glibc malloc) instead of handing every large tensor back to the kernel.

PyTorch's CPU tensors come from ``malloc``. glibc serves an allocation above its mmap threshold (128 KiB, growing
to at most 32 MiB) with a fresh ``mmap`` and unmaps it on ``free``, so each large activation of each step is a new
set of pages that the kernel faults in and zeroes: kernel time that grows with batch and image size (measured side
by side in docs/BENCHMARKS.md, "Speed of the hot steps with glibc reusing freed memory (CPU)").
With mmap off (``M_MMAP_MAX = 0``) and trimming off (``M_TRIM_THRESHOLD`` = 1 GiB) freed blocks are reused by the
next step. The cost: the process keeps its peak heap until it exits (what a training job holds anyway).
``NASCOMP_MALLOC=system`` leaves malloc as it is; other C libraries (musl, macOS, Windows) are left alone.
"""

from __future__ import annotations

import ctypes
import functools
import os

M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4  # glibc <malloc.h>
KEEP = {M_MMAP_MAX: 0, M_TRIM_THRESHOLD: 1 << 30}
SYSTEM = {M_MMAP_MAX: 65536, M_TRIM_THRESHOLD: 128 * 1024}  # glibc's defaults


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    """glibc, loaded once per process (every run and CLI command asks); None for any other C library."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "gnu_get_libc_version") else None


def set_malloc(settings: dict[int, int], libc: ctypes.CDLL | None = None) -> bool:
    """``mallopt(param, value)`` for each setting; False where the C library is not glibc."""
    libc = libc or _glibc()
    if libc is None:
        return False
    return all(libc.mallopt(param, value) == 1 for param, value in settings.items())


def keep_freed_memory(libc: ctypes.CDLL | None = None) -> bool:
    """Reuse freed tensor memory for the rest of the process (see the module text); True when applied."""
    if os.environ.get("NASCOMP_MALLOC", "keep") == "system":
        return False
    return set_malloc(KEEP, libc)
