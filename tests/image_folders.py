"""A small ImageFolder of random PNGs for tests of the data loaders."""

from __future__ import annotations

import numpy as np
from PIL import Image


def write_image_folder(root, classes, per_class: int = 2, size: int = 8):
    """``root/<class>/<i>.png`` for every class, ``per_class`` random ``size`` x ``size`` RGB images each."""
    rng = np.random.default_rng(0)
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(root / c / f"{i}.png")
    return root
