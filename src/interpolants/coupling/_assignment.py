r"""Exact solvers of the linear assignment problem min_σ Σ_i C[i, σ(i)].

Between two uniform batches of equal size n, the exact OT problem min ⟨π, C⟩ over plans with
marginals 1/n has a permutation matrix among its optimal vertices (Birkhoff–von Neumann), so
it is an assignment problem. All solvers here run on the host in float64 and return an
optimal permutation ``perm`` (row i ↔ column ``perm[i]``) as an ``int64`` NumPy array.

Which solver is fastest depends on the regime (n, d and the structure of the data) and on
which of the equivalent costs it is given: the full ‖x0_i − x1_j‖² or the reduced −2·x0·x1ᵀ
(they differ by f(i) + g(j), so they have the same optimal permutations, but the pivot and
augmenting-path sequences differ). On low-dimensional data with structure (clustered or
curve-like point sets, duplicates) the augmenting paths of LAPJV grow long from its cold dual
start, and the network simplex needs many pivots. :class:`AuctionSolver`
first computes near-optimal dual prices with an ε-scaling auction (compiled with numba), so
that LAPJV on the cost reduced by them has little left to do, and then proves the result
optimal with a dual certificate over every entry (:func:`certify_assignment`). Hence the rule
of :class:`AutoAssignmentSolver`: the certified auction for d < 8 (the network simplex on the
full cost without numba), and for d ≥ 8 lapx's ``lapjvr`` (:class:`LapxSolver`; else
``lap.lapjv``) on the reduced cost below n = 2048, the auction from there. The measurements
behind the rule, and those of the alternatives compared with it, are in
``benchmarks/results/design_notes.md`` ("Couplings").

What runs where: everything here runs on the host, in float64 (the auction bids on a float32
copy of the matrix when float32 holds it; its prices are only a starting point).
"""

import abc
import importlib.util
import inspect
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, final

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "AssignmentSolver",
    "AuctionSolver",
    "AutoAssignmentSolver",
    "CertifiedAssignment",
    "LapjvSolver",
    "LapxSolver",
    "NetworkSimplexSolver",
    "ScipySolver",
    "certify_assignment",
]

_LAP_WARNED = False


def _row_column_reduced(cost: NDArray[np.float64], overwrite: bool) -> NDArray[np.float64]:
    """C_ij − min_j C_ij, then minus its column minima: same optimal permutations, and a warm
    dual start for Jonker–Volgenant (non-negative, a zero in every row and column). In place
    when ``overwrite`` (two passes over the matrix fewer, and no second n×n allocation)."""
    reduced: NDArray[np.float64]
    if overwrite:
        reduced = cost
        reduced -= cost.min(axis=1, keepdims=True)
    else:
        reduced = cost - cost.min(axis=1, keepdims=True)
    reduced -= reduced.min(axis=0, keepdims=True)
    return reduced


def _lapx_lapjvr() -> Callable[..., Any] | None:
    """lapx's ``lap.lapjvr`` when the installed ``lap`` module is lapx's (it ships lapjvr)."""
    if importlib.util.find_spec("lap") is None:
        return None
    import lap  # type: ignore[import-untyped,unused-ignore]

    fn: Callable[..., Any] | None = getattr(lap, "lapjvr", None)
    return fn


# --- certified assignment: ε-scaling auction, exact completion, dual certificate -------------

_BLOCK = 1 << 20  # matrix entries per block in the blockwise passes (8 MiB of float64)
_CERT_TOL = 2.0**-40  # per-entry tolerance of the dual certificate, relative to the scale
_NUMBA_WARNED = False


