r"""ε-scaling with truncated sparse kernels: the small-ε path of :func:`~._sinkhorn.sinkhorn`.

At small ε the Sinkhorn iterations are many (their rate degrades like 1 − O(ε) on point
clouds) and each is a dense O(n0·n1) product. Once the potentials f, g are balanced at some
ε, almost all of the kernel K_ij = exp((f_i + g_j − C_ij)/ε) is negligible: with row i summing
to a_i, the entries below a_i·e^−θ carry less than n1·e^−θ of its mass. Following Schmitzer
(2019), ε is halved stage by stage from 0.02 × the cost's spread, each stage warm-started from
the previous potentials (:class:`~._sinkhorn_loop._Loop` iterations, with over-relaxation, lazy
absorption and the log-domain rescue). The first stages run dense (at most ``STAGE_CAP_DENSE``
iterations each, or ``STAGE_CAP_STALLED`` while the error is still above ``STALLED`` × the
stage's tolerance: on clustered data these stages settle how much mass crosses between
clusters, which the truncated ones cannot move; in float32 while that resolves ε, absorbing
the scalings only beyond
e^±``COARSE_TAU``: a warm stage's first update moves them by ~e^12 and each absorption rebuilds
the dense kernel); once at most ``DENSE_FRACTION`` of the kernel would be kept at the next
ε (``FINAL_FRACTION`` when the next ε is the last, whose iterations are the most: a product
with a quarter of the entries in CSR form costs less than the dense one), one dense pass
collects the entries with
z_ij = (f_i + g_j − C_ij)/ε ≥ max_j z_ij − θ at that ε (a superset of what its row keeps once
re-balanced there; for the last stage the wider set z ≥ min log a − θ at the current ε), and
the remaining stages iterate on them only, as a CSR matrix and the CSR matrix of its
transpose: O(nnz) an iteration. When ε halves, the kept set {C − f − g ≤ ε(θ + log 1/a)}
shrinks, so between stages the support is only filtered, on the sparse entries, after a
log-domain rebalance (θ = ``THETA_STAGE`` in the intermediate stages, whose result is only a
warm start; in the last the smaller of ``THETA`` and the θ at which the entries left out
move the dense row error by at most tol/10, :func:`_theta_tol`). A sparse
stage (the last one included) starts from potentials extrapolated linearly in ε from the
two stages before it (f_ε ≈ f_2ε + (f_2ε − f_4ε)/2: halved the last stage's iterations at
n = 8192, see ``benchmarks/results/design_notes.md``), where dense stages count only when
their error is within ``CLOSE`` × their tolerance (potentials further from convergence make
a worse start extrapolated than not). A warm dense
stage squares the kernel of the stage before, scaled by its final scalings,
(u_i K_ij v_j)² = exp((f_i + g_j − C_ij)/(ε/2)): no exponential per entry. A
stage that stalls (its error still ten times its tolerance at the cap: the support missed
entries the potentials moved onto) gets its support rebuilt by a dense pass with a wider
margin. Within a stage, a bound C_ij > P_i + Q_j on the entries left out (kept with the
support) is evaluated every ``_Loop.STALE_EVERY`` iterations: once the potentials have moved
so far that an entry left out may exceed e^−(θ − 10) of its row's mass, the support is
rebuilt around them (``_SparseLoop.run``; a truncated problem with no balanced plan
otherwise lets the potentials drift without bound). At the end one dense pass checks the
result on the full kernel: it collects every entry above the float64 rounding of the row
sums (see ``_sparse_loop._dense_support``), re-balances g to the columns on them in float64 (the
truncated kernel's columns miss the entries it left out, up to tol/10 with θ from
:func:`_theta_tol`; the dense plan's columns then sum to b up to rounding), and the
returned error is the dense plan's row-marginal error at that g; if it is not within
tolerance (or g moved by more than ε there: the potentials had drifted off the truncated
kernel) the iterations resume on that pass's support, and after ``ATTEMPTS`` checks the
dense iterations finish the job. The returned potentials are dense vectors, the plan stays
π = exp((f + g − C)/ε).

Written here rather than taken from POT: ``ot.sinkhorn_epsilon_scaling`` iterates on the
dense kernel at every stage in NumPy (host only, no truncation); the comparison on the
problems of ``benchmarks/coupling.py`` (``coupling_bench.bench_small_eps``) is in
``benchmarks/RESULTS.md``.
The sparse products are ``torch.sparse_csr_tensor`` matrix–vector products with int32
indices, the fastest of the alternatives measured there (``index_add_``, ``bincount``,
``segment_reduce`` over the same entries), and available on every torch device. They run
on rows and columns relabelled in a spatial order computed from the cost alone
(``_sparse_loop._spatial_order``: the Morton order of two principal coordinates of the
doubly centred cost), under which each row's kept entries fall in a few runs of columns:
the products then take about half the time (see ``benchmarks/results/design_notes.md``).
On the CPU
the passes between the iterations (the dense supports, the log-domain rebalance, the
filter, the column order and the kernel's entries) are compiled kernels
(``_sparse_kernels``); elsewhere they are the torch operations here. Each stage and check
reads a few scalars on the host, the iterations as many as the dense ones.
"""

