"""The problems of :mod:`adaptive`: float64 ODEs from t = 0 to 1 with known solutions.

The exact probability-flow fields of ``ExactInterpolantFields`` between Gaussian mixtures
(reference: RK4 with 2000 and 1000 steps, Richardson-extrapolated), ẋ = A x and ẋ = a(t) A x
(reference: the matrix exponential), and the problems of :data:`VALIDATION`, not used to tune
the controller: other mixture pairs, interpolants and batch sizes, Lotka–Volterra and a damped
pendulum (reference: SciPy's DOP853 at rtol = atol = 1e-13).
"""

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from interpolants import Dopri5, GaussianMixture, Interpolant, LinearInterpolant
from interpolants.analytic import ExactInterpolantFields
from interpolants.integrate import RK4
from interpolants.interpolant import QuadraticGamma, SineSquaredGamma, TrigonometricInterpolant

DT = torch.float64
GRID = torch.tensor([0.0, 1.0], dtype=DT)
Field = Callable[[Tensor, Tensor], Tensor]


def problem(
    field: Field,
    x0: Tensor,
    reference: Tensor,
    how: str,
    description: str,
    dense_ok: bool = False,
) -> dict[str, Any]:
    """A problem's record, with the reference checked against our Dopri5 at 1e-12
    (``dense_ok``: the field exists past t = 1, so torchdiffeq may step past it)."""
    check = Dopri5(rtol=1e-12, atol=1e-12).integrate(field, x0, GRID).state
    return {
        "field": field,
        "x0": x0,
        "reference": reference,
        "reference_check": float((check - reference).abs().max()),
        "reference_how": how,
        "description": description,
        "dense_ok": dense_ok,
    }


def two_mixtures(dim: int) -> tuple[GaussianMixture, GaussianMixture]:
    """``tests/bank.py: two_mixtures``: a 2-component base and a 3-component target, fixed."""
    gen = torch.Generator().manual_seed(1234)
    a = torch.randn(2, dim, dim, generator=gen, dtype=DT)
    c0 = 0.3 * a @ a.mT + 0.2 * torch.eye(dim, dtype=DT)
    m0 = torch.randn(2, dim, generator=gen, dtype=DT)
    base = GaussianMixture(torch.tensor([0.4, 0.6], dtype=DT), m0, c0)
    m1 = 2.5 * torch.randn(3, dim, generator=gen, dtype=DT)
    b = torch.randn(3, dim, dim, generator=gen, dtype=DT)
    c1 = 0.1 * b @ b.mT + 0.1 * torch.eye(dim, dtype=DT)
    target = GaussianMixture(torch.tensor([0.2, 0.5, 0.3], dtype=DT), m1, c1)
    return base, target


def mixture_problem(
    base: GaussianMixture,
    target: GaussianMixture,
    interpolant: Interpolant,
    x0: Tensor,
    n: int,
    description: str,
) -> dict[str, Any]:
    """The exact velocity from ``x0``; reference RK4 on 2n and n steps, Richardson."""
    exact = ExactInterpolantFields(interpolant, base, target)

    def field(t: Tensor, x: Tensor) -> Tensor:
        return exact.velocity(t, x)

    coarse = RK4().integrate(field, x0, torch.linspace(0, 1, n + 1, dtype=DT)).state
    fine = RK4().integrate(field, x0, torch.linspace(0, 1, 2 * n + 1, dtype=DT)).state
    reference = (16 * fine - coarse) / 15
    return problem(field, x0, reference, f"RK4 {2 * n} and {n} steps, Richardson", description)


def mixture(gamma: bool, dim: int, quick: bool) -> dict[str, Any]:
    base, target = two_mixtures(dim)
    interpolant = LinearInterpolant(QuadraticGamma()) if gamma else LinearInterpolant()
    x0 = base.sample(64, torch.Generator().manual_seed(0 if dim == 2 else 1))
    description = (
        f"two_mixtures(dim={dim}), linear interpolant, "
        + ("γ = t(1 − t)" if gamma else "γ ≡ 0")
        + ", 64 samples"
    )
    return mixture_problem(base, target, interpolant, x0, 500 if quick else 1000, description)


def linear(time_dependent: bool) -> dict[str, Any]:
    gen = torch.Generator().manual_seed(5 if time_dependent else 3)
    d = 6
    m = torch.randn(d, d, generator=gen, dtype=DT)
    if time_dependent:
        a = (
            (m - m.T)
            - 0.3 * torch.eye(d, dtype=DT)
            + 0.2 * torch.randn(d, d, generator=gen, dtype=DT)
        )
    else:
        a = (
            2 * (m - m.T)
            - 0.5 * torch.eye(d, dtype=DT)
            + 0.3 * torch.randn(d, d, generator=gen, dtype=DT)
        )
    x0 = torch.randn(32, d, generator=gen, dtype=DT)

    def field(t: Tensor, x: Tensor) -> Tensor:
        if not time_dependent:
            return x @ a.T
        s = t.reshape(-1)[:1]  # one time per call on every side
        return (0.2 + 6 * s * s) * (x @ a.T)

    reference = x0 @ torch.linalg.matrix_exp((2.2 if time_dependent else 1.0) * a).T
    description = ("ẋ = (0.2 + 6t²) A x" if time_dependent else "ẋ = A x") + (
        ", d = 6, A = skew + dissipative + random, 32 samples"
    )
    return problem(field, x0, reference, "matrix exponential", description, dense_ok=True)


