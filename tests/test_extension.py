"""Extending every abstraction from its documented contract alone, composed with the rest.

Each class below implements only the public methods the API pages name for a subclass:
an interpolant family (α, β and their derivatives) with a user γ schedule, a coupling
(``pair``), an objective (``sample_losses``), a fixed-step integrator (a tableau), a diffusion
ε(t) and a divergence estimator (``vectors``). They are checked on the exact Gaussian-mixture
test bed and composed with the library's own pieces: exact fields, couplings, the trainer,
ODE and SDE sampling, and the likelihood.
"""

import math

import numpy as np
import pytest
import torch
from torch import Tensor

from interpolants import (
    MLP,
    ODE,
    SDE,
    Coupling,
    GaussianMixture,
    Integrator,
    Interpolant,
    Objective,
    OTCoupling,
    PairedBatches,
    Trainer,
    log_likelihood,
    time_grid,
)
from interpolants.analytic import ExactInterpolantFields
from interpolants.cli import sde_samples
from interpolants.coupling import LabelConditionalCoupling, PairIndices
from interpolants.data import TensorData
from interpolants.integrate import (
    Diffusion,
    DivergenceEstimator,
    ExactDivergence,
    FixedStepIntegrator,
    GammaProportionalDiffusion,
    Problem,
    Tableau,
)
from interpolants.interpolant import GammaSchedule
from interpolants.metrics import energy_test
from interpolants.objective import Predict, check_prediction, regression_loss

DT = torch.float64


# --- the user's classes, written from the contracts -----------------------------------------
class SkewedGamma(GammaSchedule):
    """γ(t) = a·t(1 − t)², smooth, zero at both ends."""

    def __init__(self, a: float = 1.0) -> None:
        self.a = a

    def gamma(self, t: Tensor) -> Tensor:
        return self.a * t * (1 - t) ** 2

    def gamma_dot(self, t: Tensor) -> Tensor:
        return self.a * (1 - t) * (1 - 3 * t)

    @property
    def sup(self) -> float:
        return 4 * self.a / 27

    def __repr__(self) -> str:
        return f"SkewedGamma({self.a})"


class QuadraticPath(Interpolant):
    """α = (1 − t)², β = 1 − (1 − t)²: a path that leaves x0 fast and arrives slowly."""

    def alpha(self, t: Tensor) -> Tensor:
        return (1 - t) ** 2

    def beta(self, t: Tensor) -> Tensor:
        return 1 - (1 - t) ** 2

    def alpha_dot(self, t: Tensor) -> Tensor:
        return -2 * (1 - t)

    def beta_dot(self, t: Tensor) -> Tensor:
        return 2 * (1 - t)


class MonotoneCoupling(Coupling):
    """Pairs the k-th smallest x0 with the k-th smallest x1 (first coordinate): in one
    dimension this is the exact optimal transport for any convex cost."""

    def pair(
        self,
        x0: Tensor,
        x1: Tensor,
        y0: tuple[Tensor, ...] | None,
        y1: tuple[Tensor, ...] | None,
        *,
        generator: torch.Generator | None,
        want_plan: bool,
    ) -> PairIndices:
        rank1 = torch.argsort(torch.argsort(x1.reshape(x1.shape[0], -1)[:, 0]))
        order0 = torch.argsort(x0.reshape(x0.shape[0], -1)[:, 0])
        return PairIndices(index0=order0[rank1])  # x1 keeps its order


class MeanVelocityObjective(Objective):
    """Learns the mean velocity v = E[α̇x0 + β̇x1 | x_t] (the first head of the split form)."""

    def sample_losses(self, predict: Predict, sample) -> Tensor:  # type: ignore[no-untyped-def]
        prediction = check_prediction(predict(sample.t, sample.xt), sample.xt, "model")
        return regression_loss(prediction, sample.mean_velocity)


class Ralston(FixedStepIntegrator):
    """Ralston's second-order method (minimum error bound among two-stage methods)."""

    tableau = Tableau(c=(0.0, 2 / 3), a=((), (2 / 3,)), b=(0.25, 0.75))
    order = 2


