"""A trained model as a distribution: exact log-densities, samples, gradients, conventions."""

import math
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn
from torch.distributions import Independent, Normal

from bank import two_mixtures
from interpolants import MLP, LinearInterpolant
from interpolants.analytic import ExactInterpolantFields
from interpolants.density import (
    EarlyStopping,
    InterpolantDistribution,
    InterpolantFlow,
    calibrate,
    split_data,
)
from interpolants.integrate import RK4, HutchinsonDivergence
from interpolants.metrics import energy_test

DT = torch.float64


class ExactVelocity(nn.Module):
    """The exact velocity of the Gaussian-mixture test bed as a module."""

    def __init__(self) -> None:
        super().__init__()
        base, target = two_mixtures(DT)
        self.base, self.target = base, target
        self.exact = ExactInterpolantFields(LinearInterpolant(), base, target)

    def forward(self, t: Tensor, x: Tensor) -> Tensor:
        return self.exact.velocity(t, x)


class Scale(nn.Module):
    """b(t, x) = θx: N(0, 1) at t = 0 becomes N(0, e^{2θ}) at t = 1."""

    def __init__(self, theta: float) -> None:
        super().__init__()
        self.theta = nn.Parameter(torch.tensor(theta, dtype=DT))

    def forward(self, t: Tensor, x: Tensor) -> Tensor:
        return self.theta * x


def _normal(dim: int) -> Independent:
    return Independent(Normal(torch.zeros(dim, dtype=DT), 1.0), 1)


def test_log_prob_and_samples_of_the_exact_flow_are_the_target() -> None:
    field = ExactVelocity()
    model = InterpolantFlow(field, field.base)()
    assert isinstance(model, InterpolantDistribution) and model.event_shape == (2,)
    x = field.target.sample(64, torch.Generator().manual_seed(0))
    # Dopri5 at rtol = atol = 1e-5 on a smooth flow: ≲ 1e-4 nats (measured 2e-6)
    assert torch.allclose(model.log_prob(x), field.target.log_prob(x), atol=1e-4, rtol=0)
    torch.manual_seed(1)
    samples = model.sample((300,))
    assert samples.shape == (300, 2) and not samples.requires_grad
    reference = field.target.sample(300, torch.Generator().manual_seed(2))
    p = energy_test(
        samples, reference, permutations=999, generator=torch.Generator().manual_seed(3)
    )
    assert p > 1e-3  # a calibrated two-sample test (see tests/test_integrate_sampling.py)


def test_distribution_conventions_and_fixed_step_integrators() -> None:
    flow = InterpolantFlow(
        Scale(0.5), _normal(1), sampler=RK4(), likelihood=RK4(), steps=32, chunk=7
    )
    model = flow()
    x = torch.randn(3, 5, 1, dtype=DT, generator=torch.Generator().manual_seed(4))
    lp = model.log_prob(x)  # sample shape (3, 5), event (1,); chunks of 7 across them
    exact = Independent(Normal(torch.zeros(1, dtype=DT), math.exp(0.5)), 1).log_prob(x)
    assert lp.shape == (3, 5) and torch.allclose(lp, exact, atol=1e-6)
    assert model.sample((2, 3)).shape == (2, 3, 1)
    with pytest.raises(ValueError, match="event shape"):
        model.log_prob(torch.zeros(4, 2, dtype=DT))
    with pytest.raises(TypeError, match="base"):
        InterpolantFlow(Scale(0.5), "normal")


def test_rsample_and_differentiable_log_prob_reach_the_parameters() -> None:
    theta = 0.3
    flow = InterpolantFlow(Scale(theta), _normal(1), sampler=RK4(), likelihood=RK4(), steps=64)
    x = torch.tensor([[0.5], [1.5], [-2.0]], dtype=DT)
    lp = flow().log_prob(x, differentiable=True)
    (grad,) = torch.autograd.grad(lp.sum(), flow.velocity.theta)
    # log ρ1(x) = −x²e^{−2θ}/2 − θ − ½log 2π, so d/dθ Σ = Σ (x²e^{−2θ} − 1)
    expected = float((x.square() * math.exp(-2 * theta) - 1).sum())
    assert grad.item() == pytest.approx(expected, rel=1e-6)
    assert not flow().log_prob(x).requires_grad  # no graph by default
    torch.manual_seed(5)
    y = flow().rsample((4,))
    (g,) = torch.autograd.grad(y.sum(), flow.velocity.theta)
    # y = x0·e^θ: d/dθ Σy = Σy (RK4 with 64 steps: relative error ≲ 1e-9)
    assert g.item() == pytest.approx(y.sum().item(), rel=1e-6)


