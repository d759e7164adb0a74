r"""The automatic choice of an exact assignment solver (the rule in ``_assignment``'s notes)."""

import importlib.util
import warnings
from typing import final

import numpy as np
from numpy.typing import NDArray

from ._assignment import (
    AssignmentSolver,
    LapjvSolver,
    LapxSolver,
    NetworkSimplexSolver,
    ScipySolver,
    _lapx_lapjvr,
)
from ._auction import AuctionSolver

__all__ = ["AutoAssignmentSolver"]

_LAP_WARNED = False
_NUMBA_WARNED = False


def _have_numba() -> bool:
    return importlib.util.find_spec("numba") is not None


@final
class AutoAssignmentSolver(AssignmentSolver):
    """Pick an exact solver by the dimension of the data and the batch size (the rule in the
    module notes).

    * ``dim < min_lapjv_dim``: :class:`AuctionSolver` when numba is installed, robust to
      low-dimensional data with structure (clusters, curves, duplicates); else
      :class:`NetworkSimplexSolver`.
    * ``dim ≥ min_lapjv_dim``: :class:`AuctionSolver` for batches of at least
      ``min_auction_n`` (with numba), where LAPJV's augmenting paths grow long; below that
      :class:`LapxSolver` when lapx is installed, else :class:`LapjvSolver`. Without any
      ``lap`` package it warns once and uses :class:`ScipySolver` in LAPJV's place.

    :meth:`assign_points` asks the solver of that rule, so the squared Euclidean cost of
    batches of at least ``AuctionSolver.POINTS`` points of dimension below ``min_lapjv_dim``,
    and of at least ``min_auction_n`` points of dimension below
    ``AuctionSolver.max_point_dim``, is solved from the points
    (:meth:`AuctionSolver.certified_points`).
    """

    def __init__(self, min_lapjv_dim: int = 8, min_auction_n: int = 2048) -> None:
        self.min_lapjv_dim = int(min_lapjv_dim)
        self.min_auction_n = int(min_auction_n)

    def select(self, dim: int, n: int | None = None) -> AssignmentSolver:
        """The solver used for ``n`` points of dimension ``dim`` (``n=None``: small)."""
        global _LAP_WARNED, _NUMBA_WARNED
        if dim < self.min_lapjv_dim:
            if _have_numba():
                return AuctionSolver()
            if not _NUMBA_WARNED:
                _NUMBA_WARNED = True
                warnings.warn(
                    "numba is not installed: exact OT in low dimension uses POT's network "
                    "simplex instead of the certified auction; pip install numba",
                    RuntimeWarning,
                    stacklevel=3,
                )
            return NetworkSimplexSolver()
        if n is not None and n >= self.min_auction_n and _have_numba():
            return AuctionSolver()
        if _lapx_lapjvr() is not None:
            return LapxSolver()
        if importlib.util.find_spec("lap") is None:
            if not _LAP_WARNED:
                _LAP_WARNED = True
                warnings.warn(
                    "the 'lap' package is not installed: exact OT uses scipy's "
                    "linear_sum_assignment instead; pip install lap",
                    RuntimeWarning,
                    stacklevel=3,
                )
            return ScipySolver()
        return LapjvSolver()

    def assign(self, cost: NDArray[np.float64], dim: int, *, overwrite: bool) -> NDArray[np.int64]:
        return self.select(dim, cost.shape[0]).assign(cost, dim, overwrite=overwrite)

    def prefers_points(self, n: int, dim: int) -> bool:
        return self.select(dim, n).prefers_points(n, dim)

    def assign_points(
        self, x0: NDArray[np.float64], x1: NDArray[np.float64]
    ) -> NDArray[np.int64] | None:
        return self.select(x0.shape[1], x0.shape[0]).assign_points(x0, x1)

    def prefers_full_cost(self, dim: int) -> bool:
        return self.select(dim).prefers_full_cost(dim)

    def __repr__(self) -> str:
        return (
            f"AutoAssignmentSolver(min_lapjv_dim={self.min_lapjv_dim}, "
            f"min_auction_n={self.min_auction_n})"
        )
