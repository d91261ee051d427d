"""The alpha history as a figure: one subplot per edge, one line per candidate op across epochs.

matplotlib is an optional extra (``pip install nascomp[plot]``): without it :func:`plot_alpha_history`
returns None. The figure is drawn with ``matplotlib.figure.Figure`` directly, so no pyplot backend or
global state is touched.
"""

from __future__ import annotations

import math
from pathlib import Path

from ..errors import ConfigError
from .space import SearchSpace


def plot_alpha_history(
    history: list[dict[str, list[list[float]]]], space: SearchSpace, path: str | Path
) -> Path | None:
    """Plot ``history`` (a list of ``ArchSearcher.alpha_snapshot()`` results, one per epoch) to ``path``.

    Returns the path written, or None when matplotlib is not installed.
    """
    try:
        from matplotlib import colormaps
        from matplotlib.figure import Figure
    except ImportError:
        return None
    if not history:
        raise ConfigError(
            f"{path}: the alpha history is empty; record ArchSearcher.alpha_snapshot() each epoch"
        )
    panels = [(kind, e, name) for kind, spec in space.kinds.items() for e, name in enumerate(spec.edges)]
    for kind, spec in space.kinds.items():
        for i, snap in enumerate(history):
            rows = snap.get(kind)
            if rows is None or len(rows) != len(spec.edges) or any(len(r) != len(spec.ops) for r in rows):
                raise ConfigError(
                    f"{path}: alpha history entry {i} does not fit kind {kind!r} of space {space.name!r} "
                    f"({len(spec.edges)} edges x {len(spec.ops)} ops); plot the history of a search in this space"
                )
    cols = min(6, len(panels))
    rows_n = math.ceil(len(panels) / cols)
    fig = Figure(figsize=(2.6 * cols, 2.0 * rows_n + 0.6), layout="constrained")
    axes = fig.subplots(rows_n, cols, squeeze=False, sharey=True)
    epochs = list(range(len(history)))
    all_ops = list(dict.fromkeys(op for spec in space.kinds.values() for op in spec.ops))
    cmap = colormaps["tab10" if len(all_ops) <= 10 else "tab20"]
    colors = {op: cmap(j % cmap.N) for j, op in enumerate(all_ops)}
    handles: dict[str, object] = {}
    for ax, (kind, e, name) in zip(axes.flat, panels, strict=False):
        for i, op in enumerate(space.kinds[kind].ops):
            (line,) = ax.plot(epochs, [snap[kind][e][i] for snap in history], color=colors[op], linewidth=1.2)
            handles.setdefault(op, line)
        ax.set_title(f"{kind} {name}", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    fig.legend(
        list(handles.values()),
        list(handles),
        loc="outside lower center",
        ncol=min(8, len(handles)),
        fontsize=7,
    )
    fig.suptitle(f"{space.name}: softmax(alpha) per edge across epochs", fontsize=9)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path
