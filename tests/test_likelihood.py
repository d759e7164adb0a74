"""Log-likelihood along the ODE (exact and Hutchinson divergence) and bits per dimension."""

import math

import pytest
import torch
from torch import Tensor

import interpolants.nn._mlp as nn_module
from bank import problem
from interpolants import (
    MLP,
    ODE,
    BrownianGamma,
    Dopri5,
    LinearInterpolant,
    log_likelihood,
    time_grid,
)
from interpolants.analytic import ExactInterpolantFields
from interpolants.data import bits_per_dim, dequantize
from interpolants.integrate import (
    RK4,
    DivergenceField,
    ExactDivergence,
    HutchinsonDivergence,
    LikelihoodResult,
    Midpoint,
)
from interpolants.interpolant import VPInterpolant

DT = torch.float64


@pytest.mark.parametrize(
    "interpolant", [LinearInterpolant(BrownianGamma()), VPInterpolant()], ids=repr
)
def test_exact_divergence_matches_analytic_log_density(interpolant: object) -> None:
    base, target = problem(interpolant, DT)  # type: ignore[arg-type]
    exact = ExactInterpolantFields(interpolant, base, target)  # type: ignore[arg-type]
    x = target.sample(32, torch.Generator().manual_seed(0))
    res = log_likelihood(exact.velocity, x, base.log_prob, integrator=Dopri5(rtol=1e-6, atol=1e-6))
    # tolerance 1e-3 nats (the spec): Dopri5 at 1e-6 has a global error ~1e-5 (see the
    # tolerance test), and the exact divergence adds no error of its own
    assert float((res.log_prob - exact.log_prob(1.0, x)).abs().mean()) < 1e-3
    assert torch.allclose(res.log_prob, res.base_log_prob + res.delta_log_prob)
    assert res.base_state.shape == x.shape and res.nfe > 0


def _linear(t: Tensor, x: Tensor) -> Tensor:
    return 0.7 * x


@pytest.mark.parametrize("divergence", [ExactDivergence(), ExactDivergence(chunk_size=3)], ids=repr)
def test_image_shaped_exact_log_det(divergence: ExactDivergence) -> None:
    """b = a·x on (B, C, H, W): X_0 = e^{−a}x and log ρ1(x) = log ρ0(X_0) − a·D exactly."""
    x = torch.randn(3, 2, 2, 2, dtype=DT, generator=torch.Generator().manual_seed(1))

    def base_log_prob(y: Tensor) -> Tensor:
        return -0.5 * y.flatten(1).pow(2).sum(1) - 4 * math.log(2 * math.pi)

    res = log_likelihood(
        _linear,
        x,
        base_log_prob,
        integrator=RK4(),
        grid=time_grid(20, 1.0, 0.0, dtype=DT),
        divergence=divergence,
    )
    expected = base_log_prob(math.exp(-0.7) * x) - 0.7 * 8
    # RK4 with h = 0.05 on ẋ = 0.7x: relative error ~(0.035)⁵/120 ≈ 4e-10
    assert torch.allclose(res.log_prob, expected, atol=1e-7, rtol=0)
    assert res.nfe == 4 * 20


@pytest.mark.parametrize("noise", ["rademacher", "gaussian"])
def test_hutchinson_is_unbiased(noise: str) -> None:
    interpolant = LinearInterpolant(BrownianGamma())
    base, target = problem(interpolant, DT)
    exact = ExactInterpolantFields(interpolant, base, target)
    point = target.sample(1, torch.Generator().manual_seed(2))
    x = point.expand(200, 2).clone()
    grid = time_grid(10, 1.0, 0.0, dtype=DT)
    reference = log_likelihood(exact.velocity, point, base.log_prob, integrator=RK4(), grid=grid)
    est = log_likelihood(
        exact.velocity,
        x,
        base.log_prob,
        integrator=RK4(),
        grid=grid,
        divergence=HutchinsonDivergence(probes=1, noise=noise),  # type: ignore[arg-type]
        generator=torch.Generator().manual_seed(3),
    ).log_prob
    # same integrator and grid: the trajectory does not depend on the probes, so E[estimate]
    # equals the exact-divergence result; 3 standard errors (a 0.3 % two-sided miss rate for
    # a fixed seed, i.e. deterministic once fixed)
    se = float(est.std()) / math.sqrt(est.shape[0])
    assert se > 0, "each row must get its own probe"
    assert abs(float(est.mean()) - float(reference.log_prob[0])) < 3 * se
    # more probes per sample reduce the variance (K = 16: ~4× smaller standard deviation)
    many = log_likelihood(
        exact.velocity,
        x[:50],
        base.log_prob,
        integrator=RK4(),
        grid=grid,
        divergence=HutchinsonDivergence(probes=16, noise=noise),  # type: ignore[arg-type]
        generator=torch.Generator().manual_seed(4),
    ).log_prob
    assert float(many.std()) < 0.5 * float(est.std())


