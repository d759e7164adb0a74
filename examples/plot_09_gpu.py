r"""
Running on a GPU: devices, dtypes and what stays on the device
==============================================================

Everything in the library computes on the device and in the dtype of the tensors it is given,
and says in its docstring what crosses to the host. This page runs on whatever device the
build has (the CPU for this documentation: the GPU lines are guarded by
:func:`torch.cuda.is_available`) and prints, for each step of a run, where its results live.

The rules, in one place:

* **Data sources** draw on the CPU; :class:`~interpolants.Trainer` moves each batch to its
  ``device``. Move a tensor dataset to the GPU yourself to keep the draws there too.
* **Couplings** return on the inputs' device and dtype. :class:`~interpolants.OTCoupling`
  builds the cost matrix on the device and sends that one :math:`n \times n` matrix to the
  host for the exact assignment (in float64), and the indices come back;
  :class:`~interpolants.coupling.SinkhornCoupling`, the Schrödinger bridge and stable
  matching run entirely on the device.
* **Objectives and integrators** run on the state's device; random numbers come from a
  ``torch.Generator`` **on that device** (``torch.Generator(device)``), so a seeded run is
  reproducible on each device (not bitwise across devices).
* **Metrics**: :func:`~interpolants.metrics.sliced_wasserstein` and
  :func:`~interpolants.metrics.mmd` return 0-d tensors on the device without synchronising;
  :func:`~interpolants.metrics.wasserstein2` (exact, POT) and
  :func:`~interpolants.metrics.energy_test` return Python floats.
* **Dtypes**: models and data in float32 by default; the exact test bed
  (:class:`~interpolants.analytic.ExactInterpolantFields`) computes in its mixtures' dtype,
  float64 for tests.
"""

import time

import matplotlib.pyplot as plt
import torch

from interpolants import (
    MLP,
    ODE,
    BrownianGamma,
    Euler,
    GaussianMixture,
    LinearInterpolant,
    OTCoupling,
    PairedBatches,
    Trainer,
    VelocityObjective,
    log_likelihood,
    time_grid,
)
from interpolants.analytic import ExactInterpolantFields
from interpolants.coupling import SinkhornCoupling
from interpolants.data import Moons
from interpolants.metrics import mmd, sliced_wasserstein, wasserstein2

torch.manual_seed(0)
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
print(f"torch {torch.__version__}, device: {device}")
if torch.cuda.is_available():
    print(torch.cuda.get_device_name(device))
    torch.backends.cuda.matmul.allow_tf32 = True  # faster float32 matrix products on Ampere+

# %%
# Couplings: inputs on the device, outputs on the device
# ------------------------------------------------------
generator = torch.Generator(device).manual_seed(0)
x0 = torch.randn(1024, 2, device=device, generator=generator)
x1 = Moons().sample(1024).to(device)
for coupling in (OTCoupling(), SinkhornCoupling(reg=0.05)):
    pairs = coupling(x0, x1, generator=generator)
    print(
        f"{type(coupling).__name__:>16}: x0 on {pairs.x0.device}, {pairs.x0.dtype}; "
        f"indices on {pairs.index0.device}"
    )

# %%
# Training on the device
# ----------------------
# ``Trainer(device=...)`` moves the model there and each batch as it arrives. Its EMA copy
# lives on the same device.
batches = PairedBatches(
    GaussianMixture.standard_normal(2), Moons(), batch_size=256, coupling=OTCoupling()
)
objective = VelocityObjective(LinearInterpolant(BrownianGamma(a=0.1)), antithetic=True)
trainer = Trainer(MLP(2, hidden=128, depth=3), objective, batches, lr=2e-3, seed=0, device=device)
start = time.perf_counter()
trainer.fit(300, progress=False)
print(
    f"300 steps in {time.perf_counter() - start:.1f} s; "
    f"model on {next(trainer.model.parameters()).device}, "
    f"EMA on {next(trainer.sampling_model.parameters()).device}"
)

# %%
# Sampling, metrics and likelihoods on the device
# -----------------------------------------------
# Give the integrators a state and a grid on the device, and a generator there for SDE noise.
model = trainer.sampling_model
noise = torch.randn(4096, 2, device=device, generator=generator)
with torch.no_grad():
    samples = Euler().integrate(ODE(model), noise, time_grid(16, device=device)).state
reference = Moons().sample(4096).to(device)
sw = sliced_wasserstein(samples, reference, generator=generator)
m = mmd(samples, reference)
print(
    f"samples on {samples.device}; SW2 = {float(sw):.3f} ({sw.device}), "
    f"MMD² = {float(m):.4f} ({m.device})"
)
print(f"exact W2 on the host (POT): {wasserstein2(samples[:1000], reference[:1000]):.3f}")

# %%
# Plotting is the one place where the samples must come to the host: ``.cpu()`` copies them
# (a no-op on the CPU).
fig, ax = plt.subplots(figsize=(4.5, 3.5))
ax.scatter(*reference.cpu().T, s=1, color="0.7", label="moons")
ax.scatter(*samples.cpu().T, s=1, alpha=0.5, label=f"samples ({samples.device.type})")
ax.legend(fontsize=8, markerscale=4)
ax.set_title("300 training steps, 16 Euler steps", fontsize=9)
ax.set_aspect("equal")
plt.show()

# %%
# The likelihood integrates the augmented ODE on the device too; only its scalar summary is
# read back for printing.
base_log_prob = GaussianMixture.standard_normal(2).to(device=device).log_prob
result = log_likelihood(
    model, reference[:512], base_log_prob, grid=time_grid(1, 1.0, 0.0, device=device)
)
print(
    f"log-likelihood on {result.log_prob.device}: mean {float(result.log_prob.mean()):.3f} "
    f"nats ({result.nfe} NFE, Dopri5)"
)

# %%
# Float64 for exact checks
# ------------------------
# The closed-form test bed follows its mixtures' dtype and device; so does every field it
# returns.
exact = ExactInterpolantFields(
    LinearInterpolant(BrownianGamma()),
    GaussianMixture.standard_normal(2, dtype=torch.float64).to(device=device),
    GaussianMixture.isotropic(
        torch.ones(1, dtype=torch.float64, device=device),
        torch.full((1, 2), 2.0, dtype=torch.float64, device=device),
        0.5,
    ),
)
x = torch.zeros(3, 2, dtype=torch.float64, device=device)
b = exact.velocity(0.5, x)
print(f"exact velocity: {b.dtype} on {b.device}\n{b}")

# %%
# Timing on a GPU
# ---------------
# CUDA kernels run asynchronously: synchronise before reading a clock. On a GPU the small MLPs
# of these examples are launch-bound; batches of 10⁴–10⁵ points fill it.
if torch.cuda.is_available():
    big = torch.randn(65536, 2, device=device)
    grid = time_grid(32, device=device)
    with torch.no_grad():
        Euler().integrate(ODE(model), big, grid)  # warm-up
        torch.cuda.synchronize()
        start = time.perf_counter()
        Euler().integrate(ODE(model), big, grid)
        torch.cuda.synchronize()
    print(f"65536 samples, 32 Euler steps: {time.perf_counter() - start:.3f} s")
else:
    print("no CUDA device: the timing cell is skipped on this machine")
