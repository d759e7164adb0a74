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

**Which marginal is exact.** Each iteration ends with the column update, so the columns of the
returned plan sum to b; the rows sum to a up to the tolerance (the stopping criterion is
‖π1 − a‖₂ < tol, the criterion of POT's ``ot.sinkhorn``).
"""

import math
from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor

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
      to a value that made it grow. It cuts the number of iterations when ε is small
      relative to the cost.
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
        (ε < 10³ · 2⁻²³ · max|C|), where float32 potentials could not resolve the plan.

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
    Algorithms for Entropy Regularized Transport Problems*, arXiv:1610.06519. A. Thibault,
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
    c = cost.to(dtype)
    low = low.to(dtype)
    a, b = a.to(dtype), b.to(dtype)
    f, g = torch.zeros_like(a), torch.zeros_like(b)
    # ε-scaling: warm-start from coarser problems (ε·4^k down to ε) when ε is small
    spread = (mean - lo) or 1.0
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


_TAU = 12.0  # scalings are absorbed into the potentials when |log u| or |log v| exceeds it


class _Loop:
    """The Sinkhorn iterations at one ε (see :func:`sinkhorn` for the scheme)."""

    WARM = 10  # plain iterations before the rate is estimated
    REMEASURE = 40  # relaxed iterations between two estimates of the rate
    SAFETY = 0.95  # ω = 1 + SAFETY·(ω* − 1)

    def __init__(
        self,
        c: Tensor,
        a: Tensor,
        b: Tensor,
        low: Tensor,
        span: float,
        check_every: int,
        overrelax: bool,
    ) -> None:
        self.c, self.a, self.b = c, a, b
        self.low, self.span = low, span  # min C (on the device) and max C − min C
        self.log_a, self.log_b = torch.log(a), torch.log(b)
        self.check_every, self.overrelax = check_every, overrelax
        # Scalings stay in [e^-τ, e^τ] (else they are absorbed into the potentials) and kernel
        # entries below e^τ × the smallest normal number are set to 0, so that no product
        # K_ij·v_j is subnormal (subnormal arithmetic is slow on CPU; the zeroed entries move
        # < n·e^(2τ)·e^τ·tiny ≈ 1e-21 of mass in float32, 1e-290 in float64).
        self.tau = _TAU
        self.floor = math.log(torch.finfo(c.dtype).tiny) + self.tau

    def log_step(self, f: Tensor, g: Tensor, eps: float) -> tuple[Tensor, Tensor]:
        """One exact log-domain Sinkhorn iteration (stable for any ε)."""
        f = eps * (self.log_a - torch.logsumexp((g[None, :] - self.c) / eps, dim=1))
        return f, eps * (self.log_b - torch.logsumexp((f[:, None] - self.c) / eps, dim=0))

    def kernel(self, f: Tensor, g: Tensor, eps: float) -> Tensor:
        """exp((f_i + g_j − C_ij)/ε), entries below e^(floor + 1) set to 0 (see ``__init__``).

        The exponent is clamped first: exp of a very negative float takes the slow subnormal
        path on CPU.
        """
        z = torch.sub(g[None, :], self.c).add_(f[:, None]).mul_(1.0 / eps)
        return self._exp(z, clamp=True)

    def plain_kernel(self, eps: float) -> Tensor:
        """exp((min C − C_ij)/ε): the kernel of the cold start (f = 0, g = min C)."""
        z = torch.add(self.low / eps, self.c, alpha=-1.0 / eps)
        return self._exp(z, clamp=self._may_underflow(eps))

    def _may_underflow(self, eps: float) -> bool:
        """Whether some entry of the plain kernel falls below the floor."""
        return -self.span / eps < self.floor + 1.0

    def _rebuilt(self, f: Tensor, g: Tensor, eps: float) -> tuple[Tensor, Tensor]:
        """The kernel of (f, g) and its row sums (K @ v for v = 1)."""
        kernel = self.kernel(f, g, eps)
        return kernel, kernel.sum(1)

    def _exp(self, z: Tensor, clamp: bool) -> Tensor:
        if not clamp:
            return z.exp_()
        z = z.clamp_(min=self.floor).exp_()
        return torch.nn.functional.threshold(z, math.exp(self.floor + 1.0), 0.0, inplace=True)

    def run(
        self, f: Tensor, g: Tensor, eps: float, tol: float, max_iter: int, cold: bool
    ) -> tuple[Tensor, Tensor, int, float]:
        """Iterate from potentials (f, g), zero when ``cold``; returns (f, g, iterations, row
        error)."""
        a, b = self.a, self.b
        if cold:  # try the plain kernel
            g = g + self.low
            kernel = self.plain_kernel(eps)
            kv = kernel.sum(1)  # K @ v for v = 1
            plain = False  # v = 1 is not b / (Kᵀu) for the plain kernel
            if self._may_underflow(eps) and not bool(
                (kernel.sum(0) > 0).all() & (kv > 0).all()
            ):  # an empty row or column: start in the log domain instead
                f, g = self.log_step(f, g, eps)
                kernel, kv = self._rebuilt(f, g, eps)
                plain = True  # a log-domain step ends with the exact column update
        else:  # warm start (ε-scaling): re-balance at the new ε
            f, g = self.log_step(f, g, eps)
            kernel, kv = self._rebuilt(f, g, eps)
            plain = True
        u, v = torch.ones_like(a), torch.ones_like(b)
        omega, n_iter, error = 1.0, 0, math.inf
        self.ceiling = 2.0  # the smallest ω seen to make the error grow (2: none yet)
        adapt = self.overrelax
        history: list[tuple[int, float]] = []  # (iteration, row error) at the checks
        good = (u, v)  # scalings at the last check that passed
        recheck = False  # check right after a final column update
        while True:
            if recheck or n_iter % self.check_every == 0 or n_iter >= max_iter:
                recheck = False
                row = u * kv
                stats = torch.stack(
                    [
                        torch.linalg.vector_norm(row - a),
                        torch.log(u).abs().max(),
                        torch.log(v).abs().max(),
                    ]
                ).tolist()
                if not all(math.isfinite(x) for x in stats):
                    # a scaling under/overflowed: absorb the last good ones, then one block of
                    # exact log-domain updates, and restart the scalings (without relaxation)
                    f, g = f + eps * torch.log(good[0]), g + eps * torch.log(good[1])
                    for _ in range(max(self.check_every, 10)):
                        f, g = self.log_step(f, g, eps)
                    n_iter += max(self.check_every, 10)
                    if not bool(torch.isfinite(f).all() & torch.isfinite(g).all()):
                        raise FloatingPointError(
                            f"Sinkhorn potentials became non-finite at eps={eps:g} in "
                            f"{self.c.dtype}: increase eps (reg) or use float64"
                        )
                    kernel, kv = self._rebuilt(f, g, eps)
                    u, v = torch.ones_like(a), torch.ones_like(b)
                    omega, adapt, plain = 1.0, False, True
                    good = (u, v)
                    if n_iter >= max_iter:  # out of budget: the row error of this plan
                        error = float(torch.linalg.vector_norm(kv - a))
                        break
                    continue
                error = stats[0]
                good = (u, v)
                if error < tol or n_iter >= max_iter:
                    if plain:
                        break
                    v = b / (kernel.T @ u)  # finish with a plain column update, then re-check
                    kv, plain, recheck = kernel @ v, True, True
                    continue
                if max(stats[1], stats[2]) > self.tau:  # absorb the scalings into f, g
                    f, g = f + eps * torch.log(u), g + eps * torch.log(v)
                    kernel, kv = self._rebuilt(f, g, eps)
                    u, v = torch.ones_like(a), torch.ones_like(b)
                    good = (u, v)
                if adapt:
                    omega = self._relaxation(omega, n_iter, error, history)
                    if omega == 0.0:
                        omega, adapt = 1.0, False
            u_new = a / kv
            u = u_new if omega == 1.0 else u_new.pow_(omega).mul_(u.pow(1.0 - omega))
            v_new = b / (kernel.T @ u)
            v = v_new if omega == 1.0 else v_new.pow_(omega).mul_(v.pow(1.0 - omega))
            plain = omega == 1.0
            kv = kernel @ v
            n_iter += 1
        return f + eps * torch.log(u), g + eps * torch.log(v), n_iter, error

    def _relaxation(
        self, omega: float, n_iter: int, error: float, history: list[tuple[int, float]]
    ) -> float:
        """The next ω from the checks' (iteration, error) history (see :func:`sinkhorn`).

        Returns 0 to stop adapting (plain updates from then on).
        """
        lag = 3 if omega == 1.0 else 20
        past = next(((k, e) for k, e in reversed(history) if k <= n_iter - lag), None)
        history.append((n_iter, error))
        if past is None:
            return omega
        k, before = past
        if omega == 1.0:  # estimate the plain iterations' rate, then relax
            if n_iter < self.WARM or not 0.0 < error < before:
                return omega
            rate = (error / before) ** (1.0 / (n_iter - k))
            history.clear()  # the relaxed phase keeps its own history
            history.append((n_iter, error))
            return 1.0 + self.SAFETY * (2.0 / (1.0 + math.sqrt(1.0 - rate)) - 1.0)
        if error > before:  # the error grew over 20 iterations: damp ω towards 1
            history.clear()
            history.append((n_iter, error))
            self.ceiling = omega  # never raise ω this far again in this run
            omega = 1.0 + 0.5 * (omega - 1.0)
            return omega if omega > 1.05 else 0.0
        first, start = history[0]
        if n_iter - first >= self.REMEASURE and 0.0 < error < start:
            # the slow modes dominate once the fast ones have died out: re-estimate the rate
            # ρ at this ω and infer the plain rate λ from Young's relation
            # (ρ + ω − 1)² = ρ ω² λ, then move ω towards the optimum for that λ
            rho = (error / start) ** (1.0 / (n_iter - first))
            lam = min((rho + omega - 1.0) ** 2 / (rho * omega**2), 1.0 - 1e-12)
            target = 1.0 + self.SAFETY * (2.0 / (1.0 + math.sqrt(1.0 - lam)) - 1.0)
            target = min(target, 1.0 + 0.9 * (self.ceiling - 1.0))
            history.clear()
            history.append((n_iter, error))
            if target > omega + 0.01:
                return target
        return omega
