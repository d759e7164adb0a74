"""Samples from the exact fields pass calibrated two-sample tests (Gaussian-mixture test bed).

Every check compares n = 400 integrated samples with 400 independent exact samples by the
energy-distance permutation test (metrics.energy_test, 999 permutations, fixed seeds). Under
the null its p-value is uniform, so with fixed seeds a threshold of 1e-3 means a correct
sampler fails with probability 10⁻³ per check *before* the seeds were fixed; with them fixed
the outcome is deterministic. The negative controls show the test has the power to reject a
slightly wrong answer at that threshold.
"""

import pytest
import torch
from torch import Tensor

from bank import one_per_family, problem
from interpolants import (
    SDE,
    BrownianGamma,
    Euler,
    Interpolant,
    LinearInterpolant,
    time_grid,
)
from interpolants.analytic import ExactInterpolantFields
from interpolants.integrate import (
    RK4,
    ConstantDiffusion,
    GammaProportionalDiffusion,
    Heun,
    TorchSDEIntegrator,
)
from interpolants.interpolant import MirrorInterpolant
from interpolants.metrics import energy_test

N = 400
DT = torch.float64
THRESHOLD = 1e-3


def p_value(x: Tensor, y: Tensor) -> float:
    return energy_test(x, y, permutations=999, generator=torch.Generator().manual_seed(7))


def setup(interpolant: Interpolant) -> tuple[ExactInterpolantFields, Tensor, Tensor]:
    """Exact fields, base samples (target samples for the mirror) and target samples."""
    base, target = problem(interpolant, DT)
    exact = ExactInterpolantFields(interpolant, base, target)
    x0 = (target if isinstance(interpolant, MirrorInterpolant) else base).sample(
        N, torch.Generator().manual_seed(1)
    )
    x1 = target.sample(N, torch.Generator().manual_seed(2))
    return exact, x0, x1


FAMILIES = one_per_family()


@pytest.mark.parametrize("name", FAMILIES)
def test_ode_samples_match_target(name: str) -> None:
    exact, x0, x1 = setup(FAMILIES[name])
    # RK4 with 12 steps: the discretisation error (~1e-4, see the order tests) is far below
    # what 500 samples can resolve; an even step count puts t = ½ (encoder–decoder kink) on
    # the grid
    out = RK4().integrate(exact.velocity, x0, time_grid(12, dtype=DT)).state
    assert p_value(out, x1) > THRESHOLD


def test_negative_controls_are_rejected() -> None:
    exact, x0, x1 = setup(LinearInterpolant(BrownianGamma()))
    # the base itself is not a sample of the target
    assert p_value(x0, x1) <= THRESHOLD
    # noise √(2ε) dW without the score correction ε s: the marginals are too wide. Rejected
    # with the smallest attainable p-value (1/1000) for every seed tried.
    wrong = (
        Heun()
        .integrate(
            SDE(exact.velocity, lambda t, x: torch.zeros_like(x), 1.0),
            x0,
            time_grid(30, dtype=DT),
            generator=torch.Generator().manual_seed(3),
        )
        .state
    )
    assert p_value(wrong, x1) <= THRESHOLD


@pytest.mark.parametrize("epsilon", [0.1, 1.0, 5.0])
def test_sde_samples_match_target(epsilon: float) -> None:
    exact, x0, x1 = setup(LinearInterpolant(BrownianGamma()))
    # Stochastic Heun with 60 steps: ε·h/C ≤ 5·(1/60)/0.1 ≈ 0.8 at the narrowest target
    # component, inside Heun's stability region (< 2) and second order in the drift, so the
    # bias is far below what 400 samples resolve
    out = (
        Heun()
        .integrate(
            SDE(exact.velocity, exact.score, ConstantDiffusion(epsilon)),
            x0,
            time_grid(60, dtype=DT),
            generator=torch.Generator().manual_seed(3),
        )
        .state
    )
    assert p_value(out, x1) > THRESHOLD


def test_euler_maruyama_samples_match_target() -> None:
    exact, x0, x1 = setup(LinearInterpolant(BrownianGamma()))
    # first order: 100 steps, ε = 1 (ε·h/C ≤ 0.1), bias O(h) below the test's resolution
    out = (
        Euler()
        .integrate(
            SDE(exact.velocity, exact.score, 1.0),
            x0,
            time_grid(100, dtype=DT),
            generator=torch.Generator().manual_seed(3),
        )
        .state
    )
    assert p_value(out, x1) > THRESHOLD


