r"""Entropic minibatch OT: Sinkhorn plans and the Schrödinger-bridge coupling of SB-CFM.

The entropic problem min_π ⟨π, C⟩ + ε Σ_ij π_ij log π_ij over plans with marginals a, b has
the solution π_ij = exp((f_i + g_j − C_ij)/ε) for dual potentials f, g, found by Sinkhorn's
alternating updates f ← ε(log a − LSE_j((g_j − C_ij)/ε)), g ← ε(log b − LSE_i((f_i − C_ij)/ε)).

:func:`sinkhorn` runs entirely on the cost's device (no host copy). It iterates the scalings
u = a/(Kv), v = b/(Kᵀu) of the stabilised kernel K = exp((f + g − C)/ε) and absorbs them
into f, g every ``check_every`` iterations (Schmitzer's log-stabilisation), so that nothing
overflows; if a scaling ever becomes non-finite it switches to the log-domain updates above,
which are stable for any ε. Either way it returns log-domain potentials, so it is stable in
float32 down to ε = 10⁻³ times the cost scale.

**Which marginal is exact.** Each iteration ends with the column update, so the columns of the
returned plan sum to b; the rows sum to a up to the tolerance (the stopping criterion is
‖π1 − a‖₂ < tol, checked every ``check_every`` iterations, the criterion of POT's
``ot.sinkhorn``). The couplings use every x1 exactly once and draw its partner from the
column conditional π(· | x1_j) = π[·, j] / b_j; the x1 marginal of the pairs is therefore exact
and each x0 is used n1·(π1)_i ≈ n1·a_i times in expectation (once, for equal sizes).
"""

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import final

import torch
from jaxtyping import Float
from torch import Tensor

from .base import PlanCoupling, sample_columns, weights
from .cost import Cost, SquaredEuclideanCost, as_cost, cost_matrix

__all__ = ["SchrodingerBridgeCoupling", "SinkhornCoupling", "SinkhornResult", "sinkhorn"]


@dataclass(frozen=True)
class SinkhornResult:
    """Output of :func:`sinkhorn`.

    Attributes
    ----------
    f, g:
        Dual potentials, shapes ``(n0,)`` and ``(n1,)``; the plan is
        π_ij = exp((f_i + g_j − C_ij)/ε) (see :meth:`log_plan`).
    eps:
        The absolute regularisation ε.
    n_iter:
        Iterations run.
    error:
        ‖π1 − a‖₂ at the end (the column marginal is exact).
    converged:
        Whether ``error < tol``.
    """

    f: Tensor
    g: Tensor
    eps: float
    n_iter: int
    error: float
    converged: bool

    def log_plan(self, cost: Float[Tensor, "n0 n1"]) -> Float[Tensor, "n0 n1"]:
        """log π_ij = (f_i + g_j − C_ij)/ε for the cost the potentials were computed with."""
        return (self.f[:, None] + self.g[None, :] - cost) / self.eps


def sinkhorn(
    cost: Float[Tensor, "n0 n1"],
    a: Float[Tensor, " n0"],
    b: Float[Tensor, " n1"],
    eps: float,
    tol: float = 1e-6,
    max_iter: int = 10_000,
    check_every: int = 10,
) -> SinkhornResult:
    r"""Log-stabilised Sinkhorn for min ⟨π, C⟩ + ε Σ π log π with marginals ``a``, ``b``.

    Runs on the cost's device in its dtype (at least float32).

    Parameters
    ----------
    cost:
        Finite cost matrix ``(n0, n1)``.
    a, b:
        Positive marginals summing to 1 (same dtype and device as ``cost``).
    eps:
        Absolute regularisation ε > 0.
    tol:
        Stop when ‖π1 − a‖₂ < tol (checked every ``check_every`` iterations).
    max_iter:
        Iteration cap.
    check_every:
        Iterations between convergence checks and absorptions (each costs a host sync).

    Returns
    -------
    SinkhornResult
        Potentials with π = exp((f + g − C)/ε), its columns summing to ``b``.

    References
    ----------
    M. Cuturi, *Sinkhorn Distances*, arXiv:1306.0895. B. Schmitzer, *Stabilized Sparse Scaling
    Algorithms for Entropy Regularized Transport Problems*, arXiv:1610.06519.
    """
    if not eps > 0 or not math.isfinite(eps):
        raise ValueError(f"eps must be a positive finite number, got {eps}")
    if not tol > 0:
        raise ValueError(f"tol must be positive, got {tol}")
    if max_iter < 1 or check_every < 1:
        raise ValueError(f"max_iter and check_every must be >= 1, got {max_iter}, {check_every}")
    if not bool((a > 0).all()) or not bool((b > 0).all()):
        raise ValueError("the marginals a and b must be positive (drop zero-weight points)")
    dtype = torch.promote_types(cost.dtype, torch.float32)
    c = cost.to(dtype)
    a, b = a.to(dtype), b.to(dtype)
    f, g = torch.zeros_like(a), torch.zeros_like(b)
    # ε-scaling: warm-start from coarser problems (ε·4^k down to ε) when ε is small
    spread = float((c - c.min()).mean()) or 1.0
    stages = max(0, math.ceil(math.log(0.02 * spread / eps, 4))) if eps < 0.02 * spread else 0
    n_iter = 0
    for k in range(stages, 0, -1):
        f, g, it, _ = _iterate(c, a, b, f, g, eps * 4.0**k, 10 * tol, 100, check_every)
        n_iter += it
    f, g, it, error = _iterate(c, a, b, f, g, eps, tol, max(1, max_iter - n_iter), check_every)
    n_iter += it
    return SinkhornResult(
        f=f.to(cost.dtype),
        g=g.to(cost.dtype),
        eps=float(eps),
        n_iter=n_iter,
        error=error,
        converged=error < tol,
    )


