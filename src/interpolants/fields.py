r"""Conversions between the fields of a stochastic interpolant, and SDE drifts.

The field protocol
------------------
A *field* is any callable ``f(t, x)`` with ``t`` of shape ``(B,)`` and ``x`` of shape
``(B, *dims)`` that returns a tensor of shape ``(B, *dims)`` (:data:`Field`); a trained
``nn.Module`` called as ``model(t, x)`` is one. The conversions below come twice: as functions
on tensors (``score_from_velocity(interpolant, t, x, velocity)``, validated once) and as field
combinators (``ScoreFromVelocity(interpolant, velocity_field)``, a field itself, with no
per-call validation beyond the singularity checks) for the integrators.

The fields
----------
For x_t = α x0 + β x1 + γ z, with η0, η1, η_z the conditional means of x0, x1, z given
x_t = x (paper sign: η_z = E[z | x_t]):

* velocity b = α̇η0 + β̇η1 + γ̇η_z, the mean velocity v = α̇η0 + β̇η1 (so b = v + γ̇η_z);
* score s = ∇log ρ_t = −η_z/γ where γ > 0, so b = v − γγ̇ s;
* **one-sided** interpolants (:class:`~interpolants.OneSidedInterpolant`: x0 ~ N(0, I) is the
  noise, γ ≡ 0): η_z = E[x0 | x_t], s = −η_z/α, v = b, and since x = αη_z + βη1 the three
  fields are equivalent in closed form (MATH.md §1), with D = αβ̇ − α̇β:

  .. math::

      s = \frac{βb − \dot β x}{α D},\qquad
      b = \frac{\dot β x + α D s}{β} \;(= \tfrac{\dot β}{β}x + (\tfrac{α^2\dot β}{β} − α\dot α)s),
      \qquad η_z = \frac{\dot β x − βb}{D};

* **deterministic** interpolants (γ ≡ 0, any coupling, including one-sided): x = αη0 + βη1
  and b = α̇η0 + β̇η1, so the target prediction η1 = E[x1 | x_t] and b are equivalent:
  η1 = (αb − α̇x)/D and b = (α̇x + D η1)/α.

Singular points
---------------
Where a conversion divides by a coefficient that vanishes, it raises :class:`ValueError`
naming the conversion and the times (never a silent NaN or Inf). A coefficient counts as zero
when its magnitude is at most ``10·eps`` of the dtype (≈2·10⁻¹⁵ in float64, ≈10⁻⁶ in float32),
so that e.g. cos(π/2) ≈ 6·10⁻¹⁷ of the VP interpolant is caught. The singular sets are:

==========================================  ==========================  =====================
conversion                                  divides by                  singular at
==========================================  ==========================  =====================
score from velocity (one-sided)             α·D                         t = 1
velocity from score (one-sided)             β                           t = 0
velocity from denoiser (one-sided)          β                           t = 0
denoiser from velocity (one-sided)          D                           nowhere
score from denoiser                         γ (α if one-sided)          t = 0, 1 (t = 1)
denoiser from score                         —                           nowhere
velocity from (v, s): b = v − γγ̇ s          —                           nowhere
velocity from (v, η_z): b = v + γ̇ η_z       —                           see below
target from velocity (γ ≡ 0)                D                           nowhere
velocity from target (γ ≡ 0)                α                           t = 1
==========================================  ==========================  =====================

At t = 0 the velocity is genuinely not determined by the score (b(0, x) = α̇x + β̇E[x1]
involves the target mean, while s(0, ·) is the base score), so the error is not a weakness
of the formula. b = v + γ̇ η_z uses the schedule's γ̇, which is finite everywhere (for the
Brownian γ it is clamped near the ends, see :mod:`interpolants.gamma`); the exact η_z vanishes
like γ there so that the product tends to the finite −γγ̇s, but a learned η̂ need not, so
prefer evaluating b from (v, η_z) away from the ends (as the integrators' time grids do).

SDE drifts
----------
For any ε(t) ≥ 0 the forward SDE dX = [b + εs]dt + √(2ε)dW (from ρ0) and the backward SDE
dY = [b − εs]dt + √(2ε)dW^B (from ρ1, integrated from t = 1 down to 0) have the marginals
ρ_t of the interpolant (MATH.md §1); :func:`sde_drift` builds these drifts.

References
----------
M. S. Albergo, N. M. Boffi, E. Vanden-Eijnden, *Stochastic Interpolants: A Unifying Framework
for Flows and Diffusions*, arXiv:2303.08797.
"""

