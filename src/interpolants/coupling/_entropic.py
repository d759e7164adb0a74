r"""Entropic minibatch OT: Sinkhorn plans and the Schrödinger-bridge coupling of SB-CFM.

Both couplings solve the entropic problem min_π ⟨π, C⟩ + ε Σ_ij π_ij log π_ij over plans with
uniform marginals with :func:`sinkhorn`, on the inputs' device; they
differ only in how the absolute ε is chosen (relative to the cost's scale, or 2σ²).

**Which marginal is exact.** The columns of the Sinkhorn plan sum to b exactly, its rows to a
up to the tolerance. The couplings use every x1 exactly once and draw its partner from the
column conditional π(· | x1_j) = π[·, j] / b_j; the x1 marginal of the pairs is therefore
exact and each x0 is used n1·(π1)_i ≈ n1·a_i times in expectation (once, for equal sizes).

**Vanishing ε.** As ε → 0 the entropic plan tends to an exact OT plan, and its cost exceeds
the optimum by at most ε·log(n0·n1). When ε is below 10⁶ float64 roundings of max|C|
(ε < 10⁶ · 2⁻⁵² · max|C|), (f + g − C)/ε cannot be evaluated to the tolerance in any
floating type here; the couplings then return that limit, an exact OT plan (the certified
:class:`~interpolants.coupling.AuctionSolver` for equal sizes, POT's network simplex
otherwise, on the host in float64), and warn once. Likewise, when Sinkhorn does not converge
within ``max_iter`` at ε below 10⁻⁴ × (mean C − min C), the limit replaces the unconverged
plan, with a warning that gives ε, its ratio to the cost and the error reached.
"""

import abc
import math
import warnings
from collections.abc import Callable
from typing import final

import torch
from jaxtyping import Float
from torch import Tensor

from ._auction import AuctionSolver
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
from ._kernels import _compiled
from ._plans import sample_columns, weights
from ._sinkhorn import sinkhorn

__all__ = ["SchrodingerBridgeCoupling", "SinkhornCoupling"]


def _check(reg: float, tol: float, max_iter: int) -> None:
    if not reg > 0 or not math.isfinite(reg):
        raise ValueError(f"reg must be a positive finite number, got {reg}")
    if not tol > 0:
        raise ValueError(f"tol must be positive, got {tol}")
    if max_iter < 1:
        raise ValueError(f"max_iter must be >= 1, got {max_iter}")


_EXACT_LIMIT = 1e-4  # below this ε / spread(C) an unconverged plan is replaced by its limit
_RESOLVED = 1e6  # ε must exceed this many float64 roundings of max|C| to be resolved


def _spread(cost: Tensor) -> float:
    """mean(C) − min(C): the scale ε is compared with (as in :func:`sinkhorn`)."""
    return float(cost.mean(dtype=torch.float64) - cost.min().double())


def _exact_log_plan(cost: Tensor, a: Tensor, b: Tensor) -> Tensor:
    """log of an exact OT plan (a permutation / n for equal sizes and uniform weights, from
    :class:`AuctionSolver`; else POT's network simplex), on the cost's device."""
    host = cost.detach().to(device="cpu", dtype=torch.float64).numpy()
    n0, n1 = host.shape
    uniform = n0 == n1 and bool((a == a[0]).all() & (b == b[0]).all())
    dtype = torch.promote_types(cost.dtype, torch.float32)
    if uniform and _compiled("auction") is not None:
        perm = torch.from_numpy(AuctionSolver().certified(host.copy(), overwrite=True).perm)
        out = torch.full((n0, n1), -math.inf, dtype=dtype)
        out[torch.arange(n0), perm] = -math.log(n0)
        return out.to(cost.device)
    from ._exact import emd_plan

    return torch.log(emd_plan(cost.to(dtype), a.to(dtype), b.to(dtype)))


