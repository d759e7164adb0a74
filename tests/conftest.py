"""Shared pytest configuration: deterministic hypothesis runs and the CUDA marker."""

import pytest
import torch
from hypothesis import HealthCheck, settings

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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)
