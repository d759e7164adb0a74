r"""Exact solvers of the linear assignment problem min_σ Σ_i C[i, σ(i)].

Between two uniform batches of equal size n, the exact OT problem min ⟨π, C⟩ over plans with
marginals 1/n has a permutation matrix among its optimal vertices (Birkhoff–von Neumann), so
it is an assignment problem. All solvers here run on the host in float64 and return an
optimal permutation ``perm`` (row i ↔ column ``perm[i]``) as an ``int64`` NumPy array.

Which solver is fastest depends on the regime and on which of the equivalent costs it is given:
the full ‖x0_i − x1_j‖² or the reduced −2·x0·x1ᵀ (they differ by f(i) + g(j), so they have
the same optimal permutations, but the pivot and augmenting-path sequences differ). Solve
times in ms on a shared 2-core CPU (load 1.7–2.4), float64, batches of standard normal
vectors, LAPJV solvers after a row/column reduction, medians of 2–11 alternating runs:

=====  =====  =========  =========  ===========  ===========  =================
n      d      POT        POT        ``lap``      lapx         ``lap.lapmod`` on
              network    network    ``lapjv``    ``lapjvr``   k-NN candidates +
              simplex,   simplex,   (full /      (full /      dual check (d=2)
              full       reduced    reduced)     reduced)
=====  =====  =========  =========  ===========  ===========  =================
256    2      3.1        3.8        5.7 / –      1.5 / –
256    3072   –          –          – / 0.6      – / 0.4
1024   2      71         97         218–330 /    40 / –       140–190
                                    1280
1024   64     150–180    150        29 / 30      – / 9.4
1024   3072   180        120        19 / 11      – / 6.1
4096   2      1900–2800  4500       – / 17 000   1700 / –     3500
4096   64     –          –          915 / 850    – / 450
4096   3072   –          –          – / 530      – / 340
=====  =====  =========  =========  ===========  ===========  =================

Low-dimensional data with structure are a different matter: the augmenting-path solvers slow
down sharply on clustered or curve-like point sets, the network simplex does not (single thread,
N(0, I) base against the target, ms):

==========================  =====  ==============  ===========  ===========
target (d = 2)              n      network         lapx         ``lap``
                                   simplex, full   ``lapjvr``   ``lapjv``
==========================  =====  ==============  ===========  ===========
N(0, I)                     1024   81              48           254
8 Gaussians                 1024   89              132          656
moons                       1024   99              224          817
==========================  =====  ==============  ===========  ===========

:class:`AutoAssignmentSolver` therefore uses the network simplex on the full cost for d < 8
(robust: within 25 % across these data, where LAPJV varies 5×), and for d ≥ 8 lapx's
``lapjvr`` (:class:`LapxSolver`) when lapx is installed, else ``lap.lapjv`` on the reduced
cost. Things measured and not kept: scipy's
``linear_sum_assignment`` (n = 1024: 36–60 ms at d ≥ 64, 90–460 ms at d = 2; n = 4096,
d = 64: 1.7 s); warm-starting ``lap.lapjv`` from the duals of a sparse k-NN solve (n = 4096,
d = 64: 250 ms for the duals + 650 ms, no faster than cold); the sparse k-NN solve itself for
d = 2 (last column: optimal after 2–4 rounds of adding the violated reduced costs, but
``lapmod`` alone costs more than the network simplex on the dense matrix); POT on a float32 cost
(same pivots, plus a conversion).
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
    """Abstract exact solver of a square assignment problem on the host."""

    def solve(
        self, cost: NDArray[np.float64], dim: int, *, overwrite: bool = False
    ) -> NDArray[np.int64]:
        """An optimal permutation for the square float64 matrix ``cost``.

        Parameters
        ----------
        cost:
            Finite ``(n, n)`` float64 matrix.
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
        perm = np.asarray(self._solve(host, dim, private))
        seen = np.zeros(n, dtype=bool)
        if perm.shape == (n,) and perm.dtype.kind in "iu" and (perm >= 0).all():
            seen[perm[perm < n]] = True
        if perm.shape != (n,) or not seen.all():
            raise RuntimeError(f"{self!r} did not return a permutation")
        return perm.astype(np.int64, copy=False)

    def prefers_full_cost(self, dim: int) -> bool:
        """Whether to hand this solver the full cost rather than a reduced form.

        A reduced cost C_ij − f(i) − g(j) has the same optimal permutations, but the work a
        solver does on it (its pivot or augmenting-path sequence) depends on which one it gets.
        ``True`` when the full cost (e.g. ‖x0_i − x1_j‖²) was measured faster for data of
        dimension ``dim``; the default is ``False``.
        """
        return False

    @abc.abstractmethod
    def _solve(self, cost: NDArray[np.float64], dim: int, overwrite: bool) -> NDArray[np.int64]: ...


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

    def _solve(self, cost: NDArray[np.float64], dim: int, overwrite: bool) -> NDArray[np.int64]:
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
        return True  # fewer pivots on ‖x0 − x1‖² than on −2·x0·x1ᵀ (table above)

    def __repr__(self) -> str:
        return f"NetworkSimplexSolver(max_iter={self.max_iter})"