class _EntropicCoupling(PlanCoupling):
    """The entropic plan of the cost matrix for an ε that may depend on it, and pairs drawn
    from its column conditionals (the module notes). A subclass gives ε (:meth:`_eps`) and
    sets ``cost``, ``tol`` and ``max_iter``."""

    tol: float
    max_iter: int
    _warned_exact = False  # warned once that ε is below the cost's resolution

    @abc.abstractmethod
    def _eps(self, cost: Tensor) -> float:
        """The absolute regularisation ε > 0 for the ``(n0, n1)`` cost matrix."""

    def _log_plan(self, cost: Tensor, a: Tensor, b: Tensor) -> Tensor:
        """log π of the entropic plan (in at least float32; float64 when ε needs it)."""
        eps = self._eps(cost)
        low, high = torch.aminmax(cost)
        scale = max(abs(float(low)), abs(float(high)))
        floor = _RESOLVED * torch.finfo(torch.float64).eps * scale
        if eps < floor:
            # even in float64, f + g − C rounds by more than 10⁻⁶ ε: the plan cannot be
            # evaluated to the tolerance, and it cannot be told from an exact OT plan
            if not self._warned_exact:
                self._warned_exact = True
                warnings.warn(
                    f"{self!r}: ε = {eps:.3g} is below 10⁶ × the float64 rounding of the cost "
                    f"matrix ({floor:.3g} at max|C| = {scale:.3g}), where (f + g − C)/ε cannot "
                    "be evaluated to the tolerance and the entropic plan cannot be told from "
                    "an exact OT plan: using the exact plan (the ε → 0 limit). Use a larger "
                    "reg (sigma) or rescale the data for a genuinely entropic plan.",
                    RuntimeWarning,
                    stacklevel=5,  # the caller of the coupling (or of its plan)
                )
            return _exact_log_plan(cost, a, b)
        relative = eps / max(_spread(cost), torch.finfo(torch.float64).tiny)
        tiny = relative < _EXACT_LIMIT
        res = sinkhorn(cost, a, b, eps, self.tol, self.max_iter)
        if res.converged:
            return res.log_plan(cost)
        if math.isfinite(res.error):
            why = f"row-marginal error {res.error:.3g} > tol = {self.tol:g}"
        else:
            why = "row marginals that under/overflowed"
        what = (
            "returning its ε → 0 limit, an exact OT plan, whose transport cost differs from "
            "the entropic plan's by at most ε·log(n0·n1)"
            if tiny
            else "the pairs' x1 marginal is exact, the x0 marginal only approximate"
        )
        warnings.warn(
            f"{self!r}: Sinkhorn stopped after {res.n_iter} iterations at ε = {eps:.3g} "
            f"({relative:.2g} × mean(C) − min(C)) with {why}; {what}. Increase max_iter or "
            "reg (sigma).",
            RuntimeWarning,
            stacklevel=5,  # the caller of the coupling (or of its plan)
        )
        return _exact_log_plan(cost, a, b) if tiny else res.log_plan(cost)

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
        log_plan = self._log_plan(
            cost, weights(None, n0, cost, "w0"), weights(None, n1, cost, "w1")
        )
        index0 = sample_columns(log_plan, generator)
        plan = torch.exp(log_plan).to(cost.dtype) if want_plan else None
        return PairIndices(index0=index0, plan=plan)

    def weighted_plan(
        self, cost: Float[Tensor, "n0 n1"], a: Float[Tensor, " n0"], b: Float[Tensor, " n1"]
    ) -> Plan:
        """The entropic plan with marginals ``a`` (within ``tol``) and ``b``, on the cost's
        device."""
        return torch.exp(self._log_plan(cost, a, b)).to(cost.dtype)


