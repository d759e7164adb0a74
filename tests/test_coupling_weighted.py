"""GibbsWeightedCoupling (weighted CFM): the coupling it samples, and its marginal bias measured
on the exact Gaussian-mixture test bed against exact OT."""

import math

import pytest
import torch

from interpolants import GaussianMixture, IndependentCoupling, OTCoupling
from interpolants.coupling import GibbsWeightedCoupling
from interpolants.metrics import energy_test

DT = torch.float64
RADIUS, STD = 3.0, 0.5


def _target() -> GaussianMixture:
    """Four Gaussians N(m_k, s² I) on a circle of radius 3, s = 0.5."""
    angle = torch.arange(4, dtype=DT) * (math.pi / 2)
    means = RADIUS * torch.stack([angle.cos(), angle.sin()], 1)
    return GaussianMixture.isotropic(torch.ones(4, dtype=DT), means, STD)


BASE, TARGET = GaussianMixture.standard_normal(2, dtype=DT), _target()


def _tilted_target(epsilon: float) -> GaussianMixture:
    """The x1 marginal of π_K for ρ0 = N(0, I) and c = ‖x0 − x1‖² (the docstring's formula):
    ρ1(y)·N(y; 0, τ I), τ = 1 + ε/2, a mixture again (equal weights here by symmetry)."""
    tau = 1.0 + epsilon / 2
    shrink = tau / (STD**2 + tau)
    angle = torch.arange(4, dtype=DT) * (math.pi / 2)
    means = RADIUS * shrink * torch.stack([angle.cos(), angle.sin()], 1)
    return GaussianMixture.isotropic(torch.ones(4, dtype=DT), means, STD * math.sqrt(shrink))


def _second_moment(epsilon: float | None) -> float:
    """E‖x1‖² under ρ1 (``None``) or under the tilted marginal ρ̃1."""
    if epsilon is None:
        return RADIUS**2 + 2 * STD**2
    shrink = (1.0 + epsilon / 2) / (STD**2 + 1.0 + epsilon / 2)
    return (RADIUS * shrink) ** 2 + 2 * STD**2 * shrink


