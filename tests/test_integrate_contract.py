"""Contract tests over every integrator (discovered): shapes, dtypes, trajectories, NFE, the
dynamics each supports, errors, pickling and repr."""

import pickle
import re
from collections.abc import Callable

import pytest
import torch
from torch import Tensor

from contracts import concrete_subclasses, instances
from interpolants import ODE, SDE, Dopri5, Euler, Integrator, time_grid
from interpolants.integrate import (
    ConstantDiffusion,
    CustomDiffusion,
    Diffusion,
    DivergenceEstimator,
    FixedStepIntegrator,
    FlowMap,
    Heun,
    Problem,
    Tableau,
    TorchSDEIntegrator,
)

TABLE: dict[type, Callable[[], list[Integrator]]] = {
    Dopri5: lambda: [Dopri5(rtol=1e-4, atol=1e-4)],
    TorchSDEIntegrator: lambda: [TorchSDEIntegrator(m) for m in ("euler", "heun", "midpoint")],
}
ALL = instances(concrete_subclasses(Integrator), TABLE)
ODE_INTEGRATORS = {k: f for k, f in ALL if f().supports(ODE(lambda t, x: x))}
SDE_INTEGRATORS = {k: f for k, f in ALL if f().supports(SDE(lambda t, x: x, lambda t, x: x, 1.0))}
SHAPES = [(5, 3), (4, 2, 3, 3)]
DTYPES = [torch.float32, torch.float64]


def _dynamics(integrator: Integrator, velocity: Callable, score: Callable, eps: float = 0.5):  # type: ignore[no-untyped-def, type-arg]
    """The velocity as dynamics the integrator supports: an ODE, else an SDE (with ``score``
    and ε), else a flow map whose average velocity is the velocity at the jump's start."""
    if integrator.supports(ODE(velocity)):
        return ODE(velocity)
    if integrator.supports(SDE(velocity, score, eps)):
        return SDE(velocity, score, eps)
    return FlowMap(lambda t, r, x: velocity(t, x))


def test_discovery_finds_the_library_integrators() -> None:
    names = {k.split("-")[0] for k in ODE_INTEGRATORS} | {k.split("-")[0] for k in SDE_INTEGRATORS}
    assert {"Euler", "Heun", "Midpoint", "RK4", "Dopri5", "TorchSDEIntegrator"} <= names
    # every fixed-step rule steps SDEs too; the adaptive one and torchsde do not share both
    assert {"Euler", "Heun", "Midpoint", "RK4"} <= {k.split("-")[0] for k in SDE_INTEGRATORS}
    assert "Dopri5-0" not in SDE_INTEGRATORS and "TorchSDEIntegrator-0" not in ODE_INTEGRATORS


class Recorder:
    """A field b(t, x) = −(1 + t)·x that records the time tensors it is called with."""

    def __init__(self, scale: float = 1.0) -> None:
        self.times: list[Tensor] = []
        self.calls = 0
        self.scale = scale

    def __call__(self, t: Tensor, x: Tensor) -> Tensor:
        self.times.append(t)
        self.calls += 1
        return -self.scale * (1 + t.reshape(-1, *[1] * (x.ndim - 1))) * x


def _check_times(rec: Recorder, x: Tensor) -> None:
    assert rec.times, "the field was never called"
    for t in rec.times:
        assert t.shape == (x.shape[0],) and t.dtype == x.dtype and t.device == x.device
        assert bool((t == t[0]).all()), "all samples of one call share a time"
        # ... as one expanded value, so a network may embed it once (interpolants.MLP does)
        assert t.shape[0] == 1 or t.stride(0) == 0


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", ODE_INTEGRATORS)
@pytest.mark.parametrize("direction", ["forward", "backward"])
def test_ode_contract(
    name: str, dtype: torch.dtype, shape: tuple[int, ...], direction: str
) -> None:
    integrator = ODE_INTEGRATORS[name]()
    x = torch.randn(shape, dtype=dtype, generator=torch.Generator().manual_seed(0))
    grid = time_grid(6) if direction == "forward" else time_grid(6, 1.0, 0.0)
    rec = Recorder()
    save = grid[[0, 3, 6]]
    sol = integrator.integrate(ODE(rec), x, grid, save_at=save)
    assert sol.state.shape == x.shape and sol.state.dtype == dtype
    assert sol.times is not None and sol.trajectory is not None
    assert torch.equal(sol.times, save.to(dtype))
    assert sol.trajectory.shape == (3, *shape)
    assert torch.equal(sol.trajectory[0], x) and torch.equal(sol.trajectory[-1], sol.state)
    assert sol.nfe == rec.calls
    if isinstance(integrator, FixedStepIntegrator):
        assert sol.nfe == integrator.stages * 6 and sol.steps == 6
    _check_times(rec, x)
    # b = −(1 + t)x has the flow x(t1) = x(t0)·exp(−[(t + t²/2)]_{t0}^{t1}): a sanity check
    # of direction and accuracy (Euler with 6 steps is accurate to ~10%, hence the tolerance)
    t0, t1 = float(grid[0]), float(grid[-1])
    exact = x * torch.exp(torch.tensor(-((t1 + t1**2 / 2) - (t0 + t0**2 / 2)), dtype=dtype))
    assert torch.allclose(sol.state, exact, rtol=0.15, atol=1e-6)
    # a bare field is an ODE
    without = integrator.integrate(Recorder(), x, grid)
    assert without.times is None and without.trajectory is None
    assert torch.equal(without.state, sol.state)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", SDE_INTEGRATORS)
