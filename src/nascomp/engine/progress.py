"""Progress bars (tqdm on stderr) that show the latest losses; silent when ``quiet``."""

from __future__ import annotations

from collections.abc import Iterable

from tqdm.auto import tqdm


def progress(iterable: Iterable, desc: str, total: int | None = None, quiet: bool = False, **kw) -> tqdm:
    return tqdm(iterable, desc=desc, total=total, disable=quiet, leave=False, dynamic_ncols=True, **kw)


def fmt_losses(values: dict[str, float]) -> dict[str, str]:
    return {k: f"{v:.4g}" for k, v in values.items()}
