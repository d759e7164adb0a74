r"""
One model, many samplers
========================

A stochastic interpolant learns the velocity :math:`b` and the score :math:`s` of the same
family of densities :math:`\rho_t`. The probability-flow ODE :math:`\dot x = b` and every
SDE

.. math::

   dX = (b + \epsilon s)\,dt + \sqrt{2\epsilon}\,dW \quad (t: 0 \to 1), \qquad
   dY = (b - \epsilon s)\,dt + \sqrt{2\epsilon}\,dW \quad (t: 1 \to 0)

have the marginals :math:`\rho_t` for any diffusion :math:`\epsilon(t) \ge 0`, so
:math:`\epsilon` is chosen **at sampling time**, with no retraining
(:doc:`/concepts/integrators`). Here one model, trained once with the split objective
(:math:`v` and :math:`\eta_z` from one two-headed network), is sampled forwards (base →
target) and backwards (target → base) by the ODE and by SDEs with
:math:`\epsilon(t) = c\,\gamma(t)` for several :math:`c`.
"""

import matplotlib.pyplot as plt
import torch

from interpolants import (
    ODE,
    SDE,
    Euler,
    LinearInterpolant,
    OTCoupling,
    PairedBatches,
    SplitObjective,
    Trainer,
    time_grid,
)
from interpolants.data import EightGaussians, Moons
from interpolants.fields import ScoreFromDenoiser, VelocityFromSplit
from interpolants.integrate import GammaProportionalDiffusion
from interpolants.interpolant import QuadraticGamma
from interpolants.metrics import wasserstein2
from interpolants.nn import TwoHeadMLP

torch.manual_seed(0)

# %%
# Train once
# ----------
# :class:`~interpolants.SplitObjective` regresses the mean velocity
# :math:`v = E[\dot\alpha x_0 + \dot\beta x_1 \mid x_t]` and the denoiser
# :math:`\eta_z = E[z \mid x_t]`; the fields follow exactly from the interpolant:
# :math:`b = v + \dot\gamma\,\eta_z` and :math:`s = -\eta_z / \gamma`. We take the quadratic
# :math:`\gamma(t) = a\,t(1-t)`, whose :math:`\dot\gamma` is bounded: with the Brownian
# :math:`\gamma = \sqrt{a\,t(1-t)}`, :math:`\dot\gamma` diverges at the ends and
# :math:`\dot\gamma\,\eta_z` is finite there only for the exact :math:`\eta_z`, which
# vanishes like :math:`\gamma`, not for a learned one (:doc:`/concepts/interpolants`).
interpolant = LinearInterpolant(QuadraticGamma(a=1.5))
batches = PairedBatches(EightGaussians(), Moons(), batch_size=256, coupling=OTCoupling())
trainer = Trainer(
    TwoHeadMLP(2, hidden=128, depth=3),
    SplitObjective(interpolant, antithetic=True),
    batches,
    lr=2e-3,
    seed=0,
)
trainer.fit(1000, progress=False)
model = trainer.sampling_model
velocity = VelocityFromSplit(interpolant, model)
score = ScoreFromDenoiser(interpolant, lambda t, x: model(t, x)[1])

# %%
# Sample forwards and backwards
# -----------------------------
# The direction is read from the grid: ``time_grid(n)`` runs from 0 to 1,
# ``time_grid(n, 1.0, 0.0)`` from 1 to 0, and the SDE's drift becomes :math:`b - \epsilon s`.
# :class:`~interpolants.integrate.GammaProportionalDiffusion` gives
# :math:`\epsilon(t) = c\,\gamma(t)`, which vanishes at both ends where the learned score
# :math:`-\eta_z/\gamma` is singular, so :math:`\epsilon s = -c\,\eta_z` stays bounded.
# :class:`~interpolants.Euler` steps the ODE as Euler's method and an SDE as
# Euler–Maruyama.
generator = torch.Generator().manual_seed(1)
base = EightGaussians().sample(2000, generator)
target = Moons().sample(2000, generator)
scales = [0.0, 1.0, 4.0, 16.0]
directions = {
    "forwards (8 Gaussians → moons)": (base, target, time_grid(200)),
    "backwards (moons → 8 Gaussians)": (target, base, time_grid(200, 1.0, 0.0)),
}
fig, axes = plt.subplots(2, len(scales), figsize=(12, 6.4), sharex=True, sharey=True)
for row, (title, (start, reference, grid)) in zip(axes, directions.items()):
    print(title)
    for ax, c in zip(row, scales):
        if c == 0:
            dynamics, label = ODE(velocity), "ODE"
        else:
            epsilon = GammaProportionalDiffusion(interpolant, scale=c)
            dynamics, label = SDE(velocity, score, epsilon), f"SDE, ε = {c:g}·γ(t)"
        with torch.no_grad():
            solution = Euler().integrate(dynamics, start, grid, generator=generator)
        w2 = wasserstein2(solution.state[:1000], reference[:1000])
        print(f"  {label:<18} NFE = {solution.nfe:3d}  W2 = {w2:.3f}")
        ax.scatter(*reference.T, s=1, color="0.75")
        ax.scatter(*solution.state.T, s=1, alpha=0.5)
        ax.set_title(f"{label}\nW2 = {w2:.3f}", fontsize=9)
        ax.set_aspect("equal")
    row[0].set_ylabel(title, fontsize=9)
fig.tight_layout()
plt.show()

# %%
# The SDE's noise re-randomises the paths while its drift :math:`\pm\epsilon s` pulls them back
# towards :math:`\rho_t`: with exact fields every :math:`\epsilon` gives the same samples in
# law. With learned fields and a fixed step the errors differ: a moderate :math:`\epsilon`
# can correct the ODE's accumulated error, a very large one needs smaller steps
# (Euler–Maruyama is first order in :math:`\epsilon h`). The SDE costs two field evaluations
# per step (velocity and score) and the ODE one.
#
# Paths of one point
# ------------------
# The same start, integrated four times: the ODE's path is deterministic, the SDE's differ.
start = base[:1].expand(4, 2).contiguous()
grid = time_grid(200)
fig, ax = plt.subplots(figsize=(5, 4))
ax.scatter(*target.T, s=1, color="0.8")
for c, color in ((0.0, "black"), (4.0, "tab:orange")):
    dynamics = (
        ODE(velocity)
        if c == 0
        else SDE(velocity, score, GammaProportionalDiffusion(interpolant, scale=c))
    )
    with torch.no_grad():
        paths = Euler().integrate(dynamics, start, grid, save_at=grid, generator=generator)
    ax.plot(paths.trajectory[..., 0], paths.trajectory[..., 1], color=color, lw=0.8, alpha=0.8)
ax.scatter(*start[0], color="red", zorder=3)
ax.set_title("ODE (black) and SDE with ε = 4·γ(t) (orange)", fontsize=9)
ax.set_aspect("equal")
plt.show()
