r"""Adaptive Dormand–Prince 5(4) integration of the probability-flow ODE.

Each step computes a fifth-order solution x̂ and an embedded fourth-order one; their
difference e estimates the local error. With the elementwise scale
:math:`sc = atol + rtol·\max(|x|, |\hat x|)`, the error norm is

.. math::

    \mathrm{err} = \max_{i \le B} \sqrt{\operatorname{mean}_j (e_{ij} / sc_{ij})^2},

the root-mean-square error of the worst sample, so every sample of the batch meets the
tolerance (the whole batch shares one step because t is shared). A step is accepted when
err ≤ 1, and the next step is h·min(10, max(0.2, 0.9·err^{-1/5})). The seventh stage is the
first stage of the next step (FSAL), so an accepted or rejected step costs six evaluations.
Steps are shortened to stop exactly on every grid point; the initial step follows Hairer,
Nørsett and Wanner (one extra evaluation).

References
----------
J. R. Dormand, P. J. Prince, *A family of embedded Runge–Kutta formulae*, J. Comput. Appl.
Math. 6 (1980). E. Hairer, S. P. Nørsett, G. Wanner, *Solving Ordinary Differential
Equations I*, Springer (1993), §II.4.
"""

import abc
import math
from collections.abc import Callable
from typing import final

import torch
from torch import Tensor

from ._base import Integrator, Problem
from ._tableau import DOPRI5

__all__ = ["AdaptiveIntegrator", "Dopri5"]

# (row of a, weight) pairs with the zero coefficients dropped, for the stage inputs
_ROWS = [[(j, a) for j, a in enumerate(row) if a != 0.0] for row in DOPRI5.a]
_ERROR = [(i, e) for i, e in enumerate(DOPRI5.error or ()) if e != 0.0]
# stages whose derivative enters only later stages' inputs: the cheaper `partial` serves
# (the last stage is the next step's first, FSAL, and is always evaluated in full)
_INPUT_ONLY = DOPRI5.input_only - {DOPRI5.stages - 1}


def _combine(pairs: list[tuple[int, float]], stages: list[Tensor], scale: float) -> Tensor:
    """scale · Σᵢ cᵢ kᵢ over the non-zero coefficients."""
    (i0, c0), *rest = pairs
    total = (scale * c0) * stages[i0]
    for i, c in rest:
        total = total + (scale * c) * stages[i]
    return total


class AdaptiveIntegrator(Integrator):
    """Marker base class: the integrator chooses its own steps to meet ``rtol`` and ``atol``.

    The grid only fixes where the integration starts and stops (and the points it must hit
    exactly); ``Solution.steps`` reports the accepted steps. Accepting or rejecting a step
    reads its error norm on the host (one synchronisation per step, inherent to the method).
    """

    @property
    @abc.abstractmethod
    def rtol(self) -> float:
        """Relative tolerance on the local error."""

    @property
    @abc.abstractmethod
    def atol(self) -> float:
        """Absolute tolerance on the local error."""


