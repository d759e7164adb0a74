"""Input checks run once at public entry points.

They raise :class:`ValueError` or :class:`TypeError` naming the argument and what was
expected, so that bad input never turns into a silent NaN or a deep stack trace. They are
cheap (shape and dtype checks; a range check costs one reduction) and are kept out of
inner solver loops.
"""

import math
import os
from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = [
    "CHECK_VALUES",
    "as_time",
    "check_finite",
    "check_floating",
    "check_same_shape",
    "check_time_range",
]

#: Also check the *values* of per-step tensor arguments (the range of a time tensor), which
#: costs a host read per call: on with ``INTERPOLANTS_TYPECHECK=1`` (the checked mode), off by
#: default so that training and sampling steps never synchronise a device with the host.
CHECK_VALUES = os.environ.get("INTERPOLANTS_TYPECHECK", "").lower() in {"1", "true", "yes"}


def check_floating(x: Tensor, name: str) -> None:
    """Raise :class:`TypeError` unless ``x`` is a floating-point tensor."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not torch.is_floating_point(x):
        raise TypeError(f"{name} must have a floating dtype, got {x.dtype}")


def check_same_shape(tensors: Sequence[tuple[str, Tensor]]) -> None:
    """Raise :class:`ValueError` unless all named tensors share one shape."""
    (first_name, first), *rest = tensors
    for name, x in rest:
        if x.shape != first.shape:
            raise ValueError(
                f"{name} must have the same shape as {first_name} "
                f"{tuple(first.shape)}, got {tuple(x.shape)}"
            )


def check_finite(x: Tensor, name: str) -> None:
    """Raise :class:`ValueError` if ``x`` holds a NaN or an infinity.

    Uses the minimum and maximum (a NaN propagates into both; an infinity is one of them):
    one fused reduction instead of a full boolean mask.
    """
    if x.numel() == 0:
        return
    lo, hi = torch.aminmax(x.detach().reshape(-1))
    if not (math.isfinite(float(lo)) and math.isfinite(float(hi))):
        raise ValueError(f"{name} contains NaN or Inf values")


def check_time_range(t: Tensor, name: str = "t") -> None:
    """Raise :class:`ValueError` unless every entry of ``t`` lies in [0, 1]."""
    if t.numel() and not bool(((t >= 0) & (t <= 1)).all()):
        lo, hi = float(t.min()), float(t.max())
        raise ValueError(f"{name} must lie in [0, 1], got values in [{lo:.4g}, {hi:.4g}]")


def as_time(t: float | int | Tensor, like: Tensor, name: str = "t") -> Tensor:
    """Return ``t`` as a tensor on ``like``'s device and dtype, checked against the batch.

    ``t`` may be a Python number, a scalar tensor or a tensor of shape ``(batch,)`` where
    ``batch = like.shape[0]``.
    """
    if isinstance(t, (int, float)):
        if not math.isfinite(t) or not 0.0 <= t <= 1.0:
            raise ValueError(f"{name} must lie in [0, 1], got {t}")
        return torch.tensor(float(t), dtype=like.dtype, device=like.device)
    if not isinstance(t, Tensor):
        raise TypeError(f"{name} must be a float or a torch.Tensor, got {type(t).__name__}")
    if t.ndim > 1 or (t.ndim == 1 and (like.ndim == 0 or t.shape[0] != like.shape[0])):
        expected = f"() or ({like.shape[0]},)" if like.ndim else "()"
        raise ValueError(f"{name} must have shape {expected}, got {tuple(t.shape)}")
    check_time_range(t, name)
    return t.to(dtype=like.dtype, device=like.device)


def broadcast_time(t: Tensor, x: Tensor) -> Tensor:
    """View a scalar or per-sample ``t`` so that it broadcasts against ``x`` (B, *dims)."""
    if t.ndim == 0:
        return t
    return t.reshape(t.shape[0], *([1] * (x.ndim - 1)))
