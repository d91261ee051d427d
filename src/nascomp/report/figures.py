"""The report's pictures: one figure of loss curves per stage (matplotlib, Agg backend, no pyplot state) and a
grid of images (torchvision's ``make_grid``, written with Pillow)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .runfolder import StageCurve

MIN_CELL = 64  # images smaller than this are enlarged (nearest neighbour) so that an 8x8 digit can be seen



def plot_stage(curve: StageCurve, path: Path) -> Path:
    """One panel per value of ``curve`` (loss terms, accuracy) against the stage's unit; returns ``path``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    keys = list(dict.fromkeys(k for row in curve.rows for k in row))
    cols = min(4, len(keys))
    rows_n = math.ceil(len(keys) / cols)
    fig = Figure(figsize=(3.2 * cols, 2.4 * rows_n + 0.4), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows_n, cols, squeeze=False)
    for ax, key in zip(axes.flat, keys, strict=False):
        points = [(i + 1, row[key]) for i, row in enumerate(curve.rows) if key in row and row[key] is not None]
        xs, ys = zip(*points, strict=True) if points else ((), ())
        ax.plot(xs, ys, marker="o" if len(points) <= 30 else None, markersize=3, linewidth=1.2)
        ax.set_title(key, fontsize=9)
        ax.set_xlabel(curve.unit, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(keys):]:
        ax.set_visible(False)
    fig.suptitle(f"{curve.name}: {len(curve.rows)} {curve.unit}(s)", fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path


def save_grid(images: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...], per_row: int,
              path: Path) -> Path:
    """Normalised ``images`` (N, C, H, W; rows of ``per_row``) de-normalised with ``mean``/``std``, clipped to
    [0, 1], enlarged when small, as one PNG grid; returns ``path``."""
    from torchvision.utils import make_grid

    x = images.detach().float().cpu()
    x = x * torch.tensor(std).view(1, -1, 1, 1) + torch.tensor(mean).view(1, -1, 1, 1)
    scale = max(1, math.ceil(MIN_CELL / x.shape[-1]))
    if scale > 1:
        x = F.interpolate(x, scale_factor=scale, mode="nearest")
    grid = make_grid(x.clamp(0, 1), nrow=per_row, padding=2, pad_value=1.0)
    pixels = (grid * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(pixels)).save(path)
    return path
