"""Flow maps: the exact average velocity of the mixture test bed and few-step jumps with it."""

import pytest
import torch
from torch import Tensor

from bank import two_mixtures
from interpolants import ODE, BrownianGamma, Dopri5, LinearInterpolant, time_grid
from interpolants.analytic import ExactInterpolantFields
from interpolants.integrate import RK4, FlowMap, FlowMapSteps
from interpolants.interpolant import TrigonometricInterpolant

DT = torch.float64
PATHS = {
    "linear": lambda: LinearInterpolant(),
    "linear-brownian": lambda: LinearInterpolant(BrownianGamma()),
    "trigonometric": lambda: TrigonometricInterpolant(),
}


def _exact(path: str) -> ExactInterpolantFields:
    base, target = two_mixtures(DT)
    return ExactInterpolantFields(PATHS[path](), base, target)


def _points(exact: ExactInterpolantFields, t: float, n: int, seed: int) -> Tensor:
    return exact.sample(t, n, torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("path", PATHS)
def test_the_exact_average_velocity_is_the_flow_maps_slope(path: str) -> None:
    """x + (r − t)·u(t, r, x) is the ODE solution from t to r (Dopri5 at 1e-10), and
    u(t, t, x) = b(t, x)."""
    exact = _exact(path)
    x = _points(exact, 0.2, 24, 0)
    grid = torch.tensor([0.2, 0.9], dtype=DT)
    flow = Dopri5(rtol=1e-10, atol=1e-10).integrate(exact.velocity, x, grid).state
    # the quadrature's error falls as steps⁻⁴ (measured on the linear path: 2e-4, 1.2e-6,
    # 5e-9 at 16, 64, 256 steps, so ≲ 1e-7 at 128; the posterior weights switch sharply)
    u = exact.average_velocity(0.2, 0.9, x, steps=128)
    assert torch.allclose(x + 0.7 * u, flow, atol=3e-7, rtol=0)
    coarse = exact.average_velocity(0.2, 0.9, x, steps=64)
    assert 1e-9 < float((x + 0.7 * coarse - flow).abs().max()) < 1e-5
    # r = t: the mean of 64 equal stages, b(t, x) up to rounding
    same = exact.average_velocity(0.4, 0.4, x)
    assert torch.allclose(same, exact.velocity(0.4, x), rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("path", PATHS)
def test_the_mean_flow_identity_holds_for_the_exact_average_velocity(path: str) -> None:
    """u = b + (r − t)·(∂_t u + b·∇_x u): the regression target of a mean flow, checked with
    central differences along the flow (step 1e-4: truncation ~1e-8 relative)."""
    exact = _exact(path)
    n = 16
    x = _points(exact, 0.3, n, 1)
    t = torch.full((n,), 0.3, dtype=DT)
    r = torch.linspace(0.35, 1.0, n, dtype=DT)  # one end time per sample
    b = exact.velocity(t, x)
    h = 1e-4
    ahead = exact.average_velocity(t + h, r, x + h * b, steps=96)
    behind = exact.average_velocity(t - h, r, x - h * b, steps=96)
    total = (ahead - behind) / (2 * h)  # the smooth quadrature error cancels to first order
    u = exact.average_velocity(t, r, x, steps=96)
    residual = u - (b + (r - t)[:, None] * total)
    assert float(residual.abs().max()) < 1e-5 * (1 + float(u.abs().max()))


@pytest.mark.parametrize("jumps", [1, 3])
@pytest.mark.parametrize("path", ["linear-brownian", "trigonometric"])
def test_jumps_with_the_exact_average_velocity_are_the_exact_flow(path: str, jumps: int) -> None:
    """Any number of jumps lands where the ODE lands; forwards and back is the identity."""
    exact = _exact(path)
    x0 = exact.base.sample(24, torch.Generator().manual_seed(2))
    flow = FlowMap(lambda t, r, x: exact.average_velocity(t, r, x, steps=120 // jumps))
    sol = FlowMapSteps().integrate(flow, x0, time_grid(jumps, dtype=DT))
    assert sol.nfe == jumps and sol.steps == jumps
    reference = Dopri5(rtol=1e-10, atol=1e-10).integrate(exact.velocity, x0, time_grid(1, dtype=DT))
    # 120 quadrature steps over [0, 1]: error ≲ 1e-6 (see the first test)
    assert torch.allclose(sol.state, reference.state, atol=1e-5, rtol=0)
    back = FlowMapSteps().integrate(flow, sol.state, time_grid(jumps, 1.0, 0.0, dtype=DT))
    assert torch.allclose(back.state, x0, atol=1e-5, rtol=0)


def test_the_instantaneous_velocity_runs_through_the_ode_integrators() -> None:
    exact = _exact("linear")
    # one quadrature step is exact at r = t (every stage is b(t, x))
    flow = FlowMap(lambda t, r, x: exact.average_velocity(t, r, x, steps=1))
    x0 = exact.base.sample(16, torch.Generator().manual_seed(3))
    grid = time_grid(20, dtype=DT)
    ode = RK4().integrate(ODE(flow.velocity), x0, grid).state
    assert torch.allclose(ode, RK4().integrate(exact.velocity, x0, grid).state, atol=1e-12)


def test_saved_points_and_refusals() -> None:
    flow = FlowMap(lambda t, r, x: torch.ones_like(x) * (r - t)[:, None])  # X = x + (r − t)²
    x = torch.zeros(3, 2)
    grid = torch.tensor([0.0, 0.5, 1.0])
    sol = FlowMapSteps().integrate(flow, x, grid, save_at=grid)
    assert sol.trajectory is not None and sol.trajectory.shape == (3, 3, 2)
    assert torch.allclose(sol.trajectory[:, 0, 0], torch.tensor([0.0, 0.25, 0.5]))
    with pytest.raises(TypeError, match="cannot step ODE"):
        FlowMapSteps().integrate(ODE(lambda t, x: x), x, grid)
    with pytest.raises(TypeError, match="cannot step FlowMap"):
        RK4().integrate(flow, x, grid)
    with pytest.raises(TypeError, match=r"average must be callable|parameter .average."):
        FlowMap(3.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"average velocity.*shape"):
        FlowMapSteps().integrate(FlowMap(lambda t, r, x: x[:, :1]), x, grid)
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        _exact("linear").average_velocity(0.0, 1.0, torch.zeros(1, 2, dtype=DT), steps=0)
