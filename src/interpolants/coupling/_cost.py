r"""Pairwise transport costs c(x0_i, x1_j) between two batches.

A cost maps a batch ``x0`` of shape ``(n0, *dims)`` and a batch ``x1`` of shape
``(n1, *dims)`` to the matrix ``C`` of shape ``(n0, n1)`` with ``C[i, j] = c(x0[i], x1[j])``,
computed on the inputs' device and in their dtype. Trailing dimensions are flattened, so an
image batch ``(B, C, H, W)`` is compared as vectors of length ``C·H·W``.

:meth:`~Cost.reduced` returns a matrix that differs from the cost by a term ``f(i) + g(j)``.
Every *balanced* transport problem (both marginals fixed) has the same optimal plans with either
matrix, because ``Σ_ij π_ij (f_i + g_j) = Σ_i a_i f_i + Σ_j b_j g_j`` does not depend on π. For
the squared Euclidean cost the reduced matrix is ``−2·x0·x1ᵀ``: one matrix product, and free of
the cancellation in ``|x0|² + |x1|² − 2⟨x0, x1⟩``.
"""

import abc
import math
from collections.abc import Callable
from typing import final

import torch
from jaxtyping import Float
from torch import Tensor

from .._validation import check_floating

__all__ = ["Cost", "CustomCost", "EuclideanCost", "SquaredEuclideanCost", "as_cost"]


def _flat(x: Tensor) -> Tensor:
    return x.reshape(x.shape[0], -1)


def _check_pair(x0: Tensor, x1: Tensor) -> None:
    """The dtype check of the built-in costs (metadata only: no value is read)."""
    check_floating(x0, "x0")
    check_floating(x1, "x1")


class Cost(abc.ABC):
    """Abstract pairwise cost between the rows of two batches with equal trailing shapes.

    A subclass implements :meth:`matrix` (and may override :meth:`reduced`). The couplings
    call them under :func:`torch.no_grad` on validated batches and check the returned matrix
    to be finite, so neither method needs to check its inputs or its output.

    Example
    -------
    >>> import torch
    >>> from interpolants import OTCoupling
    >>> from interpolants.coupling import Cost
    >>> class L1Cost(Cost):
    ...     def matrix(self, x0, x1):
    ...         return torch.cdist(x0, x1, p=1)
    >>> OTCoupling(cost=L1Cost())(torch.tensor([[0.0], [5.0]]), torch.tensor([[6.0], [1.0]])).x0
    tensor([[5.],
            [0.]])
    """

    def __call__(
        self, x0: Float[Tensor, "n0 *dims"], x1: Float[Tensor, "n1 *dims"]
    ) -> Float[Tensor, "n0 n1"]:
        """The cost matrix ``C[i, j] = c(x0[i], x1[j])``, shape ``(n0, n1)``."""
        return self.matrix(_flat(x0), _flat(x1))

    @abc.abstractmethod
    def matrix(
        self, x0: Float[Tensor, "n0 d"], x1: Float[Tensor, "n1 d"]
    ) -> Float[Tensor, "n0 n1"]:
        """The cost matrix ``C[i, j] = c(x0[i], x1[j])`` between flat batches.

        Parameters
        ----------
        x0, x1:
            Batches flattened to ``(n0, D)`` and ``(n1, D)``, same dtype and device (not
            checked for finiteness).

        Returns
        -------
        torch.Tensor
            The ``(n0, n1)`` matrix, on the inputs' device, in a floating dtype (normally
            theirs). It may be a fresh tensor or a stored one: the couplings never modify it.
        """

    def reduced(
        self, x0: Float[Tensor, "n0 d"], x1: Float[Tensor, "n1 d"]
    ) -> Float[Tensor, "n0 n1"]:
        """A matrix equal to :meth:`matrix` up to a term ``f(i) + g(j)`` (flat batches).

        Balanced transport problems have the same solutions with it (see the module notes),
        so exact OT may solve with it when it is cheaper or better conditioned. Same
        arguments and contract as :meth:`matrix`; the default is the cost itself.
        """
        return self.matrix(x0, x1)


