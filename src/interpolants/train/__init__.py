r"""The training loop: coupling + interpolant + objective + model + optimiser.

:class:`Trainer` owns the model, an exponential moving average (EMA) of its weights and the
optimiser, and derives every random number of step ``s`` on rank ``r`` from
``(seed, s, r)`` (see :class:`Trainer`), so that a run is deterministic on the CPU for a fixed
seed whatever makes its batches, and a checkpoint captures all of its state: resuming gives
the same loss sequence as an uninterrupted run, under DDP too. Checkpoints
(:func:`save_checkpoint`) are written atomically (temporary file in the same folder, flushed,
then ``os.replace``) with a SHA-256 of their content, verified on load before
``torch.load(weights_only=True)`` reads them; a truncated, corrupt or foreign file raises
:class:`CheckpointError`, with a one-line message.

The loss is the objective's mean squared error (the scale torchcfm and torchebm log);
``accumulate`` splits a batch into slices whose gradients add up to the full batch's, and
``autocast=torch.bfloat16`` runs the model and loss in bfloat16 under :func:`torch.autocast`.

Multi-process training (``torchrun``): when :mod:`torch.distributed` is initialised the model
is wrapped in :class:`~torch.nn.parallel.DistributedDataParallel` (gradients averaged across
ranks) and each rank draws and couples its own batch, seeded from ``(seed, step, rank)``.
With ``global_coupling=True`` the ranks all-gather x0 and x1, every rank computes the same
coupling of the gathered ``W·B`` samples (seeded from ``(seed, step)``) and keeps its slice; the
cost is one all-gather of ``2·W·B·d`` numbers per step and a coupling ``W`` times larger
(exact OT: O((W·B)³) time, O((W·B)²) memory on every rank), in exchange for a better plan.
"""

from ._checkpoint import CheckpointError as CheckpointError
from ._checkpoint import load_checkpoint as load_checkpoint
from ._checkpoint import save_checkpoint as save_checkpoint
from ._ema import EMA as EMA
from ._trainer import TrainState as TrainState

__all__ = [
    "EMA",
    "CheckpointError",
    "TrainState",
    "load_checkpoint",
    "save_checkpoint",
]
