r"""Dual certificates of optimality for the assignment problem.

:func:`certify_assignment` bounds how far a permutation is from optimal from any dual
potentials (weak duality); :func:`_certify_reduced` finds potentials that prove a permutation
optimal for a reduced cost matrix (shortest paths on a sparse edge set, a dense check of every
entry, the violated entries added until none is left); :func:`_certify_points` does the same for
the squared Euclidean cost of two point sets without the matrix (an exact sparse assignment on
candidate pairs, the cost evaluated from the points in the check, its later rounds repaired by
augmenting paths from the last permutation). Everything runs on the host
in float64, in row blocks (no second n×n array). The helpers that prepare their input live here
too: the cost reduced by prices (:func:`_reduce_by_prices`), every pair of a small batch as an
edge set (:func:`_all_pairs`) and the largest norm of a point set (:func:`_max_norm`).
"""

import importlib.util
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ._augment import _augment_kernel
from ._kernels import _compiled
from ._sqdist_kernels import _sqdist_kernel

__all__ = ["CertifiedAssignment", "certify_assignment"]

_BLOCK = 1 << 20  # matrix entries per block in the blockwise passes (8 MiB of float64)
_CERT_TOL = 2.0**-40  # per-entry tolerance of the dual certificate, relative to the scale
_POINT_TOL = 2.0**-44  # the same from the points, relative to each pair's own terms
_REPAIR_WORK = 256  # a repair round labels at most this many times (pairs + rows) pairs
_PAIRS_PER_ROW = 64  # the certificate's sparse problem holds at most this many times n pairs
_ADDED_PER_ROW = 16  # past the cap, a violated row keeps at least this many of its most violated


