r"""Batches for training: sources of samples and the coupled-batch pipeline.

A *source* is anything with ``sample(n, generator) -> Tensor`` (a
:class:`~interpolants.GaussianMixture`, a toy from :mod:`interpolants.datasets`, or a
:class:`TensorData` over a fixed tensor, optionally with labels).

:class:`PairedBatches` draws x0 from the base and x1 (with labels) from the target and pairs
them with a :class:`~interpolants.coupling.Coupling`. It runs either *inline* (the trainer calls
it every step), in background threads of the training process through
:class:`PrefetchedBatches`, or inside :class:`torch.utils.data.DataLoader` worker processes
through :class:`CoupledBatchStream`; the last two overlap the CPU-side assignment of an exact OT
coupling with the model step instead of adding it.

When is each faster? Inline costs ``T_pair + T_step`` per step. Overlapped, the step costs
about ``max(T_step, T_pair / k)`` with ``k`` producers, given ``k`` free cores. Threads share
the process (no transfer, no start-up; the assignment solvers and torch kernels release the
GIL) and win for exact OT on small batches, where a worker process's transfer and scheduling
cost as much as the coupling (batch 256 in 2-D on 2 cores, ``benchmarks/training_step.py``:
1 thread 1.7×, 2 threads 1.55×, 1 worker process 1.9× the independent step, inline 2.5×).
Worker processes win when the coupling holds the GIL for long, as Sinkhorn's Python-level
iterations do (same setting: worker 1.6×, 1 thread 2.1×, inline 2.2×), and for
Python-heavy custom couplings. Inline wins for the independent coupling, for tiny models on
a machine with no spare core, and whenever exact resumability matters (both streams are
reproducible from the seed, but a checkpoint does not capture batches already prefetched).
"""

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol, final, runtime_checkable

import torch
from torch import Tensor
from torch.utils.data import IterableDataset, get_worker_info

from .coupling import Coupling, IndependentCoupling

__all__ = [
    "Batch",
    "CoupledBatchStream",
    "PairedBatches",
    "PrefetchedBatches",
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


@dataclass(frozen=True)
class _Failure:
    error: BaseException


@final
class PrefetchedBatches:
    """Coupled batches computed ahead of time in background threads.

    An iterable of :class:`Batch` for :class:`~interpolants.Trainer`: ``threads`` producer
    threads draw batches from ``batches``, each with its own generator (thread k seeded with
    ``seed + 1000003·k``), and keep up to ``depth`` of them ready each; batch i comes from
    thread i mod ``threads``, so the stream is reproducible for a fixed ``(seed, threads)``.
    The coupling of the next batches runs while the trainer steps on this one. It overlaps
    because the heavy parts of a coupling release the GIL: torch kernels, POT's network
    simplex and lapx's LAPJV all do. Unlike :class:`CoupledBatchStream` in ``DataLoader``
    workers there is no second process and no inter-process transfer, so it pays off even when
    the coupling and the step each take a few milliseconds (exact OT at batch 256 in 2-D,
    ``benchmarks/training_step.py``). Like any overlap it needs free cores: one thread hides a
    coupling up to as slow as the step; more threads help when the coupling is slower than the
    step and cores are free. An error in a producer is raised by the next ``next()``.

    Use it as a context manager, or call :meth:`close`, to stop the threads; they are daemon
    threads, so they never keep the interpreter alive.

    Parameters
    ----------
    batches:
        The batch recipe (sources, batch size, coupling).
    seed:
        Seed of the producers' generators.
    threads:
        Number of producer threads (≥ 1).
    depth:
        How many batches each producer keeps ready (≥ 1).

    Example
    -------
    >>> from interpolants import GaussianMixture, PairedBatches, PrefetchedBatches
    >>> from interpolants.coupling import OTCoupling
    >>> from interpolants.datasets import Moons
    >>> paired = PairedBatches(GaussianMixture.standard_normal(2), Moons(), 128, OTCoupling())
    >>> with PrefetchedBatches(paired, seed=0) as stream:
    ...     batch = next(iter(stream))
    >>> batch.x0.shape, batch.x1.shape
    (torch.Size([128, 2]), torch.Size([128, 2]))
    """

    def __init__(
        self, batches: PairedBatches, seed: int = 0, threads: int = 1, depth: int = 2
    ) -> None:
        if not isinstance(batches, PairedBatches):
            raise TypeError(f"batches must be PairedBatches, got {type(batches).__name__}")
        if threads < 1 or depth < 1:
            raise ValueError(f"threads and depth must be >= 1, got {threads} and {depth}")
        self.batches, self.seed = batches, int(seed)
        self.threads, self.depth = int(threads), int(depth)
        self._queues: list[queue.Queue[Batch | _Failure]] = [
            queue.Queue(maxsize=self.depth) for _ in range(self.threads)
        ]
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []
        self._next = 0  # the producer of the next batch

    def __iter__(self) -> Iterator[Batch]:
        if self._stop.is_set():
            raise RuntimeError("PrefetchedBatches is closed")
        if not self._workers:
            self._workers = [
                threading.Thread(
                    target=self._produce, args=(k,), name=f"interpolants-prefetch-{k}", daemon=True
                )
                for k in range(self.threads)
            ]
            for worker in self._workers:
                worker.start()
        return self

    def __next__(self) -> Batch:
        if not self._workers:
            iter(self)
        source = self._queues[self._next]
        while True:  # wake up now and then: close() from another thread must not strand us
            try:
                item = source.get(timeout=0.1)
                break
            except queue.Empty:
                if self._stop.is_set():
                    raise RuntimeError("PrefetchedBatches is closed") from None
        self._next = (self._next + 1) % self.threads
        if isinstance(item, _Failure):
            self.close()
            raise item.error
        return item

    def _produce(self, k: int) -> None:
        gen = _stream_generator(self.seed, k)
        out = self._queues[k]
        try:
            while not self._stop.is_set():
                item = self.batches(gen)
                while not self._stop.is_set():
                    try:
                        out.put(item, timeout=0.05)
                        break
                    except queue.Full:
                        continue
        except BaseException as error:  # handed to the consumer, raised by next()
            out.put(_Failure(error))

    def close(self) -> None:
        """Stop the producer threads (batches already made are dropped)."""
        self._stop.set()
        workers, self._workers = self._workers, []
        for worker in workers:
            while worker.is_alive():
                for q in self._queues:  # unblock producers waiting on a full queue
                    try:
                        q.get_nowait()
                    except queue.Empty:
                        pass
                worker.join(timeout=0.05)

    def __enter__(self) -> "PrefetchedBatches":
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
