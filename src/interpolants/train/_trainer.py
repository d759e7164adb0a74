"""The training loop (see :mod:`interpolants.train`)."""

import math
import os
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any, final

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.utils.data import DataLoader

from ..data._batches import Batch, CoupledBatchStream, PairedBatches
from ..data._prefetch import PrefetchedBatches
from ..data._seed import batch_generator, derived_seed
from ..nn._mlp import drop_labels
from ..objective._base import Objective, bind_condition, check_given_time, check_pair
from ._checkpoint import CheckpointError, first_line, load_checkpoint, save_checkpoint
from ._distributed import all_gather, rank_world
from ._ema import EMA
from ._precision import autocast_context, check_autocast

__all__ = ["TrainState", "Trainer"]

FORMAT = "interpolants.Trainer/2"
"""The ``format`` entry of a trainer's state (:meth:`Trainer.state_dict`)."""
RECENT = 100
"""How many recent losses a trainer keeps (and saves) for running figures."""


@dataclass
class TrainState:
    """What :meth:`~Trainer.fit` reports: the step reached and the losses of this call."""

    step: int = 0
    losses: list[float] = field(default_factory=list)
    #: Whether the callback stopped the run before its last step (early stopping).
    stopped: bool = False


def _slice(condition: Any, part: slice) -> Any:
    """The rows ``part`` of a condition (a tensor, or a tuple of tensors)."""
    if condition is None:
        return None
    if isinstance(condition, Tensor):
        return condition[part]
    if isinstance(condition, tuple) and all(isinstance(c, Tensor) for c in condition):
        return tuple(c[part] for c in condition)
    raise TypeError(
        f"gradient accumulation slices the condition by rows; got a {type(condition).__name__}"
    )


