r"""Noise schedules γ(t) of a stochastic interpolant.

A schedule gives γ(t), its derivative γ̇(t) and the product γ(t)γ̇(t). Every schedule satisfies
γ(0) = γ(1) = 0 and γ ≥ 0 on [0, 1]; γ ≡ 0 (:class:`NoGamma`) gives a deterministic interpolant
(flow matching).

**Singular derivatives.** For :class:`BrownianGamma`, γ(t) = √(a t(1−t)) and
γ̇(t) = a(1−2t) / (2γ(t)) diverges like t^{-1/2} at both ends. The library never needs γ̇
alone where it is singular:

* the velocity field, the score conversions and the SDE drifts use the product
  γγ̇ = a(1−2t)/2, which is returned in closed form and is exact and finite at t = 0, 1;
* the regression target İ + γ̇ z is needed only at training times drawn from a continuous
  distribution, for which t = 0 or 1 has probability zero.

So :meth:`~GammaSchedule.gamma_dot` evaluates the formula at the time clamped to
``[edge, 1 − edge]`` (``edge = 1e-6`` by default, widened to the dtype's machine epsilon in
low precision): it is exact on that interval and returns the
finite value at the nearest end of it outside, never NaN or Inf. The clamped region has
probability 2·10⁻⁶ under uniform time sampling, and the antithetic losses (see
:class:`Objective`) cancel the O(γ̇) part of the target's variance there.
"""

import abc
import math
from collections.abc import Callable
from typing import final

import torch
from torch import Tensor

from .._types import Times

__all__ = [
    "BrownianGamma",
    "CustomGamma",
    "GammaSchedule",
    "NoGamma",
    "QuadraticGamma",
    "SineSquaredGamma",
]


