r"""The certified ε-scaling auction: near-optimal prices, an exact completion, a certificate.

:class:`AuctionSolver` is the exact solver for low-dimensional and large batches (the rule of
:class:`~interpolants.coupling.AutoAssignmentSolver`); its kernels are compiled by numba
(``_kernels``; from the points, ``_point_kernels`` and ``_sqdist_kernels``), the first step
of its path from the points (where the prices start) is ``_point_start``, and its optimality
proof is the dual certificate of ``_certificate``.
"""

import copy
import math
from typing import Any, final

import numpy as np
from numpy.typing import NDArray

from ._assignment import AssignmentSolver, _checked_points, _exact_lap
from ._balance import _centre
from ._certificate import (
    _CERT_TOL,
    CertifiedAssignment,
    _all_pairs,
    _certify_points,
    _certify_reduced,
    _max_norm,
    _reduce_by_prices,
    _sqdist_matrix,
)
from ._kernels import _compiled
from ._point_kernels import _point_kernel
from ._point_start import _grouped_rows, _point_prices, _screened_clusters
from ._repeated import _distinct, _transport_assignment
from ._sqdist_kernels import _sqdist_kernel
from ._subspace import Start, _starts

__all__ = ["AuctionSolver"]


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

    Memory: with ``overwrite`` R replaces the cost in place, otherwise one n×n float64 copy.
    The bids read a float32 copy of the matrix when float32 resolves its spread; when every
    entry is a float32 value (a cost computed in float32) and the matrix may be overwritten,
    that copy is the first half of the matrix's own buffer and the float64 matrix is restored
    from it exactly (no second n×n array), else it is a separate n×n float32 array. Needs
    numba (for n ≥ 32) and lapx (else ``lap``, else scipy, for step 2); batches below 32 skip
    the auction.

    **From the points.** For the squared Euclidean cost, :meth:`certified_points` runs the same
    three steps without the n×n matrix: the bids compute a row's values from the points (in
    cache, d multiply-adds per entry, instead of reading the row from memory), the exact
    completion is a sparse LAPJV on the candidate pairs, and the certificate evaluates C in
    float64 from the points. :class:`~interpolants.OTCoupling` uses it (through
    :meth:`assign_points`) for batches of at least ``POINTS`` = 512 points of dimension below
    ``max_point_dim``; below that size the matrix path is faster.

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
    point_scaling, point_list_eps:
        ``scaling`` and ``list_eps`` of :meth:`certified_points` (its full scans are cheaper,
        so it keeps them longer and shrinks ε more slowly).
    max_point_dim:
        :meth:`assign_points` works from the points for dimensions below this (the values cost
        d multiply-adds per entry; above, the matrix path is faster on most data, though not
        on heavy tails: far points coarsen the matrix auction's ε for all the others, which
        the path from the points sets from the typical row's range).

    References
    ----------
    D. P. Bertsekas, *The auction algorithm: a distributed relaxation method for the
    assignment problem*, Annals of Operations Research 14 (1988).
    D. P. Bertsekas, D. A. Castañón, *The auction algorithm for the transportation problem*,
    Annals of Operations Research 20 (1989).
    D. P. Bertsekas, D. A. Castañón, *A forward/reverse auction algorithm for asymmetric
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
    POINTS = 512  # from this size assign_points works from the points (below, the matrix)
    warm_eps = 1.0 / 256
    span_quantile = 0.99  # ε of the point path relative to this quantile of a row's costs
    phase_bids = 64  # bids per point in one phase of the point auction before its ε is raised
    first_phase_bids = 8  # the same for its first phase (from a warm start: the prices' error)
    phase_raises = 16  # the most raises of ε in one run of the point auction
    late_eps = 4.0  # a phase of the point auction at ε ≤ this × its last ε that takes
    late_bids: float = 16  # more than this many bids per point ends the auction (the kernel)
    list_gap = 1.25  # a list build first ranks the values within this × its last spread (0: all)
    warm_rows_median = 2.0  # the point path's warm prices come from the subsample's rows
    warm_rows_quantile = 0.9  # within the larger of these two reaches (see _point_start._near_rows)
    group_rows = 16  # identical rows bid as one source from this many (certified_points)
    cluster_eps = 1024.0  # near-identical rows too, where their values differ by ≤ this × ε
    wide_cluster_span = 1.0 / 16  # and large clusters whose values differ by ≤ this × span
    wide_cluster_rows = 1.0 / 16  # of at least this fraction of the rows

    def __init__(
        self,
        scaling: float = 8.0,
        final_eps: float = 1e-6,
        list_eps: float = 1e-4,
        candidates: int = 16,
        point_scaling: float = 4.0,
        point_list_eps: float = 1e-5,
        max_point_dim: int = 11,
    ) -> None:
        if not min(scaling, point_scaling) > 1.0 or not 0.0 < final_eps < 1.0:
            raise ValueError(
                "need scaling > 1, point_scaling > 1 and 0 < final_eps < 1, got "
                f"{scaling}, {point_scaling}, {final_eps}"
            )
        if not min(list_eps, point_list_eps) > 0.0:
            raise ValueError(
                f"list_eps and point_list_eps must be positive, got {list_eps}, {point_list_eps}"
            )
        if candidates < 2:
            raise ValueError(f"candidates must be >= 2, got {candidates}")
        self.scaling = float(scaling)
        self.final_eps = float(final_eps)
        self.list_eps = float(list_eps)
        self.candidates = int(candidates)
        self.point_scaling = float(point_scaling)
        self.point_list_eps = float(point_list_eps)
        self.max_point_dim = int(max_point_dim)

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
        span_kernel = _compiled("span")
        if span_kernel is not None:
            lo, hi, finite, exact32 = span_kernel(c)
        else:
            lo, hi, exact32 = float(c.min()), float(c.max()), False
            finite = math.isfinite(lo) and math.isfinite(hi)
        if not finite:
            raise ValueError("cost must be finite")
        span = hi - lo
        scale = max(abs(lo), abs(hi))
        squeezed = False
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
            # the bids read a float32 copy (half the bytes per entry) when float32 holds the
            # costs and resolves their spread: the prices only need to be near-optimal, the
            # exact steps below use the float64 matrix
            # when float32 holds every entry exactly (a cost computed in float32) and ``c`` is
            # ours, the copy is the first half of c's own buffer (no second allocation), and
            # the float64 matrix is restored exactly, reduced, by one pass after the auction
            squeezed = overwrite and exact32 and 1e-4 * scale <= span and scale <= 1e30
            bids: NDArray[np.floating[Any]]
            if squeezed:
                half = c.reshape(-1).view(np.float32)
                _compiled("squeeze")(c, half, np.empty(n, np.float32))  # type: ignore[misc]
                bids = half[: n * n].reshape(n, n)
            elif 1e-4 * scale <= span and scale <= 1e30:
                bids = c.astype(np.float32)
            else:
                bids = c
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
        if squeezed:
            u = np.empty(n)
            _compiled("unsqueeze_reduce")(half, c, prices, u, np.empty(n))  # type: ignore[misc]
            reduced = c
        else:
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

    def certified_points(
        self, x0: NDArray[np.floating[Any]], x1: NDArray[np.floating[Any]]
    ) -> CertifiedAssignment:
        r"""An optimal permutation for C_ij = ‖x0_i − x1_j‖² with its dual certificate, from the
        points: no n×n matrix is formed.

        The three steps of :meth:`certified` with the cost evaluated from the points:

        1. **Prices** from the same ε-scaling auction (with ``point_scaling`` and
           ``point_list_eps`` for its schedule; ε ends relative to the typical row's range of
           costs, the median over a sample of rows of their 99th percentile minus their
           minimum, so that a few far points do not coarsen it for the others, and a cold
           start opens at a quarter of the whole range), a row's values C_ij + p_j computed
           in float32 from the points when a bid needs them (d multiply-adds per entry, in
           cache, rather than a read of the matrix from memory). The auction works on the
           centred points after a linear change of variables, x0 ↦ x0·A and x1 ↦ x1·A⁻¹
           with A the square root of the Gaussian optimal transport map between the two
           sets' covariances: it keeps every cross term of the centred points, changing C
           by row and column constants only (the same optimal permutations), and gives both
           sets one covariance, so that sets stretched along crossed axes or of unequal
           scales do not make ε follow a part of C that every permutation shares. The
           balanced points are used only where they narrow the typical row's range (a few
           far points can set a covariance on their own).
           From ``MULTISCALE`` points on, the auction starts from warm prices: the optimum
           between random quarters of the two sets (recursively), its row potentials u
           carried to every object by p_j = max_i (u_i − C_ij) over the quarter's rows within
           max(``warm_rows_median`` × the median distance to the centre, the
           ``warm_rows_quantile`` quantile of those distances), less their median (the
           potentials may share a large constant, a far row's ‖x_i‖², whose rounding would
           hide rises of ε). A far row's costs are steep
           (their slope in y is 2‖x_i − y‖), so it extrapolates its potential to the objects
           outside the quarter with errors in proportion, and prices them too high: a forward
           auction can only repair that by raising every other price. An object priced too
           low is repaired by the far rows' own bids, whose increments are as steep as their
           costs.
           A row's values are computed up to a constant of the row, C_ij + p_j − min p
           − ‖x_i‖² plus the smaller of ‖x_i‖² and 2‖x_i‖·max_j ‖y_j‖ (either keeps them
           ≥ 0), so that a far row's ‖x_i‖², rounded, does not swamp the differences of its
           values (its bids would tie over many objects, and it would bid for one of them in
           steps of ε). Where p − min p would spread the shared parts ‖y_j‖² + p_j − min p
           too wide for float32 (the warm prices of far objects lie ~‖y_j‖² below the
           others'), the values are taken about the median of ‖y_j‖² + p_j instead, with each
           row's least value (found once) as its offset.
           Where float32 cannot resolve the bids (heavy tails spread the prices far beyond a
           typical row's range, for more than the farthest 1/64 of the objects), the
           auction goes on in float64 from the prices and the assignment reached. A phase
           that takes more than ``phase_bids``·n bids (``first_phase_bids``·n for the first)
           raises its ε: a price war at too small an ε, as a warm start far from the optimum's
           prices causes, then costs a few phases. A phase at ε ≤ ``late_eps`` times the
           last one that takes more than ``late_bids``·n bids is finished at ε·``point_scaling``
           and ends the auction: a price war among rows whose values differ by a few ε (points
           crowded at a scale far below the other set's, at edges or corners, or along heavy
           tails) costs more bids than step 2 takes to settle it from there; should steps 2–3
           not settle from such a start, the solve is repeated without the early end (and
           without clusters) before the matrix is built.
        2. **Exact completion** on the sparse set of candidate pairs (each row's final
           candidate list and its assigned partner, C in float64): Jonker–Volgenant for sparse
           matrices (lapx's ``lapmod``; else scipy's ``min_weight_full_bipartite_matching``).
        3. **Certificate**: potentials from shortest paths on those pairs, checked against
           C_ij = ‖x0_i − x1_j‖² evaluated in float64 from the points over all n² pairs, with
           a tolerance per pair, δ_ij = 2⁻⁴⁴·(2‖x0_i − c‖² + abs(u_i) + 2‖x1_j − c‖² + abs(v_j))
           (c the midpoint of the two sets' centres: each set's mean, or its coordinate-wise
           median where the mean lies more than 2¹⁷ interquartile ranges from it, as a heavy
           tail's can; at least 2⁶ float64 roundings of the terms compared);
           violated pairs are added and steps 2–3 repeated until none is violated (where
           they would pass the cap of 64·n candidate pairs, each violated row's most violated:
           an even share of half the room left, 16 at least). A repeated step 2 starts from
           the last permutation, optimal on the old pairs with dual feasible potentials: only
           the rows given new pairs give up their objects, and each takes one back by a
           shortest augmenting path on the reduced costs (Dijkstra, the potentials updated as
           in Jonker and Volgenant's augmentation; lapmod from nothing where no such path
           exists or the result does not settle). ``tol`` is the largest δ_ij, so the gap is
           at most 2n·``tol``.

        If that does not settle (float64 values that cannot resolve the bids, more than 64·n
        candidate pairs even with each violated row's 16 most violated only, a check whose
        rounding disagrees with the search for violations),
        the float64 matrix is built and solved by :meth:`certified`: the answer is always
        certified, the speed and the memory are then those of the matrix path.

        **One set in a subspace.** Where x1 lies in an affine subspace of dimension k < d
        (within 2⁻²⁰ of its own extent: data on a line or a plane, a padded coordinate,
        float32 rounding included), C_ij = ‖w_i‖² + ‖a_i − b_j‖² up to that residual, with
        a_i, b_j the coordinates in the subspace and w_i the distance of x0_i to it: step 1
        runs on the k-dimensional coordinates (the same optimal permutations; likewise where
        x0 lies in one, the distances of the x1 then column constants), and again on the
        points if steps 2–3 cannot settle from that start. For k = 1, and for ``(n, 1)``
        points, step 1 is the monotone matching (the sorted coordinates in order, optimal on
        the line) with its potentials in closed form, and the candidates are each row's
        neighbours in sorted order. Steps 2 and 3 are unchanged, on the points themselves.

        **Repeated points.** When x0 and x1 take few distinct values (m0 and m1 of them, both at
        most 3n/4 and m0·m1 ≤ n²/64, or ≤ n²/16 and ≤ 2²³, or ≤ n²/5 and ≤ 2.5·10⁶; or one of
        them above 3n/4 and m0·m1 ≤ 32n: quantised data, duplicates), the problem is the
        transportation problem between the distinct points with their multiplicities as masses:
        it is solved exactly by POT's network simplex on the m0 × m1 matrix, its integral plan
        expanded into a permutation, and its dual potentials checked over every pair of distinct
        points (which covers every pair of points). Otherwise, rows repeated at least
        ``group_rows`` times bid in the auction as one source with that many units, as in
        Bertsekas and Castañón's auction for transportation problems: a row bids only for
        objects its identical rows do not hold (outbidding one of them would only swap two
        interchangeable persons, for a price rise of ε each time), and at the end of each phase
        the prices of a group's objects are raised to the value of its dearest one, which keeps
        ε-complementary slackness for each of its rows. Where more of x1's points than of x0's
        are so repeated, the transposed problem is solved (x1 as the rows) and its answer
        transposed back.

        **Near-identical rows.** A tight, isolated cluster of x0 (at least ``group_rows``
        points within r of one of them, nearly all linked to it through points closer
        together, no other point within 2r of it, and 4r·max‖y_j − ȳ‖
        at most ``cluster_eps`` times the auction's last ε) has rows whose values differ by
        at most that much, up to a constant of the row: bidding one by one, they would outbid
        one another for prices that rise by about ε a bid. The auction takes each such cluster
        as identical rows (its first row's values, one source as above); the assignment within
        it, between its rows and the objects the auction gave them, is then solved exactly on
        its own (:meth:`certified_points` on those points, whose balancing map brings the
        cluster's scale to the objects', and which finds the clusters within it, of fewer
        rows each), and its column potentials and its rows' cheapest pairs join the start of
        steps 2–3, which settle any exchange with the rest. So is a large isolated cluster of
        wider reach (at least ``wide_cluster_rows`` of the rows and ``group_rows``,
        4r·max‖y_j − ȳ‖ at most ``wide_cluster_span`` times the typical row's range, r at
        most half the diagonal of the points' bounding box, found at reaches doubling from
        the tight clusters' up): most of both sets in one small disc, with a sparse halo
        around it that sets ε, whose rows would otherwise bid blind (the core's whole range
        of costs within a few ε); its own problem is at its own scale. A wide cluster takes
        in the tight ones wholly within it where they hold fewer than half its rows (its own
        problem finds them again), and is left out where they hold more. So are, isolated or
        not, the dense cores that both sets share: balls of reach r
        holding at least ``wide_cluster_rows`` of the rows, each matched by a ball of the
        objects (of any centre) holding as many within 1/16, each ball holding not all of its
        set, with most of the rest beyond 8r and at most an eighth as many between r and 2r
        (most of both sets in a small disc, a shoulder of points at every scale around it;
        not the bulk of a heavy tail, whose rest lies a few times its reach away), found up
        to the reach at which
        4r times the 1 − 1/64 quantile of the objects' distances to their median is
        ``wide_cluster_span`` times the span (a core's rows do not bid for the farthest
        objects); the reach whose cores hold the most rows is taken. Where more of x1's
        points than of x0's are in such clusters, the transposed problem is solved. Should
        steps 2–3 not settle from that start, the solve is repeated without clusters and
        without the auction's early end before the matrix is built.

        Memory: O(n·(d + ``candidates``)) (at most 64·n candidate pairs), plus a few m0 × m1
        arrays for repeated points and the matrix in the fallback only.

        Parameters
        ----------
        x0, x1:
            Finite ``(n, d)`` arrays of one shape (converted to float64).

        Returns
        -------
        CertifiedAssignment
            ``perm``, potentials ``u``, ``v`` of C, the certified gap and the tolerance δ.

        Example
        -------
        >>> import numpy as np
        >>> from interpolants.coupling import AuctionSolver, certify_assignment
        >>> rng = np.random.default_rng(0)
        >>> x, y = rng.normal(size=(300, 2)), rng.normal(size=(300, 2))
        >>> out = AuctionSolver().certified_points(x, y)
        >>> cost = ((x[:, None] - y[None]) ** 2).sum(-1)
        >>> bool(certify_assignment(cost, out.perm, out.u, out.v) <= 2 * 300 * out.tol)
        True
        """
        x, y = _checked_points(x0, x1, copy=True)  # private copies, centred below
        n = x.shape[0]
        centre = 0.5 * (_centre(x) + _centre(y))  # C is invariant to translations
        x -= centre
        y -= centre
        reach = _max_norm(x) + _max_norm(y)
        scale = reach * reach  # ≥ every C_ij
        if not math.isfinite(16.0 * scale):
            raise ValueError("the squared distances of x0 and x1 overflow float64")
        if n >= self.SMALL:  # many repeated points: the transportation problem between them
            distinct = _distinct(x), _distinct(y)
            repeated = _transport_assignment(x, y, scale, distinct)
            if repeated is not None:
                perm, u, v, gap, tol = repeated
                return CertifiedAssignment(perm=perm, u=u, v=v, gap=gap, tol=tol)
            grouped = [
                _grouped_rows(self, distinct[0][1], _screened_clusters(self, x, y)),
                _grouped_rows(self, distinct[1][1], _screened_clusters(self, y, x)),
            ]
            if grouped[1] > grouped[0]:
                # more of x1's points than of x0's are repeated ≥ group_rows times or in
                # isolated clusters (tight or wide): the transposed problem, so that those bid
                # as groups
                out = self._certified_centred(y, x)
                perm = np.empty(n, dtype=np.int64)
                perm[out.perm] = np.arange(n)
                return CertifiedAssignment(perm=perm, u=out.v, v=out.u, gap=out.gap, tol=out.tol)
        return self._certified_centred(x, y)

    def _certified_centred(
        self, x: NDArray[np.float64], y: NDArray[np.float64]
    ) -> CertifiedAssignment:
        """:meth:`certified_points` for centred private copies, past the transportation
        problem: the sparse path, or the matrix where it cannot settle."""
        n = x.shape[0]
        found = None
        if _sqdist_kernel("sparse_potentials") is None:
            if n >= self.SMALL:
                raise ImportError("AuctionSolver needs numba (pip install numba)")
        elif n < self.SMALL:
            found = _certify_points(x, y, _all_pairs(x, y), np.zeros(n))
        else:  # the reduced problem's start first (one set in a subspace), then the points'
            kernel = _sqdist_kernel("sqdist_edges")
            # whether a start took a shortcut: near-identical rows as one, an early end
            shortcuts: list[bool] = []

            def point_prices(a: NDArray[np.float64], b: NDArray[np.float64]) -> Start | None:
                return _point_prices(self, a, b, shortcuts)

            for start in _starts(x, y, point_prices):  # lazily: the next if unsettled
                if start is not None and kernel is not None:
                    prices, cand, assigned = start
                    found = _certify_points(x, y, kernel(x, y, cand, assigned), prices)
                if found is not None:
                    break
            if found is None and shortcuts:  # the same without the shortcuts, then the matrix
                return self._plain()._certified_centred(x, y)
        if found is None:  # the sparse path could not settle: solve the matrix instead
            return self.certified(_sqdist_matrix(x, y), overwrite=True)
        perm, u, v, gap, tol = found
        return CertifiedAssignment(perm=perm, u=u, v=v, gap=gap, tol=tol)

    def _plain(self) -> "AuctionSolver":
        """This solver without the near-identical clusters and the auction's early end (for a
        retry where the start they gave did not settle)."""
        plain = copy.copy(self)
        plain.cluster_eps = 0.0
        plain.late_eps, plain.late_bids = 0.0, math.inf
        return plain

    def prefers_points(self, n: int, dim: int) -> bool:
        return n >= self.POINTS and dim < self.max_point_dim

    def assign_points(
        self, x0: NDArray[np.float64], x1: NDArray[np.float64]
    ) -> NDArray[np.int64] | None:
        """:meth:`certified_points`' permutation for d < ``max_point_dim`` and n ≥ ``POINTS``
        (with numba), else ``None`` (the matrix path, faster for small batches; also where
        squared distances may overflow float64)."""
        n, dim = x0.shape
        if not self.prefers_points(n, dim) or _point_kernel("point_auction") is None:
            return None
        reach = math.sqrt(dim) * (float(np.abs(x0).max()) + float(np.abs(x1).max()))
        if not math.isfinite(64.0 * reach * reach):  # squared distances may overflow
            return None
        return self.certified_points(x0, x1).perm

    def assign(self, cost: NDArray[np.float64], dim: int, *, overwrite: bool) -> NDArray[np.int64]:
        return self.certified(cost, overwrite=overwrite).perm

    def prefers_full_cost(self, dim: int) -> bool:
        return dim < 8

    def __repr__(self) -> str:
        return (
            f"AuctionSolver(scaling={self.scaling:g}, final_eps={self.final_eps:g}, "
            f"list_eps={self.list_eps:g}, candidates={self.candidates}, "
            f"point_scaling={self.point_scaling:g}, point_list_eps={self.point_list_eps:g}, "
            f"max_point_dim={self.max_point_dim})"
        )
