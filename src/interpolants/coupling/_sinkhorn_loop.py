r"""The scaling iterations of :func:`~interpolants.coupling.sinkhorn` at one ε.

:class:`_Loop` iterates the scalings u = a/(Kv), v = b/(Kᵀu) of the stabilised kernel
K = exp((f + g − C)/ε) with adaptive over-relaxation, absorbs them into the potentials f, g
when they grow (Schmitzer's log-stabilisation) and switches to log-domain updates if a scaling
becomes non-finite (the notes of ``_sinkhorn``). The dense solver (``_sinkhorn``) and the
truncated-kernel stages (``_sparse_loop``, through a subclass that multiplies with sparse
kernels) both run it.
"""

import math

import torch
from torch import Tensor

__all__: list[str] = []

_TAU = 12.0  # scalings are absorbed into the potentials when |log u| or |log v| exceeds it


class _Loop:
    """The Sinkhorn iterations at one ε (see :func:`sinkhorn` for the scheme)."""

    WARM = 10  # plain iterations before the rate is estimated
    REMEASURE = 40  # relaxed iterations between two estimates of the rate
    SAFETY = 0.95  # ω = 1 + SAFETY·(ω* − 1)
    SETTLE = 10  # after a raise of ω by more than BIG_RAISE, iterations of transient growth
    BIG_RAISE = 0.1  # that the divergence test ignores
    STALE_EVERY = 10  # iterations between two evaluations of ``omitted_z`` (truncated kernels)

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
        # with ``keep_kernel`` a run keeps its last kernel and scalings, so that a run at ε/2
        # warm-started from its potentials squares that kernel instead of evaluating exp
        self.keep_kernel = False
        self.last: tuple[Tensor, Tensor, float, Tensor, Tensor, Tensor] | None = None
        # a run stops early, with ``stale`` set, once ``omitted_z`` exceeds ``stale_at``
        self.stale_at, self.stale = math.inf, False

    def omitted_z(self, f: Tensor, g: Tensor, u: Tensor, v: Tensor, eps: float) -> Tensor:
        """An upper bound on z = (f_i + ε log u_i + g_j + ε log v_j − C_ij)/ε over the
        entries the kernel leaves out: −inf for the dense kernel (see ``_SparseLoop``)."""
        return torch.full((), -math.inf, dtype=f.dtype, device=f.device)

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

    def _halved(self, f: Tensor, g: Tensor, eps: float) -> Tensor | None:
        """The kernel of (f, g) at ε from the last run's, if that run returned exactly (f, g)
        at 2ε: exp((f_i + g_j − C_ij)/ε) = (u_i K_ij v_j)² for its kernel K and scalings u, v
        (in place; entries below the floor set to 0 as in :meth:`kernel`). Else ``None``."""
        last, self.last = self.last, None
        if last is None or last[0] is not f or last[1] is not g or last[2] != 2.0 * eps:
            return None
        kernel, u, v = last[3], last[4], last[5]
        kernel = kernel.mul_(u[:, None]).mul_(v[None, :]).square_()
        return torch.nn.functional.threshold(kernel, math.exp(self.floor + 1.0), 0.0, inplace=True)

    def _exp(self, z: Tensor, clamp: bool) -> Tensor:
        if not clamp:
            return z.exp_()
        z = z.clamp_(min=self.floor).exp_()
        return torch.nn.functional.threshold(z, math.exp(self.floor + 1.0), 0.0, inplace=True)

    def run(
        self,
        f: Tensor,
        g: Tensor,
        eps: float,
        tol: float,
        max_iter: int,
        cold: bool,
        rebalance: bool = True,
        soft_cap: tuple[int, float] = (0, 0.0),
    ) -> tuple[Tensor, Tensor, int, float]:
        """Iterate from potentials (f, g), zero when ``cold``; returns (f, g, iterations, row
        error). A warm start begins with one log-domain iteration when ``rebalance``, else
        with the scalings u = v = 1 of the kernel of (f, g) (when (f, g) are balanced at 2ε
        or so, so that no row of that kernel underflows; if one does, the log-domain rescue
        below takes over). ``soft_cap`` = (k, e): at the first check after k iterations, the
        run stops if the error (after a plain column update) is below e; if it is not, the
        run goes on to ``tol`` or ``max_iter``."""
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
            if rebalance:
                f, g = self.log_step(f, g, eps)
            halved = None if rebalance else self._halved(f, g, eps)
            if halved is None:
                kernel, kv = self._rebuilt(f, g, eps)
            else:
                kernel, kv = halved, halved.sum(1)
            plain = rebalance
        u, v = torch.ones_like(a), torch.ones_like(b)
        omega, n_iter, error = 1.0, 0, math.inf
        self.ceiling = 2.0  # the smallest ω seen to make the error grow (2: none yet)
        self.raised = 0.0  # how far the last change raised ω (0 after a damping)
        adapt = self.overrelax
        history: list[tuple[int, float]] = []  # (iteration, row error) at the checks
        good = (u, v)  # scalings at the last check that passed
        recheck = False  # check right after a final column update
        decided = soft_cap[1] <= 0.0  # soft_cap applied (the default: never)
        drifted = -self.STALE_EVERY  # the iteration omitted_z was last evaluated at
        while True:
            if recheck or n_iter % self.check_every == 0 or n_iter >= max_iter:
                recheck = False
                row = u * kv
                checks = [
                    torch.linalg.vector_norm(row - a),
                    torch.log(u).abs().max(),
                    torch.log(v).abs().max(),
                ]
                drift = self.stale_at < math.inf and n_iter - drifted >= self.STALE_EVERY
                if drift:
                    drifted = n_iter
                    checks.append(self.omitted_z(f, g, u, v, eps).to(checks[0].dtype))
                stats = torch.stack(checks).tolist()
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
                self.stale = drift and stats[3] > self.stale_at
                if self.stale:  # the kernel no longer holds the plan: the caller rebuilds it
                    break
                if not decided and n_iter >= soft_cap[0]:
                    if not plain:  # decided on the error after a plain column update
                        v = b / (kernel.T @ u)
                        kv, plain, recheck = kernel @ v, True, True
                        continue
                    decided = True
                    if error < soft_cap[1]:
                        max_iter = n_iter
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
        f, g = f + eps * torch.log(u), g + eps * torch.log(v)
        if self.keep_kernel:
            self.last = (f, g, eps, kernel, u, v)
        return f, g, n_iter, error

    def _relaxation(
        self, omega: float, n_iter: int, error: float, history: list[tuple[int, float]]
    ) -> float:
        """The next ω from the checks' (iteration, error) history (see :func:`sinkhorn`).

        Returns 0 to stop adapting (plain updates from then on).
        """
        lag = 3 if omega == 1.0 else 20
        # history[0] is the last change of ω (or re-estimate); after a large raise the error
        # first grows for a few iterations (the relaxed modes' transient), which is not
        # divergence: the test then starts SETTLE iterations after it
        settled = history[0][0] + self.SETTLE if history and self.raised > self.BIG_RAISE else -1
        past = next(((k, e) for k, e in reversed(history) if settled <= k <= n_iter - lag), None)
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
            omega = 1.0 + self.SAFETY * (2.0 / (1.0 + math.sqrt(1.0 - rate)) - 1.0)
            self.raised = omega - 1.0
            return omega
        if error > before:  # the error grew over 20 iterations: damp ω towards 1
            history.clear()
            history.append((n_iter, error))
            self.ceiling = omega  # never raise ω this far again in this run
            self.raised = 0.0
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
                self.raised = target - omega
                return target
        return omega
