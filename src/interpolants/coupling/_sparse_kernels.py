r"""The CPU kernels of the truncated-kernel Sinkhorn stages (``_sparse_sinkhorn``).

A truncated kernel is a CSR support: row offsets ``crow``, column indices ``col`` and the costs
``c`` of its entries, row-major. Between two stages the solver re-balances the potentials
on it (a log-domain iteration), drops entries, re-orders it by columns and evaluates its
entries; the first support and the final check come from one pass over the dense cost. On
the CPU each of these is one or two passes of a numba kernel here, where the torch
formulation (kept for the other devices, in ``_sparse_loop``) takes one tensor pass per
elementwise operation, gather and mask over the entries (the comparison is in
``benchmarks/results/design_notes.md``). The iterations themselves stay torch's CSR
products, which the fused numba loop measured here did not beat.

Each ``_<name>_kernel`` is a plain Python function in numba's subset, compiled on first use
by :func:`~._kernels._compile_in`; the wrappers below take and return torch tensors (CPU,
float64 potentials and entry costs) and are only called when :func:`native` says so.
"""

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ._kernels import _compile_in

__all__: list[str] = []

ENABLED = True  # the tests switch this off to run the torch formulation on the CPU
# below this many cost entries the torch passes take milliseconds and loading the compiled
# kernels (~0.35 s a process from numba's cache, ~2 s to compile) would not pay
MIN_ENTRIES = 1 << 22


def _log_step_kernel(
    crow: Any,
    col: Any,
    c: Any,
    f: Any,
    g: Any,
    log_a: Any,
    log_b: Any,
    eps: Any,
    f1: Any,
    g1: Any,
) -> None:
    """One exact log-domain Sinkhorn iteration on the support: f1 = ε(log a − LSE_j((g − C)/ε))
    over each row's entries, then g1 = ε(log b − LSE_i((f1 − C)/ε)) over each column's, each
    log-sum-exp shifted by its largest term. Every row and column must have an entry."""
    n0 = crow.shape[0] - 1
    n1 = g.shape[0]
    inv = 1.0 / eps
    for i in range(n0):
        lo = crow[i]
        hi = crow[i + 1]
        m = g[col[lo]] - c[lo]
        for k in range(lo + 1, hi):
            m = max(m, g[col[k]] - c[k])
        s = 0.0
        for k in range(lo, hi):
            s += math.exp((g[col[k]] - c[k] - m) * inv)
        f1[i] = eps * log_a[i] - m - eps * math.log(s)
    top = np.full(n1, -1e300)
    for i in range(n0):
        fi = f1[i]
        for k in range(crow[i], crow[i + 1]):
            j = col[k]
            top[j] = max(top[j], fi - c[k])
    sums = np.zeros(n1)
    for i in range(n0):
        fi = f1[i]
        for k in range(crow[i], crow[i + 1]):
            j = col[k]
            sums[j] += math.exp((fi - c[k] - top[j]) * inv)
    for j in range(n1):
        g1[j] = eps * log_b[j] - top[j] - eps * math.log(sums[j])


def _values_kernel(
    crow: Any,
    col: Any,
    c: Any,
    f: Any,
    g: Any,
    eps: Any,
    cut: Any,
    order: Any,
    out: Any,
    out_t: Any,
    row_sums: Any,
) -> None:
    """out_k = exp(z_k), z_k = (f_i + g_j − c_k)/ε, or 0 where z_k ≤ ``cut``; out_t its
    column-major copy (out_t[m] = out[order[m]]) and row_sums the rows' totals."""
    n0 = crow.shape[0] - 1
    inv = 1.0 / eps
    for i in range(n0):
        fi = f[i]
        s = 0.0
        for k in range(crow[i], crow[i + 1]):
            z = (fi + g[col[k]] - c[k]) * inv
            v = math.exp(z) if z > cut else 0.0
            out[k] = v
            s += v
        row_sums[i] = s
    for m in range(order.shape[0]):
        out_t[m] = out[order[m]]


