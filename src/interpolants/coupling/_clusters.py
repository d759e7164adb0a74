r"""Near-identical rows of the point auction: isolated clusters that bid as one source.

For C_ij = ‖x_i − y_j‖², two rows differ by a row constant plus −2 (x_i − x_q)·y_j, so where
every x_i of a set lies within r of x_q, each row's values C_ij + p_j equal those of row q up
to a constant and an error of at most 2 r·max_j ‖y_j‖ (centred y). Where that is far below
the auction's ε the rows are near-identical persons: they outbid one another for prices that
rise by about ε a bid, and the auction spends most of its bids among them (a tight cluster
of one set against a spread other set). :func:`_near_clusters` finds such sets where they are
also isolated (no other row within 2r), so that the auction can treat each as identical rows
(one source with as many units, as for repeated points) and the assignment within it can be
solved on its own afterwards. :func:`_coarse_clusters` adds large isolated sets of wider
reach, whose values differ by more than ε but whose own problem is at a scale far below the
rest's, and :func:`_dense_cores` large sets of that kind, isolated or joined to the rest by
a sparse shoulder of points, where the other set has a core of as many points.
"""

import math
from collections.abc import Iterator

import numpy as np
from numpy.typing import NDArray

from ._certificate import CertifiedAssignment, _max_norm
from ._sqdist_kernels import _sqdist_kernel

__all__: list[str] = []

# the most points between a dense core's reach r and 2r, as a fraction of its own (_dense_cores)
_SHOULDER = 1.0 / 8.0
# the least median distance of the points outside a dense core, in units of its reach
_APART = 8.0
# the least fraction of an isolated set that its seed's linked points hold (_isolated)
_LINKED = 15.0 / 16.0

# odd multipliers of a hash of integer grid cells (wrapping int64 products; a collision only
# makes the screen below pass where it need not)
_MIX = np.array(
    [-7046029254386353131, -4658895280553007687, -3372029247567499371, 7640891576956012809],
    dtype=np.int64,
)


def _cell_keys(
    points: NDArray[np.float64], cell: float, shift: float | NDArray[np.float64]
) -> NDArray[np.int64]:
    """The index of each point's cell of a grid of side ``cell`` offset by ``shift`` cells
    (per coordinate, or one for all), one int64 per point (hashed over the coordinates)."""
    index = np.floor(points / cell + shift).astype(np.int64)
    keys = np.zeros(points.shape[0], dtype=np.int64)
    for t in range(points.shape[1]):
        keys = keys * _MIX[t % 4] + index[:, t]
    return keys