class AdamsBashforth2(Integrator):
    """The two-step Adams–Bashforth method on any grid (variable steps), started by one Heun
    step: an integrator written against ``Integrator.solve`` directly, not a tableau."""

    order = 2

    def solve(self, problem: Problem) -> tuple[Tensor, list[Tensor], int]:
        times, grid, x = problem.times, problem.grid, problem.x
        keep = set(problem.saved)
        trajectory = [x] if 0 in keep else []
        f_prev = None
        for k in range(len(times) - 1):
            h = times[k + 1] - times[k]
            f = problem.velocity(grid[k], x)
            if f_prev is None:  # Heun start
                x = x + 0.5 * h * (f + problem.velocity(grid[k + 1], x + h * f))
            else:
                r = h / (2 * (times[k] - times[k - 1]))
                x = x + h * ((1 + r) * f - r * f_prev)
            f_prev = f
            if k + 1 in keep:
                trajectory.append(x)
        return x, trajectory, len(times) - 1


class TentDiffusion(Diffusion):
    """ε(t) = scale·min(t, 1 − t): zero at both ends, where a learned score is singular."""

    def __init__(self, scale: float) -> None:
        self.scale = scale

    def __call__(self, t: Tensor) -> Tensor:
        return self.scale * torch.minimum(t, 1 - t)


class GaussianProbes(DivergenceEstimator):
    """Hutchinson's estimator with K Gaussian probes, written from the contract."""

    def __init__(self, probes: int) -> None:
        self.probes = probes

    def vectors(self, x: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, float]:
        shape = (self.probes, *x.shape)
        v = torch.randn(shape, generator=generator, dtype=x.dtype, device=x.device)
        return v, 1.0 / self.probes

    @property
    def chunk_size(self) -> int | None:
        return None


# --- the test bed -----------------------------------------------------------------------
INTERPOLANT = QuadraticPath(SkewedGamma(1.5))
BASE = GaussianMixture.isotropic(
    torch.tensor([0.5, 0.5], dtype=DT), torch.tensor([[-2.0, 0.0], [2.0, 0.0]], dtype=DT), 0.5
)
TARGET = GaussianMixture(
    torch.tensor([0.3, 0.7], dtype=DT),
    torch.tensor([[0.0, 2.0], [1.0, -1.0]], dtype=DT),
    torch.stack([0.2 * torch.eye(2, dtype=DT), torch.tensor([[0.4, 0.1], [0.1, 0.3]], dtype=DT)]),
)
EXACT = ExactInterpolantFields(INTERPOLANT, BASE, TARGET)
N = 400


def p_value(x: Tensor, y: Tensor) -> float:
    return energy_test(x, y, permutations=999, generator=torch.Generator().manual_seed(7))


def test_the_user_interpolant_keeps_its_boundary_conditions_and_marginals() -> None:
    x0, x1 = BASE.sample(N, torch.Generator().manual_seed(0)), TARGET.sample(N)
    z = torch.randn(N, 2, dtype=DT)
    assert torch.equal(INTERPOLANT.interpolate(0.0, x0, x1, z), x0)
    assert torch.allclose(INTERPOLANT.interpolate(1.0, x0, x1, z), x1, atol=0, rtol=0)
    # x_t of independent draws has the exact marginal ρ_t (calibrated two-sample test)
    xt = INTERPOLANT.interpolate(0.4, x0, TARGET.sample(N, torch.Generator().manual_seed(1)), z)
    assert p_value(xt, EXACT.sample(0.4, N, torch.Generator().manual_seed(2))) > 1e-3
    # its conventions follow from the base class: σ = γ, the flip negates z
    c = INTERPOLANT.coefficients(torch.tensor([0.3], dtype=DT))
    assert torch.equal(c.noise_scale, c.gamma) and INTERPOLANT.has_noise
    assert torch.equal(INTERPOLANT.antithetic(x0, x1, z)[2], -z)


def test_the_user_integrator_converges_at_its_order_on_the_exact_flow() -> None:
    x0 = BASE.sample(16, torch.Generator().manual_seed(3))
    reference = Ralston().integrate(ODE(EXACT.velocity), x0, time_grid(512, dtype=DT)).state
    steps = [16, 32, 64]
    errors = [
        float(
            (Ralston().integrate(EXACT.velocity, x0, time_grid(n, dtype=DT)).state - reference)
            .abs()
            .max()
        )
        for n in steps
    ]
    order = np.polyfit(np.log(1.0 / np.array(steps)), np.log(np.array(errors)), 1)[0]
    assert abs(order - 2.0) < 0.3, errors  # the reference's own error is ≥ 64× smaller