def _transpose_kernel(crow: Any, col: Any, ccol: Any, order: Any, row_idx: Any) -> None:
    """The column-major order of a CSR support by counting sort (stable: rows ascending in
    each column): ``order`` maps column-major positions to row-major ones, ``ccol`` gets the
    column offsets and ``row_idx`` each column-major entry's row."""
    n0 = crow.shape[0] - 1
    n1 = ccol.shape[0] - 1
    ccol[:] = 0
    for k in range(col.shape[0]):
        ccol[col[k] + 1] += 1
    for j in range(n1):
        ccol[j + 1] += ccol[j]
    nxt = ccol[:n1].copy()
    for i in range(n0):
        for k in range(crow[i], crow[i + 1]):
            j = col[k]
            p = nxt[j]
            nxt[j] = p + 1
            order[p] = k
            row_idx[p] = i


def _keep_kernel(
    crow: Any, col: Any, c: Any, f: Any, g: Any, bound: Any, keep: Any, n1: Any
) -> Any:
    """keep_k = f_i + g_j − c_k ≥ ``bound``; returns (kept entries, the fewest kept in a row,
    the fewest kept in a column)."""
    n0 = crow.shape[0] - 1
    per_col = np.zeros(n1, np.int64)
    total = 0
    fewest = col.shape[0]
    for i in range(n0):
        fi = f[i]
        kept = 0
        for k in range(crow[i], crow[i + 1]):
            j = col[k]
            y = fi + g[j] - c[k] >= bound
            keep[k] = y
            if y:
                kept += 1
                per_col[j] += 1
        total += kept
        fewest = min(fewest, kept)
    return total, fewest, per_col.min()


def _support_kernel(cost: Any, g: Any, lower: Any, relative: Any, order: Any) -> Any:
    """The entries of a dense cost with z_ij = g_j − C_ij ≥ t_i, row by row in the ``order``
    of the cost's rows (row k of the result is cost row order[k]): t_k = ``lower[k]``, or with
    ``relative`` max_j z_ij + ``lower[0]``. Returns (rows k, cols (int32), costs in float64,
    the number of empty columns, the thresholds t); rows is empty if a row is. Two passes:
    the thresholds and counts (vectorised), then the entries, without branches."""
    n0, n1 = cost.shape
    thresholds = np.empty(n0, cost.dtype)
    counts = np.empty(n0, np.int64)
    nnz = 0
    for i in range(n0):
        row = cost[order[i]]
        if relative:
            m = g[0] - row[0]
            for j in range(1, n1):
                m = max(m, g[j] - row[j])
            t = m + lower[0]
        else:
            t = lower[i]
        thresholds[i] = t
        kept = 0
        for j in range(n1):
            kept += g[j] - row[j] >= t
        if kept == 0:
            empty_rows = np.empty(0, np.int32)
            return empty_rows, empty_rows, np.empty(0, np.float64), n1, thresholds
        counts[i] = kept
        nnz += kept
    rows = np.empty(nnz, np.int32)  # indices below n0, n1 (< 2³¹)
    cols = np.empty(nnz + n1, np.int32)  # room for the unconditional writes of the last row
    vals = np.empty(nnz, np.float64)
    per_col = np.zeros(n1, np.int64)
    k = 0
    for i in range(n0):
        row = cost[order[i]]
        t = thresholds[i]
        start = k
        for j in range(n1):  # j is written always and kept by advancing k
            cols[k] = j
            k += g[j] - row[j] >= t
        k = start + min(k - start, counts[i])  # never past the first pass's count
        for p in range(start, k):
            j = cols[p]
            rows[p] = i
            vals[p] = row[j]
            per_col[j] += 1
    empty = 0
    for j in range(n1):
        empty += per_col[j] == 0
    return rows[:k], cols[:k], vals[:k], empty, thresholds


_KERNELS: dict[str, Callable[..., Any]] = {}


def _kernel(name: str) -> Callable[..., Any] | None:
    """The numba-compiled ``_<name>_kernel`` of this module; ``None`` without numba."""
    return _compile_in(globals(), name, _KERNELS)


