"""The training loop (see :mod:`interpolants.train`)."""

import copy
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, final

import torch
import torch.distributed as dist
from torch import Tensor, nn

from .._atomic import write_atomic
from ..data._batches import Batch, PairedBatches
from ..nn._mlp import drop_labels
from ..objective._base import Objective

__all__ = ["EMA", "TrainState", "load_checkpoint", "save_checkpoint"]


@final
class EMA:
    """Exponential moving average of a model's parameters: θ̄ ← δₙ θ̄ + (1 − δₙ) θ.

    The average lives in a frozen deep copy of the model (``model``), usable as a field.
    Buffers are copied, not averaged. With ``warmup`` (default) the decay of the n-th update
    is δₙ = min(δ, (1 + n)/(10 + n)), so that early averages are not dominated by the random
    initialisation (short runs with δ = 0.999 otherwise sample from weights far behind).
    """

    def __init__(self, model: nn.Module, decay: float = 0.999, warmup: bool = True) -> None:
        if not 0 <= decay < 1:
            raise ValueError(f"decay must lie in [0, 1), got {decay}")
        self.decay = decay
        self.warmup = warmup
        self.updates = 0
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the average towards ``model``'s current parameters."""
        n = self.updates
        decay = min(self.decay, (1 + n) / (10 + n)) if self.warmup else self.decay
        self.updates += 1
        for avg, p in zip(self.model.parameters(), model.parameters()):
            avg.lerp_(p.detach(), 1 - decay)
        for avg_b, b in zip(self.model.buffers(), model.buffers()):
            avg_b.copy_(b)