import math

import torch
from torch import Tensor

from ._sinkhorn_loop import _Loop
from ._sparse_loop import WIDEN, _kept_fraction, _SparseLoop

THETA = 30.0  # entries below a_i·e^-θ (relative to their row's mass) are truncated
THETA_STAGE = 20.0  # the same, in the intermediate stages (only a warm start there)
THETA_CHECK = 40.0  # the final dense check keeps entries ≥ a_i·e^-(40 + log n1)
DENSE_FRACTION = 0.0625  # go sparse once at most this fraction of the kernel is kept at the next ε
FINAL_FRACTION = 0.25  # the same, when the next ε is the last
EXTRAPOLATE = True  # start the sparse stages from potentials extrapolated in ε
COARSE_TAU = 18.0  # absorb the dense stages' scalings beyond e^±18 (the loop's default: 12)
VALUES32_TOL = 1e-6  # at this tol or above, with costs below float64, sparse entries in float32
STAGE_CAP_DENSE = 20  # iterations per intermediate dense stage (a warm start suffices)
STAGE_CAP_STALLED = 200  # the same, when its error is still above STALLED × its tolerance
STAGE_CAP_SPARSE = 400  # iterations per intermediate sparse stage
STAGE_TOL = 10.0  # intermediate stages stop at this multiple of tol
CLOSE = 2.0  # a dense stage within CLOSE × its tolerance is a point to extrapolate from
STALLED = 10.0  # a stage ending above STALLED × its tolerance rebuilds its support
FINAL_CHUNK = 2000  # last-stage iterations between two dense checks
ATTEMPTS = 3  # dense checks (each may rebuild the support) before the dense fallback