def _iterate(
    c: Tensor,
    a: Tensor,
    b: Tensor,
    f: Tensor,
    g: Tensor,
    eps: float,
    tol: float,
    max_iter: int,
    check_every: int,
) -> tuple[Tensor, Tensor, int, float]:
    """Sinkhorn at one ε from potentials (f, g); returns (f, g, iterations, row error)."""
    log_a, log_b = torch.log(a), torch.log(b)

    def log_step(f: Tensor, g: Tensor) -> tuple[Tensor, Tensor]:
        f = eps * (log_a - torch.logsumexp((g[None, :] - c) / eps, dim=1))
        return f, eps * (log_b - torch.logsumexp((f[:, None] - c) / eps, dim=0))

    # Entries below the smallest normal number are set to zero: subnormal floats would make
    # every matrix-vector product ~100× slower on CPUs, and they carry no usable mass.
    floor = math.log(torch.finfo(c.dtype).tiny)

    def stabilised_kernel(f: Tensor, g: Tensor) -> Tensor:
        z = (f[:, None] + g[None, :] - c) / eps
        return torch.exp(z).masked_fill_(z < floor, 0.0)

    if not bool((f != 0).any() | (g != 0).any()):  # cold start: try the plain kernel first
        g = g + c.min()
        kernel = stabilised_kernel(f, g)
        if not bool((kernel.sum(0) > 0).all() & (kernel.sum(1) > 0).all()):
            f, g = log_step(f, g)  # an empty row or column: start in the log domain instead
            kernel = stabilised_kernel(f, g)
    else:
        f, g = log_step(f, g)  # warm start (ε-scaling): re-balance at the new ε
        kernel = stabilised_kernel(f, g)
    kernel_t = kernel.T.contiguous()  # row-major copy: the transposed products stay fast
    error = float(torch.linalg.vector_norm(kernel.sum(1) - a))
    n_iter, failures = 1, 0
    u, v = torch.ones_like(a), torch.ones_like(b)
    # Scalings are absorbed into the potentials (one exponential of the n0×n1 matrix) only when
    # they leave [e^-τ, e^τ]; in between the iterations are plain matrix–vector products.
    tau = 0.25 * -floor
    while error >= tol and n_iter < max_iter:
        steps = min(check_every, max_iter - n_iter)
        n_iter += steps
        if failures:  # the last scalings under/overflowed: one block in the log domain
            failures = 0
            for _ in range(steps):
                f, g = log_step(f, g)
            u, v = torch.ones_like(a), torch.ones_like(b)
            kernel = stabilised_kernel(f, g)
            kernel_t = kernel.T.contiguous()
            error = float(torch.linalg.vector_norm(kernel.sum(1) - a))
            continue
        u0, v0 = u, v
        for _ in range(steps):
            u = a / (kernel @ v)
            v = b / (kernel_t @ u)
        ok = torch.isfinite(u).all() & torch.isfinite(v).all() & (u > 0).all() & (v > 0).all()
        if not bool(ok):  # restart from the last good scalings with a log-domain step
            failures = 1
            f, g = f + eps * torch.log(u0), g + eps * torch.log(v0)
            f, g = log_step(f, g)
            u, v = torch.ones_like(a), torch.ones_like(b)
            kernel = stabilised_kernel(f, g)
            kernel_t = kernel.T.contiguous()
            error = float(torch.linalg.vector_norm(kernel.sum(1) - a))
            continue
        error = float(torch.linalg.vector_norm(u * (kernel @ v) - a))
        log_u, log_v = torch.log(u), torch.log(v)
        if float(torch.maximum(log_u.abs().max(), log_v.abs().max())) > tau:
            f, g = f + eps * log_u, g + eps * log_v
            u, v = torch.ones_like(a), torch.ones_like(b)
            kernel = stabilised_kernel(f, g)
            kernel_t = kernel.T.contiguous()
    return f + eps * torch.log(u), g + eps * torch.log(v), n_iter, error