import abc
from collections.abc import Callable
from typing import Literal, final

import torch
from torch import Tensor

from ._types import State, TimeLike
from ._validation import as_time, broadcast_time, check_floating, check_same_shape
from .interpolant import Coefficients, Interpolant, OneSidedInterpolant

__all__ = [
    "ConvertedField",
    "DenoiserFromScore",
    "DenoiserFromVelocity",
    "Field",
    "SDEDrift",
    "ScoreFromDenoiser",
    "ScoreFromVelocity",
    "SplitField",
    "TargetFromVelocity",
    "VelocityFromDenoiser",
    "VelocityFromMeanAndDenoiser",
    "VelocityFromMeanAndScore",
    "VelocityFromScore",
    "VelocityFromSplit",
    "VelocityFromTarget",
    "denoiser_from_score",
    "denoiser_from_velocity",
    "score_from_denoiser",
    "score_from_velocity",
    "sde_drift",
    "target_from_velocity",
    "velocity_from_denoiser",
    "velocity_from_mean_and_denoiser",
    "velocity_from_mean_and_score",
    "velocity_from_score",
    "velocity_from_target",
]

Field = Callable[[Tensor, Tensor], Tensor]
"""The field protocol ``f(t, x)``: ``t`` of shape ``(B,)``, ``x`` and output ``(B, *dims)``."""

SplitField = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]
"""A two-headed model ``f(t, x) -> (v, η_z)`` as trained by the split objective."""


# --- unchecked cores: c holds coefficients of shape (B,) or (), x and fields (B, *dims) ------
def _zero_guard(value: Tensor, t: Tensor, what: str) -> Tensor:
    """Raise if ``value`` (a coefficient, shape of ``t``) vanishes anywhere; return it."""
    tol = 10 * torch.finfo(value.dtype).eps
    bad = value.abs() <= tol
    if bool(bad.any()):
        times = t.expand_as(value)[bad].flatten()[:3].tolist()
        raise ValueError(f"{what} is singular at t = {times}; evaluate it inside (0, 1)")
    return value


def _determinant(c: Coefficients) -> Tensor:
    return c.alpha * c.beta_dot - c.alpha_dot * c.beta


def _one_sided(interpolant: Interpolant, what: str) -> OneSidedInterpolant:
    if not isinstance(interpolant, OneSidedInterpolant):
        raise TypeError(
            f"{what} needs a Gaussian base: a OneSidedInterpolant, got "
            f"{type(interpolant).__name__} (with a general base learn two fields instead)"
        )
    return interpolant


def _deterministic(interpolant: Interpolant, what: str) -> Interpolant:
    if interpolant.is_stochastic:
        raise TypeError(
            f"{what} needs a deterministic interpolant (γ ≡ 0), got {interpolant!r}: with γ > 0 "
            "the target prediction alone does not determine the velocity"
        )
    return interpolant


def _noise_scale(interpolant: Interpolant, c: Coefficients) -> Tensor:
    """σ with s = −η_z/σ: α for one-sided interpolants, γ otherwise."""
    return c.alpha if isinstance(interpolant, OneSidedInterpolant) else c.gamma


def _score_from_velocity(c: Coefficients, t: Tensor, x: Tensor, b: Tensor) -> Tensor:
    den = _zero_guard(c.alpha * _determinant(c), t, "score from velocity (divides by α·D)")
    beta, beta_dot, den = (broadcast_time(v, x) for v in (c.beta, c.beta_dot, den))
    return (beta * b - beta_dot * x) / den


def _velocity_from_score(c: Coefficients, t: Tensor, x: Tensor, s: Tensor) -> Tensor:
    beta = _zero_guard(c.beta, t, "velocity from score (divides by β)")
    ad = c.alpha * _determinant(c)
    beta, beta_dot, ad = (broadcast_time(v, x) for v in (beta, c.beta_dot, ad))
    return (beta_dot * x + ad * s) / beta


def _denoiser_from_velocity(c: Coefficients, t: Tensor, x: Tensor, b: Tensor) -> Tensor:
    det = _zero_guard(_determinant(c), t, "denoiser from velocity (divides by D = αβ̇ − α̇β)")
    beta, beta_dot, det = (broadcast_time(v, x) for v in (c.beta, c.beta_dot, det))
    return (beta_dot * x - beta * b) / det


