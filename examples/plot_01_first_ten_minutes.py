"""
The first ten minutes
=====================

Train a stochastic interpolant from eight Gaussians to two moons with an exact optimal-transport
coupling, sample it with an ODE, and look at the result. Everything a first script needs is at
the top level of :mod:`interpolants`, one object for each arrow of ::

    training:  (x0, x1) → coupling → interpolant → objective(model) → loss
    sampling:  x0 → integrator(model) → x1
"""

# %%
# The pieces
# ----------
# The interpolant :math:`x_t = (1-t)\,x_0 + t\,x_1 + \sqrt{a\,t(1-t)}\,z` (a linear path with
# a little Brownian noise, :class:`~interpolants.BrownianGamma`), an exact minibatch OT
# coupling, and the velocity objective, whose minimiser is the velocity :math:`b(t, x)` of the
# probability-flow ODE (:doc:`/concepts/objectives`).
import matplotlib.pyplot as plt
import torch

from interpolants import (
    MLP,
    ODE,
    BrownianGamma,
    Dopri5,
    LinearInterpolant,
    OTCoupling,
    PairedBatches,
    Trainer,
    VelocityObjective,
    time_grid,
)
from interpolants.data import EightGaussians, Moons
from interpolants.metrics import w2_per_nfe, wasserstein2

torch.manual_seed(0)
interpolant = LinearInterpolant(BrownianGamma(a=0.1))
objective = VelocityObjective(interpolant, antithetic=True)
batches = PairedBatches(EightGaussians(), Moons(), batch_size=256, coupling=OTCoupling())
print(objective)

# %%
# One coupled batch
# -----------------
# A call of :class:`~interpolants.PairedBatches` draws 256 points of each distribution and
# pairs them: the exact OT pairing is a permutation minimising the total squared distance, so
# pairs join nearby points and the lines between them do not cross.
batch = batches(torch.Generator().manual_seed(0))
fig, ax = plt.subplots(figsize=(4.5, 4.5))
for a, b in zip(batch.x0[:96], batch.x1[:96]):
    ax.plot([a[0], b[0]], [a[1], b[1]], color="0.7", lw=0.6, zorder=0)
ax.scatter(*batch.x0.T, s=6, label="x0 ~ 8 Gaussians")
ax.scatter(*batch.x1.T, s=6, label="x1 ~ moons")
ax.set_aspect("equal")
ax.legend(loc="lower left", fontsize=8)
ax.set_title("one OT-coupled batch (96 of 256 pairs drawn)")
plt.show()

# %%
# Training
# --------
# :class:`~interpolants.Trainer` draws a coupled batch, takes an Adam step on the objective and
# keeps an exponential moving average (EMA) of the weights, which is what we sample with.
model = MLP(2, hidden=128, depth=3)
trainer = Trainer(model, objective, batches, lr=2e-3, seed=0)
state = trainer.fit(1500, progress=False)
losses = torch.tensor(state.losses)
print(
    f"{state.step} steps; median loss of the first / last 100 steps: "
    f"{losses[:100].median():.3f} / {losses[-100:].median():.3f}"
)

# %%
# The loss is a mean squared error whose optimum is not zero but the conditional variance of
# the target, and with the Brownian γ its value has a heavy tail near t = 0 and 1 (the target
# holds γ̇z): the median shows the trend. ``antithetic=True`` removes that tail from the
# gradient.

# %%
# Sampling
# --------
# Integrate :math:`\dot x = b(t, x)` from fresh base points with the adaptive Dormand–Prince
# method, saving the state at the nine points of the grid to draw the paths (the adaptive
# method steps between grid points as its error control asks).
generator = torch.Generator().manual_seed(1)
x0 = EightGaussians().sample(2000, generator)
reference = Moons().sample(2000, generator)
with torch.no_grad():
    solution = Dopri5(rtol=1e-4, atol=1e-4).integrate(
        ODE(trainer.sampling_model), x0, time_grid(8), save_at=time_grid(8)
    )
print(f"{solution.nfe} field evaluations, {solution.steps} accepted steps")
print(f"W2(samples, moons) = {wasserstein2(solution.state, reference):.3f}")

fig, axes = plt.subplots(1, 3, figsize=(11, 3.8), sharex=True, sharey=True)
axes[0].scatter(*x0.T, s=2, alpha=0.5)
axes[0].set_title("base: 8 Gaussians")
paths = solution.trajectory[:, :300]
axes[1].plot(paths[..., 0], paths[..., 1], color="tab:blue", lw=0.4, alpha=0.6)
axes[1].scatter(*paths[-1].T, s=2, color="tab:orange")
axes[1].set_title("ODE paths (300 of 2000)")
axes[2].scatter(*reference.T, s=2, alpha=0.3, color="0.5", label="moons")
axes[2].scatter(*solution.state.T, s=2, alpha=0.5, color="tab:orange", label="samples")
axes[2].set_title("samples vs. the target")
axes[2].legend(loc="lower left", markerscale=4, fontsize=8)
for ax in axes:
    ax.set_aspect("equal")
fig.tight_layout()
plt.show()

# %%
# How many steps does it need?
# ----------------------------
# The OT coupling makes the paths nearly straight, so even one Euler step lands close:
# :func:`~interpolants.metrics.w2_per_nfe` measures the exact W2 distance to held-out target
# points per number of field evaluations. The last line is the floor: W2 between two
# independent samples of the moons of this size.
nfes = [1, 2, 4, 8, 16, 32]
curve = w2_per_nfe(trainer.sampling_model, x0[:1000], reference[:1000], nfes)
floor = wasserstein2(Moons().sample(1000, generator), reference[:1000])
for nfe, w2 in curve.items():
    print(f"Euler, NFE = {nfe:2d}: W2 = {w2:.3f}")
print(f"two target samples:  W2 = {floor:.3f}")
