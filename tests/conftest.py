"""Shared fixtures: a per-session cache (the demo teacher trains once per test session) and one torch thread.

The test models are tiny (8x8 digits, widths of 4-16): intra-op thread hand-offs cost more than a second
thread gives, many times more on busy shared cores."""

from __future__ import annotations

import os

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _session_cache(tmp_path_factory):
    os.environ["NASCOMP_CACHE"] = str(tmp_path_factory.mktemp("nascomp-cache"))
    torch.set_num_threads(1)  # tiny models: a second thread costs more than it gives, worse on busy cores
    yield


@pytest.fixture(scope="session")
def demo_teacher():
    from nascomp.demo import demo_teacher as build

    return build()
