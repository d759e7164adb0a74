r"""Exact minibatch optimal transport (OT-CFM; Multisample Flow Matching's BatchOT)."""

import math
import warnings
from collections.abc import Callable
from typing import final

import numpy as np
import torch
from jaxtyping import Float, Int
from numpy.typing import NDArray
from torch import Tensor

from ._assignment import AssignmentSolver
from ._auto import AutoAssignmentSolver
from ._base import (
    Batch0,
    Batch1,
    Labels0,
    Labels1,
    PairIndices,
    PermutationCoupling,
    Plan,
    PlanCoupling,
    check_batches,
)
from ._cost import (
    Cost,
    CustomCost,
    EuclideanCost,
    SquaredEuclideanCost,
    as_cost,
    cost_matrix,
    nonfinite_cost,
)
from ._plans import sample_columns, weights

__all__ = ["OTCoupling"]


def emd_plan(cost: Tensor, a: Tensor, b: Tensor) -> Tensor:
    """POT's exact (network simplex) plan, solved on the host in float64 to optimality."""
    import ot

    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # a truncated solve is not optimal
        plan = ot.emd(
            a.detach().cpu().double().numpy(),
            b.detach().cpu().double().numpy(),
            (cost - cost.min()).detach().cpu().double().numpy(),  # POT rejects some negatives
            numItermax=10**9,
        )
    return torch.as_tensor(np.asarray(plan)).to(dtype=cost.dtype, device=cost.device)


def _host_cost(
    cost: Cost, x0: Tensor, x1: Tensor, *, full: bool
) -> tuple[NDArray[np.float64], bool]:
    """The (full or reduced) cost matrix as a float64 host array, checked to be finite, and
    whether the array is a private copy (the solver may then reduce it in place).

    One device-to-host copy (none for a float64 CPU matrix). Finiteness: for the built-in
    Euclidean costs of finite inputs, |C_ij| ≤ (‖x0_i‖ + ‖x1_j‖)² bounds every entry, so when
    that bound is far below the dtype's largest number no entry can have overflowed and the
    n×n matrix is not scanned (the bound costs O(n·d), used when that is less than n²);
    otherwise a min and a max on the host (either is NaN or infinite iff some entry is).
    """
    f0, f1 = x0.reshape(x0.shape[0], -1), x1.reshape(x1.shape[0], -1)
    builtin = isinstance(cost, SquaredEuclideanCost | EuclideanCost)  # a fresh matrix, bounded
    if isinstance(cost, CustomCost):
        m = cost(x0, x1)
    else:
        m = cost.matrix(f0, f1) if full else cost.reduced(f0, f1)
    m = m.detach()
    host: NDArray[np.float64]
    if m.device.type == "cpu" and m.dtype in (torch.float32, torch.float16):
        host = m.numpy().astype(np.float64)  # numpy's conversion (design_notes.md)
        private = True
    else:
        moved = m.to(device="cpu", dtype=torch.float64)
        host = moved.numpy()
        # a fresh matrix from a built-in cost, or a copy made by the move: the solver may
        # reduce it in place (a user's Cost may return a stored tensor)
        private = builtin or moved.data_ptr() != m.data_ptr()
    if not (builtin and _bounded(f0, f1, m)) and not (
        math.isfinite(float(host.min())) and math.isfinite(float(host.max()))
    ):
        raise nonfinite_cost(cost, x0, x1)
    return host, private


def _bounded(f0: Tensor, f1: Tensor, m: Tensor) -> bool:
    """Whether the entries of the Euclidean cost ``m`` of finite ``f0``, ``f1`` provably
    cannot have overflowed (checked when cheaper than scanning ``m``)."""
    if f0.numel() + f1.numel() >= m.numel():
        return False
    norms = torch.stack([f0.square().sum(1).amax(), f1.square().sum(1).amax()])
    r0, r1 = (math.sqrt(v) for v in norms.double().tolist())  # inf if the squares overflowed
    return r0 + r1 < math.sqrt(1e-3 * torch.finfo(m.dtype).max)


