r"""Weighted conditional flow matching (W-CFM) as a coupling: Gibbs-kernel weights on
independent pairs, without a transport solve."""

import math
from collections.abc import Callable
from typing import final

import torch
from jaxtyping import Float
from torch import Tensor

from ._base import Batch0, Batch1, Labels0, Labels1, PairIndices, Plan, PlanCoupling
from ._cost import Cost, SquaredEuclideanCost, as_cost, cost_matrix

__all__ = ["GibbsWeightedCoupling"]


def _normalised(log_w: Tensor) -> Tensor:
    """exp(log_w) / Σ exp(log_w) over the whole matrix (a plan of total mass 1)."""
    return torch.softmax(log_w.reshape(-1), 0).reshape(log_w.shape)


def _draw_pairs(log_w: Tensor, m: int, generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
    """``m`` pairs (i, j) drawn i.i.d. with probability ∝ exp(log_w[i, j]), on its device.

    Inverse-CDF sampling over the flattened matrix (cumulative sums in float64): one uniform
    per pair, i·n1 + j = #{k : F_k ≤ U F_last}. Entries of zero weight are never drawn.
    """
    n0, n1 = log_w.shape
    flat = log_w.reshape(-1).to(torch.promote_types(log_w.dtype, torch.float32))
    w = (flat - flat.amax()).exp_()
    cdf = torch.cumsum(w, dim=0, dtype=torch.float64)
    u = torch.rand(m, generator=generator, device=log_w.device, dtype=torch.float64)
    k = torch.searchsorted(cdf, u * cdf[-1], right=True).clamp_(max=n0 * n1 - 1)
    index0, index1 = k // n1, k % n1
    order = torch.argsort(index1, stable=True)  # the pairs in x1's order
    return index0[order], index1[order]


@final
class GibbsWeightedCoupling(PlanCoupling):
    r"""Weighted conditional flow matching: independent pairs weighted by a Gibbs kernel.

    W-CFM weights the loss of each independent pair (x0, x1) ~ ρ0 ⊗ ρ1 by the Gibbs kernel
    K(x0, x1) = exp(−c(x0, x1)/ε), with no transport problem solved. Its population loss is
    the conditional flow-matching loss of the coupling

    .. math::

        \pi_K(dx_0, dx_1) = \frac{K(x_0, x_1)\, \rho_0(dx_0)\, \rho_1(dx_1)}{Z},
        \qquad Z = \iint K \, d\rho_0 \, d\rho_1,

    which this coupling samples: each of the n0·n1 pairs of the two batches is an
    independent pair, and ``n1`` pairs are drawn i.i.d. among them with probability
    ∝ K(x0_i, x1_j) (self-normalised importance resampling, on the inputs' device; both
    sides may repeat, and the pairs are returned sorted by their x1 index). As the batches
    grow the pairs' law tends to π_K. π_K is the entropic OT plan's Gibbs form with both
    potentials zero, i.e. Sinkhorn with no iterations: cheap (one cost matrix, one
    cumulative sum) and free of host round trips once the cost is checked.

    **The bias.** π_K does not keep the marginals. Its marginals are the tilted laws

    .. math::

        \tilde\rho_0(x_0) = \rho_0(x_0)\, \frac{\int K(x_0, y)\, \rho_1(dy)}{Z},
        \qquad
        \tilde\rho_1(x_1) = \rho_1(x_1)\, \frac{\int K(x, x_1)\, \rho_0(dx)}{Z},

    so a model trained on these pairs transports ρ̃0 to ρ̃1, and sampling it from ρ0 lands
    near ρ̃1, not ρ1 — unlike exact OT (:class:`~interpolants.OTCoupling`, both minibatch
    marginals exact) or Sinkhorn (:class:`SinkhornCoupling`, x1's exact, x0's within its
    tolerance). For the squared Euclidean cost and ρ0 = N(0, I_d) the tilt is explicit:
    ∫K(x, y) ρ0(dx) ∝ exp(−‖y‖²/(ε + 2)), so ρ̃1(y) ∝ ρ1(y)·N(y; 0, (1 + ε/2) I): the
    target is pulled towards the origin, a Gaussian component N(m, s² I) of ρ1 becoming
    N(m τ/(s² + τ), s² τ/(s² + τ) I) with τ = 1 + ε/2, its weight scaled by
    N(m; 0, (s² + τ) I). The bias vanishes as ε → ∞ (the independent coupling, no
    straightening) and grows as ε shrinks; it is small when the kernel's smoothing of ρ1
    is nearly constant on the support of ρ0 (and vice versa), i.e. ε large against the
    squared spread of the data. Because the marginals move, the pairs' transport cost
    E c(x0, x1) is no measure of straightening here: at small ε it falls below exact OT's,
    which no coupling of ρ0 and ρ1 can reach. ``tests/test_coupling_weighted.py`` measures
    the bias against exact OT on the exact Gaussian-mixture test bed (figures in
    ``docs/api/coupling.rst``).

    Parameters
    ----------
    epsilon:
        The kernel's absolute temperature ε > 0 (in the units of the cost).
    cost:
        A :class:`Cost` or a callable; squared Euclidean by default.

    Notes
    -----
    A :class:`PlanCoupling`: :meth:`~PlanCoupling.plan` returns the batch version of π_K
    between weighted batches, π_ij = a_i b_j K_ij / Σ_kl a_k b_l K_kl; its marginals are
    the tilted weights, not ``a`` and ``b``. What crosses to the host: one read of the cost
    matrix's extremes (the finiteness check).

    References
    ----------
    S. Calvo-Ordoñez, M. Meunier, Á. Cartea, C. Reisinger, Y. Gal, J. M. Hernández-Lobato,
    *Weighted Conditional Flow Matching*, arXiv:2507.22270.

    Example
    -------
    >>> import torch
    >>> from interpolants.coupling import GibbsWeightedCoupling
    >>> x0, x1 = torch.randn(64, 2), torch.randn(64, 2) + 3
    >>> p = GibbsWeightedCoupling(epsilon=2.0)(x0, x1, generator=torch.Generator().manual_seed(0))
    >>> p.x0.shape, p.x1.shape
    (torch.Size([64, 2]), torch.Size([64, 2]))
    >>> bool((p.index1.diff() >= 0).all())  # sorted by x1; an x1 may repeat
    True
    """

    def __init__(
        self,
        epsilon: float = 1.0,
        cost: Cost | Callable[[Tensor, Tensor], Tensor] | None = None,
    ) -> None:
        if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)):
            raise TypeError(f"epsilon must be a number, got {type(epsilon).__name__}")
        if not epsilon > 0 or not math.isfinite(epsilon):
            raise ValueError(f"epsilon must be a positive finite number, got {epsilon}")
        self.epsilon = float(epsilon)
        self.cost = SquaredEuclideanCost() if cost is None else as_cost(cost)

    def _log_kernel(self, cost: Tensor, a: Tensor | None, b: Tensor | None) -> Tensor:
        """log(a_i b_j K_ij) in at least float32 (the kernel itself when a, b are None)."""
        dtype = torch.promote_types(cost.dtype, torch.float32)
        log_w = cost.to(dtype) * (-1.0 / self.epsilon)
        if a is not None and b is not None:
            log_w = log_w + a.to(dtype).log()[:, None] + b.to(dtype).log()[None, :]
        return log_w

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
        log_w = self._log_kernel(cost, None, None)
        index0, index1 = _draw_pairs(log_w, x1.shape[0], generator)
        plan = _normalised(log_w).to(cost.dtype) if want_plan else None
        return PairIndices(index0=index0, index1=index1, plan=plan)

    def weighted_plan(
        self, cost: Float[Tensor, "n0 n1"], a: Float[Tensor, " n0"], b: Float[Tensor, " n1"]
    ) -> Plan:
        """π_ij = a_i b_j K_ij / Σ_kl a_k b_l K_kl (its marginals are tilted, not a and b)."""
        return _normalised(self._log_kernel(cost, a, b)).to(cost.dtype)

    def __repr__(self) -> str:
        return f"GibbsWeightedCoupling(epsilon={self.epsilon:g}, cost={self.cost!r})"
