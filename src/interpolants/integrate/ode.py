r"""Fixed-step Runge–Kutta integrators of the probability-flow ODE ẋ = b(t, x).

On a grid t₀, t₁, …, t_N with steps h_k = t_{k+1} − t_k (negative when integrating backwards),
each method maps x_k to x_{k+1}:

=====================  =====================================================  =====  ===
class                  step                                                   order  NFE
=====================  =====================================================  =====  ===
:class:`Euler`         x + h·k₁                                               1      N
:class:`Heun`          x + h/2·(k₁ + b(t+h, x + h k₁))                        2      2N
:class:`Midpoint`      x + h·b(t + h/2, x + h/2·k₁)                           2      2N
:class:`RK4`           x + h/6·(k₁ + 2k₂ + 2k₃ + k₄) (classical)              4      4N
=====================  =====================================================  =====  ===

with k₁ = b(t_k, x_k). The order is the global order: the error at t_N is O(max|h|^order)
for a smooth field.

References
----------
E. Hairer, S. P. Nørsett, G. Wanner, *Solving Ordinary Differential Equations I*, Springer
(1993), §II.1.
"""

import abc
from collections.abc import Callable
from typing import final

from torch import Tensor

from .base import CountedField, ODEIntegrator

__all__ = ["RK4", "Euler", "FixedStepIntegrator", "Heun", "Midpoint"]

# one step of a fixed-step rule: (field, t, t_next, h, x) -> x_next (shared with torchsde's)
_Step = Callable[[CountedField, Tensor, Tensor, Tensor, Tensor], Tensor]


def euler_step(f: CountedField, t: Tensor, t_next: Tensor, h: Tensor, x: Tensor) -> Tensor:
    """One explicit Euler step from ``t`` to ``t_next`` (``h = t_next − t``, a 0-d tensor)."""
    return x + h * f(t, x)


def heun_step(f: CountedField, t: Tensor, t_next: Tensor, h: Tensor, x: Tensor) -> Tensor:
    """One Heun (explicit trapezoidal) step."""
    k1 = f(t, x)
    k2 = f(t_next, x + h * k1)
    return x + 0.5 * h * (k1 + k2)


def midpoint_step(f: CountedField, t: Tensor, t_next: Tensor, h: Tensor, x: Tensor) -> Tensor:
    """One explicit midpoint step.

    The first stage has weight 0 in the update, so it is the field's ``partial`` evaluation
    (see :meth:`~interpolants.integrate.base.CountedField.partial`).
    """
    k1 = f.partial(t, x)
    return x + h * f(t + 0.5 * h, x + 0.5 * h * k1)


def rk4_step(f: CountedField, t: Tensor, t_next: Tensor, h: Tensor, x: Tensor) -> Tensor:
    """One classical fourth-order Runge–Kutta step."""
    half = t + 0.5 * h
    k1 = f(t, x)
    k2 = f(half, x + 0.5 * h * k1)
    k3 = f(half, x + 0.5 * h * k2)
    k4 = f(t_next, x + h * k3)
    return x + (h / 6) * (k1 + 2 * k2 + 2 * k3 + k4)


def run_fixed_steps(
    step: _Step, f: CountedField, x: Tensor, grid: Tensor, saved: list[int]
) -> tuple[Tensor, list[Tensor]]:
    """Apply ``step`` over every interval of ``grid``, recording the states at ``saved``."""
    h = grid.diff()
    keep = set(saved)
    trajectory = [x] if 0 in keep else []
    for k in range(grid.shape[0] - 1):
        x = step(f, grid[k], grid[k + 1], h[k], x)
        if k + 1 in keep:
            trajectory.append(x)
    return x, trajectory


class FixedStepIntegrator(ODEIntegrator):
    """Abstract explicit one-step method stepping exactly from grid point to grid point.

    Subclasses set :attr:`stages` (field evaluations per step) and implement :meth:`_step`.
    """

    @property
    @abc.abstractmethod
    def stages(self) -> int:
        """Field evaluations per step, so that NFE = stages × (number of grid intervals)."""

    @abc.abstractmethod
    def _step(self, f: CountedField, t: Tensor, t_next: Tensor, h: Tensor, x: Tensor) -> Tensor:
        """One step from times ``t`` to ``t_next`` (0-d, expanded to ``(B,)`` for the field by
        ``CountedField``), ``h`` 0-d."""

    def _solve(
        self, field: CountedField, x: Tensor, grid: Tensor, saved: list[int]
    ) -> tuple[Tensor, list[Tensor], int]:
        state, trajectory = run_fixed_steps(self._step, field, x, grid, saved)
        return state, trajectory, grid.shape[0] - 1


@final
class Euler(FixedStepIntegrator):
    """Explicit Euler: x_{k+1} = x_k + h_k b(t_k, x_k). First order, one evaluation a step.

    Example
    -------
    >>> import torch
    >>> from interpolants.integrate import Euler, time_grid
    >>> sol = Euler().integrate(lambda t, x: torch.ones_like(x), torch.zeros(3, 2), time_grid(4))
    >>> sol.state[0], sol.nfe
    (tensor([1., 1.]), 4)
    """

    @property
    def order(self) -> int:
        return 1

    @property
    def stages(self) -> int:
        return 1

    def _step(self, f: CountedField, t: Tensor, t_next: Tensor, h: Tensor, x: Tensor) -> Tensor:
        return euler_step(f, t, t_next, h, x)


@final
class Heun(FixedStepIntegrator):
    """Heun's method (explicit trapezoidal rule). Second order, two evaluations a step."""

    @property
    def order(self) -> int:
        return 2

    @property
    def stages(self) -> int:
        return 2

    def _step(self, f: CountedField, t: Tensor, t_next: Tensor, h: Tensor, x: Tensor) -> Tensor:
        return heun_step(f, t, t_next, h, x)


@final
class Midpoint(FixedStepIntegrator):
    """The explicit midpoint rule. Second order, two evaluations a step."""

    @property
    def order(self) -> int:
        return 2

    @property
    def stages(self) -> int:
        return 2

    def _step(self, f: CountedField, t: Tensor, t_next: Tensor, h: Tensor, x: Tensor) -> Tensor:
        return midpoint_step(f, t, t_next, h, x)


@final
class RK4(FixedStepIntegrator):
    """The classical Runge–Kutta method. Fourth order, four evaluations a step.

    Example
    -------
    >>> import torch
    >>> from interpolants.integrate import RK4, time_grid
    >>> # ẋ = x from t = 0 to 1: x(1) = e
    >>> sol = RK4().integrate(lambda t, x: x, torch.ones(1, 1, dtype=torch.float64),
    ...                       time_grid(20, dtype=torch.float64))
    >>> round(float(sol.state), 6)
    2.718282
    """

    @property
    def order(self) -> int:
        return 4

    @property
    def stages(self) -> int:
        return 4

    def _step(self, f: CountedField, t: Tensor, t_next: Tensor, h: Tensor, x: Tensor) -> Tensor:
        return rk4_step(f, t, t_next, h, x)
