"""Shared pytest setup: Hypothesis profiles, import path, one torch thread for tiny models."""
from __future__ import annotations

import os

import pytest
import torch
from hypothesis import HealthCheck, settings

# "ci": more examples, no deadline (shared CI cores are noisy); "dev": quick local runs.
settings.register_profile(
    "ci", max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
settings.register_profile("dev", max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


@pytest.fixture(scope="module")
def one_torch_thread() -> object:
    """Tiny models: one intra-op thread is fastest, and immune to busy-waiting on shared cores.
    A module asks for it with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
