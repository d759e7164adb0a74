"""The field protocol: callables ``f(t, x)`` (see :mod:`interpolants.fields`)."""

from collections.abc import Callable

from torch import Tensor

__all__ = ["Field", "SplitField"]

Field = Callable[[Tensor, Tensor], Tensor]
"""The field protocol ``f(t, x)``: ``t`` of shape ``(B,)``, ``x`` and output ``(B, *dims)``."""

SplitField = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]
"""A two-headed model ``f(t, x) -> (v, η_z)`` as trained by the split objective."""
