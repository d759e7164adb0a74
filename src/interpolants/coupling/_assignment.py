r"""Exact solvers of the linear assignment problem min_σ Σ_i C[i, σ(i)].

Between two uniform batches of equal size n, the exact OT problem min ⟨π, C⟩ over plans with
marginals 1/n has a permutation matrix among its optimal vertices (Birkhoff–von Neumann), so
it is an assignment problem. All solvers here run on the host in float64 and return an
optimal permutation ``perm`` (row i ↔ column ``perm[i]``) as an ``int64`` NumPy array. This
module holds the contract (:class:`AssignmentSolver`) and the solvers that wrap an installed
package (network simplex, Jonker–Volgenant, scipy); the certified auction is in ``_auction``
(its numba kernels in ``_kernels``, its dual certificate in ``_certificate``) and the
automatic choice in ``_auto``.

The work a solver does depends on the regime (n, d and the structure of the data) and on
which of the equivalent costs it is given: the full ‖x0_i − x1_j‖² or the reduced −2·x0·x1ᵀ
(they differ by f(i) + g(j), so they have the same optimal permutations, but the pivot and
augmenting-path sequences differ). On low-dimensional data with structure (clustered or
curve-like point sets, duplicates) the augmenting paths of LAPJV grow long from its cold dual
start, and the network simplex needs many pivots. :class:`AuctionSolver`
first computes near-optimal dual prices with an ε-scaling auction (compiled with numba), so
that LAPJV on the cost reduced by them has little left to do, and then proves the result
optimal with a dual certificate over every entry (:func:`certify_assignment`). Hence the rule
of :class:`AutoAssignmentSolver`: the certified auction for d < 8 (the network simplex on the
full cost without numba), and for d ≥ 8 lapx's ``lapjvr`` (:class:`LapxSolver`; else
``lap.lapjv``) on the reduced cost below n = 2048, the auction from there. The measurements
behind the rule, and those of the alternatives compared with it, are in
``benchmarks/results/design_notes.md`` ("Couplings").

For the squared Euclidean cost a solver may also work from the points, never forming the
matrix (:meth:`AssignmentSolver.solve_points`, ``None`` by default): the auction does so for
batches of 512 or more points in dimension below ``AuctionSolver.max_point_dim`` (11), where its
bids are computed from the points in cache rather than read from a matrix in memory (with
:class:`AutoAssignmentSolver`: below d = 8, and from 8 to 10 for batches of 2048 or more).

What runs where: everything here runs on the host, in float64 (the auction bids on a float32
copy of the matrix when float32 holds it, or on float32 values computed from the points; its
prices are only a starting point).
"""

import abc
import importlib.util
import warnings
from collections.abc import Callable
from typing import Any, final

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "AssignmentSolver",
    "LapjvSolver",
    "LapxSolver",
    "NetworkSimplexSolver",
    "ScipySolver",
]


def _row_column_reduced(cost: NDArray[np.float64], overwrite: bool) -> NDArray[np.float64]:
    """C_ij − min_j C_ij, then minus its column minima: same optimal permutations, and a warm
    dual start for Jonker–Volgenant (non-negative, a zero in every row and column). In place
    when ``overwrite`` (two passes over the matrix fewer, and no second n×n allocation)."""
    reduced: NDArray[np.float64]
    if overwrite:
        reduced = cost
        reduced -= cost.min(axis=1, keepdims=True)
    else:
        reduced = cost - cost.min(axis=1, keepdims=True)
    reduced -= reduced.min(axis=0, keepdims=True)
    return reduced


def _lapx_lapjvr() -> Callable[..., Any] | None:
    """lapx's ``lap.lapjvr`` when the installed ``lap`` module is lapx's (it ships lapjvr)."""
    if importlib.util.find_spec("lap") is None:
        return None
    import lap  # type: ignore[import-untyped,unused-ignore]

    fn: Callable[..., Any] | None = getattr(lap, "lapjvr", None)
    return fn


