r"""Fixed-step explicit Runge–Kutta integrators of ODE and SDE dynamics.

On a grid t₀, t₁, …, t_N with steps h_k = t_{k+1} − t_k (negative when integrating backwards),
each method applies its Butcher tableau (:class:`Tableau`) once per
interval:

=====================  ==========================================  =====  ======================
class                  step of the ODE ẋ = b                       order  NFE (ODE)
=====================  ==========================================  =====  ======================
:class:`Euler`         x + h·k₁                                     1      N
:class:`Heun`          x + h/2·(k₁ + b(t+h, x + h k₁))              2      2N
:class:`Midpoint`      x + h·b(t + h/2, x + h/2·k₁)                 2      2N
:class:`RK4`           x + h/6·(k₁ + 2k₂ + 2k₃ + k₄) (classical)    4      4N
=====================  ==========================================  =====  ======================

with k₁ = b(t_k, x_k); the order is the global order for a smooth field.

**SDEs.** The same rules step an :class:`SDE` (additive noise √(2ε(t)) dW):
each stage's derivative is the drift d = b ± ε s at its time, and with one Brownian increment
ΔW = √|h| ξ per step, σ̄ = Σᵢ bᵢ √(2ε(t + cᵢh)),

.. math::

    X_i = x + h\sum_{j<i} a_{ij}k_j + c_i\,σ̄ ΔW,\qquad
    x_{k+1} = x + h\sum_i b_i k_i + σ̄ ΔW.

:class:`Euler` is then Euler–Maruyama and :class:`Heun` the stochastic Heun
predictor–corrector (Kloeden & Platen §15.1); all reduce to their ODE rule
where ε ≡ 0 (weak order 1 in general). The score is evaluated at a stage only where ε > 0, and
by default the last interval is a deterministic step (:class:`SDE` end
handling). The noise is drawn with ``generator`` on the state's device, so sampling is
reproducible for a seeded generator.

References
----------
E. Hairer, S. P. Nørsett, G. Wanner, *Solving Ordinary Differential Equations I*, Springer
(1993), §II.1. P. E. Kloeden, E. Platen, *Numerical Solution of Stochastic Differential
Equations*, Springer (1992).
"""

import abc
import math
from typing import final

from torch import Tensor

from .._types import State
from ._base import Integrator, Problem
from ._dynamics import ODE, SDE, Dynamics
from ._tableau import CLASSICAL_RK4, EULER, HEUN, MIDPOINT, Tableau

__all__ = ["RK4", "Euler", "FixedStepIntegrator", "Heun", "Midpoint"]


