"""Progress bars (tqdm on stderr) that show the latest losses; silent when ``quiet``.

``--progress auto`` (the default) draws bars only when stderr is a terminal: in a log file a bar is a stream
of carriage-return frames (megabytes for a long run). ``on`` draws them anyway, ``off`` never.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

from tqdm.auto import tqdm

PROGRESS_MODES = ("auto", "on", "off")
_mode = ["auto"]  # set once by the command line (set_progress_mode)


def set_progress_mode(mode: str) -> None:
    if mode not in PROGRESS_MODES:
        raise ValueError(f"progress mode {mode!r}; choose one of {', '.join(PROGRESS_MODES)}")
    _mode[0] = mode


def bars_shown(quiet: bool = False) -> bool:
    """Whether a progress bar is drawn (see the module docstring)."""
    mode = _mode[0]
    return not quiet and (mode == "on" or (mode == "auto" and sys.stderr.isatty()))


def progress(iterable: Iterable, desc: str, total: int | None = None, quiet: bool = False, **kw) -> tqdm:
    return tqdm(iterable, desc=desc, total=total, disable=not bars_shown(quiet), leave=False, dynamic_ncols=True,
                file=sys.stderr, **kw)


def fmt_losses(values: dict[str, float]) -> dict[str, str]:
    return {k: f"{v:.4g}" for k, v in values.items()}
