"""Paths into ../shared for integration tests, which skip with a reason where it is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
NO_SHARED = "../shared is absent (it holds the CIFAR-10 JPEG sets and the pretrained ResNets)"


def shared_path(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{NO_SHARED}: {path} not found")
    return path


def shared_weights(depth: int) -> Path:
    folder = shared_path("weights", "cifar10")
    found = sorted(folder.glob(f"resnet{depth}-*.th"))
    if not found:
        pytest.skip(f"no resnet{depth} checkpoint in {folder}")
    return found[0]