def _entropic_pairs(
    cost: Tensor,
    eps: float,
    tol: float,
    max_iter: int,
    generator: torch.Generator | None,
    want_plan: bool,
    who: str,
) -> tuple[Tensor, Tensor, Tensor | None]:
    n0, n1 = cost.shape
    a = weights(None, n0, cost, "w0")
    b = weights(None, n1, cost, "w1")
    res = sinkhorn(cost, a, b, eps, tol, max_iter)
    _warn_unconverged(res, tol, who)
    log_plan = res.log_plan(cost)
    index0 = sample_columns(log_plan, generator)
    index1 = torch.arange(n1, device=cost.device)
    return index0, index1, torch.exp(log_plan) if want_plan else None


def _warn_unconverged(res: SinkhornResult, tol: float, who: str) -> None:
    if not res.converged:
        warnings.warn(
            f"{who}: Sinkhorn stopped after {res.n_iter} iterations with row-marginal error "
            f"{res.error:.3g} > tol = {tol:g}; the pairs' x1 marginal is exact, the x0 marginal "
            "only approximate. Increase max_iter or reg.",
            RuntimeWarning,
            stacklevel=4,
        )


def _scale(cost: Tensor) -> float:
    s = float(cost.mean())
    return s if s > 0 else 1.0


def _check(reg: float, tol: float, max_iter: int) -> None:
    if not reg > 0 or not math.isfinite(reg):
        raise ValueError(f"reg must be a positive finite number, got {reg}")
    if not tol > 0:
        raise ValueError(f"tol must be positive, got {tol}")
    if max_iter < 1:
        raise ValueError(f"max_iter must be >= 1, got {max_iter}")


@final
class SinkhornCoupling(PlanCoupling):
    r"""Entropic minibatch OT (Multisample Flow Matching's BatchEOT).

    The plan solves min ⟨π, C⟩ + ε Σ π log π with uniform marginals and ε = ``reg`` × mean(C):
    the regularisation is relative to the cost scale, so one ``reg`` fits any dimension. As
    ``reg`` → 0 the plan tends to the exact OT plan; as ``reg`` → ∞, to the independent
    coupling. Pairs: every x1 once, its x0 drawn from π(· | x1) with ``generator`` on the
    device (see the module notes: the x1 marginal is exact, the x0 marginal exact in
    expectation up to ``tol``). Everything runs on the inputs' device.

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

    def _pair(
        self,
        x0: Tensor,
        x1: Tensor,
        y0: tuple[Tensor, ...] | None,
        y1: tuple[Tensor, ...] | None,
        generator: torch.Generator | None,
        want_plan: bool,
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        cost = cost_matrix(self.cost, x0, x1, reduced=False)
        eps = self.reg * _scale(cost)
        return _entropic_pairs(cost, eps, self.tol, self.max_iter, generator, want_plan, repr(self))

    def _weighted_plan(self, cost: Tensor, a: Tensor, b: Tensor) -> Tensor:
        """The entropic plan with marginals ``a``, ``b``."""
        res = sinkhorn(cost, a, b, self.reg * _scale(cost), self.tol, self.max_iter)
        _warn_unconverged(res, self.tol, repr(self))
        return torch.exp(res.log_plan(cost))

    def __repr__(self) -> str:
        return f"SinkhornCoupling(reg={self.reg:g}, cost={self.cost!r})"


@final
class SchrodingerBridgeCoupling(PlanCoupling):
    r"""The static Schrödinger bridge coupling of SB-CFM: the entropic plan with ε = 2σ².

    For the Brownian motion σW as reference, the bridge's coupling of (x0, x1) is the entropic
    OT plan for the squared Euclidean cost with ε = 2σ² (absolute, not relative to the cost
    scale), because the reference transition kernel is ∝ exp(−‖x0 − x1‖²/(2σ²)). Between the
    paired endpoints the bridge is a Brownian bridge, x_t = (1−t)x0 + t x1 + σ√(t(1−t)) z, which
    in this library is ``LinearInterpolant(BrownianGamma(a=sigma**2))``; regressing b on that
    interpolant with these pairs is SB-CFM (its target x1 − x0 + γ̇ z equals torchcfm's
    (1−2t)/(2t(1−t))·(x_t − μ_t) + x1 − x0). Pairs are drawn as in :class:`SinkhornCoupling`.

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

    def _pair(
        self,
        x0: Tensor,
        x1: Tensor,
        y0: tuple[Tensor, ...] | None,
        y1: tuple[Tensor, ...] | None,
        generator: torch.Generator | None,
        want_plan: bool,
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        cost = cost_matrix(self.cost, x0, x1, reduced=False)
        return _entropic_pairs(
            cost, self.eps, self.tol, self.max_iter, generator, want_plan, repr(self)
        )

    def _weighted_plan(self, cost: Tensor, a: Tensor, b: Tensor) -> Tensor:
        """The bridge's static coupling with marginals ``a``, ``b``."""
        res = sinkhorn(cost, a, b, self.eps, self.tol, self.max_iter)
        _warn_unconverged(res, self.tol, repr(self))
        return torch.exp(res.log_plan(cost))

    def __repr__(self) -> str:
        return f"SchrodingerBridgeCoupling(sigma={self.sigma:g})"
