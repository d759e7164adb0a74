r"""Spatially linear stochastic interpolants x_t = α(t)·x0 + β(t)·x1 + γ(t)·z.

Every family satisfies α(0) = β(1) = 1, α(1) = β(0) = 0 and γ(0) = γ(1) = 0, so that
x_{t=0} = x0 and x_{t=1} = x1 for *any* coupling of (x0, x1), with z ~ N(0, I) independent of
them. Training regresses on

* the velocity target  ∂ₜI + γ̇ z = α̇ x0 + β̇ x1 + γ̇ z  (its conditional mean is b(t, x)),
* the mean velocity   ∂ₜI = α̇ x0 + β̇ x1             (its conditional mean is v(t, x)),
* the noise target     z, or x0 for one-sided interpolants (conditional mean: the denoiser η).

**One-sided interpolants** (:class:`OneSidedInterpolant`) have a Gaussian base: x0 ~ N(0, I)
itself plays the noise, γ ≡ 0, and x_t = α(t)·x0 + β(t)·x1.

**Sign of the denoiser.** This library uses the paper's convention η_z(t, x) = E[z | x_t = x],
so that the score is s = −η_z / γ (two-sided, γ > 0) and s = −η_z / α (one-sided, where
η_z = E[x0 | x_t]).
The official code trains the opposite sign; nothing here does.

Times may be a Python number, a scalar tensor or one value per sample; states may have any
trailing shape. Computations run on the states' device and in their dtype.

References
----------
M. S. Albergo, N. M. Boffi, E. Vanden-Eijnden, *Stochastic Interpolants: A Unifying Framework
for Flows and Diffusions*, arXiv:2303.08797.
M. S. Albergo, E. Vanden-Eijnden, *Building Normalizing Flows with Stochastic Interpolants*,
arXiv:2209.15571.
"""

import abc
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import final

import torch
from jaxtyping import Float
from torch import Tensor

from ._types import Coefficient, State, TimeLike
from ._validation import as_time, broadcast_time, check_floating, check_same_shape
from .gamma import BrownianGamma, GammaSchedule, NoGamma, SineSquaredGamma, time_derivative

__all__ = [
    "Coefficients",
    "CustomInterpolant",
    "EncoderDecoderInterpolant",
    "Interpolant",
    "InterpolantSample",
    "LinearInterpolant",
    "MirrorInterpolant",
    "OneSidedInterpolant",
    "OneSidedLinearInterpolant",
    "TrigonometricInterpolant",
    "VPInterpolant",
]


@dataclass(frozen=True)
class Coefficients:
    """The schedule values at one time (each has the shape of ``t``)."""

    alpha: Tensor
    beta: Tensor
    gamma: Tensor
    alpha_dot: Tensor
    beta_dot: Tensor
    gamma_dot: Tensor
    gamma_gamma_dot: Tensor


@dataclass(frozen=True)
class InterpolantSample:
    """Everything a regression loss needs at one draw of (t, x0, x1, z).

    Attributes
    ----------
    xt:
        x_t = α x0 + β x1 + γ z, shape ``(B, *dims)``.
    velocity:
        The velocity target ∂ₜI + γ̇ z (regressed by b).
    mean_velocity:
        The mean-velocity target ∂ₜI = α̇ x0 + β̇ x1 (regressed by v).
    noise:
        The noise target: z, or x0 for a one-sided interpolant (regressed by η_z).
    """

    xt: Tensor
    velocity: Tensor
    mean_velocity: Tensor
    noise: Tensor


def _cos_half_pi(t: Tensor) -> Tensor:
    """cos(πt/2) written as sin(π(1−t)/2), so that it is exactly 0 at t = 1 in floating point."""
    return torch.sin(0.5 * math.pi * (1 - t))


