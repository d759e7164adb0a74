"""Field types and the unchecked conversion cores (see :mod:`interpolants.fields`)."""

from collections.abc import Callable

import torch
from torch import Tensor

from .._validation import broadcast_time
from ..interpolant import Coefficients, Interpolant, OneSidedInterpolant

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
