"""The exact Gaussian-mixture test bed is itself proven right.

* ρ_t sampled through the interpolant matches ρ_t sampled from its closed form (energy test);
* ρ_t, b and s satisfy the continuity equation and s = ∇ log ρ_t (autograd, float64);
* b and η_z are the conditional expectations of the regression targets (Monte Carlo).
"""

import math
import zlib

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import multivariate_normal

from bank import one_per_family, problem, two_mixtures
from interpolants import GaussianMixture, Interpolant, LinearInterpolant
from interpolants.analytic import ExactInterpolantFields
from interpolants.interpolant import MirrorInterpolant, OneSidedInterpolant, VPInterpolant
from interpolants.metrics import energy_test

FAMILIES = one_per_family()
NAMES = list(FAMILIES)
LEVEL = 1e-3  # per-test false-alarm probability of the calibrated permutation tests


def _exact(interp: Interpolant, dtype: torch.dtype = torch.float64) -> ExactInterpolantFields:
    base, target = problem(interp, dtype)
    return ExactInterpolantFields(interp, base, target)


def _through_interpolant(
    exact: ExactInterpolantFields, t: float, n: int, gen: torch.Generator
) -> torch.Tensor:
    x1 = exact.target.sample(n, gen)
    x0 = x1 if isinstance(exact.interpolant, MirrorInterpolant) else exact.base.sample(n, gen)
    z = torch.randn(x1.shape, generator=gen, dtype=x1.dtype)
    return exact.interpolant.interpolate(t, x0, x1, z)


# --- GaussianMixture ------------------------------------------------------------------------