@final
class Dopri5(AdaptiveIntegrator):
    r"""Dormand–Prince 5(4) with error control on every sample (see the module notes).

    Parameters
    ----------
    rtol, atol:
        Relative and absolute local-error tolerances, positive.
    max_steps:
        Raise :class:`RuntimeError` if more steps (accepted or rejected) are needed.
    first_step:
        Initial step size; chosen automatically when ``None``.

    Example
    -------
    >>> import torch
    >>> from interpolants import Dopri5
    >>> x0 = torch.ones(2, 1, dtype=torch.float64)
    >>> sol = Dopri5(rtol=1e-8, atol=1e-8).integrate(
    ...     lambda t, x: x, x0, torch.tensor([0.0, 1.0], dtype=torch.float64))
    >>> abs(float(sol.state[0, 0]) - 2.718281828459045) < 1e-7
    True
    """

    def __init__(
        self,
        rtol: float = 1e-5,
        atol: float = 1e-5,
        *,
        max_steps: int = 10_000,
        first_step: float | None = None,
    ) -> None:
        for name, value in (("rtol", rtol), ("atol", atol)):
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be a positive finite number, got {value}")
        if max_steps < 1:
            raise ValueError(f"max_steps must be positive, got {max_steps}")
        if first_step is not None and not first_step > 0:
            raise ValueError(f"first_step must be positive, got {first_step}")
        self._rtol = float(rtol)
        self._atol = float(atol)
        self.max_steps = int(max_steps)
        self.first_step = first_step

    @property
    def order(self) -> int:
        return 5

    @property
    def rtol(self) -> float:
        return self._rtol

    @property
    def atol(self) -> float:
        return self._atol

    def __repr__(self) -> str:
        return f"Dopri5(rtol={self._rtol}, atol={self._atol})"

    def _norm(self, e: Tensor, x: Tensor, y: Tensor) -> float:
        scale = self._atol + self._rtol * torch.maximum(x.abs(), y.abs())
        ratio = (e / scale).reshape(e.shape[0], -1)
        value = float(ratio.pow(2).mean(1).sqrt().max())
        return value if math.isfinite(value) else math.inf

    def _initial_step(
        self,
        f: Callable[[Tensor, Tensor], Tensor],
        t: float,
        x: Tensor,
        k1: Tensor,
        span: float,
        sign: float,
    ) -> float:
        if self.first_step is not None:
            return min(self.first_step, span)
        zero = torch.zeros_like(x)
        d0 = self._norm(x, zero, x)
        d1 = self._norm(k1, zero, x)
        if not math.isfinite(d1):
            raise FloatingPointError(f"the field returned NaN or Inf at t = {t:.6g}")
        h0 = 1e-6 if d0 < 1e-5 or d1 < 1e-5 else 0.01 * d0 / d1
        h0 = min(h0, span)
        k2 = f(x.new_full((), t + sign * h0), x + (sign * h0) * k1)
        d2 = self._norm(k2 - k1, zero, x) / h0
        big = max(d1, d2)
        h1 = max(1e-6, h0 * 1e-3) if big <= 1e-15 else (0.01 / big) ** (1 / 5)
        return min(100 * h0, h1, span)

    def solve(self, problem: Problem) -> tuple[Tensor, list[Tensor], int]:
        """Adaptive Dormand–Prince steps from grid point to grid point (see the module notes).

        One host read per attempted step: the error norm that accepts or rejects it.
        """
        field = problem.velocity
        x = problem.x
        points = problem.times
        sign = problem.sign
        keep = set(problem.saved)
        trajectory = [x] if 0 in keep else []
        t = points[0]
        k1 = field(x.new_full((), t), x)
        h = self._initial_step(field, t, x, k1, abs(points[-1] - t), sign)
        attempts = accepted = failed = 0
        nodes = DOPRI5.c
        for index in range(1, len(points)):
            stop = points[index]
            while (stop - t) * sign > 0:
                if attempts >= self.max_steps:
                    raise RuntimeError(
                        f"Dopri5 exceeded max_steps={self.max_steps} at t = {t:.6g}; "
                        "loosen rtol/atol or raise max_steps"
                    )
                attempts += 1
                remaining = abs(stop - t)
                last = h >= remaining * (1 - 1e-10)
                step = remaining if last else h
                dt = sign * step
                ks = [k1]
                xi = x
                for i in range(1, 7):
                    xi = x + _combine(_ROWS[i], ks, dt)
                    ti = stop if (last and nodes[i] == 1.0) else t + nodes[i] * dt
                    stage = problem.partial if i in _INPUT_ONLY else field
                    ks.append(stage(x.new_full((), ti), xi))
                # the last stage state is the fifth-order solution (FSAL)
                err = self._norm(_combine(_ERROR, ks, dt), x, xi)
                failed = failed + 1 if err == math.inf else 0
                if failed > 20:  # 20 shrinking retries all non-finite: the field is broken
                    raise FloatingPointError(
                        f"the field returned NaN or Inf near t = {t:.6g} for every step tried"
                    )
                factor = 10.0 if err == 0 else min(10.0, max(0.2, 0.9 * err ** (-1 / 5)))
                if err <= 1.0:
                    t = stop if last else t + dt
                    x, k1 = xi, ks[6]
                    accepted += 1
                    # a step shortened to hit a grid point says nothing about the next one
                    h = max(h, step * factor) if last else step * factor
                else:
                    h = step * factor
                if h < 1e-14 * max(1.0, abs(t)):
                    raise RuntimeError(f"Dopri5 step size underflow at t = {t:.6g}")
            if index in keep:
                trajectory.append(x)
        return x, trajectory, accepted