def _checked_permutation(solver: object, perm: NDArray[Any], n: int) -> NDArray[np.int64]:
    """``perm`` as int64 after checking that it is a permutation of n (else RuntimeError)."""
    seen = np.zeros(n, dtype=bool)
    if perm.shape == (n,) and perm.dtype.kind in "iu" and (perm >= 0).all():
        seen[perm[perm < n]] = True
    if perm.shape != (n,) or not seen.all():
        raise RuntimeError(f"{solver!r} did not return a permutation")
    return perm.astype(np.int64, copy=False)


def _checked_points(
    x0: NDArray[np.floating[Any]], x1: NDArray[np.floating[Any]], *, copy: bool
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``x0``, ``x1`` as C-contiguous float64 (copies when ``copy``), checked to be finite,
    non-empty ``(n, d)`` arrays of one shape (else ValueError)."""
    a = np.array(x0, dtype=np.float64, order="C") if copy else np.ascontiguousarray(x0, np.float64)
    b = np.array(x1, dtype=np.float64, order="C") if copy else np.ascontiguousarray(x1, np.float64)
    if a.ndim != 2 or a.shape != b.shape or a.shape[0] == 0:
        raise ValueError(
            f"x0 and x1 must be non-empty (n, d) arrays of one shape, got {a.shape} and {b.shape}"
        )
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("x0 and x1 must be finite")
    return a, b


class AssignmentSolver(abc.ABC):
    """Abstract exact solver of a square assignment problem on the host.

    :meth:`solve` is the call: it takes any square matrix, hands :meth:`assign` a C-contiguous
    float64 one and checks that the result is a permutation. A subclass implements
    :meth:`assign` and may override :meth:`prefers_full_cost`.

    Example
    -------
    >>> import numpy as np
    >>> from scipy.optimize import linear_sum_assignment
    >>> from interpolants.coupling import AssignmentSolver
    >>> class Hungarian(AssignmentSolver):
    ...     def assign(self, cost, dim, *, overwrite):
    ...         return linear_sum_assignment(cost)[1]
    >>> Hungarian().solve(np.array([[4.0, 1.0], [2.0, 8.0]]), dim=1)
    array([1, 0])
    """

    def solve(
        self, cost: NDArray[np.float64], dim: int, *, overwrite: bool = False
    ) -> NDArray[np.int64]:
        """An optimal permutation for the square float64 matrix ``cost``.

        Parameters
        ----------
        cost:
            Finite ``(n, n)`` matrix (not checked for finiteness here: :class:`OTCoupling`
            checks the matrices it builds), converted to float64 if needed.
        dim:
            Dimension of the data the cost was computed from (a hint for solvers that choose a
            method by regime; ignored by the others).
        overwrite:
            Allow the solver to reduce ``cost`` in place (a C-contiguous float64 ``cost``
            then saves an n×n copy); by default ``cost`` is not modified.

        Returns
        -------
        numpy.ndarray
            ``perm`` of shape ``(n,)``, a permutation: row ``i`` is assigned column ``perm[i]``.
        """
        if cost.ndim != 2 or cost.shape[0] != cost.shape[1]:
            raise ValueError(f"cost must be a square matrix, got shape {cost.shape}")
        n = cost.shape[0]
        host = np.ascontiguousarray(cost, dtype=np.float64)
        private = overwrite or not np.may_share_memory(host, cost)  # a copy of ours
        perm = np.asarray(self.assign(host, dim, overwrite=private))
        return _checked_permutation(self, perm, n)

    def solve_points(
        self, x0: NDArray[np.floating[Any]], x1: NDArray[np.floating[Any]]
    ) -> NDArray[np.int64] | None:
        """An optimal permutation for the squared Euclidean cost C_ij = ‖x0_i − x1_j‖² of two
        point sets, computed without the n×n matrix, or ``None`` when the solver has no such
        path for these points (:class:`OTCoupling <interpolants.OTCoupling>` then builds the
        matrix and calls :meth:`solve`).

        Parameters
        ----------
        x0, x1:
            Finite ``(n, d)`` arrays of the same shape (converted to float64).

        Returns
        -------
        numpy.ndarray or None
            ``perm`` of shape ``(n,)`` (row ``i`` of x0 ↔ row ``perm[i]`` of x1), checked to
            be a permutation, or ``None``.
        """
        a, b = _checked_points(x0, x1, copy=False)
        perm = self.assign_points(a, b)
        if perm is None:
            return None
        return _checked_permutation(self, np.asarray(perm), a.shape[0])

    def prefers_points(self, n: int, dim: int) -> bool:
        """Whether :meth:`solve_points` may return a permutation for ``n`` points of dimension
        ``dim`` (``False`` by default): :class:`OTCoupling <interpolants.OTCoupling>` copies
        the points to the host only when it does."""
        return False

    def assign_points(
        self, x0: NDArray[np.float64], x1: NDArray[np.float64]
    ) -> NDArray[np.int64] | None:
        """An optimal permutation for C_ij = ‖x0_i − x1_j‖² from the points, or ``None`` (the
        default: this solver needs the matrix). The method a solver with a path from points
        implements; :meth:`solve_points` validates its input (finite float64 ``(n, d)``
        arrays of one shape, n ≥ 1) and checks its result."""
        return None

    def prefers_full_cost(self, dim: int) -> bool:
        """Whether to hand this solver the full cost rather than a reduced form.

        A reduced cost C_ij − f(i) − g(j) (:meth:`Cost.reduced
        <interpolants.coupling.Cost.reduced>`) has the same optimal permutations, but the work
        a solver does on it (its pivot or augmenting-path sequence) depends on which one it
        gets. :class:`OTCoupling` asks before it builds the matrix, so the answer may depend
        on ``dim`` only, never on values. Return ``True`` when the full cost (e.g.
        ‖x0_i − x1_j‖²) is the form the solver is designed to receive for data of dimension
        ``dim`` (the choices of the built-in solvers are justified in
        ``benchmarks/results/design_notes.md``, "Couplings"); the default is ``False``.
        """
        return False

    @abc.abstractmethod
    def assign(self, cost: NDArray[np.float64], dim: int, *, overwrite: bool) -> NDArray[np.int64]:
        """An optimal permutation for a validated matrix: the method a solver implements.

        :meth:`solve` calls it and checks its result, so it needs neither check. Contract:

        * ``cost`` is a square, C-contiguous ``(n, n)`` float64 array on the host, ``n ≥ 1``,
          finite when it comes from :class:`OTCoupling` (which checks it);
        * ``dim`` is the dimension of the data the cost was computed from (a hint; a solver
          that does not choose by regime ignores it);
        * when ``overwrite`` is true the solver may modify ``cost`` in place (it is a private
          copy); otherwise it must leave it unchanged.

        Returns
        -------
        numpy.ndarray
            Integer array ``perm`` of shape ``(n,)``: row ``i`` is assigned column ``perm[i]``.
        """


@final
class NetworkSimplexSolver(AssignmentSolver):
    """POT's network simplex (``ot.emd``) run to optimality, permutation read off the plan.

    ``ot.emd`` returns a vertex of the transport polytope; for uniform equal-size marginals
    every vertex is a permutation matrix divided by n, so ``argmax`` per row recovers it
    exactly (checked to be a permutation). ``max_iter`` is far above POT's default of 100 000,
    which stops early at n ≈ 4096 and returns a non-optimal plan.
    """

    def __init__(self, max_iter: int = 10**9) -> None:
        if max_iter < 1:
            raise ValueError(f"max_iter must be positive, got {max_iter}")
        self.max_iter = int(max_iter)

    def assign(self, cost: NDArray[np.float64], dim: int, *, overwrite: bool) -> NDArray[np.int64]:
        import ot

        n = cost.shape[0]
        a = np.full(n, 1.0 / n)
        with warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)  # never accept a truncated solve
            # POT's network simplex can report negative costs as infeasible: shift them (a
            # constant shift leaves every balanced problem's solutions unchanged)
            low = float(cost.min())
            if low < 0:
                cost = np.subtract(cost, low, out=cost if overwrite else None)
            plan = ot.emd(a, a, cost, numItermax=self.max_iter)
        perm: NDArray[np.int64] = np.asarray(plan).argmax(axis=1)
        return perm

    def prefers_full_cost(self, dim: int) -> bool:
        return True  # fewer pivots on ‖x0 − x1‖² than on −2·x0·x1ᵀ (design_notes.md)

    def __repr__(self) -> str:
        return f"NetworkSimplexSolver(max_iter={self.max_iter})"


@final
class LapjvSolver(AssignmentSolver):
    """Jonker–Volgenant (``lap.lapjv``) after a row and column reduction of the cost.

    The reduction C_ij − min_j C_ij − min_i(·) leaves the optimal permutations unchanged and
    gives LAPJV a warm dual start (non-negative, a zero in every row and column). Needs the
    ``lap`` package.
    """

    def assign(self, cost: NDArray[np.float64], dim: int, *, overwrite: bool) -> NDArray[np.int64]:
        import lap  # type: ignore[import-untyped,unused-ignore]

        x, _ = lap.lapjv(_row_column_reduced(cost, overwrite), return_cost=False)
        perm: NDArray[np.int64] = np.asarray(x, dtype=np.int64)
        return perm

    def prefers_full_cost(self, dim: int) -> bool:
        return dim < 8

    def __repr__(self) -> str:
        return "LapjvSolver()"


@final
class LapxSolver(AssignmentSolver):
    """Jonker–Volgenant with lapx's Rust completion (``lap.lapjvr``), after a row and column
    reduction of the cost.

    lapx is a maintained fork of ``lap`` that installs under the same import name ``lap`` and
    adds ``lapjvr``, a Jonker–Volgenant completion with float64 potentials, the default
    for unstructured data in higher dimension (``benchmarks/results/design_notes.md``,
    "Couplings"). Needs ``lapx`` (``pip install lapx``, which replaces ``lap``);
    :class:`AutoAssignmentSolver` uses it for d ≥ 8 below 2048 points whenever it is
    installed.
    """

    def assign(self, cost: NDArray[np.float64], dim: int, *, overwrite: bool) -> NDArray[np.int64]:
        lapjvr = _lapx_lapjvr()
        if lapjvr is None:
            raise ImportError("LapxSolver needs the lapx package (pip install lapx)")
        rows, cols = lapjvr(_row_column_reduced(cost, overwrite), return_cost=False)
        perm = np.empty(cost.shape[0], dtype=np.int64)
        perm[np.asarray(rows)] = np.asarray(cols)  # rows come sorted; be safe anyway
        return perm

    def prefers_full_cost(self, dim: int) -> bool:
        return dim < 8  # full cost in low dimension, reduced above (design_notes.md)

    def __repr__(self) -> str:
        return "LapxSolver()"


def _exact_lap(reduced: NDArray[np.float64]) -> NDArray[np.int64]:
    """An optimal permutation of a square matrix by the first installed exact LAP solver of
    lapx's ``lapjvr``, ``lap.lapjv`` and scipy's ``linear_sum_assignment``."""
    lapjvr = _lapx_lapjvr()
    perm = np.empty(reduced.shape[0], dtype=np.int64)
    if lapjvr is not None:
        rows, cols = lapjvr(reduced, return_cost=False)
        perm[np.asarray(rows)] = np.asarray(cols)
    elif importlib.util.find_spec("lap") is not None:
        import lap  # type: ignore[import-untyped,unused-ignore]

        x, _ = lap.lapjv(reduced, return_cost=False)
        perm[:] = np.asarray(x)
    else:
        from scipy.optimize import linear_sum_assignment

        perm[:] = linear_sum_assignment(reduced)[1]
    return perm


@final
class ScipySolver(AssignmentSolver):
    """scipy's ``linear_sum_assignment`` (shortest augmenting paths)."""

    def assign(self, cost: NDArray[np.float64], dim: int, *, overwrite: bool) -> NDArray[np.int64]:
        from scipy.optimize import linear_sum_assignment

        _, cols = linear_sum_assignment(cost)
        perm: NDArray[np.int64] = np.asarray(cols, dtype=np.int64)
        return perm

    def __repr__(self) -> str:
        return "ScipySolver()"
