r"""
Write your own interpolant, coupling, objective and integrator
==============================================================

Each of the four abstractions is extended by implementing its documented public methods,
and the result composes with everything else in the library. Here is one of each, and the
property tests that check them on the exact Gaussian-mixture test bed
(:class:`~interpolants.analytic.ExactInterpolantFields`: :math:`\rho_t`, :math:`b`, :math:`v`,
:math:`s` and :math:`\eta_z` in closed form between two mixtures). The tests are plain
functions with ``assert``: copy them into a ``test_*.py`` file and pytest runs them.

.. list-table::
   :header-rows: 1
   :widths: 30 70

   * - abstraction
     - what a subclass implements
   * - :class:`~interpolants.Interpolant`
     - ``alpha``, ``beta``, ``alpha_dot``, ``beta_dot``
   * - :class:`~interpolants.Coupling`
     - ``pair(x0, x1, y0, y1, *, generator, want_plan)`` returning
       :class:`~interpolants.coupling.PairIndices`
   * - :class:`~interpolants.Objective`
     - ``sample_losses(predict, sample)``: the per-sample losses
   * - :class:`~interpolants.Integrator`
     - a :class:`~interpolants.integrate.Tableau` (fixed step, as a
       :class:`~interpolants.integrate.FixedStepIntegrator`) or ``solve(problem)``
"""

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import Tensor

from interpolants import (
    MLP,
    ODE,
    Coupling,
    GaussianMixture,
    Interpolant,
    Objective,
    OTCoupling,
    PairedBatches,
    Trainer,
    time_grid,
)
from interpolants.analytic import ExactInterpolantFields
from interpolants.coupling import PairIndices
from interpolants.integrate import FixedStepIntegrator, Tableau
from interpolants.interpolant import NoGamma, QuadraticGamma
from interpolants.metrics import energy_test
from interpolants.objective import check_prediction, regression_loss

torch.manual_seed(0)
DT = torch.float64  # the test bed is exact: check in double precision


# %%
# An interpolant
# --------------
# :math:`\alpha(t) = (1-t)^2`, :math:`\beta(t) = 1-(1-t)^2`: a path that leaves :math:`x_0`
# fast and arrives slowly. The γ schedule is any
# :class:`~interpolants.interpolant.GammaSchedule`; everything else (:math:`x_t`, the
# regression targets, the conversions between fields) comes from the base class.
class QuadraticPath(Interpolant):
    def alpha(self, t: Tensor) -> Tensor:
        return (1 - t) ** 2

    def beta(self, t: Tensor) -> Tensor:
        return 1 - (1 - t) ** 2

    def alpha_dot(self, t: Tensor) -> Tensor:
        return -2 * (1 - t)

    def beta_dot(self, t: Tensor) -> Tensor:
        return 2 * (1 - t)


base = GaussianMixture.isotropic(
    torch.tensor([0.5, 0.5], dtype=DT), torch.tensor([[-2.0, 0.0], [2.0, 0.0]], dtype=DT), 0.5
)
target = GaussianMixture(
    torch.tensor([0.3, 0.7], dtype=DT),
    torch.tensor([[0.0, 2.0], [1.0, -1.0]], dtype=DT),
    torch.stack([0.2 * torch.eye(2, dtype=DT), torch.tensor([[0.4, 0.1], [0.1, 0.3]], dtype=DT)]),
)
interpolant = QuadraticPath(QuadraticGamma(1.0))
exact = ExactInterpolantFields(interpolant, base, target)


def p_value(x: Tensor, y: Tensor) -> float:
    """The energy two-sample test: exactly valid, so p < 1e-3 happens 1 time in 1000 by
    chance when the laws agree."""
    return energy_test(x, y, permutations=499, generator=torch.Generator().manual_seed(0))


def test_interpolant_ends_derivatives_and_marginal() -> None:
    gen = torch.Generator().manual_seed(1)
    x0, x1, z = base.sample(400, gen), target.sample(400, gen), torch.randn(400, 2, dtype=DT)
    assert torch.equal(interpolant.interpolate(0.0, x0, x1, z), x0)
    assert torch.allclose(interpolant.interpolate(1.0, x0, x1, z), x1)
    # the derivatives agree with autograd
    t = torch.rand(16, dtype=DT, requires_grad=True)
    (grad,) = torch.autograd.grad(interpolant.alpha(t).sum(), t)
    assert torch.allclose(grad, interpolant.alpha_dot(t.detach()))
    (grad,) = torch.autograd.grad(interpolant.beta(t).sum(), t)
    assert torch.allclose(grad, interpolant.beta_dot(t.detach()))
    # x_t of independent (x0, x1, z) has the exact marginal rho_t
    xt = interpolant.interpolate(0.4, x0, x1, z)
    assert p_value(xt, exact.sample(0.4, 400, gen)) > 1e-3


test_interpolant_ends_derivatives_and_marginal()
print("interpolant: passed")


# %%
# An integrator
# -------------
# Ralston's second-order Runge–Kutta method is its Butcher tableau; the fixed-step loop (ODEs
# and SDEs, forwards and backwards, NFE counting, saved trajectories) is inherited. The test
# fits the convergence order on the exact velocity instead of eyeballing it.
class Ralston(FixedStepIntegrator):
    tableau = Tableau(c=(0.0, 2 / 3), a=((), (2 / 3,)), b=(0.25, 0.75))
    order = 2