@pytest.mark.parametrize("direction", ["forward", "backward"])
def test_sde_contract(
    name: str, dtype: torch.dtype, shape: tuple[int, ...], direction: str
) -> None:
    integrator = SDE_INTEGRATORS[name]()
    x = torch.randn(shape, dtype=dtype, generator=torch.Generator().manual_seed(0))
    steps = 6
    grid = time_grid(steps) if direction == "forward" else time_grid(steps, 1.0, 0.0)
    velocity, score = Recorder(), Recorder(0.5)
    save = grid[[0, 2, steps]]

    def run(seed: int):  # type: ignore[no-untyped-def]
        return integrator.integrate(
            SDE(velocity, score, 0.3),
            x,
            grid,
            save_at=save,
            generator=torch.Generator().manual_seed(seed),
        )

    sol = run(1)
    assert sol.state.shape == x.shape and sol.state.dtype == dtype
    assert bool(torch.isfinite(sol.state).all())
    assert sol.times is not None and sol.trajectory is not None
    assert torch.equal(sol.times, save.to(dtype)) and sol.trajectory.shape == (3, *shape)
    assert torch.equal(sol.trajectory[0], x) and torch.equal(sol.trajectory[-1], sol.state)
    assert sol.nfe == velocity.calls + score.calls
    if isinstance(integrator, FixedStepIntegrator):
        # N − 1 stochastic steps (b and s at every stage) and one final ODE step (b only)
        stages = integrator.stages
        assert sol.nfe == 2 * stages * (steps - 1) + stages
    _check_times(velocity, x)
    _check_times(score, x)
    # seeded: the same generator seed gives the same samples, another seed different ones
    assert torch.equal(run(1).state, sol.state)
    assert not torch.equal(run(2).state, sol.state)


