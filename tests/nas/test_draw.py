"""Graphviz dot text for genotypes, and rendering where ``dot`` exists."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest
import torch

from nascomp.errors import ConfigError
from nascomp.nas import EdgeKind, SearchSpace, derive, render, to_dot

SPACE = SearchSpace(
    "draw",
    {
        "up": EdgeKind(ops=["nearest", "bilinear"], edges=2),
        "normal": EdgeKind(
            ops=["none", "skip", "conv_3x3", 'odd "op"'],
            inputs={"n2": ["n0", "n1"], "n3": ["n0", "n1", "n2"]},
            graph="cell",
        ),
        "reduce": EdgeKind(
            ops=["none", "max_pool", "conv_3x3"],
            rule="top2_no_none",
            inputs={"r0": ["c0", "c1"], "r1": ["c0", "c1", "r0"]},
            concat=["r0", "r1"],
        ),
    },
)


def genotype():
    alphas = {
        "up": torch.tensor([[1.0, 0.0], [0.0, 1.0]]),
        "normal": torch.tensor(
            [[3.0, 0, 0, 0], [0, 3.0, 0, 0], [0, 0, 3.0, 0], [0, 0, 0, 3.0], [0, 3.0, 0, 0]]
        ),
        "reduce": torch.tensor([[0, 2.0, 0], [0, 0, 2.0], [0, 1.0, 0], [5.0, 0, 0], [0, 0, 3.0]]),
    }
    return derive(SPACE, alphas)


def test_to_dot_names_every_chosen_op_and_node() -> None:
    g = genotype()
    dot = to_dot(g, SPACE)
    assert dot.startswith("digraph genotype {") and dot.rstrip().endswith("}")
    for kind in SPACE.kinds:
        for op in g.ops(kind):
            assert f'"{op}"' in dot or f": {op}" in dot or op.replace('"', '\\"') in dot
    assert '"cell/n0" -> "cell/n2" [label="none", style=dashed' in dot
    assert '"reduce/r1" -> "reduce/output";' in dot
    assert '"up/e1" [label="up e1: bilinear"];' in dot
    assert '"reduce/c0" [label="c0"];' in dot and '"cell/n3" [label="n3"];' in dot
    assert 'odd \\"op\\"' in dot  # quotes are escaped
    assert dot.count("subgraph cluster_") == 3


def write_fake_dot(folder: Path) -> None:
    script = folder / "dot"
    script.write_text(
        '#!/bin/sh\nout=""\nwhile [ $# -gt 0 ]; do [ "$1" = "-o" ] && out="$2"; shift; done\ncat > "$out"\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)


def test_render_returns_none_without_graphviz(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert render(to_dot(genotype(), SPACE), tmp_path / "g.png") is None
    assert not (tmp_path / "g.png").exists()


def test_render_runs_dot_with_the_format_of_the_suffix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_fake_dot(tmp_path)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '')}")
    dot = to_dot(genotype(), SPACE)
    out = render(dot, tmp_path / "figs" / "g.svg")
    assert out == tmp_path / "figs" / "g.svg" and out.read_text() == dot


def test_render_refuses_unknown_formats(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"use \.png, \.svg or \.pdf"):
        render("digraph {}", tmp_path / "g.jpg")


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz 'dot' is not installed")
def test_render_with_real_graphviz_writes_a_png(tmp_path: Path) -> None:
    out = render(to_dot(genotype(), SPACE), tmp_path / "g.png")
    assert out is not None and out.read_bytes()[:4] == b"\x89PNG"
