r"""
Multi-process training with torchrun
====================================

:class:`~interpolants.Trainer` needs no change to train on several processes: when
:mod:`torch.distributed` is initialised it wraps the model in
:class:`~torch.nn.parallel.DistributedDataParallel` (gradients averaged across ranks), every
rank draws and couples its own batch from generators seeded by (seed, step, rank), and rank 0
writes the checkpoints. With ``global_coupling=True`` the ranks all-gather their batches and
every rank computes the same coupling of the gathered batch and keeps its slice: a better
plan, for one all-gather and a larger coupling problem per step.

The script below is what you would launch with ::

    torchrun --standalone --nproc_per_node=2 train.py

(``--nproc_per_node`` = the number of GPUs, with the ``nccl`` backend and
``device=f"cuda:{local_rank}"``). This page **runs it**: two CPU processes with the ``gloo``
backend, launched by ``python -m torch.distributed.run``, the module behind ``torchrun``.
"""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import torch

from interpolants import MLP, ODE, Euler, time_grid
from interpolants.data import EightGaussians, Moons
from interpolants.metrics import wasserstein2
from interpolants.train import load_checkpoint

# %%
# The training script
# -------------------
SCRIPT = """
import torch
import torch.distributed as dist

from interpolants import (MLP, BrownianGamma, LinearInterpolant, OTCoupling, PairedBatches,
                          Trainer, VelocityObjective)
from interpolants.data import EightGaussians, Moons


def main() -> None:
    dist.init_process_group("gloo")  # "nccl" for GPUs
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.set_num_threads(1)
    torch.manual_seed(0)  # the same initial weights everywhere (DDP broadcasts rank 0's too)
    batches = PairedBatches(EightGaussians(), Moons(), batch_size=128, coupling=OTCoupling())
    objective = VelocityObjective(LinearInterpolant(BrownianGamma(a=0.1)), antithetic=True)
    trainer = Trainer(MLP(2, hidden=64, depth=3), objective, batches, lr=2e-3, seed=0)
    state = trainer.fit(400, progress=False, checkpoint="checkpoint.pt")
    # DDP keeps the replicas equal: the same checksum of the weights on every rank
    checksum = sum(float(p.double().sum()) for p in trainer.model.parameters())
    print(f"rank {rank} of {world}: {state.step} steps of {batches.batch_size} pairs, "
          f"weight checksum {checksum:.10f}")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
"""

# %%
# Launch it
# ---------
# Each of the two processes draws and couples 128 pairs per step, so a step sees 256 pairs;
# the averaged gradients keep the two replicas identical, which the script checks. Rank 0
# writes ``checkpoint.pt`` at the end. (``Trainer(..., global_coupling=True)`` would couple
# the 256 gathered points at once, by exact OT here, instead of each rank's 128.)
folder = Path(tempfile.mkdtemp())  # removed at the end
(folder / "train.py").write_text(SCRIPT)
env = {**os.environ, "OMP_NUM_THREADS": "1"}
command = [
    sys.executable,
    "-m",
    "torch.distributed.run",
    "--standalone",
    "--nproc_per_node=2",
    "train.py",
]
run = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=600)
if run.returncode != 0:
    raise RuntimeError(f"torchrun failed:\n{run.stdout}\n{run.stderr}")
print("".join(sorted(run.stdout.splitlines(keepends=True))))

# %%
# Use the checkpoint in one process
# ---------------------------------
# The checkpoint holds the plain model's weights (not the DDP wrapper's) and the EMA, so any
# single process loads it into the same architecture and samples.
state = load_checkpoint(folder / "checkpoint.pt")
model = MLP(2, hidden=64, depth=3)
model.load_state_dict(state["ema"])
generator = torch.Generator().manual_seed(1)
x0, reference = EightGaussians().sample(1000, generator), Moons().sample(1000, generator)
with torch.no_grad():
    samples = Euler().integrate(ODE(model), x0, time_grid(8)).state
print(
    f"trained for {state['step']} steps; W2 to the moons with 8 Euler steps: "
    f"{wasserstein2(samples, reference):.3f}"
)

fig, ax = plt.subplots(figsize=(4.5, 4))
ax.scatter(*reference.T, s=2, color="0.7", label="moons")
ax.scatter(*samples.T, s=2, label="samples of the 2-process model")
ax.legend(fontsize=8, markerscale=4)
ax.set_aspect("equal")
plt.show()

shutil.rmtree(folder)
