"""Field conversions and SDE drifts, checked on the exact Gaussian-mixture test bed.

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
from interpolants import (
    BrownianGamma,
    ExactInterpolantFields,
    GaussianMixture,
    LinearInterpolant,
    OneSidedLinearInterpolant,
    TrigonometricInterpolant,
    VPInterpolant,
)
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
    denoiser_from_score,
    denoiser_from_velocity,
    score_from_denoiser,
    score_from_velocity,
    sde_drift,
    target_from_velocity,
    velocity_from_denoiser,
    velocity_from_mean_and_denoiser,
    velocity_from_mean_and_score,
    velocity_from_score,
    velocity_from_target,
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
    _close(score_from_velocity(interpolant, t, x, b), s)
    _close(velocity_from_score(interpolant, t, x, s), b)
    _close(denoiser_from_velocity(interpolant, t, x, b), eta)
    _close(velocity_from_denoiser(interpolant, t, x, eta), b)
    _close(velocity_from_score(interpolant, t, x, score_from_velocity(interpolant, t, x, b)), b)
    _close(score_from_denoiser(interpolant, t, denoiser_from_score(interpolant, t, s)), s)
    _close(score_from_denoiser(interpolant, t, eta), s)
    x1_hat = target_from_velocity(interpolant, t, x, b)
    # E[x1 | x_t] satisfies x = α η0 + β η1 with η0 = η_z
    c = interpolant.coefficients(t)
    _close(c.alpha[:, None] * eta + c.beta[:, None] * x1_hat, x)
    _close(velocity_from_target(interpolant, t, x, x1_hat), b)
    # one-sided: v = b, so the split recombination is the identity
    _close(velocity_from_mean_and_score(interpolant, t, b, s), b)


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
    _close(velocity_from_mean_and_denoiser(interpolant, t, v, eta), b)
    _close(velocity_from_mean_and_score(interpolant, t, v, s), b)
    _close(score_from_denoiser(interpolant, t, denoiser_from_score(interpolant, t, s)), s)
    _close(denoiser_from_score(interpolant, t, s), eta)


def test_split_recombination_is_finite_and_exact_at_the_ends() -> None:
    interpolant = LinearInterpolant(BrownianGamma())
    exact = ExactInterpolantFields(interpolant, _two_sided_base(), _target())
    _, x = _points(16)
    for end in (0.0, 1.0):
        t = torch.full((16,), end, dtype=F64)
        b, v, s = exact.velocity(t, x), exact.mean_velocity(t, x), exact.score(t, x)
        _close(velocity_from_mean_and_score(interpolant, t, v, s), b)
    # the one-sided η_z from b divides by αβ̇ − α̇β only: finite on all of [0, 1]
    vp = VPInterpolant()
    exact_vp = ExactInterpolantFields(vp, GaussianMixture.standard_normal(2, dtype=F64), _target())
    for end in (0.0, 1.0):
        t = torch.full((16,), end, dtype=F64)
        _close(denoiser_from_velocity(vp, t, x, exact_vp.velocity(t, x)), exact_vp.denoiser(t, x))


def test_combinators_match_the_functions() -> None:
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
    interpolant = LinearInterpolant(BrownianGamma())
    exact = ExactInterpolantFields(interpolant, _two_sided_base(), _target())
    t, x = _points(32, seed=2)
    sign = 1.0 if direction == "forward" else -1.0
    drift = sde_drift(exact.velocity, exact.score, lambda tt: torch.full_like(tt, 0.7), direction)  # type: ignore[arg-type]
    _close(drift(t, x), exact.drift(t, x, sign * 0.7))
    # a scalar ε(t) broadcasts as well, and ε varying with t is applied per sample
    scalar = sde_drift(
        exact.velocity, exact.score, lambda tt: torch.tensor(0.7, dtype=F64), direction
    )  # type: ignore[arg-type]
    _close(scalar(t, x), exact.drift(t, x, sign * 0.7))
    varying = sde_drift(exact.velocity, exact.score, lambda tt: tt, direction)  # type: ignore[arg-type]
    expected = exact.velocity(t, x) + sign * t[:, None] * exact.score(t, x)
    _close(varying(t, x), expected)
    with pytest.raises((ValueError, TypeError), match="direction"):
        sde_drift(exact.velocity, exact.score, lambda tt: tt, "sideways")  # type: ignore[arg-type]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_singular_points_raise(dtype: torch.dtype) -> None:
    vp, two = VPInterpolant(), LinearInterpolant(BrownianGamma())
    x = torch.ones(3, 2, dtype=dtype)
    t1, t0 = torch.tensor([0.5, 1.0, 0.2], dtype=dtype), torch.tensor([0.5, 0.0, 0.2], dtype=dtype)
    with pytest.raises(ValueError, match=r"score from velocity.*singular at t = \[1.0\]"):
        score_from_velocity(vp, t1, x, x)
    with pytest.raises(ValueError, match=r"velocity from score.*singular"):
        velocity_from_score(vp, t0, x, x)
    with pytest.raises(ValueError, match=r"velocity from denoiser.*singular"):
        velocity_from_denoiser(vp, t0, x, x)
    with pytest.raises(ValueError, match=r"velocity from target.*singular"):
        velocity_from_target(vp, t1, x, x)
    with pytest.raises(ValueError, match=r"score from denoiser.*singular"):
        score_from_denoiser(two, t0, x)
    with pytest.raises(ValueError, match=r"score from denoiser.*singular"):
        score_from_denoiser(vp, t1, x)
    with pytest.raises(ValueError, match=r"score from velocity.*singular"):
        ScoreFromVelocity(vp, lambda t, y: y)(t1, x)
    with pytest.raises(ValueError, match=r"score from denoiser.*singular"):
        ScoreFromDenoiser(LinearInterpolant(), lambda t, y: y)(t0, x)  # γ ≡ 0 everywhere
    # the conversions that are finite everywhere stay finite at both ends
    ends = torch.tensor([0.0, 1.0, 0.0], dtype=dtype)
    for value in (
        denoiser_from_velocity(vp, ends, x, x),
        denoiser_from_score(two, ends, x),
        velocity_from_mean_and_score(two, ends, x, x),
        velocity_from_mean_and_denoiser(two, ends, x, x),
        target_from_velocity(vp, ends, x, x),
    ):
        assert torch.isfinite(value).all()


def test_bad_input_raises() -> None:
    vp, two = VPInterpolant(), LinearInterpolant(BrownianGamma())
    x = torch.ones(3, 2)
    with pytest.raises(TypeError, match="OneSidedInterpolant"):
        score_from_velocity(two, 0.5, x, x)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="OneSidedInterpolant"):
        VelocityFromScore(two, lambda t, y: y)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="deterministic"):
        velocity_from_target(two, 0.5, x, x)
    with pytest.raises(TypeError, match="deterministic"):
        TargetFromVelocity(two, lambda t, y: y)
    # under runtime type checking the shape mismatch is caught first, as a TypeCheckError
    shape_error = (ValueError, TypeError)
    with pytest.raises(shape_error, match="velocity"):
        score_from_velocity(vp, 0.5, x, torch.ones(3, 3))
    with pytest.raises(ValueError, match=r"t must lie in \[0, 1\]"):
        score_from_velocity(vp, 1.5, x, x)
    with pytest.raises(ValueError, match=r"t must lie in \[0, 1\]"):
        denoiser_from_score(vp, torch.tensor([0.1, -0.2, 0.3]), x)
    with pytest.raises(shape_error, match="t"):
        denoiser_from_score(vp, torch.tensor([0.1, 0.2]), x)
    with pytest.raises(TypeError, match="score"):
        denoiser_from_score(vp, 0.5, torch.ones(3, 2, dtype=torch.int64))
    with pytest.raises(TypeError, match="Interpolant"):
        DenoiserFromScore(object(), lambda t, y: y)  # type: ignore[arg-type]


def test_any_trailing_shape() -> None:
    vp = VPInterpolant()
    x = torch.randn(4, 3, 5, 5, dtype=F64)
    b = torch.randn_like(x)
    t = torch.rand(4, dtype=F64) * 0.9 + 0.05
    s = score_from_velocity(vp, t, x, b)
    assert s.shape == x.shape
    _close(velocity_from_score(vp, t, x, s), b)


def test_doctests() -> None:
    import interpolants.fields.combinators as combinators
    import interpolants.fields.convert as convert
    import interpolants.fields.drift as drift

    results = [
        doctest.testmod(m, optionflags=doctest.ELLIPSIS)
        for m in (fields_module, convert, combinators, drift)
    ]
    assert sum(r.attempted for r in results) > 0 and all(r.failed == 0 for r in results)