def _row_blocks(n0: int, n1: int) -> list[tuple[int, int]]:
    step = max(1, _BLOCK // max(n1, 1))
    return [(s, min(n0, s + step)) for s in range(0, n0, step)]


def _auction_kernel(
    cost: Any, prices: Any, eps0: Any, eps_final: Any, theta: Any, k: Any, list_eps: Any
) -> Any:
    """Forward auction with ε-scaling for min Σ C[i, σ(i)] (Bertsekas), compiled by numba.

    Persons (rows) bid for objects (columns): person i takes j₁ = argmin_j C_ij + p_j and raises
    p_j₁ by (second best − best) + ε, evicting the previous owner. Each phase assigns every
    person (ε-complementary slackness: C_iσ(i) + p_σ(i) ≤ min_j (C_ij + p_j) + ε), then ε is
    divided by ``theta`` down to ``eps_final``; prices only increase. For ε ≤ ``list_eps`` a
    person bids from a list of its k cheapest objects, rebuilt by a full scan only when the
    list's second best exceeds the (k+1)-th value at the last scan (prices only rise, so no
    object outside the list can be better: the bids are the same as with full scans).

    ``prices`` (float64, ``(n,)``) are the starting prices, updated in place. Returns the
    candidate lists ``(n, k)``.
    Plain Python here; :func:`_compiled` compiles it (the source is numba's subset).
    """
    n = cost.shape[0]
    owner = np.full(n, -1, np.int64)
    queue = np.empty(n, np.int64)
    cand = np.zeros((n, k), np.int64)
    thr = np.full(n, -np.inf)
    vals = np.empty(k + 1)
    idx = np.empty(k + 1, np.int64)
    buf = np.empty(n)
    eps = eps0
    assigned = np.full(n, -1, np.int64)
    while True:
        # a new phase: persons whose object is still within ε of their best keep it
        nfree = 0
        for i in range(n):
            j = assigned[i]
            if j >= 0:
                row = cost[i]
                best = np.inf
                for t in range(n):
                    val = row[t] + prices[t]
                    if val < best:
                        best = val
                if row[j] + prices[j] <= best + eps:
                    continue
                owner[j] = -1
                assigned[i] = -1
            queue[nfree] = i
            nfree += 1
        if nfree == 0:
            if eps <= eps_final:
                break
            eps = max(eps / theta, eps_final)
            continue
        head = 0
        tail = nfree if nfree < n else 0
        while nfree > 0:
            i = queue[head]
            head += 1
            if head == n:
                head = 0
            row = cost[i]
            b1 = np.inf
            b2 = np.inf
            j1 = 0
            if eps > list_eps:  # coarse phases: a full scan for the two best objects
                for j in range(n):
                    val = row[j] + prices[j]
                    if val < b2:
                        if val < b1:
                            b2 = b1
                            b1 = val
                            j1 = j
                        else:
                            b2 = val
                thr[i] = -np.inf
            else:
                for t in range(k):
                    j = cand[i, t]
                    val = row[j] + prices[j]
                    if val < b2:
                        if val < b1:
                            b2 = b1
                            b1 = val
                            j1 = j
                        else:
                            b2 = val
                if not b2 <= thr[i]:  # an object outside the list may be better: rescan
                    m = 0
                    for j in range(n):
                        buf[j] = row[j] + prices[j]
                    for j in range(n):
                        val = buf[j]
                        if m < k + 1 or val < vals[k]:
                            t = m if m < k + 1 else k
                            if m < k + 1:
                                m += 1
                            while t > 0 and vals[t - 1] > val:
                                vals[t] = vals[t - 1]
                                idx[t] = idx[t - 1]
                                t -= 1
                            vals[t] = val
                            idx[t] = j
                    for t in range(k):
                        cand[i, t] = idx[t]
                    thr[i] = vals[k]
                    b1 = vals[0]
                    b2 = vals[1]
                    j1 = idx[0]
            prices[j1] += b2 - b1 + eps
            prev = owner[j1]
            owner[j1] = i
            assigned[i] = j1
            if prev >= 0:
                assigned[prev] = -1
                queue[tail] = prev
                tail += 1
                if tail == n:
                    tail = 0
            else:
                nfree -= 1
        if eps <= eps_final:
            break
        eps = max(eps / theta, eps_final)
    return cand


def _reduce_kernel(cost: Any, prices: Any, out: Any, u: Any) -> None:
    """out_ij = C_ij + p_j − u_i with u_i = min_j (C_ij + p_j), row by row (``out`` may be
    ``cost``): one read and one write of the matrix. Plain Python; compiled by numba."""
    n0, n1 = cost.shape
    for i in range(n0):
        low = np.inf
        for j in range(n1):
            val = cost[i, j] + prices[j]
            out[i, j] = val
            if val < low:
                low = val
        for j in range(n1):
            out[i, j] -= low
        u[i] = low


def _colmin_kernel(matrix: Any, rows: Any, shift: Any, out: Any) -> None:
    """out_j = min over i in ``rows`` of (M_ij − s_i), for the rows listed (row-major reads).
    Plain Python; compiled by numba."""
    n1 = matrix.shape[1]
    out[:] = np.inf
    for t in range(rows.shape[0]):
        i = rows[t]
        for j in range(n1):
            val = matrix[i, j] - shift[t]
            if val < out[j]:
                out[j] = val


def _rowmin_kernel(matrix: Any, shift: Any, out: Any) -> None:
    """out_i = min_j (M_ij − s_j): one read of the matrix. Plain Python; compiled by numba."""
    n0, n1 = matrix.shape
    for i in range(n0):
        low = np.inf
        for j in range(n1):
            val = matrix[i, j] - shift[j]
            if val < low:
                low = val
        out[i] = low


_KERNELS: dict[str, Callable[..., Any]] = {}


def _compiled(name: str) -> Callable[..., Any] | None:
    """The numba-compiled kernel ``_<name>_kernel`` (cached on disk where the package folder
    is writable); ``None`` without numba."""
    if name not in _KERNELS:
        if importlib.util.find_spec("numba") is None:
            return None
        import numba  # type: ignore[import-untyped,unused-ignore]

        source = inspect.unwrap(globals()[f"_{name}_kernel"])  # the plain function
        # fastmath lets the min reductions vectorise: every value here is finite
        try:
            _KERNELS[name] = numba.njit(cache=True, nogil=True, fastmath=True)(source)
        except RuntimeError:  # no writable cache location: compile in memory only
            _KERNELS[name] = numba.njit(nogil=True, fastmath=True)(source)
    return _KERNELS[name]


@dataclass(frozen=True)
class CertifiedAssignment:
    """An optimal assignment with the dual potentials that prove it.

    Attributes
    ----------
    perm:
        ``int64`` array ``(n,)``: row i is assigned column ``perm[i]``.
    u, v:
        float64 dual potentials ``(n,)`` with u_i + v_j ≤ C_ij + δ for all i, j and
        u_i + v_perm[i] = C_i,perm[i] up to δ (δ is ``tol``).
    gap:
        Certified bound on Σ_i C_i,perm[i] − min_σ Σ_i C_iσ(i) (see
        :func:`certify_assignment`), at most 2·n·δ.
    tol:
        The per-entry tolerance δ the certificate was checked with.
    """

    perm: NDArray[np.int64]
    u: NDArray[np.float64]
    v: NDArray[np.float64]
    gap: float
    tol: float


def certify_assignment(
    cost: NDArray[np.float64],
    perm: NDArray[np.int64],
    u: NDArray[np.float64],
    v: NDArray[np.float64],
) -> float:
    r"""A bound on how far ``perm`` is from an optimal assignment, from dual potentials.

    For any potentials u, v (weak duality), every permutation π has
    Σ_i C_iπ(i) ≥ Σ_i u_i + Σ_j v_j − Σ_i e_i with e_i = max(0, max_j (u_i + v_j − C_ij)), and
    Σ_i C_i,perm(i) = Σ_i u_i + Σ_j v_j + Σ_i s_i with s_i = C_i,perm(i) − u_i − v_perm(i).
    Hence ::

        Σ_i C_i,perm(i) − min_π Σ_i C_iπ(i) ≤ Σ_i e_i + Σ_i abs(s_i),

    which is returned: it is zero (up to float64 rounding) exactly when u, v are feasible
    duals with complementary slackness on ``perm``, i.e. when they prove it optimal. Computed
    on the host in float64, in row blocks (no second n×n array).

    Parameters
    ----------
    cost:
        ``(n, n)`` cost matrix.
    perm:
        Integer array ``(n,)``, a permutation (row i ↔ column ``perm[i]``).
    u, v:
        Row and column potentials, shape ``(n,)``.

    Returns
    -------
    float
        The bound Σ_i e_i + Σ_i abs(s_i) ≥ 0.

    Example
    -------
    >>> import numpy as np
    >>> from interpolants.coupling import certify_assignment
    >>> cost = np.array([[1.0, 3.0], [3.0, 1.0]])
    >>> u, v = np.array([1.0, 1.0]), np.array([0.0, 0.0])
    >>> certify_assignment(cost, np.array([0, 1]), u, v)
    0.0
    >>> certify_assignment(cost, np.array([1, 0]), u, v)  # the swap costs 4 more
    4.0
    """
    c = np.asarray(cost, dtype=np.float64)
    n = c.shape[0]
    if c.shape != (n, n) or np.shape(perm) != (n,) or np.shape(u) != (n,) or np.shape(v) != (n,):
        raise ValueError("cost must be (n, n) and perm, u, v of shape (n,)")
    p = np.asarray(perm, dtype=np.int64)
    uu, vv = np.asarray(u, dtype=np.float64), np.asarray(v, dtype=np.float64)
    worst = uu - _rowmin(c, vv)  # max_j u_i + v_j − C_ij
    excess = float(np.maximum(worst, 0.0).sum())
    slack = float(np.abs(c[np.arange(n), p] - uu - vv[p]).sum())
    return excess + slack


def _reduce_by_prices(
    cost: NDArray[np.float64], prices: NDArray[np.float64], overwrite: bool
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """R = C + p − u with u_i = min_j (C_ij + p_j), so R ≥ 0 with a zero in every row; in
    place when ``overwrite``. Returns (R, u)."""
    n0, n1 = cost.shape
    reduced = cost if overwrite else np.empty_like(cost)
    u = np.empty(n0)
    kernel = _compiled("reduce")
    if kernel is not None:
        kernel(cost, prices, reduced, u)
        return reduced, u
    for s, e in _row_blocks(n0, n1):
        block = np.add(cost[s:e], prices, out=reduced[s:e])
        u[s:e] = block.min(axis=1)
        block -= u[s:e, None]
    return reduced, u


def _rowmin(matrix: NDArray[np.float64], shift: NDArray[np.float64]) -> NDArray[np.float64]:
    """min_j (M_ij − s_j) for every row, in one pass (numba) or in row blocks (numpy)."""
    out = np.empty(matrix.shape[0])
    kernel = _compiled("rowmin")
    if kernel is not None:
        kernel(matrix, shift, out)
        return out
    for s, e in _row_blocks(*matrix.shape):
        out[s:e] = (matrix[s:e] - shift).min(axis=1)
    return out


def _bellman_ford(
    rows: NDArray[np.int64],
    cols: NDArray[np.int64],
    reduced: NDArray[np.float64],
    perm: NDArray[np.int64],
    dv: NDArray[np.float64],
    slack: float,
) -> bool:
    """Lower ``dv`` (in place) until dv_j ≤ dv_perm(i) + R_ij − R_i,perm(i) + ``slack`` on
    every edge (i, j): the column potentials of ``perm`` on the edge set (shortest paths in
    its residual graph, vectorised Bellman–Ford). False if it does not settle (a cycle of
    negative weight: ``perm`` is not optimal on the edges)."""
    order = np.argsort(cols, kind="stable")
    r, c = rows[order], cols[order]
    src = perm[r]
    w = reduced[r, c] - reduced[r, src]
    starts = np.flatnonzero(np.r_[True, c[1:] != c[:-1]])
    heads = c[starts]
    for _ in range(4 * perm.shape[0] + 10):
        best = np.minimum.reduceat(dv[src] + w, starts)
        lower = best < dv[heads] - slack
        if not lower.any():
            return True
        dv[heads[lower]] = best[lower]
    return False


def _certify_reduced(
    reduced: NDArray[np.float64],
    perm: NDArray[np.int64],
    rows: NDArray[np.int64],
    cols: NDArray[np.int64],
    tol: float,
) -> tuple[NDArray[np.float64], NDArray[np.float64], float] | None:
    """Potentials (du, dv) proving ``perm`` optimal for the reduced matrix R ≥ 0, with the
    certified gap: Bellman–Ford on the candidate edges, a dense check, the violated entries
    added, until no entry is violated by more than ``tol``. None if that fails."""
    n = perm.shape[0]
    ar = np.arange(n)
    rows = np.concatenate([rows, ar])
    cols = np.concatenate([cols, perm])
    dv = np.zeros(n)
    for _ in range(64):
        if not _bellman_ford(rows, cols, reduced, perm, dv, 0.25 * tol):
            return None
        du = reduced[ar, perm] - dv[perm]
        worst = du - _rowmin(reduced, dv)  # max_j du_i + dv_j − R_ij
        excess = float(np.maximum(worst, 0.0).sum())
        bad = np.flatnonzero(worst > tol)
        add_r: list[NDArray[np.int64]] = []
        add_c: list[NDArray[np.int64]] = []
        for s in range(0, bad.size, 256):
            rows_bad = bad[s : s + 256]
            bi, bj = np.nonzero(reduced[rows_bad] - dv < (du[rows_bad] - tol)[:, None])
            add_r.append(rows_bad[bi])
            add_c.append(bj)
        if not add_r:
            slack = float(np.abs(reduced[ar, perm] - du - dv[perm]).sum())
            return du, dv, excess + slack
        rows = np.concatenate([rows, *add_r])
        cols = np.concatenate([cols, *add_c])
    return None


class AssignmentSolver(abc.ABC):
    """Abstract exact solver of a square assignment problem on the host.

    :meth:`solve` is the call: it takes any square matrix, hands :meth:`assign` a C-contiguous
    float64 one and checks that the result is a permutation. A subclass implements
    :meth:`assign` and may override :meth:`prefers_full_cost`.

    Example
    -------
    >>> import numpy as np
    >>> from scipy.optimize import linear_sum_assignment
    >>> from interpolants.coupling import AssignmentSolver
    >>> class Hungarian(AssignmentSolver):
    ...     def assign(self, cost, dim, *, overwrite):
    ...         return linear_sum_assignment(cost)[1]
    >>> Hungarian().solve(np.array([[4.0, 1.0], [2.0, 8.0]]), dim=1)
    array([1, 0])
    """

    def solve(
        self, cost: NDArray[np.float64], dim: int, *, overwrite: bool = False
    ) -> NDArray[np.int64]:
        """An optimal permutation for the square float64 matrix ``cost``.

        Parameters
        ----------
        cost:
            Finite ``(n, n)`` matrix (not checked for finiteness here: :class:`OTCoupling`
            checks the matrices it builds), converted to float64 if needed.
        dim:
            Dimension of the data the cost was computed from (a hint for solvers that choose a
            method by regime; ignored by the others).
        overwrite:
            Allow the solver to reduce ``cost`` in place (a C-contiguous float64 ``cost``
            then saves an n×n copy); by default ``cost`` is not modified.

        Returns
        -------
        numpy.ndarray
            ``perm`` of shape ``(n,)``, a permutation: row ``i`` is assigned column ``perm[i]``.
        """
        if cost.ndim != 2 or cost.shape[0] != cost.shape[1]:
            raise ValueError(f"cost must be a square matrix, got shape {cost.shape}")
        n = cost.shape[0]
        host = np.ascontiguousarray(cost, dtype=np.float64)
        private = overwrite or not np.may_share_memory(host, cost)  # a copy of ours
        perm = np.asarray(self.assign(host, dim, overwrite=private))
        seen = np.zeros(n, dtype=bool)
        if perm.shape == (n,) and perm.dtype.kind in "iu" and (perm >= 0).all():
            seen[perm[perm < n]] = True
        if perm.shape != (n,) or not seen.all():
            raise RuntimeError(f"{self!r} did not return a permutation")
        return perm.astype(np.int64, copy=False)

    def prefers_full_cost(self, dim: int) -> bool:
        """Whether to hand this solver the full cost rather than a reduced form.

        A reduced cost C_ij − f(i) − g(j) (:meth:`Cost.reduced
        <interpolants.coupling.Cost.reduced>`) has the same optimal permutations, but the work
        a solver does on it (its pivot or augmenting-path sequence) depends on which one it
        gets. :class:`OTCoupling` asks before it builds the matrix, so the answer may depend
        on ``dim`` only, never on values. Return ``True`` when the full cost (e.g.
        ‖x0_i − x1_j‖²) is the faster form for data of dimension ``dim``; the default is
        ``False``.
        """
        return False

    @abc.abstractmethod
    def assign(self, cost: NDArray[np.float64], dim: int, *, overwrite: bool) -> NDArray[np.int64]:
        """An optimal permutation for a validated matrix: the method a solver implements.

        :meth:`solve` calls it and checks its result, so it needs neither check. Contract:

        * ``cost`` is a square, C-contiguous ``(n, n)`` float64 array on the host, ``n ≥ 1``,
          finite when it comes from :class:`OTCoupling` (which checks it);
        * ``dim`` is the dimension of the data the cost was computed from (a hint; a solver
          that does not choose by regime ignores it);
        * when ``overwrite`` is true the solver may modify ``cost`` in place (it is a private
          copy); otherwise it must leave it unchanged.

        Returns
        -------
        numpy.ndarray
            Integer array ``perm`` of shape ``(n,)``: row ``i`` is assigned column ``perm[i]``.
        """


@final
class NetworkSimplexSolver(AssignmentSolver):
    """POT's network simplex (``ot.emd``) run to optimality, permutation read off the plan.

    ``ot.emd`` returns a vertex of the transport polytope; for uniform equal-size marginals
    every vertex is a permutation matrix divided by n, so ``argmax`` per row recovers it
    exactly (checked to be a permutation). ``max_iter`` is far above POT's default of 100 000,
    which stops early at n ≈ 4096 and returns a non-optimal plan.
    """

    def __init__(self, max_iter: int = 10**9) -> None:
        if max_iter < 1:
            raise ValueError(f"max_iter must be positive, got {max_iter}")
        self.max_iter = int(max_iter)

    def assign(self, cost: NDArray[np.float64], dim: int, *, overwrite: bool) -> NDArray[np.int64]:
        import ot

        n = cost.shape[0]
        a = np.full(n, 1.0 / n)
        with warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)  # never accept a truncated solve
            # POT's network simplex can report negative costs as infeasible: shift them (a
            # constant shift leaves every balanced problem's solutions unchanged)
            low = float(cost.min())
            if low < 0:
                cost = np.subtract(cost, low, out=cost if overwrite else None)
            plan = ot.emd(a, a, cost, numItermax=self.max_iter)
        perm: NDArray[np.int64] = np.asarray(plan).argmax(axis=1)
        return perm

    def prefers_full_cost(self, dim: int) -> bool:
        return True  # measured: fewer pivots on ‖x0 − x1‖² than on −2·x0·x1ᵀ

    def __repr__(self) -> str:
        return f"NetworkSimplexSolver(max_iter={self.max_iter})"


@final
class LapjvSolver(AssignmentSolver):
    """Jonker–Volgenant (``lap.lapjv``) after a row and column reduction of the cost.

    The reduction C_ij − min_j C_ij − min_i(·) leaves the optimal permutations unchanged and
    gives LAPJV a warm dual start, which makes it faster. Needs the ``lap`` package.
    """

    def assign(self, cost: NDArray[np.float64], dim: int, *, overwrite: bool) -> NDArray[np.int64]:
        import lap  # type: ignore[import-untyped,unused-ignore]

        x, _ = lap.lapjv(_row_column_reduced(cost, overwrite), return_cost=False)
        perm: NDArray[np.int64] = np.asarray(x, dtype=np.int64)
        return perm

    def prefers_full_cost(self, dim: int) -> bool:
        return dim < 8

    def __repr__(self) -> str:
        return "LapjvSolver()"


@final
class LapxSolver(AssignmentSolver):
    """Jonker–Volgenant with lapx's Rust completion (``lap.lapjvr``), after a row and column
    reduction of the cost.

    lapx is a maintained fork of ``lap`` that installs under the same import name ``lap`` and
    adds ``lapjvr``, the fastest of these solvers on unstructured data, with float64
    potentials. Needs ``lapx`` (``pip install lapx``, which replaces ``lap``);
    :class:`AutoAssignmentSolver` uses it for d ≥ 8 whenever it is installed.
    """

    def assign(self, cost: NDArray[np.float64], dim: int, *, overwrite: bool) -> NDArray[np.int64]:
        lapjvr = _lapx_lapjvr()
        if lapjvr is None:
            raise ImportError("LapxSolver needs the lapx package (pip install lapx)")
        rows, cols = lapjvr(_row_column_reduced(cost, overwrite), return_cost=False)
        perm = np.empty(cost.shape[0], dtype=np.int64)
        perm[np.asarray(rows)] = np.asarray(cols)  # rows come sorted; be safe anyway
        return perm

    def prefers_full_cost(self, dim: int) -> bool:
        return dim < 8  # measured: full cost faster at d = 2, reduced cost faster at d ≥ 64

    def __repr__(self) -> str:
        return "LapxSolver()"


def _exact_lap(reduced: NDArray[np.float64]) -> NDArray[np.int64]:
    """An optimal permutation of a square matrix by the fastest installed exact LAP solver
    (lapx's ``lapjvr``, else ``lap.lapjv``, else scipy)."""
    lapjvr = _lapx_lapjvr()
    perm = np.empty(reduced.shape[0], dtype=np.int64)
    if lapjvr is not None:
        rows, cols = lapjvr(reduced, return_cost=False)
        perm[np.asarray(rows)] = np.asarray(cols)
    elif importlib.util.find_spec("lap") is not None:
        import lap  # type: ignore[import-untyped,unused-ignore]

        x, _ = lap.lapjv(reduced, return_cost=False)
        perm[:] = np.asarray(x)
    else:
        from scipy.optimize import linear_sum_assignment

        perm[:] = linear_sum_assignment(reduced)[1]
    return perm


@final
class AuctionSolver(AssignmentSolver):
    r"""Certified exact assignment: ε-scaling auction prices, an exact LAP on the reduced
    cost, and a dual certificate checked over every entry.

    Three steps, all on the host in float64:

    1. **Prices** from Bertsekas' forward auction with ε-scaling (ε from span(C)/4 down to
       ``final_eps``·span(C), divided by ``scaling`` per phase), compiled by numba. Late phases
       bid from per-row lists of the ``candidates`` cheapest objects, rescanning a row only
       when its list may be stale. The prices p are near-optimal column duals.
    2. **Exact completion**: R = C + p − u with u_i = min_j (C_ij + p_j) is the cost reduced by
       these duals (R ≥ 0, the same optimal permutations as C); Jonker–Volgenant (lapx's
       ``lapjvr``) solves it exactly, and with near-optimal duals it has little left to do.
    3. **Certificate**: potentials for that permutation from shortest paths (Bellman–Ford) on
       the auction's candidate entries, then a check of u_i + v_j ≤ C_ij + δ over all n²
       entries in row blocks; violated entries are added and the potentials recomputed until
       none is violated, with δ = 2⁻⁴⁰·(max|C| + max p) (float64 rounding of R is
       ~2⁻⁵²·(max|C| + max p) per entry). The permutation is then optimal up to
       :attr:`CertifiedAssignment.gap` ≤ 2nδ (see :func:`certify_assignment`); a check that
       cannot be completed raises :class:`RuntimeError`, it never returns an uncertified
       permutation.

    Memory: with ``overwrite`` R replaces the cost in place (no second n×n array), otherwise
    one n×n float64 copy. Needs numba (for n ≥ 32) and lapx (else ``lap``, else scipy, for
    step 2); batches below 32 skip the auction.

    Parameters
    ----------
    scaling:
        Factor by which ε shrinks between auction phases, > 1.
    final_eps:
        Last ε of the auction relative to span(C) = max C − min C, in (0, 1).
    list_eps:
        ε (relative to span(C)) from which bids use the candidate lists.
    candidates:
        Length k of the per-row candidate lists (also the edges of the first certificate
        round), ≥ 2.

    References
    ----------
    D. P. Bertsekas, *The auction algorithm: a distributed relaxation method for the
    assignment problem*, Annals of Operations Research 14 (1988).
    D. P. Bertsekas, D. A. Castañon, *A forward/reverse auction algorithm for asymmetric
    assignment problems*, Computational Optimization and Applications 1 (1992).
    R. Jonker, A. Volgenant, *A shortest augmenting path algorithm for dense and sparse linear
    assignment problems*, Computing 38 (1987).

    Example
    -------
    >>> import numpy as np
    >>> from interpolants.coupling import AuctionSolver, certify_assignment
    >>> rng = np.random.default_rng(0)
    >>> x, y = rng.normal(size=(50, 2)), rng.normal(size=(50, 2))
    >>> cost = ((x[:, None] - y[None]) ** 2).sum(-1)
    >>> out = AuctionSolver().certified(cost)
    >>> bool(certify_assignment(cost, out.perm, out.u, out.v) <= 2 * 50 * out.tol)
    True
    """

    SMALL = 32  # below this size the auction is skipped (prices 0, every entry a candidate)
    MULTISCALE = 2048  # from this size the auction starts from the prices of a subsample
    warm_eps = 1.0 / 256

    def __init__(
        self,
        scaling: float = 8.0,
        final_eps: float = 1e-6,
        list_eps: float = 1e-4,
        candidates: int = 16,
    ) -> None:
        if not scaling > 1.0 or not 0.0 < final_eps < 1.0 or not list_eps > 0.0:
            raise ValueError(
                f"need scaling > 1, 0 < final_eps < 1 and list_eps > 0, got {scaling}, "
                f"{final_eps}, {list_eps}"
            )
        if candidates < 2:
            raise ValueError(f"candidates must be >= 2, got {candidates}")
        self.scaling = float(scaling)
        self.final_eps = float(final_eps)
        self.list_eps = float(list_eps)
        self.candidates = int(candidates)

    def certified(
        self, cost: NDArray[np.float64], *, overwrite: bool = False
    ) -> CertifiedAssignment:
        """An optimal permutation of the square matrix ``cost`` with its dual certificate.

        Parameters
        ----------
        cost:
            Finite ``(n, n)`` matrix (converted to C-contiguous float64 if needed).
        overwrite:
            Allow ``cost`` to be overwritten by the reduced matrix (saves an n×n copy).

        Returns
        -------
        CertifiedAssignment
            ``perm``, potentials ``u``, ``v`` of the original ``cost``, the certified gap and
            the tolerance δ.
        """
        if cost.ndim != 2 or cost.shape[0] != cost.shape[1] or cost.shape[0] == 0:
            raise ValueError(f"cost must be a non-empty square matrix, got shape {cost.shape}")
        c = np.ascontiguousarray(cost, dtype=np.float64)
        overwrite = overwrite or not np.may_share_memory(c, cost)
        n = c.shape[0]
        lo, hi = float(c.min()), float(c.max())
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise ValueError("cost must be finite")
        span = hi - lo
        scale = max(abs(lo), abs(hi))
        if n < self.SMALL or span == 0.0 or not math.isfinite(16.0 * scale):
            prices = np.zeros(n)
            rows = np.repeat(np.arange(n, dtype=np.int64), n)
            cols = np.tile(np.arange(n, dtype=np.int64), n)
        else:
            auction = _compiled("auction")
            colmin = _compiled("colmin")
            if auction is None or colmin is None:
                raise ImportError("AuctionSolver needs numba (pip install numba)")
            k = min(self.candidates, n - 1)
            prices = np.zeros(n)
            eps0 = span / 4.0
            if n >= self.MULTISCALE:
                # warm prices from the optimum between random quarters of the rows and
                # columns (recursively): v_j = min over sampled rows of C_ij − u_i
                rng = np.random.default_rng(n)
                sub0 = np.sort(rng.choice(n, n // 4, replace=False))
                sub1 = np.sort(rng.choice(n, n // 4, replace=False))
                coarse = self.certified(c[np.ix_(sub0, sub1)], overwrite=True)
                colmin(c, sub0, coarse.u, prices)
                prices *= -1.0
                eps0 = self.warm_eps * span
            # the bids read a float32 copy (half the memory traffic) when float32 holds the
            # costs and resolves their spread: the prices only need to be near-optimal, the
            # exact steps below use the float64 matrix
            bids = c.astype(np.float32) if 1e-4 * scale <= span and scale <= 1e30 else c
            cand = auction(
                bids,
                prices,
                eps0,
                self.final_eps * span,
                self.scaling,
                k,
                self.list_eps * span,
            )
            rows = np.repeat(np.arange(n, dtype=np.int64), k)
            cols = np.asarray(cand, dtype=np.int64).reshape(-1)
        tol = _CERT_TOL * (scale + float(np.abs(prices).max()))
        reduced, u = _reduce_by_prices(c, prices, overwrite)
        perm = _exact_lap(reduced)
        found = _certify_reduced(reduced, perm, rows, cols, tol)
        if found is None:
            raise RuntimeError(
                "AuctionSolver could not certify the assignment (no dual potentials within "
                f"tol={tol:.3g}); the cost matrix may be too ill-conditioned for float64"
            )
        du, dv, gap = found
        return CertifiedAssignment(perm=perm, u=u + du, v=dv - prices, gap=gap, tol=tol)

    def assign(self, cost: NDArray[np.float64], dim: int, *, overwrite: bool) -> NDArray[np.int64]:
        return self.certified(cost, overwrite=overwrite).perm

    def prefers_full_cost(self, dim: int) -> bool:
        return dim < 8

    def __repr__(self) -> str:
        return (
            f"AuctionSolver(scaling={self.scaling:g}, final_eps={self.final_eps:g}, "
            f"list_eps={self.list_eps:g}, candidates={self.candidates})"
        )


@final
class ScipySolver(AssignmentSolver):
    """scipy's ``linear_sum_assignment`` (shortest augmenting paths)."""

    def assign(self, cost: NDArray[np.float64], dim: int, *, overwrite: bool) -> NDArray[np.int64]:
        from scipy.optimize import linear_sum_assignment

        _, cols = linear_sum_assignment(cost)
        perm: NDArray[np.int64] = np.asarray(cols, dtype=np.int64)
        return perm

    def __repr__(self) -> str:
        return "ScipySolver()"


def _have_numba() -> bool:
    return importlib.util.find_spec("numba") is not None


@final
class AutoAssignmentSolver(AssignmentSolver):
    """Pick an exact solver by the dimension of the data and the batch size (the rule in the
    module notes).

    * ``dim < min_lapjv_dim``: :class:`AuctionSolver` when numba is installed, robust to
      low-dimensional data with structure (clusters, curves, duplicates); else
      :class:`NetworkSimplexSolver`.
    * ``dim ≥ min_lapjv_dim``: :class:`AuctionSolver` for batches of at least
      ``min_auction_n`` (with numba), where LAPJV's augmenting paths grow long; below that
      :class:`LapxSolver` when lapx is installed, else :class:`LapjvSolver`. Without any
      ``lap`` package it warns once and uses :class:`ScipySolver` in LAPJV's place.
    """

    def __init__(self, min_lapjv_dim: int = 8, min_auction_n: int = 2048) -> None:
        self.min_lapjv_dim = int(min_lapjv_dim)
        self.min_auction_n = int(min_auction_n)

    def select(self, dim: int, n: int | None = None) -> AssignmentSolver:
        """The solver used for ``n`` points of dimension ``dim`` (``n=None``: small)."""
        global _LAP_WARNED, _NUMBA_WARNED
        if dim < self.min_lapjv_dim:
            if _have_numba():
                return AuctionSolver()
            if not _NUMBA_WARNED:
                _NUMBA_WARNED = True
                warnings.warn(
                    "numba is not installed: exact OT in low dimension uses POT's network "
                    "simplex instead of the certified auction (slower); pip install numba",
                    RuntimeWarning,
                    stacklevel=3,
                )
            return NetworkSimplexSolver()
        if n is not None and n >= self.min_auction_n and _have_numba():
            return AuctionSolver()
        if _lapx_lapjvr() is not None:
            return LapxSolver()
        if importlib.util.find_spec("lap") is None:
            if not _LAP_WARNED:
                _LAP_WARNED = True
                warnings.warn(
                    "the 'lap' package is not installed: exact OT uses scipy's "
                    "linear_sum_assignment instead (slower); pip install lap",
                    RuntimeWarning,
                    stacklevel=3,
                )
            return ScipySolver()
        return LapjvSolver()

    def assign(self, cost: NDArray[np.float64], dim: int, *, overwrite: bool) -> NDArray[np.int64]:
        return self.select(dim, cost.shape[0]).assign(cost, dim, overwrite=overwrite)

    def prefers_full_cost(self, dim: int) -> bool:
        return self.select(dim).prefers_full_cost(dim)

    def __repr__(self) -> str:
        return (
            f"AutoAssignmentSolver(min_lapjv_dim={self.min_lapjv_dim}, "
            f"min_auction_n={self.min_auction_n})"
        )
