r"""Few-step sampling with a flow map: jumps x ↦ x + (r − t)·u(t, r, x) along a grid.

The flow map X_{t→r} of the probability-flow ODE ẋ = b(t, x) can be written with the
*average velocity* over [t, r],

.. math::

    X_{t→r}(x) = x + (r − t)\,u(t, r, x),\qquad
    u(t, r, x) = \frac{1}{r − t}\int_t^r b(τ, X_{t→τ}(x))\,dτ,\qquad u(t, t, x) = b(t, x),

so a model of u (a *mean flow*) samples in one evaluation per jump: :class:`FlowMapSteps`
jumps from grid point to grid point, any number of jumps (one: t = 0 → 1), forwards or
backwards. With the exact u every grid gives the exact flow; a learned u trades accuracy for
evaluations. Its instantaneous velocity u(t, t, x) is an ordinary field
(:meth:`FlowMap.velocity`), so the same model also runs through every ODE integrator and the
likelihood.

References
----------
Z. Geng, M. Deng, X. Bai, J. Z. Kolter, K. He, *Mean Flows for One-step Generative
Modeling*, arXiv:2505.13447. N. M. Boffi, M. S. Albergo, E. Vanden-Eijnden, *Flow map
matching*, arXiv:2406.07507.
"""

from collections.abc import Callable
from typing import final

from torch import Tensor

from .._types import State
from ._base import Integrator, Problem
from ._dynamics import Dynamics

__all__ = ["AverageVelocity", "FlowMap", "FlowMapSteps"]

AverageVelocity = Callable[[Tensor, Tensor, Tensor], Tensor]
"""A field of the average velocity ``u(t, r, x)``: ``t`` and ``r`` of shape ``(B,)`` (the
start and end of the jump, one per sample), ``x`` of shape ``(B, *dims)``; returns a tensor
of ``x``'s shape. A trained ``nn.Module`` called as ``model(t, r, x)`` is one."""


@final
class FlowMap(Dynamics):
    r"""The flow map X_{t→r}(x) = x + (r − t)·u(t, r, x) of an average velocity u.

    Parameters
    ----------
    average:
        The average velocity ``u(t, r, x)`` (:data:`AverageVelocity`).

    Example
    -------
    >>> import torch
    >>> from interpolants import time_grid
    >>> from interpolants.integrate import FlowMap, FlowMapSteps
    >>> # ẋ = −x: X_{t→r}(x) = x e^{−(r − t)}, so u = x (e^{−(r−t)} − 1)/(r − t)
    >>> def u(t, r, x):
    ...     h = (r - t)[:, None]
    ...     return x * torch.expm1(-h) / h
    >>> FlowMapSteps().integrate(FlowMap(u), torch.ones(1, 1), time_grid(1)).state
    tensor([[0.3679]])
    """

    def __init__(self, average: AverageVelocity) -> None:
        if not callable(average):
            raise TypeError(f"average must be callable as average(t, r, x), got {average!r}")
        self.average = average

    @property
    def stochastic(self) -> bool:
        return False

    def velocity(self, t: Tensor, x: Tensor) -> Tensor:
        """The instantaneous velocity b(t, x) = u(t, t, x): a field for the ODE integrators
        (``ODE(flow_map.velocity)``) and the likelihood."""
        return self.average(t, t, x)

    def __repr__(self) -> str:
        return f"FlowMap({self.average!r})"


@final
class FlowMapSteps(Integrator):
    r"""Jumps x_{k+1} = x_k + (t_{k+1} − t_k)·u(t_k, t_{k+1}, x_k) of a :class:`FlowMap`.

    One evaluation of u per grid interval, no error control: the grid is the sampling
    budget (``time_grid(1)`` for one step). Exact for the exact average velocity whatever the
    grid; for a learned one, more jumps correct its error at the grid points.

    Example
    -------
    >>> import torch
    >>> from interpolants import time_grid
    >>> from interpolants.integrate import FlowMap, FlowMapSteps
    >>> shift = FlowMap(lambda t, r, x: torch.ones_like(x))  # u ≡ 1: X_{t→r}(x) = x + r − t
    >>> sol = FlowMapSteps().integrate(shift, torch.zeros(2, 1), time_grid(2, 1.0, 0.0))
    >>> sol.state.flatten().tolist(), sol.nfe
    ([-1.0, -1.0], 2)
    """

    @property
    def order(self) -> int:
        """0: the accuracy is the model's, not the step's (exact for the exact u)."""
        return 0

    def supports(self, dynamics: Dynamics) -> bool:
        """Only :class:`FlowMap` dynamics."""
        return isinstance(dynamics, FlowMap)

    def solve(self, problem: Problem) -> tuple[State, list[State], int]:
        """One counted evaluation of u per interval; no host reads."""
        dynamics = problem.dynamics
        assert isinstance(dynamics, FlowMap)
        counted = problem.counted(dynamics.velocity, "average velocity")
        x = problem.x
        keep = set(problem.saved)
        trajectory = [x] if 0 in keep else []
        n = x.shape[0]
        grid = problem.grid
        for k in range(len(problem.times) - 1):
            t, r = grid[k].expand(n), grid[k + 1].expand(n)
            u = counted.record(dynamics.average(t, r, x), x, t)
            x = x + (problem.times[k + 1] - problem.times[k]) * u
            if k + 1 in keep:
                trajectory.append(x)
        return x, trajectory, len(problem.times) - 1
