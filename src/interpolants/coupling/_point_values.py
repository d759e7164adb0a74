r"""A row's values in the point auction (``_point_kernels``) and the frame they are taken in.

The auction's values for row i are C_ij + p_j up to a constant of the row, computed from the
points in their precision (float32, else float64) as off_i + w_j − 2 x_i·y_j: the shared
parts w_j = ‖y_j‖² + p_j − c (c a constant of the prices, ``pmin`` in the kernel) and the
row's offset off_i keep them non-negative, so that their minima can be taken over their bit
patterns as integers, block by block (:func:`_row_values`, :func:`_block_minima`,
:func:`_best_two`, :func:`_smallest_below`). The frame (c and the offsets) decides how
finely those values resolve a rise of ε: :func:`_first_frame` chooses it at the start,
:func:`_narrower_frame` takes it about the median of ‖y_j‖² + p_j, with each row's least
value as its offset, where that narrows it, :func:`_rebase` takes a common part off the
prices, and :func:`_bulk` measures the spread that the resolution check compares with ε.

Plain Python functions in numba's subset; ``_point_kernels`` compiles them with the kernel
(``_kernels._compile_in``), callees first.
"""

from typing import Any

import numpy as np

from ._kernels import _insert_smallest

__all__: list[str] = []

_BLOCK = 256  # values per block of a row's minimum search


def _row_values(ym2: Any, xi: Any, off: Any, w: Any, vals: Any) -> None:
    """vals_j = max(``off`` + w_j − 2 x_i·y_j, 0) in the points' precision, ``ym2`` = −2 yᵀ
    (d, n), w_j = ‖y_j‖² + p_j − c (c a constant): C_ij + p_j − c − ‖x_i‖² + ``off``, ≥ 0 up
    to rounding for an offset at least max_j (2 x_i·y_j − w_j)."""
    d, n = ym2.shape
    if d == 2:
        a = xi[0]
        b = xi[1]
        for j in range(n):
            v = w[j] + off + a * ym2[0, j] + b * ym2[1, j]
            vals[j] = max(v, np.float32(0.0))
    else:
        for j in range(n):
            vals[j] = w[j] + off
        for t in range(d):
            c = xi[t]
            for j in range(n):
                vals[j] += c * ym2[t, j]
        for j in range(n):
            vals[j] = max(vals[j], np.float32(0.0))


def _block_minima(keys: Any, bmin: Any, top: Any) -> Any:
    """Per-block minima of the integer ``keys`` (bit patterns of non-negative floats, ``top``
    that of +inf, above every finite one) into ``bmin``; returns (the minimum, its block)."""
    n = keys.shape[0]
    nb = bmin.shape[0]
    full = n // _BLOCK
    for b in range(full):
        m = top
        base = b * _BLOCK
        for j in range(_BLOCK):
            m = min(m, keys[base + j])
        bmin[b] = m
    if nb > full:
        m = top
        for j in range(full * _BLOCK, n):
            m = min(m, keys[j])
        bmin[full] = m
    b1 = top
    jb = 0
    for b in range(nb):
        if bmin[b] < b1:
            b1 = bmin[b]
            jb = b
    return b1, jb


def _best_two(keys: Any, bmin: Any, top: Any) -> Any:
    """(j1, key of the second smallest value) for the row in ``keys``: j1 the first index of
    the smallest value, the second smallest over all other entries (ties count)."""
    n = keys.shape[0]
    nb = bmin.shape[0]
    k1, jb = _block_minima(keys, bmin, top)
    s = jb * _BLOCK
    e = min(s + _BLOCK, n)
    j1 = s
    for j in range(s, e):
        if keys[j] == k1:
            j1 = j
            break
    k2 = top
    for b in range(nb):
        if b != jb:
            k2 = min(k2, bmin[b])
    keys[j1] = top
    for j in range(s, e):
        k2 = min(k2, keys[j])
    keys[j1] = k1
    return j1, k2


def _bulk(w: Any, q: Any) -> Any:
    """The q-th smallest abs(w_j) (float64): the spread of all but the largest n − 1 − q."""
    return np.float64(np.partition(np.abs(w), q)[q])


def _smallest_below(
    buf: Any, keys: Any, low: Any, gap: Any, hv: Any, hi: Any, idx: Any
) -> Any:  # fmt: skip
    """The m = len(``hv``) smallest of the row's values ``buf[:n]`` into ``hv``/``hi``
    (sorted), from those within a guessed ``gap`` of the row's minimum ``low``: one counting
    pass over their integer ``keys`` (vectorised), one gathering pass, and insertion among
    the few gathered. The gap is doubled while it holds fewer than m values and halved while
    it holds more than 8m (three tries). Returns m, or −1 where no try fits (the caller then
    ranks the whole row). ``buf[n]`` is scratch (a bound and its key)."""
    n = buf.shape[0] - 1
    m = hv.shape[0]
    for _ in range(3):
        buf[n] = low + gap
        bound = keys[n]
        count = 0
        for j in range(n):
            count += 1 if keys[j] <= bound else 0
        if count < m:
            gap *= 2.0
            continue
        if count > 8 * m:
            gap *= 0.5
            continue
        count = 0
        for j in range(n):
            idx[count] = j
            count += 1 if keys[j] <= bound else 0
        got = 0
        for t in range(count):
            j = idx[t]
            val = np.float64(buf[j])
            if got < m or val < hv[m - 1]:
                got = _insert_smallest(val, j, got, hv, hi)
        return got
    return -1


