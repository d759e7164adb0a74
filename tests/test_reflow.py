"""ReflowCoupling on the exact Gaussian-mixture test bed: the x1 marginal, the transport cost
and straightness of the reflowed pairs, the disk cache and reproducibility."""

import math
import pickle
import warnings

import pytest
import torch
from torch import Tensor, nn

from interpolants import (
    MLP,
    Dopri5,
    Euler,
    GaussianMixture,
    LinearInterpolant,
    PairedBatches,
    SplitObjective,
    VelocityObjective,
)
from interpolants.analytic import ExactInterpolantFields
from interpolants.coupling import LabelConditionalCoupling, ReflowCoupling
from interpolants.data import GaussianMixtureData
from interpolants.integrate import RK4, Heun
from interpolants.interpolant import NoGamma, OneSidedLinearInterpolant, QuadraticGamma
from interpolants.metrics import energy_test, path_statistics
from interpolants.nn import TwoHeadMLP
from interpolants.objective import DenoiserObjective, TargetObjective

DT = torch.float64


def _testbed() -> tuple[GaussianMixture, GaussianMixture, ExactInterpolantFields]:
    """N(0, I) → four Gaussians on a circle of radius 3 (std 0.5), linear path, exact b."""
    base = GaussianMixture.standard_normal(2, dtype=DT)
    angle = torch.arange(4, dtype=DT) * (math.pi / 2)
    means = 3 * torch.stack([angle.cos(), angle.sin()], 1)
    target = GaussianMixture.isotropic(torch.ones(4, dtype=DT), means, 0.5)
    return base, target, ExactInterpolantFields(LinearInterpolant(), base, target)


BASE, TARGET, EXACT = _testbed()


def _exact_velocity(t: Tensor, x: Tensor) -> Tensor:
    return EXACT.velocity(t, x)


def _fit_velocity(x0: Tensor, x1: Tensor, seed: int = 0, distill: bool = False):
    """Flow matching on the pairs with a linear-in-parameters model (200 random Fourier
    features of (t, x), ridge least squares): one "training run" that takes a second. With
    ``distill``, at t = 0 only (one-step distillation)."""
    gen = torch.Generator().manual_seed(seed)
    scale = torch.tensor([[2.0], [0.5], [0.5]], dtype=DT)
    w = torch.randn(3, 200, generator=gen, dtype=DT) * scale
    b = torch.rand(200, generator=gen, dtype=DT) * 2 * math.pi
    t = torch.rand(8 * x0.shape[0], 1, generator=gen, dtype=DT)
    if distill:
        t = torch.zeros_like(t)
    a0, a1 = x0.repeat(8, 1), x1.repeat(8, 1)

    def features(tt: Tensor, x: Tensor) -> Tensor:
        return torch.cos(torch.cat([tt.reshape(-1, 1).expand(x.shape[0], 1), x], 1) @ w + b)

    f = features(t, (1 - t) * a0 + t * a1)
    gram = f.T @ f + 1e-4 * f.shape[0] * torch.eye(200, dtype=DT)
    coef = torch.linalg.solve(gram, f.T @ (a1 - a0))
    return lambda tt, x: features(tt, x) @ coef


def test_reflow_of_the_exact_flow_has_the_target_marginal_and_straightens_paths():
    gen = torch.Generator().manual_seed(0)
    x0 = BASE.sample(1024, gen)
    pairs = ReflowCoupling(_exact_velocity, RK4(), steps=16)(x0, torch.empty_like(x0))
    assert pairs.x0 is x0 and torch.equal(pairs.index0, torch.arange(1024))
    x1 = pairs.x1
    # the exact flow pushes ρ0 to ρ1: a calibrated two-sample test does not reject
    p = energy_test(x1[:512], TARGET.sample(512, gen), generator=torch.Generator().manual_seed(1))
    assert p > 1e-3
    # transport cost: E|Φ(x0) − x0|² = K − S of the exact flow (path_statistics), far below
    # the independent pairs' E|x1 − x0|²
    independent = TARGET.sample(1024, gen)
    cost_reflow = float(((x1 - x0) ** 2).sum(1).mean())
    cost_independent = float(((independent - x0) ** 2).sum(1).mean())
    exact = path_statistics(_exact_velocity, x0, steps=32, integrator=RK4())
    s0, k0 = float(exact.straightness), float(exact.kinetic_energy)
    assert cost_reflow == pytest.approx(k0 - s0, rel=1e-2)
    assert cost_reflow < 0.5 * cost_independent
    # straightness of the flow learned from the pairs: the same model class fitted to the
    # independent pairs reproduces the exact flow's S; fitted to the reflowed pairs its paths
    # are several times straighter, with less kinetic energy
    fresh = BASE.sample(1000, torch.Generator().manual_seed(5))
    learned0 = path_statistics(_fit_velocity(x0, independent), fresh, steps=32, integrator=RK4())
    learned1 = path_statistics(_fit_velocity(x0, x1), fresh, steps=32, integrator=RK4())
    assert float(learned0.straightness) == pytest.approx(s0, rel=0.3)
    assert float(learned1.straightness) < 0.25 * float(learned0.straightness)
    assert float(learned1.kinetic_energy) < float(learned0.kinetic_energy)