@final
class SquaredEuclideanCost(Cost):
    r"""c(x, y) = ‖x − y‖², the cost of OT-CFM, Multisample Flow Matching and SB-CFM.

    Computed as ``|x|² + |y|² − 2·x·yᵀ`` with one matrix product on the inputs' device,
    clamped at zero against rounding. Its reduced form is ``−2·x·yᵀ``. Both methods raise
    :class:`TypeError` for batches without a floating dtype (as :class:`EuclideanCost` does).

    Example
    -------
    >>> import torch
    >>> from interpolants.coupling import SquaredEuclideanCost
    >>> SquaredEuclideanCost()(torch.zeros(1, 2), torch.tensor([[3.0, 4.0]]))
    tensor([[25.]])
    """

    def matrix(self, x0: Tensor, x1: Tensor) -> Tensor:
        _check_pair(x0, x1)
        sq0 = (x0 * x0).sum(dim=1, keepdim=True)
        sq1 = (x1 * x1).sum(dim=1)
        return torch.addmm(sq0 + sq1, x0, x1.T, alpha=-2.0).clamp_min_(0.0)

    def reduced(self, x0: Tensor, x1: Tensor) -> Tensor:
        # the factor −2 is the GEMM's alpha: no extra pass over the n0×n1 result (and, being a
        # power of two, identical to scaling afterwards away from subnormals and overflow)
        _check_pair(x0, x1)
        return torch.addmm(x0.new_zeros(()), x0, x1.T, beta=0.0, alpha=-2.0)

    def __repr__(self) -> str:
        return "SquaredEuclideanCost()"


@final
class EuclideanCost(Cost):
    """c(x, y) = ‖x − y‖ (the Wasserstein-1 cost)."""

    def matrix(self, x0: Tensor, x1: Tensor) -> Tensor:
        return SquaredEuclideanCost().matrix(x0, x1).sqrt_()

    def __repr__(self) -> str:
        return "EuclideanCost()"


@final
class CustomCost(Cost):
    """A cost given by a function of the two batches.

    Parameters
    ----------
    fn:
        Maps ``x0`` of shape ``(n0, *dims)`` and ``x1`` of shape ``(n1, *dims)`` (the original
        trailing shapes, not flattened) to a finite ``(n0, n1)`` matrix on their device.
    """

    def __init__(self, fn: Callable[[Tensor, Tensor], Tensor]) -> None:
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {type(fn).__name__}")
        self.fn = fn

    def __call__(
        self, x0: Float[Tensor, "n0 *dims"], x1: Float[Tensor, "n1 *dims"]
    ) -> Float[Tensor, "n0 n1"]:
        out = self.fn(x0, x1)
        if not isinstance(out, Tensor) or out.shape != (x0.shape[0], x1.shape[0]):
            got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
            raise ValueError(
                f"the cost function must return a ({x0.shape[0]}, {x1.shape[0]}) tensor, got {got}"
            )
        return out

    def matrix(self, x0: Tensor, x1: Tensor) -> Tensor:
        return self(x0, x1)

    def __repr__(self) -> str:
        return f"CustomCost({self.fn!r})"


def as_cost(cost: Cost | Callable[[Tensor, Tensor], Tensor]) -> Cost:
    """Return ``cost`` as a :class:`Cost` (wrapping a plain callable in :class:`CustomCost`)."""
    if isinstance(cost, Cost):
        return cost
    if callable(cost):
        return CustomCost(cost)
    raise TypeError(f"cost must be a Cost or a callable, got {type(cost).__name__}")


def cost_matrix(cost: Cost, x0: Tensor, x1: Tensor, *, reduced: bool) -> Tensor:
    """The (reduced) cost matrix of two validated batches, checked to be finite."""
    if isinstance(cost, CustomCost):
        m = cost(x0, x1)
    elif reduced:
        m = cost.reduced(_flat(x0), _flat(x1))
    else:
        m = cost.matrix(_flat(x0), _flat(x1))
    low, high = torch.aminmax(m)  # NaN and ±Inf propagate: one pass, no mask
    if not math.isfinite(float(low)) or not math.isfinite(float(high)):
        raise nonfinite_cost(cost, x0, x1)
    return m


def nonfinite_cost(cost: Cost, x0: Tensor, x1: Tensor) -> ValueError:
    """The error for a cost matrix with NaN or Inf entries, naming the batch at fault.

    Called only once the matrix is known not to be finite, so its reads of ``x0`` and ``x1``
    (one min and max each) cost nothing on the path of valid input. A NaN or an infinity in
    ``x0`` (else ``x1``) is reported as such; otherwise the cost itself produced it.
    """
    for x, name in ((x0, "x0"), (x1, "x1")):
        if x.numel():
            low, high = torch.aminmax(x.detach().reshape(-1))
            if not (math.isfinite(float(low)) and math.isfinite(float(high))):
                return ValueError(
                    f"{name} contains NaN or Inf values (so does the cost matrix of {cost!r})"
                )
    return ValueError(f"the cost matrix of {cost!r} contains NaN or Inf values")
