r"""The built-in interpolant families (see :doc:`/mathematics` for their coefficients)."""

import math
from collections.abc import Callable
from typing import final

import torch
from torch import Tensor

from .._types import Times
from ._base import Interpolant
from ._gamma import (
    BrownianGamma,
    GammaSchedule,
    NoGamma,
    SineSquaredGamma,
    check_schedule,
    time_derivative,
)
from ._one_sided import OneSidedInterpolant

__all__ = [
    "CustomInterpolant",
    "EncoderDecoderInterpolant",
    "LinearInterpolant",
    "MirrorInterpolant",
    "OneSidedLinearInterpolant",
    "TrigonometricInterpolant",
    "VPInterpolant",
]


_HALF_PI = 0.5 * math.pi


def _cos_half_pi(t: Tensor, half_pi_t: Tensor | None = None) -> Tensor:
    """cos(πt/2) written as sin(π/2 − πt/2), so that it is exactly 0 at t = 1 in floating point
    (π/2·1 rounds to π/2 itself); ``half_pi_t`` is πt/2 if already computed."""
    if half_pi_t is None:
        half_pi_t = t * _HALF_PI
    return torch.sin(torch.rsub(half_pi_t, _HALF_PI))


def _vp_schedule(t: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(α, β, α̇, β̇) = (cos, sin, −(π/2) sin, (π/2) cos)(πt/2), the VP path, from one product
    πt/2 and one sine each (cos exactly 0 at t = 1)."""
    half_pi_t = t * _HALF_PI
    sin, cos = torch.sin(half_pi_t), _cos_half_pi(t, half_pi_t)
    return cos, sin, sin * -_HALF_PI, cos * _HALF_PI


@final
class LinearInterpolant(Interpolant):
    r"""α = 1 − t, β = t: x_t = (1−t)x0 + t x1 + γ(t)z.

    With γ ≡ 0 this is the conditional-OT path of flow matching / rectified flow (velocity
    target x1 − x0); with γ = σ√(t(1−t)) (``BrownianGamma(a=σ**2)``) it is the
    Schrödinger-bridge interpolant of SB-CFM.
    """

    constant_rates = (-1.0, 1.0)

    def __init__(self, gamma: GammaSchedule | None = None) -> None:
        super().__init__(NoGamma() if gamma is None else gamma)

    def alpha(self, t: Times) -> Times:
        return torch.rsub(t, 1.0)

    def beta(self, t: Times) -> Times:
        return t

    def alpha_dot(self, t: Times) -> Times:
        return torch.full_like(t, -1.0)

    def beta_dot(self, t: Times) -> Times:
        return torch.ones_like(t)


@final
class TrigonometricInterpolant(Interpolant):
    r"""α = √(1−γ²)·cos(πt/2), β = √(1−γ²)·sin(πt/2), so that α² + β² + γ² = 1.

    Variance preserving for independent unit-variance x0, x1 and z. The derivatives are
    α̇ = −(γγ̇/√(1−γ²))cos(πt/2) − (π/2)√(1−γ²)sin(πt/2) and the analogous β̇; they use the
    closed-form γγ̇, so they are finite at both ends even for the Brownian γ. Requires γ < 1.
    """

    def __init__(self, gamma: GammaSchedule | None = None) -> None:
        gamma = NoGamma() if gamma is None else gamma
        if gamma.sup >= 1:
            raise ValueError(
                f"the trigonometric interpolant needs γ < 1 on [0, 1], got sup γ = {gamma.sup}"
            )
        super().__init__(gamma)

    def schedule(self, t: Times) -> tuple[Times, Times, Times, Times]:
        cos, sin, minus_sin, plus_cos = _vp_schedule(t)
        if not self.is_stochastic:  # √(1 − γ²) = 1: the VP path's values
            return cos, sin, minus_sin, plus_cos
        r = self._root(t)
        slope = self.gamma_gamma_dot(t) / r  # d√(1 − γ²)/dt = −γγ̇/√(1 − γ²)
        return (
            r * cos,
            r * sin,
            torch.addcmul(r * minus_sin, slope, cos, value=-1.0),
            torch.addcmul(r * plus_cos, slope, sin, value=-1.0),
        )

    def _root(self, t: Tensor) -> Tensor:
        return torch.sqrt(1 - self.gamma(t) ** 2)

    def alpha(self, t: Times) -> Times:
        cos = _cos_half_pi(t)
        return self._root(t) * cos if self.is_stochastic else cos

    def beta(self, t: Times) -> Times:
        sin = torch.sin(t * _HALF_PI)
        return self._root(t) * sin if self.is_stochastic else sin

    def alpha_dot(self, t: Times) -> Times:
        if not self.is_stochastic:
            return torch.sin(t * _HALF_PI) * -_HALF_PI
        return self.schedule(t)[2]

    def beta_dot(self, t: Times) -> Times:
        if not self.is_stochastic:
            return _cos_half_pi(t) * _HALF_PI
        return self.schedule(t)[3]


@final
class EncoderDecoderInterpolant(Interpolant):
    r"""α = cos²(πt)·1[t ≤ ½], β = cos²(πt)·1[t > ½], with γ = sin²(πt) by default.

    The path first encodes x0 into pure noise (x_{½} = z when γ(½) = 1) and then decodes it
    into x1; it is C¹ at t = ½ where α = β = α̇ = β̇ = 0.
    """

    def __init__(self, gamma: GammaSchedule | None = None) -> None:
        super().__init__(SineSquaredGamma() if gamma is None else gamma)

    def schedule(self, t: Times) -> tuple[Times, Times, Times, Times]:
        first = t <= 0.5
        value = torch.cos(math.pi * t) ** 2
        slope = torch.sin(2 * math.pi * t) * -math.pi  # d cos²(πt)/dt
        zero = torch.zeros_like(t)
        return (
            torch.where(first, value, zero),
            torch.where(first, zero, value),
            torch.where(first, slope, zero),
            torch.where(first, zero, slope),
        )

    def alpha(self, t: Times) -> Times:
        return torch.where(t <= 0.5, torch.cos(math.pi * t) ** 2, torch.zeros_like(t))

    def beta(self, t: Times) -> Times:
        return torch.where(t > 0.5, torch.cos(math.pi * t) ** 2, torch.zeros_like(t))

    def alpha_dot(self, t: Times) -> Times:
        return torch.where(t <= 0.5, -math.pi * torch.sin(2 * math.pi * t), torch.zeros_like(t))

    def beta_dot(self, t: Times) -> Times:
        return torch.where(t > 0.5, -math.pi * torch.sin(2 * math.pi * t), torch.zeros_like(t))


@final
class MirrorInterpolant(Interpolant):
    r"""The mirror interpolant from the data to itself: x_t = x1 + γ(t)z (α ≡ 0, β ≡ 1).

    The base and target are the same distribution and the coupling is the identity (pass the
    same batch as ``x0`` and ``x1``; ``x0`` is multiplied by α ≡ 0). The velocity is
    b = γ̇ η_z = −γγ̇ s, so the interpolant is useful for learning the score of the data at
    every noise level. Requires a non-zero γ.
    """

    constant_rates = (0.0, 0.0)
    constant_weights = (0.0, 1.0)

    def __init__(self, gamma: GammaSchedule | None = None) -> None:
        gamma = BrownianGamma() if gamma is None else gamma
        if isinstance(gamma, NoGamma):
            raise ValueError("the mirror interpolant needs a non-zero gamma schedule")
        super().__init__(gamma)

    def alpha(self, t: Times) -> Times:
        return torch.zeros_like(t)

    def beta(self, t: Times) -> Times:
        return torch.ones_like(t)

    def alpha_dot(self, t: Times) -> Times:
        return torch.zeros_like(t)

    def beta_dot(self, t: Times) -> Times:
        return torch.zeros_like(t)


@final
class OneSidedLinearInterpolant(OneSidedInterpolant):
    """One-sided linear: x_t = (1−t)·x0 + t·x1 with x0 ~ N(0, I) (Gaussian flow matching)."""

    constant_rates = (-1.0, 1.0)

    def alpha(self, t: Times) -> Times:
        return torch.rsub(t, 1.0)

    def beta(self, t: Times) -> Times:
        return t

    def alpha_dot(self, t: Times) -> Times:
        return torch.full_like(t, -1.0)

    def beta_dot(self, t: Times) -> Times:
        return torch.ones_like(t)


@final
class VPInterpolant(OneSidedInterpolant):
    r"""Variance-preserving one-sided interpolant x_t = cos(πt/2)·x0 + sin(πt/2)·x1, x0 ~ N(0, I).

    α² + β² = 1; the diffusion-model (VP) path with the trigonometric schedule, reaching the
    boundary conditions exactly (unlike a VP-SDE, whose β(0) is small but not zero).
    """

    def schedule(self, t: Times) -> tuple[Times, Times, Times, Times]:
        return _vp_schedule(t)

    def alpha(self, t: Times) -> Times:
        return _cos_half_pi(t)

    def beta(self, t: Times) -> Times:
        return torch.sin(t * _HALF_PI)

    def alpha_dot(self, t: Times) -> Times:
        return torch.sin(t * _HALF_PI) * -_HALF_PI

    def beta_dot(self, t: Times) -> Times:
        return _cos_half_pi(t) * _HALF_PI


@final
class CustomInterpolant(Interpolant):
    """An interpolant built from user callables α(t), β(t); derivatives by autograd.

    ``alpha`` and ``beta`` must be elementwise torch functions of a time tensor, differentiable
    on [0, 1], with α(0) = β(1) = 1 and α(1) = β(0) = 0; values and derivatives are checked
    finite on a grid of [0, 1] at construction.

    Example
    -------
    >>> import torch
    >>> from interpolants.interpolant import CustomInterpolant
    >>> I = CustomInterpolant(lambda t: 1 - t**2, lambda t: t**2)
    >>> float(I.alpha_dot(torch.tensor(0.5)))
    -1.0
    """

    def __init__(
        self,
        alpha: Callable[[Tensor], Tensor],
        beta: Callable[[Tensor], Tensor],
        gamma: GammaSchedule | None = None,
    ) -> None:
        super().__init__(NoGamma() if gamma is None else gamma)
        grid = torch.linspace(0, 1, 1001, dtype=torch.float64)
        for name, fn, expected in (("alpha", alpha, (1.0, 0.0)), ("beta", beta, (0.0, 1.0))):
            values = check_schedule(fn, grid, name)
            got = (float(values[0]), float(values[-1]))
            if max(abs(got[0] - expected[0]), abs(got[1] - expected[1])) > 1e-9:
                raise ValueError(
                    f"{name} must equal {expected[0]} at t = 0 and {expected[1]} at t = 1, "
                    f"got {got[0]} and {got[1]}"
                )
        self._alpha_callable = alpha
        self._beta_callable = beta

    def alpha(self, t: Times) -> Times:
        return self._alpha_callable(t)

    def beta(self, t: Times) -> Times:
        return self._beta_callable(t)

    def alpha_dot(self, t: Times) -> Times:
        return time_derivative(self._alpha_callable, t)

    def beta_dot(self, t: Times) -> Times:
        return time_derivative(self._beta_callable, t)
