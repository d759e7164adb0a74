r"""The coupling interface: pair a batch of x0 with a batch of x1.

A coupling ν of ρ0 and ρ1 changes which x0 is paired with which x1, never the marginals
(:doc:`/mathematics`): the interpolant's boundary conditions x_{t=0} = x0, x_{t=1} = x1 hold
for any coupling, and a minibatch coupling that uses each x0 and each x1 exactly once keeps
both marginals. If I is uniform on the batch and σ is a bijection, x0_I ~ ρ0 and
x1_{σ(I)} ~ ρ1.

Conventions shared by every coupling:

* ``coupling(x0, x1, y0, y1, generator=..., return_plan=...)`` returns a :class:`Pairing` with
  ``x0_out = x0[index0]`` and ``x1_out = x1[index1]``, on the inputs' device and dtype, trailing
  shapes preserved; labels (one tensor or a tuple of tensors per side) are carried along.
* The output keeps **x1's order** whenever every x1 is used once (``index1 = arange(n1)``), so
  labels attached to the data stay aligned; ``index0`` says which x0 went with each x1. x1 and
  its labels are then returned as they are, not copied.
* A coupling may *construct* one side instead of gathering it (:attr:`PairIndices.x0`, e.g.
  the data-dependent x0 = f(x1, ξ); :attr:`PairIndices.x1`, e.g. the reflow target
  x1 = X_1(x0) of a trained model): the constructed row replaces the input row at the same
  position, which keeps its labels. Such a coupling says in its docstring which marginal
  its constructed side has.
* Inputs are validated once at the call, from their metadata only: a floating dtype, a
  non-empty batch, equal trailing shapes, one device and dtype for both sides, labels of shape
  ``(n,)`` on that device. Values are checked where a coupling computes with them: every
  coupling that builds a cost matrix raises :class:`ValueError` when it holds NaN or Inf
  entries, naming ``x0`` or ``x1`` when the NaN or Inf came from a batch. The validation reads
  no tensor value, so a coupling that needs no solver (:class:`IndependentCoupling`,
  :class:`DataDependentCoupling`) never synchronises with the host when called on an
  accelerator's batch (except :class:`IndependentCoupling` in the checked mode,
  ``INTERPOLANTS_TYPECHECK=1``, where it checks the batches' values).

**Writing a coupling.** Subclass :class:`Coupling` and implement :meth:`~Coupling.pair`, which
receives validated inputs and returns a :class:`PairIndices`; the call validates, calls
``pair`` under :func:`torch.no_grad` and gathers the outputs. A coupling that solves a
transport problem subclasses :class:`PlanCoupling` and also implements
:meth:`~PlanCoupling.weighted_plan`.
"""

import abc
from dataclasses import dataclass
from typing import Union

import torch
from jaxtyping import Float, Int, Shaped
from torch import Tensor

from .._validation import check_floating
from ._cost import Cost, cost_matrix
from ._plans import weights