def native(cost: Tensor) -> bool:
    """Whether the kernels here serve the problem of this dense ``cost``: on the CPU, with
    numba, from ``MIN_ENTRIES`` entries."""
    if not (ENABLED and cost.device.type == "cpu" and cost.numel() >= MIN_ENTRIES):
        return False
    return _kernel("log_step") is not None


def _np(t: Tensor) -> Any:
    return t.detach().contiguous().numpy()


def log_step(
    crow: Tensor,
    col: Tensor,
    c: Tensor,
    f: Tensor,
    g: Tensor,
    log_a: Tensor,
    log_b: Tensor,
    eps: float,
) -> tuple[Tensor, Tensor]:
    """One exact log-domain Sinkhorn iteration on the CSR support (see the kernel)."""
    f1, g1 = torch.empty_like(f), torch.empty_like(g)
    kernel = _kernel("log_step")
    assert kernel is not None
    arrays = (_np(crow), _np(col), _np(c), _np(f), _np(g), _np(log_a), _np(log_b))
    kernel(*arrays, eps, f1.numpy(), g1.numpy())
    return f1, g1


def values(
    crow: Tensor,
    col: Tensor,
    c: Tensor,
    f: Tensor,
    g: Tensor,
    eps: float,
    cut: float,
    order: Tensor,
    dtype: torch.dtype,
) -> tuple[Tensor, Tensor, Tensor]:
    """The kernel's entries exp((f_i + g_j − c_k)/ε) (0 at or below e^cut), row-major and
    column-major, and its row sums, in ``dtype`` (evaluated in float64)."""
    out, out_t = torch.empty_like(c, dtype=dtype), torch.empty_like(c, dtype=dtype)
    sums = torch.empty_like(f, dtype=dtype)
    kernel = _kernel("values")
    assert kernel is not None
    kernel(
        _np(crow), _np(col), _np(c), _np(f), _np(g), eps, cut, _np(order),
        out.numpy(), out_t.numpy(), sums.numpy(),
    )  # fmt: skip
    return out, out_t, sums


def transpose(crow: Tensor, col: Tensor, n1: int) -> tuple[Tensor, Tensor, Tensor]:
    """(order, column offsets, rows in column-major order) of a CSR support (see the kernel),
    in ``col``'s index dtype."""
    nnz = col.numel()
    ccol = torch.empty(n1 + 1, dtype=col.dtype)
    order = torch.empty(nnz, dtype=col.dtype)
    row_idx = torch.empty(nnz, dtype=col.dtype)
    kernel = _kernel("transpose")
    assert kernel is not None
    kernel(_np(crow), _np(col), ccol.numpy(), order.numpy(), row_idx.numpy())
    return order, ccol, row_idx


def keep(
    crow: Tensor, col: Tensor, c: Tensor, f: Tensor, g: Tensor, bound: float, n1: int
) -> tuple[Tensor, int, int, int]:
    """The mask f_i + g_j − c_k ≥ ``bound`` of the entries, how many it keeps, and the fewest
    it keeps in a row and in a column."""
    mask = torch.empty(col.numel(), dtype=torch.bool)
    kernel = _kernel("keep")
    assert kernel is not None
    total, row_min, col_min = kernel(
        _np(crow), _np(col), _np(c), _np(f), _np(g), bound, mask.numpy(), n1
    )
    return mask, int(total), int(row_min), int(col_min)


def support(
    cost: Tensor, g: Tensor, lower: Tensor, relative: bool, order: Tensor
) -> tuple[Tensor, Tensor, Tensor, Tensor] | None:
    """The entries of the dense ``cost`` with g_j − C_ij ≥ t_k (t = ``lower``, or each row's
    maximum + ``lower[0]`` when ``relative``), row k being cost row ``order[k]``, as (rows k,
    cols (int32), costs in float64, t), row-major; ``None`` if a row or a column would be
    empty. ``g`` and ``lower`` in the cost's dtype."""
    kernel = _kernel("support")
    assert kernel is not None
    rows, cols, vals, empty, t = kernel(_np(cost), _np(g), _np(lower), relative, _np(order))
    if rows.shape[0] == 0 or empty:
        return None
    as_torch = torch.from_numpy
    return as_torch(rows), as_torch(cols), as_torch(vals), as_torch(t)