@final
class OTCoupling(PermutationCoupling, PlanCoupling):
    r"""Exact minibatch OT: the pairing minimising the total cost Σ_i c(x0_i, x1_σ(i)).

    Solves min ⟨π, C⟩ over plans with uniform marginals. For equal batch sizes the optimum is
    attained at a permutation (Birkhoff–von Neumann) and **is returned as one**: every x0 and
    every x1 is used exactly once, so both minibatch marginals are exact (unlike sampling pairs
    from the plan with replacement, which duplicates and drops points). For unequal sizes the
    exact plan comes from POT's network simplex (on the host, in float64), every x1 is used
    once and its partner is drawn from the plan's conditional π(· | x1) with ``generator``; the
    x1 marginal is then exact and the x0 marginal exact in expectation.

    What runs where: for the built-in squared Euclidean cost, when the solver prefers the
    points (:meth:`~AssignmentSolver.prefers_points`), they are flattened to ``(n, d)``
    float64 on the host and given to :meth:`~AssignmentSolver.solve_points`: the default
    :class:`AutoAssignmentSolver` hands batches of at least ``AuctionSolver.POINTS`` points
    of dimension below 8 (below 11 from 2048 points on) to
    :meth:`AuctionSolver.certified_points <interpolants.coupling.AuctionSolver.certified_points>`,
    which does not form the n×n matrix (memory O(n·d) plus candidate lists, the matrix only
    in its fallback) and certifies its answer against C_ij = ‖x0_i − x1_j‖² evaluated in
    float64 from the points. Otherwise the
    cost matrix is one matrix product on the inputs' device, in the form the solver asks for
    (:meth:`~AssignmentSolver.prefers_full_cost`): the full ‖x0 − x1‖² for d < 8, otherwise
    the reduced −2·x0·x1ᵀ, which differs by f(i) + g(j) and so has the same optimal pairings.
    Only this n×n matrix crosses to the host, in float64 (checked finite by its min and max
    there, or, for the built-in Euclidean costs when cheaper, by the bound
    (max‖x0‖ + max‖x1‖)² on its entries), for the assignment solver; the indices come back on
    the device. On the matrix, the default :class:`AutoAssignmentSolver` picks the certified
    :class:`~interpolants.coupling.AuctionSolver` for d < 8 and for n ≥ 2048, lapx's
    ``lapjvr`` (else ``lap.lapjv``) otherwise (the rule is explained there). Every solver is
    exact and runs to optimality (a truncated network-simplex solve raises; the auction's
    answer is proved optimal by dual potentials checked over all n² entries,
    :func:`~interpolants.coupling.certify_assignment`), so the pairing is always optimal. The
    host matrix is private to the call, so the solver may reduce it in
    place: peak host memory is the float64 matrix plus, for the auction, its float32 copy.

    Parameters
    ----------
    cost:
        A :class:`Cost` or a callable ``(x0, x1) -> (n0, n1)`` matrix; squared Euclidean by
        default.
    solver:
        The assignment solver for equal sizes (default :class:`AutoAssignmentSolver`).

    References
    ----------
    A. Tong et al., *Improving and generalizing flow-based generative models with minibatch
    optimal transport*, arXiv:2302.00482.
    A.-A. Pooladian et al., *Multisample Flow Matching: Straightening Flows with Minibatch
    Couplings*, arXiv:2304.14772.

    Example
    -------
    >>> import torch
    >>> from interpolants import OTCoupling
    >>> x0 = torch.tensor([[0.0], [10.0]])
    >>> x1 = torch.tensor([[11.0], [1.0]])
    >>> OTCoupling()(x0, x1).x0
    tensor([[10.],
            [ 0.]])
    """

    def __init__(
        self,
        cost: Cost | Callable[[Tensor, Tensor], Tensor] | None = None,
        solver: AssignmentSolver | None = None,
    ) -> None:
        self.cost = SquaredEuclideanCost() if cost is None else as_cost(cost)
        if solver is not None and not isinstance(solver, AssignmentSolver):
            raise TypeError(f"solver must be an AssignmentSolver, got {type(solver).__name__}")
        self.solver = AutoAssignmentSolver() if solver is None else solver

    def pair(
        self,
        x0: Batch0,
        x1: Batch1,
        y0: Labels0,
        y1: Labels1,
        *,
        generator: torch.Generator | None,
        want_plan: bool,
    ) -> PairIndices:
        n0, n1 = x0.shape[0], x1.shape[0]
        if n0 == n1:
            perm = self._permutation(x0, x1)  # row i -> column perm[i]
            index0 = torch.empty_like(perm)
            index0[perm] = torch.arange(n0, device=x0.device)
            plan = None
            if want_plan:
                plan = torch.zeros((n0, n1), dtype=x0.dtype, device=x0.device)
                plan[index0, torch.arange(n1, device=x1.device)] = 1.0 / n0
            return PairIndices(index0=index0, plan=plan)
        cost = cost_matrix(self.cost, x0, x1, reduced=True)
        a = weights(None, n0, cost, "w0")
        b = weights(None, n1, cost, "w1")
        plan = emd_plan(cost, a, b)
        index0 = sample_columns(torch.log(plan), generator)
        return PairIndices(index0=index0, plan=plan if want_plan else None)

    def permutation(self, x0: Batch0, x1: Batch1) -> Int[Tensor, " n"]:
        """The optimal permutation between equal-size batches, as ``int64`` on the device.

        Row ``i`` of x0 is paired with row ``perm[i]`` of x1.
        """
        check_batches(x0, x1)
        if x0.shape[0] != x1.shape[0]:
            raise ValueError(f"batches must have equal sizes, got {x0.shape[0]} and {x1.shape[0]}")
        with torch.no_grad():
            return self._permutation(x0, x1)

    def _permutation(self, x0: Tensor, x1: Tensor) -> Tensor:
        # validated inputs of equal sizes; the only n×n transfer is the one to the host below
        n = x0.shape[0]
        if n == 1:
            return torch.zeros(1, dtype=torch.int64, device=x0.device)
        dim = math.prod(x0.shape[1:])
        if isinstance(self.cost, SquaredEuclideanCost) and self.solver.prefers_points(n, dim):
            f0 = x0.detach().reshape(n, dim).to(device="cpu", dtype=torch.float64).numpy()
            f1 = x1.detach().reshape(n, dim).to(device="cpu", dtype=torch.float64).numpy()
            if not (np.isfinite(f0).all() and np.isfinite(f1).all()):
                raise nonfinite_cost(self.cost, x0, x1)
            points = self.solver.solve_points(f0, f1)
            if points is not None:
                return torch.from_numpy(points).to(x0.device)
        full = self.solver.prefers_full_cost(dim)
        host, private = _host_cost(self.cost, x0, x1, full=full)
        perm = self.solver.solve(host, dim, overwrite=private)
        return torch.from_numpy(perm).to(x0.device)

    reduced_plan_cost = True

    def weighted_plan(
        self, cost: Float[Tensor, "n0 n1"], a: Float[Tensor, " n0"], b: Float[Tensor, " n1"]
    ) -> Plan:
        """The exact plan (POT's network simplex, float64 on the host; the cost and the
        weights cross to the host and the plan comes back on the cost's device)."""
        return emd_plan(cost, a, b)

    def __repr__(self) -> str:
        return f"OTCoupling(cost={self.cost!r}, solver={self.solver!r})"