@pytest.mark.parametrize("name", [k for k in SDE_INTEGRATORS if k in ODE_INTEGRATORS])
def test_sde_skips_score_where_epsilon_vanishes(name: str) -> None:
    integrator = SDE_INTEGRATORS[name]()
    velocity, score = Recorder(), Recorder()
    x = torch.randn(3, 2)
    sol = integrator.integrate(SDE(velocity, score, 0.0), x, time_grid(5))
    assert score.calls == 0 and sol.nfe == velocity.calls
    # with ε ≡ 0 and no noise the SDE step is the deterministic step of the same rule
    ode = integrator.integrate(ODE(Recorder()), x, time_grid(5))
    assert torch.allclose(sol.state, ode.state, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", dict(ALL))
def test_unsupported_dynamics_raise_a_clear_error(name: str) -> None:
    integrator = dict(ALL)[name]()
    x, grid = torch.zeros(2, 3), time_grid(4)
    for dynamics in (ODE(Recorder()), SDE(Recorder(), Recorder(), 1.0), FlowMap(Recorder())):
        if not integrator.supports(dynamics):
            with pytest.raises(TypeError, match=f"cannot step {type(dynamics).__name__}"):
                integrator.integrate(dynamics, x, grid)
    with pytest.raises(TypeError, match="dynamics"):
        integrator.integrate(3.0, x, grid)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", dict(ALL))
def test_pickle_and_repr(name: str) -> None:
    integrator = dict(ALL)[name]()
    again = pickle.loads(pickle.dumps(integrator))
    assert type(again) is type(integrator) and repr(again) == repr(integrator)
    assert repr(integrator).startswith(type(integrator).__name__ + "(")
    x = torch.randn(4, 2, generator=torch.Generator().manual_seed(0))
    dynamics = _dynamics(integrator, Recorder(), Recorder(0.5), 0.3)
    kw = {"generator": torch.Generator().manual_seed(1)}
    first = integrator.integrate(dynamics, x, time_grid(4), **kw).state  # type: ignore[arg-type]
    kw = {"generator": torch.Generator().manual_seed(1)}
    assert torch.equal(again.integrate(dynamics, x, time_grid(4), **kw).state, first)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", dict(ALL))
def test_non_finite_fields_raise(name: str) -> None:
    """A field that returns NaN ends the integration with an error, not NaN samples."""
    integrator = dict(ALL)[name]()
    x, grid = torch.ones(2, 3), time_grid(4)

    def nan(t: Tensor, y: Tensor) -> Tensor:
        return torch.full_like(y, float("nan"))

    dynamics = _dynamics(integrator, nan, nan)
    with pytest.raises(FloatingPointError, match="NaN or Inf"):
        integrator.integrate(dynamics, x, grid, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("name", dict(ALL))
@pytest.mark.parametrize("direction", ["forward", "backward"])
def test_the_error_names_the_field_and_the_first_non_finite_time(name: str, direction: str) -> None:
    """A field that turns NaN past t = 0.5 (forwards; before it backwards) is reported with
    its name and a time on the bad side of 0.5, within one grid step of it."""
    integrator = dict(ALL)[name]()
    x = torch.ones(2, 3)
    grid = time_grid(8) if direction == "forward" else time_grid(8, 1.0, 0.0)

    def late(t: Tensor, y: Tensor) -> Tensor:
        bad = t[:, None] > 0.5 if direction == "forward" else t[:, None] < 0.5
        return torch.where(bad, torch.full_like(y, float("nan")), -y)

    def score(t: Tensor, y: Tensor) -> Tensor:
        return -y

    dynamics = _dynamics(integrator, late, score)
    with pytest.raises(FloatingPointError, match="velocity") as info:
        integrator.integrate(dynamics, x, grid, generator=torch.Generator().manual_seed(0))
    times = re.findall(r"t = ([0-9.e-]+)", str(info.value))
    assert len(times) == 1
    t = float(times[0])
    # the first bad evaluation lies past 0.5, at most one step (1/8) beyond it (an adaptive
    # method reports the start of the step it could not take: at most one step before)
    assert abs(t - 0.5) <= 0.125 + 1e-6


def test_an_overflowing_state_is_told_apart_from_a_non_finite_field() -> None:
    """Finite field values, a state that overflows: the error says so."""

    def grow(t: Tensor, y: Tensor) -> Tensor:
        return torch.full_like(y, 3e38)

    with pytest.raises(FloatingPointError, match="every field value was finite"):
        Euler().integrate(grow, torch.full((1, 1), 3e38), time_grid(1))  # 6e38 > float32 max


BAD_GRIDS = {
    "non-monotone": torch.tensor([0.0, 0.5, 0.3, 1.0]),
    "repeated": torch.tensor([0.0, 0.5, 0.5, 1.0]),
    "outside": torch.tensor([0.0, 0.5, 1.5]),
    "one-point": torch.tensor([0.0]),
    "two-d": torch.zeros(2, 2),
    "nan": torch.tensor([0.0, float("nan"), 1.0]),
}


@pytest.mark.parametrize("grid", BAD_GRIDS.values(), ids=BAD_GRIDS.keys())
@pytest.mark.parametrize("name", dict(ALL))
def test_bad_grid_raises(name: str, grid: Tensor) -> None:
    x = torch.zeros(2, 3)
    integrator = dict(ALL)[name]()
    dynamics = _dynamics(integrator, Recorder(), Recorder(), 1.0)
    with pytest.raises(ValueError, match="grid"):
        integrator.integrate(dynamics, x, grid)


class NegativeDiffusion(Diffusion):
    def __call__(self, t: Tensor) -> Tensor:
        return 0.5 - t


@pytest.mark.parametrize("name", SDE_INTEGRATORS)
def test_bad_sde_inputs_raise(name: str) -> None:
    integrator = SDE_INTEGRATORS[name]()
    x, grid = torch.zeros(2, 3), time_grid(4)
    with pytest.raises(ValueError, match="ε"):
        integrator.integrate(SDE(Recorder(), Recorder(), NegativeDiffusion()), x, grid)
    with pytest.raises(ValueError, match="ε"):
        integrator.integrate(SDE(Recorder(), Recorder(), -1.0), x, grid)
    with pytest.raises(TypeError, match="generator"):
        integrator.integrate(SDE(Recorder(), Recorder(), 1.0), x, grid, generator=0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="score"):
        integrator.integrate(SDE(Recorder(), lambda t, y: y[:, :2], 1.0), x, grid)
    with pytest.raises(TypeError, match="diffusion"):
        SDE(Recorder(), Recorder(), "big")  # type: ignore[arg-type]


def test_diffusion_schedules_validate() -> None:
    with pytest.raises(ValueError, match="ε"):
        ConstantDiffusion(-0.1)
    with pytest.raises(ValueError, match="≥ 0"):
        CustomDiffusion(lambda t: t - 0.5)
    with pytest.raises(TypeError, match="same shape"):
        CustomDiffusion(lambda t: t.sum())
    values = CustomDiffusion(lambda t: 2 * t)(torch.tensor([0.25, 0.5]))
    assert torch.equal(values, torch.tensor([0.5, 1.0]))


@pytest.mark.parametrize("name", ODE_INTEGRATORS)
def test_bad_ode_inputs_raise(name: str) -> None:
    integrator = ODE_INTEGRATORS[name]()
    grid = time_grid(4)
    with pytest.raises(ValueError, match=r"velocity\(t, x\) must return"):
        integrator.integrate(lambda t, y: y[:, :2], torch.zeros(2, 3), grid)
    # under runtime type checking jaxtyping rejects these first (TypeCheckError ⊂ TypeError)
    with pytest.raises((ValueError, TypeError), match=r"x must have shape|parameter 'x'"):
        integrator.integrate(Recorder(), torch.tensor(1.0), grid)
    with pytest.raises(TypeError, match=r"floating|parameter 'x'"):
        integrator.integrate(Recorder(), torch.zeros(2, 3, dtype=torch.int64), grid)
    with pytest.raises(ValueError, match="save_at"):
        integrator.integrate(Recorder(), torch.zeros(2, 3), grid, save_at=torch.tensor([0.3]))
    with pytest.raises(ValueError, match="save_at"):
        integrator.integrate(Recorder(), torch.zeros(2, 3), grid, save_at=torch.tensor([1.0, 0.5]))
    with pytest.raises(ValueError, match="NaN"):
        integrator.integrate(Recorder(), torch.full((2, 3), float("nan")), grid)


def test_torchsde_needs_uniform_grid_and_known_method() -> None:
    with pytest.raises(ValueError, match="uniform"):
        TorchSDEIntegrator().integrate(
            SDE(Recorder(), Recorder(), 1.0), torch.zeros(2, 3), torch.tensor([0.0, 0.1, 1.0])
        )
    with pytest.raises((ValueError, TypeError), match="method"):
        TorchSDEIntegrator("srk")  # type: ignore[arg-type]


def test_dopri5_validates_and_counts() -> None:
    with pytest.raises(ValueError, match="rtol"):
        Dopri5(rtol=0.0)
    with pytest.raises(RuntimeError, match="max_steps"):
        Dopri5(rtol=1e-10, atol=1e-10, max_steps=3).integrate(
            Recorder(), torch.ones(2, 2), time_grid(1)
        )
    rec = Recorder()
    sol = Dopri5(rtol=1e-6, atol=1e-6).integrate(
        rec, torch.ones(2, 2, dtype=torch.float64), time_grid(3, dtype=torch.float64)
    )
    # FSAL: one initial evaluation (the initial step size costs none), then six per attempted
    # step; at least one step per grid interval
    assert sol.nfe == rec.calls and (sol.nfe - 1) % 6 == 0 and sol.steps >= 3


def test_time_grid() -> None:
    g = time_grid(4, 1.0, 0.0, dtype=torch.float64)
    assert torch.equal(g, torch.tensor([1.0, 0.75, 0.5, 0.25, 0.0], dtype=torch.float64))
    with pytest.raises(ValueError, match="steps"):
        time_grid(0)
    with pytest.raises(ValueError, match="differ"):
        time_grid(3, 0.5, 0.5)


def test_tableaux_validate_and_the_builtin_rules_are_consistent() -> None:
    for cls in concrete_subclasses(FixedStepIntegrator):
        tab = cls().tableau
        assert abs(sum(tab.b) - 1.0) < 1e-15 and tab.c[0] == 0.0
    with pytest.raises(ValueError, match="sum to c"):
        Tableau(c=(0.0, 0.5), a=((), (0.4,)), b=(0.5, 0.5))
    with pytest.raises(ValueError, match="sum to 1"):
        Tableau(c=(0.0,), a=((),), b=(0.9,))
    with pytest.raises(ValueError, match="first node"):
        Tableau(c=(0.5,), a=((),), b=(1.0,))


def test_stochastic_heun_is_the_heun_tableau_with_additive_noise() -> None:
    """One SDE step of Heun equals the predictor–corrector written out by hand."""
    x = torch.randn(5, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    grid = torch.tensor([0.2, 0.5], dtype=torch.float64)

    def b(t: Tensor, y: Tensor) -> Tensor:
        return -y * (1 + t[:, None])

    def s(t: Tensor, y: Tensor) -> Tensor:
        return -2 * y

    diffusion = CustomDiffusion(lambda t: 0.5 + t)
    sol = Heun().integrate(
        SDE(b, s, diffusion, final_ode_step=False),
        x,
        grid,
        generator=torch.Generator().manual_seed(1),
    )
    xi = torch.randn(5, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    h, e0, e1 = 0.3, 0.7, 1.0
    sigma = 0.5 * ((2 * e0) ** 0.5 + (2 * e1) ** 0.5)
    dw = sigma * h**0.5 * xi
    t0, t1 = torch.full((5,), 0.2, dtype=torch.float64), torch.full((5,), 0.5, dtype=torch.float64)
    d1 = b(t0, x) + e0 * s(t0, x)
    pred = x + h * d1 + dw
    d2 = b(t1, pred) + e1 * s(t1, pred)
    assert torch.allclose(sol.state, x + 0.5 * h * (d1 + d2) + dw, atol=1e-14, rtol=0)


def test_a_user_dynamics_with_its_own_integrator() -> None:
    """The contract is open: a downstream dynamics and an integrator that steps it."""
    from interpolants.integrate import Dynamics

    class Decay(Dynamics):
        stochastic = False

        def __init__(self, rate: float) -> None:
            self.rate = rate

    class ExactDecay(Integrator):
        order = 99

        def supports(self, dynamics: object) -> bool:  # type: ignore[override]
            return isinstance(dynamics, Decay)

        def solve(self, problem: Problem) -> tuple[Tensor, list[Tensor], int]:
            assert isinstance(problem.dynamics, Decay)
            span = problem.times[-1] - problem.times[0]
            return problem.x * torch.exp(torch.tensor(-problem.dynamics.rate * span)), [], 1

    out = ExactDecay().integrate(Decay(2.0), torch.ones(3, 1), time_grid(1))
    assert torch.allclose(out.state, torch.full((3, 1), torch.exp(torch.tensor(-2.0)).item()))
    with pytest.raises(TypeError, match="cannot step ODE"):
        ExactDecay().integrate(ODE(Recorder()), torch.ones(3, 1), time_grid(1))
    assert not Euler().supports(Decay(1.0))


@pytest.mark.parametrize(
    "cls",
    concrete_subclasses(Diffusion) + concrete_subclasses(DivergenceEstimator),
    ids=lambda c: c.__name__,
)
def test_diffusions_and_estimators_pickle_and_repr(cls: type) -> None:
    from interpolants.interpolant import QuadraticGamma, TrigonometricInterpolant

    args = {
        "ConstantDiffusion": (0.5,),
        "GammaProportionalDiffusion": (TrigonometricInterpolant(QuadraticGamma()), 2.0),
        "CustomDiffusion": (torch.sigmoid,),
    }.get(cls.__name__, ())
    obj = cls(*args)
    again = pickle.loads(pickle.dumps(obj))
    assert repr(again) == repr(obj) and repr(obj).startswith(cls.__name__)
    t = torch.tensor([0.0, 0.3, 1.0])
    x = torch.randn(4, 3, generator=torch.Generator().manual_seed(0))
    if isinstance(obj, Diffusion):
        assert torch.equal(again(t), obj(t))
    else:
        v, w = obj.vectors(x, torch.Generator().manual_seed(1))
        v2, w2 = again.vectors(x, torch.Generator().manual_seed(1))
        assert torch.equal(v, v2) and w == w2 and v.shape[1:] == x.shape
