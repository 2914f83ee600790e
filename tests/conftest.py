"""Shared pytest setup: Hypothesis profiles and import path."""
from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# "ci": more examples, no deadline (shared CI cores are noisy); "dev": quick local runs.
settings.register_profile(
    "ci", max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
settings.register_profile("dev", max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))
