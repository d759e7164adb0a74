"""Time laws and weights: the logit-normal law, laws from any density, importance weights that
keep the expected loss, and the per-time loss-weight hook of every objective."""

import math
import pickle

import pytest
import torch
from scipy import stats
from torch import Tensor

from interpolants import LinearInterpolant, VelocityObjective
from interpolants.objective import (
    DensityTime,
    ImportanceWeighted,
    LogitNormalTime,
    TargetObjective,
    UniformTime,
)

F64 = torch.float64

# KS thresholds: the samples are seeded, so each test is deterministic; p > 1e-3 is the level
# at which a correct sampler would fail one seed in a thousand, and a wrong law of these sizes
# (n = 4000) is rejected with p < 1e-10 (e.g. a shifted mean of 0.2 gives D ≈ 0.08).
LEVEL = 1e-3


@pytest.mark.parametrize("mean,std", [(0.0, 1.0), (-0.5, 0.7)])
def test_logit_normal_samples_follow_the_law(mean: float, std: float) -> None:
    sampler = LogitNormalTime(mean, std)
    t = sampler.sample(4000, generator=torch.Generator().manual_seed(0), dtype=F64)
    assert t.shape == (4000,) and t.dtype == F64 and bool(((t > 0) & (t < 1)).all())
    logit = torch.log(t) - torch.log1p(-t)
    assert stats.kstest(logit.numpy(), stats.norm(mean, std).cdf).pvalue > LEVEL
    wrong = stats.kstest(logit.numpy(), stats.norm(mean + 0.2, std).cdf).pvalue
    assert wrong < 1e-6  # the test has power
    # the density is the law's: it integrates to one and matches the CDF's derivative
    grid = (torch.arange(20000, dtype=F64) + 0.5) / 20000
    assert abs(float(sampler.density(grid).mean()) - 1) < 1e-6
    s = torch.tensor([0.1, 0.5, 0.8], dtype=F64)
    cdf = lambda u: stats.norm(mean, std).cdf(math.log(u / (1 - u)))  # noqa: E731
    numeric = torch.tensor([(cdf(u + 1e-6) - cdf(u - 1e-6)) / 2e-6 for u in s.tolist()])
    torch.testing.assert_close(sampler.density(s), numeric.to(F64), rtol=1e-6, atol=0)
    ends = sampler.density(torch.tensor([0.0, 1.0], dtype=F64))
    assert torch.equal(ends, torch.zeros(2, dtype=F64))
    assert sampler.density(torch.tensor([0.0, 1.0])).isfinite().all()


def _beta23(t: Tensor) -> Tensor:
    return t * (1 - t) ** 2  # Beta(2, 3), unnormalised


def test_a_law_from_any_density_follows_it() -> None:
    sampler = DensityTime(_beta23)
    t = sampler.sample(4000, generator=torch.Generator().manual_seed(1), dtype=F64)
    assert t.shape == (4000,) and bool(((t >= 0) & (t <= 1)).all())
    assert stats.kstest(t.numpy(), stats.beta(2, 3).cdf).pvalue > LEVEL
    assert stats.kstest(t.numpy(), stats.beta(2.4, 3).cdf).pvalue < 1e-6
    # the piecewise-constant density sampled: within O(1/cells) of the normalised f
    s = torch.tensor([0.1, 0.4, 0.9], dtype=F64)
    exact = torch.tensor(stats.beta(2, 3).pdf(s.numpy()))
    torch.testing.assert_close(sampler.density(s), exact, rtol=2e-3, atol=0)
    # float32 on the requested device, reproducible, and pickles with a module-level f
    a = sampler.sample(50, generator=torch.Generator().manual_seed(2))
    again = pickle.loads(pickle.dumps(sampler))
    assert a.dtype == torch.float32
    assert torch.equal(a, again.sample(50, generator=torch.Generator().manual_seed(2)))
    assert repr(again) == repr(sampler) == "DensityTime(test_objective_time._beta23, cells=4096)"