@final
class LapjvSolver(AssignmentSolver):
    """Jonker–Volgenant (``lap.lapjv``) after a row and column reduction of the cost.

    The reduction C_ij − min_j C_ij − min_i(·) leaves the optimal permutations unchanged and
    gives LAPJV a warm dual start (about 3× faster at n = 4096). Needs the ``lap`` package.
    """

    def _solve(self, cost: NDArray[np.float64], dim: int, overwrite: bool) -> NDArray[np.int64]:
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
    adds ``lapjvr``: 1.5–4× faster than ``lap.lapjv`` and than POT's network simplex in every
    measured regime, d = 2 included (table above), with float64 potentials. Needs ``lapx``
    (``pip install lapx``, which replaces ``lap``); :class:`AutoAssignmentSolver` uses it
    whenever it is installed.
    """

    def _solve(self, cost: NDArray[np.float64], dim: int, overwrite: bool) -> NDArray[np.int64]:
        lapjvr = _lapx_lapjvr()
        if lapjvr is None:
            raise ImportError("LapxSolver needs the lapx package (pip install lapx)")
        rows, cols = lapjvr(_row_column_reduced(cost, overwrite), return_cost=False)
        perm = np.empty(cost.shape[0], dtype=np.int64)
        perm[np.asarray(rows)] = np.asarray(cols)  # rows come sorted; be safe anyway
        return perm

    def prefers_full_cost(self, dim: int) -> bool:
        return dim < 8  # d = 2: 40 ms full vs 350 ms reduced; d ≥ 64: reduced 1.4–2.4× faster

    def __repr__(self) -> str:
        return "LapxSolver()"


@final
class ScipySolver(AssignmentSolver):
    """scipy's ``linear_sum_assignment`` (shortest augmenting paths)."""

    def _solve(self, cost: NDArray[np.float64], dim: int, overwrite: bool) -> NDArray[np.int64]:
        from scipy.optimize import linear_sum_assignment

        _, cols = linear_sum_assignment(cost)
        perm: NDArray[np.int64] = np.asarray(cols, dtype=np.int64)
        return perm

    def __repr__(self) -> str:
        return "ScipySolver()"


@final
class AutoAssignmentSolver(AssignmentSolver):
    """Pick the measured-fastest exact solver (table in :mod:`interpolants.coupling.assignment`).

    :class:`NetworkSimplexSolver` for ``dim < min_lapjv_dim``; for larger ``dim``
    :class:`LapxSolver` when lapx is installed, else :class:`LapjvSolver`. Without any ``lap``
    package it warns once and uses :class:`ScipySolver` in LAPJV's place.
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

    def _solve(self, cost: NDArray[np.float64], dim: int, overwrite: bool) -> NDArray[np.int64]:
        return self.select(dim)._solve(cost, dim, overwrite)

    def prefers_full_cost(self, dim: int) -> bool:
        return self.select(dim).prefers_full_cost(dim)

    def __repr__(self) -> str:
        return f"AutoAssignmentSolver(min_lapjv_dim={self.min_lapjv_dim})"