def _pairs(coupling, batches: int, n: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    out0, out1 = [], []
    for _ in range(batches):
        x0, x1 = BASE.sample(n, gen), TARGET.sample(n, gen)
        p = coupling(x0, x1, generator=gen)
        out0.append(p.x0)
        out1.append(p.x1)
    return torch.cat(out0), torch.cat(out1)


def test_the_plan_is_the_normalised_gibbs_kernel_of_the_weighted_batches():
    gen = torch.Generator().manual_seed(0)
    x0, x1 = torch.randn(7, 3, generator=gen, dtype=DT), torch.randn(5, 3, generator=gen, dtype=DT)
    a, b = torch.rand(7, generator=gen, dtype=DT), torch.rand(5, generator=gen, dtype=DT)
    coupling = GibbsWeightedCoupling(epsilon=1.5)
    kernel = torch.exp(-(torch.cdist(x0, x1) ** 2) / 1.5) * (a / a.sum())[:, None] * (b / b.sum())
    torch.testing.assert_close(coupling.plan(x0, x1, a, b), kernel / kernel.sum())
    uniform = torch.exp(-(torch.cdist(x0, x1) ** 2) / 1.5)
    p = coupling(x0, x1, return_plan=True)
    torch.testing.assert_close(p.plan, uniform / uniform.sum())
    assert p.index0.shape == p.index1.shape == (5,)  # one pair per x1 drawn, x1 may repeat


def test_pairs_are_drawn_with_the_kernel_probabilities():
    # 3 × 2 pairs: the frequency of each pair over many draws is its plan entry
    x0 = torch.tensor([[0.0], [1.0], [2.5]], dtype=DT)
    x1 = torch.tensor([[0.5], [2.0]], dtype=DT)
    coupling = GibbsWeightedCoupling(epsilon=1.0)
    plan = coupling.plan(x0, x1)
    counts = torch.zeros(3, 2, dtype=DT)
    gen = torch.Generator().manual_seed(0)
    draws = 20_000
    for _ in range(draws // 2):
        p = coupling(x0, x1, generator=gen)
        counts.index_put_((p.index0, p.index1), torch.ones(2, dtype=DT), accumulate=True)
        assert bool((p.index1.diff() >= 0).all())
    freq = counts / draws
    assert float((freq - plan).abs().max()) < 4 * math.sqrt(0.25 / draws)


def test_large_epsilon_is_the_independent_coupling_and_zero_weights_are_never_drawn():
    gen = torch.Generator().manual_seed(1)
    x0, x1 = torch.randn(6, 2, generator=gen, dtype=DT), torch.randn(6, 2, generator=gen, dtype=DT)
    plan = GibbsWeightedCoupling(epsilon=1e12).plan(x0, x1)
    torch.testing.assert_close(plan, torch.full((6, 6), 1 / 36, dtype=DT))
    # far-apart clusters at small ε: every pair is drawn within a cluster
    x0 = torch.cat([torch.zeros(4, 1), torch.full((4, 1), 100.0)]).to(DT)
    x1 = x0.flip(0) + 0.1
    p = GibbsWeightedCoupling(epsilon=1.0)(x0, x1, generator=gen)
    assert bool(((p.x0 - p.x1).abs() < 1).all())


@pytest.mark.parametrize("epsilon", [2.0, 8.0])
def test_bias_against_exact_ot_on_the_gaussian_mixture_test_bed(epsilon):
    """The x1 marginal of the weighted pairs is the tilted ρ̃1 of the docstring, not ρ1; exact OT
    keeps ρ1. The bias of E‖x1‖² matches the closed form and shrinks as ε grows."""
    gibbs0, gibbs1 = _pairs(GibbsWeightedCoupling(epsilon), batches=8, n=512)
    ot0, ot1 = _pairs(OTCoupling(), batches=8, n=512)
    ind0, ind1 = _pairs(IndependentCoupling(), batches=8, n=512)
    exact_bias = _second_moment(epsilon) - _second_moment(None)  # < 0: pulled to the origin
    gibbs_bias = float((gibbs1**2).sum(1).mean()) - _second_moment(None)
    ot_bias = float((ot1**2).sum(1).mean()) - _second_moment(None)
    # Monte Carlo error of a mean of ‖x1‖² over 4096 samples: std(‖x1‖²) ≈ 3.1, so ≈ 0.05
    assert gibbs_bias == pytest.approx(exact_bias, abs=0.2)
    assert abs(ot_bias) < 0.2 < abs(exact_bias)
    # the x0 marginal is tilted too: ρ̃0 ∝ N(0, I)·Σ_k N(m_k, v I), v = s² + ε/2, whose
    # components are N(m_k/(v + 1), v/(v + 1) I)
    v = STD**2 + epsilon / 2
    exact_bias0 = RADIUS**2 / (v + 1) ** 2 + 2 * v / (v + 1) - 2.0
    assert float((gibbs0**2).sum(1).mean()) - 2.0 == pytest.approx(exact_bias0, abs=0.2)
    # the shape of ρ̃1: each component's spread shrinks to s²·τ/(s² + τ) about its shrunken
    # mean (resampled pairs repeat, so moments are compared, not i.i.d. two-sample tests)
    shrink = (1.0 + epsilon / 2) / (STD**2 + 1.0 + epsilon / 2)
    means = _tilted_target(epsilon).means
    spread = float(torch.cdist(gibbs1, means).amin(1).pow(2).mean())
    assert spread == pytest.approx(2 * STD**2 * shrink, abs=0.03)
    gap = 2 * STD**2 * (1 - shrink)  # the shrinkage, resolved at ε = 2 (0.056), not at 8
    assert gap < 0.04 or abs(spread - 2 * STD**2) > gap / 2
    # exact OT's x1 follow ρ1: a calibrated two-sample test does not reject
    gen = torch.Generator().manual_seed(7)
    assert energy_test(ot1[:1000], TARGET.sample(1000, gen), generator=gen) > 1e-3
    # what the bias buys: the transport cost
    cost = {
        name: float(((b - a) ** 2).sum(1).mean())
        for name, (a, b) in {
            "gibbs": (gibbs0, gibbs1),
            "ot": (ot0, ot1),
            "independent": (ind0, ind1),
        }.items()
    }
    # below the independent pairs'; at small ε even below exact OT's, which no coupling of ρ0
    # and ρ1 can reach: the weighted pairs shorten paths partly by moving the marginals
    assert cost["ot"] < 0.5 * cost["independent"] and cost["gibbs"] < 0.7 * cost["independent"]
    if epsilon <= 2:
        assert cost["gibbs"] < cost["ot"]


def test_the_bias_vanishes_as_epsilon_grows():
    biases = [abs(_second_moment(eps) - _second_moment(None)) for eps in (0.5, 2.0, 8.0, 1e3)]
    assert biases == sorted(biases, reverse=True) and biases[-1] < 0.01
    _, x1 = _pairs(GibbsWeightedCoupling(1e3), batches=4, n=512)
    assert float((x1**2).sum(1).mean()) == pytest.approx(_second_moment(None), abs=0.3)


def test_errors_and_repr():
    for bad in (0.0, -1.0, math.inf, math.nan):
        with pytest.raises(ValueError, match="epsilon"):
            GibbsWeightedCoupling(bad)
    with pytest.raises(TypeError, match="epsilon"):
        GibbsWeightedCoupling("1")  # type: ignore[arg-type]
    assert repr(GibbsWeightedCoupling(0.5)) == (
        "GibbsWeightedCoupling(epsilon=0.5, cost=SquaredEuclideanCost())"
    )
    with pytest.raises(ValueError, match="NaN"):
        GibbsWeightedCoupling()(torch.full((3, 2), math.nan), torch.zeros(3, 2))