def test_hutchinson_log_prob_is_unbiased() -> None:
    field = ExactVelocity()
    x = field.target.sample(40, torch.Generator().manual_seed(6))
    exact = InterpolantFlow(field, field.base)().log_prob(x)
    torch.manual_seed(7)
    noisy = InterpolantFlow(field, field.base, divergence=HutchinsonDivergence(probes=4))()
    err = noisy.log_prob(x) - exact
    assert float(err.std()) > 0 and abs(float(err.mean())) < 4 * float(err.std()) / 40**0.5


def test_save_load_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(8)
    flow = InterpolantFlow(MLP(2, hidden=16, depth=2), two_mixtures(torch.float32)[0])
    path = tmp_path / "flow.pt"
    flow.save(path)
    other = InterpolantFlow(MLP(2, hidden=16, depth=2), two_mixtures(torch.float32)[0])
    other.load(path)
    x = torch.randn(5, 2, generator=torch.Generator().manual_seed(9))
    assert torch.equal(flow().log_prob(x), other().log_prob(x))
    assert list(tmp_path.iterdir()) == [path]  # atomic: no temporary file left


def test_a_zuko_flow_as_the_base() -> None:
    zuko = pytest.importorskip("zuko")
    torch.manual_seed(10)
    nsf = zuko.flows.NSF(features=2, transforms=2, hidden_features=(16,))
    flow = InterpolantFlow(MLP(2, hidden=16, depth=2), nsf, steps=8)
    assert any(p is q for p in flow.parameters() for q in nsf.parameters())  # one module
    x = torch.randn(6, 2, generator=torch.Generator().manual_seed(11))
    lp = flow().log_prob(x)
    assert lp.shape == (6,) and bool(torch.isfinite(lp).all())
    assert flow().sample((5,)).shape == (5, 2)


def test_separate_sample_and_likelihood_grids() -> None:
    calls: list[int] = []

    class Counted(nn.Module):
        def forward(self, t: Tensor, x: Tensor) -> Tensor:
            calls.append(1)
            return 0.5 * x

    flow = InterpolantFlow(
        Counted(), _normal(1), sampler=RK4(), likelihood=RK4(), steps=5, sample_steps=2
    )
    flow().sample((3,))
    assert len(calls) == 4 * 2  # RK4: four evaluations per step
    calls.clear()
    flow().log_prob(torch.zeros(3, 1, dtype=DT))
    assert len(calls) == 4 * 5
    assert InterpolantFlow(Counted(), _normal(1), steps=7).sample_steps == 7
    with pytest.raises(ValueError, match="sample_steps"):
        InterpolantFlow(Counted(), _normal(1), sample_steps=0)


def test_calibrate_picks_the_fewest_steps_within_the_tolerances() -> None:
    field = ExactVelocity()
    flow = InterpolantFlow(field, field.base)
    x = field.target.sample(200, torch.Generator().manual_seed(12))
    cal = calibrate(flow, x, tolerance=1e-3, sample_tolerance=1e-2, generator=torch.Generator())
    assert cal.met and cal.flow.velocity is field
    n, m = cal.likelihood_steps, cal.sample_steps
    assert cal.likelihood_errors[n] <= 1e-3 and cal.sample_errors[m] <= 1e-2
    # every smaller candidate tried failed its tolerance (the chosen one is the first to pass)
    assert all(e > 1e-3 for k, e in cal.likelihood_errors.items() if k < n)
    assert all(e > 1e-2 for k, e in cal.sample_errors.items() if k < m)
    assert max(cal.likelihood_errors) == n and max(cal.sample_errors) == m  # stops there
    # the chosen grid reproduces the accurate log-likelihood to the tolerance on these points
    accurate = InterpolantFlow(field, field.base)().log_prob(x)
    assert abs(float((cal.flow().log_prob(x) - accurate).mean())) <= 1e-3 + 1e-4
    assert (cal.flow.steps, cal.flow.sample_steps) == (n, m)
    strict = calibrate(flow, x, tolerance=1e-12, candidates=(1, 2))
    assert not strict.met and strict.likelihood_steps == 2  # the largest when none passes
    with pytest.raises(ValueError, match="increase"):
        calibrate(flow, x, candidates=(4, 2))


