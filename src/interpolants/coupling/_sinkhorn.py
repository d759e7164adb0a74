r"""The Sinkhorn solver of entropic optimal transport, on the cost's device.

The entropic problem min_π ⟨π, C⟩ + ε Σ_ij π_ij log π_ij over plans with marginals a, b has
the solution π_ij = exp((f_i + g_j − C_ij)/ε) for dual potentials f, g, found by Sinkhorn's
alternating updates f ← ε(log a − LSE_j((g_j − C_ij)/ε)), g ← ε(log b − LSE_i((f_i − C_ij)/ε)).

:func:`sinkhorn` runs entirely on the cost's device (no host copy of the matrix; each
convergence check reads a few scalars). It iterates the scalings u = a/(Kv), v = b/(Kᵀu) of
the stabilised kernel K = exp((f + g − C)/ε), with adaptive over-relaxation and convergence
checks that cost no extra product, and absorbs the scalings into f, g when they grow
(Schmitzer's log-stabilisation), so that nothing overflows; if a scaling ever becomes
non-finite it switches to the log-domain updates above, which are stable for any ε. Either way
it returns log-domain potentials, so it is stable in float32 down to ε = 10⁻³ times the cost
scale; below 10³ float32 roundings of max|C| it iterates in float64.

**Small ε.** Below 0.02 times the cost's spread (mean − min) the solver anneals ε by halving
from there, warm-starting each stage, and once the kernel is sparse it iterates on a truncated
kernel (entries below e^−30 of their row's mass dropped, O(nnz) per iteration) and checks the
result on the full kernel at the end (:mod:`._sparse_sinkhorn`, after Schmitzer).

**Which marginal is exact.** Each iteration ends with the column update, so the columns of the
returned plan sum to b; the rows sum to a up to the tolerance (the stopping criterion is
‖π1 − a‖₂ < tol, the criterion of POT's ``ot.sinkhorn``).
"""

import math
from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor

from ._sinkhorn_loop import _Loop
from ._sparse_sinkhorn import scaled_sinkhorn

__all__ = ["SinkhornResult", "sinkhorn"]


