"""The values an interpolant computes at one time: its coefficients and a sample of x_t with
every regression target; the checks of times and states shared by its methods."""

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from .. import _validation
from .._types import TimeLike
from .._validation import check_floating, check_same_shape, check_time_range

if TYPE_CHECKING:
    from ._base import Interpolant

__all__ = ["Coefficients", "InterpolantSample"]


_FIELDS = (
    "alpha",
    "beta",
    "gamma",
    "alpha_dot",
    "beta_dot",
    "gamma_dot",
    "gamma_gamma_dot",
    "noise_scale",
)


class Coefficients:
    """The schedule values at one time ``t``, each of ``t``'s shape, computed when first read.

    Attributes
    ----------
    t:
        The time the values are taken at.
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
    determinant:
        D = αβ̇ − α̇β, the determinant of the map (η0, η1) ↦ (x, v).

    The values may share memory with ``t`` (β = t for the linear path): do not modify them in
    place.
    """

    __slots__ = (
        "_determinant",
        "_interpolant",
        "_joint",
        "t",
        *(f"_{name}" for name in _FIELDS),
    )
    _alpha: Tensor | None
    _beta: Tensor | None
    _gamma: Tensor | None
    _alpha_dot: Tensor | None
    _beta_dot: Tensor | None
    _gamma_dot: Tensor | None
    _gamma_gamma_dot: Tensor | None
    _noise_scale: Tensor | None

    def __init__(self, interpolant: "Interpolant", t: Tensor) -> None:
        self._interpolant = interpolant
        self.t = t
        self._alpha = self._beta = self._gamma = self._alpha_dot = self._beta_dot = None
        self._gamma_dot = self._gamma_gamma_dot = self._noise_scale = None
        self._determinant: Tensor | None = None
        self._joint = interpolant._joint_schedule  # (α, β, α̇, β̇) from one schedule() call

    def _first(self, index: int, method: Callable[[Tensor], Tensor]) -> Tensor:
        """The value ``index`` of (α, β, α̇, β̇) on its first read: all four from one
        :meth:`Interpolant.schedule` call where the family has one, else ``method(t)``."""
        if not self._joint:
            return method(self.t)
        values = self._interpolant.schedule(self.t)
        self._alpha, self._beta, self._alpha_dot, self._beta_dot = values
        return values[index]

    @property
    def alpha(self) -> Tensor:
        value: Tensor | None = self._alpha
        if value is None:
            value = self._alpha = self._first(0, self._interpolant.alpha)
        return value

    @property
    def beta(self) -> Tensor:
        value: Tensor | None = self._beta
        if value is None:
            value = self._beta = self._first(1, self._interpolant.beta)
        return value

    @property
    def gamma(self) -> Tensor:
        value: Tensor | None = self._gamma
        if value is None:
            value = self._gamma = self._interpolant.gamma(self.t)
        return value

    @property
    def alpha_dot(self) -> Tensor:
        value: Tensor | None = self._alpha_dot
        if value is None:
            value = self._alpha_dot = self._first(2, self._interpolant.alpha_dot)
        return value

    @property
    def beta_dot(self) -> Tensor:
        value: Tensor | None = self._beta_dot
        if value is None:
            value = self._beta_dot = self._first(3, self._interpolant.beta_dot)
        return value

    @property
    def gamma_dot(self) -> Tensor:
        value: Tensor | None = self._gamma_dot
        if value is None:
            value = self._gamma_dot = self._interpolant.gamma_dot(self.t)
        return value

    @property
    def gamma_gamma_dot(self) -> Tensor:
        value: Tensor | None = self._gamma_gamma_dot
        if value is None:
            value = self._gamma_gamma_dot = self._interpolant.gamma_gamma_dot(self.t)
        return value

    @property
    def noise_scale(self) -> Tensor:
        value: Tensor | None = self._noise_scale
        if value is None:
            value = self._noise_scale = self._interpolant.noise_scale(self.t)
        return value

    @property
    def determinant(self) -> Tensor:
        value = self._determinant
        if value is None:
            value = self._determinant = self.alpha * self.beta_dot - self.alpha_dot * self.beta
        return value

    def __repr__(self) -> str:
        return f"Coefficients(t={self.t!r})"


