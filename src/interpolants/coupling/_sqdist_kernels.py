r"""The float64 kernels of the certified assignment from points
(:meth:`AuctionSolver.certified_points <interpolants.coupling.AuctionSolver.certified_points>`),
for C_ij = ‖x_i − y_j‖²: the range of C, the warm prices' c-transform, the sparse candidate
pairs, the potentials on them, the dual check over all n² pairs, and the cheapest pairs of a
row by reduced cost, each evaluating C in float64 from the points (no n×n matrix).

Each ``_<name>_kernel`` is a plain Python function in numba's subset; :func:`_sqdist_kernel`
compiles it on first use, after the helpers it calls (``_HELPERS``), and returns ``None``
without numba.
"""

from collections.abc import Callable
from typing import Any

import numpy as np

from ._kernels import _compile_in, _insert_smallest

__all__: list[str] = []


def _sqdist(x: Any, i: Any, y: Any, j: Any) -> Any:
    """‖x_i − y_j‖² in float64."""
    s = 0.0
    for t in range(x.shape[1]):
        dl = np.float64(x[i, t]) - np.float64(y[j, t])
        s += dl * dl
    return s


def _sqdist_range_kernel(x: Any, y: Any) -> Any:
    """(min, max) of ‖x_i − y_j‖² over all pairs, float64. Plain Python; compiled by numba."""
    lo = np.inf
    hi = -np.inf
    for i in range(x.shape[0]):
        for j in range(y.shape[0]):
            s = _sqdist(x, i, y, j)
            lo = min(lo, s)
            hi = max(hi, s)
    return lo, hi


def _sqdist_colmin_kernel(x: Any, rows: Any, y: Any, shift: Any, out: Any) -> None:
    """out_j = min over t of ‖x_rows[t] − y_j‖² − shift_t (float64), the c-transform of the
    row potentials ``shift`` of a subsample. Plain Python; compiled by numba."""
    out[:] = np.inf
    for t in range(rows.shape[0]):
        i = rows[t]
        for j in range(y.shape[0]):
            v = _sqdist(x, i, y, j) - shift[t]
            if v < out[j]:
                out[j] = v


def _sqdist_edges_kernel(x: Any, y: Any, cand: Any, assigned: Any) -> Any:
    """The sparse edge set {(i, c): c in cand[i]} ∪ {(i, assigned[i])} as CSR by row (column
    indices sorted, unique) with the float64 costs ‖x_i − y_c‖². Plain Python; compiled."""
    n, k = cand.shape
    indptr = np.zeros(n + 1, np.int64)
    cols = np.empty(n * (k + 1), np.int64)
    cost = np.empty(n * (k + 1))
    tmp = np.empty(k + 1, np.int64)
    pos = 0
    for i in range(n):
        for t in range(k):
            tmp[t] = cand[i, t]
        tmp[k] = assigned[i]
        tmp.sort()
        last = -1
        for t in range(k + 1):
            c = tmp[t]
            if c != last:
                cols[pos] = c
                cost[pos] = _sqdist(x, i, y, c)
                pos += 1
                last = c
        indptr[i + 1] = pos
    return indptr, cols[:pos].copy(), cost[:pos].copy()


def _sparse_potentials_kernel(
    indptr: Any, cols: Any, cost: Any, perm: Any, v: Any, slack: Any
) -> Any:
    """Lower the column potentials ``v`` (in place) until v_j ≤ v_perm(i) + C_ij − C_i,perm(i)
    + ``slack``_j on every edge (i, j) of the CSR set (shortest paths in the residual graph of
    ``perm``, queue-based Bellman–Ford). False if they do not settle: a column whose last
    lowering came along a path of n edges closes a cycle of negative length (``perm`` is not
    optimal on the edges). A path's length, not a count of relaxations, decides it, so that
    near-ties (long chains of almost-zero reduced costs) settle however many rounds they
    take. Plain Python; compiled by numba."""
    n = perm.shape[0]
    row_of = np.empty(n, np.int64)
    own = np.empty(n)
    for i in range(n):
        row_of[perm[i]] = i
        for e in range(indptr[i], indptr[i + 1]):
            if cols[e] == perm[i]:
                own[i] = cost[e]
    queued = np.ones(n, np.bool_)
    queue = np.arange(n)
    length = np.zeros(n, np.int64)  # edges on the path that last lowered each column
    head = 0
    size = n
    while size > 0:
        c = queue[head]
        head = head + 1 if head + 1 < n else 0
        size -= 1
        queued[c] = False
        i = row_of[c]
        for e in range(indptr[i], indptr[i + 1]):
            j = cols[e]
            val = v[c] + (cost[e] - own[i])  # exactly v[c] on the row's own edge
            if val < v[j] - slack[j]:
                v[j] = val
                length[j] = length[c] + 1
                if length[j] >= n:
                    return False
                if not queued[j]:
                    queued[j] = True
                    tail = head + size
                    queue[tail - n if tail >= n else tail] = j
                    size += 1
    return True


