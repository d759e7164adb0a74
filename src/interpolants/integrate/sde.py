r"""SDE samplers for stochastic interpolants: Euler–Maruyama and stochastic Heun.

Given the velocity b, the score s and a diffusion schedule ε(t) ≥ 0
(:mod:`interpolants.integrate.diffusion`), the samplers integrate (MATH.md §1)

.. math::

    \text{forwards } (t: 0 → 1):\quad dX = [b + ε s]\,dt + \sqrt{2ε}\,dW,\qquad
    \text{backwards } (t: 1 → 0):\quad dY = [b − ε s]\,dt + \sqrt{2ε}\,dW^B,

whose marginals are the interpolant's ρ_t for every ε. The direction is read from the grid:
with h_k = t_{k+1} − t_k (negative backwards) both cases are the one update rule

.. math::

    x_{k+1} = x_k + h_k\,[b + \operatorname{sign}(h_k)\,ε_k s](t_k, x_k) + \sqrt{2ε_k |h_k|}\,ξ_k,
    \qquad ξ_k \sim N(0, I)

(Euler–Maruyama). :class:`StochasticHeun` adds the trapezoidal corrector of Heun's method (for
this additive noise it is the scheme of Kloeden & Platen §15.1 and EDM's Algorithm 2).
Where ε(t_k) = 0 the score is not evaluated at all.

End handling (explicit)
-----------------------
The score is singular where the noise level vanishes: a learned s = −η_z/γ blows up as γ → 0
at t = 0 and t = 1 (and s = −η_z/α at t = 1 for one-sided interpolants). The samplers
therefore

* take the **last interval [t_{N−1}, t_N] as one deterministic step of the probability-flow ODE**
  ẋ = b (an Euler step for Euler–Maruyama, a Heun step for stochastic Heun): no score, no noise,
  so s is never evaluated at the final time. Pass ``final_ode_step=False`` to use the
  stochastic step there too (fine when s is regular at the end, e.g. exact fields);
* evaluate the score at the *first* time t₀ only if ε(t₀) > 0. To start where s is singular,
  either start the grid inside (0, 1) (the official notebooks integrate on [0, 0.99] or
  [10⁻⁴, 1 − 10⁻⁴]) or use a schedule with ε(t₀) = 0, such as
  :class:`~interpolants.integrate.GammaProportionalDiffusion`, for which ε s = −scale·η_z
  stays bounded.

The noise is drawn with ``torch.randn(..., generator=generator)`` on the state's device, so
sampling is reproducible for a seeded generator.

References
----------
M. S. Albergo, N. M. Boffi, E. Vanden-Eijnden, *Stochastic Interpolants: A Unifying Framework
for Flows and Diffusions*, arXiv:2303.08797. P. E. Kloeden, E. Platen, *Numerical Solution of
Stochastic Differential Equations*, Springer (1992). T. Karras et al., *Elucidating the Design
Space of Diffusion-Based Generative Models*, arXiv:2206.00364.
"""

import abc
import math
from typing import final

import torch
from jaxtyping import Float
from torch import Tensor

from ..fields import Field
from .base import (
    CountedField,
    Integrator,
    Solution,
    check_grid,
    check_state,
    make_solution,
    save_indices,
)
from .diffusion import Diffusion, diffusion_on_grid
from .ode import euler_step, heun_step

__all__ = ["EulerMaruyama", "OneStepSDEIntegrator", "SDEIntegrator", "StochasticHeun"]


def drift(velocity: CountedField, score: CountedField, t: Tensor, x: Tensor, eps: float) -> Tensor:
    """b + eps·s at (t, x), skipping the score where eps = 0 (eps carries the direction sign)."""
    b = velocity(t, x)
    if eps == 0.0:
        return b
    return b + eps * score(t, x)


def check_generator(generator: torch.Generator | None, x: Tensor) -> None:
    """Raise unless ``generator`` is ``None`` or a generator on ``x``'s device type."""
    if generator is None:
        return
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    if generator.device.type != x.device.type:
        raise ValueError(
            f"generator is on {generator.device} but the state is on {x.device}; "
            "create it with torch.Generator(device=x.device)"
        )


