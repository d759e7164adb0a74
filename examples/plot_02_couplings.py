"""
Couplings side by side
======================

A minibatch coupling decides which x0 is paired with which x1 before the interpolant joins
them. Every coupling here keeps both marginals, so every one of them learns the same
marginal flow in the limit; they differ in how straight its paths are, and so in how few
steps sampling needs (:doc:`/concepts/couplings`).

We compare the independent coupling, exact OT, entropic OT (Sinkhorn), the Schrödinger-bridge
coupling and stable matching on eight Gaussians → two moons: the pairs they draw, then, for a
small model trained with each, the straightness of the learned paths
(:func:`~interpolants.metrics.path_statistics`) and the W2 distance to the target per number
of field evaluations (:func:`~interpolants.metrics.w2_per_nfe`).
"""

import matplotlib.pyplot as plt
import torch

from interpolants import (
    MLP,
    BrownianGamma,
    IndependentCoupling,
    LinearInterpolant,
    OTCoupling,
    PairedBatches,
    Trainer,
    VelocityObjective,
)
from interpolants.coupling import (
    SchrodingerBridgeCoupling,
    SinkhornCoupling,
    StableMatchingCoupling,
)
from interpolants.data import EightGaussians, Moons
from interpolants.metrics import path_statistics, w2_per_nfe, wasserstein2

torch.manual_seed(0)
sigma = 0.1**0.5  # the interpolant's noise: gamma(t) = sigma * sqrt(t (1 - t))
couplings = {
    "independent": IndependentCoupling(),
    "exact OT": OTCoupling(),
    "Sinkhorn": SinkhornCoupling(reg=0.05),
    "Schrödinger bridge": SchrodingerBridgeCoupling(sigma),
    "stable matching": StableMatchingCoupling(),
}

# %%
# The pairs
# ---------
# Each coupling pairs the same two batches of 256 points (64 pairs drawn). The mean squared
# length of the pairs, E|x1 − x0|², is smallest for exact OT by definition; the entropic
# couplings blur it (Sinkhorn's ε is 5 % of the mean cost, the bridge's ε = 2σ²), and stable
# matching, greedy on the cheapest pairs, leaves a few long ones.
generator = torch.Generator().manual_seed(0)
x0 = EightGaussians().sample(256, generator)
x1 = Moons().sample(256, generator)
fig, axes = plt.subplots(1, 5, figsize=(15, 3.3), sharex=True, sharey=True)
for ax, (name, coupling) in zip(axes, couplings.items()):
    pairs = coupling(x0, x1, generator=torch.Generator().manual_seed(1))
    cost = float((pairs.x1 - pairs.x0).square().sum(1).mean())
    for a, b in zip(pairs.x0[:64], pairs.x1[:64]):
        ax.plot([a[0], b[0]], [a[1], b[1]], color="0.6", lw=0.6, zorder=0)
    ax.scatter(*x0.T, s=3)
    ax.scatter(*x1.T, s=3)
    ax.set_title(f"{name}\nE|x1 − x0|² = {cost:.2f}", fontsize=9)
    ax.set_aspect("equal")
fig.tight_layout()
plt.show()

# %%
# Training with each coupling
# ---------------------------
# The same interpolant, objective, model size, seed and number of steps for each; only the
# coupling changes. (500 steps of a small network: enough to compare, not to converge.)
interpolant = LinearInterpolant(BrownianGamma(a=sigma**2))
models = {}
for name, coupling in couplings.items():
    batches = PairedBatches(EightGaussians(), Moons(), batch_size=256, coupling=coupling)
    objective = VelocityObjective(interpolant, antithetic=True)
    trainer = Trainer(MLP(2, hidden=64, depth=3), objective, batches, lr=2e-3, seed=0)
    trainer.fit(500, progress=False)
    models[name] = trainer.sampling_model

# %%
# Straightness and W2 per NFE
# ---------------------------
# Straightness :math:`S = \int_0^1 E|(X_1 - X_0) - b(t, X_t)|^2\,dt` is zero for straight
# paths travelled at constant speed, and then one Euler step is exact. The independent
# coupling's paths cross and bend, so its one-step samples are far off; the OT-like couplings
# are nearly straight and nearly as good at one step as at 32.
generator = torch.Generator().manual_seed(2)
start = EightGaussians().sample(1000, generator)
reference = Moons().sample(1000, generator)
nfes = [1, 2, 4, 8, 32]
curves, straightness = {}, {}
print(f"{'coupling':>20}  {'S':>6}  {'K':>6}  " + "  ".join(f"NFE={n:<3d}" for n in nfes))
for name, model in models.items():
    with torch.no_grad():
        stats = path_statistics(model, start, steps=32)
    curves[name] = w2_per_nfe(model, start, reference, nfes)
    straightness[name] = float(stats.straightness)
    row = "  ".join(f"{curves[name][n]:7.3f}" for n in nfes)
    print(f"{name:>20}  {straightness[name]:6.3f}  {float(stats.kinetic_energy):6.3f}  {row}")
floor = wasserstein2(Moons().sample(1000, generator), reference)
print(f"W2 between two target samples of this size: {floor:.3f}")

fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
for name, curve in curves.items():
    right.plot(nfes, list(curve.values()), marker="o", label=name)
right.axhline(floor, color="0.5", ls="--", lw=1, label="two target samples")
right.set_xscale("log", base=2)
right.set_xlabel("NFE (Euler steps)")
right.set_ylabel("W2 to the target")
right.legend(fontsize=8)
left.barh(list(straightness), list(straightness.values()), color="tab:blue")
left.set_xscale("log")
left.set_xlabel("straightness S (log scale)")
left.invert_yaxis()
fig.tight_layout()
plt.show()
