"""The demo digits ship inside the package (``nascomp/data/digits.npz``): the same arrays, in the same order, as
scikit-learn's ``load_digits`` gave before, and no scikit-learn needed to read them."""

import fnmatch
import hashlib
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from nascomp.data.sources import DEMO_DIGITS, DEMO_TEST_SIZE, demo_digits

tomllib = pytest.importorskip("tomllib")  # Python 3.11+
ROOT = Path(__file__).resolve().parents[1]
# sha256 of images + labels of each split, as scikit-learn's load_digits gave them (the demo numbers depend on it)
SHA256 = {"train": "c6c14ed9ee69e91db1ded4ebf8e9f644384c9e3f8463b2f5307dfda1838cc0e1",
          "test": "eb7d84c76d66555a5f680106c28e28eb31a594d468e3f87150019f01e4574ebe"}


def _digest(split: str) -> str:
    s = demo_digits(split)
    return hashlib.sha256(s.images.numpy().tobytes() + s.labels.numpy().tobytes()).hexdigest()


@pytest.mark.parametrize("split,size", [("train", 1797 - DEMO_TEST_SIZE), ("test", DEMO_TEST_SIZE)])
def test_demo_splits_are_the_arrays_scikit_learn_gave(split, size):
    s = demo_digits(split)
    assert s.images.shape == (size, 1, 8, 8) and s.images.dtype == torch.uint8 and s.images.max() == 255
    assert _digest(split) == SHA256[split]


def test_shipped_file_equals_scikit_learn_digits():
    datasets = pytest.importorskip("sklearn.datasets")
    digits = datasets.load_digits()
    with np.load(DEMO_DIGITS) as f:
        assert f["images"].dtype == np.uint8 and np.array_equal(f["images"], digits.images)
        assert np.array_equal(f["target"], digits.target) and "CC BY 4.0" in str(f["about"])


def test_demo_digits_load_without_scikit_learn(monkeypatch):
    for name in ("sklearn", "sklearn.datasets"):
        monkeypatch.setitem(sys.modules, name, None)  # any import of scikit-learn now fails
    assert len(demo_digits("test")) == DEMO_TEST_SIZE and _digest("test") == SHA256["test"]


def test_package_data_ships_the_file_and_scikit_learn_is_no_dependency():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = project["tool"]["setuptools"]["package-data"]["nascomp"]
    relative = DEMO_DIGITS.relative_to(ROOT / "src" / "nascomp").as_posix()
    assert any(fnmatch.fnmatch(relative, p) for p in patterns), patterns
    deps = project["project"]["dependencies"] + [d for extra in project["project"]["optional-dependencies"].values()
                                                  for d in extra]
    assert not any(d.lower().startswith(("scikit-learn", "sklearn")) for d in deps)