def test_mixture_log_prob_matches_scipy() -> None:
    _, g = two_mixtures()
    x = torch.randn(50, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 3
    ref = np.log(
        sum(
            float(w) * multivariate_normal(m.numpy(), c.numpy()).pdf(x.numpy())
            for w, m, c in zip(g.weights, g.means, g.covariances)
        )
    )
    np.testing.assert_allclose(g.log_prob(x).numpy(), ref, rtol=1e-10, atol=1e-10)


def test_mixture_sample_moments() -> None:
    _, g = two_mixtures()
    n = 200_000
    x = g.sample(n, torch.Generator().manual_seed(1))
    # Each coordinate mean has standard error sqrt(var/n); 5 SE bounds a false alarm by 6e-7.
    se = torch.sqrt(torch.diagonal(g.covariance()) / n)
    assert torch.all((x.mean(0) - g.mean()).abs() < 5 * se)
    torch.testing.assert_close(torch.cov(x.T), g.covariance(), rtol=0.02, atol=0.02)


def test_mixture_rejects_bad_parameters() -> None:
    w, m = torch.ones(2), torch.zeros(2, 2)
    with pytest.raises((ValueError, TypeError), match="covariances"):
        GaussianMixture(
            w, m, torch.eye(2).expand(2, 2, 2) * torch.tensor([1.0, -1.0])[:, None, None]
        )
    with pytest.raises((ValueError, TypeError), match="weights"):
        GaussianMixture(torch.tensor([1.0, -1.0]), m, torch.eye(2).expand(2, 2, 2).clone())
    with pytest.raises(ValueError, match="N\\(0, I\\)"):
        ExactInterpolantFields(VPInterpolant(), *two_mixtures())


# --- marginals ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("t", [0.2, 0.5, 0.85])
def test_marginal_through_interpolant_matches_exact(name: str, t: float) -> None:
    exact = _exact(FAMILIES[name])
    # a stable seed per case (str hashes change between processes)
    gen = torch.Generator().manual_seed(zlib.crc32(f"{name}@{t}".encode()))
    ours = _through_interpolant(exact, t, 400, gen)
    ref = exact.sample(t, 400, gen)
    assert energy_test(ours, ref, permutations=999, generator=gen) > LEVEL


def test_marginal_test_has_power() -> None:
    """Negative control: the same test rejects ρ_t against ρ_{t'} and against a wrong mixture."""
    exact = _exact(LinearInterpolant())
    gen = torch.Generator().manual_seed(7)
    ours = _through_interpolant(exact, 0.5, 400, gen)
    assert energy_test(ours, exact.sample(0.65, 400, gen), generator=gen) <= LEVEL
    base, target = two_mixtures()
    shifted = GaussianMixture(target.weights, target.means + 0.5, target.covariances)
    wrong = ExactInterpolantFields(LinearInterpolant(), base, shifted)
    assert energy_test(ours, wrong.sample(0.5, 400, gen), generator=gen) <= LEVEL


# --- the fields -----------------------------------------------------------------------------


def _random_points(
    exact: ExactInterpolantFields, n: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    t = 0.05 + 0.9 * torch.rand(n, generator=gen, dtype=torch.float64)
    x = torch.cat([exact.sample(float(ti), 1, gen) for ti in t])
    return t, x


@pytest.mark.parametrize("name", NAMES)
def test_continuity_equation_and_score(name: str) -> None:
    exact = _exact(FAMILIES[name])
    t, x = _random_points(exact, 12, seed=3)
    t.requires_grad_(True)
    x.requires_grad_(True)
    logp = exact.log_prob(t, x)
    dt_logp, grad_logp = torch.autograd.grad(logp.sum(), (t, x))
    b = exact.velocity(t, x)
    div_b = sum(
        torch.autograd.grad(b[:, i].sum(), x, retain_graph=True)[0][:, i] for i in range(x.shape[1])
    )
    # ∂ₜρ + ∇·(bρ) = 0  ⇔  ∂ₜ log ρ + ∇·b + b·∇log ρ = 0.
    terms = (dt_logp, div_b, (b * grad_logp).sum(1))
    residual = sum(terms)
    scale = sum(v.abs() for v in terms)
    assert float((residual.abs() / scale).max().detach()) < 1e-6
    s = exact.score(t, x)
    rel = (s - grad_logp).norm(dim=1) / grad_logp.norm(dim=1).clamp_min(1e-12)
    assert float(rel.max().detach()) < 1e-6


@pytest.mark.parametrize("name", NAMES)
def test_field_identities(name: str) -> None:
    """b = v − γγ̇ s, η_z = −γ s (one-sided: η_z = −α s), and the identity x = αη0 + βη1 + γη_z."""
    interp = FAMILIES[name]
    exact = _exact(interp)
    t, x = _random_points(exact, 16, seed=4)
    c = interp.coefficients(t)
    s, b, v, eta = (
        f(t, x) for f in (exact.score, exact.velocity, exact.mean_velocity, exact.denoiser)
    )
    if isinstance(interp, OneSidedInterpolant):
        torch.testing.assert_close(v, b)
        torch.testing.assert_close(eta, -c.alpha[:, None] * s)
        # One-sided closed form: s = (βb − β̇x) / (α(αβ̇ − α̇β)).
        a, bb, ad, bd = (v_[:, None] for v_ in (c.alpha, c.beta, c.alpha_dot, c.beta_dot))
        torch.testing.assert_close(s, (bb * b - bd * x) / (a * (a * bd - ad * bb)))
    else:
        torch.testing.assert_close(b, v - c.gamma_gamma_dot[:, None] * s)
        torch.testing.assert_close(eta, -c.gamma[:, None] * s)


def _snis(logw: torch.Tensor, f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Self-normalised importance estimate of E[f] and its delta-method standard error."""
    w = torch.softmax(logw, 0)
    mean = (w[:, None] * f).sum(0)
    se = torch.sqrt((w[:, None] ** 2 * (f - mean) ** 2).sum(0))
    ess = 1 / (w**2).sum()
    assert ess > 1000, f"too few effective samples ({float(ess):.0f}) for a reliable error bar"
    return mean, se


@pytest.mark.parametrize("name", NAMES)
def test_velocity_is_the_conditional_expectation_of_the_target(name: str) -> None:
    """Monte Carlo E[α̇x0 + β̇x1 + γ̇z | x_t = x] by importance sampling, independent of the
    mixture algebra: γ > 0 weights (x0, x1) by N(x; αx0 + βx1, γ²I) and solves for z; γ ≡ 0
    draws x1, solves x0 = (x − βx1)/α and weights by ρ0(x0)."""
    interp = FAMILIES[name]
    exact = _exact(interp)
    gen = torch.Generator().manual_seed(11)
    m = 400_000
    for t in (0.3, 0.6):
        c = interp.coefficients(torch.tensor(t, dtype=torch.float64))
        x = exact.sample(t, 3, gen)
        x1 = exact.target.sample(m, gen)
        x0 = x1 if isinstance(interp, MirrorInterpolant) else exact.base.sample(m, gen)
        for point, b_exact, eta_exact in zip(x, exact.velocity(t, x), exact.denoiser(t, x)):
            if interp.is_stochastic:
                mean = c.alpha * x0 + c.beta * x1
                z = (point - mean) / c.gamma
                logw = -0.5 * (z**2).sum(1)
                target = c.alpha_dot * x0 + c.beta_dot * x1 + c.gamma_dot * z
                noise = z
            else:
                x0c = (point - c.beta * x1) / c.alpha
                logw = exact.base.log_prob(x0c)
                target = c.alpha_dot * x0c + c.beta_dot * x1
                noise = x0c
            est, se = _snis(logw, target)
            # 4 standard errors per coordinate (plus rounding): false alarm < 1e-4 each.
            assert torch.all((est - b_exact).abs() <= 4 * se + 1e-9), (est, b_exact, se)
            if interp.is_stochastic or isinstance(interp, OneSidedInterpolant):
                est, se = _snis(logw, noise)
                assert torch.all((est - eta_exact).abs() <= 4 * se + 1e-9), (est, eta_exact, se)


@pytest.mark.parametrize("name", NAMES)
def test_fields_finite_at_the_ends(name: str) -> None:
    exact = _exact(FAMILIES[name])
    x = exact.target.sample(20, torch.Generator().manual_seed(5))
    for t in (0.0, 1.0):
        for f in (exact.velocity, exact.score, exact.denoiser, exact.mean_velocity, exact.log_prob):
            assert torch.isfinite(f(t, x)).all()


def test_single_gaussian_pair_has_the_known_flow() -> None:
    """N(0, I) → N(m, σ²I), linear, independent: ρ_t = N(t m, C I) with C = (1−t)² + t²σ², so
    b(t, x) = m + ½(Ċ/C)(x − t m) with Ċ = 2(tσ² − (1 − t)) (by hand)."""
    d, sigma = 3, 2.0
    m = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    target = GaussianMixture.isotropic(torch.ones(1, dtype=torch.float64), m[None], sigma)
    exact = ExactInterpolantFields(
        LinearInterpolant(), GaussianMixture.standard_normal(d, dtype=torch.float64), target
    )
    x = torch.randn(10, d, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for t in (0.0, 0.3, 1.0):
        var = (1 - t) ** 2 + t**2 * sigma**2
        rate = t * sigma**2 - (1 - t)
        torch.testing.assert_close(exact.velocity(t, x), m + rate / var * (x - t * m))
        expected = (
            -0.5 * ((x - t * m) ** 2).sum(1) / var
            - 0.5 * d * math.log(var)
            - 0.5 * d * math.log(2 * math.pi)
        )
        torch.testing.assert_close(exact.log_prob(t, x), expected)


@given(
    name=st.sampled_from(NAMES),
    batch=st.integers(1, 6),
    t=st.floats(0.0, 1.0),
    seed=st.integers(0, 1000),
)
def test_property_scalar_and_per_sample_times_agree(
    name: str, batch: int, t: float, seed: int
) -> None:
    exact = _exact(FAMILIES[name])
    x = 2 * torch.randn(
        batch, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64
    )
    tt = torch.full((batch,), t, dtype=torch.float64)
    for f in (exact.velocity, exact.score, exact.log_prob):
        a, b = f(t, x), f(tt, x)
        assert a.shape == b.shape and a.shape[0] == batch and torch.isfinite(a).all()
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_float32_fields_agree_with_float64() -> None:
    interp = LinearInterpolant()
    e64, e32 = _exact(interp, torch.float64), _exact(interp, torch.float32)
    x = e64.sample(0.4, 64, torch.Generator().manual_seed(0))
    v32 = e32.velocity(0.4, x.float())
    assert v32.dtype == torch.float32
    torch.testing.assert_close(v32.double(), e64.velocity(0.4, x), rtol=1e-4, atol=1e-4)