class InterpolantSample:
    """x_t and every regression target at one draw of (t, x0, x1, z), computed when first read
    (an objective pays only for the targets it uses) and kept.

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
        The noise variable (:meth:`Interpolant.noise`): z, or x0 for a one-sided interpolant
        (its conditional mean is the denoiser η_z).
    coefficients:
        The schedule values at ``t`` viewed against the states: shape ``(B, 1, …, 1)`` for a
        time per sample, ``()`` for a shared one, so that they broadcast against ``x0``.
    """

    __slots__ = (
        "_interpolant",
        "_mean_velocity",
        "_noise",
        "_velocity",
        "_xt",
        "coefficients",
        "t",
        "x0",
        "x1",
        "z",
    )

    def __init__(
        self,
        interpolant: "Interpolant",
        t: Tensor,
        x0: Tensor,
        x1: Tensor,
        z: Tensor | None,
        coefficients: Coefficients,
    ) -> None:
        self._interpolant = interpolant
        self.t, self.x0, self.x1, self.z = t, x0, x1, z
        self.coefficients = coefficients
        self._xt: Tensor | None = None
        self._velocity: Tensor | None = None
        self._mean_velocity: Tensor | None = None
        self._noise: Tensor | None = None

    @property
    def noise(self) -> Tensor:
        if self._noise is None:
            self._noise = self._interpolant.noise(self.x0, self.z)
        return self._noise

    @property
    def xt(self) -> Tensor:
        if self._xt is None:
            c = self.coefficients
            if self._interpolant.constant_weights == (0.0, 1.0):  # x_t = x1 + γz (mirror)
                xt = self.x1
            else:
                xt = torch.addcmul(c.beta * self.x1, c.alpha, self.x0)
            if self._interpolant.is_stochastic:
                xt = torch.addcmul(xt, c.gamma, self.noise)
            self._xt = xt
        return self._xt

    @property
    def mean_velocity(self) -> Tensor:
        if self._mean_velocity is None:
            x0, x1 = self.x0, self.x1
            rates = self._interpolant.constant_rates
            if rates == (0.0, 0.0):  # α̇ = β̇ = 0 (the mirror path)
                v = torch.zeros_like(x1)
            elif rates is not None:  # α̇, β̇ constant: one fused op, no schedule evaluation
                ad, bd = rates
                v = x1.add(x0, alpha=ad) if bd == 1.0 else torch.add(x1 * bd, x0, alpha=ad)
            else:
                c = self.coefficients
                v = torch.addcmul(c.beta_dot * x1, c.alpha_dot, x0)
            self._mean_velocity = v
        return self._mean_velocity

    @property
    def velocity(self) -> Tensor:
        if self._velocity is None:
            interpolant = self._interpolant
            if not interpolant.is_stochastic:
                v = self.mean_velocity
            elif interpolant.constant_rates == (0.0, 0.0) and self._mean_velocity is None:
                v = self.coefficients.gamma_dot * self.noise  # v = 0: b's target is γ̇z
            else:
                v = torch.addcmul(self.mean_velocity, self.coefficients.gamma_dot, self.noise)
            self._velocity = v
        return self._velocity

    def __repr__(self) -> str:
        return f"InterpolantSample(interpolant={self._interpolant!r}, batch={self.x0.shape[0]})"


def _view(v: Tensor, x: Tensor) -> Tensor:
    """A time of shape ``()`` or ``(B,)`` viewed to broadcast against ``x`` (B, *dims)."""
    n = x.ndim
    if v.ndim == 0 or n == 1:
        return v
    if n == 2:
        return v.unsqueeze(1)
    return v.reshape(v.shape[0], *([1] * (n - 1)))


