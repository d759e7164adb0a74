"""Mixed precision of the training step: the autocast dtype checked, and its context."""

from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch

__all__ = ["autocast_context", "check_autocast"]


def check_autocast(dtype: torch.dtype | None, device: torch.device) -> torch.dtype | None:
    """``dtype`` checked as the trainer's ``autocast`` on ``device``: None, or bfloat16 where
    torch has autocast for the device type (and the CUDA device supports bfloat16)."""
    if dtype is None:
        return None
    if dtype != torch.bfloat16:
        raise ValueError(
            f"autocast supports torch.bfloat16 only, got {dtype} (float16 needs loss scaling, "
            "which the trainer does not do)"
        )
    if not torch.amp.is_autocast_available(device.type):
        raise ValueError(f"torch has no autocast for device type {device.type!r}")
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ValueError(f"the CUDA device {device} does not support bfloat16")
    return dtype


def autocast_context(
    device: torch.device, dtype: torch.dtype | None
) -> AbstractContextManager[Any]:
    """:func:`torch.autocast` to ``dtype`` on ``device``'s type; a no-op context for None."""
    if dtype is None:
        return nullcontext()
    return torch.autocast(device.type, dtype=dtype)
