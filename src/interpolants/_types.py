"""Shape aliases used in every public signature (one place, as in diffrax).

The dimension names are shared across the arguments of one call: under runtime checking
(``jaxtyping`` + ``beartype``) a ``Time`` of shape ``(batch,)`` and a ``State`` of shape
``(batch, *dims)`` passed to the same function must agree on ``batch``.
"""

from typing import Union

from jaxtyping import Bool, Float, Int, Shaped
from torch import Tensor

__all__ = [
    "Coefficient",
    "Labels",
    "Matrix",
    "Scalar",
    "State",
    "Time",
    "TimeLike",
    "Times",
    "Vector",
    "Weights",
]

Scalar = Float[Tensor, ""]
"""A zero-dimensional floating tensor."""

Time = Float[Tensor, " batch"]
"""One time per sample, shape ``(batch,)``."""

Times = Float[Tensor, "*times"]
"""Times of any shape (``()``, ``(B,)``, a grid ...), the argument of an elementwise schedule
such as α, β, γ or ε, whose value has the same shape."""

TimeLike = Union[float, int, Float[Tensor, ""], Float[Tensor, " batch"]]
"""A time given as a Python number, a scalar tensor, or one value per sample."""

Coefficient = Union[Float[Tensor, ""], Float[Tensor, " batch"]]
"""A schedule value such as α, β or γ at a time, of the shape of that time."""

State = Float[Tensor, "batch *dims"]
"""A batch of samples with any trailing shape, such as ``(B,)``, ``(B, d)``, ``(B, C, H, W)``."""

Vector = Float[Tensor, "batch dim"]
"""A batch of flat vectors, shape ``(batch, dim)``."""

Matrix = Float[Tensor, "rows cols"]
"""A dense matrix, e.g. a cost matrix or a transport plan."""

Weights = Float[Tensor, " n"]
"""Non-negative weights of ``n`` atoms or mixture components."""

Labels = Shaped[Tensor, " batch"]
"""One label per sample (any integer or boolean dtype)."""

# Re-exported for modules that need the element-type wrappers directly.
_ = (Bool, Int)
