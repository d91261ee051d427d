"""Write ``src/nascomp/data/digits.npz``: the 8x8 digits of the built-in demo, so nascomp needs no scikit-learn.

    pip install scikit-learn && python scripts/make_demo_digits.py

Provenance: scikit-learn's ``load_digits()`` (1,797 images) is a copy of the *test* set (``optdigits.tes``) of
the UCI "Optical Recognition of Handwritten Digits" data set (E. Alpaydin and C. Kaynak, 1998;
https://archive.ics.uci.edu/dataset/80), licensed CC BY 4.0 by the UCI repository. The file keeps the data
exactly as scikit-learn gives it, in its order: ``images`` uint8 (1797, 8, 8) with pixel counts 0..16,
``target`` uint8 (1797,), and ``about`` (this provenance as text). ``nascomp.data.sources.demo_digits``
scales and splits it as it always did, so every demo number stays the same.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "src" / "nascomp" / "data" / "digits.npz"
ABOUT = ("8x8 handwritten digits: the test set (optdigits.tes) of the UCI Optical Recognition of Handwritten "
         "Digits data set, E. Alpaydin and C. Kaynak (1998), https://archive.ics.uci.edu/dataset/80, CC BY 4.0; "
         "as bundled by scikit-learn (load_digits), same order. images: pixel counts 0..16.")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=OUT, help=f"file to write (default {OUT})")
    a = p.parse_args(argv)
    from sklearn.datasets import load_digits

    digits = load_digits()
    images, target = digits.images, digits.target
    if images.shape != (1797, 8, 8) or images.min() < 0 or images.max() > 16 or (images != np.round(images)).any():
        raise SystemExit(f"unexpected digits: shape {images.shape}, range {images.min()}..{images.max()}")
    np.savez_compressed(a.out, images=images.astype(np.uint8), target=target.astype(np.uint8), about=np.array(ABOUT))
    print(f"{a.out}: {a.out.stat().st_size} bytes, {len(target)} images")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