class GammaSchedule(abc.ABC):
    """Abstract noise schedule γ(t) ≥ 0 with γ(0) = γ(1) = 0.

    **Writing a schedule.** Implement :meth:`gamma`, :meth:`gamma_dot` and :attr:`sup`; override
    :meth:`gamma_gamma_dot` with a closed form when γ̇ is singular at an end (as
    :class:`BrownianGamma` does). Each method takes a floating tensor ``t`` of any shape with
    values in [0, 1] and returns a tensor of the same shape, dtype and device, finite on all
    of [0, 1]; they should be differentiable in ``t`` inside (0, 1).

    Example
    -------
    >>> import torch
    >>> from interpolants.interpolant import GammaSchedule
    >>> class Cubic(GammaSchedule):  # γ = t(1 − t)²
    ...     def gamma(self, t):
    ...         return t * (1 - t) ** 2
    ...     def gamma_dot(self, t):
    ...         return (1 - t) * (1 - 3 * t)
    ...     @property
    ...     def sup(self):
    ...         return 4 / 27
    >>> Cubic().gamma_gamma_dot(torch.tensor([0.25, 0.5]))  # γγ̇ = t(1 − t)³(1 − 3t)
    tensor([ 0.0264, -0.0312])
    """

    @abc.abstractmethod
    def gamma(self, t: Times) -> Times:
        """γ(t), elementwise."""

    @abc.abstractmethod
    def gamma_dot(self, t: Times) -> Times:
        """dγ/dt, elementwise, finite everywhere on [0, 1] (see the module notes on singular
        ends)."""

    def gamma_gamma_dot(self, t: Times) -> Times:
        """γ(t)·γ̇(t), elementwise; subclasses with a singular γ̇ override it with a closed
        form that is finite at the ends."""
        return self.gamma(t) * self.gamma_dot(t)

    @property
    @abc.abstractmethod
    def sup(self) -> float:
        """An upper bound of γ on [0, 1] (the trigonometric interpolant needs sup γ < 1)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


@final
class NoGamma(GammaSchedule):
    """γ ≡ 0: the interpolant is deterministic (flow matching)."""

    def gamma(self, t: Times) -> Times:
        return torch.zeros_like(t)

    def gamma_dot(self, t: Times) -> Times:
        return torch.zeros_like(t)

    def gamma_gamma_dot(self, t: Times) -> Times:
        return torch.zeros_like(t)

    @property
    def sup(self) -> float:
        return 0.0


@final
class BrownianGamma(GammaSchedule):
    r"""γ(t) = √(a·t(1−t)), the Brownian-bridge schedule (``a = 1``) and its scaled form.

    γ̇(t) = a(1−2t) / (2√(a t(1−t))) and γγ̇ = a(1−2t)/2 (closed form, finite at the ends).

    Parameters
    ----------
    a:
        Scale, ``a > 0``. With ``a = σ²`` this is the Brownian bridge of the Schrödinger-bridge
        interpolant σ√(t(1−t)).
    edge:
        γ̇ is evaluated at ``t.clamp(edge, 1 - edge)``; see the module notes.
    """

    def __init__(self, a: float = 1.0, edge: float = 1e-6) -> None:
        if not a > 0 or not math.isfinite(a):
            raise ValueError(f"a must be a positive finite number, got {a}")
        if not 0 < edge < 0.5:
            raise ValueError(f"edge must lie in (0, 0.5), got {edge}")
        self.a = float(a)
        self.edge = float(edge)

    def gamma(self, t: Times) -> Times:
        u = t * torch.rsub(t, 1.0)
        if self.a != 1.0:
            u = u * self.a
        return u.clamp_min(0).sqrt()

    def gamma_dot(self, t: Times) -> Times:
        # In low precision (bf16: eps = 2^-7) 1 − edge would round to 1: widen the edge.
        edge = max(self.edge, torch.finfo(t.dtype).eps)
        tc = t.clamp(edge, 1 - edge)
        # a(1 − 2t)/(2√(a t(1−t))) = √a·(½ − t)·(t(1 − t))^{-1/2}
        out = torch.rsub(tc, 0.5) * (tc * torch.rsub(tc, 1.0)).rsqrt()
        return out if self.a == 1.0 else out * math.sqrt(self.a)

    def gamma_gamma_dot(self, t: Times) -> Times:
        return torch.rsub(t, 1.0, alpha=2.0) * (0.5 * self.a)  # a(1 − 2t)/2

    @property
    def sup(self) -> float:
        return math.sqrt(self.a) / 2

    def __repr__(self) -> str:
        return f"BrownianGamma(a={self.a})"


@final
class QuadraticGamma(GammaSchedule):
    """γ(t) = a·t(1−t); γ̇ = a(1−2t). Smooth at both ends."""

    def __init__(self, a: float = 1.0) -> None:
        if not a > 0 or not math.isfinite(a):
            raise ValueError(f"a must be a positive finite number, got {a}")
        self.a = float(a)

    def gamma(self, t: Times) -> Times:
        u = t * torch.rsub(t, 1.0)
        return u if self.a == 1.0 else u * self.a

    def gamma_dot(self, t: Times) -> Times:
        u = torch.rsub(t, 1.0, alpha=2.0)  # 1 − 2t
        return u if self.a == 1.0 else u * self.a

    @property
    def sup(self) -> float:
        return self.a / 4

    def __repr__(self) -> str:
        return f"QuadraticGamma(a={self.a})"


@final
class SineSquaredGamma(GammaSchedule):
    """γ(t) = a·sin²(πt); γ̇ = aπ·sin(2πt). Smooth, with γ(½) = a."""

    def __init__(self, a: float = 1.0) -> None:
        if not a > 0 or not math.isfinite(a):
            raise ValueError(f"a must be a positive finite number, got {a}")
        self.a = float(a)

    def gamma(self, t: Times) -> Times:
        # sin(πt)·sin(π − πt) = sin²(πt), written so that both ends are exactly zero
        # (π·1 rounds to π itself)
        pi_t = t * math.pi
        u = torch.sin(pi_t) * torch.sin(torch.rsub(pi_t, math.pi))
        return u if self.a == 1.0 else u * self.a

    def gamma_dot(self, t: Times) -> Times:
        return self.a * math.pi * torch.sin(2 * math.pi * t)

    @property
    def sup(self) -> float:
        return self.a

    def __repr__(self) -> str:
        return f"SineSquaredGamma(a={self.a})"


@final
class CustomGamma(GammaSchedule):
    """A user schedule γ(t) given as an elementwise torch callable; γ̇ by autograd.

    The callable must satisfy γ(0) = γ(1) = 0 and γ ≥ 0, with γ and γ̇ finite (checked at
    construction on a grid), and be differentiable on [0, 1]. γγ̇ is the plain product, so a
    γ̇ that is singular at an end is refused (use :class:`BrownianGamma` for √(t(1−t))).
    """

    def __init__(self, fn: Callable[[Tensor], Tensor]) -> None:
        grid = torch.linspace(0, 1, 1001, dtype=torch.float64)
        values = check_schedule(fn, grid, "fn")
        if bool((values < 0).any()):
            low = float(values.min())
            raise ValueError(f"fn must be non-negative on [0, 1], got minimum {low}")
        if abs(float(values[0])) > 1e-12 or abs(float(values[-1])) > 1e-12:
            raise ValueError(
                f"fn must vanish at t = 0 and t = 1, got {float(values[0])} and {float(values[-1])}"
            )
        self.fn = fn
        self._sup = float(values.max())

    def gamma(self, t: Times) -> Times:
        return self.fn(t)

    def gamma_dot(self, t: Times) -> Times:
        return time_derivative(self.fn, t)

    @property
    def sup(self) -> float:
        return self._sup

    def __repr__(self) -> str:
        return f"CustomGamma({self.fn!r})"


def check_schedule(fn: Callable[[Tensor], Tensor], grid: Tensor, name: str) -> Tensor:
    """Validate a user schedule on ``grid``: callable, elementwise (a tensor of the grid's
    shape), finite with a finite autograd derivative everywhere; return its values."""
    if not callable(fn):
        raise TypeError(f"{name} must be a callable of a time tensor, got {type(fn).__name__}")
    values = fn(grid)
    if not isinstance(values, Tensor) or values.shape != grid.shape:
        got = tuple(values.shape) if isinstance(values, Tensor) else type(values).__name__
        raise TypeError(
            f"{name} must map a tensor of times to a tensor of the same shape "
            f"{tuple(grid.shape)}, got {got}"
        )
    if not bool(torch.isfinite(values).all()):
        bad = float(grid[~torch.isfinite(values)][0])
        raise ValueError(f"{name}(t) must be finite on [0, 1], got NaN or Inf at t = {bad:g}")
    try:
        rate = time_derivative(fn, grid)
    except RuntimeError as error:
        raise TypeError(f"{name} must be differentiable by autograd in t: {error}") from None
    if not bool(torch.isfinite(rate).all()):
        bad = float(grid[~torch.isfinite(rate)][0])
        raise ValueError(
            f"the derivative of {name} must be finite on [0, 1], got NaN or Inf at t = {bad:g}"
            " (a schedule like √(t(1−t)) has an infinite slope at the ends)"
        )
    return values


def time_derivative(fn: Callable[[Tensor], Tensor], t: Tensor) -> Tensor:
    """Elementwise derivative of an elementwise callable by autograd.

    Keeps the graph when ``t`` itself requires grad, so the result stays differentiable.
    """
    with torch.enable_grad():
        tt = t if t.requires_grad else t.detach().requires_grad_(True)
        y = fn(tt)
        if not y.requires_grad:  # a constant schedule
            return torch.zeros_like(t)
        (grad,) = torch.autograd.grad(
            y.sum(), tt, create_graph=t.requires_grad, materialize_grads=True
        )
    return grad
