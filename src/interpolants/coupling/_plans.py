r"""Plan helpers: validated marginal weights, and pairs drawn from a plan's columns."""

import math

import torch
from torch import Tensor

from .._validation import check_finite, check_floating

__all__: list[str] = []


def weights(w: Tensor | None, n: int, like: Tensor, name: str) -> Tensor:
    """Validated weights summing to 1, on ``like``'s device and dtype (uniform if ``None``)."""
    if w is None:
        return torch.full((n,), 1.0 / n, dtype=like.dtype, device=like.device)
    check_floating(w, name)
    if w.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), got {tuple(w.shape)}")
    check_finite(w, name)
    total = float(w.sum())
    if bool((w < 0).any()) or not total > 0:
        raise ValueError(f"{name} must be non-negative with a positive sum")
    return (w / total).to(dtype=like.dtype, device=like.device)


def sample_columns(log_plan: Tensor, generator: torch.Generator | None) -> Tensor:
    """For each column j draw a row i with probability π_ij / Σ_i π_ij, on the plan's device.

    Returns ``index0`` of shape ``(n1,)``: every x1 is used once, x0 is drawn from the plan's
    conditional given x1. Inverse-CDF sampling on all columns at once: one uniform per column
    against the column's cumulative sums (accumulated in float64), i = #{k : F_kj ≤ U_j F_nj};
    rows of zero probability are never drawn. It replaces ``torch.multinomial`` on the
    softmax-normalised columns: one scan per column, with the same number of passes over the
    plan on any device (the comparison is in ``benchmarks/results/design_notes.md``,
    "Couplings").
    """
    n0, n1 = log_plan.shape
    # a row-major copy with one row per column (the scans below run along rows), in at least
    # float32 (float16's smallest normal number would zero weights below 1e-4 of the maximum)
    dtype = torch.promote_types(log_plan.dtype, torch.float32)
    cols = torch.empty((n1, n0), dtype=dtype, device=log_plan.device).copy_(log_plan.T)
    # column maxima 1; weights below twice the smallest normal float (≤ 1e-35 of a column's
    # mass in float32) set to 0 and exponents clamped first, since subnormal arithmetic is
    # slow on CPU; zero-probability rows (log π = −∞) stay exactly 0
    tiny = torch.finfo(cols.dtype).tiny
    peak = cols.amax(dim=1, keepdim=True)
    if not bool(torch.isfinite(peak).all()):
        raise ValueError("every column of the plan needs positive, finite mass to sample from")
    cols = cols.sub_(peak).clamp_(min=math.log(tiny)).exp_()
    cols = torch.nn.functional.threshold(cols, 2.0 * tiny, 0.0, inplace=True)
    cdf = torch.cumsum(cols, dim=1, dtype=torch.float64)
    u = torch.rand(n1, generator=generator, device=log_plan.device, dtype=torch.float64)
    return (cdf <= (u * cdf[:, -1])[:, None]).sum(dim=1).clamp_(max=n0 - 1)


def balanced_draw(
    n0: int, n1: int, device: torch.device, generator: torch.Generator | None
) -> Tensor:
    """``n1`` indices into ``range(n0)``, each used ⌊n1/n0⌋ or ⌈n1/n0⌉ times, in random order.

    For ``n0 == n1`` this is a uniformly random permutation.
    """
    reps = -(-n1 // n0)
    pool = torch.cat([torch.randperm(n0, generator=generator, device=device) for _ in range(reps)])
    return pool[:n1][torch.randperm(n1, generator=generator, device=device)]
