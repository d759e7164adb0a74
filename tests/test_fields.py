"""Field conversions (interpolant methods and field classes) and the SDE drift, checked on the
exact Gaussian-mixture test bed.

``ExactInterpolantFields`` computes b, s (and v, η_z from them) independently of the
conversions here, so a round trip that agrees to ~1e-12 in float64 checks the formulas, not
only their self-consistency. Tolerance: 1e-10 relative to the field's size, ~10⁵ ulps, which
leaves room for the 1/α and 1/β amplification at t ∈ [0.01, 0.99] (≤ 100) while any algebra
slip gives O(1) errors.
"""

import doctest

import pytest
import torch

import interpolants.fields as fields_module
from interpolants import SDE, BrownianGamma, GaussianMixture, LinearInterpolant, time_grid
from interpolants.analytic import ExactInterpolantFields
from interpolants.fields import (
    DenoiserFromScore,
    DenoiserFromVelocity,
    ScoreFromDenoiser,
    ScoreFromVelocity,
    TargetFromVelocity,
    VelocityFromDenoiser,
    VelocityFromMeanAndDenoiser,
    VelocityFromMeanAndScore,
    VelocityFromScore,
    VelocityFromSplit,
    VelocityFromTarget,
)
from interpolants.integrate import Heun, Problem
from interpolants.interpolant import (
    OneSidedLinearInterpolant,
    TrigonometricInterpolant,
    VPInterpolant,
)

F64 = torch.float64
RTOL = 1e-10


def _target() -> GaussianMixture:
    return GaussianMixture(
        torch.tensor([0.3, 0.7], dtype=F64),
        torch.tensor([[2.0, 0.0], [-1.0, 1.5]], dtype=F64),
        torch.stack(
            [0.3 * torch.eye(2, dtype=F64), torch.tensor([[0.5, 0.1], [0.1, 0.2]], dtype=F64)]
        ),
    )


def _two_sided_base() -> GaussianMixture:
    return GaussianMixture.isotropic(
        torch.tensor([0.5, 0.5], dtype=F64),
        torch.tensor([[-2.0, 0.0], [0.0, -2.0]], dtype=F64),
        0.6,
    )


def _close(actual: torch.Tensor, expected: torch.Tensor) -> None:
    assert torch.isfinite(actual).all()
    scale = 1.0 + float(expected.abs().max())
    assert float((actual - expected).abs().max()) <= RTOL * scale