def _velocity_from_denoiser(c: Coefficients, t: Tensor, x: Tensor, eta: Tensor) -> Tensor:
    beta = _zero_guard(c.beta, t, "velocity from denoiser (divides by β)")
    beta, beta_dot, det = (broadcast_time(v, x) for v in (beta, c.beta_dot, _determinant(c)))
    return (beta_dot * x - det * eta) / beta


def _score_from_denoiser(scale: Tensor, t: Tensor, eta: Tensor) -> Tensor:
    scale = _zero_guard(scale, t, "score from denoiser (divides by γ, or α if one-sided)")
    return -eta / broadcast_time(scale, eta)


def _target_from_velocity(c: Coefficients, t: Tensor, x: Tensor, b: Tensor) -> Tensor:
    det = _zero_guard(_determinant(c), t, "target from velocity (divides by D = αβ̇ − α̇β)")
    alpha, alpha_dot, det = (broadcast_time(v, x) for v in (c.alpha, c.alpha_dot, det))
    return (alpha * b - alpha_dot * x) / det


def _velocity_from_target(c: Coefficients, t: Tensor, x: Tensor, x1: Tensor) -> Tensor:
    alpha = _zero_guard(c.alpha, t, "velocity from target (divides by α)")
    alpha, alpha_dot, det = (broadcast_time(v, x) for v in (alpha, c.alpha_dot, _determinant(c)))
    return (alpha_dot * x + det * x1) / alpha


# --- checked functions on tensors -------------------------------------------------------------
def _prepare(
    interpolant: Interpolant, t: TimeLike, named: list[tuple[str, Tensor]]
) -> tuple[Coefficients, Tensor]:
    if not isinstance(interpolant, Interpolant):
        raise TypeError(f"interpolant must be an Interpolant, got {type(interpolant).__name__}")
    for name, value in named:
        check_floating(value, name)
    check_same_shape(named)
    first_name, first = named[0]
    if first.ndim == 0:
        raise ValueError(f"{first_name} must have shape (batch, *dims), got a 0-d tensor")
    tt = as_time(t, first, "t")
    return interpolant._coefficients(tt), tt


def score_from_velocity(
    interpolant: OneSidedInterpolant,
    t: TimeLike,
    x: State,
    velocity: State,
) -> State:
    r"""One-sided score from velocity: s = (βb − β̇x) / (α(αβ̇ − α̇β)).

    Arguments
    ---------
    interpolant:
        A :class:`~interpolants.OneSidedInterpolant` (Gaussian base, independent coupling).
    t:
        Time: a number, a scalar tensor or shape ``(B,)``, in [0, 1].
    x:
        The state, shape ``(B, *dims)``.
    velocity:
        b(t, x), shape ``(B, *dims)``.

    Returns
    -------
    Tensor
        s(t, x), shape ``(B, *dims)``. Raises :class:`ValueError` at t = 1 (α = 0).

    Example
    -------
    >>> import torch
    >>> from interpolants import OneSidedLinearInterpolant
    >>> x = torch.tensor([[1.0, -2.0]])
    >>> # at t = 0 the marginal is N(0, I), whose score is −x, whatever the velocity
    >>> score_from_velocity(OneSidedLinearInterpolant(), 0.0, x, torch.zeros_like(x))
    tensor([[-1.,  2.]])
    """
    c, tt = _prepare(
        _one_sided(interpolant, "score_from_velocity"), t, [("x", x), ("velocity", velocity)]
    )
    return _score_from_velocity(c, tt, x, velocity)


def velocity_from_score(
    interpolant: OneSidedInterpolant,
    t: TimeLike,
    x: State,
    score: State,
) -> State:
    r"""One-sided velocity from score: b = (β̇x + α(αβ̇ − α̇β)s) / β.

    Same arguments as :func:`score_from_velocity` with ``score`` = s(t, x). Raises
    :class:`ValueError` at t = 0 (β = 0), where b is not determined by s.
    """
    c, tt = _prepare(
        _one_sided(interpolant, "velocity_from_score"), t, [("x", x), ("score", score)]
    )
    return _velocity_from_score(c, tt, x, score)


