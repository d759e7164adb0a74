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
from interpolants.density import InterpolantDistribution, InterpolantFlow
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


@pytest.mark.cuda
def test_to_a_device() -> None:
    field = ExactVelocity()
    flow = InterpolantFlow(MLP(2, hidden=8, depth=2).double(), field.base).to("cuda")
    out = flow().sample((4,))
    assert out.device.type == "cuda"
