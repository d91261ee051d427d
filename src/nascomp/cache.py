"""The user cache folder: ``$NASCOMP_CACHE`` or ``~/.cache/nascomp`` (demo teacher, extracted archives)."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import DataError


def cache_dir(*parts: str) -> Path:
    """``cache_dir("archives")`` -> the folder, created on demand; one error line when it cannot be."""
    root = Path(os.environ.get("NASCOMP_CACHE") or Path.home() / ".cache" / "nascomp")
    path = root.joinpath(*parts)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"cannot create the cache folder {path} ({e.strerror or type(e).__name__}); set "
                        "NASCOMP_CACHE to a writable folder") from None
    return path