def _time(t: TimeLike, like: Tensor | None) -> Tensor:
    """``t`` as a tensor in ``like``'s dtype and on its device; numbers are range-checked,
    tensors get metadata checks only (shape ``()`` or ``(B,)`` with B = ``like.shape[0]``),
    and a range check in the checked mode (:data:`interpolants._validation.CHECK_VALUES`)."""
    if isinstance(t, Tensor) and like is not None:  # the common case first
        if (
            t.dtype == like.dtype
            and t.device == like.device
            and (t.ndim == 0 or (t.ndim == 1 and t.shape[0] == like.shape[0]))
        ):
            if _validation.CHECK_VALUES:
                check_time_range(t)
            return t
    if isinstance(t, (int, float)) and not isinstance(t, bool):
        if not (math.isfinite(t) and 0.0 <= t <= 1.0):
            raise ValueError(f"t must lie in [0, 1], got {t}")
        if like is None:
            return torch.tensor(float(t), dtype=torch.get_default_dtype())
        return torch.tensor(float(t), dtype=like.dtype, device=like.device)
    if not isinstance(t, Tensor):
        raise TypeError(f"t must be a number or a torch.Tensor, got {type(t).__name__}")
    if not t.dtype.is_floating_point:
        raise TypeError(f"t must have a floating dtype, got {t.dtype}")
    if like is None:
        return t
    if t.ndim > 1 or (t.ndim == 1 and t.shape[0] != like.shape[0]):
        raise ValueError(f"t must have shape () or ({like.shape[0]},), got {tuple(t.shape)}")
    if _validation.CHECK_VALUES:
        check_time_range(t)
    if t.dtype != like.dtype or t.device != like.device:
        return t.to(dtype=like.dtype, device=like.device)
    return t


def _states(x0: Tensor, x1: Tensor, z: Tensor | None) -> None:
    """The checks of :meth:`Interpolant.sample`'s states, the common case in one comparison."""
    if (
        isinstance(x0, Tensor)
        and isinstance(x1, Tensor)
        and x0.dtype.is_floating_point
        and x0.ndim > 0
        and x1.shape == x0.shape
        and x1.dtype == x0.dtype
        and x1.device == x0.device
        and (
            z is None
            or (
                isinstance(z, Tensor)
                and z.shape == x0.shape
                and z.dtype == x0.dtype
                and z.device == x0.device
            )
        )
    ):
        return
    _state(x0, "x0")
    _state(x1, "x1", x0)
    if z is not None:
        _state(z, "z", x0)


def _state(x: Tensor, name: str, like: Tensor | None = None, like_name: str = "x0") -> None:
    """Raise unless ``x`` is a floating tensor of shape (B, *dims) (and matches ``like``)."""
    if like is not None and isinstance(x, Tensor):  # the common case first: one comparison
        if x.shape == like.shape and x.dtype == like.dtype and x.device == like.device:
            return
        check_floating(x, name)
        check_same_shape([(like_name, like), (name, x)])
        raise TypeError(
            f"{name} must have {like_name}'s dtype and device ({like.dtype}, {like.device}), "
            f"got ({x.dtype}, {x.device})"
        )
    if not (isinstance(x, Tensor) and x.dtype.is_floating_point):
        check_floating(x, name)  # raises, naming the argument
    if x.ndim == 0:
        raise ValueError(f"{name} must have shape (batch, *dims), got a 0-d tensor")


def _nonzero(value: Tensor, t: TimeLike, what: str) -> Tensor:
    """``value``, checked not to vanish when the time ``t`` is a Python number (host data; a
    time tensor's values are not read, so as not to synchronise a device with the host)."""
    if not isinstance(t, Tensor) and abs(float(value)) <= 10 * torch.finfo(value.dtype).eps:
        raise ValueError(f"{what} is singular at t = {t}; evaluate it inside (0, 1)")
    return value
