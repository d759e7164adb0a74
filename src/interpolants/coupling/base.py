r"""The coupling interface: pair a batch of x0 with a batch of x1.

A coupling ν of ρ0 and ρ1 changes which x0 is paired with which x1, never the marginals
(MATH.md §5): the interpolant's boundary conditions x_{t=0} = x0, x_{t=1} = x1 hold for any
coupling, and a minibatch coupling that uses each x0 and each x1 exactly once keeps both
marginals. If I is uniform on the batch and σ is a bijection, x0_I ~ ρ0 and x1_{σ(I)} ~ ρ1.

Conventions shared by every coupling:

* ``coupling(x0, x1, y0, y1, generator=..., return_plan=...)`` returns a :class:`Pairing` with
  ``x0_out = x0[index0]`` and ``x1_out = x1[index1]``, on the inputs' device and dtype, trailing
  shapes preserved; labels (one tensor or a tuple of tensors per side) are carried along.
* The output keeps **x1's order** whenever every x1 is used once (``index1 = arange(n1)``), so
  labels attached to the data stay aligned; ``index0`` says which x0 went with each x1. x1 and
  its labels are then returned as they are, not copied.
* Inputs are validated once at the call: a floating dtype, finite values, a non-empty batch,
  equal trailing shapes, one device and dtype for both sides.
"""

import abc
import math
from dataclasses import dataclass
from typing import Union, final

import torch
from jaxtyping import Float, Shaped
from torch import Tensor

from .._validation import check_finite, check_floating
from .cost import Cost, cost_matrix

__all__ = [
    "Coupling",
    "IndependentCoupling",
    "Pairing",
    "PermutationCoupling",
    "PlanCoupling",
]

Batch0 = Float[Tensor, "n0 ..."]
"""The x0 batch: ``n0`` samples of any trailing shape."""

Batch1 = Float[Tensor, "n1 ..."]
"""The x1 batch: ``n1`` samples with x0's trailing shape."""

LabelArg = Union[Shaped[Tensor, " _"], tuple[Shaped[Tensor, " _"], ...], None]
"""Labels of one side: one tensor of shape ``(n,)``, a tuple of them, or ``None``."""

Plan = Float[Tensor, "n0 n1"]
"""A transport plan between the two batches (non-negative, total mass 1)."""


@dataclass(frozen=True)
class Pairing:
    """The paired batches returned by a :class:`Coupling`.

    Attributes
    ----------
    x0, x1:
        The paired batches, ``x0 = x0_in[index0]`` and ``x1 = x1_in[index1]``, shape
        ``(m, *dims)`` (``m = n`` for equal batches), on the inputs' device and dtype. When
        the coupling keeps x1's order (``index1 = arange(n1)``), ``x1`` and ``y1`` are the
        input objects themselves, not copies.
    y0, y1:
        The labels carried along (``y0_in[index0]``, ``y1_in[index1]``; tuples stay tuples), or
        ``None`` when none were given.
    index0, index1:
        ``int64`` indices of shape ``(m,)`` on the inputs' device.
    plan:
        The ``(n0, n1)`` plan the pairs come from, when the coupling computes one and
        ``return_plan=True``; otherwise ``None``.
    condition:
        The conditioning information ξ of a :class:`~interpolants.coupling.DataDependentCoupling`
        when its function returns one; otherwise ``None``.
    """

    x0: Tensor
    x1: Tensor
    y0: Tensor | tuple[Tensor, ...] | None
    y1: Tensor | tuple[Tensor, ...] | None
    index0: Tensor
    index1: Tensor
    plan: Tensor | None = None
    condition: Tensor | None = None


def _labels(y: LabelArg, n: int, device: torch.device, name: str) -> tuple[Tensor, ...] | None:
    if y is None:
        return None
    ys = y if isinstance(y, tuple) else (y,)
    if not ys:
        raise ValueError(f"{name} must hold at least one label tensor, got an empty tuple")
    for k, t in enumerate(ys):
        where = name if isinstance(y, Tensor) else f"{name}[{k}]"
        if not isinstance(t, Tensor) or t.shape != (n,):
            got = tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__
            raise ValueError(f"{where} must have shape ({n},), got {got}")
        if t.device != device:
            raise ValueError(f"{where} must be on the batch's device {device}, got {t.device}")
    return ys


def _take(y: LabelArg, index: Tensor) -> Tensor | tuple[Tensor, ...] | None:
    if y is None:
        return None
    if isinstance(y, tuple):
        return tuple(t[index] for t in y)
    return y[index]