class Interpolant(abc.ABC):
    r"""Abstract spatially linear interpolant x_t = α(t)x0 + β(t)x1 + γ(t)z.

    Subclasses give α, β and their derivatives through the private hooks ``_alpha``,
    ``_beta``, ``_alpha_dot`` and ``_beta_dot`` (raw tensors in, raw tensors out); γ comes from
    :attr:`gamma_schedule`. The public methods validate their inputs once and then compute on
    the inputs' device and dtype.
    """

    def __init__(self, gamma: GammaSchedule) -> None:
        if not isinstance(gamma, GammaSchedule):
            raise TypeError(f"gamma must be a GammaSchedule, got {type(gamma).__name__}")
        self._gamma_schedule = gamma

    @property
    def gamma_schedule(self) -> GammaSchedule:
        """The noise schedule γ(t)."""
        return self._gamma_schedule

    @property
    def is_stochastic(self) -> bool:
        """Whether γ is not identically zero."""
        return not isinstance(self._gamma_schedule, NoGamma)

    # --- hooks for subclasses -------------------------------------------------------------
    @abc.abstractmethod
    def _alpha(self, t: Tensor) -> Tensor: ...

    @abc.abstractmethod
    def _beta(self, t: Tensor) -> Tensor: ...

    @abc.abstractmethod
    def _alpha_dot(self, t: Tensor) -> Tensor: ...

    @abc.abstractmethod
    def _beta_dot(self, t: Tensor) -> Tensor: ...

    # --- schedule values -------------------------------------------------------------------
    def _time(self, t: TimeLike) -> Tensor:
        if isinstance(t, Tensor):
            check_floating(t, "t")
            return as_time(t, t.reshape(-1) if t.ndim else t, "t")
        return as_time(t, torch.empty((), dtype=torch.get_default_dtype()), "t")

    def alpha(self, t: TimeLike) -> Coefficient:
        """α(t), same shape as ``t``."""
        return self._alpha(self._time(t))

    def beta(self, t: TimeLike) -> Coefficient:
        """β(t), same shape as ``t``."""
        return self._beta(self._time(t))

    def gamma(self, t: TimeLike) -> Coefficient:
        """γ(t), same shape as ``t``."""
        return self._gamma_schedule.gamma(self._time(t))

    def alpha_dot(self, t: TimeLike) -> Coefficient:
        """dα/dt, same shape as ``t``."""
        return self._alpha_dot(self._time(t))

    def beta_dot(self, t: TimeLike) -> Coefficient:
        """dβ/dt, same shape as ``t``."""
        return self._beta_dot(self._time(t))

    def gamma_dot(self, t: TimeLike) -> Coefficient:
        """dγ/dt, finite everywhere (see :mod:`interpolants.gamma` for the singular ends)."""
        return self._gamma_schedule.gamma_dot(self._time(t))

    def gamma_gamma_dot(self, t: TimeLike) -> Coefficient:
        """γ(t)·γ̇(t), exact and finite at both ends."""
        return self._gamma_schedule.gamma_gamma_dot(self._time(t))

    def coefficients(self, t: TimeLike) -> Coefficients:
        """All schedule values at ``t`` at once."""
        return self._coefficients(self._time(t))

    def _coefficients(self, t: Tensor) -> Coefficients:
        g = self._gamma_schedule
        return Coefficients(
            alpha=self._alpha(t),
            beta=self._beta(t),
            gamma=g.gamma(t),
            alpha_dot=self._alpha_dot(t),
            beta_dot=self._beta_dot(t),
            gamma_dot=g.gamma_dot(t),
            gamma_gamma_dot=g.gamma_gamma_dot(t),
        )

    # --- states -----------------------------------------------------------------------------
    def _inputs(
        self, t: TimeLike, x0: Tensor, x1: Tensor, z: Tensor | None
    ) -> tuple[Tensor, Tensor | None]:
        check_floating(x0, "x0")
        check_floating(x1, "x1")
        check_same_shape([("x0", x0), ("x1", x1)])
        if x0.ndim == 0:
            raise ValueError("x0 must have a batch dimension, got a 0-d tensor")
        if x1.dtype != x0.dtype or x1.device != x0.device:
            raise TypeError(
                f"x1 must have x0's dtype and device ({x0.dtype}, {x0.device}), "
                f"got ({x1.dtype}, {x1.device})"
            )
        if z is not None:
            check_floating(z, "z")
            check_same_shape([("x0", x0), ("z", z)])
        tt = as_time(t, x0, "t")
        return tt, z

    def _noise(self, x0: Tensor, z: Tensor | None) -> Tensor:
        if z is None:
            raise ValueError(
                "z is required for a stochastic interpolant: pass z = torch.randn_like(x0)"
            )
        return z

    def interpolate(
        self,
        t: TimeLike,
        x0: Float[Tensor, "batch *dims"],
        x1: Float[Tensor, "batch *dims"],
        z: Float[Tensor, "batch *dims"] | None = None,
    ) -> State:
        """x_t = α(t) x0 + β(t) x1 + γ(t) z, shape ``(B, *dims)``.

        ``z`` may be omitted when γ ≡ 0 (and for one-sided interpolants, where x0 is the noise).
        """
        tt, z = self._inputs(t, x0, x1, z)
        return self._sample(tt, x0, x1, z).xt

    def velocity_target(
        self,
        t: TimeLike,
        x0: Float[Tensor, "batch *dims"],
        x1: Float[Tensor, "batch *dims"],
        z: Float[Tensor, "batch *dims"] | None = None,
    ) -> State:
        """The conditional velocity ∂ₜI + γ̇ z = α̇ x0 + β̇ x1 + γ̇ z (target of b)."""
        tt, z = self._inputs(t, x0, x1, z)
        return self._sample(tt, x0, x1, z).velocity

    def noise_target(
        self,
        t: TimeLike,
        x0: Float[Tensor, "batch *dims"],
        x1: Float[Tensor, "batch *dims"],
        z: Float[Tensor, "batch *dims"] | None = None,
    ) -> State:
        """The noise whose conditional mean is the denoiser η_z: z (x0 if one-sided)."""
        tt, z = self._inputs(t, x0, x1, z)
        return self._sample(tt, x0, x1, z).noise

    def sample(
        self,
        t: TimeLike,
        x0: Float[Tensor, "batch *dims"],
        x1: Float[Tensor, "batch *dims"],
        z: Float[Tensor, "batch *dims"] | None = None,
    ) -> InterpolantSample:
        """x_t together with all regression targets (one validation, one evaluation)."""
        tt, z = self._inputs(t, x0, x1, z)
        return self._sample(tt, x0, x1, z)

    def _sample(
        self,
        t: Tensor,
        x0: Tensor,
        x1: Tensor,
        z: Tensor | None,
        c: Coefficients | None = None,
    ) -> InterpolantSample:
        """Unchecked core of :meth:`sample`; ``t`` is already a tensor on x0's device.

        ``c`` may pass the coefficients at ``t`` when the caller has them already.
        """
        if c is None:
            c = self._coefficients(t)
        a, b, ad, bd = (broadcast_time(v, x0) for v in (c.alpha, c.beta, c.alpha_dot, c.beta_dot))
        xt = a * x0 + b * x1
        mean_velocity = ad * x0 + bd * x1
        if self.is_stochastic:
            noise = self._noise(x0, z)
            xt = xt + broadcast_time(c.gamma, x0) * noise
            velocity = mean_velocity + broadcast_time(c.gamma_dot, x0) * noise
        else:
            if isinstance(self, OneSidedInterpolant):
                noise = x0
            else:
                noise = torch.zeros_like(x0) if z is None else z
            velocity = mean_velocity
        return InterpolantSample(xt=xt, velocity=velocity, mean_velocity=mean_velocity, noise=noise)