@final
class Trainer:
    r"""Fit a model to an objective on coupled batches.

    One step: the batch of this step (below), its times and noise from the objective
    (:meth:`~interpolants.Objective.draw`), the loss's gradient (accumulated over
    ``accumulate`` slices of the batch), gradient clipping, the optimiser, scheduler and EMA
    updates. The loss reported (and logged by :meth:`fit`) is the objective's mean squared
    error over the whole batch.

    **The model's condition.** The model is called as ``model(t, x)``, or
    ``model(t, x, condition=c)`` with c the batch's labels when ``conditional=True``, the
    condition ξ of a data-dependent coupling (:attr:`Batch.condition`, always passed when
    the batch has one), or the pair ``(labels, ξ)`` when there are both.

    **Randomness.** Every random number of step ``s`` on rank ``r`` comes from generators
    seeded from ``(seed, s, r)``: an inline batch is ``batches(batch_generator(seed, s, r))``
    (:func:`~interpolants.data.batch_generator`), the times and noise of the loss and the
    label dropout are seeded from ``(seed, s, r)`` with their own tags, and the coupling of
    an all-gathered batch (``global_coupling``) from ``(seed, s)``. A step is thus a pure
    function of the weights, the optimiser state, ``seed``, ``s`` and ``r``, whoever makes the
    batches: with :class:`PrefetchedBatches` or a ``DataLoader`` over
    :class:`CoupledBatchStream` (whose producers seed batch ``s`` the same way) the trainer
    tells the stream its step (``seek``) before drawing from it, so the same seed trains on
    the same batches inline, in threads, in processes or in ``DataLoader`` workers, and a
    resumed run continues exactly. A checkpoint holds the step and seed, and each rank's
    global torch RNG state (for the model's own randomness, e.g. dropout). A plain iterable
    cannot be positioned: resuming on one warns.

    Parameters
    ----------
    model:
        The network (see the condition rule above).
    objective:
        An :class:`Objective` (it owns the interpolant).
    batches:
        A :class:`PairedBatches` drawn inline each step, a :class:`PrefetchedBatches`, a
        ``DataLoader`` over a :class:`CoupledBatchStream`, or any iterable of :class:`Batch`.
    optimizer:
        Defaults to Adam with learning rate ``lr``.
    scheduler:
        An optional learning-rate scheduler of ``optimizer``, stepped after every optimiser
        step and saved in checkpoints.
    ema_decay:
        Decay of the EMA of the weights (``None``: no EMA).
    grad_clip:
        Clip the global gradient norm to this value (``None``: no clipping).
    conditional:
        Pass the batch labels to the model as ``condition``.
    label_dropout:
        With ``conditional``, replace labels by the null class with this probability
        (classifier-free guidance training; the model's ``num_classes`` is the null label).
    seed:
        Seeds every generator of the run (above).
    device:
        Where the model runs; batches are moved there.
    global_coupling:
        Under DDP, couple the all-gathered batch instead of each rank's own (see module notes).
    accumulate:
        Split each batch into this many slices (sizes differing by at most one), and sum
        their gradients (each slice's loss scaled by its share of the batch) before one
        optimiser step: the gradient of the full batch, with the activation memory of a slice.
        The times and noise are drawn for the whole batch first, so the step equals the
        full-batch step up to the order of floating-point sums.
    autocast:
        ``torch.bfloat16`` runs the model and the loss under :func:`torch.autocast` in
        bfloat16 where the device supports it (the CPU and bf16-capable GPUs), the weights,
        optimiser and gradients staying in their dtype; ``None`` (default) runs in the
        model's dtype. Raises for another dtype or an unsupported device.

    Example
    -------
    >>> import torch
    >>> from interpolants import (MLP, GaussianMixture, LinearInterpolant, PairedBatches,
    ...                           Trainer, VelocityObjective)
    >>> from interpolants.data import Moons
    >>> torch.manual_seed(0) and None
    >>> batches = PairedBatches(GaussianMixture.standard_normal(2), Moons(), batch_size=64)
    >>> trainer = Trainer(MLP(2, hidden=32, depth=2), VelocityObjective(LinearInterpolant()),
    ...                   batches, seed=0, accumulate=2)
    >>> len(trainer.fit(5, progress=False).losses)
    5
    """

    def __init__(
        self,
        model: nn.Module,
        objective: Objective,
        batches: PairedBatches | Iterable[Batch],
        *,
        optimizer: torch.optim.Optimizer | None = None,
        scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
        lr: float = 1e-3,
        ema_decay: float | None = 0.999,
        grad_clip: float | None = 1.0,
        conditional: bool = False,
        label_dropout: float = 0.0,
        seed: int = 0,
        device: torch.device | str = "cpu",
        global_coupling: bool = False,
        accumulate: int = 1,
        autocast: torch.dtype | None = None,
    ) -> None:
        if not isinstance(objective, Objective):
            raise TypeError(f"objective must be an Objective, got {type(objective).__name__}")
        if grad_clip is not None and not grad_clip > 0:
            raise ValueError(f"grad_clip must be positive or None, got {grad_clip}")
        if not 0 <= label_dropout <= 1:
            raise ValueError(f"label_dropout must lie in [0, 1], got {label_dropout}")
        if not isinstance(accumulate, int) or isinstance(accumulate, bool) or accumulate < 1:
            raise ValueError(f"accumulate must be a positive integer, got {accumulate!r}")
        if optimizer is None and not (isinstance(lr, (int, float)) and 0 < lr < math.inf):
            raise ValueError(f"lr must be a positive finite number, got {lr!r}")
        if ema_decay is not None and not (
            isinstance(ema_decay, (int, float)) and 0 <= ema_decay < 1
        ):
            raise ValueError(f"ema_decay must lie in [0, 1) or be None, got {ema_decay!r}")
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
        self.device = torch.device(device)
        self.autocast = check_autocast(autocast, self.device)
        self.null_label: int | None = None
        if label_dropout > 0:
            if not conditional:
                raise ValueError("label_dropout needs conditional=True")
            null = getattr(model, "num_classes", None)
            if not isinstance(null, int):
                raise ValueError("label_dropout needs a model with an int num_classes attribute")
            self.null_label = null
        self.model = model.to(self.device)
        self.objective = objective
        self.batches = batches
        self.rank, self.world = rank_world()
        self.train_model: nn.Module = self.model
        if self.world > 1:
            self.train_model = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
        self.optimizer = optimizer or torch.optim.Adam(self.model.parameters(), lr=lr)
        self.scheduler = scheduler
        self.ema = EMA(self.model, ema_decay) if ema_decay is not None else None
        self.grad_clip = grad_clip
        self.conditional = conditional
        self.label_dropout = label_dropout
        self.global_coupling = global_coupling
        self.accumulate = int(accumulate)
        self.seed = int(seed)
        self.step_count = 0
        #: The last ``RECENT`` (100) losses, saved in checkpoints, so that a resumed run's
        #: running figures match an uninterrupted one's.
        self.recent_losses: deque[float] = deque(maxlen=RECENT)
        self._noise = torch.Generator(self.device)
        self._iterator: Iterator[Batch] | None = None
        self._position: int | None = None  # the step the open stream yields next
        stream = batches.dataset if isinstance(batches, DataLoader) else batches
        self._stream = (
            stream if isinstance(stream, PrefetchedBatches | CoupledBatchStream) else None
        )
        if self._stream is not None and self._stream.rank != self.rank:
            raise ValueError(
                f"the batch stream makes rank {self._stream.rank}'s batches, but this trainer "
                f"is rank {self.rank}"
            )

    # --- one step --------------------------------------------------------------------------
    @property
    def sampling_model(self) -> nn.Module:
        """The EMA model if there is one, else the model (use it for sampling)."""
        return self.ema.model if self.ema is not None else self.model

    def next_batch(self) -> Batch:
        """The batch of the current step: drawn inline, or the stream's, positioned there."""
        step = self.step_count
        source = self.batches
        if isinstance(source, PairedBatches):
            if self.global_coupling and self.world > 1:
                return self._global_batch(source, step)
            return source(batch_generator(self.seed, step, self.rank))
        if self._stream is not None:
            if self._iterator is None or self._position != step:
                self._stream.seek(step)
                self._iterator = iter(source)
            self._position = step + 1
        elif self._iterator is None:
            if step > 0:
                warnings.warn(
                    f"the trainer is at step {step} but cannot position a "
                    f"{type(source).__name__} there: training continues from its next item, "
                    "not the batch of that step (use PairedBatches, PrefetchedBatches or a "
                    "DataLoader over CoupledBatchStream for an exact resume)",
                    RuntimeWarning,
                    stacklevel=3,
                )
            self._iterator = iter(source)
        return next(self._iterator)

    def _global_batch(self, batches: PairedBatches, step: int) -> Batch:
        x0, x1, y0, y1 = batches._draw(batch_generator(self.seed, step, self.rank))
        g0, g1 = all_gather(x0.to(self.device)), all_gather(x1.to(self.device))
        l1 = None if y1 is None else all_gather(y1.to(self.device))
        l0 = l1 if y0 is y1 else (None if y0 is None else all_gather(y0.to(self.device)))
        generator = torch.Generator(self.device).manual_seed(
            derived_seed(self.seed, step, "global")
        )
        pairs = batches._pair(g0, g1, l0, l1, generator)
        m = pairs.x0.shape[0]
        part = slice(self.rank * m // self.world, (self.rank + 1) * m // self.world)
        labels = None if pairs.labels is None else pairs.labels[part]
        condition = None if pairs.condition is None else pairs.condition[part]
        return Batch(pairs.x0[part], pairs.x1[part], labels, condition)

    def _condition(self, batch: Batch, step: int) -> Any:
        labels = None
        if self.conditional:
            if batch.labels is None:
                raise ValueError("conditional=True but the batch carries no labels")
            labels = batch.labels
            if self.null_label is not None:
                tag = derived_seed(self.seed, step, self.rank, "labels")
                generator = torch.Generator().manual_seed(tag)
                labels = drop_labels(labels, self.null_label, self.label_dropout, generator)
        if labels is None:
            return batch.condition
        return labels if batch.condition is None else (labels, batch.condition)

    def train_step(
        self,
        batch: Batch,
        *,
        t: Tensor | None = None,
        z: Tensor | None = None,
    ) -> float:
        """One optimiser step on ``batch`` (optionally with given times and noise); the loss.

        Given ``t`` is checked to lie in [0, 1] (one host read); drawn ones are not read.
        """
        batch = batch.to(self.device)
        step = self.step_count
        x0, x1 = batch.x0, batch.x1
        check_pair(x0, x1)
        m = x0.shape[0]
        if self.accumulate > m:
            raise ValueError(f"accumulate = {self.accumulate} exceeds the batch size {m}")
        if z is not None and z.shape != x0.shape:
            raise ValueError(f"z must have x0's shape {tuple(x0.shape)}, got {tuple(z.shape)}")
        condition = self._condition(batch, step)
        self._noise.manual_seed(derived_seed(self.seed, step, self.rank, "noise"))
        given = None if t is None else check_given_time(t, x0)
        noise = None if z is None else z.to(dtype=x0.dtype, device=x0.device)
        tt, zz = self.objective.draw(x0, generator=self._noise, z=noise, t=given)
        model = self.train_model
        if not model.training:
            model.train()
        self.optimizer.zero_grad(set_to_none=True)
        total: Tensor | None = None
        bounds = [k * m // self.accumulate for k in range(self.accumulate + 1)]
        for k in range(self.accumulate):
            part = slice(bounds[k], bounds[k + 1])
            last = k == self.accumulate - 1
            sync: AbstractContextManager[Any] = nullcontext()
            if self.world > 1 and not last:  # all-reduce the summed gradient once
                sync = self.train_model.no_sync()  # type: ignore[operator]
            with sync:
                with autocast_context(self.device, self.autocast):
                    predict = bind_condition(model, _slice(condition, part))
                    share = self.objective._mean_at(
                        predict, tt[part], x0[part], x1[part], None if zz is None else zz[part]
                    )
                if self.accumulate > 1:  # the part's share of the batch mean
                    share = share * ((bounds[k + 1] - bounds[k]) / m)
                share.backward()  # type: ignore[no-untyped-call]
            total = share.detach() if total is None else total + share.detach()
        assert total is not None
        value = float(total)  # the one host sync of the step
        if not math.isfinite(value):
            raise FloatingPointError(f"non-finite loss {value} at step {step}")
        if self.grad_clip is not None:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        if self.ema is not None:
            self.ema.update(self.model)
        self.step_count += 1
        self.recent_losses.append(value)
        return value

    def step(self) -> float:
        """Take the batch of this step and one optimiser step on it; returns the loss."""
        return self.train_step(self.next_batch())

    # --- the loop ----------------------------------------------------------------------------
    def fit(
        self,
        steps: int,
        *,
        callback: Callable[["Trainer"], bool | None] | None = None,
        eval_every: int = 0,
        checkpoint: str | os.PathLike[str] | None = None,
        checkpoint_every: int = 0,
        progress: bool = True,
    ) -> TrainState:
        """Train for ``steps`` more steps.

        ``callback(trainer)`` runs every ``eval_every`` steps (and after the last one); when
        it returns ``True`` the run stops there (after writing the checkpoint, if any) and the
        state says ``stopped`` (early stopping: :class:`~interpolants.density.EarlyStopping`;
        under DDP every rank must return the same);
        with ``checkpoint`` a path, a checkpoint is written when the step count is a multiple
        of ``checkpoint_every`` (counted from the start of the run, so a resumed run writes at
        the same steps) and after the last step (every rank calls :meth:`save`, rank 0
        writes). The progress bar (tqdm, rank 0) shows the running loss and steps per second.
        """
        if steps < 0:
            raise ValueError(f"steps must be non-negative, got {steps}")
        state = TrainState(step=self.step_count)
        bar = None
        if progress and self.rank == 0:
            from tqdm.auto import tqdm

            bar = tqdm(total=steps, desc="train", unit="step", dynamic_ncols=True)
        start, running = time.perf_counter(), math.nan
        for i in range(steps):
            loss = self.step()
            state.losses.append(loss)
            running = loss if math.isnan(running) else 0.98 * running + 0.02 * loss
            state.step = self.step_count
            if bar is not None:
                bar.update(1)
                rate = (i + 1) / max(time.perf_counter() - start, 1e-9)
                bar.set_postfix(loss=f"{running:.4f}", steps_per_s=f"{rate:.1f}", refresh=False)
            last = i == steps - 1
            if callback is not None and eval_every > 0 and ((i + 1) % eval_every == 0 or last):
                if callback(self) is True and not last:
                    state.stopped = last = True
            if checkpoint is not None:
                due = checkpoint_every > 0 and self.step_count % checkpoint_every == 0
                if due or last:
                    self.save(checkpoint)
            if state.stopped:
                break
        if bar is not None:
            bar.close()
        return state

    # --- checkpoints ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Model, EMA, optimiser, scheduler, step, seed, recent losses and every rank's RNG.

        Under :mod:`torch.distributed` every rank must call it: it all-gathers each rank's
        global torch RNG state (and CUDA's on a GPU), so that each rank resumes with its own.
        """
        rng = {"torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        ranks: list[Any] = [rng]
        if self.world > 1:
            ranks = [None] * self.world
            dist.all_gather_object(ranks, rng)
        return {
            "format": FORMAT,
            "model": self.model.state_dict(),
            "ema": None if self.ema is None else self.ema.model.state_dict(),
            "ema_updates": 0 if self.ema is None else self.ema.updates,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "step": self.step_count,
            "seed": self.seed,
            "world_size": self.world,
            "rng": ranks,
            "recent_losses": list(self.recent_losses),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore everything saved by :meth:`state_dict` (this rank's RNG state included).

        Raises :class:`~interpolants.train.CheckpointError` for a state that is not a
        trainer's or does not fit this trainer's model, EMA, optimiser or scheduler. Resuming
        with another number of ranks warns: the batches of rank r continue from
        (seed, step, r), but a rank the checkpoint has no RNG state for keeps its own.
        """
        missing = [k for k in ("model", "optimizer", "step", "seed", "rng") if k not in state]
        if state.get("format") != FORMAT or missing:
            raise CheckpointError(
                f"not a Trainer checkpoint of format {FORMAT!r} (format "
                f"{state.get('format')!r}, missing {missing})"
            )
        try:
            self.model.load_state_dict(state["model"])
            if self.ema is not None:
                if state.get("ema") is None:
                    raise CheckpointError("the checkpoint has no EMA weights but this trainer has")
                self.ema.model.load_state_dict(state["ema"])
                self.ema.updates = int(state.get("ema_updates", 0))
            self.optimizer.load_state_dict(state["optimizer"])
            if self.scheduler is not None:
                if state.get("scheduler") is None:
                    raise CheckpointError("the checkpoint has no scheduler state but this has one")
                self.scheduler.load_state_dict(state["scheduler"])
        except (RuntimeError, ValueError, KeyError) as err:
            if isinstance(err, CheckpointError):
                raise
            raise CheckpointError(f"the checkpoint does not fit: {first_line(err)}") from err
        self.step_count = int(state["step"])
        self.seed = int(state["seed"])
        self.recent_losses = deque((float(v) for v in state.get("recent_losses", [])), RECENT)
        ranks = state["rng"]
        written_by = int(state.get("world_size", len(ranks)))
        if written_by != self.world:
            warnings.warn(
                f"the checkpoint was written by {written_by} rank(s) and this run has "
                f"{self.world}: each rank's batches continue from (seed, step, rank), but the "
                "global torch RNG of ranks the checkpoint does not hold keeps its state",
                RuntimeWarning,
                stacklevel=2,
            )
        if self.rank < len(ranks):
            torch.set_rng_state(ranks[self.rank]["torch"])
            if self.device.type == "cuda" and "cuda" in ranks[self.rank]:
                torch.cuda.set_rng_state(ranks[self.rank]["cuda"], self.device)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write :meth:`state_dict` to ``path`` with :func:`~interpolants.train.save_checkpoint`
        (atomic, checksummed). Under :mod:`torch.distributed` every rank calls it; rank 0
        writes, and all return once the file is complete."""
        state = self.state_dict()
        if self.rank == 0:
            save_checkpoint(state, path)
        if self.world > 1:
            dist.barrier()

    def load(self, path: str | os.PathLike[str]) -> None:
        """Resume from a checkpoint written by :meth:`save` (verified, then loaded with
        ``weights_only=True``; see :func:`~interpolants.train.load_checkpoint`)."""
        self.load_state_dict(load_checkpoint(path))
