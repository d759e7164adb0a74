"""Conversions between the fields of an interpolant, as fields ``f(t, x)``.

Each class evaluates the wrapped field(s) at ``(t, x)`` and applies the matching exact
conversion of the interpolant (:meth:`~Interpolant.score_from_velocity` and its
siblings): the formulas are written once, in the interpolant. Whether a conversion applies
(a one-sided interpolant for the closed forms between b, s and η_z; γ ≡ 0 for the target
prediction; a noise for the score) is checked when the field is built.
"""

import abc
from typing import final

from jaxtyping import Float
from torch import Tensor

from .._types import State, Time
from ..interpolant._base import Interpolant
from ._types import Field, SplitField

__all__ = [
    "ConvertedField",
    "DenoiserFromScore",
    "DenoiserFromVelocity",
    "ScoreFromDenoiser",
    "ScoreFromVelocity",
    "TargetFromVelocity",
    "VelocityFromDenoiser",
    "VelocityFromMeanAndDenoiser",
    "VelocityFromMeanAndScore",
    "VelocityFromScore",
    "VelocityFromSplit",
    "VelocityFromTarget",
]


class ConvertedField(abc.ABC):
    """Abstract field ``(t, x) -> tensor`` computed from other fields by an interpolant.

    A subclass stores the fields it wraps and implements :meth:`__call__`. The integrators
    call it once per stage with ``t`` of shape ``(B,)`` and ``x`` of shape ``(B, *dims)``; it
    reads no tensor values on the host, so it never synchronises a device (where a conversion
    is singular the value is non-finite, which the integrators report once per call).

    Parameters
    ----------
    interpolant:
        The interpolant whose conversion is applied.

    Example
    -------
    >>> import torch
    >>> from interpolants import LinearInterpolant, BrownianGamma
    >>> from interpolants.fields import ConvertedField
    >>> class MeanFromVelocityAndScore(ConvertedField):  # v = b + γγ̇ s
    ...     def __init__(self, interpolant, velocity, score):
    ...         super().__init__(interpolant)
    ...         self.velocity, self.score = velocity, score
    ...     def __call__(self, t, x):
    ...         return self.interpolant.mean_velocity_from_velocity_and_score(
    ...             t, self.velocity(t, x), self.score(t, x))
    >>> v = MeanFromVelocityAndScore(LinearInterpolant(BrownianGamma()),
    ...                              lambda t, x: x, lambda t, x: -x)
    >>> v(torch.tensor([0.25]), torch.ones(1, 2))  # 1 − γγ̇ with γγ̇ = (1 − 2t)/2 = 0.25
    tensor([[0.7500, 0.7500]])
    """

    def __init__(self, interpolant: Interpolant) -> None:
        if not isinstance(interpolant, Interpolant):
            raise TypeError(f"interpolant must be an Interpolant, got {type(interpolant).__name__}")
        self.interpolant = interpolant

    @abc.abstractmethod
    def __call__(self, t: Time, x: Float[Tensor, "batch *dims"]) -> State:
        """Evaluate at ``t`` of shape ``(B,)`` (or ``()``) and ``x`` of shape ``(B, *dims)``."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.interpolant!r})"


def _output(value: object, x: Tensor, name: str) -> Tensor:
    """``value``, the output of the wrapped field ``name`` at ``(t, x)``, checked to be a tensor
    of ``x``'s shape (metadata only: no value is read, so no device synchronisation)."""
    if not isinstance(value, Tensor) or value.shape != x.shape:
        got = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
        raise ValueError(
            f"{name}(t, x) must return a tensor of x's shape {tuple(x.shape)}, got {got}"
        )
    return value


@final
class ScoreFromVelocity(ConvertedField):
    """s from the velocity b of a one-sided interpolant; singular at t = 1.

    Example
    -------
    >>> import torch
    >>> from interpolants.interpolant import OneSidedLinearInterpolant
    >>> s = ScoreFromVelocity(OneSidedLinearInterpolant(), lambda t, x: torch.zeros_like(x))
    >>> s(torch.tensor([0.5]), torch.tensor([[1.0]]))  # (0.5·0 − 1·1)/(0.5·1)
    tensor([[-2.]])
    """

    def __init__(self, interpolant: Interpolant, velocity: Field) -> None:
        super().__init__(interpolant)
        interpolant.require_one_sided("ScoreFromVelocity")
        self.velocity = velocity

    def __call__(self, t: Tensor, x: Tensor) -> Tensor:
        return self.interpolant.score_from_velocity(
            t, x, _output(self.velocity(t, x), x, "velocity")
        )


@final
class VelocityFromScore(ConvertedField):
    """b from the score s of a one-sided interpolant; singular at t = 0."""

    def __init__(self, interpolant: Interpolant, score: Field) -> None:
        super().__init__(interpolant)
        interpolant.require_one_sided("VelocityFromScore")
        self.score = score

    def __call__(self, t: Tensor, x: Tensor) -> Tensor:
        return self.interpolant.velocity_from_score(t, x, _output(self.score(t, x), x, "score"))


@final
class DenoiserFromVelocity(ConvertedField):
    """η_z from the velocity b of a one-sided interpolant; finite on [0, 1]."""

    def __init__(self, interpolant: Interpolant, velocity: Field) -> None:
        super().__init__(interpolant)
        interpolant.require_one_sided("DenoiserFromVelocity")
        self.velocity = velocity

    def __call__(self, t: Tensor, x: Tensor) -> Tensor:
        return self.interpolant.denoiser_from_velocity(
            t, x, _output(self.velocity(t, x), x, "velocity")
        )