def test_likelihood_input_errors() -> None:
    x = torch.zeros(2, 3, dtype=DT)
    lp = lambda y: torch.zeros(y.shape[0], dtype=DT)  # noqa: E731
    with pytest.raises(ValueError, match="decrease"):
        log_likelihood(_linear, x, lp, grid=time_grid(2, dtype=DT))
    with pytest.raises(ValueError, match="base_log_prob must return"):
        log_likelihood(_linear, x, lambda y: y, integrator=RK4(), grid=time_grid(2, 1.0, 0.0))
    with pytest.raises(TypeError, match="integrator"):
        log_likelihood(_linear, x, lp, integrator="rk4")  # type: ignore[arg-type]
    with pytest.raises((ValueError, TypeError), match="probes"):
        HutchinsonDivergence(probes=0)
    with pytest.raises((ValueError, TypeError), match="noise"):
        HutchinsonDivergence(noise="uniform")  # type: ignore[arg-type]


def test_bits_per_dim_offsets() -> None:
    zero = torch.zeros(2, dtype=DT)
    # density 1 on [0, 1)^D: 8 bits ; on [−1, 1)^D the density 2^−D gives
    # −log p = D ln 2, i.e. 1 bit, plus the 7-bit offset of a = 2/256: 8 bits again
    assert torch.allclose(bits_per_dim(zero, 10), torch.full((2,), 8.0, dtype=DT))
    assert torch.allclose(bits_per_dim(zero, 10, low=-1.0), torch.full((2,), 7.0, dtype=DT))
    half = torch.full((2,), -10 * math.log(2.0), dtype=DT)
    assert torch.allclose(bits_per_dim(half, 10, low=-1.0), torch.full((2,), 8.0, dtype=DT))
    with pytest.raises((ValueError, TypeError), match="dims"):
        bits_per_dim(zero, 0)


def test_dequantize() -> None:
    x = torch.randint(0, 256, (64, 3, 4, 4), generator=torch.Generator().manual_seed(5))
    y = dequantize(x, low=-1.0, high=1.0, generator=torch.Generator().manual_seed(6), dtype=DT)
    assert y.dtype == DT and y.shape == x.shape
    assert bool((y >= -1).all()) and bool((y < 1).all())
    # y = low + (x + u)·a with u ∈ [0, 1): the level is recovered by flooring
    assert torch.equal(torch.floor((y + 1) * 128).long(), x)
    u = (y + 1) * 128 - x
    assert abs(float(u.mean()) - 0.5) < 0.02  # 3072 uniforms: sd of the mean ≈ 0.005
    with pytest.raises(ValueError, match="integers"):
        dequantize(torch.tensor([[256]]))
    with pytest.raises(ValueError, match="integers"):
        dequantize(torch.tensor([[0.5]]))