@dataclass(frozen=True)
class SinkhornResult:
    """Output of :func:`sinkhorn`.

    Attributes
    ----------
    f, g:
        Dual potentials, shapes ``(n0,)`` and ``(n1,)``, in the dtype the iterations ran in
        (float64 when ε is below float32's resolution of the cost); the plan is
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
        """log π_ij = (f_i + g_j − C_ij)/ε for the cost the potentials were computed with, in
        the potentials' dtype (which may be wider than the cost's, see :func:`sinkhorn`)."""
        return (self.f[:, None] + self.g[None, :] - cost.to(self.f.dtype)) / self.eps


def sinkhorn(
    cost: Float[Tensor, "n0 n1"],
    a: Float[Tensor, " n0"],
    b: Float[Tensor, " n1"],
    eps: float,
    tol: float = 1e-6,
    max_iter: int = 10_000,
    check_every: int | None = None,
    overrelax: bool = True,
    init: tuple[Float[Tensor, " n0"], Float[Tensor, " n1"]] | None = None,
    truncate: bool = True,
) -> SinkhornResult:
    r"""Log-stabilised Sinkhorn for min ⟨π, C⟩ + ε Σ π log π with marginals ``a``, ``b``.

    Runs on the cost's device in its dtype (at least float32). Written here rather than taken
    from POT so that it stays on the tensors' device, with three design choices (each compared
    with ``ot.sinkhorn`` in ``benchmarks/coupling.py``; see
    ``benchmarks/results/design_notes.md``, "Couplings"):

    * **Free convergence checks.** The row error ‖u ⊙ Kv − a‖₂ reuses the product Kv that the
      next row update needs, so checking costs no extra matrix–vector product; on CPU it is
      done every iteration and the loop stops at the first iterate within ``tol``.
    * **Adaptive over-relaxation** (``overrelax=True``). After a few plain iterations the
      linear rate λ of the error is estimated and the updates become
      log u ← (1 − ω) log u + ω log(a / Kv) (likewise v) with
      ω = 1 + 0.95 (ω* − 1), ω* = 2 / (1 + √(1 − λ)), the optimal relaxation for that rate
      (Thibault et al.; Lehmann et al.). Every 40 relaxed iterations the rate ρ at the
      current ω is estimated again and λ inferred from Young's relation
      (ρ + ω − 1)² = ρ ω² λ, so that ω follows the slow modes that dominate late; ω is
      halved towards 1 whenever the error grows over 20 iterations, and never raised again
      to a value that made it grow. After a raise of ω by more than 0.1 the error first
      grows for a few iterations (a transient, not divergence): the growth test then
      ignores the first 10 iterations after the change. It cuts the number of iterations
      when ε is small relative to the cost.
      The returned potentials always end with a plain column update, so the contract below
      holds.
    * **Lazy stabilisation.** The scalings u, v are absorbed into the potentials f, g (one
      exponential of the n0×n1 matrix) only when they leave [e^−τ, e^τ]; between absorptions
      the iterations are matrix–vector products with the stabilised kernel
      K = exp((f + g − C)/ε). If a scaling ever under/overflows, a block of exact log-domain
      updates follows, so the routine is stable in float32 down to ε = 10⁻³ × the cost scale.

    Parameters
    ----------
    cost:
        Finite cost matrix ``(n0, n1)``.
    a, b:
        Positive marginals summing to 1 (same dtype and device as ``cost``).
    eps:
        Absolute regularisation ε > 0.
    tol:
        Stop when the row marginal error ‖π1 − a‖₂ < tol.
    max_iter:
        Iteration cap.
    check_every:
        Iterations between convergence checks (each check is one host synchronisation).
        ``None``: every iteration on CPU, every 10 on other devices.
    overrelax:
        Use the adaptive over-relaxation above (``False``: plain Sinkhorn updates).
    truncate:
        Below ε = 0.02 × (mean C − min C), run the ε-scaling stages on truncated sparse kernels
        once the kernel is sparse (``False``: the dense iterations, with ε·4ᵏ stages of at
        most 100 iterations). In the last stage the entries dropped are below
        e^(min log a − θ) at the potentials of the stage, with θ the smaller of 30 and the
        level at which they move the row error by at most tol/10, log(10·√n0·n1/tol) +
        min log a (and at least log n + 10; the intermediate stages, only warm starts, keep
        e^−20 of each row's mass); the returned ``error`` and ``converged`` are those of the
        dense plan, from a final pass over the whole cost that also re-balances the columns
        on every entry above their rounding (that pass rebuilds the support, or the dense
        iterations finish, when the truncated kernel did not reach ``tol`` on it). See
        :mod:`._sparse_sinkhorn`.
    init:
        Potentials (f, g) to start from instead of ε-scaling, e.g. the exact (ε = 0) duals of
        the same cost (:meth:`AuctionSolver.certified
        <interpolants.coupling.AuctionSolver.certified>`), which the entropic potentials
        approach as ε → 0: from them a small ε needs few iterations. On the cost's device.

    Returns
    -------
    SinkhornResult
        Potentials with π = exp((f + g − C)/ε), its columns summing to ``b`` (up to rounding),
        its rows to ``a`` within ``tol`` when ``converged``. At most ``max_iter`` iterations
        are run, the ε-scaling stages included (a final column update is not counted). The
        potentials are in the dtype the iterations ran in: the cost's (at least float32), or
        float64 when ε is below 10³ × the float32 resolution of the cost
        (ε < 10³ · 2⁻²³ · max|C|), where float32 potentials could not resolve the plan,
        or once the iterations went sparse (``truncate``): float64 potentials there, the
        truncated kernel's entries in float32 for a cost below float64 at ``tol`` ≥ 1e-6
        (their rounding, ~1e-7 of a row sum, is far below such a tolerance), else in
        float64.

    Raises
    ------
    ValueError
        For a non-finite cost, non-positive marginals, ``eps``, ``tol``, ``max_iter`` or
        ``check_every``.
    FloatingPointError
        If even the log-domain updates overflow (ε far too small for the cost's dtype).

    References
    ----------
    M. Cuturi, *Sinkhorn Distances*, arXiv:1306.0895. B. Schmitzer, *Stabilized Sparse Scaling
    Algorithms for Entropy Regularized Transport Problems*, SIAM J. Sci. Comput. 41(3), 2019,
    arXiv:1610.06519. A. Thibault,
    L. Chizat, C. Dossal, N. Papadakis, *Overrelaxed Sinkhorn–Knopp Algorithm for Regularized
    Optimal Transport*, arXiv:1711.01851. T. Lehmann, M.-K. von Renesse, A. Sambale,
    A. Uschmajew, *A note on overrelaxation in the Sinkhorn algorithm*, arXiv:2012.12562.
    """
    if not eps > 0 or not math.isfinite(eps):
        raise ValueError(f"eps must be a positive finite number, got {eps}")
    if not tol > 0:
        raise ValueError(f"tol must be positive, got {tol}")
    if check_every is None:
        check_every = 1 if cost.device.type == "cpu" else 10
    if max_iter < 1 or check_every < 1:
        raise ValueError(f"max_iter and check_every must be >= 1, got {max_iter}, {check_every}")
    if not bool((a > 0).all()) or not bool((b > 0).all()):
        raise ValueError("the marginals a and b must be positive (drop zero-weight points)")
    dtype = torch.promote_types(cost.dtype, torch.float32)
    low, high = torch.aminmax(cost)
    lo, hi, mean = torch.stack([low, high, cost.mean()]).double().tolist()  # one host sync
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError("cost must be finite (no NaN or Inf entries)")
    if eps < 1e3 * torch.finfo(dtype).eps * max(abs(lo), abs(hi)):
        dtype = torch.float64  # (f + g − C)/ε would not resolve the plan in float32
    spread = (mean - lo) or 1.0
    if truncate and init is None and eps < 0.02 * spread:
        f, g, n_iter, error = scaled_sinkhorn(
            cost, a, b, eps, tol, max_iter, check_every, overrelax, dtype, (lo, hi, mean)
        )
        return SinkhornResult(f, g, float(eps), n_iter, error, error < tol)
    c = cost.to(dtype)
    low = low.to(dtype)
    a, b = a.to(dtype), b.to(dtype)
    f, g = torch.zeros_like(a), torch.zeros_like(b)
    # ε-scaling: warm-start from coarser problems (ε·4^k down to ε) when ε is small
    stages = max(0, math.ceil(math.log(0.02 * spread / eps, 4))) if eps < 0.02 * spread else 0
    loop = _Loop(c, a, b, low, hi - lo, check_every, overrelax)
    n_iter, cold = 0, True  # cold: f = g = 0, no stage has run
    if init is not None:
        f0, g0 = init
        if f0.shape != a.shape or g0.shape != b.shape:
            raise ValueError(f"init must have shapes {tuple(a.shape)} and {tuple(b.shape)}")
        f, g = f0.to(device=c.device, dtype=dtype), g0.to(device=c.device, dtype=dtype)
        if not bool(torch.isfinite(f).all() & torch.isfinite(g).all()):
            raise ValueError("init potentials must be finite")
        stages, cold = 0, False
    for k in range(stages, 0, -1):  # at most 100 iterations each, within the budget
        budget = min(100, max_iter - n_iter - 1)
        if budget < 1:
            break
        f, g, it, _ = loop.run(f, g, eps * 4.0**k, 10 * tol, budget, cold=cold)
        n_iter, cold = n_iter + it, False
    f, g, it, error = loop.run(f, g, eps, tol, max(1, max_iter - n_iter), cold=cold)
    n_iter += it
    return SinkhornResult(
        f=f,
        g=g,
        eps=float(eps),
        n_iter=n_iter,
        error=error,
        converged=error < tol,
    )