def _points(n: int = 64, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    t = 0.01 + 0.98 * torch.rand(n, generator=g, dtype=F64)
    x = 2.0 * torch.randn(n, 2, generator=g, dtype=F64)
    return t, x


ONE_SIDED = [VPInterpolant(), OneSidedLinearInterpolant()]
TWO_SIDED = [LinearInterpolant(BrownianGamma()), TrigonometricInterpolant(BrownianGamma(a=0.5))]


@pytest.mark.parametrize("interpolant", ONE_SIDED, ids=repr)
def test_one_sided_round_trips(interpolant: VPInterpolant) -> None:
    exact = ExactInterpolantFields(
        interpolant, GaussianMixture.standard_normal(2, dtype=F64), _target()
    )
    t, x = _points()
    b, s, eta = exact.velocity(t, x), exact.score(t, x), exact.denoiser(t, x)
    i = interpolant
    _close(i.score_from_velocity(t, x, b), s)
    _close(i.velocity_from_score(t, x, s), b)
    _close(i.denoiser_from_velocity(t, x, b), eta)
    _close(i.velocity_from_denoiser(t, x, eta), b)
    _close(i.velocity_from_score(t, x, i.score_from_velocity(t, x, b)), b)
    _close(i.score_from_denoiser(t, i.denoiser_from_score(t, s)), s)
    _close(i.score_from_denoiser(t, eta), s)
    x1_hat = i.target_from_velocity(t, x, b)
    # E[x1 | x_t] satisfies x = α η0 + β η1 with η0 = η_z
    c = i.coefficients(t)
    _close(c.alpha[:, None] * eta + c.beta[:, None] * x1_hat, x)
    _close(i.velocity_from_target(t, x, x1_hat), b)
    # one-sided: v = b, so the split recombination is the identity both ways
    _close(i.velocity_from_mean_and_score(t, b, s), b)
    _close(i.mean_velocity_from_velocity_and_score(t, b, s), b)
    # the noise scale of a one-sided interpolant is α
    assert torch.equal(c.noise_scale, c.alpha)


@pytest.mark.parametrize("interpolant", TWO_SIDED, ids=repr)
def test_two_sided_round_trips(interpolant: LinearInterpolant) -> None:
    exact = ExactInterpolantFields(interpolant, _two_sided_base(), _target())
    t, x = _points()
    b, v, s, eta = (
        exact.velocity(t, x),
        exact.mean_velocity(t, x),
        exact.score(t, x),
        exact.denoiser(t, x),
    )
    assert float((b - v).abs().max()) > 0.1  # the split is not trivial here
    i = interpolant
    _close(i.velocity_from_mean_and_denoiser(t, v, eta), b)
    _close(i.velocity_from_mean_and_score(t, v, s), b)
    _close(i.mean_velocity_from_velocity_and_score(t, b, s), v)
    _close(i.score_from_denoiser(t, i.denoiser_from_score(t, s)), s)
    _close(i.denoiser_from_score(t, s), eta)
    assert torch.equal(i.coefficients(t).noise_scale, i.coefficients(t).gamma)


def test_split_recombination_is_finite_and_exact_at_the_ends() -> None:
    interpolant = LinearInterpolant(BrownianGamma())
    exact = ExactInterpolantFields(interpolant, _two_sided_base(), _target())
    _, x = _points(16)
    for end in (0.0, 1.0):
        t = torch.full((16,), end, dtype=F64)
        b, v, s = exact.velocity(t, x), exact.mean_velocity(t, x), exact.score(t, x)
        _close(interpolant.velocity_from_mean_and_score(t, v, s), b)
    # the one-sided η_z from b divides by αβ̇ − α̇β only: finite on all of [0, 1]
    vp = VPInterpolant()
    exact_vp = ExactInterpolantFields(vp, GaussianMixture.standard_normal(2, dtype=F64), _target())
    for end in (0.0, 1.0):
        t = torch.full((16,), end, dtype=F64)
        _close(vp.denoiser_from_velocity(t, x, exact_vp.velocity(t, x)), exact_vp.denoiser(t, x))


def test_field_classes_match_the_exact_fields() -> None:
    vp = VPInterpolant()
    exact = ExactInterpolantFields(vp, GaussianMixture.standard_normal(2, dtype=F64), _target())
    t, x = _points(32, seed=1)
    b, s, eta = exact.velocity, exact.score, exact.denoiser
    _close(ScoreFromVelocity(vp, b)(t, x), exact.score(t, x))
    _close(VelocityFromScore(vp, s)(t, x), exact.velocity(t, x))
    _close(DenoiserFromVelocity(vp, b)(t, x), exact.denoiser(t, x))
    _close(VelocityFromDenoiser(vp, eta)(t, x), exact.velocity(t, x))
    _close(ScoreFromDenoiser(vp, eta)(t, x), exact.score(t, x))
    _close(DenoiserFromScore(vp, s)(t, x), exact.denoiser(t, x))
    _close(VelocityFromTarget(vp, TargetFromVelocity(vp, b))(t, x), exact.velocity(t, x))

    two = LinearInterpolant(BrownianGamma())
    ex2 = ExactInterpolantFields(two, _two_sided_base(), _target())
    b2 = ex2.velocity(t, x)
    _close(VelocityFromMeanAndScore(two, ex2.mean_velocity, ex2.score)(t, x), b2)
    _close(VelocityFromMeanAndDenoiser(two, ex2.mean_velocity, ex2.denoiser)(t, x), b2)
    split = VelocityFromSplit(two, lambda tt, xx: (ex2.mean_velocity(tt, xx), ex2.denoiser(tt, xx)))
    _close(split(t, x), b2)


@pytest.mark.parametrize("direction", ["forward", "backward"])
def test_sde_drift(direction: str) -> None:
    """The one SDE drift b ± ε s (Problem.drift), with the direction read from the grid."""
    interpolant = LinearInterpolant(BrownianGamma())
    exact = ExactInterpolantFields(interpolant, _two_sided_base(), _target())
    t, x = _points(32, seed=2)
    sign = 1.0 if direction == "forward" else -1.0
    grid = time_grid(4, dtype=F64) if sign > 0 else time_grid(4, 1.0, 0.0, dtype=F64)
    problem = Problem(SDE(exact.velocity, exact.score, 0.7), x, grid, [], None)
    assert problem.sign == sign
    expected = exact.velocity(t, x) + sign * 0.7 * exact.score(t, x)
    _close(problem.drift(t, x, problem.sign * 0.7), expected)
    assert problem.nfe == 2
    # where ε = 0 the score is not evaluated
    _close(problem.drift(t, x, 0.0), exact.velocity(t, x))
    assert problem.nfe == 3 and problem.score is not None and problem.score.count == 1


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_singular_points(dtype: torch.dtype) -> None:
    """A singular time given as a number raises; a time tensor is not read on the host, so
    it gives non-finite values, which an integration reports once."""
    vp, two = VPInterpolant(), LinearInterpolant(BrownianGamma())
    x = torch.ones(3, 2, dtype=dtype)
    with pytest.raises(ValueError, match=r"score from velocity.*singular at t = 1"):
        vp.score_from_velocity(1.0, x, x)
    with pytest.raises(ValueError, match=r"velocity from score.*singular"):
        vp.velocity_from_score(0.0, x, x)
    with pytest.raises(ValueError, match=r"velocity from denoiser.*singular"):
        vp.velocity_from_denoiser(0, x, x)
    with pytest.raises(ValueError, match=r"velocity from target.*singular"):
        vp.velocity_from_target(1.0, x, x)
    with pytest.raises(ValueError, match=r"score from denoiser.*singular"):
        two.score_from_denoiser(0.0, x)
    with pytest.raises(ValueError, match=r"score from denoiser.*singular"):
        vp.score_from_denoiser(1.0, x)
    t1 = torch.tensor([0.5, 1.0, 0.2], dtype=dtype)
    out = vp.score_from_velocity(t1, x, x)
    assert torch.isfinite(out[[0, 2]]).all() and not torch.isfinite(out[1]).all()
    # an integration whose last stage evaluates the score at t = 1 raises, never returns NaN
    with pytest.raises(FloatingPointError, match="NaN or Inf"):
        Heun().integrate(ScoreFromVelocity(vp, lambda t, y: y), x, time_grid(4, dtype=dtype))
    with pytest.raises(TypeError, match="noise"):
        ScoreFromDenoiser(LinearInterpolant(), lambda t, y: y)  # γ ≡ 0: σ vanishes everywhere
    # the conversions that are finite everywhere stay finite at both ends
    ends = torch.tensor([0.0, 1.0, 0.0], dtype=dtype)
    for value in (
        vp.denoiser_from_velocity(ends, x, x),
        two.denoiser_from_score(ends, x),
        two.velocity_from_mean_and_score(ends, x, x),
        two.velocity_from_mean_and_denoiser(ends, x, x),
        vp.target_from_velocity(ends, x, x),
    ):
        assert torch.isfinite(value).all()


def test_bad_input_raises() -> None:
    vp, two = VPInterpolant(), LinearInterpolant(BrownianGamma())
    x = torch.ones(3, 2)
    with pytest.raises(TypeError, match="OneSidedInterpolant"):
        two.score_from_velocity(0.5, x, x)
    with pytest.raises(TypeError, match="OneSidedInterpolant"):
        VelocityFromScore(two, lambda t, y: y)
    with pytest.raises(TypeError, match="deterministic"):
        two.velocity_from_target(0.5, x, x)
    with pytest.raises(TypeError, match="deterministic"):
        TargetFromVelocity(two, lambda t, y: y)
    # under runtime type checking the shape mismatch is caught first, as a TypeCheckError
    shape_error = (ValueError, TypeError)
    with pytest.raises(shape_error, match="velocity"):
        vp.score_from_velocity(0.5, x, torch.ones(3, 3))
    with pytest.raises(ValueError, match=r"t must lie in \[0, 1\]"):
        vp.score_from_velocity(1.5, x, x)
    with pytest.raises(shape_error, match="t"):
        vp.denoiser_from_score(torch.tensor([0.1, 0.2]), x)
    with pytest.raises(TypeError, match="score"):
        vp.denoiser_from_score(0.5, torch.ones(3, 2, dtype=torch.int64))
    with pytest.raises(TypeError, match="Interpolant"):
        DenoiserFromScore(object(), lambda t, y: y)  # type: ignore[arg-type]


def test_any_trailing_shape() -> None:
    vp = VPInterpolant()
    x = torch.randn(4, 3, 5, 5, dtype=F64)
    b = torch.randn_like(x)
    t = torch.rand(4, dtype=F64) * 0.9 + 0.05
    s = vp.score_from_velocity(t, x, b)
    assert s.shape == x.shape
    _close(vp.velocity_from_score(t, x, s), b)


def test_doctests() -> None:
    import interpolants.fields._convert as convert

    results = [doctest.testmod(m, optionflags=doctest.ELLIPSIS) for m in (fields_module, convert)]
    assert sum(r.attempted for r in results) > 0 and all(r.failed == 0 for r in results)
