"""Contract tests run over every interpolant family × γ schedule."""

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from bank import all_interpolants
from interpolants import (
    BrownianGamma,
    Interpolant,
    LinearInterpolant,
    VelocityObjective,
    _validation,
)
from interpolants.interpolant import (
    CustomGamma,
    CustomInterpolant,
    EncoderDecoderInterpolant,
    MirrorInterpolant,
    NoGamma,
    OneSidedInterpolant,
    SineSquaredGamma,
    TrigonometricInterpolant,
)

INTERPOLANTS = all_interpolants()
IDS = list(INTERPOLANTS)
SHAPES = [(7,), (7, 3), (7, 2, 4, 4)]
DTYPES = [torch.float32, torch.float64]


def _pair(interp: Interpolant, shape: tuple[int, ...], dtype: torch.dtype, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    x0, x1, z = (torch.randn(shape, generator=gen, dtype=dtype) for _ in range(3))
    if isinstance(interp, MirrorInterpolant):
        x0 = x1  # the mirror couples the data to itself
    return x0, x1, z


@pytest.mark.parametrize("name", IDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_boundary_values(name: str, dtype: torch.dtype) -> None:
    interp = INTERPOLANTS[name]
    x0, x1, z = _pair(interp, (16, 3), dtype)
    # Exact up to rounding of cos(π/2) ≈ 6e-17 (float64) and the sqrt in γ.
    tol = 1e-6 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(interp.interpolate(0.0, x0, x1, z), x0, atol=tol, rtol=0)
    torch.testing.assert_close(interp.interpolate(1.0, x0, x1, z), x1, atol=tol, rtol=0)
    ends = torch.tensor([0.0, 1.0], dtype=dtype)
    assert torch.all(interp.gamma(ends) == 0)
    if not isinstance(interp, MirrorInterpolant):
        torch.testing.assert_close(
            interp.alpha(ends), ends.new_tensor([1.0, 0.0]), atol=tol, rtol=0
        )
        torch.testing.assert_close(interp.beta(ends), ends.new_tensor([0.0, 1.0]), atol=tol, rtol=0)


def _fd_grid(interp: Interpolant) -> torch.Tensor:
    # Away from the singular ends of √(t(1−t)) (γ''' ~ t^{-5/2}: at t = 0.05 the FD truncation
    # error h²γ'''/6 is ~3e-8 absolute); the encoder–decoder switches branch at t = ½ (C¹ only).
    t = torch.linspace(0.05, 0.95, 37, dtype=torch.float64)
    if isinstance(interp, EncoderDecoderInterpolant):
        t = t[(t - 0.5).abs() > 0.02]
    return t


@pytest.mark.parametrize("name", IDS)
def test_derivatives_match_finite_differences(name: str) -> None:
    interp = INTERPOLANTS[name]
    t = _fd_grid(interp)
    h = 1e-5  # truncation O(h²) ~ 1e-10·|f'''|, rounding O(1e-16/h) ~ 1e-11
    pairs = [
        (interp.alpha, interp.alpha_dot),
        (interp.beta, interp.beta_dot),
        (interp.gamma, interp.gamma_dot),
    ]
    for f, df in pairs:
        fd = (f(t + h) - f(t - h)) / (2 * h)
        exact = df(t)
        err = (fd - exact).abs() / exact.abs().clamp_min(1.0)
        assert float(err.max()) < 1e-6, (f.__name__, float(err.max()))
    torch.testing.assert_close(
        interp.gamma_gamma_dot(t), interp.gamma(t) * interp.gamma_dot(t), rtol=1e-12, atol=1e-12
    )


@pytest.mark.parametrize("name", IDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_no_nan_or_inf_on_a_grid_including_the_ends(name: str, dtype: torch.dtype) -> None:
    interp = INTERPOLANTS[name]
    t = torch.cat(
        [torch.linspace(0, 1, 101, dtype=dtype), torch.tensor([1e-7, 1 - 1e-7], dtype=dtype)]
    )
    c = interp.coefficients(t)
    for field in (
        "alpha",
        "beta",
        "gamma",
        "alpha_dot",
        "beta_dot",
        "gamma_dot",
        "gamma_gamma_dot",
    ):
        value = getattr(c, field)
        assert value.shape == t.shape and value.dtype == dtype
        assert torch.isfinite(value).all(), field
    x0, x1, z = _pair(interp, (t.shape[0], 3), dtype)
    out = interp.sample(t, x0, x1, z)
    for v in (out.xt, out.velocity, out.mean_velocity, out.noise):
        assert torch.isfinite(v).all()


@pytest.mark.parametrize("name", IDS)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES)
def test_shapes_dtypes_and_formula(name: str, shape: tuple[int, ...], dtype: torch.dtype) -> None:
    interp = INTERPOLANTS[name]
    x0, x1, z = _pair(interp, shape, dtype, seed=1)
    t = torch.rand(shape[0], generator=torch.Generator().manual_seed(2), dtype=dtype)
    out = interp.sample(t, x0, x1, z)
    for v in (out.xt, out.velocity, out.mean_velocity, out.noise):
        assert v.shape == shape and v.dtype == dtype and v.device == x0.device
    c = interp.coefficients(t)
    view = (-1,) + (1,) * (len(shape) - 1)
    a, b, g, ad, bd, gd = (
        getattr(c, k).reshape(view)
        for k in ("alpha", "beta", "gamma", "alpha_dot", "beta_dot", "gamma_dot")
    )
    tol = {"rtol": 1e-5, "atol": 1e-5} if dtype == torch.float32 else {"rtol": 1e-12, "atol": 1e-12}
    torch.testing.assert_close(out.xt, a * x0 + b * x1 + g * z, **tol)
    torch.testing.assert_close(out.mean_velocity, ad * x0 + bd * x1, **tol)
    torch.testing.assert_close(out.velocity, ad * x0 + bd * x1 + gd * z, **tol)
    expected_noise = x0 if isinstance(interp, OneSidedInterpolant) else z
    torch.testing.assert_close(out.noise, expected_noise, rtol=0, atol=0)
    # A scalar time gives the same as the same time repeated per sample.
    torch.testing.assert_close(
        interp.interpolate(0.3, x0, x1, z),
        interp.interpolate(torch.full((shape[0],), 0.3, dtype=dtype), x0, x1, z),
        rtol=0,
        atol=0,
    )


@pytest.mark.parametrize("name", IDS)
def test_differentiable_in_states_and_time(name: str) -> None:
    # every family, at times inside (0, 1) away from the encoder-decoder's switch at ½:
    # α̇, β̇ and γ̇ (its own formulas, or its joint schedule) against autograd of α, β and γ
    interp = INTERPOLANTS[name]
    x0, x1, z = (v.requires_grad_() for v in _pair(interp, (5, 2), torch.float64))
    times = [0.07, 0.23, 0.37, 0.64, 0.91]
    t = torch.tensor(times, dtype=torch.float64, requires_grad=True)
    xt = interp.interpolate(t, x0, x1, z)
    grads = torch.autograd.grad(xt.sum(), (x0, x1, z, t), allow_unused=True)
    gx0, gx1, gz, gt = (
        torch.zeros_like(v) if g is None else g for g, v in zip(grads, (x0, x1, z, t))
    )
    c = interp.coefficients(t.detach())
    if x0 is x1:  # the mirror's pair is one batch: its gradient is α + β
        torch.testing.assert_close(gx0, (c.alpha + c.beta)[:, None].expand(5, 2))
    else:
        torch.testing.assert_close(gx0, c.alpha[:, None].expand(5, 2))
        torch.testing.assert_close(gx1, c.beta[:, None].expand(5, 2))
    torch.testing.assert_close(gz, c.gamma[:, None].expand(5, 2))
    # d x_t / dt is the velocity target: the time derivatives are consistent with autograd.
    vel = interp.velocity_target(t.detach(), x0.detach(), x1.detach(), z.detach())
    torch.testing.assert_close(gt, vel.sum(1), rtol=1e-9, atol=1e-9)


def test_bfloat16_interpolation_is_finite_and_close_to_float32() -> None:
    interp = LinearInterpolant(BrownianGamma())
    x0, x1, z = _pair(interp, (64, 8), torch.float32)
    t = torch.linspace(0, 1, 64)
    ref = interp.sample(t, x0, x1, z)
    low = interp.sample(t.bfloat16(), x0.bfloat16(), x1.bfloat16(), z.bfloat16())
    assert low.xt.dtype == torch.bfloat16 and torch.isfinite(low.velocity).all()
    # bf16 has an 8-bit mantissa: relative rounding 2^-8 ≈ 4e-3 per operation, a few operations.
    torch.testing.assert_close(low.xt.float(), ref.xt, rtol=0.05, atol=0.05)


@pytest.mark.cuda
@pytest.mark.parametrize("name", IDS)
def test_cuda_device_preserved(name: str) -> None:
    interp = INTERPOLANTS[name]
    x0, x1, z = (v.cuda() for v in _pair(interp, (8, 3), torch.float32))
    t = torch.rand(8, device="cuda")
    out = interp.sample(t, x0, x1, z)
    cpu = interp.sample(t.cpu(), x0.cpu(), x1.cpu(), z.cpu())
    assert out.xt.device.type == "cuda"
    torch.testing.assert_close(out.velocity.cpu(), cpu.velocity, rtol=1e-5, atol=1e-5)


# --- errors -----------------------------------------------------------------------------------


def test_bad_inputs_give_clear_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    interp = LinearInterpolant(BrownianGamma())
    x = torch.randn(4, 3)
    with pytest.raises(ValueError, match=r"t must lie in \[0, 1\]"):
        interp.interpolate(1.5, x, x, x)
    # a time tensor's values are read by the interpolant only in the checked mode (on in this
    # suite; off by default: no host synchronisation in per-step code); the entry point that
    # receives a caller's times checks them once in either mode
    bad_t = torch.tensor([0.1, 0.2, -0.1, 0.5])
    with pytest.raises(ValueError, match=r"t must lie in \[0, 1\]"):
        interp.interpolate(bad_t, x, x, x)
    monkeypatch.setattr(_validation, "CHECK_VALUES", False)
    assert interp.interpolate(bad_t, x, x, x).shape == x.shape
    monkeypatch.setattr(_validation, "CHECK_VALUES", True)
    with pytest.raises(ValueError, match=r"t must lie in \[0, 1\]"):
        VelocityObjective(interp).loss(lambda t, y: y, x, x, t=bad_t)
    # Shape errors are caught by our checks (ValueError) or, when runtime type checking is on
    # as in this suite, by jaxtyping first (a TypeError naming the parameter).
    with pytest.raises((ValueError, TypeError), match=r"t must have shape|typechecking parameter"):
        interp.interpolate(torch.rand(3), x, x, x)
    with pytest.raises((ValueError, TypeError), match=r"x1 must have the same shape|'x1'"):
        interp.interpolate(0.5, x, torch.randn(4, 2), x)
    with pytest.raises((ValueError, TypeError), match=r"z must have the same shape|'z'"):
        interp.interpolate(0.5, x, x, torch.randn(4))
    with pytest.raises(ValueError, match="z is required"):
        interp.interpolate(0.5, x, x)
    with pytest.raises(TypeError, match=r"x0 must have a floating dtype|parameter 'x0'"):
        interp.interpolate(0.5, torch.ones(4, 3, dtype=torch.int64), x, x)
    with pytest.raises(ValueError, match="γ < 1"):
        TrigonometricInterpolant(SineSquaredGamma(a=1.0))
    with pytest.raises(ValueError, match="non-zero gamma"):
        MirrorInterpolant(NoGamma())
    with pytest.raises(ValueError, match="alpha must equal"):
        CustomInterpolant(lambda t: 1 - t / 2, lambda t: t)
    with pytest.raises(ValueError, match="vanish"):
        CustomGamma(lambda t: t)
    nan = float("nan")
    with pytest.raises(ValueError, match=r"alpha\(t\) must be finite.*t = 0"):
        CustomInterpolant(lambda t: (1 - t) * nan, lambda t: t)
    with pytest.raises(ValueError, match=r"derivative of fn must be finite.*t = 0"):
        CustomGamma(lambda t: torch.sqrt(t * (1 - t)))  # γ̇ = ∞ at the ends: NaN targets
    with pytest.raises(ValueError, match="derivative of beta must be finite"):
        CustomInterpolant(lambda t: 1 - t, lambda t: t.pow(0.5))
    with pytest.raises(TypeError, match="beta must map a tensor of times"):
        CustomInterpolant(lambda t: 1 - t, lambda t: t.numpy())
    with pytest.raises(TypeError, match=r"beta must be a callable|parameter .beta."):
        CustomInterpolant(lambda t: 1 - t, 1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="non-negative"):
        CustomGamma(lambda t: torch.sin(2 * torch.pi * t))
    assert CustomGamma(torch.zeros_like).sup == 0.0  # a constant schedule: γ̇ = 0, no error
    with pytest.raises(ValueError, match="a must be"):
        BrownianGamma(a=-1.0)
    with pytest.raises(TypeError, match="GammaSchedule"):
        LinearInterpolant(gamma=0.5)  # type: ignore[arg-type]


def test_deterministic_interpolant_needs_no_noise() -> None:
    x0, x1 = torch.randn(3, 2), torch.randn(3, 2)
    out = LinearInterpolant().sample(0.25, x0, x1)
    torch.testing.assert_close(out.xt, 0.75 * x0 + 0.25 * x1)
    torch.testing.assert_close(out.velocity, x1 - x0)


def test_brownian_gamma_dot_is_finite_and_documented_at_the_ends() -> None:
    g = BrownianGamma(edge=1e-6)
    t = torch.tensor([0.0, 1.0], dtype=torch.float64)
    expected = (1 - 2 * 1e-6) / (2 * math.sqrt(1e-6 * (1 - 1e-6)))
    torch.testing.assert_close(g.gamma_dot(t), t.new_tensor([expected, -expected]))
    torch.testing.assert_close(g.gamma_gamma_dot(t), t.new_tensor([0.5, -0.5]))


# --- properties ---------------------------------------------------------------------------


@given(
    name=st.sampled_from(IDS),
    batch=st.integers(1, 9),
    trailing=st.lists(st.integers(1, 4), min_size=0, max_size=3),
    tvals=st.lists(st.floats(0.0, 1.0), min_size=9, max_size=9),
    seed=st.integers(0, 2**16),
)
def test_property_shapes_and_endpoint_identities(
    name: str, batch: int, trailing: list[int], tvals: list[float], seed: int
) -> None:
    interp = INTERPOLANTS[name]
    shape = (batch, *trailing)
    x0, x1, z = _pair(interp, shape, torch.float64, seed)
    t = torch.tensor(tvals[:batch], dtype=torch.float64)
    out = interp.sample(t, x0, x1, z)
    assert out.xt.shape == shape and torch.isfinite(out.velocity).all()
    # Where t hits an end, x_t is that end exactly (up to cos(π/2) rounding).
    at0, at1 = t == 0, t == 1
    torch.testing.assert_close(out.xt[at0], x0[at0], atol=1e-12, rtol=0)
    torch.testing.assert_close(out.xt[at1], x1[at1], atol=1e-12, rtol=0)
    # Linearity in the states: doubling (x0, x1, z) doubles x_t and the targets.
    twice = interp.sample(t, 2 * x0, 2 * x1, 2 * z)
    torch.testing.assert_close(twice.xt, 2 * out.xt, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(twice.velocity, 2 * out.velocity, rtol=1e-12, atol=1e-12)


def test_validation_messages_without_runtime_type_checking() -> None:
    """The checks users get when the jaxtyping hook is off name the argument and the shape."""
    from interpolants._validation import as_time, check_floating, check_same_shape

    x = torch.zeros(4, 3)
    with pytest.raises(ValueError, match=r"t must have shape \(\) or \(4,\), got \(3,\)"):
        as_time(torch.rand(3), x)
    with pytest.raises(
        ValueError, match=r"x1 must have the same shape as x0 \(4, 3\), got \(4, 2\)"
    ):
        check_same_shape([("x0", x), ("x1", torch.zeros(4, 2))])
    with pytest.raises(TypeError, match=r"x0 must have a floating dtype, got torch\.int64"):
        check_floating(torch.zeros(2, dtype=torch.int64), "x0")
