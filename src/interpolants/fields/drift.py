"""SDE drifts b ± ε s (see :mod:`interpolants.fields`)."""

from collections.abc import Callable
from typing import Literal, final

from torch import Tensor

from .._validation import broadcast_time
from ._core import Field


# --- SDE drifts -------------------------------------------------------------------------------
@final
class SDEDrift:
    r"""The drift b(t, x) + ε(t)·s(t, x) (forward) or b(t, x) − ε(t)·s(t, x) (backward).

    Arguments
    ---------
    velocity:
        The velocity field b(t, x).
    score:
        The score field s(t, x).
    epsilon:
        The diffusion coefficient ε(t) ≥ 0 as a function of ``t`` (shape ``(B,)``); it may
        return shape ``(B,)`` or a scalar, broadcast over the trailing dims of ``x``.
    direction:
        ``"forward"`` for b + εs (integrate from ρ0 at t = 0 up to 1), ``"backward"`` for
        b − εs (integrate from ρ1 at t = 1 down to 0).

    Example
    -------
    >>> import torch
    >>> drift = SDEDrift(lambda t, x: x, lambda t, x: -x, lambda t: 0.5 * t, "forward")
    >>> drift(torch.tensor([1.0]), torch.tensor([[2.0]]))  # 2 + 0.5·(−2)
    tensor([[1.]])
    """

    def __init__(
        self,
        velocity: Field,
        score: Field,
        epsilon: Callable[[Tensor], Tensor],
        direction: Literal["forward", "backward"],
    ) -> None:
        if direction not in ("forward", "backward"):
            raise ValueError(f"direction must be 'forward' or 'backward', got {direction!r}")
        self.velocity = velocity
        self.score = score
        self.epsilon = epsilon
        self.direction = direction

    def __call__(self, t: Tensor, x: Tensor) -> Tensor:
        eps = broadcast_time(self.epsilon(t), x)
        if self.direction == "forward":
            return self.velocity(t, x) + eps * self.score(t, x)
        return self.velocity(t, x) - eps * self.score(t, x)

    def __repr__(self) -> str:
        return f"SDEDrift(direction={self.direction!r})"


def sde_drift(
    velocity: Field,
    score: Field,
    epsilon: Callable[[Tensor], Tensor],
    direction: Literal["forward", "backward"],
) -> SDEDrift:
    """The callable ``(t, x) -> b(t, x) ± ε(t)·s(t, x)``; see :class:`SDEDrift`."""
    return SDEDrift(velocity, score, epsilon, direction)