class OneSidedInterpolant(Interpolant):
    """Marker base class: a Gaussian base x0 ~ N(0, I) plays the noise and γ ≡ 0.

    For these interpolants the denoiser is η_z = E[x0 | x_t] and the score is s = −η_z/α; the
    velocity, denoiser and score are related in closed form (see :mod:`interpolants.analytic`).
    """

    def __init__(self) -> None:
        super().__init__(NoGamma())


@final
class LinearInterpolant(Interpolant):
    r"""α = 1 − t, β = t: x_t = (1−t)x0 + t x1 + γ(t)z.

    With γ ≡ 0 this is the conditional-OT path of flow matching / rectified flow (velocity
    target x1 − x0); with γ = σ√(t(1−t)) (``BrownianGamma(a=σ**2)``) it is the
    Schrödinger-bridge interpolant of SB-CFM.
    """

    def __init__(self, gamma: GammaSchedule | None = None) -> None:
        super().__init__(NoGamma() if gamma is None else gamma)

    def _alpha(self, t: Tensor) -> Tensor:
        return 1 - t

    def _beta(self, t: Tensor) -> Tensor:
        return t.clone()

    def _alpha_dot(self, t: Tensor) -> Tensor:
        return torch.full_like(t, -1.0)

    def _beta_dot(self, t: Tensor) -> Tensor:
        return torch.ones_like(t)

    def __repr__(self) -> str:
        return f"LinearInterpolant(gamma={self.gamma_schedule!r})"


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

    def _root(self, t: Tensor) -> Tensor:
        return torch.sqrt(1 - self.gamma_schedule.gamma(t) ** 2)

    def _alpha(self, t: Tensor) -> Tensor:
        return self._root(t) * _cos_half_pi(t)

    def _beta(self, t: Tensor) -> Tensor:
        return self._root(t) * torch.sin(0.5 * math.pi * t)

    def _alpha_dot(self, t: Tensor) -> Tensor:
        r = self._root(t)
        ggd = self.gamma_schedule.gamma_gamma_dot(t)
        return -(ggd / r) * _cos_half_pi(t) - 0.5 * math.pi * r * torch.sin(0.5 * math.pi * t)

    def _beta_dot(self, t: Tensor) -> Tensor:
        r = self._root(t)
        ggd = self.gamma_schedule.gamma_gamma_dot(t)
        return -(ggd / r) * torch.sin(0.5 * math.pi * t) + 0.5 * math.pi * r * _cos_half_pi(t)

    def __repr__(self) -> str:
        return f"TrigonometricInterpolant(gamma={self.gamma_schedule!r})"