def check_batches(x0: Tensor, x1: Tensor) -> None:
    """Validate two batches for a coupling (raises ``TypeError`` / ``ValueError``)."""
    check_floating(x0, "x0")
    check_floating(x1, "x1")
    if x0.ndim == 0 or x1.ndim == 0:
        raise ValueError("x0 and x1 must have a batch dimension, got a 0-d tensor")
    if x0.shape[1:] != x1.shape[1:]:
        raise ValueError(
            f"x1 must have x0's trailing shape {tuple(x0.shape[1:])}, got {tuple(x1.shape[1:])}"
        )
    if x0.shape[0] == 0 or x1.shape[0] == 0:
        raise ValueError(
            f"x0 and x1 must be non-empty batches, got sizes {x0.shape[0]} and {x1.shape[0]}"
        )
    if x1.dtype != x0.dtype or x1.device != x0.device:
        raise TypeError(
            f"x1 must have x0's dtype and device ({x0.dtype}, {x0.device}), "
            f"got ({x1.dtype}, {x1.device})"
        )
    check_finite(x0, "x0")
    check_finite(x1, "x1")


class Coupling(abc.ABC):
    """Abstract minibatch coupling of ρ0 and ρ1.

    Subclasses implement :meth:`_pair`, which receives validated inputs and returns the index
    tensors (and the plan, if any); :meth:`__call__` validates once and gathers the outputs.
    """

    def __call__(
        self,
        x0: Batch0,
        x1: Batch1,
        y0: LabelArg = None,
        y1: LabelArg = None,
        *,
        generator: torch.Generator | None = None,
        return_plan: bool = False,
    ) -> Pairing:
        """Pair the batches.

        Parameters
        ----------
        x0, x1:
            Batches of shapes ``(n0, *dims)`` and ``(n1, *dims)``, same dtype and device.
        y0, y1:
            Optional labels of shape ``(n0,)`` / ``(n1,)``, or tuples of such tensors.
        generator:
            Random generator for couplings that sample (on the inputs' device).
        return_plan:
            Also return the ``(n0, n1)`` transport plan (dense; memory ``n0·n1``).

        Returns
        -------
        Pairing
            The paired batches, labels, indices and optionally the plan.
        """
        check_batches(x0, x1)
        l0 = _labels(y0, x0.shape[0], x0.device, "y0")
        l1 = _labels(y1, x1.shape[0], x1.device, "y1")
        with torch.no_grad():
            index0, index1, plan = self._pair(x0, x1, l0, l1, generator, return_plan)
        x1_out, y1_out = x1, y1  # x1 keeps its order: no gather (a copy of the whole batch)
        if index1 is None:
            index1 = torch.arange(x1.shape[0], device=x1.device)
        else:
            x1_out, y1_out = x1[index1], _take(y1, index1)
        return Pairing(
            x0=x0[index0],
            x1=x1_out,
            y0=_take(y0, index0),
            y1=y1_out,
            index0=index0,
            index1=index1,
            plan=plan if return_plan else None,
        )

    @abc.abstractmethod
    def _pair(
        self,
        x0: Tensor,
        x1: Tensor,
        y0: tuple[Tensor, ...] | None,
        y1: tuple[Tensor, ...] | None,
        generator: torch.Generator | None,
        want_plan: bool,
    ) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """Return ``(index0, index1, plan)`` for validated inputs (no grad).

        ``index1`` is ``None`` when x1 keeps its order (``arange(n1)``); ``plan`` may be
        ``None`` when ``want_plan`` is false or the coupling has no plan.
        """


class PermutationCoupling(Coupling):
    """Marker: for two batches of equal size the pairing is a permutation.

    Each x0 and each x1 is used exactly once, so both minibatch marginals are exact.
    """


class PlanCoupling(Coupling):
    """Marker: the coupling solves a transport problem and exposes its plan.

    :meth:`plan` accepts weighted batches; the call (:meth:`Coupling.__call__`) uses uniform
    weights. Subclasses hold their :class:`~interpolants.coupling.Cost` in ``self.cost`` and
    solve the weighted problem in :meth:`_weighted_plan`; ``reduced_plan_cost`` says whether
    the solver may take the reduced cost −2·x0·x1ᵀ (same optimum for exact OT only).
    """

    cost: Cost
    reduced_plan_cost: bool = False

    def plan(
        self,
        x0: Batch0,
        x1: Batch1,
        w0: Float[Tensor, " n0"] | None = None,
        w1: Float[Tensor, " n1"] | None = None,
    ) -> Plan:
        """The ``(n0, n1)`` plan between the batches with weights ``w0``, ``w1``.

        Weights must be non-negative with equal positive sums (they are normalised to 1);
        ``None`` means uniform.
        """
        check_batches(x0, x1)
        with torch.no_grad():
            cost = cost_matrix(self.cost, x0, x1, reduced=self.reduced_plan_cost)
            a = weights(w0, x0.shape[0], cost, "w0")
            b = weights(w1, x1.shape[0], cost, "w1")
            return self._weighted_plan(cost, a, b)

    @abc.abstractmethod
    def _weighted_plan(self, cost: Tensor, a: Tensor, b: Tensor) -> Tensor:
        """The plan for a validated ``(n0, n1)`` cost and marginals ``a``, ``b`` (no grad)."""


