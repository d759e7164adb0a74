"""Contract tests run over every integrator: shapes, dtypes, trajectories, NFE and errors."""

from collections.abc import Callable

import pytest
import torch
from torch import Tensor

from interpolants.integrate import (
    RK4,
    ConstantDiffusion,
    CustomDiffusion,
    Diffusion,
    Dopri5,
    Euler,
    EulerMaruyama,
    FixedStepIntegrator,
    Heun,
    Midpoint,
    ODEIntegrator,
    SDEIntegrator,
    StochasticHeun,
    TorchSDEIntegrator,
    time_grid,
)

ODE_INTEGRATORS: dict[str, Callable[[], ODEIntegrator]] = {
    "euler": Euler,
    "heun": Heun,
    "midpoint": Midpoint,
    "rk4": RK4,
    "dopri5": lambda: Dopri5(rtol=1e-4, atol=1e-4),
}
SDE_INTEGRATORS: dict[str, Callable[[], SDEIntegrator]] = {
    "euler-maruyama": EulerMaruyama,
    "stochastic-heun": StochasticHeun,
    "torchsde-euler": lambda: TorchSDEIntegrator("euler"),
    "torchsde-heun": lambda: TorchSDEIntegrator("heun"),
    "torchsde-midpoint": lambda: TorchSDEIntegrator("midpoint"),
}
SHAPES = [(5, 3), (4, 2, 3, 3)]
DTYPES = [torch.float32, torch.float64]


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
    sol = integrator.integrate(rec, x, grid, save_at=save)
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
    run = lambda seed: integrator.integrate(  # noqa: E731
        velocity, score, x, grid, 0.3, save_at=save, generator=torch.Generator().manual_seed(seed)
    )
    sol = run(1)
    assert sol.state.shape == x.shape and sol.state.dtype == dtype
    assert bool(torch.isfinite(sol.state).all())
    assert sol.times is not None and sol.trajectory is not None
    assert torch.equal(sol.times, save.to(dtype)) and sol.trajectory.shape == (3, *shape)
    assert torch.equal(sol.trajectory[0], x) and torch.equal(sol.trajectory[-1], sol.state)
    assert sol.nfe == velocity.calls + score.calls
    if isinstance(integrator, EulerMaruyama):
        # N − 1 stochastic steps (b and s) and one final ODE step (b only)
        assert sol.nfe == 2 * steps - 1
    if isinstance(integrator, StochasticHeun):
        assert sol.nfe == 4 * (steps - 1) + 2
    _check_times(velocity, x)
    _check_times(score, x)
    # seeded: the same generator seed gives the same samples, another seed different ones
    assert torch.equal(run(1).state, sol.state)
    assert not torch.equal(run(2).state, sol.state)


@pytest.mark.parametrize("name", ["euler-maruyama", "stochastic-heun"])
def test_sde_skips_score_where_epsilon_vanishes(name: str) -> None:
    integrator = SDE_INTEGRATORS[name]()
    velocity, score = Recorder(), Recorder()
    x = torch.randn(3, 2)
    sol = integrator.integrate(velocity, score, x, time_grid(5), 0.0)
    assert score.calls == 0 and sol.nfe == velocity.calls
    # with ε ≡ 0 and no noise the SDE step is the deterministic step of the same order
    ode = (Euler() if name == "euler-maruyama" else Heun()).integrate(Recorder(), x, time_grid(5))
    assert torch.allclose(sol.state, ode.state, rtol=1e-6, atol=1e-7)


BAD_GRIDS = {
    "non-monotone": torch.tensor([0.0, 0.5, 0.3, 1.0]),
    "repeated": torch.tensor([0.0, 0.5, 0.5, 1.0]),
    "outside": torch.tensor([0.0, 0.5, 1.5]),
    "one-point": torch.tensor([0.0]),
    "two-d": torch.zeros(2, 2),
    "nan": torch.tensor([0.0, float("nan"), 1.0]),
}


@pytest.mark.parametrize("grid", BAD_GRIDS.values(), ids=BAD_GRIDS.keys())
@pytest.mark.parametrize("name", [*ODE_INTEGRATORS, *SDE_INTEGRATORS])
def test_bad_grid_raises(name: str, grid: Tensor) -> None:
    x = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="grid"):
        if name in ODE_INTEGRATORS:
            ODE_INTEGRATORS[name]().integrate(Recorder(), x, grid)
        else:
            SDE_INTEGRATORS[name]().integrate(Recorder(), Recorder(), x, grid, 1.0)


class NegativeDiffusion(Diffusion):
    def __call__(self, t: Tensor) -> Tensor:
        return 0.5 - t


@pytest.mark.parametrize("name", SDE_INTEGRATORS)
def test_bad_sde_inputs_raise(name: str) -> None:
    integrator = SDE_INTEGRATORS[name]()
    x, grid = torch.zeros(2, 3), time_grid(4)
    with pytest.raises(ValueError, match="ε"):
        integrator.integrate(Recorder(), Recorder(), x, grid, NegativeDiffusion())
    with pytest.raises(ValueError, match="ε"):
        integrator.integrate(Recorder(), Recorder(), x, grid, -1.0)
    with pytest.raises(TypeError, match="generator"):
        integrator.integrate(Recorder(), Recorder(), x, grid, 1.0, generator=0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="score"):
        integrator.integrate(Recorder(), lambda t, y: y[:, :2], x, grid, 1.0)


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
    with pytest.raises(ValueError, match=r"field\(t, x\) must return"):
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
            Recorder(), Recorder(), torch.zeros(2, 3), torch.tensor([0.0, 0.1, 1.0]), 1.0
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
    # FSAL: one initial evaluation, one for the initial step size, six per attempted step
    assert sol.nfe == rec.calls and (sol.nfe - 2) % 6 == 0 and sol.steps >= 3


def test_time_grid() -> None:
    g = time_grid(4, 1.0, 0.0, dtype=torch.float64)
    assert torch.equal(g, torch.tensor([1.0, 0.75, 0.5, 0.25, 0.0], dtype=torch.float64))
    with pytest.raises(ValueError, match="steps"):
        time_grid(0)
    with pytest.raises(ValueError, match="differ"):
        time_grid(3, 0.5, 0.5)
