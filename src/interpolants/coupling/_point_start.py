r"""Step 1 of the certified auction from the points: where its prices start.

:meth:`AuctionSolver.certified_points <interpolants.coupling.AuctionSolver.certified_points>`
proves an optimal assignment in three steps; this module holds the first, which only chooses
where the exact steps start. :func:`_point_prices` centres and balances the two sets (the
same optimal permutations), sets the auction's ε from the typical row's range of costs
(:func:`_typical_range`), takes warm prices from the optimum between random quarters of the
sets (their rows near the centre, :func:`_near_rows`), groups identical rows and isolated
clusters of near-identical ones (:func:`_row_clusters`) to bid as one source, runs the point
auction (``_point_kernels``) in float32, then float64 where float32 cannot resolve the bids,
and solves each cluster's own assignment. :func:`_screened_clusters` and
:func:`_grouped_rows` let the solver choose which set bids. Every function takes the solver
whose settings it reads.
"""

import math
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from ._balance import _balancing_map, _centre
from ._certificate import _max_norm, _sqdist_matrix
from ._clusters import (
    _cluster_bound,
    _coarse_clusters,
    _dense_cores,
    _merged_groups,
    _near_clusters,
    _solve_cluster,
    _take_in,
)
from ._point_kernels import _point_kernel
from ._repeated import _distinct, _next_in_group, _row_groups
from ._sqdist_kernels import _sqdist_kernel
from ._subspace import Start

if TYPE_CHECKING:
    from ._auction import AuctionSolver

__all__: list[str] = []


def _grouped_rows(
    solver: "AuctionSolver", inverse: NDArray[np.int64], near: NDArray[np.int64] | None = None
) -> int:
    """How many rows are in groups of at least ``group_rows`` identical ones (``inverse``:
    the distinct row of each) or in the near-identical clusters ``near`` (labels ≥ 0)."""
    counts = np.bincount(inverse)
    grouped = counts[inverse] >= solver.group_rows
    if near is not None:
        grouped |= near >= 0
    return int(np.count_nonzero(grouped))


def _screened_clusters(
    solver: "AuctionSolver", x: NDArray[np.float64], y: NDArray[np.float64]
) -> NDArray[np.int64] | None:
    """:func:`_row_clusters` of the rows ``x`` against ``y`` about as the points' path would
    find them (to choose which set bids): about the same centres (``_centre``), the span
    estimated from eight rows instead of 64, before the balancing map; None where there
    are none."""
    if not solver.cluster_eps > 0.0:
        return None
    xs, ys = x - _centre(x), y - _centre(y)
    return _row_clusters(solver, xs, ys, _typical_range(solver, xs, ys, 8)[0])


def _row_clusters(
    solver: "AuctionSolver", xs: NDArray[np.float64], ys: NDArray[np.float64], span: float
) -> NDArray[np.int64] | None:
    """The isolated clusters of the rows ``xs`` (centred) against ``ys`` for the auction's
    span (labels, −1 outside them; None where there are none): the tight ones, whose
    rows' values differ by at most ``cluster_eps`` times its last ε, of at least
    ``group_rows`` rows, and the wide ones, whose values differ by at most
    ``wide_cluster_span`` times the span, of at least ``wide_cluster_rows`` of the rows
    (and at least ``group_rows``; :func:`~._clusters._coarse_clusters`), and the dense
    cores shared with ``ys`` (:func:`~._clusters._dense_cores`), each taking in a
    minority of the others within it (:func:`~._clusters._take_in`)."""
    resolution = solver.cluster_eps * solver.final_eps * span
    bound = _cluster_bound(resolution, ys)
    labels = _near_clusters(xs, bound, solver.group_rows)
    top = _cluster_bound(solver.wide_cluster_span * span, ys)
    least = max(solver.group_rows, int(solver.wide_cluster_rows * xs.shape[0]))
    labels = _coarse_clusters(xs, labels, bound, top, least)
    # dense cores shared by both sets, up to the reach at which 4r times the bulk of the
    # objects' reach is wide_cluster_span × the span; each takes in a minority of the
    # clusters within it, as a wide cluster does
    bulk = np.sqrt(np.square(ys - np.median(ys, axis=0)).sum(axis=1))
    rho = float(np.quantile(bulk, 1.0 - 1.0 / 64.0))
    top = _cluster_bound(solver.wide_cluster_span * span, ys, rho)
    cores = _dense_cores(xs, ys, bound, top, least)
    if cores is None or labels is None:
        return labels if cores is None else cores
    _take_in(labels, cores)
    return labels


