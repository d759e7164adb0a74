"""The independent coupling: x0 and x1 paired at random."""

from typing import final

import torch

from .. import _validation
from .._validation import check_finite
from ._base import Batch0, Batch1, Labels0, Labels1, PairIndices, PermutationCoupling
from ._plans import balanced_draw

__all__ = ["IndependentCoupling"]


@final
class IndependentCoupling(PermutationCoupling):
    """The independent coupling ν = ρ0 ⊗ ρ1: x0 is paired with x1 at random.

    For equal sizes ``index0`` is a uniformly random permutation (drawn with ``generator``), so
    the pairing is independent even if the batches arrive in a correlated order. For unequal
    sizes every x1 is used once and every x0 ⌊n1/n0⌋ or ⌈n1/n0⌉ times. Runs on the inputs'
    device without reading their values, so it never synchronises with the host; only in the
    checked mode (``INTERPOLANTS_TYPECHECK=1``) does it read them, to raise
    :class:`ValueError` naming ``x0`` or ``x1`` when a batch holds NaN or Inf values
    (otherwise they pass through).

    Example
    -------
    >>> import torch
    >>> from interpolants import IndependentCoupling
    >>> x0, x1 = torch.randn(8, 2), torch.randn(8, 2)
    >>> p = IndependentCoupling()(x0, x1, generator=torch.Generator().manual_seed(0))
    >>> sorted(p.index0.tolist()) == list(range(8))
    True
    """

    def pair(
        self,
        x0: Batch0,
        x1: Batch1,
        y0: Labels0,
        y1: Labels1,
        *,
        generator: torch.Generator | None,
        want_plan: bool,
    ) -> PairIndices:
        if _validation.CHECK_VALUES:  # a host read: only in the checked mode
            check_finite(x0, "x0")
            check_finite(x1, "x1")
        n0, n1 = x0.shape[0], x1.shape[0]
        index0 = balanced_draw(n0, n1, x0.device, generator)
        plan = None
        if want_plan:
            plan = torch.full((n0, n1), 1.0 / (n0 * n1), dtype=x0.dtype, device=x0.device)
        return PairIndices(index0=index0, plan=plan)

    def __repr__(self) -> str:
        return "IndependentCoupling()"
