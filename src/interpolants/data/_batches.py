r"""Batches for training: sources of samples and the coupled-batch pipeline.

A *source* is anything with ``sample(n, generator) -> Tensor`` (a
:class:`GaussianMixture`, a toy from :mod:`interpolants.data`, or a
:class:`TensorData` over a fixed tensor, optionally with labels).

:class:`PairedBatches` draws x0 from the base and x1 (with labels) from the
target and pairs them with a :class:`Coupling`. It runs either *inline* (the
trainer calls it every step), in background threads or processes through
:class:`PrefetchedBatches`, or inside :class:`torch.utils.data.DataLoader`
worker processes through :class:`CoupledBatchStream`; the last two overlap
the CPU-side assignment of an exact OT coupling with the model step instead of adding it.

When is each faster? Inline costs ``T_pair + T_step`` per step. Overlapped, the step costs
about ``max(T_step, T_pair / k)`` with ``k`` producers and ``k`` free cores, and about
``(T_pair + T_step) / 2`` on two cores when the training loop assists (see
:class:`PrefetchedBatches`; measured in ``benchmarks/training_step.py``).
``PrefetchedBatches``'s processes return a batch as raw bytes through a pipe, while a
``DataLoader`` worker moves every tensor through a shared-memory file, which costs as much as a
small coupling. Inline wins for the independent coupling, for tiny models on a machine with no
spare core, and whenever exact resumability matters (the streams are reproducible from the
seed, but a checkpoint does not capture batches already prefetched).
"""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol, final, runtime_checkable

import torch
from torch import Tensor
from torch.utils.data import IterableDataset, get_worker_info

from ..coupling._base import Coupling, IndependentCoupling

__all__ = [
    "Batch",
    "CoupledBatchStream",
    "PairedBatches",
    "Source",
    "TensorData",
]


@runtime_checkable
class Source(Protocol):
    """Anything that draws ``n`` samples with a generator."""

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor: ...


@final
class TensorData:
    """A fixed tensor of samples (and optional labels), drawn uniformly with replacement."""

    def __init__(self, data: Tensor, labels: Tensor | None = None) -> None:
        if not isinstance(data, Tensor) or data.ndim < 1 or data.shape[0] == 0:
            raise ValueError("data must be a non-empty tensor of shape (N, *dims)")
        if labels is not None and labels.shape != (data.shape[0],):
            raise ValueError(f"labels must have shape ({data.shape[0]},), got {labels.shape}")
        self.data, self.labels = data, labels

    def indices(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` row indices drawn uniformly with replacement."""
        return torch.randint(0, self.data.shape[0], (n,), generator=generator)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` rows drawn uniformly with replacement."""
        return self.data[self.indices(n, generator)]


@dataclass(frozen=True)
class Batch:
    """A coupled training batch: paired ``x0``, ``x1`` and the target labels, if any."""

    x0: Tensor
    x1: Tensor
    labels: Tensor | None = None

    def to(self, device: torch.device | str) -> "Batch":
        """The batch on ``device``."""
        labels = None if self.labels is None else self.labels.to(device)
        return Batch(self.x0.to(device), self.x1.to(device), labels)


@final
class PairedBatches:
    """Draw (x0, x1[, labels]) from two sources and pair them with a coupling.

    Parameters
    ----------
    base, target:
        Sources of x0 and x1. A :class:`TensorData` target with labels yields labels, which a
        label-conditional coupling uses and the trainer passes on as the model's condition.
    batch_size:
        Samples per batch.
    coupling:
        The minibatch coupling (independent by default).
    """

    def __init__(
        self,
        base: Source,
        target: Source,
        batch_size: int,
        coupling: Coupling | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        for name, src in (("base", base), ("target", target)):
            if not isinstance(src, Source):
                raise TypeError(f"{name} must have a sample(n, generator) method")
        self.base, self.target = base, target
        self.batch_size = batch_size
        self.coupling = IndependentCoupling() if coupling is None else coupling

    def __call__(self, generator: torch.Generator | None = None) -> Batch:
        """One coupled batch (on the sources' device, normally the CPU)."""
        n = self.batch_size
        x0 = self.base.sample(n, generator)
        labels: Tensor | None = None
        if isinstance(self.target, TensorData) and self.target.labels is not None:
            idx = self.target.indices(n, generator)
            x1, labels = self.target.data[idx], self.target.labels[idx]
        else:
            x1 = self.target.sample(n, generator)
        x0 = x0.to(x1.dtype)
        if isinstance(self.coupling, IndependentCoupling):
            return Batch(x0, x1, labels)  # already independent draws: pairing is a no-op
        pairing = self.coupling(x0, x1, y1=labels, generator=generator)
        y1 = pairing.y1
        return Batch(pairing.x0, pairing.x1, y1 if isinstance(y1, Tensor) else None)


def _stream_generator(seed: int, k: int) -> torch.Generator:
    """The generator of producer ``k`` of a batch stream seeded with ``seed``."""
    return torch.Generator().manual_seed(seed + 1_000_003 * k)


@final
class CoupledBatchStream(IterableDataset[Batch]):
    """An endless stream of coupled batches for :class:`torch.utils.data.DataLoader` workers.

    Use with ``DataLoader(stream, batch_size=None, num_workers=k)``. Worker ``w`` draws from
    its own generator seeded with ``seed + 1000003·(w + 1)``, so the stream is reproducible for a
    fixed ``(seed, k)``.
    """

    def __init__(self, batches: PairedBatches, seed: int = 0) -> None:
        self.batches, self.seed = batches, seed

    def __iter__(self) -> Iterator[Batch]:
        info = get_worker_info()
        gen = _stream_generator(self.seed, 0 if info is None else info.id + 1)
        while True:
            yield self.batches(gen)