def weights(w: Tensor | None, n: int, like: Tensor, name: str) -> Tensor:
    """Validated weights summing to 1, on ``like``'s device and dtype (uniform if ``None``)."""
    if w is None:
        return torch.full((n,), 1.0 / n, dtype=like.dtype, device=like.device)
    check_floating(w, name)
    if w.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), got {tuple(w.shape)}")
    check_finite(w, name)
    total = float(w.sum())
    if bool((w < 0).any()) or not total > 0:
        raise ValueError(f"{name} must be non-negative with a positive sum")
    return (w / total).to(dtype=like.dtype, device=like.device)


def sample_columns(log_plan: Tensor, generator: torch.Generator | None) -> Tensor:
    """For each column j draw a row i with probability π_ij / Σ_i π_ij, on the plan's device.

    Returns ``index0`` of shape ``(n1,)``: every x1 is used once, x0 is drawn from the plan's
    conditional given x1. Inverse-CDF sampling on all columns at once: one uniform per column
    against the column's cumulative sums (accumulated in float64), i = #{k : F_kj ≤ U_j F_nj};
    rows of zero probability are never drawn. About 3.5× faster on CPU (n = 1024) than
    ``torch.multinomial`` on the softmax-normalised columns, in the same number of passes over
    the plan on any device.
    """
    n0, n1 = log_plan.shape
    # a row-major copy with one row per column (the scans below run along rows), in at least
    # float32 (float16's smallest normal number would zero weights below 1e-4 of the maximum)
    dtype = torch.promote_types(log_plan.dtype, torch.float32)
    cols = torch.empty((n1, n0), dtype=dtype, device=log_plan.device).copy_(log_plan.T)
    # column maxima 1; weights below twice the smallest normal float (≤ 1e-35 of a column's
    # mass in float32) set to 0 and exponents clamped first, since subnormal arithmetic is
    # several times slower on CPU; zero-probability rows (log π = −∞) stay exactly 0
    tiny = torch.finfo(cols.dtype).tiny
    peak = cols.amax(dim=1, keepdim=True)
    if not bool(torch.isfinite(peak).all()):
        raise ValueError("every column of the plan needs positive, finite mass to sample from")
    cols = cols.sub_(peak).clamp_(min=math.log(tiny)).exp_()
    cols = torch.nn.functional.threshold(cols, 2.0 * tiny, 0.0, inplace=True)
    cdf = torch.cumsum(cols, dim=1, dtype=torch.float64)
    u = torch.rand(n1, generator=generator, device=log_plan.device, dtype=torch.float64)
    return (cdf <= (u * cdf[:, -1])[:, None]).sum(dim=1).clamp_(max=n0 - 1)


def balanced_draw(
    n0: int, n1: int, device: torch.device, generator: torch.Generator | None
) -> Tensor:
    """``n1`` indices into ``range(n0)``, each used ⌊n1/n0⌋ or ⌈n1/n0⌉ times, in random order.

    For ``n0 == n1`` this is a uniformly random permutation.
    """
    reps = -(-n1 // n0)
    pool = torch.cat([torch.randperm(n0, generator=generator, device=device) for _ in range(reps)])
    return pool[:n1][torch.randperm(n1, generator=generator, device=device)]


@final
class IndependentCoupling(PermutationCoupling):
    """The independent coupling ν = ρ0 ⊗ ρ1: x0 is paired with x1 at random.

    For equal sizes ``index0`` is a uniformly random permutation (drawn with ``generator``), so
    the pairing is independent even if the batches arrive in a correlated order. For unequal
    sizes every x1 is used once and every x0 ⌊n1/n0⌋ or ⌈n1/n0⌉ times.

    Example
    -------
    >>> import torch
    >>> from interpolants.coupling import IndependentCoupling
    >>> x0, x1 = torch.randn(8, 2), torch.randn(8, 2)
    >>> p = IndependentCoupling()(x0, x1, generator=torch.Generator().manual_seed(0))
    >>> sorted(p.index0.tolist()) == list(range(8))
    True
    """

    def _pair(
        self,
        x0: Tensor,
        x1: Tensor,
        y0: tuple[Tensor, ...] | None,
        y1: tuple[Tensor, ...] | None,
        generator: torch.Generator | None,
        want_plan: bool,
    ) -> tuple[Tensor, Tensor | None, Tensor | None]:
        n0, n1 = x0.shape[0], x1.shape[0]
        index0 = balanced_draw(n0, n1, x0.device, generator)
        plan = None
        if want_plan:
            plan = torch.full((n0, n1), 1.0 / (n0 * n1), dtype=x0.dtype, device=x0.device)
        return index0, None, plan

    def __repr__(self) -> str:
        return "IndependentCoupling()"
