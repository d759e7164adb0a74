"""No host synchronisation in per-step code: losses, field conversions, ODE and SDE steps.

Checked on the CPU with a dispatch mode that raises on every op that would synchronise a
CUDA device with the host (tests/contracts.py), and on a GPU, where one is present, with
torch's own sync-debug mode. Entry points that own a whole computation may read values once
(an integration its grid and ε, a loss a caller's ``t``); the steps between may not.
The couplings' checks are in test_coupling.py.
"""

import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
import torch
from torch import Tensor

from bank import all_interpolants
from contracts import AverageVelocityMLP, NoHostSync, concrete_subclasses
from interpolants import MLP, ODE, SDE, BrownianGamma, LinearInterpolant, Objective, time_grid
from interpolants.fields import ConvertedField, VelocityFromSplit
from interpolants.integrate import FixedStepIntegrator, GammaProportionalDiffusion, Problem
from interpolants.interpolant import MirrorInterpolant, VPInterpolant
from interpolants.nn import TwoHeadMLP
from interpolants.objective import ImportanceWeighted, MeanFlowObjective, UniformTime

INTERPOLANTS = all_interpolants()
OBJECTIVES = concrete_subclasses(Objective)
INTEGRATORS = concrete_subclasses(FixedStepIntegrator)


@contextmanager
def no_sync(device: str) -> Iterator[None]:
    if device == "cpu":
        with NoHostSync():
            yield
        return
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        yield
    finally:
        torch.cuda.set_sync_debug_mode(0)


DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]


def test_the_guard_has_teeth() -> None:
    with pytest.raises(AssertionError, match="synchronises"), NoHostSync():
        float(torch.ones(()) * 2)
    with pytest.raises(AssertionError, match="synchronises"), NoHostSync():
        torch.arange(4)[torch.arange(4) > 1]


def _objective(cls: type[Objective]) -> tuple[Objective, torch.nn.Module]:
    interp = LinearInterpolant(BrownianGamma()) if cls.needs_noise else LinearInterpolant()
    if cls.__name__ == "TargetObjective":
        interp = VPInterpolant()
    model = TwoHeadMLP(2, hidden=16, depth=2) if "Split" in cls.__name__ else MLP(2, 16, 2)
    if cls is MeanFlowObjective:  # an average velocity u(t, r, x)
        model = AverageVelocityMLP(2, hidden=16, depth=2)
    return cls(interp, antithetic=interp.has_noise), model


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("cls", OBJECTIVES, ids=lambda c: c.__name__)
def test_losses_do_not_synchronise(cls: type[Objective], device: str) -> None:
    objective, model = _objective(cls)
    model = model.to(device)
    gen = torch.Generator(device).manual_seed(0)
    x0 = torch.randn(64, 2, device=device, generator=gen)
    x1 = torch.randn(64, 2, device=device, generator=gen)
    weighted = type(objective)(
        objective.interpolant, time_sampler=ImportanceWeighted(UniformTime(0.1, 0.9))
    )
    with no_sync(device):
        for obj in (objective, weighted):
            loss = obj.loss(model, x0, x1, generator=gen)
            loss.backward()
    assert loss.shape == ()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", INTERPOLANTS)
def test_interpolant_algebra_does_not_synchronise(name: str, device: str) -> None:
    interp = INTERPOLANTS[name]
    gen = torch.Generator(device).manual_seed(0)
    x = torch.randn(32, 3, device=device, generator=gen)
    t = 0.05 + 0.9 * torch.rand(32, device=device, generator=gen)
    x0 = x if isinstance(interp, MirrorInterpolant) else torch.randn_like(x)
    with no_sync(device):
        s = interp.sample(t, x0, x, torch.randn_like(x))
        interp.coefficients(t)
        interp.denoiser_from_score(t, s.velocity)
        interp.velocity_from_mean_and_score(t, s.mean_velocity, s.noise)
        interp.velocity_from_mean_and_denoiser(t, s.mean_velocity, s.noise)
        if interp.has_noise:
            interp.score_from_denoiser(t, s.noise)
        if interp.one_sided:
            b = interp.velocity_from_score(t, x, interp.score_from_velocity(t, x, s.velocity))
            interp.velocity_from_denoiser(t, x, interp.denoiser_from_velocity(t, x, b))
        if not interp.is_stochastic:
            interp.velocity_from_target(t, x, interp.target_from_velocity(t, x, s.velocity))
        if interp.has_noise:
            interp.antithetic(x0, x, torch.randn_like(x))


def _field(t: Tensor, x: Tensor) -> Tensor:
    return torch.tanh(x)


def _fields() -> list[ConvertedField]:
    out: list[ConvertedField] = []
    for cls in concrete_subclasses(ConvertedField):
        if cls is VelocityFromSplit:
            out.append(VelocityFromSplit(LinearInterpolant(BrownianGamma()), lambda t, x: (x, x)))
            continue
        for interp in (VPInterpolant(), LinearInterpolant(BrownianGamma()), LinearInterpolant()):
            try:
                n = len([p for p in inspect.signature(cls).parameters if p != "interpolant"])
                out.append(cls(interp, *[_field] * n))  # type: ignore[call-arg]
                break
            except TypeError:
                continue
    return out


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("field", _fields(), ids=lambda f: type(f).__name__)
def test_field_conversions_do_not_synchronise(field: ConvertedField, device: str) -> None:
    x = torch.randn(16, 2, device=device)
    t = torch.tensor(0.3, device=device).expand(16)  # as the integrators pass it
    with no_sync(device):
        out = field(t, x)
    assert out.shape == x.shape


def _steps(
    integrator: FixedStepIntegrator, dynamics: ODE | SDE, device: str
) -> tuple[Problem, list[list[float]] | list[None]]:
    x = torch.randn(8, 2, device=device)
    grid = time_grid(4, 0.1, 0.9, device=device)
    problem = Problem(dynamics, x, grid, [], torch.Generator(device).manual_seed(0))
    if isinstance(dynamics, SDE):  # ε at the stage times: read once per call, before the steps
        c = integrator.tableau.c
        times = problem.times
        eps = problem.epsilon(
            [times[k] + ci * (times[k + 1] - times[k]) for k in range(4) for ci in c]
        )
        s = len(c)
        return problem, [eps[k * s : (k + 1) * s] for k in range(4)]
    return problem, [None] * 4


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kind", ["ode", "sde"])
@pytest.mark.parametrize("cls", INTEGRATORS, ids=lambda c: c.__name__)
def test_ode_and_sde_steps_do_not_synchronise(
    cls: type[FixedStepIntegrator], kind: str, device: str
) -> None:
    integrator = cls()
    model = MLP(2, hidden=16, depth=2).to(device)
    interp = LinearInterpolant(BrownianGamma())
    make: Callable[[], ODE | SDE] = (
        (lambda: ODE(model))
        if kind == "ode"
        else (lambda: SDE(model, model, GammaProportionalDiffusion(interp, 0.5)))
    )
    problem, eps = _steps(integrator, make(), device)
    x = problem.x
    with no_sync(device), torch.no_grad():
        for k in range(4):
            x = integrator.step(problem, k, x, eps[k])
    assert x.shape == problem.x.shape and problem.nfe > 0