def _slot_counts(
    points: NDArray[np.float64], cell: float, shift: float | NDArray[np.float64]
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """(each point's slot, the points per slot) of the cells of :func:`_cell_keys`, counted
    in a table of 2^k ≥ 4n slots by the low bits of their keys (cells that share a slot
    only make a screen pass where it need not)."""
    slots = 1 << max(4, (4 * points.shape[0] - 1).bit_length())
    keys = _cell_keys(points, cell, shift) & (slots - 1)
    return keys, np.bincount(keys, minlength=slots)


def _candidates(points: NDArray[np.float64], bound: float, least: int) -> NDArray[np.bool_] | None:
    """A cheap screen: the points that may lie in a set of ``least`` points within ``bound``
    of one of them, None where no such set exists. Such a set spans at most 2·``bound`` in
    each coordinate, so one of the grids of side 4·``bound`` offset by 0 or 2·``bound`` in
    each coordinate holds it in one cell: in up to three dimensions each of those 2^d grids
    is counted, and the candidates are the points in a cell of ``least`` or more of any; above,
    one grid is counted, some cell of which then holds ``least``/2^d of them (and at least 2),
    and every point is a candidate."""
    n, dim = points.shape
    if n < least or not bound > 0.0 or not _max_norm(points) < 2.0**50 * bound:
        return None
    if dim > 3:
        _, counts = np.unique(_cell_keys(points, 4.0 * bound, 0.0), return_counts=True)
        if counts.max() >= max(2, -(-least // (1 << min(dim, 30)))):
            return np.ones(n, dtype=bool)
        return None
    heavy = np.zeros(n, dtype=bool)
    for corner in range(1 << dim):
        shift = np.array([0.5 * ((corner >> t) & 1) for t in range(dim)])
        keys, counts = _slot_counts(points, 4.0 * bound, shift)
        if counts.max() >= least:
            heavy |= counts[keys] >= least
    return heavy if heavy.any() else None


def _near_clusters(
    points: NDArray[np.float64], bound: float, least: int
) -> NDArray[np.int64] | None:
    """Labels (n,) of the isolated near-identical clusters among ``points``: sets of at least
    ``least`` (and fewer than all) points, each the points within ``bound`` of one of them
    (a seed; nearly all of them linked to it, see :func:`_isolated`), with no other point
    within 2·``bound`` of it; −1 for the points in none. ``None`` where there is no such
    set."""
    heavy = _candidates(points, bound, least)
    return None if heavy is None else _isolated(points, np.flatnonzero(heavy), bound, least)


def _isolated(
    points: NDArray[np.float64], index: NDArray[np.int64], bound: float, least: int
) -> NDArray[np.int64] | None:
    """:func:`_near_clusters` among the points ``index`` (the candidates: every point of such
    a set), isolated from all ``points``.

    Each set is the ball of radius ``bound`` about a seed, taken where it holds at least
    ``least`` points (fewer than all), its seed's component holds at least ``_LINKED``
    (15/16) of them, and no point lies between ``bound`` and 2·``bound`` of the seed. The
    seeds are the first points of the connected components of at least ``least`` of those
    points linked by sharing a cell of either of two grids of side bound/(2√d), the second
    offset by half a cell in every coordinate. An isolated set's points need not all be
    linked (the sparse edge of a set in many dimensions has a cell of its own in both
    grids), so the set is the seed's ball, not its component; but most of it is (a ball
    holding two separate clumps is two clusters, found at their own reach, not one); a
    component reaching past the ball reaches into the empty ring (its links are shorter
    than the ring is wide); a seed within a set found before is skipped, and two sets found
    are disjoint (their seeds lie more than 2·``bound`` apart)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n, dim = points.shape
    cell = bound / (2.0 * math.sqrt(dim))
    _, a = np.unique(_cell_keys(points[index], cell, 0.0), return_inverse=True)
    _, b = np.unique(_cell_keys(points[index], cell, 0.5), return_inverse=True)
    a, b = a.reshape(-1), b.reshape(-1)
    na, nb = int(a.max()) + 1, int(b.max()) + 1
    links = coo_matrix((np.ones(index.size), (a, na + b)), shape=(na + nb, na + nb))
    _, component = connected_components(links, directed=False)
    component = component[a]
    counts = np.bincount(component)
    order = index[np.argsort(component, kind="stable")]
    ends = np.cumsum(counts)
    labels = np.full(n, -1, dtype=np.int64)
    found = 0
    for c in np.flatnonzero((counts >= least) & (counts < n)):
        rows = order[ends[c] - counts[c] : ends[c]]
        if labels[rows[0]] >= 0:
            continue  # the seed lies in the ball of an earlier one: the same set
        distance = np.square(points - points[rows[0]]).sum(axis=1)
        inside = distance <= bound * bound
        count = int(np.count_nonzero(inside))
        # (an empty ring keeps the seed's group within the ball, so count ≥ its ``least``)
        if (
            count < n
            and rows.size >= _LINKED * count
            and np.count_nonzero(distance <= 4.0 * bound * bound) == count
        ):
            labels[inside] = found
            found += 1
    return labels if found else None


def _coarse_clusters(
    points: NDArray[np.float64],
    labels: NDArray[np.int64] | None,
    bound: float,
    top: float,
    least: int,
) -> NDArray[np.int64] | None:
    """``labels`` (from :func:`_near_clusters` at ``bound``) with the large isolated clusters
    of wider reach added: those of at least ``least`` points found by :func:`_near_clusters`
    at the bounds 2·``bound``, 4·``bound``, … up to ``top`` (and below half the points'
    extent). A dense core within a sparse halo (most of both sets in one small disc) is such
    a cluster: its own problem is at a scale far below the halo's, which sets the auction's ε.

    From the narrowest bound up, a wide cluster takes in the clusters found before that lie
    wholly within it (its own problem finds them again) where they hold fewer than half its
    points; where they hold more (atoms that a wider bound joins), or one of them lies partly
    outside it, they stay and it is left out.

    The bounds are screened from the widest down, each on the candidates of the one above
    (a set within a bound is within every wider one), so that the search stops where no
    ``least`` points, half of them outside the clusters found before, are left close enough
    together."""
    n = points.shape[0]
    reaches = _reaches(points, bound, top)
    screens = _screens(points, np.arange(n), reaches, least)
    if labels is not None:  # more than half of a cluster taken in lies outside the others
        free = _screens(points, np.flatnonzero(labels < 0), reaches, -(-least // 2))
        screens = (screen for _, screen in zip(free, screens, strict=False))
    levels = [_isolated(points, within, reach, least) for reach, within in screens]
    found = np.full(n, -1, dtype=np.int64) if labels is None else labels.copy()
    for wide in reversed(levels):  # the narrowest first
        if wide is not None:
            _take_in(found, wide)
    return found if (found >= 0).any() else None


def _take_in(found: NDArray[np.int64], wide: NDArray[np.int64]) -> None:
    """Add the sets labelled in ``wide`` (0, 1, …; −1 elsewhere) to the clusters ``found``
    (in place): each as a new cluster that takes in the clusters of ``found`` lying wholly
    within it where they hold fewer than half its rows; left out where they hold more, or
    where one of them lies partly outside it."""
    sizes = np.bincount(found[found >= 0])
    for c in range(int(wide.max()) + 1):
        rows = np.flatnonzero(wide == c)
        held = found[rows]
        inner, counts = np.unique(held[held >= 0], return_counts=True)
        if 2 * int(counts.sum()) >= rows.size or (counts != sizes[inner]).any():
            continue
        found[rows] = sizes.size  # a new label: these rows' clusters join it
        sizes = np.bincount(found[found >= 0], minlength=sizes.size + 1)


def _reaches(points: NDArray[np.float64], bound: float, top: float) -> list[float]:
    """The reaches 2·``bound``, 4·``bound``, … up to ``top`` and below half the points' extent
    (the diagonal of their bounding box): a cluster is isolated from the other points by
    twice its reach, so none reaches half the extent."""
    extent = float(np.sqrt(np.square(np.ptp(points, axis=0)).sum()))
    reaches: list[float] = []
    reach = 2.0 * bound
    while 0.0 < reach <= min(top, 0.5 * extent):
        reaches.append(reach)
        reach *= 2.0
    return reaches


def _screens(
    points: NDArray[np.float64], index: NDArray[np.int64], reaches: list[float], least: int
) -> Iterator[tuple[float, NDArray[np.int64]]]:
    """(reach, the candidates of :func:`_candidates` among ``points[index]``) from the widest
    of ``reaches`` down, each screened on the candidates of the one above (a set within a
    reach is within every wider one); it stops at the first reach without candidates (nor
    are there any at a narrower one). Lazily, so that screens run in step stop together."""
    for reach in reversed(reaches):
        heavy = _candidates(points[index], reach, least)
        if heavy is None:
            return
        index = index[heavy]
        yield reach, index


def _dense_cores(
    points: NDArray[np.float64],
    others: NDArray[np.float64],
    bound: float,
    top: float,
    least: int,
) -> NDArray[np.int64] | None:
    """Labels (0, 1, … for the cores, −1 elsewhere) of the dense cores of ``points`` matched
    by cores of ``others``, where a shoulder of points at every scale makes them not
    isolated. At each reach r of :func:`_reaches` at which both sets pass the screen of
    :func:`_candidates` (narrowing from the widest reach down), each set's cores are the
    balls of radius r found by :func:`_balls` (each of at least ``least`` points, not all of
    its set, with the rest of its set mostly beyond ``_APART``·r); a core of ``points`` is
    kept where

    - a core of ``others`` not matched before holds as many points, within 1/16 (the core's
      rows go mostly to that core's objects; the two may lie apart, as a translation of one
      set changes the cost by row and column constants only),
    - at most ``_SHOULDER`` times that many of either set lie between r and 2r of its
      centre (a sparse shoulder, so that few rows and objects are exchanged across the
      cores' edges).

    The reach whose kept cores hold the most rows is taken (the sharpest edges among equal
    ones). None where no core is kept, and in more than three dimensions (where
    :func:`_candidates` does not screen)."""
    n = points.shape[0]
    if points.shape[1] > 3:
        return None
    reaches = _reaches(points, bound, top)
    screened = [
        (reach, rows, cols)
        for (reach, rows), (_, cols) in zip(
            _screens(points, np.arange(n), reaches, least),
            _screens(others, np.arange(others.shape[0]), reaches, least),
            strict=False,
        )
    ]
    best: tuple[int, float] = (0, 0.0)
    labels = None
    for reach, rows, cols in reversed(screened):  # the narrowest first
        mine = [
            ball for ball in _balls(points, rows, reach, least) if ball[2] <= _SHOULDER * ball[1]
        ]
        theirs = _balls(others, cols, reach, least) if mine else []
        kept = np.full(n, -1, dtype=np.int64)
        covered, ratio, label = 0, 0.0, 0
        for inside, count, shoulder in mine:
            for t, (_, shared, shoulder_others) in enumerate(theirs):
                edge = max(shoulder, shoulder_others) / count
                if 16 * abs(count - shared) <= count and edge <= _SHOULDER:
                    kept[inside] = label
                    label += 1
                    covered += count
                    ratio = max(ratio, edge)
                    del theirs[t]
                    break
        if covered > best[0] or (covered == best[0] and covered > 0 and ratio < best[1]):
            best, labels = (covered, ratio), kept
    return labels


def _balls(
    cloud: NDArray[np.float64], members: NDArray[np.int64], reach: float, least: int
) -> list[tuple[NDArray[np.bool_], int, int]]:
    """The dense balls of radius ``reach`` of ``cloud``, in the order found: (which points
    lie in it, how many, how many lie between ``reach`` and twice it, leaving out those of
    the balls found before) for each ball of at least ``least`` points and fewer than all
    whose centre is at least ``_APART``·``reach`` from the median point outside it (the
    rest of the set at a scale far beyond the ball's: a heavy tail's bulk, whose rest lies
    a few times its reach away, is no core). Each is centred on the coordinate-wise median
    of the points within ``reach`` of the median of the ``members`` (the screen's
    candidates) in the fullest slot of cells of side 4·``reach`` (as :func:`_candidates`
    counts them) among those not yet within twice the reach of a ball or in such a slot;
    a ball holds no point of one found before."""
    found = []
    least = max(least, 1)
    taken = np.zeros(cloud.shape[0], dtype=bool)  # within twice the reach of a ball
    seen = np.zeros(cloud.shape[0], dtype=bool)  # a centre's cell
    left = members
    while left.size >= least:
        keys, counts = _slot_counts(cloud[left], 4.0 * reach, 0.0)
        fullest = counts.argmax()
        if counts[fullest] << min(cloud.shape[1], 30) < least:
            break  # a ball of `least` points has at least 2^-d of them in one cell
        cell = left[keys == fullest]
        centre = np.median(cloud[cell], axis=0)
        near = np.square(cloud - centre).sum(axis=1)
        # once more about the points within reach (a core on a cell corner, as a core at
        # the centred points' origin is, has a cell's median off its own)
        within = near <= reach * reach
        # (a sparse cell's median, the midpoint of an even count or of points whose cells
        # share a slot, may lie beyond reach of every point: no ball, nothing taken)
        if within.any():
            centre = np.median(cloud[within], axis=0)
            near = np.square(cloud - centre).sum(axis=1)
            inside = (near <= reach * reach) & ~taken
            reached = (near <= 4.0 * reach * reach) & ~taken
            count = int(np.count_nonzero(inside))
            # the rest of the set lies mostly far beyond the ball (a heavy tail's bulk, whose
            # rest lies at a few times its reach, is no core)
            rest = cloud.shape[0] - int(np.count_nonzero(near <= reach * reach))
            far = int(np.count_nonzero(near >= (_APART * reach) ** 2))
            if count >= least and rest > 0 and 2 * far >= rest:
                found.append((inside, count, int(np.count_nonzero(reached)) - count))
            taken |= reached
        seen[cell] = True
        left = left[~(taken[left] | seen[left])]
    return found


def _merged_groups(near: NDArray[np.int64], inverse: NDArray[np.int64]) -> NDArray[np.int64]:
    """Group labels (0, 1, …) of the rows: the clusters of ``near`` (≥ 0) and, elsewhere, the
    distinct rows of ``inverse`` (from ``_repeated._distinct``)."""
    merged = np.where(near >= 0, near, int(near.max()) + 1 + inverse)
    _, labels = np.unique(merged, return_inverse=True)
    return labels.reshape(-1).astype(np.int64)


def _cluster_bound(resolution: float, ys: NDArray[np.float64], rho: float | None = None) -> float:
    """The reach r of a near-identical cluster of rows against the centred objects ``ys``:
    4 r·ρ ≤ ``resolution`` (the most by which its rows' values may differ, up to a constant
    of the row, over the objects within ρ of the centre; ρ = max‖y‖ unless given); 0 where
    there is none."""
    rho = _max_norm(ys) if rho is None else rho
    return resolution / (4.0 * rho) if resolution > 0.0 and rho > 0.0 else 0.0


def _solve_cluster(
    within: CertifiedAssignment,
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    rows: NDArray[np.int64],
    prices: NDArray[np.float64],
    cand: NDArray[np.int64],
    assigned: NDArray[np.int64],
) -> None:
    """Take ``within``, the exact assignment between a near-identical cluster's ``rows`` and
    the objects the auction gave them (``assigned[rows]``, in that order), into the auction's
    start, in place: ``assigned`` of the rows; ``prices`` of their objects (its column
    potentials, shifted to the auction's level: a warm start of the certificate's shortest
    paths); and ``cand`` of the rows (the objects of least reduced cost among the cluster's,
    then the first of the auction's list, the best outside the cluster)."""
    nearest_kernel = _sqdist_kernel("sqdist_nearest")
    if nearest_kernel is None:
        raise ImportError("AuctionSolver needs numba (pip install numba)")
    objects = assigned[rows]
    m, k = rows.shape[0], cand.shape[1]
    assigned[rows] = objects[within.perm]
    prices[objects] = float(np.median(prices[objects] + within.v)) - within.v
    inside = min(k - k // 4, m)
    outside = cand[rows, : k - inside].copy()
    nearest = np.empty((m, inside), dtype=np.int64)
    nearest_kernel(x[rows], y[objects], within.v, nearest)
    cand[rows, :inside] = objects[nearest]
    cand[rows, inside:] = outside
