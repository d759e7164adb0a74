r"""Exact solvers of the linear assignment problem min_σ Σ_i C[i, σ(i)].

Between two uniform batches of equal size n, the exact OT problem min ⟨π, C⟩ over plans with
marginals 1/n has a permutation matrix among its optimal vertices (Birkhoff–von Neumann), so
it is an assignment problem. All solvers here run on the host in float64 and return an
optimal permutation ``perm`` (row i ↔ column ``perm[i]``) as an ``int64`` NumPy array.

Which solver is fastest depends on the regime (measured on a 2-core CPU, float64, batches of
standard normal vectors, cost −2·x0·x1ᵀ; seconds):

=========  =====  ================  ===============================
n          d      POT network       LAPJV (``lap.lapjv``) after a
                  simplex           row/column reduction
=========  =====  ================  ===============================
1024       2      0.10              0.22 – 0.84
1024       8      0.13              0.07
1024       64     0.12              0.03
2048       4      0.84              1.5 – 3.3
2048       16     0.90              0.15
4096       2      1.7               17
4096       64     5.3               0.5
4096       3072   6.0               0.34
=========  =====  ================  ===============================

:class:`AutoAssignmentSolver` therefore uses the network simplex for data dimension d < 8 and
LAPJV otherwise. scipy's ``linear_sum_assignment`` is never the fastest by a useful margin
there (n = 4096, d = 64: 1.7 s; d = 2: ~60 s) but needs no extra package.
"""

import abc
import importlib.util
import warnings
from typing import final

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "AssignmentSolver",
    "AutoAssignmentSolver",
    "LapjvSolver",
    "NetworkSimplexSolver",
    "ScipySolver",
]

_LAP_WARNED = False


class AssignmentSolver(abc.ABC):
    """Abstract exact solver of a square assignment problem on the host."""

    def solve(self, cost: NDArray[np.float64], dim: int) -> NDArray[np.int64]:
        """An optimal permutation for the square float64 matrix ``cost``.

        Parameters
        ----------
        cost:
            Finite ``(n, n)`` float64 matrix.
        dim:
            Dimension of the data the cost was computed from (a hint for solvers that choose a
            method by regime; ignored by the others).

        Returns
        -------
        numpy.ndarray
            ``perm`` of shape ``(n,)``, a permutation: row ``i`` is assigned column ``perm[i]``.
        """
        if cost.ndim != 2 or cost.shape[0] != cost.shape[1]:
            raise ValueError(f"cost must be a square matrix, got shape {cost.shape}")
        perm = self._solve(np.ascontiguousarray(cost, dtype=np.float64), dim)
        n = cost.shape[0]
        if perm.shape != (n,) or not np.array_equal(np.sort(perm), np.arange(n)):
            raise RuntimeError(f"{self!r} did not return a permutation")
        return perm.astype(np.int64, copy=False)

    @abc.abstractmethod
    def _solve(self, cost: NDArray[np.float64], dim: int) -> NDArray[np.int64]: ...


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

    def _solve(self, cost: NDArray[np.float64], dim: int) -> NDArray[np.int64]:
        import ot

        n = cost.shape[0]
        a = np.full(n, 1.0 / n)
        with warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)  # never accept a truncated solve
            # POT's network simplex can report negative costs as infeasible: shift them (a
            # constant shift leaves every balanced problem's solutions unchanged)
            plan = ot.emd(a, a, cost - cost.min(), numItermax=self.max_iter)
        perm: NDArray[np.int64] = np.asarray(plan).argmax(axis=1)
        return perm

    def __repr__(self) -> str:
        return f"NetworkSimplexSolver(max_iter={self.max_iter})"


@final
class LapjvSolver(AssignmentSolver):
    """Jonker–Volgenant (``lap.lapjv``) after a row and column reduction of the cost.

    The reduction C_ij − min_j C_ij − min_i(·) leaves the optimal permutations unchanged and
    gives LAPJV a warm dual start (about 3× faster at n = 4096). Needs the ``lap`` package.
    """

    def _solve(self, cost: NDArray[np.float64], dim: int) -> NDArray[np.int64]:
        import lap  # type: ignore[import-untyped,unused-ignore]

        reduced = cost - cost.min(axis=1, keepdims=True)
        reduced -= reduced.min(axis=0, keepdims=True)
        _, x, _ = lap.lapjv(reduced)
        perm: NDArray[np.int64] = np.asarray(x, dtype=np.int64)
        return perm

    def __repr__(self) -> str:
        return "LapjvSolver()"


@final
class ScipySolver(AssignmentSolver):
    """scipy's ``linear_sum_assignment`` (shortest augmenting paths)."""

    def _solve(self, cost: NDArray[np.float64], dim: int) -> NDArray[np.int64]:
        from scipy.optimize import linear_sum_assignment

        _, cols = linear_sum_assignment(cost)
        perm: NDArray[np.int64] = np.asarray(cols, dtype=np.int64)
        return perm

    def __repr__(self) -> str:
        return "ScipySolver()"


@final
class AutoAssignmentSolver(AssignmentSolver):
    """Pick the measured-fastest exact solver: network simplex for ``dim < min_lapjv_dim``,
    LAPJV otherwise (see the table in :mod:`interpolants.coupling.assignment`).

    Without the ``lap`` package it warns once and uses :class:`ScipySolver` in its place.
    """

    def __init__(self, min_lapjv_dim: int = 8) -> None:
        self.min_lapjv_dim = int(min_lapjv_dim)

    def select(self, dim: int) -> AssignmentSolver:
        """The solver used for data of dimension ``dim``."""
        global _LAP_WARNED
        if dim < self.min_lapjv_dim:
            return NetworkSimplexSolver()
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

    def _solve(self, cost: NDArray[np.float64], dim: int) -> NDArray[np.int64]:
        return self.select(dim).solve(cost, dim)

    def __repr__(self) -> str:
        return f"AutoAssignmentSolver(min_lapjv_dim={self.min_lapjv_dim})"
