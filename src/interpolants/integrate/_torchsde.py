r"""The interpolant SDEs solved by ``torchsde.sdeint`` behind the :class:`Integrator`
contract.

The SDE, its direction, the end handling and the result are those of
:class:`SDE` and the fixed-step integrators; only the stochastic steps are
delegated to torchsde (with diagonal noise √(2ε(t))·I, which does not depend on the state, so
the Itô and Stratonovich forms coincide and torchsde's Stratonovich solvers apply). torchsde
integrates forwards in time only, so a backward run (decreasing grid) is solved in τ = −t:
dY = [−(b − ε s)](−τ, Y)\,dτ + √(2ε(−τ))\,dW_τ.

torchsde steps with a constant ``dt``, so the grid must be uniform. Its Brownian motion is a
``torchsde.BrownianInterval`` seeded from ``generator`` (one draw), so runs are reproducible,
but the noise differs from the native integrators' for the same seed. torchsde is imported
when an integration runs, not when :mod:`interpolants` is imported.

Host reads: torchsde's own loop keeps its times on the host, and this backend reads ε(t) on
the host at every drift evaluation to skip the score where ε = 0 (one read per evaluation);
the native fixed-step integrators read ε once per call.

References
----------
X. Li, T.-K. L. Wong, R. T. Q. Chen, D. Duvenaud, *Scalable Gradients for Stochastic
Differential Equations*, arXiv:2001.01328 (torchsde).
"""

import itertools
from collections.abc import Callable
from typing import Literal, final

import torch
from torch import Tensor

from ._base import Integrator, Problem
from ._dynamics import SDE, Dynamics
from ._fixed import Euler, FixedStepIntegrator, Heun, Midpoint

__all__ = ["TorchSDEIntegrator"]

Method = Literal["euler", "heun", "midpoint"]

# torchsde method -> (SDE type it solves, the matching fixed-step rule for the last interval)
_METHODS: dict[str, tuple[str, FixedStepIntegrator]] = {
    "euler": ("ito", Euler()),
    "heun": ("stratonovich", Heun()),
    "midpoint": ("stratonovich", Midpoint()),
}


class _Problem:
    """The SDE in torchsde's protocol: flat state (B, D), time τ = sign·t."""

    noise_type = "diagonal"

    def __init__(
        self, sde_type: str, problem: Problem, diffusion: Callable[[Tensor], Tensor]
    ) -> None:
        self.sde_type = sde_type
        self.problem = problem
        self.diffusion = diffusion
        self.sign = problem.sign
        self.shape = problem.x.shape

    def _time(self, tau: Tensor) -> Tensor:
        return (self.sign * tau).clamp(0.0, 1.0)

    def f(self, tau: Tensor, y: Tensor) -> Tensor:
        t = self._time(tau)
        x = y.reshape(self.shape)
        eps = float(self.diffusion(t))  # torchsde's own loop reads times on the host too
        return (self.sign * self.problem.drift(t, x, self.sign * eps)).reshape(y.shape)

    def g(self, tau: Tensor, y: Tensor) -> Tensor:
        eps = self.diffusion(self._time(tau)).clamp_min(0.0)
        return torch.sqrt(2 * eps).expand(y.shape)


@final
class TorchSDEIntegrator(Integrator):
    r"""Sample the interpolant SDEs with ``torchsde.sdeint`` (fixed step, uniform grid).

    Parameters
    ----------
    method:
        ``"euler"`` (Euler–Maruyama), ``"heun"`` or ``"midpoint"`` (torchsde's Stratonovich
        solvers; exact here because the noise is additive). The last interval of an
        :class:`SDE` with ``final_ode_step`` is the matching deterministic step
        (:class:`Euler`, :class:`Heun` or
        :class:`Midpoint`).

    Example
    -------
    >>> import torch
    >>> from interpolants import SDE, time_grid
    >>> from interpolants.integrate import TorchSDEIntegrator
    >>> gen = torch.Generator().manual_seed(0)
    >>> sde = SDE(lambda t, x: torch.zeros_like(x), lambda t, x: -x, 1.0)
    >>> sol = TorchSDEIntegrator("euler").integrate(
    ...     sde, torch.randn(2000, 1, generator=gen), time_grid(20), generator=gen)
    >>> abs(float(sol.state.var()) - 1.0) < 0.15
    True
    """

    def __init__(self, method: Method = "euler") -> None:
        if method not in _METHODS:
            raise ValueError(f"method must be one of {sorted(_METHODS)}, got {method!r}")
        self.method = method

    @property
    def order(self) -> int:
        return _METHODS[self.method][1].order

    def supports(self, dynamics: Dynamics) -> bool:
        """SDE dynamics only."""
        return isinstance(dynamics, SDE)

    def __repr__(self) -> str:
        return f"TorchSDEIntegrator({self.method!r})"

    def solve(self, problem: Problem) -> tuple[Tensor, list[Tensor], int]:
        """Delegate the stochastic steps to ``torchsde.sdeint`` (the grid must be uniform)."""
        import torchsde

        x, g, times = problem.x, problem.grid, problem.times
        steps = len(times) - 1
        h = [b - a for a, b in itertools.pairwise(times)]
        mean = sum(h) / steps
        if max(abs(v - mean) for v in h) > 1e-4 * abs(mean):
            raise ValueError("grid must be uniform for TorchSDEIntegrator (torchsde uses one dt)")
        problem.epsilon(times)  # ε validated on the grid (finite, ≥ 0)
        assert isinstance(problem.dynamics, SDE)
        diffusion = problem.dynamics.diffusion
        sde_type, ode_rule = _METHODS[self.method]
        sign = problem.sign
        stochastic = g[:-1] if problem.final_ode_step else g
        states = [x[None]]
        if stochastic.shape[0] > 1:
            tau = sign * stochastic
            flat = x.reshape(x.shape[0], -1)
            entropy = None
            if problem.generator is not None:
                seed = torch.randint(
                    2**31 - 1, (1,), generator=problem.generator, device=problem.generator.device
                )
                entropy = int(seed)
            bm = torchsde.BrownianInterval(
                t0=sign * times[0],
                t1=sign * times[len(stochastic) - 1],
                size=tuple(flat.shape),
                dtype=x.dtype,
                device=x.device,
                entropy=entropy,
            )
            sde = _Problem(sde_type, problem, diffusion)
            ys = torchsde.sdeint(sde, flat, tau, bm=bm, method=self.method, dt=abs(mean))
            states = [ys.reshape(ys.shape[0], *x.shape)]
        if problem.final_ode_step:
            last = ode_rule.step(problem, steps - 1, states[-1][-1])
            states.append(last[None])
        path = torch.cat(states)[-g.shape[0] :]
        return path[-1], [path[i] for i in problem.saved], steps