@dataclass
class TrainState:
    """What :meth:`~Trainer.fit` reports: the step reached and the loss history."""

    step: int = 0
    losses: list[float] = field(default_factory=list)


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Write ``state`` with :func:`torch.save` atomically: temp file, fsync, rename."""
    write_atomic(path, lambda fh: torch.save(state, fh))


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` with ``weights_only=True``."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise ValueError(f"{path} does not hold a checkpoint dictionary")
    return state


def _rank_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


@final
class Trainer:
    r"""Fit a model to an objective on coupled batches.

    Parameters
    ----------
    model:
        The network, called as ``model(t, x)`` (``model(t, x, condition=labels)`` when the
        batches carry labels and ``conditional=True``).
    objective:
        An :class:`Objective` (it owns the interpolant).
    batches:
        A :class:`PairedBatches` drawn inline each step, or any iterable of
        :class:`Batch` (e.g. a ``DataLoader`` over a
        :class:`CoupledBatchStream`, so couplings run in worker processes).
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
        (classifier-free guidance training; the model must accept index ``num_classes``).
    seed:
        Seeds the batch and objective generators (offset by the rank under DDP).
    device:
        Where the model runs; batches are moved there.
    global_coupling:
        Under DDP, couple the all-gathered batch instead of each rank's own (see module notes).

    Example
    -------
    >>> import torch
    >>> from interpolants import (MLP, GaussianMixture, LinearInterpolant, PairedBatches,
    ...                           Trainer, VelocityObjective)
    >>> from interpolants.data import Moons
    >>> torch.manual_seed(0) and None
    >>> batches = PairedBatches(GaussianMixture.standard_normal(2), Moons(), batch_size=64)
    >>> trainer = Trainer(MLP(2, hidden=32, depth=2), VelocityObjective(LinearInterpolant()),
    ...                   batches, seed=0)
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
    ) -> None:
        if not isinstance(objective, Objective):
            raise TypeError(f"objective must be an Objective, got {type(objective).__name__}")
        if grad_clip is not None and not grad_clip > 0:
            raise ValueError(f"grad_clip must be positive or None, got {grad_clip}")
        self.device = torch.device(device)
        self.model = model.to(self.device)
        self.objective = objective
        self.batches = batches
        self.rank, self.world = _rank_world()
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
        self.seed = seed
        self.data_generator = torch.Generator().manual_seed(seed + self.rank)
        self.coupling_generator = torch.Generator().manual_seed(seed + 7919)
        self.noise_generator = torch.Generator(self.device).manual_seed(seed + 104729 + self.rank)
        self.step_count = 0
        self._iterator: Iterator[Batch] | None = None

    # --- one step --------------------------------------------------------------------------
    @property
    def sampling_model(self) -> nn.Module:
        """The EMA model if there is one, else the model (use it for sampling)."""
        return self.ema.model if self.ema is not None else self.model

    def next_batch(self) -> Batch:
        """Draw (inline) or fetch (from the iterable) the next coupled batch."""
        if isinstance(self.batches, PairedBatches):
            if self.global_coupling and self.world > 1:
                return self._global_batch(self.batches)
            return self.batches(self.data_generator)
        if self._iterator is None:
            self._iterator = iter(self.batches)
        return next(self._iterator)

    def _global_batch(self, batches: PairedBatches) -> Batch:
        local = PairedBatches(batches.base, batches.target, batches.batch_size)(self.data_generator)
        x0 = _all_gather(local.x0)
        x1 = _all_gather(local.x1)
        labels = None if local.labels is None else _all_gather(local.labels)
        pairing = batches.coupling(x0, x1, y1=labels, generator=self.coupling_generator)
        n = local.x0.shape[0]
        part = slice(self.rank * n, (self.rank + 1) * n)
        y1 = pairing.y1 if isinstance(pairing.y1, Tensor) else None
        return Batch(pairing.x0[part], pairing.x1[part], None if y1 is None else y1[part])

    def train_step(
        self,
        batch: Batch,
        *,
        t: Tensor | None = None,
        z: Tensor | None = None,
    ) -> float:
        """One optimiser step on ``batch`` (optionally with given times and noise); the loss."""
        batch = batch.to(self.device)
        condition = None
        if self.conditional:
            if batch.labels is None:
                raise ValueError("conditional=True but the batch carries no labels")
            condition = batch.labels
            if self.label_dropout > 0:
                null = int(getattr(self.model, "num_classes", -1))
                if null < 0:
                    raise ValueError("label_dropout needs a model with a num_classes attribute")
                condition = drop_labels(condition, null, self.label_dropout, self.data_generator)
        if not self.train_model.training:
            self.train_model.train()
        loss = self.objective.loss(
            self.train_model,
            batch.x0,
            batch.x1,
            t=t,
            z=z,
            generator=self.noise_generator,
            condition=condition,
        )
        value = float(loss.detach())  # the one host sync of the step
        if not math.isfinite(value):
            raise FloatingPointError(f"non-finite loss {value} at step {self.step_count}")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        if self.grad_clip is not None:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        if self.ema is not None:
            self.ema.update(self.model)
        self.step_count += 1
        return value

    def step(self) -> float:
        """Draw the next batch and take one optimiser step; returns the loss."""
        return self.train_step(self.next_batch())

    # --- the loop ----------------------------------------------------------------------------
    def fit(
        self,
        steps: int,
        *,
        callback: Callable[["Trainer"], None] | None = None,
        eval_every: int = 0,
        checkpoint: str | os.PathLike[str] | None = None,
        checkpoint_every: int = 0,
        progress: bool = True,
    ) -> TrainState:
        """Train for ``steps`` more steps.

        ``callback(trainer)`` runs every ``eval_every`` steps (and after the last one);
        a checkpoint is written every ``checkpoint_every`` steps and at the end when
        ``checkpoint`` is a path (rank 0 only). The progress bar (tqdm) shows the loss
        (running mean) and steps per second.
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
                callback(self)
            if checkpoint is not None and self.rank == 0:
                if (checkpoint_every > 0 and (i + 1) % checkpoint_every == 0) or last:
                    self.save(checkpoint)
        if bar is not None:
            bar.close()
        return state

    # --- checkpoints ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Model, EMA, optimiser, scheduler, step and every RNG state."""
        return {
            "model": self.model.state_dict(),
            "ema": None if self.ema is None else self.ema.model.state_dict(),
            "ema_updates": 0 if self.ema is None else self.ema.updates,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "step": self.step_count,
            "rng": {
                "data": self.data_generator.get_state(),
                "coupling": self.coupling_generator.get_state(),
                "noise": self.noise_generator.get_state(),
                "torch": torch.get_rng_state(),
            },
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore everything saved by :meth:`state_dict`."""
        self.model.load_state_dict(state["model"])
        if self.ema is not None:
            if state.get("ema") is None:
                raise ValueError("the checkpoint has no EMA weights but this trainer uses EMA")
            self.ema.model.load_state_dict(state["ema"])
            self.ema.updates = int(state.get("ema_updates", 0))
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None:
            if state.get("scheduler") is None:
                raise ValueError("the checkpoint has no scheduler state but this trainer has one")
            self.scheduler.load_state_dict(state["scheduler"])
        self.step_count = int(state["step"])
        rng = state["rng"]
        self.data_generator.set_state(rng["data"])
        self.coupling_generator.set_state(rng["coupling"])
        self.noise_generator.set_state(rng["noise"])
        torch.set_rng_state(rng["torch"])

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write :meth:`state_dict` atomically to ``path``."""
        save_checkpoint(self.state_dict(), path)

    def load(self, path: str | os.PathLike[str]) -> None:
        """Resume from a checkpoint written by :meth:`save` (loaded with weights_only=True)."""
        self.load_state_dict(load_checkpoint(path))


def _all_gather(x: Tensor) -> Tensor:
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts)
