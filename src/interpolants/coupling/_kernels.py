r"""The numba kernels of the certified assignment (:class:`~interpolants.coupling.AuctionSolver`).

Each ``_<name>_kernel`` is a plain Python function written in numba's subset; :func:`_compiled`
compiles it on first use (cached on disk where the package folder is writable) and returns
``None`` when numba is not installed, so the callers can fall back to numpy or raise.
"""

import importlib.util
import inspect
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

__all__: list[str] = []


def _list_best_two(near: Any, prices: Any, cand: Any, i: Any) -> Any:
    """(best, second best, best object) of person i's candidate list: the values
    near[i, t] + prices[cand[i, t]]. Plain Python; compiled with the auction kernels."""
    b1 = np.inf
    b2 = np.inf
    j1 = 0
    for t in range(cand.shape[1]):
        val = near[i, t] + prices[cand[i, t]]
        if val < b2:
            if val < b1:
                b2 = b1
                b1 = val
                j1 = cand[i, t]
            else:
                b2 = val
    return b1, b2, j1


def _insert_smallest(val: Any, j: Any, cnt: Any, hv: Any, hi: Any) -> Any:
    """Insert (val, j) into the sorted ``hv``/``hi`` holding the ``cnt`` smallest values seen
    (at most m = len(hv)); the caller tests first that it belongs (cnt < m or val < hv[m − 1]).
    Returns the new count. Plain Python; compiled with the auction kernels."""
    m = hv.shape[0]
    t = cnt if cnt < m else m - 1
    if cnt < m:
        cnt += 1
    while t > 0 and hv[t - 1] > val:
        hv[t] = hv[t - 1]
        hi[t] = hi[t - 1]
        t -= 1
    hv[t] = val
    hi[t] = j
    return cnt