def test_ode_and_sde_samples_of_the_user_pieces_match_the_target() -> None:
    x0 = BASE.sample(N, torch.Generator().manual_seed(4))
    x1 = TARGET.sample(N, torch.Generator().manual_seed(5))
    ode = Ralston().integrate(ODE(EXACT.velocity), x0, time_grid(40, dtype=DT)).state
    assert p_value(ode, x1) > 1e-3
    sde = SDE(EXACT.velocity, EXACT.score, TentDiffusion(2.0))
    out = Ralston().integrate(
        sde, x0, time_grid(80, dtype=DT), generator=torch.Generator().manual_seed(6)
    )
    assert out.nfe > 0 and p_value(out.state, x1) > 1e-3
    # negative control: the same noise without the score correction is rejected
    wrong = SDE(EXACT.velocity, lambda t, x: torch.zeros_like(x), TentDiffusion(2.0))
    bad = Ralston().integrate(
        wrong, x0, time_grid(80, dtype=DT), generator=torch.Generator().manual_seed(6)
    )
    assert p_value(bad.state, x1) <= 1e-3
    # backwards, from the target to the base
    back = Ralston().integrate(EXACT.velocity, x1, time_grid(40, 1.0, 0.0, dtype=DT)).state
    assert p_value(back, x0) > 1e-3


def test_the_likelihood_with_the_user_integrator_and_estimator_is_exact() -> None:
    x = TARGET.sample(64, torch.Generator().manual_seed(7))
    exact_lp = TARGET.log_prob(x)
    errors = []
    for steps in (32, 64):
        grid = time_grid(steps, 1.0, 0.0, dtype=DT)
        res = log_likelihood(EXACT.velocity, x, BASE.log_prob, integrator=Ralston(), grid=grid)
        errors.append(float((res.log_prob - exact_lp).abs().max()))
    # second order: halving the step divides the error by ~4 (≥ 3 allowed), and with 64 steps
    # it is a few 1e-3 nats
    assert errors[1] < errors[0] / 3 and errors[1] < 5e-3, errors
    est = log_likelihood(
        EXACT.velocity,
        x,
        BASE.log_prob,
        integrator=Ralston(),
        grid=grid,
        divergence=GaussianProbes(64),
        generator=torch.Generator().manual_seed(8),
    )
    # unbiased: over 64 points the mean error is within a few standard errors of zero
    err = est.log_prob - res.log_prob
    assert abs(float(err.mean())) < 4 * float(err.std()) / math.sqrt(64) + 1e-9
    assert float(err.std()) > 0  # the estimator is random, not the exact divergence
    exact = log_likelihood(
        EXACT.velocity,
        x,
        BASE.log_prob,
        integrator=Ralston(),
        grid=grid,
        divergence=ExactDivergence(structured=False),
    )
    assert torch.allclose(exact.log_prob, res.log_prob, atol=1e-10, rtol=0)


def test_the_user_coupling_is_exact_ot_in_one_dimension() -> None:
    gen = torch.Generator().manual_seed(9)
    x0, x1 = torch.randn(64, 1, generator=gen), 3 * torch.rand(64, 1, generator=gen)
    labels = torch.arange(64)
    mine = MonotoneCoupling()(x0, x1, y1=labels)
    ot = OTCoupling()(x0, x1)
    assert torch.equal(mine.index0, ot.index0)
    assert mine.x1 is x1 and mine.y1 is labels  # x1 keeps its order, not copied
    assert sorted(mine.index0.tolist()) == list(range(64))  # a permutation: both marginals


