r"""The numba kernels of the certified assignment (:class:`~interpolants.coupling.AuctionSolver`).

Each ``_<name>_kernel`` is a plain Python function written in numba's subset; :func:`_compiled`
compiles it on first use (cached on disk where the package folder is writable) and returns
``None`` when numba is not installed, so the callers can fall back to numpy or raise.
"""

import importlib.util
import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

__all__: list[str] = []


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
