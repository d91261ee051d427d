"""engine/memory.py: glibc keeps freed tensor memory (no mmap per large tensor, no trimming) unless told not to."""

from __future__ import annotations

import resource
import sys

import pytest
import torch

from nascomp.engine import memory


class FakeLibc:
    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    def mallopt(self, param: int, value: int) -> int:
        self.calls.append((param, value))
        return 1


def test_keep_turns_mmap_and_trimming_off_with_glibcs_parameter_numbers(monkeypatch):
    monkeypatch.delenv("NASCOMP_MALLOC", raising=False)
    libc = FakeLibc()
    assert memory.keep_freed_memory(libc)
    assert sorted(libc.calls) == [(-4, 0), (-1, 1 << 30)]  # M_MMAP_MAX = 0, M_TRIM_THRESHOLD = 1 GiB


def test_nascomp_malloc_system_leaves_malloc_alone(monkeypatch):
    monkeypatch.setenv("NASCOMP_MALLOC", "system")
    libc = FakeLibc()
    assert not memory.keep_freed_memory(libc) and libc.calls == []


@pytest.mark.skipif(not sys.platform.startswith("linux") or memory._glibc() is None, reason="needs glibc")
def test_with_glibc_a_large_tensor_loop_stops_faulting_in_fresh_pages(monkeypatch):
    monkeypatch.delenv("NASCOMP_MALLOC", raising=False)
    def minor_faults(steps: int = 20) -> int:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(steps):
            torch.empty(64 << 20, dtype=torch.uint8).fill_(1)  # 64 MiB: above any mmap threshold
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

    try:
        assert memory.set_malloc(memory.SYSTEM)
        system = minor_faults()
        assert memory.keep_freed_memory()
        minor_faults(1)  # the first one grows the heap once
        kept = min(minor_faults() for _ in range(3))  # the least disturbed of three rounds
    finally:
        memory.keep_freed_memory()
    assert system > 20 * 10_000  # 16,384 pages of 4 KiB per tensor, faulted in again every time
    assert kept < system / 4  # most steps reuse the freed block


def test_the_same_run_gives_the_same_numbers_whether_malloc_keeps_memory_or_not(tmp_path, monkeypatch):
    from nascomp.config import DFQ_PRESETS, DFQConfig, resolve
    from nascomp.dfq import run_dfq
    from run_metrics import reproducible

    cfg = resolve(DFQConfig, DFQ_PRESETS, "demo", dict(gen_steps=4, calib_size=64, epochs=1, batch_size=32))
    try:
        monkeypatch.setenv("NASCOMP_MALLOC", "system")
        assert memory.set_malloc(memory.SYSTEM) or memory._glibc() is None
        system = run_dfq(cfg, out=str(tmp_path / "system"), quiet=True)
        monkeypatch.delenv("NASCOMP_MALLOC")
        kept = run_dfq(cfg, out=str(tmp_path / "kept"), quiet=True)
    finally:
        memory.keep_freed_memory()
    assert reproducible(system) == reproducible(kept)  # where memory comes from changes no arithmetic