def test_density_time_rejects_bad_densities() -> None:
    with pytest.raises(TypeError, match="density"):
        DensityTime(3.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="non-negative"):
        DensityTime(lambda t: t - 0.5)
    with pytest.raises(ValueError, match="positive somewhere"):
        DensityTime(torch.zeros_like)
    with pytest.raises(ValueError, match="cells"):
        DensityTime(torch.ones_like, cells=1)
    with pytest.raises(ValueError, match="std"):
        LogitNormalTime(0.0, 0.0)
    with pytest.raises(ValueError, match="mean"):
        LogitNormalTime(math.inf, 1.0)


def _bump(t: Tensor) -> Tensor:
    return 0.3 + torch.sin(math.pi * t) ** 2  # bounded below: bounded weights


def test_importance_weights_keep_the_expected_loss() -> None:
    """E over p of w(t)·ℓ equals E over uniform t of ℓ for a real velocity loss (random pairs,
    a fixed non-optimal model): two independent estimates, 4.5 standard errors apart at most;
    and the weighted estimator differs from the unweighted one under p (the weights matter)."""
    n = 40000
    gen = torch.Generator().manual_seed(3)
    x0, x1 = (
        torch.randn(n, 2, generator=gen, dtype=F64),
        torch.randn(n, 2, generator=gen, dtype=F64),
    )
    x1 = x1 + 2.0

    def model(t: Tensor, x: Tensor) -> Tensor:
        return 3 * x * t[:, None] ** 2

    uniform = VelocityObjective(LinearInterpolant()).per_sample_loss(
        model, x0, x1, generator=torch.Generator().manual_seed(4)
    )
    law = DensityTime(_bump)
    weighted = VelocityObjective(
        LinearInterpolant(), time_sampler=ImportanceWeighted(law)
    ).per_sample_loss(model, x0, x1, generator=torch.Generator().manual_seed(5))
    unweighted = VelocityObjective(LinearInterpolant(), time_sampler=law).per_sample_loss(
        model, x0, x1, generator=torch.Generator().manual_seed(5)
    )
    se = math.sqrt((float(uniform.var()) + float(weighted.var())) / n)
    assert abs(float(uniform.mean()) - float(weighted.mean())) < 4.5 * se
    assert abs(float(uniform.mean()) - float(unweighted.mean())) > 10 * se


def _ramp(t: Tensor) -> Tensor:
    return 1.0 + t


def test_the_loss_weight_hook_multiplies_the_per_sample_loss() -> None:
    x0 = torch.zeros(5, 2, dtype=F64)
    x1 = torch.ones(5, 2, dtype=F64)
    t = torch.linspace(0, 1, 5, dtype=F64)
    model = lambda s, y: torch.zeros_like(y)  # noqa: E731  (loss (0 − 1)² = 1 each)
    plain = TargetObjective(LinearInterpolant())
    hooked = TargetObjective(LinearInterpolant(), loss_weight=_ramp)
    assert torch.equal(plain.per_sample_loss(model, x0, x1, t=t), torch.ones(5, dtype=F64))
    assert torch.equal(hooked.per_sample_loss(model, x0, x1, t=t), 1.0 + t)
    # after the sampler's weights, and drawn times too
    both = TargetObjective(
        LinearInterpolant(),
        time_sampler=ImportanceWeighted(UniformTime(0.0, 0.5)),
        loss_weight=_ramp,
    )
    half = torch.full((5,), 0.25, dtype=F64)
    torch.testing.assert_close(
        both.per_sample_loss(model, x0, x1, t=half), 0.5 * (1.25 * half / half)
    )
    drawn = hooked.per_sample_loss(model, x0, x1, generator=torch.Generator().manual_seed(0))
    times, _ = hooked.draw(x0, generator=torch.Generator().manual_seed(0))
    assert torch.equal(drawn, 1.0 + times)
    # defaults unchanged: no hook in the repr, and the repr and the hook survive pickling
    assert "loss_weight" not in repr(plain)
    again = pickle.loads(pickle.dumps(hooked))
    assert repr(again) == repr(hooked) and "loss_weight=test_objective_time._ramp" in repr(hooked)
    with pytest.raises(TypeError, match="loss_weight"):
        TargetObjective(LinearInterpolant(), loss_weight=2.0)  # type: ignore[arg-type]
    bad = TargetObjective(LinearInterpolant(), loss_weight=lambda s: s[:2])
    with pytest.raises(ValueError, match="loss_weight must return"):
        bad.per_sample_loss(model, x0, x1, t=t)