__all__ = [
    "Coupling",
    "PairIndices",
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

Labels0 = Union[tuple[Shaped[Tensor, " n0"], ...], None]
"""The x0 labels as :meth:`~Coupling.pair` receives them: a tuple of ``(n0,)`` tensors, or
``None``."""

Labels1 = Union[tuple[Shaped[Tensor, " n1"], ...], None]
"""The x1 labels as :meth:`~Coupling.pair` receives them: a tuple of ``(n1,)`` tensors, or
``None``."""

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
        input objects themselves, not copies. A coupling that constructs x0 or x1 (see
        :attr:`~PairIndices.x0`, :attr:`~PairIndices.x1`) returns that batch instead.
    y0, y1:
        The labels carried along (``y0_in[index0]``, ``y1_in[index1]``; tuples stay tuples), or
        ``None`` when none were given.
    index0, index1:
        ``int64`` indices of shape ``(m,)`` on the inputs' device.
    plan:
        The ``(n0, n1)`` plan the pairs come from, when the coupling computes one and
        ``return_plan=True``; otherwise ``None``.
    condition:
        The conditioning information ξ of a data-dependent coupling (e.g.
        :class:`DataDependentCoupling`) when it returns one; otherwise
        ``None``.
    """

    x0: Tensor
    x1: Tensor
    y0: Tensor | tuple[Tensor, ...] | None
    y1: Tensor | tuple[Tensor, ...] | None
    index0: Tensor
    index1: Tensor
    plan: Tensor | None = None
    condition: Tensor | None = None


@dataclass(frozen=True)
class PairIndices:
    """What :meth:`~Coupling.pair` returns: which x0 goes with which x1, and optionally more.

    The call (:meth:`~Coupling.__call__`) turns it into a :class:`Pairing`: pair ``k`` is
    ``(x0[index0[k]], x1[index1[k]])``.

    Attributes
    ----------
    index0:
        ``int64`` tensor of shape ``(m,)`` on the inputs' device: which x0 goes with each
        output pair.
    index1:
        ``int64`` tensor of shape ``(m,)`` on the inputs' device: which x1 goes with each
        output pair; ``None`` (the default) means x1 keeps its order, ``index1 = arange(n1)``
        and ``m = n1``, and the call then returns x1 and its labels without copying them.
    plan:
        The ``(n0, n1)`` plan the pairs come from; only needed when ``pair`` is called with
        ``want_plan=True`` (it is dropped otherwise), and may stay ``None`` for a coupling
        without a plan.
    x0:
        An x0 batch *constructed* by the coupling instead of gathered from the input (a
        data-dependent coupling builds x0 from x1); shape ``(n0, *dims)``, the inputs' dtype
        and device. When given, ``index0`` must be ``arange(n0)``: row ``i`` of the
        constructed batch replaces input row ``i``, whose labels it keeps.
    condition:
        Conditioning information ξ of a data-dependent coupling, returned as
        :attr:`~Pairing.condition`.
    x1:
        An x1 batch *constructed* by the coupling instead of gathered from the input (a
        model-induced coupling generates x1 from x0, e.g. :class:`ReflowCoupling
        <interpolants.coupling.ReflowCoupling>`); shape ``(n1, *dims)``, the inputs' dtype and
        device. When given, ``index1`` must be ``None``: row ``j`` of the constructed batch
        replaces input row ``j``, whose labels it keeps, and pair ``j`` is
        ``(x0[index0[j]], x1[j])``.
    """

    index0: Int[Tensor, " m"]
    index1: Int[Tensor, " m"] | None = None
    plan: Float[Tensor, "n0 n1"] | None = None
    x0: Float[Tensor, "m ..."] | None = None
    condition: Tensor | None = None
    x1: Float[Tensor, "m ..."] | None = None


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
    """Validate two batches for a coupling from their metadata (raises ``TypeError`` /
    ``ValueError``); reads no value, so it never synchronises with the device."""
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


def _check_index(index: object, name: str, device: torch.device, who: str) -> Tensor:
    if not isinstance(index, Tensor) or index.dtype != torch.int64 or index.ndim != 1:
        got = (
            f"{index.dtype} of shape {tuple(index.shape)}"
            if isinstance(index, Tensor)
            else type(index).__name__
        )
        raise TypeError(f"{who}.pair must return a 1-d int64 {name}, got {got}")
    if index.device != device:
        raise ValueError(f"{who}.pair must return {name} on {device}, got {index.device}")
    return index


def _checked(out: object, x0: Tensor, x1: Tensor, who: str) -> PairIndices:
    """The metadata of what ``pair`` returned, checked against the batches (no values read)."""
    if not isinstance(out, PairIndices):
        raise TypeError(f"{who}.pair must return a PairIndices, got {type(out).__name__}")
    m = _check_index(out.index0, "index0", x0.device, who).shape[0]
    if out.index1 is None:
        if m != x1.shape[0]:
            raise ValueError(
                f"{who}.pair returned index1=None (x1 in its order) with {m} pairs for "
                f"{x1.shape[0]} x1 samples"
            )
    elif _check_index(out.index1, "index1", x1.device, who).shape[0] != m:
        raise ValueError(f"{who}.pair returned index0 and index1 of different lengths")
    if out.x0 is not None:
        built = out.x0
        if not isinstance(built, Tensor) or built.shape != x0.shape or m != x0.shape[0]:
            got = tuple(built.shape) if isinstance(built, Tensor) else type(built).__name__
            raise ValueError(
                f"{who}.pair must construct x0 of the input's shape {tuple(x0.shape)} with "
                f"index0 = arange({x0.shape[0]}), got x0 {got} and {m} pairs"
            )
        if built.dtype != x0.dtype or built.device != x0.device:
            raise TypeError(f"{who}.pair must construct x0 with the inputs' dtype and device")
    if out.x1 is not None:
        built = out.x1
        if not isinstance(built, Tensor) or built.shape != x1.shape or out.index1 is not None:
            got = tuple(built.shape) if isinstance(built, Tensor) else type(built).__name__
            raise ValueError(
                f"{who}.pair must construct x1 of the input's shape {tuple(x1.shape)} with "
                f"index1=None, got x1 {got}"
            )
        if built.dtype != x1.dtype or built.device != x1.device:
            raise TypeError(f"{who}.pair must construct x1 with the inputs' dtype and device")
    return out


class Coupling(abc.ABC):
    """Abstract minibatch coupling of ρ0 and ρ1.

    Calling a coupling is one template for every coupling (:meth:`__call__`): validate the
    inputs once, call :meth:`pair` under :func:`torch.no_grad`, then gather
    ``x0[index0]``, ``x1[index1]`` and the labels into a :class:`Pairing` (outside
    ``no_grad``, so the pairs keep the inputs' autograd graph). A subclass implements
    :meth:`pair` only.

    The validation at the call reads only metadata (types, dtypes, devices, shapes); values
    are checked where a coupling computes with them. A coupling that builds a cost matrix
    raises :class:`ValueError` for NaN or Inf entries (naming ``x0`` or ``x1`` when a batch
    holds them); :class:`IndependentCoupling` (outside the checked mode) and
    :class:`DataDependentCoupling` never read the values, so NaN inputs pass through them,
    and they never synchronise with the host.
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
            out = self.pair(x0, x1, l0, l1, generator=generator, want_plan=return_plan)
        out = _checked(out, x0, x1, type(self).__name__)
        index0 = out.index0
        if out.x0 is None:
            x0_out, y0_out = x0[index0], _take(y0, index0)
        else:  # constructed row by row (index0 = arange(n0)): the labels stay as given
            x0_out, y0_out = out.x0, y0
        if out.index1 is None:  # x1 keeps its order: no gather (a copy of the whole batch)
            index1 = torch.arange(x1.shape[0], device=x1.device)
            x1_out, y1_out = (x1 if out.x1 is None else out.x1), y1
        else:
            index1 = out.index1
            x1_out, y1_out = x1[index1], _take(y1, index1)
        return Pairing(
            x0=x0_out,
            x1=x1_out,
            y0=y0_out,
            y1=y1_out,
            index0=index0,
            index1=index1,
            plan=out.plan if return_plan else None,
            condition=out.condition,
        )

    @abc.abstractmethod
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
        """Decide the pairs of validated batches: the method a coupling implements.

        :meth:`__call__` calls it once per call and does everything else: it validates the
        inputs before and gathers the outputs after. The contract:

        * **Inputs are validated** from their metadata: ``x0`` and ``x1`` are floating, with
          the same dtype and device, equal trailing shapes and non-empty batches. Their
          *values* are not checked: a coupling that computes with them checks what it
          consumes (the cost matrices of the built-in couplings are checked to be finite).
        * **Labels are normalised** to a tuple of ``(n0,)`` (``(n1,)``) tensors on the
          batches' device, or ``None`` when none were given, whether the caller passed one
          tensor or a tuple.
        * It is called under :func:`torch.no_grad`: the pairs are gathered afterwards, so
          they keep the inputs' autograd graph whatever ``pair`` computes.
        * It must run on the inputs' device and return its indices there (an exact solver
          may copy a cost matrix to the host, as long as it says so in its docstring).
        * When x1 keeps its order, return ``index1=None``, not ``arange(n1)`` and not a
          gathered copy of x1: the call then returns x1 and its labels as they are.

        Parameters
        ----------
        x0, x1:
            The batches, shapes ``(n0, *dims)`` and ``(n1, *dims)``.
        y0, y1:
            Their labels: tuples of ``(n0,)`` / ``(n1,)`` tensors, or ``None``.
        generator:
            The caller's random generator (on the inputs' device) for couplings that sample;
            draw every random number from it, so that a seeded call is reproducible.
        want_plan:
            Whether the caller asked for the plan (``return_plan=True``); a coupling that
            has one then returns it in :attr:`~PairIndices.plan`.

        Returns
        -------
        PairIndices
            ``index0`` (``int64``, shape ``(m,)``): which x0 goes with each pair; ``index1``:
            which x1, or ``None`` for x1 in its order (``m = n1``); ``plan``: the
            ``(n0, n1)`` plan when ``want_plan``; ``x0``: a batch the coupling constructed
            instead of gathering (``index0`` then ``arange(n0)``); ``condition``: the
            conditioning information ξ of a data-dependent coupling; ``x1``: a batch the
            coupling constructed instead of gathering (``index1`` then ``None``).

        Example
        -------
        A user-written coupling that pairs x0 in reverse order with x1 in its order:

        >>> import torch
        >>> from interpolants import Coupling
        >>> from interpolants.coupling import PairIndices
        >>> class ReverseCoupling(Coupling):
        ...     def pair(self, x0, x1, y0, y1, *, generator, want_plan):
        ...         index0 = torch.arange(x0.shape[0] - 1, -1, -1, device=x0.device)
        ...         return PairIndices(index0=index0)
        >>> x0 = torch.tensor([[0.0], [1.0], [2.0]])
        >>> x1 = torch.tensor([[10.0], [11.0], [12.0]])
        >>> p = ReverseCoupling()(x0, x1, y0=torch.tensor([0, 1, 2]))
        >>> p.x0.squeeze(1), p.y0, p.x1 is x1
        (tensor([2., 1., 0.]), tensor([2, 1, 0]), True)
        """


class PermutationCoupling(Coupling):
    """Marker: for two batches of equal size the pairing is a permutation.

    Each x0 and each x1 is used exactly once, so both minibatch marginals are exact.
    """


class PlanCoupling(Coupling):
    """Abstract coupling that solves a transport problem and exposes its plan.

    :meth:`plan` accepts weighted batches; the call (:meth:`~Coupling.__call__`) uses uniform
    weights. A subclass holds its :class:`Cost` in ``self.cost`` and
    implements :meth:`~Coupling.pair` and :meth:`weighted_plan`.

    Attributes
    ----------
    cost : Cost
        The cost whose matrix :meth:`plan` hands to :meth:`weighted_plan`.
    reduced_plan_cost : bool
        Class attribute: whether :meth:`plan` may hand :meth:`weighted_plan` the reduced cost
        (:meth:`Cost.reduced <interpolants.coupling.Cost.reduced>`, e.g. −2·x0·x1ᵀ for the
        squared Euclidean cost) instead of the cost matrix. The two differ by f(i) + g(j), so
        set it to ``True`` only when the problem solved has the same optimal plans with
        either, as balanced exact OT does; ``False`` (the default) for entropic, unbalanced
        and partial problems, whose plans depend on the cost itself.
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
            return self.weighted_plan(cost, a, b)

    @abc.abstractmethod
    def weighted_plan(
        self, cost: Float[Tensor, "n0 n1"], a: Float[Tensor, " n0"], b: Float[Tensor, " n1"]
    ) -> Plan:
        """The plan for a cost matrix and marginal weights: the method a plan coupling adds.

        :meth:`plan` calls it under :func:`torch.no_grad` with:

        * ``cost``: the ``(n0, n1)`` matrix of ``self.cost`` (its reduced form when
          :attr:`reduced_plan_cost` is true), already checked to be finite;
        * ``a``, ``b``: positive weights of shapes ``(n0,)`` and ``(n1,)``, each summing to 1,
          on the cost's device and in its dtype.

        Returns
        -------
        torch.Tensor
            The ``(n0, n1)`` plan, non-negative, on the cost's device and in its dtype. Its
            marginals are ``a`` and ``b`` for a balanced problem (up to the solver's
            tolerance); an unbalanced or partial coupling documents how they differ.
        """
