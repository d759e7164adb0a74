r"""Exact assignment between point sets with many repeated points, as a transportation problem.

If x0 takes only m0 distinct values (multiplicities a_g) and x1 only m1 (multiplicities b_h),
the assignment problem min_σ Σ_i ‖x0_i − x1_σ(i)‖² is the transportation problem between the
distinct points with integer masses a and b: a vertex solution F of it is integral (the
constraint matrix is totally unimodular), and pairing the a_g copies of point g with F_gh
copies of point h, for every h, gives an optimal permutation. Dual potentials (u_g, v_h)
proving F optimal prove that permutation optimal too (C_ij = C_g(i)h(j)). Solved by POT's
network simplex on the m0 × m1 matrix when it is small against n × n (repeated points make
the auction's bids tie, so this is also where the auction is slowest); the bounds of
:func:`_prefers_transport` are justified in ``benchmarks/results/design_notes.md``.
"""

import warnings

import numpy as np
from numpy.typing import NDArray

from ._certificate import _CERT_TOL, _sqdist_matrix

__all__: list[str] = []

# (s, p): the transportation problem when m0·m1 ≤ n²/s and m0·m1 ≤ p, for any of these
_BOUNDS = ((64, float("inf")), (16, float(1 << 23)), (5, 2.5e6))


def _prefers_transport(n: int, m0: int, m1: int) -> bool:
    """Whether n points with m0 and m1 distinct values go to the transportation problem.
    Where both sets are repeated (m0, m1 ≤ 3n/4): where m0·m1 ≤ n²/64; or ≤ n²/16 and ≤ 2²³;
    or ≤ n²/5 and ≤ 2.5·10⁶ (``_BOUNDS``). Where one set is nearly distinct, the network
    simplex pivots through unit masses and the auction bids for the other set's groups: only
    where m0·m1 ≤ 32n (a few distinct points on one side)."""
    pairs = m0 * m1
    if 4 * max(m0, m1) > 3 * n:
        return pairs <= 32 * n
    return any(pairs * share <= n * n and pairs <= most for share, most in _BOUNDS)


def _distinct(points: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """The distinct rows of ``points`` (in lexicographic order) and, for each row, the index
    of its distinct row (as ``np.unique(points, axis=0, return_inverse=True)``, by a lexsort:
    several times faster)."""
    order = np.lexsort(points.T[::-1])  # by the first coordinate, then the second, …
    ordered = points[order]
    new = np.ones(points.shape[0], dtype=bool)  # the first of each run of equal rows
    new[1:] = np.any(ordered[1:] != ordered[:-1], axis=1)
    inverse = np.empty(points.shape[0], dtype=np.int64)
    inverse[order] = np.cumsum(new) - 1
    return ordered[new], inverse


def _row_groups(
    inverse: NDArray[np.int64], least: int
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """The groups of at least ``least`` identical rows (``inverse``: the distinct row of each,
    from :func:`_distinct`; every other row a group of its own), for the auction
    (``_point_kernels``): (the group of each row, the start of each group in the next array
    and n at the end, the rows sorted by group, the first row of each row's group)."""
    n = inverse.shape[0]
    by_value = np.argsort(inverse, kind="stable")
    counts = np.bincount(inverse)
    first = by_value[np.cumsum(counts) - counts]  # the first row of each distinct value
    first_row = np.where(counts[inverse] >= least, first[inverse], np.arange(n))
    _, group = np.unique(first_row, return_inverse=True)
    group = group.reshape(-1).astype(np.int64)
    gstart = np.zeros(group.max() + 2, dtype=np.int64)
    np.cumsum(np.bincount(group), out=gstart[1:])
    members = np.argsort(group, kind="stable").astype(np.int64)
    return group, gstart, members, first_row.astype(np.int64)


def _next_in_group(gstart: NDArray[np.int64], members: NDArray[np.int64]) -> NDArray[np.int64]:
    """For each row, the next row of its group (cyclically; a lone row itself), with the
    groups of :func:`_row_groups`: the certificate's edges from each row of a group to the
    next one's object tie the group's objects together (its rows share one potential)."""
    n = members.shape[0]
    following = np.arange(1, n + 1)
    following[gstart[1:] - 1] = gstart[:-1]
    out = np.empty(n, dtype=np.int64)
    out[members] = members[following]
    return out


def _expand(
    flow: NDArray[np.int64],
    groups0: NDArray[np.int64],
    groups1: NDArray[np.int64],
) -> NDArray[np.int64]:
    """A permutation realising the integral transport ``flow`` (m0 × m1) between the groups:
    row i (group g) is paired with a row of group h, each pair (g, h) used F_gh times."""
    g, h = np.nonzero(flow)
    f = flow[g, h]
    slot = np.repeat(np.arange(g.size), f)  # one slot per pair, in (g, h) order
    rows = np.argsort(groups0, kind="stable")  # rows of x0 grouped in the same order
    by_h = np.lexsort((g, h))  # the pairs in (h, g) order: their slots meet x1's groups
    rank = np.empty(g.size, dtype=np.int64)
    rank[by_h] = np.arange(g.size)
    starts = np.concatenate([[0], np.cumsum(f[by_h])[:-1]])  # first x1 position per pair
    offset = np.arange(slot.size) - np.repeat(np.cumsum(f) - f, f)  # position in the pair
    cols = np.argsort(groups1, kind="stable")
    perm = np.empty(slot.size, dtype=np.int64)
    perm[rows] = cols[starts[rank[slot]] + offset]
    return perm


def _transport_assignment(
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    scale: float,
    distinct: tuple[tuple[NDArray[np.float64], NDArray[np.int64]], ...],
) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.float64], float, float] | None:
    """(perm, u, v, gap, δ) for C_ij = ‖x_i − y_j‖² through the transportation problem between
    the distinct points (``distinct``: :func:`_distinct` of x and of y), certified over every
    pair of distinct points with the tolerance δ = 2⁻⁴⁰·(``scale`` + max|u| + max|v|)
    (``scale`` ≥ max C), or None when the points are not repeated enough (or the check
    fails)."""
    n = x.shape[0]
    (ux, gx), (uy, gy) = distinct
    if not _prefers_transport(n, ux.shape[0], uy.shape[0]):
        return None
    import ot

    cost = _sqdist_matrix(ux, uy)
    a = np.bincount(gx, minlength=ux.shape[0]).astype(np.float64)
    b = np.bincount(gy, minlength=uy.shape[0]).astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # a truncated solve is not optimal
        try:
            plan, log = ot.emd(a, b, cost, numItermax=10**9, log=True)
        except UserWarning:
            return None
    flow = np.rint(plan).astype(np.int64)
    if (flow.sum(axis=1) != a).any() or (flow.sum(axis=0) != b).any():
        return None  # not an integral vertex (cannot happen for an exact network simplex)
    u, v = np.asarray(log["u"], dtype=np.float64), np.asarray(log["v"], dtype=np.float64)
    tol = _CERT_TOL * (scale + float(np.abs(u).max()) + float(np.abs(v).max()))
    reduced = cost - u[:, None] - v[None, :]  # ≥ 0 for feasible duals, 0 on the support
    excess = np.maximum(-reduced, 0.0).max(axis=1)
    slack = np.abs(reduced) * flow
    if excess.max() > tol or np.abs(reduced)[flow > 0].max() > tol:
        return None
    perm = _expand(flow, gx, gy)
    gap = float((excess * a).sum() + slack.sum())
    return perm, u[gx], v[gy], gap, tol
