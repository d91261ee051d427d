"""Shared fixtures: a per-session cache, so the demo teacher trains once per test session."""

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
