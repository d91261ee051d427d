"""The user cache folder: ``$NASCOMP_CACHE`` or ``~/.cache/nascomp`` (demo teacher, extracted archives)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    """``cache_dir("archives")`` -> the folder, created on demand."""
    root = Path(os.environ.get("NASCOMP_CACHE") or Path.home() / ".cache" / "nascomp")
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
