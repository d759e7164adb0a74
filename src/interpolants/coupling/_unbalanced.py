r"""Unbalanced and partial minibatch OT through POT: robust pairings that do not keep marginals.

Both relax the marginal constraints on purpose, so that outliers of a minibatch need not be
transported (Fatras et al.). **Neither keeps the minibatch marginals**: a point may be left
out or used several times. Use them when robustness to outliers matters more than exact
marginals; the interpolant's boundary conditions then hold for the *reweighted* marginals.
"""

import math
import warnings
from collections.abc import Callable
from typing import final

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from ._base import (
    Batch0,
    Batch1,
    Labels0,
    Labels1,
    PairIndices,
    Plan,
    PlanCoupling,
)
from ._cost import Cost, SquaredEuclideanCost, as_cost, cost_matrix
from ._plans import weights

__all__ = ["PartialOTCoupling", "UnbalancedOTCoupling"]


@final
class UnbalancedOTCoupling(PlanCoupling):
    r"""Entropic unbalanced OT (POT's ``ot.unbalanced.sinkhorn_unbalanced``).

    The plan solves min_π ⟨π, C⟩ + ε KL(π | a⊗b) + τ KL(π1 | a) + τ KL(πᵀ1 | b) with
    ε = ``reg``·mean(C) and τ = ``reg_m``·mean(C) (both relative to the cost scale). It runs
    with POT's torch backend on the inputs' device. ``n1`` pairs are drawn from the normalised
    plan π/Σπ (with replacement, with ``generator``): the pairs follow the plan, whose
    marginals are *not* a and b. As ``reg_m`` → ∞ it tends to the balanced entropic plan.

    Parameters
    ----------
    reg, reg_m:
        Relative entropic and marginal-relaxation strengths, > 0.
    cost:
        A :class:`Cost` or a callable; squared Euclidean by default.
    max_iter, tol:
        POT's ``numItermax`` and ``stopThr``.

    References
    ----------
    K. Fatras, T. Séjourné, N. Courty, R. Flamary, *Unbalanced minibatch Optimal Transport;
    applications to Domain Adaptation*, arXiv:2103.03606.
    """

    def __init__(
        self,
        reg: float = 0.05,
        reg_m: float = 1.0,
        cost: Cost | Callable[[Tensor, Tensor], Tensor] | None = None,
        max_iter: int = 10_000,
        tol: float = 1e-7,
    ) -> None:
        for name, value in (("reg", reg), ("reg_m", reg_m), ("tol", tol)):
            if not value > 0 or not math.isfinite(value):
                raise ValueError(f"{name} must be a positive finite number, got {value}")
        self.reg, self.reg_m = float(reg), float(reg_m)
        self.cost = SquaredEuclideanCost() if cost is None else as_cost(cost)
        self.max_iter, self.tol = int(max_iter), float(tol)

    def _plan(self, cost: Tensor, a: Tensor, b: Tensor) -> Tensor:
        import ot

        scale = float(cost.mean()) or 1.0
        dtype = torch.promote_types(cost.dtype, torch.float32)
        plan = ot.unbalanced.sinkhorn_unbalanced(
            a.to(dtype),
            b.to(dtype),
            (cost / scale).to(dtype),
            self.reg,
            self.reg_m,
            method="sinkhorn_stabilized",
            numItermax=self.max_iter,
            stopThr=self.tol,
        )
        if not bool(torch.isfinite(plan).all()) or not float(plan.sum()) > 0:
            raise FloatingPointError(f"{self!r}: the unbalanced plan is not finite; raise reg")
        result: Tensor = plan.to(cost.dtype)
        return result

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
        cost = cost_matrix(self.cost, x0, x1, reduced=False)
        n0, n1 = cost.shape
        plan = self._plan(cost, weights(None, n0, cost, "w0"), weights(None, n1, cost, "w1"))
        flat = (plan / plan.sum()).reshape(-1).to(torch.float64)
        draws = torch.multinomial(flat, n1, replacement=True, generator=generator)
        return PairIndices(index0=draws // n1, index1=draws % n1, plan=plan if want_plan else None)

    def weighted_plan(
        self, cost: Float[Tensor, "n0 n1"], a: Float[Tensor, " n0"], b: Float[Tensor, " n1"]
    ) -> Plan:
        """The unbalanced plan (its marginals differ from ``a``, ``b`` by design)."""
        return self._plan(cost, a, b)

    def __repr__(self) -> str:
        return f"UnbalancedOTCoupling(reg={self.reg:g}, reg_m={self.reg_m:g}, cost={self.cost!r})"


@final
class PartialOTCoupling(PlanCoupling):
    r"""Exact partial OT: transport only a fraction ``mass`` of the mass, at least cost.

    Solves min ⟨π, C⟩ over π ≥ 0 with π1 ≤ a, πᵀ1 ≤ b and Σπ = ``mass`` (POT's
    ``ot.partial.partial_wasserstein``, an exact network-simplex solve on the host in float64).
    Between uniform batches of equal size n with ``mass`` = k/n, an optimal vertex is a partial
    permutation, and the call returns exactly its k = round(mass·n) pairs (each point at most
    once; the n − k most expensive-to-match points of each side are left out). Batches of
    unequal size are not supported by the call (use :meth:`~PlanCoupling.plan`).

    Parameters
    ----------
    mass:
        Fraction of the mass to transport, in (0, 1].
    cost:
        A :class:`Cost` or a callable; squared Euclidean by default.

    References
    ----------
    L. Chapel, M. Z. Alaya, G. Gasso, *Partial Optimal Transport with Applications on
    Positive-Unlabeled Learning*, arXiv:2002.08276.
    """

    def __init__(
        self, mass: float = 0.9, cost: Cost | Callable[[Tensor, Tensor], Tensor] | None = None
    ) -> None:
        if not 0 < mass <= 1:
            raise ValueError(f"mass must lie in (0, 1], got {mass}")
        self.mass = float(mass)
        self.cost = SquaredEuclideanCost() if cost is None else as_cost(cost)

    def _solve(self, cost: Tensor, a: Tensor, b: Tensor, mass: float) -> Tensor:
        import ot

        with warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)  # a truncated solve is not optimal
            plan = ot.partial.partial_wasserstein(
                a.detach().cpu().double().numpy(),
                b.detach().cpu().double().numpy(),
                (cost - cost.min()).detach().cpu().double().numpy(),  # shift: same solutions
                m=mass,
                numItermax=10**9,
            )
        return torch.as_tensor(np.asarray(plan)).to(dtype=cost.dtype, device=cost.device)

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
        if n0 != n1:
            raise ValueError(f"PartialOTCoupling needs equal batch sizes, got {n0} and {n1}")
        k = max(1, round(self.mass * n0))
        cost = cost_matrix(self.cost, x0, x1, reduced=False)
        a = weights(None, n0, cost, "w0")
        plan = self._solve(cost, a, a, k / n0)
        pairs = torch.nonzero(plan > 0.5 / n0)
        if pairs.shape[0] != k:
            raise RuntimeError(f"{self!r}: the partial plan is not a partial permutation")
        index0, index1 = pairs[:, 0], pairs[:, 1]
        order = torch.argsort(index1)
        return PairIndices(
            index0=index0[order], index1=index1[order], plan=plan if want_plan else None
        )

    def weighted_plan(
        self, cost: Float[Tensor, "n0 n1"], a: Float[Tensor, " n0"], b: Float[Tensor, " n1"]
    ) -> Plan:
        """The partial plan of total mass ``mass``."""
        return self._solve(cost, a, b, self.mass)

    def __repr__(self) -> str:
        return f"PartialOTCoupling(mass={self.mass:g}, cost={self.cost!r})"