def test_the_user_objective_learns_its_field_with_the_user_coupling_and_the_trainer() -> None:
    objective = MeanVelocityObjective(INTERPOLANT, antithetic=True)
    # its minimiser is the exact mean velocity v: on common random numbers, perturbing v by δ
    # raises the mean loss by ½|δ|² = 0.01 while the sampling error of that gap is ~1e-3
    x0 = BASE.sample(20_000, torch.Generator().manual_seed(10))
    x1 = TARGET.sample(20_000, torch.Generator().manual_seed(11))

    def loss(shift: float) -> float:
        return float(
            objective.loss(
                lambda t, x: EXACT.mean_velocity(t, x) + shift,
                x0,
                x1,
                generator=torch.Generator().manual_seed(12),
            )
        )

    best = loss(0.0)
    assert loss(0.1) > best + 0.005 and loss(-0.1) > best + 0.005
    # composed with the user coupling and the library's trainer on a 1-D problem
    data = TensorData(torch.linspace(-1.0, 1.0, 512)[:, None])
    batches = PairedBatches(GaussianMixture.standard_normal(1), data, 64, MonotoneCoupling())
    trainer = Trainer(
        MLP(1, hidden=32, depth=2),
        MeanVelocityObjective(QuadraticPath(SkewedGamma())),
        batches,
        seed=0,
    )
    state = trainer.fit(30, progress=False)
    assert len(state.losses) == 30 and all(math.isfinite(v) for v in state.losses)


def test_a_user_integrator_written_against_solve_samples_and_computes_likelihoods() -> None:
    """An integrator implementing ``solve`` itself, composed with sampling and the likelihood."""
    x0 = BASE.sample(N, torch.Generator().manual_seed(13))
    x1 = TARGET.sample(N, torch.Generator().manual_seed(14))
    out = AdamsBashforth2().integrate(ODE(EXACT.velocity), x0, time_grid(40, dtype=DT))
    assert out.nfe == 41 and p_value(out.state, x1) > 1e-3
    # second order on the exact flow, against a fine reference
    ref = AdamsBashforth2().integrate(EXACT.velocity, x0[:16], time_grid(1024, dtype=DT)).state
    errors = [
        float(
            (
                AdamsBashforth2().integrate(EXACT.velocity, x0[:16], time_grid(n, dtype=DT)).state
                - ref
            )
            .abs()
            .max()
        )
        for n in (64, 128, 256)
    ]
    order = np.polyfit(np.log(1.0 / np.array([64, 128, 256])), np.log(np.array(errors)), 1)[0]
    assert abs(order - 2.0) < 0.35, errors
    # the likelihood accepts it; it agrees with the exact log-density to second order
    x = x1[:32]
    res = log_likelihood(
        EXACT.velocity,
        x,
        BASE.log_prob,
        integrator=AdamsBashforth2(),
        grid=time_grid(128, 1.0, 0.0, dtype=DT),
    )
    # AB2's error constant is ~5× Ralston's here: 0.03 nats at 64 steps, ~0.008 at 128
    assert float((res.log_prob - TARGET.log_prob(x)).abs().max()) < 1.5e-2
    # it does not step SDEs: a clear error
    with pytest.raises(TypeError, match="cannot step SDE"):
        AdamsBashforth2().integrate(SDE(EXACT.velocity, EXACT.score, 1.0), x0, time_grid(4))


def test_the_library_accepts_the_user_classes_where_their_abstraction_goes() -> None:
    """The user pieces plug into the library's own consumers."""
    # a diffusion proportional to the user interpolant's noise scale, and the SDE sampler
    # that normalises by it, with the user integrator of a tableau
    eps = GammaProportionalDiffusion(INTERPOLANT, 2.0)
    t = torch.tensor([0.0, 0.5, 1.0], dtype=DT)
    assert torch.allclose(eps(t), 2.0 * INTERPOLANT.gamma(t))
    x0 = BASE.sample(N, torch.Generator().manual_seed(15))
    out = sde_samples(
        INTERPOLANT,
        EXACT.velocity,
        EXACT.score,
        x0,
        1.0,
        80,
        torch.Generator().manual_seed(16),
        Ralston(),
    )
    assert p_value(out.state, TARGET.sample(N, torch.Generator().manual_seed(17))) > 1e-3
    # the user coupling inside the label-conditional one: pairs stay in their class and are
    # monotone (exact OT in 1-D) within it
    gen = torch.Generator().manual_seed(18)
    x0c, x1c = torch.randn(40, 1, generator=gen), torch.randn(40, 1, generator=gen)
    y = torch.arange(40) % 2
    p = LabelConditionalCoupling(inner=MonotoneCoupling())(x0c, x1c, y, y[torch.randperm(40)])
    assert bool((p.y0 == p.y1).all())
    for label in (0, 1):
        a, b = p.x0[p.y1 == label, 0], p.x1[p.y1 == label, 0]
        assert torch.equal(torch.argsort(a), torch.argsort(b))