def denoiser_from_velocity(
    interpolant: OneSidedInterpolant,
    t: TimeLike,
    x: State,
    velocity: State,
) -> State:
    r"""One-sided denoiser η_z = E[x0 | x_t = x] from velocity: η_z = (β̇x − βb)/(αβ̇ − α̇β).

    Finite on all of [0, 1] (the determinant αβ̇ − α̇β does not vanish for the built-in
    families; a custom one where it does raises :class:`ValueError`).
    """
    c, tt = _prepare(
        _one_sided(interpolant, "denoiser_from_velocity"), t, [("x", x), ("velocity", velocity)]
    )
    return _denoiser_from_velocity(c, tt, x, velocity)


def velocity_from_denoiser(
    interpolant: OneSidedInterpolant,
    t: TimeLike,
    x: State,
    denoiser: State,
) -> State:
    r"""One-sided velocity from denoiser: b = (β̇x − (αβ̇ − α̇β)η_z) / β.

    Raises :class:`ValueError` at t = 0 (β = 0).
    """
    c, tt = _prepare(
        _one_sided(interpolant, "velocity_from_denoiser"), t, [("x", x), ("denoiser", denoiser)]
    )
    return _velocity_from_denoiser(c, tt, x, denoiser)


def score_from_denoiser(interpolant: Interpolant, t: TimeLike, denoiser: State) -> State:
    r"""s = −η_z/γ (two-sided), s = −η_z/α (one-sided).

    Raises :class:`ValueError` where the divisor vanishes: t = 0 and 1 for a two-sided
    interpolant, t = 1 for a one-sided one, everywhere for a deterministic two-sided one.
    """
    c, tt = _prepare(interpolant, t, [("denoiser", denoiser)])
    return _score_from_denoiser(_noise_scale(interpolant, c), tt, denoiser)


def denoiser_from_score(interpolant: Interpolant, t: TimeLike, score: State) -> State:
    r"""η_z = −γ s (two-sided), η_z = −α s (one-sided). Finite everywhere."""
    c, _ = _prepare(interpolant, t, [("score", score)])
    return -broadcast_time(_noise_scale(interpolant, c), score) * score


def velocity_from_mean_and_score(
    interpolant: Interpolant,
    t: TimeLike,
    mean_velocity: State,
    score: State,
) -> State:
    r"""b = v − γγ̇ s, with the closed-form γγ̇ (finite at both ends). For γ ≡ 0, b = v."""
    c, _ = _prepare(interpolant, t, [("mean_velocity", mean_velocity), ("score", score)])
    return mean_velocity - broadcast_time(c.gamma_gamma_dot, score) * score


def velocity_from_mean_and_denoiser(
    interpolant: Interpolant,
    t: TimeLike,
    mean_velocity: State,
    denoiser: State,
) -> State:
    r"""b = v + γ̇ η_z (= v − γγ̇ s where γ > 0).

    Uses the schedule's γ̇, finite everywhere; see the module notes on the ends, where γ̇ of the
    Brownian γ is clamped.
    """
    c, _ = _prepare(interpolant, t, [("mean_velocity", mean_velocity), ("denoiser", denoiser)])
    return mean_velocity + broadcast_time(c.gamma_dot, denoiser) * denoiser


def target_from_velocity(
    interpolant: Interpolant,
    t: TimeLike,
    x: State,
    velocity: State,
) -> State:
    r"""Target prediction η1 = E[x1 | x_t = x] = (αb − α̇x)/(αβ̇ − α̇β), for γ ≡ 0.

    Valid for every deterministic interpolant (one-sided included) and every coupling.
    """
    c, tt = _prepare(
        _deterministic(interpolant, "target_from_velocity"), t, [("x", x), ("velocity", velocity)]
    )
    return _target_from_velocity(c, tt, x, velocity)


def velocity_from_target(
    interpolant: Interpolant,
    t: TimeLike,
    x: State,
    target: State,
) -> State:
    r"""b = (α̇x + (αβ̇ − α̇β)η1)/α from a target (x1) prediction η1, for γ ≡ 0.

    Raises :class:`ValueError` at t = 1 (α = 0).
    """
    c, tt = _prepare(
        _deterministic(interpolant, "velocity_from_target"), t, [("x", x), ("target", target)]
    )
    return _velocity_from_target(c, tt, x, target)


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
