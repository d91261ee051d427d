"""NASB tests run torch on one thread: their tensors are tiny (8x8 demo digits, widths of 4-8), where the
thread hand-offs of intra-op parallelism cost more than they save, many times more on shared cores."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="package")
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
