r"""The training loop: coupling + interpolant + objective + model + optimiser.

:class:`Trainer` owns the model, an exponential moving average (EMA) of its weights, the
optimiser and every random generator, so that a run is deterministic on the CPU for a fixed
seed and a checkpoint captures *all* of its state: resuming gives the same loss sequence as an
uninterrupted run. Checkpoints are written atomically (temporary file in the same folder,
flushed, then ``os.replace``) and loaded with ``torch.load(weights_only=True)``.

Multi-process training (``torchrun``): when :mod:`torch.distributed` is initialised the model
is wrapped in :class:`~torch.nn.parallel.DistributedDataParallel` (gradients averaged across
ranks) and each rank draws and couples its own batch from a generator seeded with
``seed + rank``. With ``global_coupling=True`` the ranks all-gather x0 and x1, every rank
computes the same coupling of the gathered ``W·B`` samples (same seed) and keeps its slice; the
cost is one all-gather of ``2·W·B·d`` numbers per step and a coupling ``W`` times larger
(exact OT: O((W·B)³) time, O((W·B)²) memory on every rank), in exchange for a better plan.
"""

from ._trainer import EMA as EMA
from ._trainer import TrainState as TrainState
from ._trainer import load_checkpoint as load_checkpoint
from ._trainer import save_checkpoint as save_checkpoint

__all__ = [
    "EMA",
    "TrainState",
    "load_checkpoint",
    "save_checkpoint",
]