def test_split_data_is_a_partition() -> None:
    x = torch.arange(30.0).reshape(15, 2)
    parts = split_data(x, validation=0.2, test=4, generator=torch.Generator().manual_seed(3))
    assert (parts.train.shape[0], parts.validation.shape[0], parts.test.shape[0]) == (8, 3, 4)
    index = torch.cat([parts.train_index, parts.validation_index, parts.test_index])
    assert sorted(index.tolist()) == list(range(15))  # disjoint, and every row used
    for rows, idx in ((parts.train, parts.train_index), (parts.test, parts.test_index)):
        assert torch.equal(rows, x[idx])
    again = split_data(x, validation=0.2, test=4, generator=torch.Generator().manual_seed(3))
    assert torch.equal(again.test_index, parts.test_index)  # reproducible from the seed
    assert split_data(x, validation=0, test=0).train.shape[0] == 15
    with pytest.raises(ValueError, match="no training rows"):
        split_data(x, validation=10, test=5)
    with pytest.raises(ValueError, match="validation"):
        split_data(x, validation=1.5)
    with pytest.raises(TypeError, match="test"):
        split_data(x, test="half")  # type: ignore[arg-type]


class _Steps:
    """A stand-in trainer: only the step count is read."""

    def __init__(self) -> None:
        self.step_count = 0


def test_early_stopping_keeps_the_best_weights_and_stops() -> None:
    # data ~ N(0, e^{2·0.5}); the flow b = θx has ρ1 = N(0, e^{2θ}): the NLL is least at θ ≈ 0.5
    data = math.exp(0.5) * torch.randn(
        4000, 1, generator=torch.Generator().manual_seed(0), dtype=DT
    )
    field = Scale(0.0)
    flow = InterpolantFlow(field, _normal(1), likelihood=RK4(), steps=8)
    stopper = EarlyStopping(flow, data, patience=2)
    trainer = _Steps()
    stops = []
    for step, theta in enumerate((0.0, 0.4, 0.5, 0.7, 0.9), start=1):
        field.theta.data.fill_(theta)
        trainer.step_count = 10 * step
        stops.append(stopper(trainer))
    assert stops == [False, False, False, False, True] and stopper.stopped
    assert stopper.best_step == 30 and [s for s, _ in stopper.history] == [10, 20, 30, 40, 50]
    exact = -Normal(0.0, math.exp(0.5)).log_prob(data).mean()
    assert stopper.best == pytest.approx(float(exact), abs=1e-3)  # RK4, 8 steps: exact here
    stopper.restore()
    assert float(field.theta.detach()) == 0.5
    # the record round-trips (a resumed run continues the patience count)
    other = EarlyStopping(flow, data, patience=2)
    other.load_state_dict(stopper.state_dict())
    assert (other.best, other.best_step, other.bad, other.history) == (
        stopper.best,
        stopper.best_step,
        stopper.bad,
        stopper.history,
    )
    never = EarlyStopping(flow, data, patience=None)
    assert not any(never() for _ in range(3)) and [s for s, _ in never.history] == [0, 1, 2]
    with pytest.raises(ValueError, match="patience"):
        EarlyStopping(flow, data, patience=0)
    with pytest.raises(TypeError, match="flow"):
        EarlyStopping(field, data)  # type: ignore[arg-type]


def test_early_stopping_stops_the_trainer(tmp_path: Path) -> None:
    from interpolants import GaussianMixture, PairedBatches, Trainer, VelocityObjective
    from interpolants.data import Moons
    from interpolants.train import load_checkpoint

    torch.manual_seed(0)
    base = GaussianMixture.standard_normal(2)
    batches = PairedBatches(base, Moons(), batch_size=32)
    objective = VelocityObjective(LinearInterpolant())
    trainer = Trainer(MLP(2, hidden=16, depth=2), objective, batches, seed=0)
    flow = InterpolantFlow(trainer.sampling_model, base, likelihood=RK4(), steps=2)
    val = Moons().sample(100, torch.Generator().manual_seed(1))
    stopper = EarlyStopping(flow, val, patience=1)
    calls: list[int] = []

    def callback(tr: Trainer) -> bool:
        calls.append(tr.step_count)
        stopper(tr)
        return tr.step_count >= 6  # stop at the second evaluation

    state = trainer.fit(
        20, callback=callback, eval_every=3, checkpoint=tmp_path / "c.pt", progress=False
    )
    assert state.stopped and calls == [3, 6] and trainer.step_count == 6 == state.step
    assert len(state.losses) == 6 and load_checkpoint(tmp_path / "c.pt")["step"] == 6
    assert not trainer.fit(2, callback=lambda tr: True, eval_every=2, progress=False).stopped


@pytest.mark.cuda
def test_to_a_device() -> None:
    field = ExactVelocity()
    flow = InterpolantFlow(MLP(2, hidden=8, depth=2).double(), field.base).to("cuda")
    out = flow().sample((4,))
    assert out.device.type == "cuda"