class SDEIntegrator(Integrator):
    r"""Abstract sampler of the interpolant SDEs with drift b ± ε s and noise √(2ε) dW.

    Parameters
    ----------
    final_ode_step:
        Integrate the last grid interval with the deterministic ODE step (see the module
        notes on end handling). Default ``True``.
    """

    def __init__(self, *, final_ode_step: bool = True) -> None:
        self.final_ode_step = bool(final_ode_step)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(final_ode_step={self.final_ode_step})"

    @abc.abstractmethod
    def integrate(
        self,
        velocity: Field,
        score: Field,
        x: Float[Tensor, "batch *dims"],
        grid: Tensor,
        diffusion: Diffusion | float,
        *,
        save_at: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Solution:
        r"""Sample the SDE from ``x`` at ``grid[0]`` to ``grid[-1]``.

        Arguments
        ---------
        velocity:
            The velocity field b(t, x) (field protocol: ``t`` shape ``(B,)``).
        score:
            The score field s(t, x) = ∇ log ρ_t(x).
        x:
            Initial samples at ``grid[0]``, shape ``(B, *dims)``: from ρ0 for an increasing
            grid starting at 0, from ρ1 for a decreasing grid starting at 1.
        grid:
            Strictly monotone times in [0, 1]: increasing samples forwards with drift
            b + ε s, decreasing samples backwards with drift b − ε s.
        diffusion:
            ε(t) ≥ 0: a :class:`~interpolants.integrate.Diffusion` or a number (constant).
        save_at:
            Grid times at which to record the state.
        generator:
            Random generator for the noise (on the state's device).

        Returns
        -------
        Solution
            Final samples, optional trajectory, and NFE (velocity and score calls).
        """

    def _checked(
        self,
        velocity: Field,
        score: Field,
        x: Tensor,
        grid: Tensor,
        diffusion: Diffusion | float,
        save_at: Tensor | None,
        generator: torch.Generator | None,
    ) -> tuple[Tensor, list[int], list[float], CountedField, CountedField]:
        """Validate once: grid on x's dtype/device, saved indices, ε on the grid, counters."""
        check_state(x)
        g = check_grid(grid, x)
        saved = save_indices(save_at, g)
        eps = diffusion_on_grid(diffusion, g)
        check_generator(generator, x)
        return g, saved, eps, CountedField(velocity, x, "velocity"), CountedField(score, x, "score")


class OneStepSDEIntegrator(SDEIntegrator):
    """Abstract native one-step SDE scheme: subclasses give the stochastic and the ODE step."""

    def integrate(
        self,
        velocity: Field,
        score: Field,
        x: Float[Tensor, "batch *dims"],
        grid: Tensor,
        diffusion: Diffusion | float,
        *,
        save_at: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Solution:
        """Sample the SDE; see :meth:`SDEIntegrator.integrate`."""
        g, saved, eps, v, s = self._checked(velocity, score, x, grid, diffusion, save_at, generator)
        h = g.diff()
        sign = 1.0 if float(h[0]) > 0 else -1.0
        intervals = g.shape[0] - 1
        keep = set(saved)
        trajectory = [x] if 0 in keep else []
        for k in range(intervals):
            if self.final_ode_step and k == intervals - 1:
                x = self._ode_step(v, g[k], g[k + 1], h[k], x)
            else:
                noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
                x = self._sde_step(v, s, g[k], g[k + 1], h[k], x, (eps[k], eps[k + 1]), sign, noise)
            if k + 1 in keep:
                trajectory.append(x)
        return make_solution(x, g, saved, trajectory, v.count + s.count, intervals)

    @abc.abstractmethod
    def _sde_step(
        self,
        velocity: CountedField,
        score: CountedField,
        t: Tensor,
        t_next: Tensor,
        h: Tensor,
        x: Tensor,
        eps: tuple[float, float],
        sign: float,
        noise: Tensor,
    ) -> Tensor:
        """One stochastic step; ``eps`` = (ε(t), ε(t_next)), ``noise`` ~ N(0, I)."""

    @abc.abstractmethod
    def _ode_step(
        self, velocity: CountedField, t: Tensor, t_next: Tensor, h: Tensor, x: Tensor
    ) -> Tensor:
        """The deterministic step used on the last interval."""


@final
class EulerMaruyama(OneStepSDEIntegrator):
    r"""Euler–Maruyama: x + h[b ± ε s](t_k, x) + √(2ε(t_k)|h|) ξ.

    Weak order 1; one velocity and (where ε > 0) one score evaluation a step; the final step
    is an Euler step of the ODE by default (see the module notes).

    Example
    -------
    >>> import torch
    >>> from interpolants.integrate import EulerMaruyama, time_grid
    >>> gen = torch.Generator().manual_seed(0)
    >>> # N(0, I) is stationary for b = 0, s = −x (a time-homogeneous Ornstein–Uhlenbeck flow)
    >>> sol = EulerMaruyama().integrate(lambda t, x: torch.zeros_like(x), lambda t, x: -x,
    ...                                 torch.randn(4000, 1, generator=gen), time_grid(50), 1.0,
    ...                                 generator=gen)
    >>> abs(float(sol.state.var()) - 1.0) < 0.1, sol.nfe
    (True, 99)
    """

    @property
    def order(self) -> int:
        return 1

    def _sde_step(
        self,
        velocity: CountedField,
        score: CountedField,
        t: Tensor,
        t_next: Tensor,
        h: Tensor,
        x: Tensor,
        eps: tuple[float, float],
        sign: float,
        noise: Tensor,
    ) -> Tensor:
        d = drift(velocity, score, t, x, sign * eps[0])
        return x + h * d + math.sqrt(2 * eps[0] * abs(float(h))) * noise

    def _ode_step(
        self, velocity: CountedField, t: Tensor, t_next: Tensor, h: Tensor, x: Tensor
    ) -> Tensor:
        return euler_step(velocity, t, t_next, h, x)


@final
class StochasticHeun(OneStepSDEIntegrator):
    r"""Stochastic Heun (predictor–corrector) for the additive noise √(2ε(t)) dW.

    With σ̄ = ½(√(2ε(t_k)) + √(2ε(t_{k+1}))) and ΔW = √|h| ξ:

    .. math::

        \tilde x = x + h\,d(t_k, x) + σ̄ ΔW,\qquad
        x_{k+1} = x + \tfrac{h}{2}[d(t_k, x) + d(t_{k+1}, \tilde x)] + σ̄ ΔW,

    with d = b ± ε s. Second order when ε ≡ 0 (it is then Heun's method); two velocity and up
    to two score evaluations a step. The corrector evaluates the score at t_{k+1}, so on the
    last interval, where it may be singular, the deterministic Heun step is used by default.
    """

    @property
    def order(self) -> int:
        return 2

    def _sde_step(
        self,
        velocity: CountedField,
        score: CountedField,
        t: Tensor,
        t_next: Tensor,
        h: Tensor,
        x: Tensor,
        eps: tuple[float, float],
        sign: float,
        noise: Tensor,
    ) -> Tensor:
        hf = float(h)
        sigma = 0.5 * (math.sqrt(2 * eps[0]) + math.sqrt(2 * eps[1]))
        dw = (sigma * math.sqrt(abs(hf))) * noise
        d1 = drift(velocity, score, t, x, sign * eps[0])
        predictor = x + h * d1 + dw
        d2 = drift(velocity, score, t_next, predictor, sign * eps[1])
        return x + (0.5 * h) * (d1 + d2) + dw

    def _ode_step(
        self, velocity: CountedField, t: Tensor, t_next: Tensor, h: Tensor, x: Tensor
    ) -> Tensor:
        return heun_step(velocity, t, t_next, h, x)