def scaled_sinkhorn(
    cost: Tensor,
    a: Tensor,
    b: Tensor,
    eps: float,
    tol: float,
    max_iter: int,
    check_every: int,
    overrelax: bool,
    dtype: torch.dtype,
    bounds: tuple[float, float, float],
) -> tuple[Tensor, Tensor, int, float]:
    """ε-scaling from ~0.02 × the cost's spread down to ``eps`` by halving, sparse once the
    kernel is; returns (f, g, iterations, dense row error), the potentials in float64 once the
    iterations went sparse, else in ``dtype`` (see the module)."""
    lo, hi, mean = bounds
    spread = (mean - lo) or 1.0
    stages = max(1, math.ceil(math.log2(0.02 * spread / eps)))
    schedule = [eps * 2.0**k for k in range(stages, -1, -1)]
    wide = torch.promote_types(cost.dtype, torch.float32)
    resolution = 1e3 * torch.finfo(wide).eps * max(abs(lo), abs(hi))
    a_t, a64, b64 = a.to(dtype), a.double(), b.double()
    lmin = float(torch.minimum(a64.min(), b64.min()).log())
    theta_switch = _theta(a.numel(), b.numel(), THETA)  # (the kept fraction that decides)
    theta = min(theta_switch, _theta(a.numel(), b.numel(), _theta_tol(a, b, lmin, tol)))
    theta_stage = _theta(a.numel(), b.numel(), THETA_STAGE)
    coarse = _Coarse(cost, a, b, lo, hi - lo, check_every, overrelax)
    f = torch.zeros(coarse.a.shape, dtype=wide, device=cost.device)
    g = torch.zeros(coarse.b.shape, dtype=wide, device=cost.device)
    sparse: _SparseLoop | None = None  # the truncated loop, once a support is built
    truncated: _SparseLoop | None = None
    n_iter, cold, error = 0, True, math.inf

    def dense_finish(f: Tensor, g: Tensor, budget: int) -> tuple[Tensor, Tensor, int, float]:
        dt, c = f.dtype, cost.to(f.dtype)
        loop = _Loop(c, a.to(dt), b.to(dt), coarse.low(dt), hi - lo, check_every, overrelax)
        f, g, it, error = loop.run(f, g, eps, tol, max(1, budget), cold=False)
        return f, g, n_iter + it, error

    done: list[tuple[Tensor, Tensor, float]] = []  # stages' potentials to extrapolate from
    for k, e in enumerate(schedule[:-1]):  # the coarse stages
        left = max_iter - n_iter
        if left < 1:
            break
        if sparse is None:
            dt = wide if e >= resolution else dtype
            # (f, g) passed on as returned: the loop then squares its last kernel (ε halves)
            # a stage still far from its tolerance at the cap goes on (to STAGE_CAP_STALLED):
            # on clustered data the coarse stages fix the clusters' masses, which the later
            # (smaller ε, truncated) stages cannot move
            f, g, it, error = coarse.loop(dt).run(
                f.to(dt),
                g.to(dt),
                e,
                STAGE_TOL * tol,
                min(STAGE_CAP_STALLED, left),
                cold=cold,
                rebalance=False,
                soft_cap=(STAGE_CAP_DENSE, STALLED * STAGE_TOL * tol),
            )
            n_iter, cold = n_iter + it, False
            f64, g64 = f.double(), g.double()  # the potentials of sparse stages: float64
            if error < CLOSE * STAGE_TOL * tol:  # (nearly) converged: a point to extrapolate from
                done[:] = [*done[-1:], (f64, g64, e)]
            else:  # (only consecutive such stages are)
                done.clear()
            nxt = schedule[k + 1]
            last = k + 2 == len(schedule)
            # the fraction the next support keeps: for the last stage the one built below
            # (at this ε), else the next ε's
            kept = lmin - (theta if last else theta_switch)
            if _kept_fraction(cost, f, g, e if last else nxt, kept) <= (
                FINAL_FRACTION if last else DENSE_FRACTION
            ):
                coarse.release()  # the dense kernel is not squared again if this succeeds
                # the support of the next stage (θ of the last one if it is the last)
                if truncated is None:  # (its spatial order once, whatever the attempts)
                    truncated = _SparseLoop(cost, a64, b64, theta, check_every, overrelax)
                if not last:  # rows re-balanced at nxt keep e^−θ of their mass
                    built = truncated.rebuild(f64, g64, nxt, -theta_stage, relative=True)
                else:  # the last stage: wider, the entries within e^−θ at this ε
                    built = truncated.rebuild(f64, g64, e, lmin - theta)
                if built:
                    sparse = truncated
                    sparse.set_values(_entry_dtype(cost.dtype, tol, a64, b64))
                    f, g = f64, g64
        else:
            f, g = _extrapolate(done, f, g, e)
            for retry in (False, True):  # a stalled stage is run again on a rebuilt support
                cap = min(STAGE_CAP_SPARSE, max_iter - n_iter)
                f, g, it, error = sparse.run(
                    f, g, e, STAGE_TOL * tol, cap, False, theta=theta_stage
                )
                n_iter += it
                if retry or error < STALLED * STAGE_TOL * tol or n_iter >= max_iter:
                    break
                if not sparse.rebuild(f, g, e, lmin - theta - WIDEN):
                    sparse = None
                    break
            if sparse is None:
                break
            done.append((f, g, e))
    coarse.release()
    if sparse is None and max_iter - n_iter < 1:  # out of budget: one uncounted log-domain
        # iteration at ε, so that the columns still sum to b
        loop = coarse.loop(dtype)
        f, g = loop.log_step(f.to(dtype), g.to(dtype), eps)
        rows = torch.exp(loop.c.sub(g[None, :]).sub_(f[:, None]).div_(-eps)).sum(1)
        return f, g, n_iter, float(torch.linalg.vector_norm(rows - a_t))
    if sparse is None:  # dense to the end (the kernel never got sparse)
        return dense_finish(f.to(dtype), g.to(dtype), max_iter - n_iter)
    # the last stage: sparse iterations in chunks, each followed by a check on the dense kernel
    f, g = _extrapolate(done, f, g, eps)
    for attempt in range(ATTEMPTS):
        left = max_iter - n_iter
        budget = left if attempt == ATTEMPTS - 1 else min(left, FINAL_CHUNK)
        f, g, it, _ = sparse.run(f, g, eps, tol, budget, False, attempt == 0, theta=theta)
        n_iter += it
        # the check: the dense plan's rows, after a float64 column update on every entry
        # that counts (the truncated kernel's columns miss the entries left out)
        checked = sparse.check(f, g, eps, lmin - THETA_CHECK - math.log(b.numel()))
        if checked is None:
            break
        # (g moved by more than ε: this pass's entries were chosen at a g far from the plan)
        support, g, error, moved = checked
        if (error < tol and not moved) or n_iter >= max_iter:
            return f, g, n_iter, error
        sparse.reset(support)  # the check's (wider) support, cut to θ at the next run
        del checked, support  # (its unsorted copies)
        sparse.set_values(torch.float64)  # in case float32 entries were what fell short
    # the truncated kernel did not reach tol on the dense one: finish with dense iterations
    return dense_finish(f, g, max_iter - n_iter)


