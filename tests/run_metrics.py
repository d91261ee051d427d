"""What two runs with the same seed must share: their metrics without wall times and the run folder."""

from __future__ import annotations

from typing import Any

VARYING = ("seconds", "seconds_per_step", "stage_seconds", "search_seconds", "run_dir")


def reproducible(metrics: dict[str, Any], *also: str) -> dict[str, Any]:
    """``metrics`` without the keys that differ between identical runs (and ``also``)."""
    return {k: v for k, v in metrics.items() if k not in VARYING + also}
