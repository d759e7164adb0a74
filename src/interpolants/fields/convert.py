"""Checked conversions between fields given as tensors (see :mod:`interpolants.fields`)."""

from torch import Tensor

from .._types import State, TimeLike
from .._validation import as_time, broadcast_time, check_floating, check_same_shape
from ..interpolant import Coefficients, Interpolant, OneSidedInterpolant
from ._core import (
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
