r"""Shortest augmenting paths on a sparse assignment problem, from a near-optimal start.

The certificate of :meth:`AuctionSolver.certified_points
<interpolants.coupling.AuctionSolver.certified_points>` solves the assignment on a sparse set of
candidate pairs, checks the potentials over every pair, adds the violated ones and solves
again. The second solve need not start from nothing: the permutation before the new pairs is
optimal on the old ones, and its column potentials v are dual feasible there. Only the rows
given new pairs lose their objects; each is then re-assigned by one shortest augmenting path
(Dijkstra on the reduced costs C_ij − u_i − v_j ≥ 0, the potentials updated after each path as
in Jonker and Volgenant's augmentation), which keeps the partial assignment optimal with
feasible duals, so that the last path leaves an optimal permutation on the new pair set. The
answer is checked like any other (the potentials are recomputed from it and tested over every
pair), so a path found on rounded reduced costs can cost at most a further round. Each path
may explore the whole pair set; a budget on the pairs labelled in a round bounds the work, and
past it the caller solves the round from nothing.

:func:`_augment_kernel` compiles ``_sparse_augment_kernel`` with numba (``None`` without).
"""

from collections.abc import Callable
from typing import Any

import numpy as np

from ._kernels import _compile_in

__all__: list[str] = []


def _heap_push(keys: Any, items: Any, size: Any, key: Any, item: Any) -> Any:
    """Push (key, item) on the binary min-heap held in ``keys[:size]``/``items[:size]``;
    returns the new size. Plain Python; compiled with the kernel."""
    pos = size
    while pos > 0:
        parent = (pos - 1) // 2
        if keys[parent] <= key:
            break
        keys[pos] = keys[parent]
        items[pos] = items[parent]
        pos = parent
    keys[pos] = key
    items[pos] = item
    return size + 1


def _heap_pop(keys: Any, items: Any, size: Any) -> Any:
    """Remove the least entry of the heap (the caller read it at index 0); returns the new
    size. Plain Python; compiled with the kernel."""
    size -= 1
    key = keys[size]
    item = items[size]
    pos = 0
    while True:
        child = 2 * pos + 1
        if child >= size:
            break
        if child + 1 < size and keys[child + 1] < keys[child]:
            child += 1
        if key <= keys[child]:
            break
        keys[pos] = keys[child]
        items[pos] = items[child]
        pos = child
    if size > 0:
        keys[pos] = key
        items[pos] = item
    return size


def _sparse_augment_kernel(
    indptr: Any, cols: Any, cost: Any, perm: Any, v: Any, free_rows: Any, budget: Any
) -> Any:
    """Re-assign ``free_rows`` by shortest augmenting paths on the CSR pair set (``indptr``,
    ``cols``, ``cost``: C_ij), the other rows keeping ``perm`` (a permutation on their pairs,
    optimal there, with column potentials ``v``: C_ij − u_i − v_j ≥ 0 up to rounding,
    u_i = C_i,perm(i) − v_perm(i)). ``perm`` and ``v`` are updated in place; a row listed
    twice is re-assigned once. Returns False, ``perm`` then not a permutation, where a row
    finds no free object (the pairs hold no perfect matching), where a row's object is not
    among its pairs, or once the searches have labelled more than ``budget`` pairs in all
    (each search may explore the whole pair set: the caller's solve from nothing then bounds
    the cost). Reduced costs below zero by rounding count as zero. Plain Python; compiled by
    numba."""
    n = perm.shape[0]
    row_of = np.full(n, -1, np.int64)
    for i in range(n):
        row_of[perm[i]] = i
    for t in range(free_rows.shape[0]):
        i = free_rows[t]
        if perm[i] >= 0:  # (a row listed twice is freed once)
            row_of[perm[i]] = -1
            perm[i] = -1
    dist = np.full(n, np.inf)
    pred = np.full(n, -1, np.int64)
    done = np.zeros(n, np.bool_)
    scanned = np.empty(n, np.int64)
    touched = np.empty(n, np.int64)
    keys = np.empty(cols.shape[0] + 1)
    items = np.empty(cols.shape[0] + 1, np.int64)
    work = 0
    for t in range(free_rows.shape[0]):
        f = free_rows[t]
        if perm[f] >= 0:  # listed twice: assigned already
            continue
        uf = np.inf
        for e in range(indptr[f], indptr[f + 1]):
            uf = min(uf, cost[e] - v[cols[e]])
        size = 0
        nscan = 0
        ntouch = 0
        i = f
        ui = uf
        d = 0.0
        sink = -1
        while True:
            work += indptr[i + 1] - indptr[i]
            if work > budget:
                return False
            for e in range(indptr[i], indptr[i + 1]):  # label the row's objects
                k = cols[e]
                if done[k]:
                    continue
                nd = d + max(cost[e] - v[k] - ui, 0.0)
                if nd < dist[k]:
                    if pred[k] < 0:
                        touched[ntouch] = k
                        ntouch += 1
                    dist[k] = nd
                    pred[k] = i
                    size = _heap_push(keys, items, size, nd, k)
            j = -1
            while size > 0:  # the nearest object not yet scanned
                d = keys[0]
                j = items[0]
                size = _heap_pop(keys, items, size)
                if not done[j] and d <= dist[j]:
                    break
                j = -1
            if j < 0:
                break
            done[j] = True
            scanned[nscan] = j
            nscan += 1
            i = row_of[j]
            if i < 0:  # a free object: the path ends here
                sink = j
                break
            own = -1  # u_i = C_ij − v_j on the row's own (tight) pair
            for e in range(indptr[i], indptr[i + 1]):
                if cols[e] == j:
                    own = e
                    break
            if own < 0:
                return False
            ui = cost[own] - v[j]
        if sink < 0:
            return False
        top = dist[sink]
        for s in range(nscan):  # the scanned objects' potentials: the duals stay feasible
            j = scanned[s]
            v[j] += dist[j] - top
        j = sink
        while True:  # flip the path
            i = pred[j]
            prev = perm[i]
            perm[i] = j
            row_of[j] = i
            if i == f:
                break
            j = prev
        for s in range(nscan):
            done[scanned[s]] = False
        for s in range(ntouch):
            dist[touched[s]] = np.inf
            pred[touched[s]] = -1
    return True


_HELPERS = ("_heap_push", "_heap_pop")
_KERNELS: dict[str, Callable[..., Any]] = {}


def _augment_kernel() -> Callable[..., Any] | None:
    """The numba-compiled ``_sparse_augment_kernel``; ``None`` without numba."""
    # no fastmath: the search compares with +inf (unlabelled objects)
    return _compile_in(globals(), "sparse_augment", _KERNELS, _HELPERS, fast=False)
