"""Contract tests that cannot miss a class: every concrete public interpolant, γ schedule,
objective, time sampler, converted field and kind of dynamics (discovered from the
``__all__`` lists) is pickled and unpickled to an equal object, has a ``repr`` naming its
class, and keeps its contract. Integrators, couplings, diffusions and divergence estimators
have theirs in test_integrate_contract.py and test_coupling.py."""

import inspect
import math
import pickle
from collections.abc import Callable

import pytest
import torch
from torch import Tensor

from bank import all_interpolants
from contracts import average_of, concrete_subclasses, instances
from interpolants import (
    ODE,
    SDE,
    BrownianGamma,
    Interpolant,
    LinearInterpolant,
    Objective,
    time_grid,
)
from interpolants.fields import ConvertedField
from interpolants.integrate import Dynamics, FlowMap, FlowMapSteps, Heun
from interpolants.interpolant import (
    CustomGamma,
    GammaSchedule,
    MirrorInterpolant,
    VPInterpolant,
)
from interpolants.objective import (
    BetaTime,
    DensityTime,
    ImportanceWeighted,
    InverseCDFTime,
    MeanFlowObjective,
    TimeSampler,
)

INTERPOLANTS = all_interpolants()


def test_the_bank_holds_every_public_interpolant_family() -> None:
    assert {type(i) for i in INTERPOLANTS.values()} == set(concrete_subclasses(Interpolant))


@pytest.mark.parametrize("name", INTERPOLANTS)
def test_interpolants_pickle_and_repr(name: str) -> None:
    interp = INTERPOLANTS[name]
    again = pickle.loads(pickle.dumps(interp))
    assert type(again) is type(interp) and repr(again) == repr(interp)
    assert repr(interp).startswith(type(interp).__name__ + "(")
    t = torch.linspace(0, 1, 11, dtype=torch.float64)
    c, c2 = interp.coefficients(t), again.coefficients(t)
    for name in FIELDS:
        assert torch.equal(getattr(c, name), getattr(c2, name)), name
        assert getattr(c, name).shape == t.shape, name
    # constant rates, where a family declares them, are its α̇ and β̇
    if interp.constant_rates is not None:
        ad, bd = interp.constant_rates
        assert torch.equal(c.alpha_dot, torch.full_like(t, ad))
        assert torch.equal(c.beta_dot, torch.full_like(t, bd))
    if interp.constant_weights is not None:  # likewise constant weights, α and β
        a, b = interp.constant_weights
        assert torch.equal(interp.alpha(t), torch.full_like(t, a))
        assert torch.equal(interp.beta(t), torch.full_like(t, b))
    # the joint schedule (one call for the four values) agrees with the four methods, to the
    # rounding of the shared terms (a few ulps of the values, which are O(1) or O(γ̇/γ)), and
    # the coefficients of a sample equal those of the methods at the same rounding
    methods = (interp.alpha, interp.beta, interp.alpha_dot, interp.beta_dot)
    for joint, method, name in zip(interp.schedule(t), methods, FIELDS[:2] + FIELDS[3:5]):
        torch.testing.assert_close(joint, method(t), rtol=1e-14, atol=1e-14, msg=name)
        torch.testing.assert_close(getattr(c, name), method(t), rtol=1e-14, atol=1e-14)


FIELDS = (
    "alpha",
    "beta",
    "gamma",
    "alpha_dot",
    "beta_dot",
    "gamma_dot",
    "gamma_gamma_dot",
    "noise_scale",
    "determinant",
)


def _sqrt_inverse_cdf(u: Tensor) -> Tensor:
    return torch.sqrt(u)


def _linear_density(t: Tensor) -> Tensor:
    return 2 * t


def _sine_squared(t: Tensor) -> Tensor:
    return torch.sin(math.pi * t) ** 2


GAMMA_TABLE: dict[type, Callable[[], list[GammaSchedule]]] = {
    CustomGamma: lambda: [CustomGamma(_sine_squared)],
}
SAMPLER_TABLE: dict[type, Callable[[], list[TimeSampler]]] = {
    BetaTime: lambda: [BetaTime(2.0, 0.7)],
    InverseCDFTime: lambda: [InverseCDFTime(_sqrt_inverse_cdf, _linear_density)],
    ImportanceWeighted: lambda: [ImportanceWeighted(BetaTime(0.8, 0.8))],
    DensityTime: lambda: [DensityTime(_linear_density, cells=512)],
}


