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


@pytest.fixture(scope="session")
def clip_folder(tmp_path_factory: pytest.TempPathFactory):
    """A randomly initialised CLIP vision model with the contract's 512-d projection, saved as a user's
    local weights folder (`extract.clip_model`): the CLIP path runs for real, with no download."""
    transformers = pytest.importorskip("transformers", reason="the [extract] extra")
    from trackfusion import schema

    torch.manual_seed(0)
    config = transformers.CLIPVisionConfig(projection_dim=schema.CLIP_DIM, hidden_size=32, intermediate_size=64,
                                           num_hidden_layers=1, num_attention_heads=2, image_size=32, patch_size=16)
    folder = tmp_path_factory.mktemp("clip") / "tiny-clip"
    transformers.CLIPVisionModelWithProjection(config).save_pretrained(folder)
    return folder
