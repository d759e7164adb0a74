"""Objectives: exact minimisers on the Gaussian-mixture test bed, antithetic pairs, errors.

Minimiser check. Every per-sample loss is ℓ(m̂) = λ|m̂ − y|²/D with E[y | x_t] = m the
exact field, so along m̂ = m + δh the Monte-Carlo loss is exactly quadratic in δ, with
derivative at δ = 0 equal to the sample mean of g = (2λ/D)(m − y)·h, whose expectation is zero.
We assert |mean g| < 4.5 standard errors (a false alarm has probability ~7e-6 per check at a
fixed seed), and, as a power check, that at δ = 0.25 the same statistic exceeds 8 standard
errors: a field off by 0.25·h would be caught. With common random numbers the losses at
δ = ±0.25 then exceed the loss at δ = 0.
"""

from collections.abc import Callable

import pytest
import torch

from interpolants import (
    BrownianGamma,
    GaussianMixture,
    Interpolant,
    LinearInterpolant,
    Objective,
    SplitObjective,
    VelocityObjective,
)
from interpolants.analytic import ExactInterpolantFields
from interpolants.interpolant import OneSidedInterpolant, VPInterpolant
from interpolants.objective import (
    BetaTime,
    DenoiserObjective,
    ImportanceWeighted,
    InverseCDFTime,
    ScoreObjective,
    TargetObjective,
    UniformTime,
)

F64 = torch.float64
DELTA, POWER = 0.5, 8.0
OBJECTIVES = [VelocityObjective, DenoiserObjective, ScoreObjective, SplitObjective, TargetObjective]


def _target() -> GaussianMixture:
    return GaussianMixture(
        torch.tensor([0.3, 0.7], dtype=F64),
        torch.tensor([[2.0, 0.0], [-1.0, 1.5]], dtype=F64),
        torch.stack(
            [0.3 * torch.eye(2, dtype=F64), torch.tensor([[0.5, 0.1], [0.1, 0.2]], dtype=F64)]
        ),
    )


def _base(interpolant: Interpolant) -> GaussianMixture:
    if isinstance(interpolant, OneSidedInterpolant):
        return GaussianMixture.standard_normal(2, dtype=F64)
    return GaussianMixture.isotropic(
        torch.tensor([0.5, 0.5], dtype=F64),
        torch.tensor([[-2.0, 0.0], [0.0, -2.0]], dtype=F64),
        0.6,
    )


