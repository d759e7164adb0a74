r"""The numba kernels of the certified assignment from points (:meth:`AuctionSolver.certified_points
<interpolants.coupling.AuctionSolver.certified_points>`), for C_ij = ‖x_i − y_j‖².

No n×n matrix is formed: a row's values C_ij + p_j (up to a constant of the row) are
computed from the points when a bid needs them, in float32 (float64 where float32 cannot
resolve the bids), into a buffer of n values that stays in cache; the minimum is taken over
the values' bit patterns as integers of the same width (non-negative floats order like their
bits, and integer minima vectorise), block by block, so that a bid reads the block minima and
one block. The exact steps (sparse completion, certificate) evaluate C in float64 from the
points, with the kernels of ``_sqdist_kernels``.

Each ``_<name>_kernel`` is a plain Python function in numba's subset; :func:`_point_kernel`
compiles it on first use, after the helpers it calls (``_HELPERS``), and returns ``None``
without numba.
"""

from collections.abc import Callable
from typing import Any

import numpy as np

from ._kernels import _compile_in, _insert_smallest, _list_best_two, _take
from ._point_values import (
    _BLOCK,
    _best_two,
    _block_minima,
    _bulk,
    _first_frame,
    _narrower_frame,
    _rebase,
    _row_values,
    _smallest_below,
    _squared_norm,  # noqa: F401  (compiled here with the others, ``_HELPERS``)
)

__all__: list[str] = []


def _mask_group(g: Any, held_by: Any, vals: Any) -> Any:
    """vals_j = +inf where object j is held by a row of group ``g`` (``held_by`` (n,): the
    group of each object's owner, −1 for none): a row does not bid against its identical
    rows. Returns how many objects are left (counted: under fastmath a comparison with inf
    cannot tell)."""
    left = 0
    for j in range(vals.shape[0]):
        mine = held_by[j] == g
        vals[j] = np.inf if mine else vals[j]
        left += 0 if mine else 1
    return left


def _row_cost(x: Any, i: Any, ym2: Any, yy: Any, j: Any) -> Any:
    """C_ij − ‖x_i‖² = ‖y_j‖² − 2 x_i·y_j in float64 (``ym2`` = −2 yᵀ, ``yy`` = ‖y_j‖²)."""
    c = yy[j]
    for t in range(x.shape[1]):
        c += np.float64(x[i, t]) * ym2[t, j]
    return c


def _level_groups(
    x: Any, ym2: Any, yy: Any, prices: Any, pmin: Any, w: Any, assigned: Any, gstart: Any,
    members: Any,
) -> None:  # fmt: skip
    """Raise the prices of the objects held by each group of identical rows (``members``
    [``gstart[g]``: ``gstart[g + 1]``]) to the group's dearest value C_gj + p_j, so that every
    row of the group holds an object of the same value (each within ε of the best outside
    the group when this is called, at the end of a phase)."""
    for g in range(gstart.shape[0] - 1):
        if gstart[g + 1] - gstart[g] < 2:
            continue
        q0 = members[gstart[g]]
        dearest = -np.inf
        for t in range(gstart[g], gstart[g + 1]):
            j = assigned[members[t]]
            dearest = max(dearest, _row_cost(x, q0, ym2, yy, j) + prices[j])
        for t in range(gstart[g], gstart[g + 1]):
            j = assigned[members[t]]
            prices[j] += dearest - (_row_cost(x, q0, ym2, yy, j) + prices[j])
            w[j] = yy[j] + (prices[j] - pmin)


