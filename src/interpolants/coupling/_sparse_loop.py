r"""Iterations on a truncated kernel: the sparse stages of ``_sparse_sinkhorn``.

A truncated kernel keeps the entries of K_ij = exp((f_i + g_j − C_ij)/ε) above a threshold
relative to their row's mass, as a CSR matrix and the CSR matrix of its transpose.
:func:`_dense_support` collects them in one pass over the dense cost (also the final dense
check of the row sums), :class:`_SparseLoop` runs :class:`~._sinkhorn_loop._Loop`'s
iterations on them: the log-domain rebalance between stages, the filter when ε halves, the
kernel's entries (float32 or float64, ``set_values``) and a float64 column update. On the
CPU, from ``_sparse_kernels.MIN_ENTRIES`` entries, the per-entry passes are the compiled
kernels of ``_sparse_kernels``; elsewhere the torch operations here.
"""

import math
import warnings
from typing import NamedTuple

import torch
from torch import Tensor

from . import _sparse_kernels as native
from ._sinkhorn_loop import _Loop

__all__: list[str] = []

WIDEN = 20.0  # extra margin (units of z) of a support rebuilt around moved potentials
REBUILDS = 3  # rebuilds in one run of the iterations
# a support is rebuilt once an entry left out may have reached e^−(θ − STALE_MARGIN) of its
# row's mass (a support cut at θ has no margin; the final dense check sees the rest)
STALE_MARGIN = 10.0


