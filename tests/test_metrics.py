"""Sliced Wasserstein, MMD, path statistics and W2 per NFE against closed forms."""

import math

import pytest
import torch
from torch import Tensor

from contracts import NoHostSync
from interpolants.integrate import RK4, Heun
from interpolants.metrics import mmd, path_statistics, sliced_wasserstein, w2_per_nfe, wasserstein2

DT = torch.float64


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("m", [300, 200])
def test_sliced_wasserstein_is_w2_in_one_dimension(m: int) -> None:
    """In 1-D every projection is ±identity: SW_2 is W_2 of the quantile functions, exactly
    W_2 for equal sizes and its midpoint-quantile discretisation otherwise."""
    x = torch.randn(300, 1, generator=_gen(0), dtype=DT)
    y = 2 * torch.rand(m, 1, generator=_gen(1), dtype=DT) + 1
    sw = float(sliced_wasserstein(x, y, projections=3, generator=_gen(2)))
    w2 = wasserstein2(x, y)
    tol = 1e-9 if m == 300 else 0.02 * w2  # unequal sizes: quantile interpolation
    assert abs(sw - w2) <= tol, (sw, w2)


def test_sliced_wasserstein_bounds_and_closed_form() -> None:
    x = torch.randn(1500, 2, generator=_gen(3), dtype=DT)
    y = torch.randn(1500, 2, generator=_gen(4), dtype=DT) @ torch.tensor(
        [[2.0, 0], [0, 0.5]], dtype=DT
    )
    sw = float(sliced_wasserstein(x, y, projections=512, generator=_gen(5)))
    assert 0 < sw <= wasserstein2(x, y)  # SW_2 ≤ W_2 for the empirical laws
    # a translation by v: every projection shifts by θ·v, SW_2² = E(θ·v)² = |v|²/D
    v = torch.tensor([3.0, -1.0, 0.5], dtype=DT)
    z = torch.randn(1000, 3, generator=_gen(6), dtype=DT)
    shifted = float(sliced_wasserstein(z, z + v, projections=20_000, generator=_gen(7)))
    expected = math.sqrt(float(v.square().sum()) / 3)
    # Monte Carlo over θ: relative standard error of E(θ·v)² ≲ 1.2/√K ≈ 0.9 %; 4 % is > 4σ
    assert abs(shifted - expected) < 0.04 * expected
    assert float(sliced_wasserstein(z, z, projections=8, generator=_gen(8))) == 0.0


def test_sliced_wasserstein_contract() -> None:
    x, y = torch.randn(64, 2, 3), torch.randn(48, 2, 3)
    with NoHostSync():  # stays on the device
        out = sliced_wasserstein(x, y, p=1.0, generator=_gen(0))
    assert out.shape == () and out.dtype == torch.float32
    assert torch.equal(
        sliced_wasserstein(x, y, generator=_gen(1)), sliced_wasserstein(x, y, generator=_gen(1))
    )
    # under runtime type checking jaxtyping rejects the mismatch first (a TypeError)
    with pytest.raises((ValueError, TypeError), match=r"trailing shape|parameter 'y'"):
        sliced_wasserstein(x, torch.randn(5, 6))
    with pytest.raises(ValueError, match="projections"):
        sliced_wasserstein(x, y, projections=0)
    with pytest.raises(ValueError, match="p must"):
        sliced_wasserstein(x, y, p=0.5)


def test_mmd_matches_the_gaussian_closed_form() -> None:
    """For N(μ1, s²I), N(μ2, s²I) in d dimensions and k = exp(−|a − b|²/(2h²)):
    MMD² = 2c(1 − exp(−|μ1 − μ2|²/(2(h² + 2s²)))), c = (h²/(h² + 2s²))^{d/2}."""
    d, s, h = 2, 1.0, 1.5
    delta = torch.tensor([1.0, 0.5], dtype=DT)
    x = torch.randn(3000, d, generator=_gen(9), dtype=DT) * s
    y = torch.randn(3000, d, generator=_gen(10), dtype=DT) * s + delta
    c = (h**2 / (h**2 + 2 * s**2)) ** (d / 2)
    expected = 2 * c * (1 - math.exp(-float(delta.square().sum()) / (2 * (h**2 + 2 * s**2))))
    got = float(mmd(x, y, bandwidth=h, scales=(1.0,)))
    # the U-statistic's standard deviation at n = 3000 is ~4e-3 here; 0.015 is > 3σ
    assert abs(got - expected) < 0.015, (got, expected)
    same = float(mmd(x, torch.randn(3000, d, generator=_gen(11), dtype=DT) * s))
    assert abs(same) < 0.005 < expected / 10  # unbiased: ≈ 0 for equal laws
    with NoHostSync():
        assert mmd(x.float(), y.float()).shape == ()


def test_mmd_validates() -> None:
    x = torch.randn(10, 2)
    with pytest.raises(ValueError, match="bandwidth"):
        mmd(x, x, bandwidth=-1.0)
    with pytest.raises(ValueError, match="scales"):
        mmd(x, x, scales=())
    with pytest.raises(ValueError, match="at least two"):
        mmd(x[:1], x)


def _rotation(theta: float):  # type: ignore[no-untyped-def]
    j = torch.tensor([[0.0, -1.0], [1.0, 0.0]], dtype=DT)

    def field(t: Tensor, x: Tensor) -> Tensor:
        return theta * x @ j.T

    return field


def test_path_statistics_of_a_rotation() -> None:
    """Rotation by θ over [0, 1]: K = θ²E|x|², E|X₁ − X₀|² = 2(1 − cos θ)E|x|², S = K − that."""
    theta = 1.3
    x0 = torch.randn(400, 2, generator=_gen(12), dtype=DT)
    stats = path_statistics(_rotation(theta), x0, steps=200, integrator=RK4())
    r2 = float(x0.square().sum(1).mean())
    assert float(stats.kinetic_energy) == pytest.approx(theta**2 * r2, rel=1e-6)
    assert float(stats.displacement) == pytest.approx(2 * (1 - math.cos(theta)) * r2, rel=1e-6)
    # trapezoidal rule with 200 steps: O(h²) ≈ 1e-5 relative
    expected = (theta**2 - 2 + 2 * math.cos(theta)) * r2
    assert float(stats.straightness) == pytest.approx(expected, rel=1e-4)
    assert stats.nfe == 4 * 200 + 201


def test_w2_per_nfe_falls_with_the_budget_on_a_curved_flow() -> None:
    theta = 1.0
    x0 = torch.randn(300, 2, generator=_gen(13), dtype=DT)
    rot = torch.tensor(
        [[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]], dtype=DT
    )
    reference = x0 @ rot.T  # the exact end points (same points: W2 measures the error)
    curve = w2_per_nfe(_rotation(theta), x0, reference, [2, 4, 8, 16], Heun())
    values = list(curve.values())
    assert values == sorted(values, reverse=True) and values[-1] < values[0] / 10
    with pytest.raises(ValueError, match="multiple"):
        w2_per_nfe(_rotation(theta), x0, reference, [3], Heun())