def _take(i: Any, j: Any, owner: Any, assigned: Any, queue: Any, tail: Any, nfree: Any) -> Any:
    """Person i takes object j; its previous owner, if any, joins the circular ``queue`` of
    free persons at ``tail``. Returns (tail, nfree). Plain Python; compiled with the auction
    kernels."""
    prev = owner[j]
    owner[j] = i
    assigned[i] = j
    if prev >= 0:
        assigned[prev] = -1
        queue[tail] = prev
        tail += 1
        if tail == queue.shape[0]:
            tail = 0
    else:
        nfree -= 1
    return tail, nfree


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
    object outside the list can be better: the bids are the same as with full scans). The
    list's costs are kept contiguously beside it (one cache line per list bid rather than k),
    and a phase's opening check reads the list when its minimum is at most that threshold (the
    row's minimum is then the list's), scanning the row only otherwise.

    ``prices`` (float64, ``(n,)``) are the starting prices, updated in place. Returns the
    candidate lists ``(n, k)``.
    Plain Python here; :func:`_compiled` compiles it (the source is numba's subset).
    """
    n = cost.shape[0]
    m = k + 1
    owner = np.full(n, -1, np.int64)
    queue = np.empty(n, np.int64)
    cand = np.zeros((n, k), np.int64)
    near = np.zeros((n, k), cost.dtype)  # near[i, t] = cost[i, cand[i, t]], read contiguously
    thr = np.full(n, -np.inf)
    hv = np.empty(m)  # the m = k + 1 smallest values of a row during a rescan, sorted
    hi = np.empty(m, np.int64)
    eps = eps0
    assigned = np.full(n, -1, np.int64)
    while True:
        # a new phase: persons whose object is still within ε of their best keep it
        nfree = 0
        for i in range(n):
            j = assigned[i]
            if j >= 0:
                row = cost[i]
                # the list's minimum is the row's when it is ≤ thr
                best = _list_best_two(near, prices, cand, i)[0]
                if not best <= thr[i]:
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
                b1, b2, j1 = _list_best_two(near, prices, cand, i)
                if not b2 <= thr[i]:  # an object outside the list may be better: rescan
                    cnt = 0
                    for j in range(n):  # the m smallest values, by insertion
                        val = row[j] + prices[j]
                        if cnt < m or val < hv[k]:
                            cnt = _insert_smallest(val, j, cnt, hv, hi)
                    for t in range(k):
                        cand[i, t] = hi[t]
                        near[i, t] = row[hi[t]]
                    thr[i] = hv[k]
                    b1 = hv[0]
                    b2 = hv[1]
                    j1 = hi[0]
            prices[j1] += b2 - b1 + eps
            tail, nfree = _take(i, j1, owner, assigned, queue, tail, nfree)
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


def _span_kernel(matrix: Any) -> Any:
    """(min, max, all finite, all exact in float32) of a float64 matrix in one read.
    Plain Python; compiled by numba (without fastmath: it tests for NaN and rounding)."""
    lo = np.inf
    hi = -np.inf
    finite = True
    exact = True
    n0, n1 = matrix.shape
    for i in range(n0):
        for j in range(n1):
            val = matrix[i, j]
            if val < lo:
                lo = val
            if val > hi:
                hi = val
            if not val - val == 0.0:  # NaN or ±inf
                finite = False
            if exact and np.float64(np.float32(val)) != val:
                exact = False
    return lo, hi, finite, exact


def _squeeze_kernel(matrix: Any, half: Any, row: Any) -> None:
    """Rewrite the float64 ``matrix`` (n, n) as float32 into the first half of its own buffer
    (``half``: its bytes as a flat float32 array), row by row through ``row`` (n,) float32:
    row i lands on bytes of rows ≤ i, already read. Plain Python; compiled by numba."""
    n0, n1 = matrix.shape
    for i in range(n0):
        for j in range(n1):
            row[j] = matrix[i, j]
        base = i * n1
        for j in range(n1):
            half[base + j] = row[j]


def _unsqueeze_reduce_kernel(half: Any, matrix: Any, prices: Any, u: Any, row: Any) -> None:
    """Undo :func:`_squeeze_kernel` and reduce by the prices in one pass, last row first (row i
    of float64 lands on float32 rows 2i, 2i + 1 ≥ i, already read): matrix_ij = C_ij + p_j − u_i
    with u_i = min_j (C_ij + p_j). ``row``: (n,) float64. Plain Python; compiled by numba."""
    n0, n1 = matrix.shape
    for i in range(n0 - 1, -1, -1):
        base = i * n1
        low = np.inf
        for j in range(n1):
            val = np.float64(half[base + j]) + prices[j]
            row[j] = val
            if val < low:
                low = val
        for j in range(n1):
            matrix[i, j] = row[j] - low
        u[i] = low


_KERNELS: dict[str, Callable[..., Any]] = {}
_HELPERS = ("_list_best_two", "_insert_smallest", "_take")  # shared with _point_kernels


def _jit(function: Callable[..., Any], *, fast: bool) -> Callable[..., Any]:
    """``function`` (a plain Python function in numba's subset) compiled by numba, cached on
    disk where the package folder is writable; ``fast``: with fastmath (lets the min
    reductions vectorise where every value is finite)."""
    import numba  # type: ignore[import-untyped,unused-ignore]

    source = inspect.unwrap(function)
    try:
        compiled: Callable[..., Any] = numba.njit(cache=True, nogil=True, fastmath=fast)(source)
    except RuntimeError:  # no writable cache location: compile in memory only
        compiled = numba.njit(nogil=True, fastmath=fast)(source)
    return compiled


_LOCK = threading.Lock()


def _compile_in(
    scope: dict[str, Any],
    name: str,
    cache: dict[str, Callable[..., Any]],
    helpers: tuple[str, ...] = (),
    fast: bool = True,
) -> Callable[..., Any] | None:
    """The numba-compiled kernel ``_<name>_kernel`` of the module whose globals are ``scope``,
    kept in ``cache``; the module's ``helpers`` (callees first) are compiled before it, in
    place of the plain functions in ``scope`` and in the globals of the helpers that call
    them (which may live in other modules), so that compiled code can call them. ``None``
    without numba."""
    if name not in cache:
        if importlib.util.find_spec("numba") is None:
            return None
        with _LOCK:
            # (unwrapped: a checking decorator's wrapper has globals of its own)
            homes = [
                getattr(inspect.unwrap(scope[helper]), "__globals__", scope) for helper in helpers
            ]
            for helper in helpers:
                if helper not in cache:
                    plain = scope[helper]
                    cache[helper] = scope[helper] = _jit(plain, fast=True)
                    for home in homes:
                        if home.get(helper) is plain:
                            home[helper] = cache[helper]
            if name not in cache:
                cache[name] = _jit(scope[f"_{name}_kernel"], fast=fast)
    return cache[name]


def _compiled(name: str) -> Callable[..., Any] | None:
    """The numba-compiled kernel ``_<name>_kernel`` of this module (cached on disk where the
    package folder is writable); ``None`` without numba."""
    # the span kernel tests for non-finite values and float32 rounding: no fastmath
    return _compile_in(globals(), name, _KERNELS, _HELPERS, fast=name != "span")