def _row_blocks(n0: int, n1: int) -> list[tuple[int, int]]:
    step = max(1, _BLOCK // max(n1, 1))
    return [(s, min(n0, s + step)) for s in range(0, n0, step)]


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


def _sqdist_matrix(x: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray[np.float64]:
    """The float64 matrix ‖x_i − y_j‖² from the differences (no cancellation), in blocks of
    rows whose n1 × d temporaries hold at most 2²² entries (or one row)."""
    n0, n1, dim = x.shape[0], y.shape[0], x.shape[1]
    out: NDArray[np.float64] = np.empty((n0, n1))
    step = max(1, (1 << 22) // max(1, n1 * dim))
    for start in range(0, n0, step):
        diff = x[start : start + step, None, :] - y[None, :, :]
        np.einsum("ijk,ijk->ij", diff, diff, out=out[start : start + step])
    return out


def _sqdist_rows(x: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray[np.float64]:
    """‖x_i − y_i‖² for paired rows, float64."""
    diff = x - y
    out: NDArray[np.float64] = np.einsum("ij,ij->i", diff, diff)
    return out


def _sparse_lap(
    indptr: NDArray[np.int64], cols: NDArray[np.int64], weight: NDArray[np.float64]
) -> NDArray[np.int64]:
    """An optimal permutation of the sparse assignment problem given in CSR by row (sorted
    columns, a perfect matching among the edges): lapx's ``lapmod`` (Jonker–Volgenant for
    sparse matrices), else scipy's ``min_weight_full_bipartite_matching``. Each row is shifted
    to a minimum of 0, the whole scaled so that its largest entry is 1e5 − 1 (under lapmod's
    bound on entries and far above its resolution whatever the costs' own scale; unscaled
    where that factor would overflow), and 1 added (none of it changes the optimal
    permutations)."""
    n = indptr.shape[0] - 1
    w = weight - np.repeat(np.minimum.reduceat(weight, indptr[:-1]), np.diff(indptr))
    top = float(w.max())
    factor = (1e5 - 1.0) / top if top > 0.0 else 1.0
    if math.isfinite(factor):
        w *= factor
    w += 1.0
    lapmod = None
    if importlib.util.find_spec("lap") is not None:
        import lap  # type: ignore[import-untyped,unused-ignore]

        lapmod = getattr(lap, "lapmod", None)
    if lapmod is not None:
        x, _ = lapmod(n, w, indptr, cols, return_cost=False)
        return np.asarray(x, dtype=np.int64)
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import min_weight_full_bipartite_matching

    _, perm = min_weight_full_bipartite_matching(csr_matrix((w, cols, indptr), shape=(n, n)))
    return np.asarray(perm, dtype=np.int64)


def _certify_points(
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    edges: tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]],
    prices: NDArray[np.float64],
) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.float64], float, float] | None:
    """An optimal permutation for C_ij = ‖x_i − y_j‖² (float64 from the points) with potentials
    proving it: the exact sparse assignment on ``edges`` (CSR by row: pointers, sorted
    columns, costs; a perfect matching among them), column potentials by shortest paths from
    v = −``prices``, a check of u_i + v_j − C_ij ≤ δ_ij over all n² pairs, the violated pairs
    added (where they would pass the cap of ``_PAIRS_PER_ROW``·n pairs, each violated row's
    most violated: an even share of half the room left, ``_ADDED_PER_ROW`` at least, which
    may take more of it) and the whole repeated until none is left; a repeated round
    re-assigns only the rows given new pairs, by shortest augmenting paths from the last
    permutation and its potentials (``_augment``; the shortest paths then start from the
    repair's potentials), and solves from nothing where that fails or does not settle.
    The tolerance is per pair,
    δ_ij = 2⁻⁴⁴·(2‖x_i‖² + |u_i| + 2‖y_j‖² + |v_j|) (≥ 2⁶ float64 roundings of the terms
    of u_i + v_j − C_ij): a large entry (an outlier point) does not loosen the check of the
    others. Returns (perm, u, v, gap, max δ), or None if that fails: a negative cycle in
    float64, violated rows without a violated pair among them, a round whose pairs pass the
    cap even with each row's most violated only, or 64 rounds."""
    potentials = _sqdist_kernel("sparse_potentials")
    check = _sqdist_kernel("sqdist_excess")
    violations = _sqdist_kernel("sqdist_violations")
    augment = _augment_kernel()
    if potentials is None or check is None or violations is None:
        raise ImportError("the certificate from the points needs numba (pip install numba)")
    indptr, cols, cost = edges
    n = x.shape[0]
    yt = np.ascontiguousarray(y.T)
    xx, yy = np.square(x).sum(axis=1), np.square(y).sum(axis=1)
    slack = 0.25 * _POINT_TOL * (2.0 * yy + np.abs(prices))  # below every δ_ij of column j
    perm: NDArray[np.int64] | None = None  # a repaired permutation, with its potentials v
    v = -prices
    for _ in range(64):
        if perm is None or not potentials(indptr, cols, cost, perm, v, slack):
            # the exact sparse assignment from nothing (first round, or a repair that does
            # not settle)
            perm = _sparse_lap(indptr, cols, cost + prices[cols])
            v = -prices
            if not potentials(indptr, cols, cost, perm, v, slack):
                return None
        own = _sqdist_rows(x, y[perm])
        u = own - v[perm]
        tau_u, tau_v = _POINT_TOL * (2.0 * xx + np.abs(u)), _POINT_TOL * (2.0 * yy + np.abs(v))
        excess, bad = np.empty(n), np.empty(n)
        check(x, yt, v, tau_v - v, u, u - tau_u, excess, bad)
        rows_bad = np.flatnonzero(bad > 0.0)
        if rows_bad.size == 0:
            gap = float(np.maximum(excess, 0.0).sum())
            return perm, u, v, gap, float(tau_u.max() + tau_v.max())
        room = _PAIRS_PER_ROW * n - cols.size
        add_r, add_c, fits = violations(x, yt, rows_bad, tau_v - v, u - tau_u, n, room)
        if not fits:  # too many to add: each row's most violated, in half the room left
            most = max(_ADDED_PER_ROW, room // (2 * rows_bad.size))
            add_r, add_c, fits = violations(x, yt, rows_bad, tau_v - v, u - tau_u, most, room)
        if add_r.size == 0 or not fits:
            return None  # rounding disagrees with the check, or the candidates were poor
        rows = np.concatenate([np.repeat(np.arange(n), np.diff(indptr)), add_r])
        indptr, rows, cols = _pair_set(n, rows, np.concatenate([cols, add_c]))
        cost = _sqdist_rows(x[rows], y[cols])
        # the permutation was optimal on the old pairs with the potentials v: only the rows
        # given new pairs are re-assigned, by shortest augmenting paths that update v in place
        # (feasible on the new pairs, the next shortest paths start from them)
        budget = _REPAIR_WORK * (cols.size + n)  # past it, lapmod from nothing is cheaper
        if augment is None or not augment(indptr, cols, cost, perm, v, rows_bad, budget):
            perm = None
    return None


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


def _max_norm(points: NDArray[np.float64]) -> float:
    """max_i ‖points_i‖ without overflow in the squares (inf only if the norm overflows)."""
    top = float(np.abs(points).max())
    if top == 0.0 or not math.isfinite(top):
        return top
    return top * math.sqrt(float(np.square(points / top).sum(axis=1).max()))


def _pair_set(
    n: int, rows: NDArray[np.int64], cols: NDArray[np.int64]
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """The pairs (``rows``, ``cols``) of an n × n problem as a CSR set by row, sorted and
    without repeats: (row pointers, the rows, the columns)."""
    keys = np.sort(cols + rows * n)  # np.unique's hash path is far slower here (numpy ≥ 2.3)
    keys = keys[np.diff(keys, prepend=-1) != 0]  # the first of each run (keys ≥ 0)
    rows, cols = keys // n, keys % n
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
    return indptr, rows, cols


def _all_pairs(
    x: NDArray[np.float64], y: NDArray[np.float64]
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    """Every pair (i, j) as a CSR edge set by row, with C_ij = ‖x_i − y_j‖² (small n)."""
    n = x.shape[0]
    return np.arange(0, n * n + 1, n), np.tile(np.arange(n), n), _sqdist_matrix(x, y).ravel()