class FixedStepIntegrator(Integrator):
    """Abstract explicit Runge–Kutta method stepping exactly from grid point to grid point.

    **Writing one.** Subclass and give :attr:`tableau` and :attr:`~Integrator.order`; the
    stepping of ODEs and SDEs is written once, here (see the module notes).

    Example
    -------
    >>> import torch
    >>> from interpolants import time_grid
    >>> from interpolants.integrate import FixedStepIntegrator, Tableau
    >>> class Ralston(FixedStepIntegrator):
    ...     tableau = Tableau(c=(0.0, 2 / 3), a=((), (2 / 3,)), b=(0.25, 0.75))
    ...     order = 2
    >>> x1 = Ralston().integrate(lambda t, x: x, torch.ones(1, 1, dtype=torch.float64),
    ...                          time_grid(100, dtype=torch.float64)).state
    >>> abs(float(x1) - 2.718281828) < 1e-4
    True
    """

    @property
    @abc.abstractmethod
    def tableau(self) -> Tableau:
        """The method's Butcher tableau."""

    @property
    def stages(self) -> int:
        """Field evaluations per step of an ODE (NFE = stages × grid intervals)."""
        return self.tableau.stages

    def supports(self, dynamics: Dynamics) -> bool:
        """ODE and SDE dynamics."""
        return isinstance(dynamics, (ODE, SDE))

    def solve(self, problem: Problem) -> tuple[State, list[State], int]:
        """Step every grid interval with the tableau (see the module notes)."""
        times = problem.times
        n = len(times) - 1
        nodes = self.tableau.c
        s = len(nodes)
        eps: list[float] = []
        if problem.score is not None:  # ε at every stage time, read on the host once
            eps = problem.epsilon(
                [times[k] + c * (times[k + 1] - times[k]) for k in range(n) for c in nodes]
            )
        x = problem.x
        keep = set(problem.saved)
        trajectory = [x] if 0 in keep else []
        for k in range(n):
            deterministic = not eps or (problem.final_ode_step and k == n - 1)
            x = self.step(problem, k, x, None if deterministic else eps[k * s : (k + 1) * s])
            if k + 1 in keep:
                trajectory.append(x)
        return x, trajectory, n

    def step(self, problem: Problem, k: int, x: State, epsilon: list[float] | None = None) -> State:
        """One step over the grid interval k, from the state ``x`` at ``problem.times[k]``.

        With ``epsilon`` (ε at the stage times t_k + cᵢh) it is a stochastic step of the SDE
        (drift b ± εs and one noise draw); without, a deterministic step of the velocity.
        """
        tab = self.tableau
        t0, h = problem.times[k], problem.times[k + 1] - problem.times[k]
        grid = problem.grid
        dw = None
        if epsilon is not None:  # one draw per stochastic step, even where ε = 0 there, so a
            # seeded run's noise does not depend on the diffusion schedule
            noise = problem.noise()
            sigma = sum(b * math.sqrt(2.0 * epsilon[i]) for i, b in enumerate(tab.b))
            if sigma > 0.0:
                dw = noise.mul_(sigma * math.sqrt(abs(h)))
        input_only = tab.input_only
        ks: list[Tensor] = []
        for i, c in enumerate(tab.c):
            xi = x
            for j, a in enumerate(tab.a[i]):
                if a != 0.0:
                    xi = xi + (h * a) * ks[j]
            if dw is not None and c != 0.0:
                xi = xi + c * dw
            ti = grid[k] if c == 0.0 else grid[k + 1] if c == 1.0 else x.new_full((), t0 + c * h)
            if epsilon is not None:
                ks.append(problem.drift(ti, xi, problem.sign * epsilon[i]))
            elif i in input_only:
                ks.append(problem.partial(ti, xi))
            else:
                ks.append(problem.velocity(ti, xi))
        out = x
        for i, b in enumerate(tab.b):
            if b != 0.0:
                out = out + (h * b) * ks[i]
        return out if dw is None else out + dw


@final
class Euler(FixedStepIntegrator):
    """Explicit Euler (Euler–Maruyama for an SDE). Order 1, one evaluation a step.

    Example
    -------
    >>> import torch
    >>> from interpolants import Euler, time_grid
    >>> sol = Euler().integrate(lambda t, x: torch.ones_like(x), torch.zeros(3, 2), time_grid(4))
    >>> sol.state[0], sol.nfe
    (tensor([1., 1.]), 4)
    """

    tableau = EULER
    order = 1


@final
class Heun(FixedStepIntegrator):
    """Heun's method, the explicit trapezoidal rule (stochastic Heun for an SDE). Order 2,
    two evaluations a step.

    Example
    -------
    >>> import torch
    >>> from interpolants import time_grid
    >>> from interpolants.integrate import Heun
    >>> sol = Heun().integrate(lambda t, x: x, torch.ones(1, 1, dtype=torch.float64),
    ...                        time_grid(100, dtype=torch.float64))  # ẋ = x: x(1) = e
    >>> round(float(sol.state), 4), sol.nfe
    (2.7182, 200)
    """

    tableau = HEUN
    order = 2


@final
class Midpoint(FixedStepIntegrator):
    """The explicit midpoint rule. Order 2, two evaluations a step.

    Example
    -------
    >>> import torch
    >>> from interpolants import time_grid
    >>> from interpolants.integrate import Midpoint
    >>> # backwards from t = 1 to 0 along ẋ = x: x(0) = x(1)/e
    >>> sol = Midpoint().integrate(lambda t, x: x, torch.ones(1, 1, dtype=torch.float64),
    ...                            time_grid(100, 1.0, 0.0, dtype=torch.float64))
    >>> round(float(sol.state), 4)
    0.3679
    """

    tableau = MIDPOINT
    order = 2


@final
class RK4(FixedStepIntegrator):
    """The classical Runge–Kutta method. Order 4, four evaluations a step.

    Example
    -------
    >>> import torch
    >>> from interpolants import time_grid
    >>> from interpolants.integrate import RK4
    >>> # ẋ = x from t = 0 to 1: x(1) = e
    >>> sol = RK4().integrate(lambda t, x: x, torch.ones(1, 1, dtype=torch.float64),
    ...                       time_grid(20, dtype=torch.float64))
    >>> round(float(sol.state), 6)
    2.718282
    """

    tableau = CLASSICAL_RK4
    order = 4