def _row_sqdist(x: Any, i: Any, yt: Any, buf: Any) -> None:
    """buf_j = ‖x_i − y_j‖² in float64, ``yt`` = yᵀ (d, n), summed over the coordinates in
    order (the one evaluation of C shared by the check and the search for violations)."""
    d, n1 = yt.shape
    for j in range(n1):
        buf[j] = 0.0
    for t in range(d):
        a = x[i, t]
        for j in range(n1):
            dl = a - yt[t, j]
            buf[j] += dl * dl


def _key_min(buf: Any, bits: Any) -> Any:
    """min_j buf_j (float64), taken on order-preserving int64 keys of the bit patterns (an
    integer minimum vectorises; the float one does not); ``bits`` is ``buf``'s int64 view."""
    top = np.int64(9223372036854775807)
    low = top
    for j in range(bits.shape[0]):
        b = bits[j]
        low = min(low, b ^ ((b >> 63) & top))  # negative floats: flip the magnitude bits
    one = np.empty(1, np.int64)
    one[0] = low ^ ((low >> 63) & top)
    return one.view(np.float64)[0]


def _sqdist_excess_kernel(
    x: Any, yt: Any, v: Any, w: Any, u: Any, thr: Any, excess: Any, bad: Any
) -> None:
    """Per row i of the dual check over all n² pairs, C from the points in float64 (``yt`` =
    yᵀ (d, n)): ``excess``_i = u_i − min_j (C_ij − v_j) (the dual violation) and ``bad``_i =
    thr_i − min_j (C_ij + w_j) (> 0 iff a pair violates by more than its tolerance, for
    w_j = −v_j + τ_j and thr_i = u_i − τ_i). Plain Python; compiled by numba."""
    n1 = yt.shape[1]
    dist = np.empty(n1)
    buf = np.empty(n1)
    bits = buf.view(np.int64)
    for i in range(x.shape[0]):
        _row_sqdist(x, i, yt, dist)
        for j in range(n1):
            buf[j] = dist[j] - v[j]
        excess[i] = u[i] - _key_min(buf, bits)
        for j in range(n1):
            buf[j] = dist[j] + w[j]
        bad[i] = thr[i] - _key_min(buf, bits)


def _sqdist_nearest_kernel(x: Any, y: Any, v: Any, out: Any) -> None:
    """out[i] = the columns j of the k = out.shape[1] least ‖x_i − y_j‖² − v_j (float64),
    in increasing order (k ≤ the number of columns). Plain Python; compiled by numba."""
    k = out.shape[1]
    hv = np.empty(k)
    hi = np.empty(k, np.int64)
    for i in range(x.shape[0]):
        cnt = 0
        for j in range(y.shape[0]):
            val = _sqdist(x, i, y, j) - v[j]
            if cnt < k or val < hv[k - 1]:
                cnt = _insert_smallest(val, j, cnt, hv, hi)
        for t in range(k):
            out[i, t] = hi[t]


def _sqdist_violations_kernel(
    x: Any, yt: Any, rows: Any, w: Any, thr: Any, most: Any, room: Any
) -> Any:
    """The pairs (i, j), i in ``rows``, with C_ij + w_j < thr_i (C as in the check): all of a
    row's where it has at most ``most``, else its ``most`` with the least C_ij + w_j (the most
    violated). Returns (their rows, their columns, True), or two empty arrays and False as
    soon as they number more than ``room``. Plain Python; compiled by numba."""
    n1 = yt.shape[1]
    dist = np.empty(n1)
    over = np.empty(n1)
    at = np.empty(n1, np.int64)
    out_r: list[int] = []
    out_c: list[int] = []
    for t in range(rows.shape[0]):
        i = rows[t]
        _row_sqdist(x, i, yt, dist)
        cnt = 0
        for j in range(n1):
            v = dist[j] + w[j]
            if v < thr[i]:
                over[cnt] = v
                at[cnt] = j
                cnt += 1
        if cnt > most:  # the most violated only
            keep = np.sort(at[:cnt][np.argsort(over[:cnt], kind="mergesort")[:most]])
        else:
            keep = at[:cnt]
        if len(out_r) + keep.shape[0] > room:
            return np.empty(0, np.int64), np.empty(0, np.int64), False
        for s in range(keep.shape[0]):
            out_r.append(i)
            out_c.append(keep[s])
    return np.array(out_r, np.int64), np.array(out_c, np.int64), True


_HELPERS = ("_sqdist", "_row_sqdist", "_key_min", "_insert_smallest")  # callees first
_KERNELS: dict[str, Callable[..., Any]] = {}


def _sqdist_kernel(name: str) -> Callable[..., Any] | None:
    """The numba-compiled kernel ``_<name>_kernel`` of this module, after its helpers
    (:func:`~._kernels._compile_in`); ``None`` without numba."""
    return _compile_in(globals(), name, _KERNELS, _HELPERS)
