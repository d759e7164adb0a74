"""The solvers of :mod:`adaptive`: ours, the controller variants of the ablation, and the peers.

Every solver is a :data:`Run`: it integrates a field from x₀ over :data:`GRID` at
rtol = atol = tol and returns the final state and the evaluations counted by :class:`Counted`.
"""

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from adaptive_problems import DT, GRID, Field
from interpolants import Dopri5
from interpolants.integrate import EmbeddedRungeKutta
from interpolants.integrate._tableau import DOPRI5

Run = Callable[[Field, Tensor, float], tuple[Tensor, int]]


class Counted:
    """``field`` with a call counter."""

    def __init__(self, field: Field) -> None:
        self.field, self.count = field, 0

    def __call__(self, t: Tensor, x: Tensor) -> Tensor:
        self.count += 1
        return self.field(t, x)


class BatchNormDopri5(EmbeddedRungeKutta):
    """Our Dopri5 loop with the peers' norm: one RMS over the whole batch tensor."""

    tableau, order, error_order = DOPRI5, 5, 4

    def error_norm(self, error: Tensor, x: Tensor, y: Tensor) -> Tensor:
        scale = self.atol + self.rtol * torch.maximum(x.abs(), y.abs())
        return (error / scale).square().mean().sqrt()


def hairer_first_step(field: Field, x: Tensor, tol: float, order: int) -> float:
    """Hairer, Nørsett & Wanner §II.4 (p. 169) in our per-sample norm: one extra evaluation."""
    integrator = Dopri5(rtol=tol, atol=tol)
    t0 = torch.zeros((), dtype=DT)
    f0 = field(t0.expand(x.shape[0]), x)

    def norm(v: Tensor) -> float:
        return float(integrator.error_norm(v, x, x))

    d0, d1 = norm(x), norm(f0)
    h0 = 1e-6 if d0 < 1e-5 or d1 < 1e-5 else 0.01 * d0 / d1
    f1 = field((t0 + h0).expand(x.shape[0]), x + h0 * f0)
    d2 = norm(f1 - f0) / h0
    big = max(d1, d2)
    h1 = max(1e-6, h0 * 1e-3) if big <= 1e-15 else (0.01 / big) ** (1 / (order + 1))
    return min(100 * h0, h1, 1.0)


def ours(cls: type[EmbeddedRungeKutta]) -> Run:
    def run(field: Field, x0: Tensor, tol: float) -> tuple[Tensor, int]:
        counted = Counted(field)
        return cls(rtol=tol, atol=tol).integrate(counted, x0, GRID).state, counted.count

    return run


def ours_hairer(field: Field, x0: Tensor, tol: float) -> tuple[Tensor, int]:
    counted = Counted(field)
    h = hairer_first_step(counted, x0, tol, 4)  # its two evaluations: k1 (again) and the probe
    state = Dopri5(rtol=tol, atol=tol, first_step=h).integrate(counted, x0, GRID).state
    return state, counted.count - 1  # k1 is evaluated twice here; the algorithm needs it once


class Variant(EmbeddedRungeKutta):
    """Our Dopri5 loop with another controller, for the ablation (private hooks overridden)."""

    tableau, order, error_order = DOPRI5, 5, 4
    safety = 0.8
    beta: float | None = 0.04  # PI integral gain (α = 1/5 − 0.75 β); None: elementary rule
    stretch: float | None = 0.2  # θ of the equal steps ⌈R/h − θ⌉; None: h and a remainder

    def _factor(self, err: float, previous: float | None) -> float:
        if err == 0.0:
            return 10.0
        if self.beta is None or previous is None or err > 1.0:  # the elementary rule
            return self.safety * err ** (-1 / 5)
        alpha = 1 / 5 - 0.75 * self.beta
        return self.safety * err ** (-alpha) * max(previous, 1e-4) ** self.beta

    def _step(self, remaining: float, h: float, stretch: float = 0.2) -> float:
        # the loop passes stretch = 0 for a retry (never longer than h)
        if self.stretch is None:
            return min(h, remaining)
        theta = min(stretch, self.stretch)
        return remaining / max(1, math.ceil(remaining / h - theta - 1e-10))


def variant(hairer: bool = False, **attrs: Any) -> Run:
    cls = type("V", (Variant,), attrs)

    def run(field: Field, x0: Tensor, tol: float) -> tuple[Tensor, int]:
        counted = Counted(field)
        first = hairer_first_step(counted, x0, tol, 4) if hairer else None
        solver = cls(rtol=tol, atol=tol, first_step=first)
        state = solver.integrate(counted, x0, GRID).state
        return state, counted.count - (1 if hairer else 0)

    return run


ABLATION: dict[str, Run] = {
    "ours: PI β = 0.04, s = 0.8, equal steps θ = 0.2, free h0": variant(),
    "θ = 0 (⌈R/h⌉ equal steps)": variant(stretch=0.0),
    "h and a remainder (no equal steps)": variant(stretch=None),
    "PI, s = 0.7": variant(safety=0.7),
    "PI, s = 0.9 (DOPRI5's)": variant(safety=0.9),
    "I, s = 0.7": variant(beta=None, safety=0.7),
    "≈ previous Dopri5: I, s = 0.7, θ = 0": variant(beta=None, safety=0.7, stretch=0.0),
    "≈ torchebm's loop: I, s = 0.9, h and a remainder, Hairer h0": variant(
        hairer=True, beta=None, safety=0.9, stretch=None
    ),
}


SPREAD_H0 = (0.02, 0.05, 0.2)
"""torchebm's Dopri5 at initial steps other than the peers' 0.01 and 0.1, scored against the
best peer like ours: how far the matched-error target is from what the peer itself meets."""


def torchebm(name: str, h0: float) -> Run:
    def run(field: Field, x0: Tensor, tol: float) -> tuple[Tensor, int]:
        from torchebm.integrators import Bosh3Integrator, Dopri5Integrator

        cls = Dopri5Integrator if name == "dopri5" else Bosh3Integrator
        counted = Counted(field)
        solver = cls(dtype=DT, atol=tol, rtol=tol)  # float64 tableau (float32 by default)
        out = solver.integrate(
            {"x": x0}, step_size=h0, n_steps=1, drift=lambda x, t: counted(t, x), t=GRID
        )
        return out["x"], counted.count

    return run


def torchdiffeq(method: str, stop: bool) -> Run:
    def run(field: Field, x0: Tensor, tol: float) -> tuple[Tensor, int]:
        from torchdiffeq import odeint

        counted = Counted(field)
        options = {"step_t": GRID[1:]} if stop else None
        out = odeint(counted, x0, GRID, rtol=tol, atol=tol, method=method, options=options)
        return out[-1], counted.count

    return run