@final
class SinkhornCoupling(_EntropicCoupling):
    r"""Entropic minibatch OT (Multisample Flow Matching's BatchEOT).

    The plan solves min ⟨π, C⟩ + ε Σ π log π with uniform marginals and ε = ``reg`` × mean(C):
    the regularisation is relative to the cost scale, so one ``reg`` fits any dimension. As
    ``reg`` → 0 the plan tends to the exact OT plan; as ``reg`` → ∞, to the independent
    coupling. Pairs: every x1 once, its x0 drawn from π(· | x1) with ``generator`` on the
    device (see the module notes: the x1 marginal is exact, the x0 marginal exact in
    expectation up to ``tol``). Everything runs on the inputs' device. A
    :class:`PlanCoupling`: :meth:`~PlanCoupling.plan` gives the entropic plan between weighted
    batches.

    Parameters
    ----------
    reg:
        Relative regularisation, > 0 (stable in float32 down to 10⁻³).
    cost:
        A :class:`Cost` or a callable; squared Euclidean by default.
    tol, max_iter:
        Sinkhorn stopping rule (see :func:`sinkhorn`); a run that hits ``max_iter`` warns.

    References
    ----------
    A.-A. Pooladian et al., *Multisample Flow Matching*, arXiv:2304.14772.

    Example
    -------
    >>> import torch
    >>> from interpolants.coupling import SinkhornCoupling
    >>> x0, x1 = torch.randn(64, 2), torch.randn(64, 2)
    >>> p = SinkhornCoupling(reg=0.05)(x0, x1, generator=torch.Generator().manual_seed(0))
    >>> p.x1.shape, bool((p.index1 == torch.arange(64)).all())
    (torch.Size([64, 2]), True)
    """

    def __init__(
        self,
        reg: float = 0.05,
        cost: Cost | Callable[[Tensor, Tensor], Tensor] | None = None,
        tol: float = 1e-6,
        max_iter: int = 10_000,
    ) -> None:
        _check(reg, tol, max_iter)
        self.reg = float(reg)
        self.cost = SquaredEuclideanCost() if cost is None else as_cost(cost)
        self.tol = float(tol)
        self.max_iter = int(max_iter)

    def _eps(self, cost: Tensor) -> float:
        scale = float(cost.mean())
        return self.reg * (scale if scale > 0 else 1.0)

    def __repr__(self) -> str:
        return f"SinkhornCoupling(reg={self.reg:g}, cost={self.cost!r})"


@final
class SchrodingerBridgeCoupling(_EntropicCoupling):
    r"""The static Schrödinger bridge coupling of SB-CFM: the entropic plan with ε = 2σ².

    For the Brownian motion σW as reference, the bridge's coupling of (x0, x1) is the entropic
    OT plan for the squared Euclidean cost with ε = 2σ² (absolute, not relative to the cost
    scale), because the reference transition kernel is ∝ exp(−‖x0 − x1‖²/(2σ²)). Between the
    paired endpoints the bridge is a Brownian bridge, x_t = (1−t)x0 + t x1 + σ√(t(1−t)) z, which
    in this library is ``LinearInterpolant(BrownianGamma(a=sigma**2))``; regressing b on that
    interpolant with these pairs is SB-CFM (its target x1 − x0 + γ̇ z equals torchcfm's
    (1−2t)/(2t(1−t))·(x_t − μ_t) + x1 − x0). Pairs are drawn as in :class:`SinkhornCoupling`.
    A :class:`PlanCoupling`: :meth:`~PlanCoupling.plan` gives the bridge's static coupling
    between weighted batches.

    Parameters
    ----------
    sigma:
        Noise level σ > 0 of the reference Brownian motion (the interpolant's σ).
    tol, max_iter:
        Sinkhorn stopping rule.

    References
    ----------
    A. Tong et al., *Simulation-free Schrödinger bridges via score and flow matching*,
    arXiv:2307.03672.

    Example
    -------
    >>> import torch
    >>> from interpolants import BrownianGamma, LinearInterpolant
    >>> from interpolants.coupling import SchrodingerBridgeCoupling
    >>> sigma = 0.5
    >>> coupling = SchrodingerBridgeCoupling(sigma)
    >>> interpolant = LinearInterpolant(BrownianGamma(a=sigma**2))
    >>> pairs = coupling(torch.randn(32, 2), torch.randn(32, 2))
    >>> interpolant.interpolate(0.5, pairs.x0, pairs.x1, torch.randn(32, 2)).shape
    torch.Size([32, 2])
    """

    def __init__(self, sigma: float, tol: float = 1e-6, max_iter: int = 10_000) -> None:
        if not sigma > 0 or not math.isfinite(sigma):
            raise ValueError(f"sigma must be a positive finite number, got {sigma}")
        _check(2 * sigma**2, tol, max_iter)
        self.sigma = float(sigma)
        self.cost = SquaredEuclideanCost()  # the Brownian-bridge reference kernel
        self.tol = float(tol)
        self.max_iter = int(max_iter)

    @property
    def eps(self) -> float:
        """The entropic regularisation 2σ²."""
        return 2.0 * self.sigma**2

    def _eps(self, cost: Tensor) -> float:
        return self.eps

    def __repr__(self) -> str:
        return f"SchrodingerBridgeCoupling(sigma={self.sigma:g})"