def test_integrator_order_and_samples() -> None:
    x0 = base.sample(16, torch.Generator().manual_seed(2))
    reference = Ralston().integrate(ODE(exact.velocity), x0, time_grid(512, dtype=DT)).state
    steps = np.array([16, 32, 64])
    errors = np.array(
        [
            float(
                (
                    Ralston().integrate(ODE(exact.velocity), x0, time_grid(int(n), dtype=DT)).state
                    - reference
                )
                .abs()
                .max()
            )
            for n in steps
        ]
    )
    order = np.polyfit(np.log(1 / steps), np.log(errors), 1)[0]
    assert abs(order - 2) < 0.3, order
    # the exact flow carries the base to the target
    gen = torch.Generator().manual_seed(3)
    out = Ralston().integrate(ODE(exact.velocity), base.sample(400, gen), time_grid(32, dtype=DT))
    assert p_value(out.state, target.sample(400, gen)) > 1e-3
    print(f"fitted order {order:.2f} from errors {errors}")


test_integrator_order_and_samples()
print("integrator: passed")


# %%
# A coupling
# ----------
# Sort both batches along a random direction and pair them by rank: a permutation (so both
# minibatch marginals are exact), cheap at any batch size, and in one dimension exactly the
# optimal transport. ``pair`` returns indices; the call validates, gathers and carries labels.
class ProjectionCoupling(Coupling):
    def pair(self, x0, x1, y0, y1, *, generator, want_plan):  # type: ignore[no-untyped-def]
        direction = torch.randn(x0.shape[1], generator=generator, dtype=x0.dtype)
        rank1 = torch.argsort(torch.argsort(x1 @ direction.to(x1.device)))
        order0 = torch.argsort(x0 @ direction.to(x0.device))
        return PairIndices(index0=order0[rank1])  # x1 keeps its order


def test_coupling_is_a_permutation_and_1d_optimal() -> None:
    gen = torch.Generator().manual_seed(4)
    x0, x1 = torch.randn(64, 2, generator=gen), torch.rand(64, 2, generator=gen)
    pairs = ProjectionCoupling()(x0, x1, generator=gen)
    assert sorted(pairs.index0.tolist()) == list(range(64)) and pairs.x1 is x1
    a, b = torch.randn(64, 1, generator=gen), 3 * torch.rand(64, 1, generator=gen)
    assert torch.equal(ProjectionCoupling()(a, b, generator=gen).index0, OTCoupling()(a, b).index0)


test_coupling_is_a_permutation_and_1d_optimal()
print("coupling: passed")


# %%
# An objective
# ------------
# Learn the mean velocity :math:`v = E[\dot\alpha x_0 + \dot\beta x_1 \mid x_t]` (one head of
# the split objective). ``sample_losses`` receives the model with its condition bound and an
# :class:`~interpolants.interpolant.InterpolantSample` holding :math:`t`, :math:`x_t` and
# every target, computed lazily. The test checks that the exact :math:`v` minimises the loss:
# on common random numbers, shifting it by :math:`\delta` raises the loss by
# :math:`|\delta|^2/D`.
class MeanVelocityObjective(Objective):
    def sample_losses(self, predict, sample):  # type: ignore[no-untyped-def]
        prediction = check_prediction(predict(sample.t, sample.xt), sample.xt, "model")
        return regression_loss(prediction, sample.mean_velocity)


def test_objective_is_minimised_by_the_exact_field() -> None:
    objective = MeanVelocityObjective(interpolant, antithetic=True)
    gen = torch.Generator().manual_seed(5)
    x0, x1 = base.sample(20_000, gen), target.sample(20_000, gen)

    def loss(shift: float) -> float:
        model = lambda t, x: exact.mean_velocity(t, x) + shift  # noqa: E731
        return float(objective.loss(model, x0, x1, generator=torch.Generator().manual_seed(6)))

    best = loss(0.0)
    assert loss(0.1) > best + 0.005 and loss(-0.1) > best + 0.005


test_objective_is_minimised_by_the_exact_field()
print("objective: passed")

# %%
# All four together
# -----------------
# With γ ≡ 0 the mean velocity is the velocity, so a model trained by the new objective, on
# pairs from the new coupling, along the new path, is sampled by the new integrator; the
# library's trainer and batches glue them. A short run on the same mixtures (in float32),
# compared with the target by the same test: a p-value well above 0.05 means the test cannot
# tell the samples from the target at this sample size.
deterministic = QuadraticPath(NoGamma())
batches = PairedBatches(
    base.to(dtype=torch.float32), target.to(dtype=torch.float32), 256, ProjectionCoupling()
)
trainer = Trainer(
    MLP(2, hidden=64, depth=3), MeanVelocityObjective(deterministic), batches, lr=2e-3, seed=0
)
trainer.fit(1500, progress=False)
gen = torch.Generator().manual_seed(7)
with torch.no_grad():
    x0 = base.sample(1000, gen).float()
    learned = Ralston().integrate(ODE(trainer.sampling_model), x0, time_grid(16))
samples = target.sample(1000, gen).float()
print(
    f"{learned.nfe} NFE; energy test p-value against the target: "
    f"{p_value(learned.state[:400], samples[:400]):.3f}"
)

fig, ax = plt.subplots(figsize=(4.5, 4.5))
ax.scatter(*samples.T, s=3, color="0.6", label="target mixture")
ax.scatter(*learned.state.T, s=3, alpha=0.6, label="samples (user pieces)")
ax.scatter(*x0.T, s=3, alpha=0.3, label="base mixture")
ax.legend(fontsize=8, markerscale=3)
ax.set_aspect("equal")
plt.show()