def exact_field(objective: type[Objective], exact: ExactInterpolantFields) -> Callable[..., object]:
    """The minimiser of ``objective``: b, η_z, s, (v, η_z) or η1 = E[x1 | x_t]."""
    interpolant = exact.interpolant

    def target(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        # x = αη0 + βη1 + γη_z and v = α̇η0 + β̇η1  ⇒  η1 = (αv − α̇(x − γη_z)) / (αβ̇ − α̇β)
        c = interpolant.coefficients(t)
        a, ad, g = c.alpha[:, None], c.alpha_dot[:, None], c.gamma[:, None]
        det = (c.alpha * c.beta_dot - c.alpha_dot * c.beta)[:, None]
        eta = exact.denoiser(t, x) if interpolant.is_stochastic else torch.zeros_like(x)
        return (a * exact.mean_velocity(t, x) - ad * (x - g * eta)) / det

    if objective is VelocityObjective:
        return exact.velocity
    if objective is DenoiserObjective:
        return exact.denoiser
    if objective is ScoreObjective:
        return exact.score
    if objective is SplitObjective:
        return lambda t, x: (exact.mean_velocity(t, x), exact.denoiser(t, x))
    return target


def perturbed(field: Callable[..., object], delta: torch.Tensor, h: Callable[..., torch.Tensor]):
    def model(t: torch.Tensor, x: torch.Tensor) -> object:
        out = field(t, x)
        shift = delta[:, None] * h(t, x)
        if isinstance(out, tuple):
            return (out[0] + shift, out[1] - shift)
        return out + shift  # type: ignore[operator]

    return model


DIRECTIONS = {
    "constant": lambda t, x: torch.ones_like(x),
    "sin": lambda t, x: torch.sin(x) * (1 + t[:, None]),
    "linear": lambda t, x: x * (1 - t[:, None]) - 0.5 * x.flip(-1),
}

CASES = [
    (obj, interpolant, antithetic)
    for interpolant in (LinearInterpolant(BrownianGamma()), VPInterpolant())
    for obj in OBJECTIVES
    for antithetic in (False, True)
] + [(obj, LinearInterpolant(), False) for obj in (VelocityObjective, TargetObjective)]


def _draw(exact: ExactInterpolantFields, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return exact.base.sample(n, g), exact.target.sample(n, g)


@pytest.mark.parametrize(
    ("objective_cls", "interpolant", "antithetic"),
    CASES,
    ids=[f"{o.__name__}-{i!r}-anti{a}" for o, i, a in CASES],
)
def test_exact_field_minimises_the_loss(
    objective_cls: type[Objective], interpolant: Interpolant, antithetic: bool
) -> None:
    exact = ExactInterpolantFields(interpolant, _base(interpolant), _target())
    objective = objective_cls(interpolant, antithetic=antithetic)  # type: ignore[call-arg]
    field = Replay(exact_field(objective_cls, exact))
    n = 2000
    x0, x1 = _draw(exact, n, seed=1)
    for name, h in DIRECTIONS.items():

        def stats(d0: float, h: Callable[..., torch.Tensor] = h) -> tuple[float, float]:
            field.rewind()
            delta = torch.full((n,), d0, dtype=F64, requires_grad=True)
            model = perturbed(field, delta, h)
            losses = objective.per_sample_loss(
                model, x0, x1, generator=torch.Generator().manual_seed(2)
            )
            (g,) = torch.autograd.grad(losses.sum(), delta)
            return float(losses.mean()), float(g.mean() / (g.std() / n**0.5))

        loss0, z0 = stats(0.0)
        assert abs(z0) < 4.5, (name, z0)
        loss_plus, z_plus = stats(DELTA)
        loss_minus, z_minus = stats(-DELTA)
        assert z_plus > POWER and z_minus < -POWER, (name, z_plus, z_minus)
        assert loss_plus > loss0 and loss_minus > loss0, name


class Replay:
    """Evaluate an exact field once per call site and replay it (the field does not depend on
    δ, and the common random numbers give the same (t, x_t) at every δ)."""

    def __init__(self, field: Callable[..., object]) -> None:
        self.field = field
        self.calls: list[tuple[torch.Tensor, object]] = []
        self.position = 0

    def rewind(self) -> None:
        self.position = 0

    def __call__(self, t: torch.Tensor, x: torch.Tensor) -> object:
        if self.position < len(self.calls):
            seen, out = self.calls[self.position]
            assert torch.equal(seen, x)
        else:
            out = self.field(t, x)
            self.calls.append((x.clone(), out))
        self.position += 1
        return out


def _loss_samples(
    objective: Objective, exact: ExactInterpolantFields, n: int, seed: int, t: float | None
) -> torch.Tensor:
    field = exact_field(type(objective), exact)
    model = perturbed(field, torch.full((n,), 0.3, dtype=F64), DIRECTIONS["sin"])
    x0, x1 = _draw(exact, n, seed)
    with torch.no_grad():
        return objective.per_sample_loss(
            model, x0, x1, t=t, generator=torch.Generator().manual_seed(seed + 1)
        )


@pytest.mark.parametrize("objective_cls", OBJECTIVES)
@pytest.mark.parametrize(
    "interpolant", [LinearInterpolant(BrownianGamma()), VPInterpolant()], ids=repr
)
def test_antithetic_is_unbiased(objective_cls: type[Objective], interpolant: Interpolant) -> None:
    exact = ExactInterpolantFields(interpolant, _base(interpolant), _target())
    plain = _loss_samples(objective_cls(interpolant), exact, 20000, 10, None)  # type: ignore[call-arg]
    anti = _loss_samples(objective_cls(interpolant, antithetic=True), exact, 20000, 20, None)  # type: ignore[call-arg]
    se = (plain.var() / plain.numel() + anti.var() / anti.numel()).sqrt()
    assert abs(float(plain.mean() - anti.mean())) < 4.5 * float(se)


def _gradient_samples(
    objective: Objective, exact: ExactInterpolantFields, n: int, seed: int, t: float
) -> torch.Tensor:
    """Per-sample derivatives of the loss along the direction ``sin`` at δ = 0.3."""
    field = exact_field(type(objective), exact)
    delta = torch.full((n,), 0.3, dtype=F64, requires_grad=True)
    model = perturbed(field, delta, DIRECTIONS["sin"])
    x0, x1 = _draw(exact, n, seed)
    losses = objective.per_sample_loss(
        model, x0, x1, t=t, generator=torch.Generator().manual_seed(seed + 1)
    )
    (g,) = torch.autograd.grad(losses.sum(), delta)
    return g


@pytest.mark.parametrize("t", [1e-3, 1 - 1e-3])
def test_antithetic_tames_the_gradient_variance_near_the_ends(t: float) -> None:
    # two-sided Brownian γ: the plain velocity loss's gradient holds γ̇z·h with γ̇ ≈ 16 at
    # t = 1e-3; the antithetic pair cancels it. Fair comparison per model call: the pair costs
    # two calls, so it must beat half the plain variance, and it does by more than 20×.
    interpolant = LinearInterpolant(BrownianGamma())
    exact = ExactInterpolantFields(interpolant, _base(interpolant), _target())
    plain = _gradient_samples(VelocityObjective(interpolant), exact, 4000, 30, t)
    anti = _gradient_samples(VelocityObjective(interpolant, antithetic=True), exact, 4000, 30, t)
    assert float(anti.var()) < float(plain.var()) / 2 / 20
    # the loss *value* keeps the parameter-free |γ̇z|²/D: the pair does not shrink its variance
    # (the MSE's heavy tail near the ends, documented in Objective)
    values = _loss_samples(VelocityObjective(interpolant, antithetic=True), exact, 4000, 30, t)
    assert float(values.var()) > 100 * float(anti.var())


def _mse(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return ((prediction - target) ** 2).mean()


def test_the_loss_is_the_peers_mean_squared_error() -> None:
    """torchcfm's and torchebm's definition, mean((m̂ − y)²) over batch and entries, for the
    same path and draw: flow matching, SB-CFM's bridge (γ = σ√(t(1−t))), the σ²-weighted
    denoising score matching and the split form's two MSEs; and the gradient is 2/D times the
    gradient of the dot form ½|m̂|² − y·m̂ (the old value)."""
    g = torch.Generator().manual_seed(0)
    n, d = 64, 3
    x0, x1, z = (torch.randn(n, d, generator=g, dtype=F64) for _ in range(3))
    t = torch.rand(n, generator=g, dtype=F64) * 0.98 + 0.01
    tc = t[:, None]
    weight = torch.tensor(0.7, dtype=F64, requires_grad=True)

    def model(s: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return weight * torch.sin(x) + s[:, None]

    # flow matching (γ ≡ 0): u = x1 − x0 at x_t = (1 − t)x0 + t x1
    fm = VelocityObjective(LinearInterpolant()).loss(model, x0, x1, t=t)
    xt = (1 - tc) * x0 + tc * x1
    torch.testing.assert_close(fm, _mse(model(t, xt), x1 - x0))
    # SB-CFM: x_t = μ_t + σ√(t(1−t))z, u = x1 − x0 + (1 − 2t)/(2t(1 − t))·(x_t − μ_t)
    sigma = 0.7
    sb = VelocityObjective(LinearInterpolant(BrownianGamma(a=sigma**2)))
    mu = (1 - tc) * x0 + tc * x1
    xt = mu + sigma * (tc * (1 - tc)).sqrt() * z
    u = x1 - x0 + (1 - 2 * tc) / (2 * tc * (1 - tc)) * (xt - mu)
    loss = sb.loss(model, x0, x1, t=t, z=z)
    torch.testing.assert_close(loss, _mse(model(t, xt), u))
    # ... whose gradient is 2/D times that of the dot form
    (grad,) = torch.autograd.grad(loss, weight)
    m = model(t, xt)
    dot = (0.5 * m.square() - u * m).sum(1).mean()
    (dot_grad,) = torch.autograd.grad(dot, weight)
    torch.testing.assert_close(grad, 2 / d * dot_grad)
    # σ²-weighted score matching: mean((σŝ + z)²) with σ = γ
    score = ScoreObjective(LinearInterpolant(BrownianGamma())).loss(model, x0, x1, t=t, z=z)
    gamma = (tc * (1 - tc)).sqrt()
    xt = mu + gamma * z
    torch.testing.assert_close(score, _mse(gamma * model(t, xt), -z))
    # split: the sum of the two heads' MSEs
    split = SplitObjective(LinearInterpolant(BrownianGamma())).loss(
        lambda s, x: (model(s, x), -model(s, x)), x0, x1, t=t, z=z
    )
    want = _mse(model(t, xt), x1 - x0) + _mse(-model(t, xt), z)
    torch.testing.assert_close(split, want)


def test_the_loss_matches_torchcfm() -> None:
    """The same number as torchcfm's own matchers on the same (t, x0, x1, noise)."""
    cfm = pytest.importorskip("torchcfm.conditional_flow_matching")
    g = torch.Generator().manual_seed(1)
    x0, x1, z = (torch.randn(32, 2, generator=g) for _ in range(3))
    t = torch.rand(32, generator=g) * 0.98 + 0.01
    model = MLP2()
    for sigma, ours in [
        (0.0, VelocityObjective(LinearInterpolant())),
        (0.5, VelocityObjective(LinearInterpolant(BrownianGamma(a=0.25)))),
    ]:
        peer = (
            cfm.ConditionalFlowMatcher(sigma=0.0)
            if sigma == 0
            else cfm.SchrodingerBridgeConditionalFlowMatcher(sigma=sigma)
        )
        _, xt, ut = peer.sample_location_and_conditional_flow(x0, x1, t=t, return_noise=False)
        if sigma > 0:  # torchcfm draws its own ε: recompute x_t, u_t with ours
            mu = peer.compute_mu_t(x0, x1, t)
            xt = mu + peer.compute_sigma_t(t)[:, None] * z
            ut = peer.compute_conditional_flow(x0, x1, t, xt)
        theirs = torch.mean((model(t, xt) - ut) ** 2)
        torch.testing.assert_close(ours.loss(model, x0, x1, t=t, z=z), theirs)


class MLP2(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(
            torch.nn.Linear(3, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2)
        )

    def forward(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(torch.cat([t[:, None], x], 1))
        return out


def test_antithetic_needs_a_noise() -> None:
    with pytest.raises(ValueError, match="antithetic"):
        VelocityObjective(LinearInterpolant(), antithetic=True)
    for cls in (DenoiserObjective, ScoreObjective, SplitObjective):
        with pytest.raises(ValueError, match="noise"):
            cls(LinearInterpolant())


@pytest.mark.parametrize("objective_cls", OBJECTIVES)
def test_contract(objective_cls: type[Objective]) -> None:
    """Every objective: any trailing shape, reproducible, differentiable, passes condition."""
    interpolant = LinearInterpolant(BrownianGamma())
    objective = objective_cls(interpolant, antithetic=True)  # type: ignore[call-arg]
    x0, x1 = torch.randn(6, 2, 3, 3), torch.randn(6, 2, 3, 3)
    weight = torch.tensor(0.5, requires_grad=True)
    seen: list[object] = []

    def model(t: torch.Tensor, x: torch.Tensor, condition: object = None) -> object:
        seen.append(condition)
        assert t.shape == (6,) and t.dtype == x.dtype
        out = weight * x * t[:, None, None, None]
        return (out, -out) if objective_cls is SplitObjective else out

    labels = torch.arange(6)
    loss = objective.loss(
        model, x0, x1, generator=torch.Generator().manual_seed(0), condition=labels
    )
    again = objective.loss(
        model, x0, x1, generator=torch.Generator().manual_seed(0), condition=labels
    )
    assert loss.shape == () and torch.isfinite(loss) and float(loss) == float(again)
    assert all(c is labels for c in seen) and len(seen) == 4  # antithetic: two calls per loss
    (grad,) = torch.autograd.grad(loss, weight)
    assert torch.isfinite(grad) and float(grad) != 0.0
    per_sample = objective.per_sample_loss(model, x0, x1, t=0.3)
    assert per_sample.shape == (6,)
    assert "antithetic=True" in repr(objective)


def test_bad_input_raises() -> None:
    objective = VelocityObjective(LinearInterpolant(BrownianGamma()))
    x = torch.randn(5, 2)
    good = lambda t, y: torch.zeros_like(y)  # noqa: E731
    shape_error = (ValueError, TypeError)  # TypeCheckError (a TypeError) under runtime checking
    with pytest.raises(shape_error, match="x1"):
        objective.loss(good, x, torch.randn(5, 3))
    with pytest.raises(ValueError, match=r"t must lie in \[0, 1\]"):
        objective.loss(good, x, x, t=1.5)
    with pytest.raises(ValueError, match=r"t must lie in \[0, 1\]"):
        objective.loss(good, x, x, t=torch.tensor([0.1, 0.2, 0.3, 0.4, -0.5]))
    with pytest.raises(shape_error, match="t"):
        objective.loss(good, x, x, t=torch.tensor([0.1, 0.2]))
    with pytest.raises(shape_error, match="z"):
        objective.loss(good, x, x, z=torch.randn(5, 4))
    with pytest.raises(TypeError, match="x0"):
        objective.loss(good, x.long(), x.long())
    with pytest.raises(ValueError, match=r"model must return a tensor of shape \(5, 2\)"):
        objective.loss(lambda t, y: torch.zeros(5, 3), x, x)
    with pytest.raises(TypeError, match=r"model must return a torch\.Tensor"):
        objective.loss(lambda t, y: (y, y), x, x)
    split = SplitObjective(LinearInterpolant(BrownianGamma()))
    with pytest.raises(TypeError, match="pair"):
        split.loss(good, x, x)
    with pytest.raises(ValueError, match=r"model \(head eta\)"):
        split.loss(lambda t, y: (y, y[:, :1]), x, x)
    with pytest.raises(TypeError, match="interpolant"):
        VelocityObjective(object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="time_sampler"):
        VelocityObjective(LinearInterpolant(), time_sampler=object())  # type: ignore[arg-type]


# --- time samplers ----------------------------------------------------------------------------
def test_time_samplers_follow_their_laws() -> None:
    from scipy import stats

    g = torch.Generator().manual_seed(0)
    n = 4000
    uniform = UniformTime(0.1, 0.9).sample(n, generator=g, dtype=F64)
    assert uniform.dtype == F64 and uniform.shape == (n,)
    assert stats.kstest(uniform.numpy(), stats.uniform(0.1, 0.8).cdf).pvalue > 1e-3
    beta = BetaTime(2.0, 5.0).sample(n, generator=g)
    assert beta.dtype == torch.float32
    assert stats.kstest(beta.double().numpy(), stats.beta(2, 5).cdf).pvalue > 1e-3
    custom = InverseCDFTime(torch.sqrt, lambda t: 2 * t).sample(n, generator=g, dtype=F64)
    assert stats.kstest(custom.numpy(), lambda t: t**2).pvalue > 1e-3
    # densities integrate to one (midpoint rule, error ~1e-6 for these smooth densities)
    grid = (torch.arange(20000, dtype=F64) + 0.5) / 20000
    for sampler in (UniformTime(0.1, 0.9), BetaTime(2.0, 5.0)):
        assert abs(float(sampler.density(grid).mean()) - 1) < 1e-4


def test_beta_time_is_reproducible_and_leaves_the_global_rng_alone() -> None:
    state = torch.random.get_rng_state()
    a = BetaTime(0.5, 0.5).sample(10, generator=torch.Generator().manual_seed(3))
    b = BetaTime(0.5, 0.5).sample(10, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    assert torch.equal(state, torch.random.get_rng_state())


def test_importance_weights_recover_the_uniform_expectation() -> None:
    # E_p[w(t) f(t)] = ∫₀¹ f = 1/3 for f = t², with t ~ Beta(2, 2), w = 1/p: a 4.5-SE check
    sampler = ImportanceWeighted(BetaTime(2.0, 2.0))
    t = sampler.sample(20000, generator=torch.Generator().manual_seed(4), dtype=F64)
    values = sampler.weight(t) * t**2
    assert abs(float(values.mean()) - 1 / 3) < 4.5 * float(values.std()) / 20000**0.5
    assert torch.equal(UniformTime().weight(t), torch.ones_like(t))
    # and an objective uses the weights
    objective = TargetObjective(LinearInterpolant(), time_sampler=sampler)
    x = torch.ones(3, 2, dtype=F64)
    weighted = objective.per_sample_loss(
        lambda s, y: 2 * y, x, x, t=torch.tensor([0.5, 0.5, 0.5], dtype=F64)
    )
    assert torch.allclose(weighted, torch.ones(3, dtype=F64) / 1.5)  # (2 − 1)²·1/p(½)


def test_time_sampler_errors() -> None:
    with pytest.raises(ValueError, match="low"):
        UniformTime(0.5, 0.2)
    with pytest.raises(ValueError, match="a must be"):
        BetaTime(-1.0, 1.0)
    with pytest.raises(ValueError, match="inverse_cdf"):
        InverseCDFTime(lambda u: u + 1, lambda t: t).sample(5)
    with pytest.raises(TypeError, match="TimeSampler"):
        ImportanceWeighted(object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="already"):
        ImportanceWeighted(ImportanceWeighted(UniformTime()))


def test_doctests() -> None:
    import doctest

    import interpolants.objective._losses as losses
    import interpolants.objective._time as time

    for module in (losses, time):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("interpolant", [LinearInterpolant(BrownianGamma()), VPInterpolant()])
def test_draw_gives_the_losses_random_numbers(interpolant: Interpolant) -> None:
    """``draw`` consumes the generator as the loss does: drawing first and passing (t, z) gives
    the same losses, which is how the trainer slices a batch for gradient accumulation."""
    objective = VelocityObjective(interpolant, antithetic=True)
    x0, x1 = torch.randn(16, 2, dtype=F64), torch.randn(16, 2, dtype=F64)
    model = lambda t, x: torch.sin(x) * t[:, None]  # noqa: E731
    t, z = objective.draw(x0, generator=torch.Generator().manual_seed(5))
    assert t.shape == (16,) and t.dtype == F64
    assert (z is None) == (not interpolant.is_stochastic)
    drawn = objective.per_sample_loss(model, x0, x1, generator=torch.Generator().manual_seed(5))
    given = objective.per_sample_loss(model, x0, x1, t=t, z=z)
    assert torch.equal(drawn, given)