def _typical_range(
    solver: "AuctionSolver", xs: NDArray[np.float64], ys: NDArray[np.float64], rows: int = 64
) -> tuple[float, float, float]:
    """(span, min, max) of C_ij = ‖xs_i − ys_j‖² over a sample of about ``rows`` rows:
    span the median of the rows' range below their top 1 % (``span_quantile``), so that
    a few far points (a far column is one of n in every row, a far row one of the sampled
    rows) do not make ε too coarse for all the others."""
    values = _sqdist_matrix(xs[:: max(1, xs.shape[0] // rows)], ys)
    rows_range = np.quantile(values, solver.span_quantile, axis=1) - values.min(axis=1)
    return float(np.median(rows_range)), float(values.min()), float(values.max())


def _near_rows(
    solver: "AuctionSolver", xs: NDArray[np.float64], rows: NDArray[np.int64]
) -> NDArray[np.bool_]:
    """Which of ``rows`` (of the centred ``xs``) set the warm prices: those within
    max(``warm_rows_median`` × the median norm, the ``warm_rows_quantile`` quantile of the
    norms) of the centre, all of them if none is."""
    norms = np.sqrt(np.square(xs).sum(axis=1))
    reach = float(np.quantile(norms, solver.warm_rows_quantile))
    median = float(np.median(norms))
    if median > 0.0:  # (an infinite warm_rows_median then keeps every row)
        reach = max(reach, solver.warm_rows_median * median)
    near: NDArray[np.bool_] = norms[rows] <= reach
    return near if near.any() else np.ones(rows.shape[0], dtype=bool)


def _point_prices(
    solver: "AuctionSolver",
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    shortcuts: list[bool] | None = None,
) -> Start | None:
    """Step 1 of :meth:`AuctionSolver.certified_points` on centred points: (prices,
    candidate lists, the auction's assignment), or None where float64 values cannot resolve
    the problem either (the caller then solves the matrix). Appends True to ``shortcuts``
    where it took near-identical rows as identical or its auction ended early."""
    auction = _point_kernel("point_auction")
    span_kernel = _sqdist_kernel("sqdist_range")
    colmin = _sqdist_kernel("sqdist_colmin")
    if auction is None or span_kernel is None or colmin is None:
        raise ImportError("AuctionSolver needs numba (pip install numba)")
    n = x.shape[0]
    k = min(solver.candidates, n - 1)
    # the auction runs on C'_ij = ‖x'_i − y'_j‖², x' = (x − x̄)A, y' = (y − ȳ)A⁻¹ (A of
    # ``_balance``): C = C' + f(i) + g(j) has C''s optimal permutations, and prices for C
    # are those for C' minus g, g_j = ‖y_j‖² − ‖y'_j‖² − 2 x̄·y_j (x̄, ȳ any constants: the
    # sets' centres, ``_centre``)
    mx, my = _centre(x), _centre(y)
    xs, ys = x - mx, y - my
    span, lo, hi = _typical_range(solver, xs, ys)
    radius = _max_norm(xs) + _max_norm(ys)
    balance = _balancing_map(xs, ys)
    if balance is not None:  # kept where it narrows the range that sets ε
        xb, yb = xs @ balance[0], ys @ balance[1]
        radius_b = _max_norm(xb) + _max_norm(yb)
        if math.isfinite(16.0 * radius_b**2):
            balanced = _typical_range(solver, xb, yb)
            if balanced[0] < span:
                xs, ys, radius, (span, lo, hi) = xb, yb, radius_b, balanced
    if not span > 0.0:
        span = hi - lo
    if not span > 0.0:
        lo, hi = span_kernel(xs, ys)
        if not hi > lo:  # every C_ij equal: any permutation is optimal
            ident = np.arange(n, dtype=np.int64)
            return np.zeros(n), np.repeat(ident[:, None], k, axis=1), ident
        span = hi - lo
    prices = np.zeros(n)
    # a cold start opens at the whole range: an object far from every person (a far
    # column) is taken only once every other price has risen by about its cost
    eps0 = max(span, hi - lo) / 4.0
    if n >= solver.MULTISCALE:  # warm prices from the optimum between random quarters
        rng = np.random.default_rng(n)
        sub0 = np.sort(rng.choice(n, n // 4, replace=False))
        sub1 = np.sort(rng.choice(n, n // 4, replace=False))
        coarse = solver.certified_points(xs[sub0], ys[sub1])
        near = _near_rows(solver, xs, sub0)
        colmin(xs, sub0[near], ys, coarse.u[near], prices)
        # about their median: the quarter's potentials can share a constant (a far row's
        # ‖x_i‖²) whose rounding would hide the rises of ε
        prices = np.median(prices) - prices
        eps0 = solver.warm_eps * span
    # the values in units of ~span, in float32 (half the bytes, twice the lanes) where its
    # range holds them; where float32 cannot resolve the price rises (heavy tails: prices
    # spread far beyond the typical row's range) the auction stops and float64 takes over
    # from the prices reached; beyond float64's resolution the matrix path is taken
    unit = 2.0 ** math.floor(math.log2(span))
    reach = radius**2 / unit
    scaled = prices / unit
    eps = eps0 / unit
    root = math.sqrt(unit)
    xu, ym2u = xs / root, -2.0 * ys.T / root  # the points in units of sqrt(unit)
    # identical rows of x bid as one source (see the kernel): bit for bit identical here,
    # or in an isolated cluster, tight or wide (each then bids with its first row's
    # values; the assignment within the cluster is solved afterwards)
    inverse = distinct = _distinct(x)[1]
    clusters = _row_clusters(solver, xs, ys, span)
    if clusters is not None:
        inverse = _merged_groups(clusters, distinct)
        if shortcuts is not None:
            shortcuts.append(True)
    group, gstart, members, first_row = _row_groups(inverse, solver.group_rows)
    if gstart.shape[0] <= n:
        xu = xu[first_row]
    start, first = np.full(n, -1, dtype=np.int64), solver.first_phase_bids
    final = solver.final_eps * span / unit
    for dtype, itype in ((np.float32, np.int32), (np.float64, np.int64)):
        if not reach < (1e30 if dtype is np.float32 else 1e300):
            continue
        ym2 = np.ascontiguousarray(ym2u, dtype=dtype)
        yy = np.square(ym2.astype(np.float64)).sum(axis=0) / 4.0  # ‖y'_j‖² of those y'
        buf = np.empty(n + 1, dtype)
        cand, assigned, ok, eps, _ = auction(
            np.ascontiguousarray(xu, dtype=dtype),
            ym2,
            yy,
            scaled,
            start,
            eps,
            final,
            solver.point_scaling,
            k,
            solver.point_list_eps * span / unit,
            first * n,
            solver.phase_bids * n,
            solver.phase_raises,
            buf,
            buf.view(itype),
            float(np.finfo(dtype).eps) / 2.0,
            group,
            gstart,
            members,
            solver.late_eps * final,
            float(solver.late_bids * n),
            float(solver.list_gap),
        )
        if (assigned >= 0).any():  # float64 goes on from there, past the warm start
            start, first = assigned, solver.phase_bids
        if ok:
            if not np.isfinite(scaled).all():
                return None
            if eps > final and shortcuts is not None:  # ended early (a late price war)
                shortcuts.append(True)
            sizes = np.diff(gstart)
            identical = sizes > 1
            if clusters is not None:  # a cluster of distinct rows is not identical rows
                values = distinct[members]
                spread = np.maximum.reduceat(values, gstart[:-1])
                identical &= spread == np.minimum.reduceat(values, gstart[:-1])
            if gstart.shape[0] <= n:  # chain each group's objects into its rows' edges
                cand[:, -1] = np.where(
                    identical[group], assigned[_next_in_group(gstart, members)], cand[:, -1]
                )
            g = np.square(y).sum(axis=1) - np.square(ys).sum(axis=1) - 2.0 * (y @ mx)
            found = scaled * unit - g
            for t in np.flatnonzero((sizes > 1) & ~identical):
                rows = members[gstart[t] : gstart[t + 1]]
                # (clusters within it are fewer rows than it: the recursion ends)
                out = solver.certified_points(x[rows], y[assigned[rows]])
                _solve_cluster(out, x, y, rows, found, cand, assigned)
            return found, cand, assigned
    return None