def _kept_fraction(cost: Tensor, f: Tensor, g: Tensor, eps: float, thr: float) -> float:
    """Fraction of entries with (f_i + g_j − C_ij)/ε ≥ thr, on ~256 evenly spaced rows."""
    rows = torch.arange(0, cost.shape[0], max(1, cost.shape[0] // 256), device=cost.device)
    z = torch.sub(g[None, :], cost.index_select(0, rows)).add_(_at(f, rows)[:, None])
    return float((z >= eps * thr).double().mean())


class _Support(NamedTuple):
    """Entries of a dense cost, row-major: what :func:`_dense_support` returns."""

    rows: Tensor
    cols: Tensor
    costs: Tensor  # C at them, in f's dtype
    sums: Tensor  # row sums of exp(z) over them (or f, when they were not asked for)
    # (P, Q): every entry left out has C_ij > P_i + Q_j (float64)
    bound: tuple[Tensor, Tensor]
    g: Tensor  # the column potentials of the sums (re-balanced when ``columns`` was given)


def _dense_support(
    cost: Tensor,
    f: Tensor,
    g: Tensor,
    eps: float,
    thr: float,
    row_sums: bool = False,
    relative: bool = False,
    columns: Tensor | None = None,
    order: tuple[Tensor, Tensor] | None = None,
) -> _Support | None:
    """The entries with z_ij = (f_i + g_j − C_ij)/ε ≥ thr, from one dense pass by row blocks.

    With ``order`` = (p, q⁻¹) the result, f, g and ``columns`` are in the local labels of
    :func:`_spatial_order`: local row k is cost row p_k, cost column j is local column q⁻¹_j
    (each row's entries are then not sorted by local column: :meth:`_SparseLoop.reset`
    sorts them).

    Returns them as a :class:`_Support`, or ``None`` if a row or a column would be empty.
    Entries left out are each below e^thr, so with thr = min log a − 40 − log n1 the row
    sums miss less than e^−40·a_i: below their float64 rounding, so these are the dense row
    sums. With ``relative``, thr is relative to each row's largest z instead (f then does not
    matter): this keeps every entry that has z ≥ log a_i + thr once the rows are re-balanced
    at ε (their largest z is then at most log a_i), from potentials balanced at another ε.
    The bound (P, Q) on the costs left out is P = −t − ε, Q = g for the mask g_j − C_ij ≥ t_i
    evaluated (the extra ε, one unit of z, covers the mask's rounding). With ``columns`` (the
    marginal b, for ``row_sums``) g is first re-balanced to the columns on these entries,
    g_j + ε log(b_j / Σ_i exp(z_ij)) (with thr as above, the dense plan's columns then sum to
    b up to rounding), and the row sums are those at the new g.
    """
    n0, n1 = cost.shape
    # the mask in the cost's dtype (at least float32), one unit of z wider than asked, which
    # covers its rounding; the kept entries are then evaluated in f's dtype
    low = torch.promote_types(cost.dtype, torch.float32)
    p = torch.arange(n0, device=cost.device) if order is None else order[0]
    g_cost = g if order is None else _at(g, order[1])  # g in the cost's column order
    g_low = g_cost.to(low)
    bound = (eps * (thr - 1.0) - f).to(low)  # f_i + g_j − C_ij ≥ ε·thr, rearranged
    if native.native(cost):  # one pass of a compiled kernel
        lower = bound.new_full((1,), eps * (thr - 1.0)) if relative else bound
        found = native.support(cost.to(low), g_low, lower, relative, p)
        if found is None:
            return None
        r, c, cs, t = found[0], found[1], found[2].to(f.dtype), found[3]
    else:
        block = max(1, (1 << 22) // max(n1, 1))
        rows, cols, ts = [], [], []
        for start in range(0, n0, block):
            sl = slice(start, min(n0, start + block))
            block_rows = cost[sl] if order is None else cost.index_select(0, p[sl])
            z = torch.sub(g_low[None, :], block_rows)
            t = z.amax(1) + eps * (thr - 1.0) if relative else bound[sl]
            idx = (z >= t[:, None]).nonzero()
            rows.append(idx[:, 0] + start)
            cols.append(idx[:, 1])
            ts.append(t)
        r, c, t = torch.cat(rows), torch.cat(cols), torch.cat(ts)
        counts = torch.stack(
            [torch.bincount(r, minlength=n0).min(), torch.bincount(c, minlength=n1).min()]
        )
        if int(counts.min()) == 0:
            return None
        cs = _at(cost.reshape(-1), _at(p, r) * n1 + c).to(f.dtype)
    if order is not None:  # the columns in local labels (each row's still in cost order)
        c = _at(order[1].to(c.dtype), c)
    omitted = (-t.double() - eps, g.double())
    if not row_sums:
        return _Support(r, c, cs, f, omitted, g)
    kernel = ((_at(f, r) + _at(g, c) - cs) / eps).exp_()
    if columns is not None:
        scale = columns / torch.zeros_like(g).index_add_(0, c, kernel)
        # (0 or inf: a broken plan, left unbalanced; its row sums show it)
        if bool(torch.isfinite(scale).all() & (scale > 0).all()):
            g = g + eps * scale.log()
            kernel.mul_(_at(scale, c))
    return _Support(r, c, cs, torch.zeros_like(f).index_add_(0, r, kernel), omitted, g)


def _spatial_order(cost: Tensor, bits: int = 10, sample: int = 128) -> tuple[Tensor, Tensor]:
    """Orders of the cost's rows and columns under which a truncated kernel is clustered:
    (p, q), local row k = cost row p_k, local column l = cost column q_l.

    For a squared Euclidean cost the doubly centred cost −½ J₀ C J₁ (J = I − 11ᵀ/n) is the
    cross term (x_i − x̄)·(y_j − ȳ) of the points (classical multidimensional scaling). Its
    restriction to ``sample`` evenly spaced columns gives the rows two coordinates, their
    two principal components (the leading eigenvectors of its Gram matrix), and its
    restriction to as many rows gives the columns theirs. Rows and columns are sorted by the
    Morton (Z-order) code of their coordinates quantised to ``bits`` bits, so that nearby
    points get nearby labels and a row's kept entries fall in a few runs of columns, which
    the sparse products then read with far fewer cache misses. Any cost gets some order; the
    result of the iterations does not depend on it.
    """
    n0, n1 = cost.shape
    dtype = torch.promote_types(cost.dtype, torch.float32)

    def principal(block: Tensor) -> Tensor:
        """The two leading principal components of the rows of a doubly centred block."""
        block = block.to(dtype)
        block = block - block.mean(0, keepdim=True) - block.mean(1, keepdim=True) + block.mean()
        vectors: Tensor = torch.linalg.eigh((block.T @ block).double()).eigenvectors
        return torch.matmul(block, vectors[:, -2:].to(dtype))

    def codes(coordinates: Tensor) -> Tensor:
        out = torch.zeros(coordinates.shape[0], dtype=torch.int64, device=cost.device)
        lo, hi = coordinates.amin(0), coordinates.amax(0)
        scaled = (coordinates - lo) / torch.clamp(hi - lo, min=torch.finfo(dtype).tiny)
        level = (scaled * (2**bits - 1)).round().to(torch.int64).clamp_(0, 2**bits - 1)
        for bit in range(bits):
            for k in range(2):
                out |= ((level[:, k] >> bit) & 1) << (2 * bit + k)
        return out

    some_cols = torch.arange(0, n1, max(1, n1 // sample), device=cost.device)[:sample]
    some_rows = torch.arange(0, n0, max(1, n0 // sample), device=cost.device)[:sample]
    rows = principal(cost.index_select(1, some_cols))
    cols = principal(cost.index_select(0, some_rows).T)
    return torch.argsort(codes(rows), stable=True), torch.argsort(codes(cols), stable=True)


class _SparseKernel:
    """A kernel as CSR matrices of K and Kᵀ: what :class:`_Loop` multiplies with."""

    def __init__(self, fwd: Tensor, backward: Tensor) -> None:
        self.fwd, self.T = fwd, backward

    def __matmul__(self, v: Tensor) -> Tensor:
        return self.fwd @ v


class _SparseLoop(_Loop):
    """:class:`_Loop`'s iterations on a truncated kernel (see the module docstring).

    It works in the local labels of :func:`_spatial_order`: :meth:`run`, :meth:`rebuild`,
    :meth:`to_local` and :meth:`to_cost` take and give potentials in the cost's labels,
    everything else (the support, :meth:`reset`, the loop's vectors) is local. Until a
    support is set (:meth:`rebuild` or :meth:`reset`) there is none to iterate on.
    """

    def __init__(
        self,
        cost: Tensor,
        a: Tensor,
        b: Tensor,
        theta: float,
        check_every: int,
        overrelax: bool,
    ) -> None:
        n0, n1 = cost.shape
        self.shape = (n0, n1)
        self.theta = theta
        p, q = _spatial_order(cost)
        self.p, self.q = p, q
        self.p_inv, self.q_inv = torch.argsort(p), torch.argsort(q)
        self.labels = (p, self.q_inv)  # the ``order`` _dense_support takes
        a, b = _at(a, p), _at(b, q)
        none = torch.zeros(0, dtype=a.dtype, device=a.device)
        super().__init__(none, a, b, none.new_zeros(()), 0.0, check_every, overrelax)
        self.cost = cost
        self.native = native.native(cost)
        self.lmin = float(torch.minimum(self.log_a.min(), self.log_b.min()))
        self.marginals = (a, b)  # float64 (the log-domain steps use their logarithms)
        self.values = a.dtype  # of the kernel's entries and the scalings (see set_values)

    def to_local(self, f: Tensor, g: Tensor) -> tuple[Tensor, Tensor]:
        """Potentials in the cost's labels → local labels."""
        return _at(f, self.p), _at(g, self.q)

    def to_cost(self, f: Tensor, g: Tensor) -> tuple[Tensor, Tensor]:
        """Potentials in local labels → the cost's labels."""
        return _at(f, self.p_inv), _at(g, self.q_inv)

    def set_values(self, dtype: torch.dtype) -> None:
        """Store the kernel's entries (and iterate the scalings) in ``dtype``; the potentials,
        the costs and the log-domain steps stay in float64."""
        self.values = dtype
        self.a, self.b = self.marginals[0].to(dtype), self.marginals[1].to(dtype)
        self.floor = math.log(torch.finfo(dtype).tiny) + self.tau

    def release(self) -> None:
        """Drop the support (until the next :meth:`reset` or :meth:`rebuild`)."""
        none = torch.zeros(0, dtype=torch.int32, device=self.cost.device)
        self.rows = self.cols = self.crow = self.col_idx = none
        self.order = self.ccol = self.row_idx = none
        self.c = self.c.new_zeros(0)

    def reset(self, support: _Support) -> None:
        """Use the (row-major, local) support and its bound on the costs left out; each row's
        entries are sorted by column on the way, as CSR requires."""
        self._set(support.rows, support.cols, support.costs, sort=True)
        self.omitted = support.bound
        self.fresh = True

    def _set(
        self,
        rows: Tensor,
        cols: Tensor,
        cs: Tensor,
        order: Tensor | None = None,
        sort: bool = False,
    ) -> None:
        """The support (rows, cols, cs), row-major (with ``sort``, each row's entries are
        sorted by column first); ``order`` (row-major positions in column-major order) is
        computed when not given."""
        n0, n1 = self.shape
        index = torch.int32 if rows.numel() < 2**31 - 1 else torch.int64
        self.crow = _offsets(rows, n0, index)
        if self.native:  # counting sorts; the row and column indices kept in int32
            col_idx = cols.to(index)
            order, self.ccol, self.row_idx = native.transpose(self.crow, col_idx, n1)
            if sort:  # transposed back, each row's columns come out ascending (same rows)
                back, _, col_idx = native.transpose(self.ccol, self.row_idx, n0)
                cs = _at(cs, _at(order, back))
                order = torch.empty_like(back).index_copy_(
                    0, back.long(), torch.arange(back.numel(), dtype=back.dtype)
                )
            self.rows, self.cols, self.col_idx, self.c = rows.to(index), col_idx, col_idx, cs
            self.order = order
            return
        if sort:
            perm = torch.argsort(rows.long() * n1 + cols.long(), stable=True)
            rows, cols, cs, order = _at(rows, perm), _at(cols, perm), _at(cs, perm), None
        self.rows, self.cols, self.c = rows, cols, cs
        self.col_idx = cols.to(index)
        if order is None:
            order = torch.sort(cols, stable=True).indices  # row-major → column-major
        self.order = order
        self.ccol = _offsets(cols, n1, index)
        self.row_idx = _at(rows, order).to(index)

    def restrict(self, f: Tensor, g: Tensor, eps: float, thr: float) -> None:
        """Drop the entries with z_ij < thr at (f, g, ε) (if that drops a quarter of them)."""
        if self.native:
            args = (self.crow, self.col_idx, self.c, f, g, eps * thr, self.shape[1])
            mask, count, row_min, col_min = native.keep(*args)
            if count <= 0.75 * mask.numel() and min(row_min, col_min) > 0:
                self._set(self.rows[mask], self.cols[mask], self.c[mask])
                self._omit(f, g, eps * thr)
            return
        keep = (_at(f, self.rows) + _at(g, self.cols) - self.c) >= eps * thr
        total = torch.cumsum(keep, 0)  # kept entries up to each one, row-major
        by_col = torch.cumsum(_at(keep, self.order), 0)
        kept = torch.stack(
            [
                total[-1],
                _segment_counts(total, self.crow).min(),
                _segment_counts(by_col, self.ccol).min(),
            ]
        ).tolist()
        if kept[0] > 0.75 * keep.numel() or min(kept[1:]) == 0:
            return
        order = _at(total - 1, self.order[_at(keep, self.order)])
        self._set(self.rows[keep], self.cols[keep], self.c[keep], order)
        self._omit(f, g, eps * thr)

    def _omit(self, f: Tensor, g: Tensor, level: float) -> None:
        """Update the bound (P, Q) on the costs left out after dropping the entries with
        f_i + g_j − C_ij < ``level``: C_ij > f_i − level + g_j for those, and the earlier
        ones' C_ij > P_i + Q_j ≥ P_i + min(Q − g) + g_j."""
        p, q = self.omitted
        f, g = f.double(), g.double()
        self.omitted = (torch.minimum(f - level, p + (q - g).min()), g)

    def omitted_z(self, f: Tensor, g: Tensor, u: Tensor, v: Tensor, eps: float) -> Tensor:
        """The largest z an entry left out can have at the potentials (f + ε log u,
        g + ε log v): max_i((f_i − P_i)/ε + log u_i) + max_j((g_j − Q_j)/ε + log v_j)."""
        p, q = self.omitted
        rows = torch.sub(f, p).div_(eps).add_(torch.log(u)).max()
        return rows + torch.sub(g, q).div_(eps).add_(torch.log(v)).max()

    def check(
        self, f: Tensor, g: Tensor, eps: float, thr: float
    ) -> tuple[_Support, Tensor, float, bool] | None:
        """The final dense check at (f, g), in the cost's labels: every entry with z ≥ thr,
        g re-balanced to the columns on them in float64 (see :func:`_dense_support`). Drops
        this support first (if the check fails, the one returned replaces it: :meth:`reset`).
        Returns (those entries, the new g in the cost's labels, the dense row error, whether
        g moved by more than ε: the potentials had drifted off the truncated kernel), or
        ``None`` if a row or column is empty."""
        f, g = self.to_local(f, g)
        self.release()
        a, b = self.marginals
        args = (self.cost, f, g, eps, thr, True, False, b, self.labels)
        support = _dense_support(*args)
        if support is None:
            return None
        moved = float((support.g - g).abs().max()) > eps
        error = float(torch.linalg.vector_norm(support.sums - a))
        return support, _at(support.g, self.q_inv), error, moved

    def rebuild(self, f: Tensor, g: Tensor, eps: float, thr: float, relative: bool = False) -> bool:
        """A new support from one dense pass at (f, g, ε), in the cost's labels (see
        :func:`_dense_support`); ``False`` if a row or column of it is empty."""
        return self._build(*self.to_local(f, g), eps, thr, relative)

    def _build(self, f: Tensor, g: Tensor, eps: float, thr: float, relative: bool) -> bool:
        """:meth:`rebuild` from local potentials."""
        support = _dense_support(self.cost, f, g, eps, thr, relative=relative, order=self.labels)
        if support is None:
            return False
        self.reset(support)
        return True

    def run(
        self,
        f: Tensor,
        g: Tensor,
        eps: float,
        tol: float,
        max_iter: int,
        cold: bool,
        rebalance: bool = True,
        soft_cap: tuple[int, float] = (0, 0.0),
        theta: float | None = None,
    ) -> tuple[Tensor, Tensor, int, float]:
        """From (f, g) in the cost's labels (returned in them too): re-balance on the
        support, drop what is below e^−θ of its row's mass at ε
        (unless the support was just built for ε), then iterate. When an entry left out may
        have reached e^−(θ − ``STALE_MARGIN``) of its row's mass (the bound ``omitted_z``,
        every ``STALE_EVERY`` iterations: the potentials moved far from those the support
        was cut at), the support is rebuilt by a dense pass around the current potentials,
        at most ``REBUILDS`` times; if the potentials still move off the support after
        that, the run returns early (the caller's dense check then sees it)."""
        theta = self.theta if theta is None else theta
        f, g = self.log_step(*self.to_local(f, g), eps)
        if rebalance and not self.fresh:
            self.restrict(f, g, eps, self.lmin - theta)
        self.fresh = False
        n_iter, error = 0, math.inf
        for rebuilds in range(REBUILDS + 1):
            self.stale_at = self.lmin - theta + STALE_MARGIN
            budget = max_iter - n_iter
            f, g, it, error = super().run(f, g, eps, tol, budget, False, False, soft_cap)
            n_iter += it
            if not self.stale or n_iter >= max_iter or rebuilds == REBUILDS:
                break  # (still stale after the last rebuild: returned early, the caller's
                # dense check sees it)
            # each row keeps what is within θ + WIDEN of its largest z: once re-balanced,
            # every entry with z ≥ log a_i − θ
            if not self._build(f, g, eps, -theta - WIDEN, relative=True):
                break
            f, g = self.log_step(f, g, eps)
        self.stale_at, self.stale = math.inf, False
        return *self.to_cost(f, g), n_iter, error

    def log_step(self, f: Tensor, g: Tensor, eps: float) -> tuple[Tensor, Tensor]:
        """One exact log-domain Sinkhorn iteration on the support.

        The sums are shifted by the current potentials rather than by each segment's maximum
        (sparse products instead of scatters): exact while every sum
        stays within the normal range, which holds for potentials balanced at up to a few
        times ε; else the segment maxima are used. On the CPU a compiled kernel shifts each
        sum by its largest term instead.
        """
        if self.native:
            args = (self.crow, self.col_idx, self.c, f, g, self.log_a, self.log_b, eps)
            return native.log_step(*args)
        z = (_at(f, self.rows) + _at(g, self.cols) - self.c) / eps
        rows = self._csr(z.exp()) @ torch.ones_like(g)
        f1 = f + eps * (self.log_a - rows.log())
        z = (_at(f1, self.rows) + _at(g, self.cols) - self.c) / eps
        cols = self._csr_t(_at(z.exp(), self.order)) @ torch.ones_like(f1)
        g1 = g + eps * (self.log_b - cols.log())
        info = torch.finfo(f.dtype)
        low, high = info.tiny / info.eps, info.max * info.eps
        if bool(((rows > low) & (rows < high)).all() & ((cols > low) & (cols < high)).all()):
            return f1, g1
        f = eps * (self.log_a - _segment_lse((_at(g, self.cols) - self.c) / eps, self.rows, f))
        z = (_at(f, self.rows) - self.c) / eps
        return f, eps * (self.log_b - _segment_lse(z, self.cols, g))

    def kernel(self, f: Tensor, g: Tensor, eps: float) -> _SparseKernel:  # type: ignore[override]
        z = (_at(f, self.rows) + _at(g, self.cols) - self.c) / eps
        values = self._exp(z, clamp=True).to(self.values)
        return self._matrices(values)

    def _matrices(self, values: Tensor) -> _SparseKernel:
        return _SparseKernel(self._csr(values), self._csr_t(_at(values, self.order)))

    def _csr(self, values: Tensor) -> Tensor:
        """K as a CSR matrix, from its values in row-major order."""
        return _csr(self.crow, self.col_idx, values, self.shape)

    def _csr_t(self, values: Tensor) -> Tensor:
        """Kᵀ as a CSR matrix, from the values of K in column-major order."""
        return _csr(self.ccol, self.row_idx, values, (self.shape[1], self.shape[0]))

    def _rebuilt(  # type: ignore[override]
        self, f: Tensor, g: Tensor, eps: float
    ) -> tuple[_SparseKernel, Tensor]:
        if self.native:
            args = (self.crow, self.col_idx, self.c, f, g, eps, self.floor + 1.0, self.order)
            values, values_t, row_sums = native.values(*args, self.values)
            return _SparseKernel(self._csr(values), self._csr_t(values_t)), row_sums
        kernel = self.kernel(f, g, eps)
        return kernel, kernel @ torch.ones(self.shape[1], dtype=self.values, device=f.device)


def _csr(offsets: Tensor, index: Tensor, values: Tensor, shape: tuple[int, int]) -> Tensor:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
        return torch.sparse_csr_tensor(offsets, index, values, shape, check_invariants=False)


def _offsets(index: Tensor, n: int, dtype: torch.dtype) -> Tensor:
    """CSR offsets of a sorted index vector with values in [0, n)."""
    out = torch.zeros(n + 1, dtype=torch.int64, device=index.device)
    out[1:] = torch.cumsum(torch.bincount(index, minlength=n), 0)
    return out.to(dtype)


def _segment_counts(cumulative: Tensor, offsets: Tensor) -> Tensor:
    """Per-segment totals of a cumulative sum, segments given by CSR offsets."""
    padded = torch.cat([cumulative.new_zeros(1), cumulative])
    ends = offsets.long()
    return _at(padded, ends[1:]) - _at(padded, ends[:-1])


def _segment_lse(z: Tensor, index: Tensor, like: Tensor) -> Tensor:
    """log Σ exp(z) over the entries of each segment ``index`` (shape of ``like``)."""
    m = torch.full_like(like, -math.inf).scatter_reduce_(0, index, z, "amax")
    s = torch.zeros_like(like).index_add_(0, index, torch.exp(z - _at(m, index)))
    return m + torch.log(s)


def _at(x: Tensor, index: Tensor) -> Tensor:
    """x[index] for a 1-D x (by ``index_select``)."""
    return torch.index_select(x, 0, index)
