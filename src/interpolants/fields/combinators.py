"""Field combinators: conversions as fields ``f(t, x)`` (see :mod:`interpolants.fields`)."""

import abc
from typing import final

from torch import Tensor

from .._validation import broadcast_time
from ..interpolant import Interpolant, OneSidedInterpolant
from ._core import (
    Field,
    SplitField,
    _denoiser_from_velocity,
    _deterministic,
    _noise_scale,
    _one_sided,
    _score_from_denoiser,
    _score_from_velocity,
    _target_from_velocity,
    _velocity_from_denoiser,
    _velocity_from_score,
    _velocity_from_target,
)


# --- field combinators ------------------------------------------------------------------------
class ConvertedField(abc.ABC):
    """Abstract field ``(t, x) -> tensor`` computed from other fields of an interpolant.

    Concrete combinators evaluate the wrapped field(s) at ``(t, x)`` and apply the matching
    conversion. They skip input validation (they run inside solver loops) but keep the
    singularity checks, so they raise :class:`ValueError` rather than return NaN.
    """

    def __init__(self, interpolant: Interpolant) -> None:
        if not isinstance(interpolant, Interpolant):
            raise TypeError(f"interpolant must be an Interpolant, got {type(interpolant).__name__}")
        self.interpolant = interpolant

    @abc.abstractmethod
    def __call__(self, t: Tensor, x: Tensor) -> Tensor:
        """Evaluate at ``t`` of shape ``(B,)`` (or ``()``) and ``x`` of shape ``(B, *dims)``."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.interpolant!r})"


@final
class ScoreFromVelocity(ConvertedField):
    """The field s = (βb − β̇x)/(α(αβ̇ − α̇β)) of a one-sided interpolant; singular at t = 1.

    Example
    -------
    >>> import torch
    >>> from interpolants import OneSidedLinearInterpolant
    >>> s = ScoreFromVelocity(OneSidedLinearInterpolant(), lambda t, x: torch.zeros_like(x))
    >>> s(torch.tensor([0.5]), torch.tensor([[1.0]]))  # (0.5·0 − 1·1)/(0.5·1)
    tensor([[-2.]])
    """

    def __init__(self, interpolant: OneSidedInterpolant, velocity: Field) -> None:
        super().__init__(_one_sided(interpolant, "ScoreFromVelocity"))
        self.velocity = velocity

    def __call__(self, t: Tensor, x: Tensor) -> Tensor:
        c = self.interpolant._coefficients(t)
        return _score_from_velocity(c, t, x, self.velocity(t, x))


@final
class VelocityFromScore(ConvertedField):
    """The field b = (β̇x + α(αβ̇ − α̇β)s)/β of a one-sided interpolant; singular at t = 0."""

    def __init__(self, interpolant: OneSidedInterpolant, score: Field) -> None:
        super().__init__(_one_sided(interpolant, "VelocityFromScore"))
        self.score = score

    def __call__(self, t: Tensor, x: Tensor) -> Tensor:
        c = self.interpolant._coefficients(t)
        return _velocity_from_score(c, t, x, self.score(t, x))


@final
class DenoiserFromVelocity(ConvertedField):
    """The field η_z = (β̇x − βb)/(αβ̇ − α̇β) of a one-sided interpolant; finite on [0, 1]."""

    def __init__(self, interpolant: OneSidedInterpolant, velocity: Field) -> None:
        super().__init__(_one_sided(interpolant, "DenoiserFromVelocity"))
        self.velocity = velocity

    def __call__(self, t: Tensor, x: Tensor) -> Tensor:
        c = self.interpolant._coefficients(t)
        return _denoiser_from_velocity(c, t, x, self.velocity(t, x))


@final
class VelocityFromDenoiser(ConvertedField):
    """The field b = (β̇x − (αβ̇ − α̇β)η_z)/β of a one-sided interpolant; singular at t = 0."""

    def __init__(self, interpolant: OneSidedInterpolant, denoiser: Field) -> None:
        super().__init__(_one_sided(interpolant, "VelocityFromDenoiser"))
        self.denoiser = denoiser

    def __call__(self, t: Tensor, x: Tensor) -> Tensor:
        c = self.interpolant._coefficients(t)
        return _velocity_from_denoiser(c, t, x, self.denoiser(t, x))


@final
class ScoreFromDenoiser(ConvertedField):
    """The field s = −η_z/γ (−η_z/α if one-sided); singular where γ = 0 (α = 0)."""

    def __init__(self, interpolant: Interpolant, denoiser: Field) -> None:
        super().__init__(interpolant)
        self.denoiser = denoiser

    def __call__(self, t: Tensor, x: Tensor) -> Tensor:
        c = self.interpolant._coefficients(t)
        return _score_from_denoiser(_noise_scale(self.interpolant, c), t, self.denoiser(t, x))


@final
class DenoiserFromScore(ConvertedField):
    """The field η_z = −γ s (−α s if one-sided); finite everywhere."""

    def __init__(self, interpolant: Interpolant, score: Field) -> None:
        super().__init__(interpolant)
        self.score = score

    def __call__(self, t: Tensor, x: Tensor) -> Tensor:
        c = self.interpolant._coefficients(t)
        return -broadcast_time(_noise_scale(self.interpolant, c), x) * self.score(t, x)


@final
class VelocityFromMeanAndScore(ConvertedField):
    """The field b = v − γγ̇ s from a mean-velocity field and a score field; finite everywhere."""

    def __init__(self, interpolant: Interpolant, mean_velocity: Field, score: Field) -> None:
        super().__init__(interpolant)
        self.mean_velocity = mean_velocity
        self.score = score

    def __call__(self, t: Tensor, x: Tensor) -> Tensor:
        ggd = broadcast_time(self.interpolant._gamma_schedule.gamma_gamma_dot(t), x)
        return self.mean_velocity(t, x) - ggd * self.score(t, x)


@final
class VelocityFromMeanAndDenoiser(ConvertedField):
    """The field b = v + γ̇ η_z from a mean-velocity field and a denoiser field."""

    def __init__(self, interpolant: Interpolant, mean_velocity: Field, denoiser: Field) -> None:
        super().__init__(interpolant)
        self.mean_velocity = mean_velocity
        self.denoiser = denoiser

    def __call__(self, t: Tensor, x: Tensor) -> Tensor:
        gd = broadcast_time(self.interpolant._gamma_schedule.gamma_dot(t), x)
        return self.mean_velocity(t, x) + gd * self.denoiser(t, x)


@final
class VelocityFromSplit(ConvertedField):
    """The field b = v + γ̇ η_z from one two-headed model ``(t, x) -> (v, η_z)``.

    This is how a model trained by :class:`~interpolants.objective.SplitObjective` becomes a
    velocity (one model call per evaluation).
    """

    def __init__(self, interpolant: Interpolant, model: SplitField) -> None:
        super().__init__(interpolant)
        self.model = model

    def __call__(self, t: Tensor, x: Tensor) -> Tensor:
        v, eta = self.model(t, x)
        gd = broadcast_time(self.interpolant._gamma_schedule.gamma_dot(t), x)
        return v + gd * eta


@final
class TargetFromVelocity(ConvertedField):
    """The field η1 = (αb − α̇x)/(αβ̇ − α̇β) of a deterministic (γ ≡ 0) interpolant."""

    def __init__(self, interpolant: Interpolant, velocity: Field) -> None:
        super().__init__(_deterministic(interpolant, "TargetFromVelocity"))
        self.velocity = velocity

    def __call__(self, t: Tensor, x: Tensor) -> Tensor:
        c = self.interpolant._coefficients(t)
        return _target_from_velocity(c, t, x, self.velocity(t, x))


@final
class VelocityFromTarget(ConvertedField):
    """The field b = (α̇x + (αβ̇ − α̇β)η1)/α of a deterministic interpolant; singular at t = 1.

    This is how an x1-prediction model (:class:`~interpolants.objective.TargetObjective`)
    becomes a velocity.
    """

    def __init__(self, interpolant: Interpolant, target: Field) -> None:
        super().__init__(_deterministic(interpolant, "VelocityFromTarget"))
        self.target = target

    def __call__(self, t: Tensor, x: Tensor) -> Tensor:
        c = self.interpolant._coefficients(t)
        return _velocity_from_target(c, t, x, self.target(t, x))
