"""Cut a run short as Ctrl-C would, for the resume tests of every pipeline."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest


@contextmanager
def interrupted(monkeypatch: pytest.MonkeyPatch, cls: type, method: str, when: Callable[..., bool]) -> Iterator[None]:
    """Within the block, ``cls.method(self, *args)`` raises KeyboardInterrupt once ``when(self, *args)`` holds
    (before the method runs); the block must be interrupted, and the method is restored after it."""
    original = getattr(cls, method)

    def cut(self, *args):
        if when(self, *args):
            raise KeyboardInterrupt
        return original(self, *args)

    monkeypatch.setattr(cls, method, cut)
    try:
        with pytest.raises(KeyboardInterrupt):
            yield
    finally:
        monkeypatch.setattr(cls, method, original)
