"""Interrupting a run the way Ctrl-C or a lost machine would, at a chosen unit of a chosen stage."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from nascomp.engine import Run


@contextmanager
def interrupted(monkeypatch: pytest.MonkeyPatch, stage: str, unit: int) -> Iterator[None]:
    """Within the block, a run raises KeyboardInterrupt when it is about to run unit ``unit`` (0-based) of its
    stage named ``stage``, i.e. after the checkpoint of the units before; the block must be interrupted."""
    original = Run.run_unit

    def cut(self, s, u):
        if s.name == stage and u == unit:
            raise KeyboardInterrupt
        return original(self, s, u)

    monkeypatch.setattr(Run, "run_unit", cut)
    try:
        with pytest.raises(KeyboardInterrupt):
            yield
    finally:
        monkeypatch.setattr(Run, "run_unit", original)