@pytest.mark.parametrize("name,make", instances(concrete_subclasses(GammaSchedule), GAMMA_TABLE))
def test_gamma_schedules_keep_their_contract(name: str, make: Callable[[], GammaSchedule]) -> None:
    g = make()
    again = pickle.loads(pickle.dumps(g))
    assert repr(again) == repr(g) and repr(g).startswith(type(g).__name__ + "(")
    t = torch.linspace(0, 1, 101, dtype=torch.float64)
    values, dots, products = g.gamma(t), g.gamma_dot(t), g.gamma_gamma_dot(t)
    assert torch.equal(again.gamma(t), values)
    assert float(values[0].abs()) <= 1e-12 and float(values[-1].abs()) <= 1e-12
    assert bool((values >= 0).all())
    assert bool(torch.isfinite(dots).all() & torch.isfinite(products).all())
    assert float(values.max()) <= g.sup + 1e-12
    inner = slice(10, 91)  # γγ̇ is the product away from singular ends
    torch.testing.assert_close(products[inner], (values * dots)[inner], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name,make", instances(concrete_subclasses(TimeSampler), SAMPLER_TABLE))
def test_time_samplers_keep_their_contract(name: str, make: Callable[[], TimeSampler]) -> None:
    sampler = make()
    again = pickle.loads(pickle.dumps(sampler))
    assert repr(again) == repr(sampler) and repr(sampler).startswith(type(sampler).__name__)
    t = sampler.sample(500, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    same = again.sample(500, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert torch.equal(t, same) and t.shape == (500,) and t.dtype == torch.float64
    assert bool(((t >= 0) & (t <= 1)).all())
    w = sampler.weight(t)
    assert w.shape == t.shape and bool((w > 0).all() & torch.isfinite(w).all())
    # the density integrates to one (midpoint rule on 10⁴ cells; ≤ 1 % for the end spikes)
    grid = (torch.arange(10_000, dtype=torch.float64) + 0.5) / 10_000
    assert abs(float(sampler.density(grid).mean()) - 1.0) < 0.01


def _objectives() -> list[tuple[str, Callable[[], Objective]]]:
    two = LinearInterpolant(BrownianGamma())
    table: dict[type, Callable[[], list[Objective]]] = {
        cls: (lambda cls=cls: [cls(two), cls(VPInterpolant(), antithetic=True)])
        for cls in concrete_subclasses(Objective)
    }
    return instances(concrete_subclasses(Objective), table)


def _model(split: bool) -> Callable[[Tensor, Tensor], object]:
    def model(t: Tensor, x: Tensor) -> object:
        out = torch.tanh(x) * (1 + t[:, None])
        return (out, -out) if split else out

    return model


@pytest.mark.parametrize("name,make", _objectives())
def test_objectives_keep_their_contract(name: str, make: Callable[[], Objective]) -> None:
    objective = make()
    again = pickle.loads(pickle.dumps(objective))
    assert repr(again) == repr(objective) and repr(objective).startswith(type(objective).__name__)
    gen = torch.Generator().manual_seed(0)
    x0, x1 = torch.randn(32, 2, generator=gen), torch.randn(32, 2, generator=gen)
    model = _model("Split" in type(objective).__name__)
    if isinstance(objective, MeanFlowObjective):  # the model of a flow map: u(t, r, x)
        model = average_of(model)  # type: ignore[arg-type]
    losses = objective.per_sample_loss(model, x0, x1, generator=torch.Generator().manual_seed(1))
    same = again.per_sample_loss(model, x0, x1, generator=torch.Generator().manual_seed(1))
    assert losses.shape == (32,) and bool(torch.isfinite(losses).all())
    assert torch.equal(losses, same)
    assert torch.allclose(
        objective.loss(model, x0, x1, generator=torch.Generator().manual_seed(1)), losses.mean()
    )


def _tanh_field(t: Tensor, x: Tensor) -> Tensor:
    return torch.tanh(x) * (1 + t.reshape(-1, *[1] * (x.ndim - 1)))


def _tanh_average(t: Tensor, r: Tensor, x: Tensor) -> Tensor:
    return _tanh_field(t, x) * (1 + (r - t).reshape(-1, *[1] * (x.ndim - 1)))


def _split_field(t: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
    return torch.tanh(x), -x


def _fields() -> list[tuple[str, Callable[[], ConvertedField]]]:
    def build(cls: type[ConvertedField]) -> list[ConvertedField]:
        names = [p for p in inspect.signature(cls).parameters if p != "interpolant"]
        if cls.__name__ == "VelocityFromSplit":
            return [cls(LinearInterpolant(BrownianGamma()), _split_field)]  # type: ignore[call-arg]
        for interp in (VPInterpolant(), LinearInterpolant(BrownianGamma()), LinearInterpolant()):
            try:
                return [cls(interp, *[_tanh_field] * len(names))]  # type: ignore[call-arg]
            except TypeError:
                continue
        raise AssertionError(f"no interpolant accepts {cls.__name__}")

    classes = concrete_subclasses(ConvertedField)
    return instances(classes, {cls: (lambda cls=cls: build(cls)) for cls in classes})


@pytest.mark.parametrize("name,make", _fields())
def test_converted_fields_are_fields(name: str, make: Callable[[], ConvertedField]) -> None:
    f = make()
    again = pickle.loads(pickle.dumps(f))
    assert repr(again) == repr(f) and repr(f).startswith(type(f).__name__ + "(")
    t, x = torch.full((5,), 0.4), torch.randn(5, 3, generator=torch.Generator().manual_seed(0))
    out = f(t, x)
    assert out.shape == x.shape and bool(torch.isfinite(out).all())
    assert torch.equal(again(t, x), out)
    # a time shared by the batch (a stride-0 view, as the integrators pass it) gives the same
    assert torch.equal(f(torch.tensor(0.4).expand(5), x), out)


def _dynamics() -> list[tuple[str, Callable[[], Dynamics]]]:
    table: dict[type, Callable[[], list[Dynamics]]] = {
        ODE: lambda: [ODE(_tanh_field), ODE(_tanh_field, partial=_tanh_field)],
        SDE: lambda: [SDE(_tanh_field, _tanh_field, 0.5, final_ode_step=False)],
        FlowMap: lambda: [FlowMap(_tanh_average)],
    }
    return instances(concrete_subclasses(Dynamics), table)


@pytest.mark.parametrize("name,make", _dynamics())
def test_dynamics_pickle_and_repr(name: str, make: Callable[[], Dynamics]) -> None:
    dynamics = make()
    again = pickle.loads(pickle.dumps(dynamics))
    assert repr(again) == repr(dynamics) and repr(dynamics).startswith(type(dynamics).__name__)
    x = torch.randn(6, 2, generator=torch.Generator().manual_seed(0))
    method = FlowMapSteps() if isinstance(dynamics, FlowMap) else Heun()
    run = lambda d: method.integrate(d, x, time_grid(4), generator=torch.Generator().manual_seed(1))  # noqa: E731
    assert torch.equal(run(again).state, run(dynamics).state)


def test_mirror_is_discovered_with_a_noise() -> None:
    assert any(isinstance(i, MirrorInterpolant) for i in INTERPOLANTS.values())


def test_a_subclass_overriding_the_methods_drops_the_inherited_shortcuts() -> None:
    """The joint schedule and the declared constants stand for the methods of the class that
    defines them: a subclass that overrides those methods but inherits the shortcut must not
    get it (its coefficients and samples follow its own methods)."""
    from interpolants.interpolant import VPInterpolant as VP

    class SlowerVP(VP):  # type: ignore[misc]  # a downstream subclass of a final family
        def alpha(self, t: Tensor) -> Tensor:
            return torch.cos(math.pi * t / 2) ** 2

        def alpha_dot(self, t: Tensor) -> Tensor:
            return -math.pi * torch.cos(math.pi * t / 2) * torch.sin(math.pi * t / 2)

    class Rescaled(LinearInterpolant):  # type: ignore[misc]
        def beta_dot(self, t: Tensor) -> Tensor:
            return 2 * t

        def beta(self, t: Tensor) -> Tensor:
            return t**2

    class ShiftedMirror(MirrorInterpolant):  # type: ignore[misc]
        def beta(self, t: Tensor) -> Tensor:
            return 1 + t * (1 - t)

        def beta_dot(self, t: Tensor) -> Tensor:
            return 1 - 2 * t

    assert VP._joint_schedule and not SlowerVP._joint_schedule
    assert LinearInterpolant.constant_rates == (-1.0, 1.0) and Rescaled.constant_rates is None
    assert MirrorInterpolant.constant_weights == (0.0, 1.0)
    assert ShiftedMirror.constant_weights is None and ShiftedMirror.constant_rates is None
    t = torch.tensor([0.25, 0.5], dtype=torch.float64)
    x0, x1, z = (torch.randn(2, 3, dtype=torch.float64) for _ in range(3))
    for interp in (SlowerVP(), Rescaled(), ShiftedMirror(BrownianGamma())):
        c = interp.coefficients(t)
        for name in ("alpha", "beta", "alpha_dot", "beta_dot"):
            torch.testing.assert_close(getattr(c, name), getattr(interp, name)(t), rtol=0, atol=0)
        s = interp.sample(t, x0, x1, z if interp.is_stochastic else None)
        a, b = interp.alpha(t)[:, None], interp.beta(t)[:, None]
        ad, bd = interp.alpha_dot(t)[:, None], interp.beta_dot(t)[:, None]
        g, gd = interp.gamma(t)[:, None], interp.gamma_dot(t)[:, None]
        torch.testing.assert_close(s.xt, a * x0 + b * x1 + g * z)
        torch.testing.assert_close(s.velocity, ad * x0 + bd * x1 + gd * z)
