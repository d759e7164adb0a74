r"""Stable matching of two batches (Multisample Flow Matching's StableMatching coupling)."""

from collections.abc import Callable
from typing import final

import torch
from torch import Tensor

from ._base import Batch0, Batch1, Labels0, Labels1, PairIndices, PermutationCoupling
from ._cost import Cost, SquaredEuclideanCost, as_cost, cost_matrix

__all__ = ["StableMatchingCoupling"]


def stable_matching(cost: Tensor) -> Tensor:
    """The stable matching when both sides rank partners by ``cost`` (ties by index).

    Returns ``match0`` of shape ``(n0,)``: row ``i`` is matched to column ``match0[i]``, or
    ``-1`` when unmatched (only if ``n0 > n1``). Runs on the cost's device.
    """
    n0, n1 = cost.shape
    work = cost.clone()
    inf = torch.tensor(float("inf"), dtype=work.dtype, device=work.device)
    match0 = torch.full((n0,), -1, dtype=torch.int64, device=cost.device)
    rows = torch.arange(n0, device=cost.device)
    remaining = min(n0, n1)
    while remaining > 0:
        best_col = work.argmin(dim=1)  # every free row's favourite free column
        best_row = work.argmin(dim=0)  # every free column's favourite free row
        free = match0 < 0
        mutual = free & (best_row[best_col] == rows)
        new_rows = rows[mutual]
        new_cols = best_col[mutual]
        match0[new_rows] = new_cols
        work[new_rows, :] = inf
        work[:, new_cols] = inf
        remaining -= int(new_rows.numel())
    return match0


@final
class StableMatchingCoupling(PermutationCoupling):
    r"""Gale–Shapley stable matching with preferences given by the cost.

    Each x0 ranks the x1 by c(x0, ·) and each x1 ranks the x0 by c(·, x1); a matching is
    stable when no x0 and x1 both prefer each other to their partners. Because both sides rank
    by the same pair cost, the preferences are *globally ranked*: the stable matching is unique
    (Gale–Shapley from either side returns it) and equals the greedy matching that repeatedly
    pairs the cheapest remaining pair. It is computed here in parallel rounds on the inputs'
    device: every round matches all mutually-favourite pairs among the unmatched points (the
    cheapest remaining pair always is one), exact ties broken by the lower index.

    For equal sizes the result is a permutation (both marginals exact); for unequal sizes
    min(n0, n1) pairs are returned, each point used at most once.

    Parameters
    ----------
    cost:
        A :class:`Cost` or a callable; squared Euclidean by default (as in the paper).

    References
    ----------
    A.-A. Pooladian et al., *Multisample Flow Matching*, arXiv:2304.14772.
    D. Gale, L. S. Shapley, *College Admissions and the Stability of Marriage* (1962).

    Example
    -------
    >>> import torch
    >>> from interpolants.coupling import StableMatchingCoupling
    >>> x0 = torch.tensor([[0.0], [10.0]])
    >>> x1 = torch.tensor([[9.0], [1.0]])
    >>> StableMatchingCoupling()(x0, x1).x0
    tensor([[10.],
            [ 0.]])
    """

    def __init__(self, cost: Cost | Callable[[Tensor, Tensor], Tensor] | None = None) -> None:
        self.cost = SquaredEuclideanCost() if cost is None else as_cost(cost)

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
        n0, n1 = x0.shape[0], x1.shape[0]
        match0 = stable_matching(cost_matrix(self.cost, x0, x1, reduced=False))
        rows = torch.nonzero(match0 >= 0).squeeze(1)
        cols = match0[rows]
        order = torch.argsort(cols)  # keep x1's order
        index0, index1 = rows[order], cols[order]
        plan = None
        if want_plan:
            plan = torch.zeros((n0, n1), dtype=x0.dtype, device=x0.device)
            plan[index0, index1] = 1.0 / index0.numel()
        return PairIndices(index0=index0, index1=index1, plan=plan)

    def __repr__(self) -> str:
        return f"StableMatchingCoupling(cost={self.cost!r})"