def _point_auction_kernel(
    x: Any, ym2: Any, yy: Any, prices: Any, start: Any, eps0: Any, eps_final: Any, theta: Any,
    k: Any,
    list_eps: Any, first_budget: Any, budget: Any, raises: Any, buf: Any, keys: Any,
    roundoff: Any, group: Any, gstart: Any, members: Any, late_eps: Any, late_bids: Any,
    list_gap: Any,
) -> Any:  # fmt: skip
    """Forward auction with ε-scaling for min Σ ‖x_i − y_σ(i)‖² from the points (Bertsekas).

    The same auction as ``_kernels._auction_kernel`` (persons are rows, objects columns;
    ε-complementary slackness per phase; ε divided by ``theta`` down to ``eps_final``; from
    ``list_eps`` on, bids from per-row lists of the k cheapest objects, rescanned only when
    the list may be stale), with the row values computed from the points (``_row_values``)
    instead of read from a matrix, and the row minima found on their integer bit patterns.
    ``x`` (n, d) and ``ym2`` = −2 yᵀ (d, n) in one float dtype (float32, or float64 where
    float32 cannot resolve the bids), ``yy`` = ‖y_j‖² (float64, of the y in that dtype);
    ``prices`` (n,) float64, updated in place; ``start`` (n,) int64 the one-to-one (partial)
    assignment to start from (−1 for a person without an object; each person still within ε
    of its best object at the first phase keeps it); ``buf`` (n + 1,) of the points' dtype and
    ``keys`` its view as integers of the same width (the row's values and their bit patterns);
    ``roundoff`` the unit roundoff of that dtype.

    A list build ranks the m = k + 1 smallest values: first among those within ``list_gap``
    times the spread of the row's m smallest at its last build above the row's minimum
    (:func:`_smallest_below`: two vectorised passes and a few insertions, where ranking the
    whole row inserts ~m·ln(n/m) times), else over every block that can hold one (the first
    build of a row, a spread of 0, ``list_gap`` = 0, or a guess that holds fewer than m or
    more than 8m values after three tries).

    **Identical rows** (``group`` (n,) the group of each row, ``members`` the rows sorted by
    group, group g's from ``gstart[g]`` to ``gstart[g + 1]``; every row its own group where no
    two are equal) are one source with as many units as rows, as in Bertsekas and Castañón's
    auction for transportation problems: a row bids only for objects not held by its group
    (displacing an identical row would only swap two interchangeable persons, each time for a
    rise of ε), always from a full scan, and at the end of each phase the prices of the
    group's objects are raised to its dearest one's value, which restores ε-complementary
    slackness for every row of the group (each held object is within ε of the best outside
    the group: it was when bid for, the prices outside only rose since, and a row whose
    object was taken bid again). Prices still only rise.

    A phase whose bids exceed ``budget`` (``first_budget`` for the first, where a warm
    start's error shows) raises ε by ``theta`` (and so on every such number of bids),
    keeping its assignment (ε-complementary slackness only loosens): the prices given
    may be far from the optimum's (a warm start from a subsample of heavy-tailed points), and
    a price war at a small ε would then take bids in proportion to the prices' error over ε.
    The phases go on down from the raised ε. At most ``raises`` raises in all: after them the
    auction is the plain ε-scaling one.

    A phase at ε ≤ ``late_eps`` that takes more than ``late_bids`` bids goes on at ε·``theta``,
    and that ε becomes the last (a price war among rows whose values differ by a few ε,
    which the exact completion settles for less): the auction ends with every row assigned,
    ε-complementary slackness at that coarser ε, returned in fourth place (above
    ``eps_final``).

    Returns (candidate lists (n, k; a grouped row's leaves out its group's objects, and may
    be unfilled), the final assignment (n,), True, ε, the number of bids),
    or False in third place with the ε reached when the values cannot resolve the bids: at the
    start of a phase whose ε is below 16× the rounding of the shared parts
    w_j = ‖y_j‖² + p_j − c of all but the largest n/64 of them (prices spread far beyond the
    rows' ranges, as heavy-tailed points make them: every row's values then round to a
    multiple of about ε, and the bids tie; the few far objects left out are bid for by far
    rows, whose values round coarser anyway), or after more than 4n bids that leave their
    object's value unchanged (points whose values round together, where the bids would never
    end). ``prices`` are then the prices reached, a warm start for a run in float64.

    The values are taken in a frame (``_point_values``): a constant c of the prices and
    an offset per row, set by :func:`~._point_values._first_frame`. c is min_j p_j, and a
    row's offset (added to its values to keep them ≥ 0) the smaller of ‖x_i‖² and
    2‖x_i‖·max‖y‖ (the second for a far row, whose ‖x_i‖² rounded would swamp the
    differences of its values). Where those shared parts spread wider than the last phase
    can resolve and wider than about their median, c is the median of ‖y_j‖² + p_j instead
    (a warm start prices far objects ~‖y_j‖² below the others, which p − min p would carry
    into every other w_j), and each row's offset is its own least value (found by one
    scan; values only rise), so that the values a row compares stay small
    (:func:`~._point_values._narrower_frame`). Far objects can make those least values large too
    (a row's value for a far object it is not matched to): the resolution check then also
    takes the offsets, all but the largest n/64 of them. In float64 (no finer precision to
    hand over to) a phase whose check fails takes the frame again about the prices reached,
    where that narrows the shared parts by half (twice at most in a run: the prices of a
    cold start, or of a warm start's far objects, have moved since it was set), and gives
    up only if the check still fails. Prices matter only up to a constant: a phase opens by
    taking their least value off them (and off the lists' thresholds) where float64 would
    otherwise round a rise of ε away (:func:`~._point_values._rebase`; from a cold start
    every price rises by many coarse ε, a common part far above the last ε where heavy
    tails make the first ε large). Plain Python here; :func:`_point_kernel` compiles it.
    """
    n = x.shape[0]
    m = k + 1
    nb = (n + _BLOCK - 1) // _BLOCK
    owner = np.full(n, -1, np.int64)
    # the group of each object's owner (beside owner: the masks read it in the scan, no gather)
    held_by = np.full(n, -1, np.int64)
    grouped = np.empty(n, np.bool_)  # rows with identical rows
    for i in range(n):
        grouped[i] = gstart[group[i] + 1] - gstart[group[i]] > 1
    assigned = start.copy()
    for i in range(n):
        if assigned[i] >= 0:
            owner[assigned[i]] = i
            held_by[assigned[i]] = group[i]
    queue = np.empty(n, np.int64)
    cand = np.zeros((n, k), np.int64)
    near = np.zeros((n, k))  # near[i, t] = C_ic − ‖x_i‖² for c = cand[i, t] (list units)
    thr = np.full(n, -np.inf)  # list units
    hv = np.empty(m)
    hi = np.empty(m, np.int64)
    lspan = np.full(n, -1.0)  # the m smallest values' spread at a row's last list build
    idx = np.empty(n, np.int64)
    vals = buf[:n]
    row_keys = keys[:n]
    buf[n] = np.inf
    top = keys[n]  # the key of +inf, above every finite value's
    bmin = np.empty_like(keys[:nb])
    # the values round like the shared parts w_j: the resolution check leaves out the
    # farthest 1/64 of the objects (heavy tails), whose values may round coarser, as a far
    # row's do
    q = n - 1 - n // 64
    w, off, pmin, floor = _first_frame(
        x, ym2, yy, prices, eps_final, q, buf, keys, bmin, top, roundoff
    )
    eps = eps0
    stuck = 0
    total = 0
    limit = first_budget
    # a float32 run that cannot resolve ε hands over to float64; a float64 run (no finer
    # precision left) first takes its frame again, twice at most
    reframes = 2 if roundoff < 2.0**-30 else 0
    while True:
        # prices are up to a constant: one that would round the rises of ε away is taken off
        pmin = _rebase(prices, pmin, thr, eps)
        spread = max(_bulk(w, q), floor)
        if 16.0 * roundoff * spread > eps:  # the shared part of the values hides ε
            if reframes > 0:  # taken again about the prices reached, where that halves it
                pmin, floor = _narrower_frame(
                    x, ym2, yy, prices, w, off, q, pmin, floor, 0.5 * spread, buf, keys, bmin,
                    top, roundoff,
                )  # fmt: skip
                spread = max(_bulk(w, q), floor)
            reframes -= 1
            if 16.0 * roundoff * spread > eps:
                return cand, assigned, False, eps, total
        nfree = 0
        for i in range(n):  # a new phase: keep the objects still within ε of the best
            j = assigned[i]
            if j >= 0:
                best = 0.0
                if not grouped[i]:
                    best = _list_best_two(near, prices, cand, i)[0]
                if grouped[i] or not best <= thr[i]:  # (grouped: the best outside its group)
                    _row_values(ym2, x[i], off[i], w, vals)
                    if grouped[i]:
                        _mask_group(group[i], held_by, vals)
                    keys[n] = _block_minima(row_keys, bmin, top)[0]
                    best = np.float64(buf[n]) + pmin - off[i]
                if _row_cost(x, i, ym2, yy, j) + prices[j] <= best + eps:
                    continue
                owner[j] = -1
                held_by[j] = -1
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
        bids = 0
        while nfree > 0:
            i = queue[head]
            head += 1
            if head == n:
                head = 0
            b1 = np.inf
            b2 = np.inf
            j1 = 0
            rescan = True
            if eps <= list_eps:
                b1, b2, j1 = _list_best_two(near, prices, cand, i)
                rescan = not b2 <= thr[i]
            left = n
            if rescan or grouped[i]:
                _row_values(ym2, x[i], off[i], w, vals)
                if grouped[i]:
                    left = _mask_group(group[i], held_by, vals)
                if eps > list_eps:  # coarse phases: the two best objects only
                    j1, keys[n] = _best_two(row_keys, bmin, top)
                    b1 = np.float64(vals[j1])
                    b2 = np.float64(buf[n])
                    thr[i] = -np.inf
                else:  # the m smallest values: from a guessed bound, else every block
                    k1, jb = _block_minima(row_keys, bmin, top)
                    got = -1
                    if lspan[i] > 0.0 and list_gap > 0.0:
                        keys[n] = k1
                        low = np.float64(buf[n])
                        got = _smallest_below(buf, keys, low, list_gap * lspan[i], hv, hi, idx)
                    cnt = max(got, 0)
                    for bb in range(nb + 1 if got < 0 else 0):
                        b = jb if bb == 0 else bb - 1
                        if bb > 0 and b == jb:
                            continue
                        if cnt == m:
                            keys[n] = bmin[b]
                            if np.float64(buf[n]) >= hv[k]:
                                continue
                        s = b * _BLOCK
                        e = min(s + _BLOCK, n)
                        for j in range(s, e):
                            val = np.float64(vals[j])
                            if cnt < m or val < hv[k]:
                                cnt = _insert_smallest(val, j, cnt, hv, hi)
                    lspan[i] = hv[k] - hv[0]
                    for t in range(k):
                        cand[i, t] = hi[t]
                        near[i, t] = _row_cost(x, i, ym2, yy, hi[t])
                    # (a grouped row's list leaves out its group's objects: it rescans)
                    thr[i] = -np.inf if grouped[i] else hv[k] + pmin - off[i]
                    b1 = hv[0]
                    b2 = hv[1]
                    j1 = hi[0]
            if left == 1:  # one object outside the row's group is left: no second best
                b2 = b1
            prices[j1] += b2 - b1 + eps
            before = w[j1]
            w[j1] = yy[j1] + (prices[j1] - pmin)
            if w[j1] == before:  # the rise is below the resolution of the values
                stuck += 1
                if stuck > 4 * n:  # the values cannot tell the objects apart: give up
                    return cand, assigned, False, eps, total
            tail, nfree = _take(i, j1, owner, assigned, queue, tail, nfree)
            held_by[j1] = group[i]
            bids += 1
            total += 1
            if bids > late_bids and eps <= late_eps:  # a late price war: end at a coarser ε
                eps *= theta
                eps_final = eps
                late_eps = -1.0
            if bids > limit and raises > 0:  # a price war at too small an ε: coarsen it
                eps *= theta
                raises -= 1
                bids = 0
        limit = budget
        if gstart.shape[0] <= n:  # some rows are identical
            _level_groups(x, ym2, yy, prices, pmin, w, assigned, gstart, members)
        if eps <= eps_final:
            break
        eps = max(eps / theta, eps_final)
    return cand, assigned, True, eps, total


_HELPERS = (  # callees first
    "_row_values",
    "_bulk",
    "_block_minima",
    "_best_two",
    "_list_best_two",  # the bidding steps shared with the matrix auction (_kernels)
    "_insert_smallest",
    "_take",
    "_mask_group",
    "_rebase",
    "_squared_norm",
    "_narrower_frame",
    "_first_frame",
    "_row_cost",
    "_level_groups",
    "_smallest_below",
)
_KERNELS: dict[str, Callable[..., Any]] = {}


def _point_kernel(name: str) -> Callable[..., Any] | None:
    """The numba-compiled kernel ``_<name>_kernel`` of this module, after its helpers
    (:func:`~._kernels._compile_in`); ``None`` without numba."""
    return _compile_in(globals(), name, _KERNELS, _HELPERS)