class _Coarse:
    """The dense iterations on the whole problem, one :class:`_Loop` per dtype."""

    def __init__(
        self,
        cost: Tensor,
        a: Tensor,
        b: Tensor,
        lo: float,
        span: float,
        check_every: int,
        overrelax: bool,
    ) -> None:
        self.cost, self.a, self.b, self.lo, self.span = cost, a, b, lo, span
        self.check_every, self.overrelax = check_every, overrelax
        self.loops: dict[torch.dtype, _Loop] = {}

    def low(self, dtype: torch.dtype) -> Tensor:
        return torch.as_tensor(self.lo, dtype=dtype, device=self.cost.device)

    def loop(self, dtype: torch.dtype) -> _Loop:
        """The dense iterations in ``dtype`` (the other dtypes' kept kernels dropped)."""
        for other, loop in self.loops.items():
            if other != dtype:
                loop.last = None
        if dtype not in self.loops:
            a, b, c = self.a.to(dtype), self.b.to(dtype), self.cost.to(dtype)
            args = (self.low(dtype), self.span, self.check_every, self.overrelax)
            loop = _Loop(c, a, b, *args)
            if COARSE_TAU > loop.tau:
                loop.tau = COARSE_TAU
                loop.floor = math.log(torch.finfo(dtype).tiny) + COARSE_TAU
            loop.keep_kernel = True  # the next stage (ε/2) squares the last kernel
            self.loops[dtype] = loop
        return self.loops[dtype]

    def release(self) -> None:
        """Drop the kernels kept for the next dense stage."""
        for loop in self.loops.values():
            loop.keep_kernel, loop.last = False, None


def _extrapolate(
    done: list[tuple[Tensor, Tensor, float]], f: Tensor, g: Tensor, to: float
) -> tuple[Tensor, Tensor]:
    """The start at ε = ``to``: the potentials of the last stage in ``done`` (which are
    (f, g)), extrapolated linearly in ε (f_ε = f_0 + ε·f_1 + o(ε)) from the last two stages
    there; (f, g) when there are fewer."""
    if not EXTRAPOLATE or len(done) < 2:
        return f, g
    (fb, gb, eb), (fl, gl, el) = done[-2], done[-1]
    t = (to - el) / (el - eb)
    return fl + t * (fl - fb), gl + t * (gl - gb)


def _entry_dtype(dtype: torch.dtype, tol: float, a: Tensor, b: Tensor) -> torch.dtype:
    """The dtype of the truncated kernel's entries: float32 for costs below float64 at
    ``VALUES32_TOL`` or above when their rounding of the row sums, at most
    max(a, b)·√n·2⁻²⁴ in the row error (n = the longer side), is below tol/10; else
    float64. The last stage falls back to float64 if the dense check finds tol missed."""
    heaviest = float(torch.maximum(a.max(), b.max()))
    rounding = heaviest * math.sqrt(max(a.numel(), b.numel())) * 2.0**-24
    fine = tol >= VALUES32_TOL and 10.0 * rounding <= tol
    return torch.float32 if dtype != torch.float64 and fine else torch.float64


def _theta_tol(a: Tensor, b: Tensor, lmin: float, tol: float) -> float:
    """θ at which the truncation moves the dense row error by at most tol/10: the entries left
    out are below e^(min log a − θ) each, so they miss at most √n0 · n1 · e^(lmin − θ) in
    the row error's norm. This holds where the support is cut; as the potentials move, the
    entries left out may grow (by up to e^``STALE_MARGIN`` before the support is rebuilt),
    and the final dense check is what enforces tol."""
    if not math.isfinite(tol):
        return -math.inf
    return lmin + math.log(10.0 * math.sqrt(a.numel()) * b.numel() / tol)


def _theta(n0: int, n1: int, base: float) -> float:
    """θ: at least ``base``, and 10 above log n so that no balanced row or column is emptied
    (each has an entry ≥ its mass / n)."""
    return max(base, math.log(max(n0, n1)) + 10.0)