class _Affine(nn.Module):
    """A small "trained" velocity model b(t, x) = A x + c(t)."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(2, 2, dtype=DT)

    def forward(self, t: Tensor, x: Tensor) -> Tensor:
        return self.linear(x) * (1 + t[:, None])


def test_generate_is_reproducible_and_chunked():
    torch.manual_seed(0)
    model = _Affine()
    x0 = BASE.sample(300, torch.Generator().manual_seed(3))
    again = BASE.sample(300, torch.Generator().manual_seed(3))
    whole = ReflowCoupling(model, RK4(), steps=8).generate(x0)
    assert torch.equal(ReflowCoupling(model, RK4(), steps=8).generate(again), whole)
    chunked = ReflowCoupling(model, RK4(), steps=8, batch_size=64).generate(x0)
    torch.testing.assert_close(chunked, whole, rtol=1e-12, atol=1e-12)
    # the default integrator is Dopri5 on [0, 1] (one grid interval); fixed-step ones use 100
    adaptive = ReflowCoupling(model)
    assert isinstance(adaptive.integrator, Dopri5) and adaptive.steps == 1
    assert ReflowCoupling(model, Heun()).steps == 100
    torch.testing.assert_close(adaptive.generate(x0), whole, rtol=1e-4, atol=1e-4)
    # the same through pickle (a module and a module-level function pickle)
    clone = pickle.loads(pickle.dumps(ReflowCoupling(model, RK4(), steps=8)))
    assert torch.equal(clone.generate(x0), whole)


def test_cache_round_trip(tmp_path, monkeypatch):
    model = _Affine()
    coupling = ReflowCoupling(model, RK4(), steps=4, batch_size=100)
    x0 = BASE.sample(250, torch.Generator().manual_seed(0))
    path = tmp_path / "pairs" / "reflow.pt"
    x1 = coupling.generate(x0, cache=path)
    assert path.exists()
    stored = torch.load(path, weights_only=True)
    assert torch.equal(stored["x0"], x0) and torch.equal(stored["x1"], x1)
    calls = []
    real = RK4.integrate

    def counting(self, *args, **kwargs):
        calls.append(1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(RK4, "integrate", counting)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = coupling.generate(x0.clone(), cache=path)  # the same values: loaded
    assert not calls and torch.equal(loaded, x1) and loaded.dtype == x1.dtype
    # another x0, or another model state, is regenerated (with a warning) and overwrites
    with pytest.warns(RuntimeWarning, match="regenerating"):
        other = coupling.generate(x0[:200], cache=path)
    assert calls and torch.equal(other, x1[:200])  # the same chunks: the same numbers
    assert torch.equal(torch.load(path, weights_only=True)["x0"], x0[:200])
    with torch.no_grad():
        model.linear.bias.add_(1.0)
    with pytest.warns(RuntimeWarning, match="regenerating"):
        moved = coupling.generate(x0[:200], cache=path)
    assert not torch.equal(moved, other)
    assert not list(tmp_path.glob("pairs/.*.tmp"))  # no temporary file left behind


def test_reflow_in_the_coupling_contract_and_errors():
    model = _Affine()
    coupling = ReflowCoupling(model, RK4(), steps=4)
    x0, x1 = BASE.sample(6), TARGET.sample(6)
    y0, y1 = torch.arange(6), torch.arange(6) + 10
    p = coupling(x0, x1, y0, y1, return_plan=True)
    assert p.y0 is y0 and p.y1 is y1 and p.plan is None  # labels carried, no plan
    assert torch.equal(p.x1, coupling.generate(x0)) and torch.equal(p.index1, torch.arange(6))
    with pytest.raises(ValueError, match="equal batch sizes"):
        coupling(x0, x1[:5])
    with pytest.raises(ValueError, match="NaN"):
        coupling(torch.full_like(x0, math.nan), x1)
    with pytest.raises(TypeError, match="velocity"):  # the checked mode's or the call's
        ReflowCoupling(3.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Integrator"):
        ReflowCoupling(model, "rk4")  # type: ignore[arg-type]
    for bad in (0, 2.5, True):
        with pytest.raises((TypeError, ValueError), match="steps"):
            ReflowCoupling(model, RK4(), bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="batch_size"):
        ReflowCoupling(model, batch_size=0)
    with pytest.raises(TypeError, match="constructs x0"):  # pairs within classes: not reflow
        LabelConditionalCoupling(coupling)(x0, x1, y0 % 2, y1 % 2)
    # the pairs keep x0's autograd graph
    leaf = x0.clone().requires_grad_(True)
    assert coupling(leaf, x1).x0 is leaf


def test_one_step_distillation_of_the_reflowed_pairs():
    # regressing b(0, x0) on X_1(x0) − x0 (flow matching at t = 0 on the reflow pairs): one
    # Euler step of the student reproduces the teacher's many-step ODE far better than one
    # Euler step of the teacher itself
    gen = torch.Generator().manual_seed(0)
    x0 = BASE.sample(2000, gen)
    coupling = ReflowCoupling(_exact_velocity, RK4(), steps=16)
    x1 = coupling.generate(x0)
    student = _fit_velocity(x0, x1, distill=True)
    fresh = BASE.sample(500, torch.Generator().manual_seed(9))
    reference = coupling.generate(fresh)
    grid = torch.tensor([0.0, 1.0], dtype=DT)
    one_student = Euler().integrate(student, fresh, grid).state
    one_teacher = Euler().integrate(_exact_velocity, fresh, grid).state
    err_student = float(((one_student - reference) ** 2).sum(1).mean().sqrt())
    err_teacher = float(((one_teacher - reference) ** 2).sum(1).mean().sqrt())
    assert err_student < 0.25 * err_teacher


@pytest.mark.parametrize("which", ["velocity", "split", "target", "denoiser"])
def test_every_objective_trains_on_reflow_pairs(which):
    # the pairs come through the ordinary batch pipeline, so any objective takes them
    torch.manual_seed(0)
    teacher = _Affine().float()  # GaussianMixtureData draws float32
    one_sided = which == "denoiser"
    base = GaussianMixture.standard_normal(2, dtype=DT) if one_sided else BASE
    batches = PairedBatches(
        GaussianMixtureData(base),
        GaussianMixtureData(TARGET),
        32,
        ReflowCoupling(teacher, RK4(), steps=4),
    )
    objective, model = {
        "velocity": (VelocityObjective(LinearInterpolant(NoGamma())), MLP(2, hidden=16)),
        "split": (SplitObjective(LinearInterpolant(QuadraticGamma())), TwoHeadMLP(2, hidden=16)),
        "target": (TargetObjective(LinearInterpolant(NoGamma())), MLP(2, hidden=16)),
        "denoiser": (DenoiserObjective(OneSidedLinearInterpolant()), MLP(2, hidden=16)),
    }[which]
    batch = batches(torch.Generator().manual_seed(1))
    assert torch.equal(batch.x1, ReflowCoupling(teacher, RK4(), steps=4).generate(batch.x0))
    loss = objective.loss(model, batch.x0, batch.x1, generator=torch.Generator().manual_seed(2))
    loss.backward()
    assert bool(torch.isfinite(loss)) and all(
        p.grad is not None for p in model.parameters() if p.requires_grad
    )
    assert all(p.grad is None for p in teacher.parameters())  # the teacher is not trained