@final
class EncoderDecoderInterpolant(Interpolant):
    r"""α = cos²(πt)·1[t ≤ ½], β = cos²(πt)·1[t > ½], with γ = sin²(πt) by default.

    The path first encodes x0 into pure noise (x_{½} = z when γ(½) = 1) and then decodes it
    into x1; it is C¹ at t = ½ where α = β = α̇ = β̇ = 0.
    """

    def __init__(self, gamma: GammaSchedule | None = None) -> None:
        super().__init__(SineSquaredGamma() if gamma is None else gamma)

    def _alpha(self, t: Tensor) -> Tensor:
        return torch.where(t <= 0.5, torch.cos(math.pi * t) ** 2, torch.zeros_like(t))

    def _beta(self, t: Tensor) -> Tensor:
        return torch.where(t > 0.5, torch.cos(math.pi * t) ** 2, torch.zeros_like(t))

    def _alpha_dot(self, t: Tensor) -> Tensor:
        return torch.where(t <= 0.5, -math.pi * torch.sin(2 * math.pi * t), torch.zeros_like(t))

    def _beta_dot(self, t: Tensor) -> Tensor:
        return torch.where(t > 0.5, -math.pi * torch.sin(2 * math.pi * t), torch.zeros_like(t))

    def __repr__(self) -> str:
        return f"EncoderDecoderInterpolant(gamma={self.gamma_schedule!r})"


