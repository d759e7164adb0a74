"""Shared pytest configuration: deterministic hypothesis runs and the CUDA marker."""

import pytest
import torch
from hypothesis import HealthCheck, settings

from interpolants import _validation

# Derandomised: the same examples on every run, so property tests never flake; no deadline,
# because runtime type checking (jaxtyping + beartype) makes the first calls slow.
settings.register_profile(
    "interpolants",
    derandomize=True,
    deadline=None,
    max_examples=40,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("interpolants")

# The checked mode's value checks (a time tensor's range, one host read per call) throughout
# the suite; tests/test_no_sync.py switches them off, as in production.
_validation.CHECK_VALUES = True

# A throw-away multi-threaded kernel before any test. On this project's 2-core machines (CPU
# build of torch 2.13.0, two intra-op threads) the *first* element-wise kernel that a fresh
# process splits across threads returns the worker thread's share with ~1e-4 relative error
# in roughly one process in three (reproduced: ``torch.sqrt`` or ``torch.sin`` of 4000 floats,
# elements 2000–3999 off by up to 2.3e-4; every later call is exact, and one parallel kernel
# beforehand makes 30 of 30 fresh processes exact). Without it, whichever test happened to
# run that first kernel (``sample`` of the spirals, when tests/test_datasets_nn.py runs alone)
# could flake; this is outside the library, so the suite absorbs it here.
torch.sin(torch.linspace(0.0, 1.0, 1 << 16))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)