def _rebase(prices: Any, pmin: Any, thr: Any, eps: Any) -> Any:
    """Where float64 rounding of the ``prices`` would hide a rise of ``eps`` (their least,
    s = min_j p_j, above 2⁴⁹·ε: from a cold start they all rise by many coarse ε), subtract
    s from them (an assignment's ε-complementary slackness holds for prices up to a
    constant) and from the rows' list thresholds ``thr`` (in units of C + p). Returns
    ``pmin`` less what was subtracted, so that the shared parts w_j = ‖y_j‖² + p_j − pmin
    stay as they are."""
    s = prices.min()
    if abs(s) * 2.0**-49 > eps:
        for j in range(prices.shape[0]):
            prices[j] -= s
        for i in range(thr.shape[0]):
            thr[i] -= s
        return pmin - s
    return pmin


def _squared_norm(xi: Any) -> Any:
    """‖x_i‖² of one row, accumulated in float64."""
    s = 0.0
    for t in range(xi.shape[0]):
        s += np.float64(xi[t]) * xi[t]
    return s


def _narrower_frame(
    x: Any, ym2: Any, yy: Any, prices: Any, w: Any, off: Any, q: Any, pmin: Any, floor: Any,
    bound: Any, buf: Any, keys: Any, bmin: Any, top: Any, roundoff: Any,
) -> Any:  # fmt: skip
    """(c, floor) of the frame about the median c of ‖y_j‖² + p_j where their spread about it
    (:func:`_bulk`, all but the largest n − 1 − ``q``) is below ``bound``: w_j =
    ‖y_j‖² + p_j − c in place, and each row's offset off_i its least value
    −min_j (w_j − 2 x_i·y_j) (one scan of every row; a few roundings added), so that every
    row's values start at about 0 and stay ≥ 0 as the prices rise; floor the offsets' spread
    (far objects can make the rows' least values large too). Elsewhere (``pmin``, ``floor``)
    and nothing changed. ``buf`` (n + 1,) and its integer view ``keys``, ``bmin`` and
    ``top`` as in :func:`_block_minima` (scratch)."""
    n = x.shape[0]
    shared = yy + prices
    centre = np.median(shared)
    if not _bulk(shared - centre, q) < bound:
        return pmin, floor
    ymax = np.sqrt(yy.max())
    vals = buf[:n]
    row_keys = keys[:n]
    wlow = 0.0
    for j in range(n):
        w[j] = shared[j] - centre
        wlow = min(wlow, np.float64(w[j]))
    for i in range(n):
        big = 2.0 * np.sqrt(_squared_norm(x[i])) * ymax - wlow  # ≥ max_j 2 x_i·y_j − w_j
        _row_values(ym2, x[i], big, w, vals)
        keys[n] = _block_minima(row_keys, bmin, top)[0]
        least = big - np.float64(buf[n])
        off[i] = least + 16.0 * roundoff * (abs(big) + abs(least))
    return centre, _bulk(off, q)


def _first_frame(
    x: Any, ym2: Any, yy: Any, prices: Any, eps_final: Any, q: Any, buf: Any, keys: Any,
    bmin: Any, top: Any, roundoff: Any,
) -> Any:  # fmt: skip
    """The frame the auction starts in: (w, off, c, floor) with w_j = ‖y_j‖² + p_j − c,
    c = min_j p_j (values only rise, so C + p − c stays ≥ 0), and each row's offset the
    smaller of ‖x_i‖² and 2‖x_i‖·max‖y‖ (both keep its values ≥ 0; for a far row the
    second, as its ‖x_i‖² rounded would swamp the differences of its values), floor 0.
    Where w spreads wider than the last ε ``eps_final`` can resolve (the spread of all but
    the largest n − 1 − ``q``, :func:`_bulk`) and wider than ‖y_j‖² + p_j about their
    median (a warm start prices far objects of heavy-tailed points far below the others,
    and p − min p carries that into every w_j), the frame of :func:`_narrower_frame`
    instead."""
    n = x.shape[0]
    off = np.empty_like(buf[:n])
    ymax = np.sqrt(yy.max())
    for i in range(n):
        s = _squared_norm(x[i])
        off[i] = min(s, 2.0 * np.sqrt(s) * ymax)
    pmin = prices.min()
    w = np.empty_like(off)
    for j in range(n):
        w[j] = yy[j] + (prices[j] - pmin)
    spread = _bulk(w, q)
    floor = 0.0
    if 16.0 * roundoff * spread > eps_final:
        pmin, floor = _narrower_frame(
            x, ym2, yy, prices, w, off, q, pmin, floor, spread, buf, keys, bmin, top, roundoff
        )
    return w, off, pmin, floor