def test_backward_ode_and_sde_map_target_to_base() -> None:
    interpolant = LinearInterpolant(BrownianGamma())
    base, target = problem(interpolant, DT)
    exact = ExactInterpolantFields(interpolant, base, target)
    x1 = target.sample(N, torch.Generator().manual_seed(4))
    x0 = base.sample(N, torch.Generator().manual_seed(5))
    ode = RK4().integrate(exact.velocity, x1, time_grid(20, 1.0, 0.0, dtype=DT)).state
    assert p_value(ode, x0) > THRESHOLD
    back = time_grid(60, 1.0, 0.0, dtype=DT)
    sde = (
        Heun()
        .integrate(
            SDE(exact.velocity, exact.score, 1.0),
            x1,
            back,
            generator=torch.Generator().manual_seed(6),
        )
        .state
    )
    assert p_value(sde, x0) > THRESHOLD
    # negative control: backwards with the forward drift b + εs (score sign flipped) is wrong
    wrong = (
        Heun()
        .integrate(
            SDE(exact.velocity, lambda t, x: -exact.score(t, x), 1.0),
            x1,
            time_grid(30, 1.0, 0.0, dtype=DT),
            generator=torch.Generator().manual_seed(6),
        )
        .state
    )
    assert p_value(wrong, x0) <= THRESHOLD


def test_torchsde_agrees_with_native() -> None:
    exact, x0, _ = setup(LinearInterpolant(BrownianGamma()))
    grid = time_grid(60, dtype=DT)
    native = (
        Heun()
        .integrate(
            SDE(exact.velocity, exact.score, 1.0),
            x0,
            grid,
            generator=torch.Generator().manual_seed(8),
        )
        .state
    )
    backend = (
        TorchSDEIntegrator("heun")
        .integrate(
            SDE(exact.velocity, exact.score, 1.0),
            x0,
            grid,
            generator=torch.Generator().manual_seed(9),
        )
        .state
    )
    # the two use independent noise; both are second-order schemes of the same SDE
    assert p_value(native, backend) > THRESHOLD


def _singular_score(exact: ExactInterpolantFields, interpolant: Interpolant):  # type: ignore[no-untyped-def]
    """s = −η_z/γ as a learned score is computed: NaN at γ = 0 (t = 0 and t = 1)."""

    def score(t: Tensor, x: Tensor) -> Tensor:
        return -exact.denoiser(t, x) / interpolant.gamma(t)[:, None]

    return score


def test_final_ode_step_avoids_singular_score() -> None:
    interpolant = LinearInterpolant(BrownianGamma())
    exact, _, x1 = setup(interpolant)
    score = _singular_score(exact, interpolant)
    start = 0.02  # start inside (0, 1): s is singular at t = 0 too
    x = exact.sample(start, N, torch.Generator().manual_seed(10))
    grid = torch.linspace(start, 1.0, 41, dtype=DT)
    gen = torch.Generator().manual_seed(11)
    # the Heun corrector would evaluate s at t = 1 on the last interval: NaN without the
    # final deterministic step (8 samples show it; the integrator reports it), finite and
    # correct with it
    with pytest.raises(FloatingPointError, match="NaN or Inf"):
        Heun().integrate(
            SDE(exact.velocity, score, 1.0, final_ode_step=False), x[:8], grid, generator=gen
        )
    out = Heun().integrate(SDE(exact.velocity, score, 1.0), x, grid, generator=gen).state
    assert bool(torch.isfinite(out).all())
    assert p_value(out, x1) > THRESHOLD


def test_gamma_proportional_diffusion_handles_both_ends() -> None:
    """ε = γ vanishes where s = −η_z/γ is singular, so the whole [0, 1] can be sampled."""
    interpolant = LinearInterpolant(BrownianGamma())
    exact, x0, x1 = setup(interpolant)
    out = (
        Heun()
        .integrate(
            SDE(
                exact.velocity,
                _singular_score(exact, interpolant),
                GammaProportionalDiffusion(interpolant, 2.0),
                final_ode_step=False,
            ),
            x0,
            time_grid(40, dtype=DT),
            generator=torch.Generator().manual_seed(12),
        )
        .state
    )
    assert bool(torch.isfinite(out).all())
    assert p_value(out, x1) > THRESHOLD