@final
class VelocityFromDenoiser(ConvertedField):
    """b from the denoiser η_z of a one-sided interpolant; singular at t = 0."""

    def __init__(self, interpolant: Interpolant, denoiser: Field) -> None:
        super().__init__(interpolant)
        interpolant.require_one_sided("VelocityFromDenoiser")
        self.denoiser = denoiser

    def __call__(self, t: Tensor, x: Tensor) -> Tensor:
        return self.interpolant.velocity_from_denoiser(
            t, x, _output(self.denoiser(t, x), x, "denoiser")
        )


def _require_noise(interpolant: Interpolant, what: str) -> None:
    if not interpolant.has_noise:
        raise TypeError(
            f"{what} needs a noise: a stochastic (γ ≠ 0) or one-sided interpolant, got "
            f"{interpolant!r} (its noise scale σ vanishes everywhere)"
        )


@final
class ScoreFromDenoiser(ConvertedField):
    """s = −η_z/σ (σ = γ, or α if one-sided); singular where σ = 0 (the ends)."""

    def __init__(self, interpolant: Interpolant, denoiser: Field) -> None:
        super().__init__(interpolant)
        _require_noise(interpolant, "ScoreFromDenoiser")
        self.denoiser = denoiser

    def __call__(self, t: Tensor, x: Tensor) -> Tensor:
        return self.interpolant.score_from_denoiser(t, _output(self.denoiser(t, x), x, "denoiser"))


@final
class DenoiserFromScore(ConvertedField):
    """η_z = −σ s (σ = γ, or α if one-sided); finite everywhere."""

    def __init__(self, interpolant: Interpolant, score: Field) -> None:
        super().__init__(interpolant)
        self.score = score

    def __call__(self, t: Tensor, x: Tensor) -> Tensor:
        return self.interpolant.denoiser_from_score(t, _output(self.score(t, x), x, "score"))


@final
class VelocityFromMeanAndScore(ConvertedField):
    """b = v − γγ̇ s from a mean-velocity field and a score field; finite everywhere."""

    def __init__(self, interpolant: Interpolant, mean_velocity: Field, score: Field) -> None:
        super().__init__(interpolant)
        self.mean_velocity = mean_velocity
        self.score = score

    def __call__(self, t: Tensor, x: Tensor) -> Tensor:
        return self.interpolant.velocity_from_mean_and_score(
            t,
            _output(self.mean_velocity(t, x), x, "mean_velocity"),
            _output(self.score(t, x), x, "score"),
        )


@final
class VelocityFromMeanAndDenoiser(ConvertedField):
    """b = v + γ̇ η_z from a mean-velocity field and a denoiser field."""

    def __init__(self, interpolant: Interpolant, mean_velocity: Field, denoiser: Field) -> None:
        super().__init__(interpolant)
        self.mean_velocity = mean_velocity
        self.denoiser = denoiser

    def __call__(self, t: Tensor, x: Tensor) -> Tensor:
        return self.interpolant.velocity_from_mean_and_denoiser(
            t,
            _output(self.mean_velocity(t, x), x, "mean_velocity"),
            _output(self.denoiser(t, x), x, "denoiser"),
        )


@final
class VelocityFromSplit(ConvertedField):
    """b = v + γ̇ η_z from one two-headed model ``(t, x) -> (v, η_z)``.

    This is how a model trained by :class:`SplitObjective` becomes a
    velocity (one model call per evaluation).
    """

    def __init__(self, interpolant: Interpolant, model: SplitField) -> None:
        super().__init__(interpolant)
        self.model = model

    def __call__(self, t: Tensor, x: Tensor) -> Tensor:
        out = self.model(t, x)
        if not (
            isinstance(out, tuple)
            and len(out) == 2
            and all(isinstance(v, Tensor) and v.shape == x.shape for v in out)
        ):
            got = (
                tuple(tuple(v.shape) if isinstance(v, Tensor) else type(v).__name__ for v in out)
                if isinstance(out, tuple)
                else type(out).__name__
            )
            raise ValueError(
                f"model(t, x) must return a pair (v, η_z) of tensors of x's shape "
                f"{tuple(x.shape)}, got {got}"
            )
        return self.interpolant.velocity_from_mean_and_denoiser(t, out[0], out[1])


@final
class TargetFromVelocity(ConvertedField):
    """η1 = (αb − α̇x)/(αβ̇ − α̇β) of a deterministic (γ ≡ 0) interpolant."""

    def __init__(self, interpolant: Interpolant, velocity: Field) -> None:
        super().__init__(interpolant)
        interpolant.require_deterministic("TargetFromVelocity")
        self.velocity = velocity

    def __call__(self, t: Tensor, x: Tensor) -> Tensor:
        return self.interpolant.target_from_velocity(
            t, x, _output(self.velocity(t, x), x, "velocity")
        )


@final
class VelocityFromTarget(ConvertedField):
    """b = (α̇x + (αβ̇ − α̇β)η1)/α of a deterministic interpolant; singular at t = 1.

    This is how an x1-prediction model (:class:`TargetObjective`)
    becomes a velocity.
    """

    def __init__(self, interpolant: Interpolant, target: Field) -> None:
        super().__init__(interpolant)
        interpolant.require_deterministic("VelocityFromTarget")
        self.target = target

    def __call__(self, t: Tensor, x: Tensor) -> Tensor:
        return self.interpolant.velocity_from_target(t, x, _output(self.target(t, x), x, "target"))