@final
class MirrorInterpolant(Interpolant):
    r"""The mirror interpolant from the data to itself: x_t = x1 + γ(t)z (α ≡ 0, β ≡ 1).

    The base and target are the same distribution and the coupling is the identity (pass the
    same batch as ``x0`` and ``x1``; ``x0`` is multiplied by α ≡ 0). The velocity is
    b = γ̇ η_z = −γγ̇ s, so the interpolant is useful for learning the score of the data at
    every noise level. Requires a non-zero γ.
    """

    def __init__(self, gamma: GammaSchedule | None = None) -> None:
        gamma = BrownianGamma() if gamma is None else gamma
        if isinstance(gamma, NoGamma):
            raise ValueError("the mirror interpolant needs a non-zero gamma schedule")
        super().__init__(gamma)

    def _alpha(self, t: Tensor) -> Tensor:
        return torch.zeros_like(t)

    def _beta(self, t: Tensor) -> Tensor:
        return torch.ones_like(t)

    def _alpha_dot(self, t: Tensor) -> Tensor:
        return torch.zeros_like(t)

    def _beta_dot(self, t: Tensor) -> Tensor:
        return torch.zeros_like(t)

    def __repr__(self) -> str:
        return f"MirrorInterpolant(gamma={self.gamma_schedule!r})"


@final
class OneSidedLinearInterpolant(OneSidedInterpolant):
    """One-sided linear: x_t = (1−t)·x0 + t·x1 with x0 ~ N(0, I) (Gaussian flow matching)."""

    def _alpha(self, t: Tensor) -> Tensor:
        return 1 - t

    def _beta(self, t: Tensor) -> Tensor:
        return t.clone()

    def _alpha_dot(self, t: Tensor) -> Tensor:
        return torch.full_like(t, -1.0)

    def _beta_dot(self, t: Tensor) -> Tensor:
        return torch.ones_like(t)

    def __repr__(self) -> str:
        return "OneSidedLinearInterpolant()"


@final
class VPInterpolant(OneSidedInterpolant):
    r"""Variance-preserving one-sided interpolant x_t = cos(πt/2)·x0 + sin(πt/2)·x1, x0 ~ N(0, I).

    α² + β² = 1; the diffusion-model (VP) path with the trigonometric schedule, reaching the
    boundary conditions exactly (unlike a VP-SDE, whose β(0) is small but not zero).
    """

    def _alpha(self, t: Tensor) -> Tensor:
        return _cos_half_pi(t)

    def _beta(self, t: Tensor) -> Tensor:
        return torch.sin(0.5 * math.pi * t)

    def _alpha_dot(self, t: Tensor) -> Tensor:
        return -0.5 * math.pi * torch.sin(0.5 * math.pi * t)

    def _beta_dot(self, t: Tensor) -> Tensor:
        return 0.5 * math.pi * _cos_half_pi(t)

    def __repr__(self) -> str:
        return "VPInterpolant()"


@final
class CustomInterpolant(Interpolant):
    """An interpolant built from user callables α(t), β(t); derivatives by autograd.

    ``alpha`` and ``beta`` must be elementwise torch functions of a time tensor, differentiable
    on [0, 1], with α(0) = β(1) = 1 and α(1) = β(0) = 0 (checked at construction).

    Example
    -------
    >>> import torch
    >>> from interpolants import CustomInterpolant
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
        ends = torch.tensor([0.0, 1.0], dtype=torch.float64)
        for name, fn, expected in (("alpha", alpha, (1.0, 0.0)), ("beta", beta, (0.0, 1.0))):
            values = fn(ends)
            if not isinstance(values, Tensor) or values.shape != ends.shape:
                raise TypeError(f"{name} must map a tensor of times to a tensor of its shape")
            got = (float(values[0]), float(values[1]))
            if max(abs(got[0] - expected[0]), abs(got[1] - expected[1])) > 1e-9:
                raise ValueError(
                    f"{name} must equal {expected[0]} at t = 0 and {expected[1]} at t = 1, "
                    f"got {got[0]} and {got[1]}"
                )
        self._alpha_fn = alpha
        self._beta_fn = beta

    def _alpha(self, t: Tensor) -> Tensor:
        return self._alpha_fn(t)

    def _beta(self, t: Tensor) -> Tensor:
        return self._beta_fn(t)

    def _alpha_dot(self, t: Tensor) -> Tensor:
        return time_derivative(self._alpha_fn, t)

    def _beta_dot(self, t: Tensor) -> Tensor:
        return time_derivative(self._beta_fn, t)

    def __repr__(self) -> str:
        return f"CustomInterpolant(gamma={self.gamma_schedule!r})"