# depth 1 and 2 fold every direction into one vector / matrix; from depth 3 the directions go
# in blocks of max(1, _FOLD_ENTRIES // hidden²): all 5 at once, or 1 + 1 + 1 + 1 + 1 (576 and,
# through the clamp, 100), or 2 + 2 + 1 (1152); depth 5 crosses two inner layers
@pytest.mark.parametrize(
    ("depth", "fold_entries"),
    [(1, None), (2, None), (3, None), (4, None), (5, None), (3, 576), (4, 1152), (5, 100)],
)
@pytest.mark.parametrize("num_classes", [None, 3])
def test_mlp_forward_mode_divergence_equals_autograd(
    num_classes: int | None, depth: int, fold_entries: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    if fold_entries is not None:
        monkeypatch.setattr(nn_module, "_FOLD_ENTRIES", fold_entries)
    torch.manual_seed(0)
    net = MLP(5, hidden=24, depth=depth, num_classes=num_classes).double()
    x = torch.randn(11, 5, dtype=torch.float64)
    cond = None if num_classes is None else torch.randint(0, num_classes + 1, (11,))
    for t in (torch.rand(11, dtype=torch.float64), torch.tensor(0.3, dtype=torch.float64)):
        jac = torch.func.vmap(
            torch.func.jacrev(lambda xi, ti, ci: net(ti[None], xi[None], ci)[0]),
            in_dims=(0, 0, None if cond is None else 0),
        )(x, t.expand(11), None if cond is None else cond[:, None])
        want = jac.diagonal(dim1=1, dim2=2).sum(-1)
        for chunk in (None, 1, 4, 128):  # default; blocks that divide the batch, do not, exceed it
            out, div = net.forward_and_divergence(t, x, cond, chunk_size=chunk)
            torch.testing.assert_close(out, net(t, x, cond), atol=1e-12, rtol=0)
            torch.testing.assert_close(div, want, atol=1e-10, rtol=0)
    with pytest.raises(ValueError, match="chunk_size"):
        net.forward_and_divergence(t, x, cond, chunk_size=0)


def test_log_likelihood_uses_the_fields_own_divergence() -> None:
    torch.manual_seed(1)
    net = MLP(3, hidden=16, depth=2).double()
    x = torch.randn(9, 3, dtype=torch.float64)
    base = torch.distributions.Normal(torch.zeros((), dtype=torch.float64), 1.0)

    def run(structured: bool) -> LikelihoodResult:
        return log_likelihood(
            net,
            x,
            lambda y: base.log_prob(y).sum(-1),
            integrator=Midpoint(),
            grid=time_grid(8, 1.0, 0.0, dtype=torch.float64),
            divergence=ExactDivergence(structured=structured),
        )

    fast, slow = run(True), run(False)
    assert isinstance(net, DivergenceField) and fast.nfe == slow.nfe == 16
    torch.testing.assert_close(fast.log_prob, slow.log_prob, atol=1e-10, rtol=0)
    torch.testing.assert_close(fast.base_state, slow.base_state, atol=1e-12, rtol=0)


class _CountingField:
    """b(t, x) = tanh(x) · (1 + t) with its exact divergence; counts divergence calls."""

    def __init__(self) -> None:
        self.divergences = 0

    def __call__(self, t: Tensor, x: Tensor) -> Tensor:
        return torch.tanh(x) * (1 + torch.as_tensor(t, dtype=x.dtype).reshape(-1, 1))

    def forward_and_divergence(self, t: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
        self.divergences += 1
        scale = 1 + torch.as_tensor(t, dtype=x.dtype).reshape(-1, 1)
        return torch.tanh(x) * scale, ((1 - torch.tanh(x) ** 2) * scale).sum(1)


@pytest.mark.parametrize("structured", [True, False])
@pytest.mark.parametrize("integrator", [Midpoint(), Dopri5(rtol=1e-6, atol=1e-8)], ids=repr)
def test_stages_without_weight_skip_the_divergence(
    integrator: object, structured: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the midpoint rule's first stage and Dopri5's second have weight 0 in the update (and the
    # error estimate): the divergence there is never used, so it is not computed; the result
    # is the same as with every stage in full
    import interpolants.integrate._likelihood as module

    x = torch.randn(7, 3, generator=torch.Generator().manual_seed(2), dtype=DT)
    base = torch.distributions.Normal(torch.zeros((), dtype=DT), 1.0)

    def run() -> tuple[LikelihoodResult, int]:
        field = _CountingField()
        res = log_likelihood(
            field,
            x,
            lambda y: base.log_prob(y).sum(-1),
            integrator=integrator,  # type: ignore[arg-type]
            grid=time_grid(6, 1.0, 0.0, dtype=DT) if isinstance(integrator, Midpoint) else None,
            divergence=ExactDivergence(structured=structured),
        )
        return res, field.divergences

    skipping, used = run()
    monkeypatch.setattr(module, "ODE", lambda velocity, partial=None: ODE(velocity))
    full, used_full = run()
    assert skipping.nfe == full.nfe
    assert torch.equal(skipping.log_prob, full.log_prob)
    assert torch.equal(skipping.base_state, full.base_state)
    if structured:  # one stage in 2 (midpoint) or in 6 new ones (Dopri5) without divergence
        stages = 2 if isinstance(integrator, Midpoint) else 6
        assert used_full == full.nfe and used == full.nfe - full.nfe // stages


def test_fields_that_change_the_mlp_output_are_differentiated() -> None:
    torch.manual_seed(2)
    x = torch.randn(6, 2, dtype=torch.float64)
    base = torch.distributions.Normal(torch.zeros((), dtype=torch.float64), 1.0)

    class Doubled(MLP):  # type: ignore[misc]  # overrides forward, inherits the divergence
        def forward(self, t: Tensor, x: Tensor, condition: Tensor | None = None) -> Tensor:
            return 2 * MLP.forward(self, t, x, condition)

    def run(field: object, structured: bool) -> torch.Tensor:
        return log_likelihood(
            field,  # type: ignore[arg-type]
            x,
            lambda y: base.log_prob(y).sum(-1),
            integrator=Midpoint(),
            grid=time_grid(6, 1.0, 0.0, dtype=torch.float64),
            divergence=ExactDivergence(structured=structured),
        ).log_prob

    sub = type(
        "Doubled", (MLP,), {"forward": lambda self, t, x, c=None: 2 * MLP.forward(self, t, x, c)}
    )
    net = sub(2, hidden=16, depth=2).double()
    torch.testing.assert_close(run(net, True), run(net, False), atol=1e-10, rtol=0)
    hooked = MLP(2, hidden=16, depth=2).double()
    hooked.net[0].register_forward_hook(lambda m, i, o: 0.5 * o)
    torch.testing.assert_close(run(hooked, True), run(hooked, False), atol=1e-10, rtol=0)
    plain = MLP(2, hidden=16, depth=2).double()  # control: the fast path is taken and agrees
    torch.testing.assert_close(run(plain, True), run(plain, False), atol=1e-10, rtol=0)
