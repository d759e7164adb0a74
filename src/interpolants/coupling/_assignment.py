r"""Exact solvers of the linear assignment problem min_σ Σ_i C[i, σ(i)].

Between two uniform batches of equal size n, the exact OT problem min ⟨π, C⟩ over plans with
marginals 1/n has a permutation matrix among its optimal vertices (Birkhoff–von Neumann), so
it is an assignment problem. All solvers here run on the host in float64 and return an
optimal permutation ``perm`` (row i ↔ column ``perm[i]``) as an ``int64`` NumPy array.

Which solver is fastest depends on the regime (n, d and the structure of the data) and on
which of the equivalent costs it is given: the full ‖x0_i − x1_j‖² or the reduced −2·x0·x1ᵀ
(they differ by f(i) + g(j), so they have the same optimal permutations, but the pivot and
augmenting-path sequences differ). On low-dimensional data with structure (clustered or
curve-like point sets) the augmenting-path solvers (LAPJV) slow down sharply and the network
simplex does not; in high dimension LAPJV on the reduced cost is the fastest. Hence the rule of
:class:`AutoAssignmentSolver`: the network simplex on the full cost for d < 8, and for d ≥ 8
lapx's ``lapjvr`` (:class:`LapxSolver`) when lapx is installed, else ``lap.lapjv`` on the
reduced cost. The measurements behind the rule, and those of the alternatives compared with
it, are in ``benchmarks/RESULTS.md`` ("Notes moved from the coupling docstrings").
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
    "AutoAssignmentSolver",
    "LapjvSolver",
    "LapxSolver",
    "NetworkSimplexSolver",
    "ScipySolver",
]

_LAP_WARNED = False


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
        seen = np.zeros(n, dtype=bool)
        if perm.shape == (n,) and perm.dtype.kind in "iu" and (perm >= 0).all():
            seen[perm[perm < n]] = True
        if perm.shape != (n,) or not seen.all():
            raise RuntimeError(f"{self!r} did not return a permutation")
        return perm.astype(np.int64, copy=False)

    def prefers_full_cost(self, dim: int) -> bool:
        """Whether to hand this solver the full cost rather than a reduced form.

        A reduced cost C_ij − f(i) − g(j) (:meth:`Cost.reduced
        <interpolants.coupling.Cost.reduced>`) has the same optimal permutations, but the work
        a solver does on it (its pivot or augmenting-path sequence) depends on which one it
        gets. :class:`OTCoupling` asks before it builds the matrix, so the answer may depend
        on ``dim`` only, never on values. Return ``True`` when the full cost (e.g.
        ‖x0_i − x1_j‖²) is the faster form for data of dimension ``dim``; the default is
        ``False``.
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
        return True  # measured: fewer pivots on ‖x0 − x1‖² than on −2·x0·x1ᵀ

    def __repr__(self) -> str:
        return f"NetworkSimplexSolver(max_iter={self.max_iter})"


@final
class LapjvSolver(AssignmentSolver):
    """Jonker–Volgenant (``lap.lapjv``) after a row and column reduction of the cost.

    The reduction C_ij − min_j C_ij − min_i(·) leaves the optimal permutations unchanged and
    gives LAPJV a warm dual start, which makes it faster. Needs the ``lap`` package.
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
    adds ``lapjvr``, the fastest of these solvers on unstructured data, with float64
    potentials. Needs ``lapx`` (``pip install lapx``, which replaces ``lap``);
    :class:`AutoAssignmentSolver` uses it for d ≥ 8 whenever it is installed.
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
        return dim < 8  # measured: full cost faster at d = 2, reduced cost faster at d ≥ 64

    def __repr__(self) -> str:
        return "LapxSolver()"


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


@final
class AutoAssignmentSolver(AssignmentSolver):
    """Pick an exact solver by the dimension of the data (the rule in the module notes).

    :class:`NetworkSimplexSolver` for ``dim < min_lapjv_dim``, robust to low-dimensional data
    with structure; for larger ``dim`` :class:`LapxSolver` when lapx is installed, else
    :class:`LapjvSolver`. Without any ``lap`` package it warns once and uses
    :class:`ScipySolver` in LAPJV's place.
    """

    def __init__(self, min_lapjv_dim: int = 8) -> None:
        self.min_lapjv_dim = int(min_lapjv_dim)

    def select(self, dim: int) -> AssignmentSolver:
        """The solver used for data of dimension ``dim``."""
        global _LAP_WARNED
        if dim < self.min_lapjv_dim:
            return NetworkSimplexSolver()
        if _lapx_lapjvr() is not None:
            return LapxSolver()
        if importlib.util.find_spec("lap") is None:
            if not _LAP_WARNED:
                _LAP_WARNED = True
                warnings.warn(
                    "the 'lap' package is not installed: exact OT uses scipy's "
                    "linear_sum_assignment instead (slower); pip install lap",
                    RuntimeWarning,
                    stacklevel=3,
                )
            return ScipySolver()
        return LapjvSolver()

    def assign(self, cost: NDArray[np.float64], dim: int, *, overwrite: bool) -> NDArray[np.int64]:
        return self.select(dim).assign(cost, dim, overwrite=overwrite)

    def prefers_full_cost(self, dim: int) -> bool:
        return self.select(dim).prefers_full_cost(dim)

    def __repr__(self) -> str:
        return f"AutoAssignmentSolver(min_lapjv_dim={self.min_lapjv_dim})"