def random_mixtures(
    dim: int, seed: int, components: tuple[int, int] = (2, 3), spread: float = 2.5
) -> tuple[GaussianMixture, GaussianMixture]:
    """A random base and target mixture (random weights, means, covariances) of ``seed``."""
    gen = torch.Generator().manual_seed(seed)
    k0, k1 = components
    a = torch.randn(k0, dim, dim, generator=gen, dtype=DT)
    c0 = 0.6 * a @ a.mT / dim + 0.2 * torch.eye(dim, dtype=DT)
    m0 = torch.randn(k0, dim, generator=gen, dtype=DT)
    w0 = torch.rand(k0, generator=gen, dtype=DT) + 0.3
    m1 = spread * torch.randn(k1, dim, generator=gen, dtype=DT)
    b = torch.randn(k1, dim, dim, generator=gen, dtype=DT)
    c1 = 0.2 * b @ b.mT / dim + 0.05 * torch.eye(dim, dtype=DT)
    w1 = torch.rand(k1, generator=gen, dtype=DT) + 0.3
    return GaussianMixture(w0 / w0.sum(), m0, c0), GaussianMixture(w1 / w1.sum(), m1, c1)


def random_mixture(
    dim: int,
    seed: int,
    interpolant: Interpolant,
    samples: int,
    label: str,
    components: tuple[int, int] = (2, 3),
    spread: float = 2.5,
) -> dict[str, Any]:
    base, target = random_mixtures(dim, seed, components, spread)
    x0 = base.sample(samples, torch.Generator().manual_seed(seed))
    description = (
        f"random {components[0]}- to {components[1]}-component mixtures (seed {seed}, d = {dim}, "
        f"means × {spread}), {label}, {samples} sample{'s' if samples > 1 else ''}"
    )
    return mixture_problem(base, target, interpolant, x0, 1000, description)


def scipy_problem(
    field: Field,
    rhs: Callable[[float, np.ndarray], list[float]],
    x0: Tensor,
    description: str,
) -> dict[str, Any]:
    """A small nonlinear ODE; reference SciPy's DOP853 per sample at rtol = atol = 1e-13."""
    from scipy.integrate import solve_ivp

    ends = [
        solve_ivp(rhs, (0.0, 1.0), x.numpy(), method="DOP853", rtol=1e-13, atol=1e-13).y[:, -1]
        for x in x0
    ]
    reference = torch.tensor(np.array(ends), dtype=DT)
    return problem(field, x0, reference, "SciPy DOP853 at 1e-13", description)


def lotka_volterra() -> dict[str, Any]:
    gen = torch.Generator().manual_seed(6)
    x0 = 0.5 + 1.5 * torch.rand(16, 2, generator=gen, dtype=DT)

    def field(t: Tensor, x: Tensor) -> Tensor:
        u, v = x[:, 0], x[:, 1]
        return torch.stack([1.5 * u - u * v, -3 * v + u * v], 1)

    def rhs(t: float, y: np.ndarray) -> list[float]:
        u, v = y
        return [1.5 * u - u * v, -3 * v + u * v]

    return scipy_problem(
        field, rhs, x0, "Lotka–Volterra u' = 1.5u − uv, v' = −3v + uv, 16 samples in [0.5, 2]²"
    )


def pendulum() -> dict[str, Any]:
    gen = torch.Generator().manual_seed(7)
    x0 = torch.randn(32, 2, generator=gen, dtype=DT) * torch.tensor([1.2, 1.0], dtype=DT)

    def field(t: Tensor, x: Tensor) -> Tensor:
        return torch.stack([x[:, 1], -9 * torch.sin(x[:, 0]) - 0.3 * x[:, 1]], 1)

    def rhs(t: float, y: np.ndarray) -> list[float]:
        return [y[1], -9 * math.sin(y[0]) - 0.3 * y[1]]

    return scipy_problem(field, rhs, x0, "damped pendulum θ'' = −9 sin θ − 0.3 θ', 32 samples")


VALIDATION: dict[str, Callable[[], dict[str, Any]]] = {
    "mixture 4-d": lambda: random_mixture(
        4, 11, LinearInterpolant(QuadraticGamma()), 64, "linear, γ = t(1 − t)"
    ),
    "mixture 16-d": lambda: random_mixture(16, 12, LinearInterpolant(), 32, "linear, γ ≡ 0"),
    "mixture 6-d trig": lambda: random_mixture(
        6, 13, TrigonometricInterpolant(), 64, "trigonometric", components=(3, 4)
    ),
    "mixture 8-d, 1 sample": lambda: random_mixture(
        8, 14, LinearInterpolant(SineSquaredGamma()), 1, "linear, γ = sin²(πt)"
    ),
    "mixture 3-d, 256 samples": lambda: random_mixture(
        3, 15, LinearInterpolant(QuadraticGamma()), 256, "linear, γ = t(1 − t)", (2, 5), 4.0
    ),
    "Lotka–Volterra": lotka_volterra,
    "pendulum": pendulum,
}
"""Problems not used to tune the controller: Dopri5 pairs only, no ablation."""
