"""The alpha-history figure (matplotlib optional)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from nascomp.errors import ConfigError
from nascomp.nas import EdgeKind, SearchSpace, plot_alpha_history

SPACE = SearchSpace(
    "plot",
    {
        "up": EdgeKind(ops=["nearest", "bilinear"], edges=2),
        "cross": EdgeKind(ops=["none", "nearest"], edges=3),
    },
)


def history(epochs: int) -> list[dict]:
    gen = torch.Generator().manual_seed(0)
    return [
        {
            kind: torch.softmax(torch.randn(n, m, generator=gen), -1).tolist()
            for kind, (n, m) in SPACE.arch_shapes().items()
        }
        for _ in range(epochs)
    ]


def test_plot_writes_a_png_with_one_panel_per_edge(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    out = plot_alpha_history(history(4), SPACE, tmp_path / "plots" / "alphas.png")
    assert out is not None and out.read_bytes()[:4] == b"\x89PNG"


def test_plot_returns_none_without_matplotlib(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    assert plot_alpha_history(history(2), SPACE, tmp_path / "a.png") is None
    assert not (tmp_path / "a.png").exists()


def test_plot_refuses_a_history_of_another_space(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    bad = history(2)
    bad[1]["cross"] = bad[1]["cross"][:2]
    with pytest.raises(ConfigError, match="entry 1 does not fit kind 'cross'"):
        plot_alpha_history(bad, SPACE, tmp_path / "a.png")
    with pytest.raises(ConfigError, match="empty"):
        plot_alpha_history([], SPACE, tmp_path / "a.png")
