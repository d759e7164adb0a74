"""The values an interpolant computes at one time: its coefficients and a sample of x_t with
every regression target; the checks of times and states shared by its methods."""

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .._types import TimeLike
from .._validation import check_floating, check_same_shape

__all__ = ["Coefficients", "InterpolantSample"]


@dataclass(frozen=True)
class Coefficients:
    """The schedule values at one time (each has the shape of ``t``).

    Attributes
    ----------
    alpha, beta, gamma:
        α(t), β(t), γ(t).
    alpha_dot, beta_dot, gamma_dot:
        Their time derivatives (γ̇ clamped near singular ends, see
        :class:`GammaSchedule`).
    gamma_gamma_dot:
        γ(t)γ̇(t), exact and finite at both ends.
    noise_scale:
        σ(t), the scale of the noise in x_t, so that the score is s = −η_z/σ:
        γ(t) for a two-sided interpolant, α(t) for a one-sided one.
    """

    alpha: Tensor
    beta: Tensor
    gamma: Tensor
    alpha_dot: Tensor
    beta_dot: Tensor
    gamma_dot: Tensor
    gamma_gamma_dot: Tensor
    noise_scale: Tensor

    @property
    def determinant(self) -> Tensor:
        """D = αβ̇ − α̇β, the determinant of the map (η0, η1) ↦ (x, v)."""
        return self.alpha * self.beta_dot - self.alpha_dot * self.beta


@dataclass(frozen=True)
class InterpolantSample:
    """x_t and every regression target at one draw of (t, x0, x1, z).

    Attributes
    ----------
    t:
        The time, shape ``()`` or ``(B,)``.
    x0, x1, z:
        The draw the sample was made from (``z`` is ``None`` when none was needed).
    xt:
        x_t = α x0 + β x1 + γ z, shape ``(B, *dims)``.
    velocity:
        The velocity target α̇ x0 + β̇ x1 + γ̇ z (its conditional mean given x_t is b).
    mean_velocity:
        The mean-velocity target α̇ x0 + β̇ x1 (its conditional mean is v).
    noise:
        The noise variable (:meth:`~Interpolant.noise`): z, or x0 for a one-sided interpolant
        (its conditional mean is the denoiser η_z).
    coefficients:
        The schedule values at ``t``.
    """

    t: Tensor
    x0: Tensor
    x1: Tensor
    z: Tensor | None
    xt: Tensor
    velocity: Tensor
    mean_velocity: Tensor
    noise: Tensor
    coefficients: Coefficients


def _time(t: TimeLike, like: Tensor | None) -> Tensor:
    """``t`` as a tensor in ``like``'s dtype and on its device; numbers are range-checked,
    tensors get metadata checks only (shape ``()`` or ``(B,)`` with B = ``like.shape[0]``)."""
    if isinstance(t, (int, float)) and not isinstance(t, bool):
        if not (math.isfinite(t) and 0.0 <= t <= 1.0):
            raise ValueError(f"t must lie in [0, 1], got {t}")
        if like is None:
            return torch.tensor(float(t), dtype=torch.get_default_dtype())
        return torch.tensor(float(t), dtype=like.dtype, device=like.device)
    if not isinstance(t, Tensor):
        raise TypeError(f"t must be a number or a torch.Tensor, got {type(t).__name__}")
    if not torch.is_floating_point(t):
        raise TypeError(f"t must have a floating dtype, got {t.dtype}")
    if like is None:
        return t
    if t.ndim > 1 or (t.ndim == 1 and t.shape[0] != like.shape[0]):
        raise ValueError(f"t must have shape () or ({like.shape[0]},), got {tuple(t.shape)}")
    if t.dtype != like.dtype or t.device != like.device:
        return t.to(dtype=like.dtype, device=like.device)
    return t


def _state(x: Tensor, name: str, like: Tensor | None = None) -> None:
    """Raise unless ``x`` is a floating tensor of shape (B, *dims) (and matches ``like``)."""
    check_floating(x, name)
    if x.ndim == 0:
        raise ValueError(f"{name} must have shape (batch, *dims), got a 0-d tensor")
    if like is not None:
        check_same_shape([("x", like), (name, x)])
        if x.dtype != like.dtype or x.device != like.device:
            raise TypeError(
                f"{name} must have x's dtype and device ({like.dtype}, {like.device}), "
                f"got ({x.dtype}, {x.device})"
            )


def _nonzero(value: Tensor, t: TimeLike, what: str) -> Tensor:
    """``value``, checked not to vanish when the time ``t`` is a Python number (host data; a
    time tensor's values are not read, so as not to synchronise a device with the host)."""
    if not isinstance(t, Tensor) and abs(float(value)) <= 10 * torch.finfo(value.dtype).eps:
        raise ValueError(f"{what} is singular at t = {t}; evaluate it inside (0, 1)")
    return value
