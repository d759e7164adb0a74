r"""Coupled batches computed ahead of the training step by background producers.

:class:`PrefetchedBatches` runs ``workers`` producers that compute upcoming batches of a
:class:`PairedBatches` while the trainer steps on the current one. Batch i is
drawn with its own generator, seeded from ``(seed, i, rank)`` alone (:func:`batch_generator`),
so the stream is the same whoever computes which batch: any number of producers, threads or
processes, with or without the consumer's help, and the same as the trainer's inline batches
and a ``DataLoader`` over :class:`CoupledBatchStream` with that seed.

The producers are threads of the training process or separate processes:

* **threads** share the process: no start-up and no transfer, and batches may live on any
  device. They overlap because the heavy parts of a coupling release the GIL (torch kernels,
  POT's network simplex, lapx's LAPJV), but each still needs the GIL for its Python-level
  work, as does the training step, so on a busy interpreter part of the overlap is lost.
* **processes** have their own interpreters, so nothing waits on the GIL. A batch comes back
  through a pipe as raw bytes, not through :mod:`torch.multiprocessing`'s shared-memory
  files (what a :class:`~torch.utils.data.DataLoader` worker uses), which cost more than a
  small coupling. Batches must be CPU tensors; each producer
  process runs torch with one thread.

*Assist*: when the next batch is not ready, the consumer (the training loop) computes an
upcoming unclaimed batch itself instead of idling, and takes it when its turn comes. With one
producer on a 2-core machine this splits the coupling work so that neither core idles:
a coupling of T_pair and a step of T_step cost about (T_pair + T_step)/2 per step rather than
max(T_pair, T_step), without a third busy task competing for the two cores.

The trade-offs between the kinds of producers are measured in
``benchmarks/training_step.py``.
"""

import multiprocessing
import multiprocessing.connection
import multiprocessing.synchronize
import pickle
import queue
import signal
import threading
import traceback
from collections.abc import Callable
from types import TracebackType
from typing import Any, Literal, TypeAlias, final

import numpy as np
import torch
from torch import Tensor

from ._batches import Batch, PairedBatches
from ._seed import batch_generator, default_rank

__all__ = ["PrefetchedBatches"]

_POLL_S = 0.05  # how often a waiting side looks at the stop flag
_Wire: TypeAlias = tuple[str, tuple[int, ...], np.ndarray] | None


def _to_wire(t: Tensor | None) -> _Wire:
    """A CPU tensor as (dtype name, shape, its bytes as a uint8 array): any dtype, bf16 too."""
    if t is None:
        return None
    if t.device.type != "cpu":
        raise ValueError(
            f"process producers need CPU batches, got a tensor on {t.device}; use threads"
        )
    flat = t.detach().resolve_conj().resolve_neg().contiguous().reshape(-1)
    return str(t.dtype).removeprefix("torch."), tuple(t.shape), flat.view(torch.uint8).numpy()


def _from_wire(w: _Wire) -> Tensor | None:
    if w is None:
        return None
    dtype, shape, data = w
    return torch.from_numpy(data).view(getattr(torch, dtype)).reshape(shape)


def _portable(error: BaseException) -> BaseException:
    """``error`` if it survives pickling, else a RuntimeError carrying its text."""
    try:
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:
        return RuntimeError(f"{type(error).__name__}: {error}")


def _claim(counter: Any) -> int:
    """Take the next unclaimed batch index from a shared ``multiprocessing.Value`` (safe from
    threads and processes alike)."""
    with counter.get_lock():
        index = int(counter.value)
        counter.value = index + 1
    return index


def _produce(
    batches: PairedBatches,
    seed: int,
    rank: int,
    counter: Any,
    slots: Any,
    stopped: Callable[[], bool],
    emit: Callable[[int, Batch], None],
) -> None:
    """A producer's loop, in a thread or a process: per free slot (a semaphore of ``depth``),
    claim the next batch index, make that batch and ``emit`` it, until ``stopped()``."""
    while True:
        while not slots.acquire(timeout=_POLL_S):
            if stopped():
                return
        if stopped():
            return
        index = _claim(counter)
        emit(index, batches(batch_generator(seed, index, rank)))


def _process_producer(
    batches: PairedBatches,
    seed: int,
    rank: int,
    counter: Any,
    conn: multiprocessing.connection.Connection,
    slots: multiprocessing.synchronize.Semaphore,
    stop: multiprocessing.synchronize.Event,
) -> None:
    """Body of a producer process: :func:`_produce`, each batch sent down ``conn`` as bytes.

    Ctrl-C is the parent's to handle (it stops the producers through ``stop``), and a producer
    whose parent has died without stopping it exits on its own.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(1)
    parent = multiprocessing.parent_process()

    def stopped() -> bool:
        return stop.is_set() or (parent is not None and not parent.is_alive())

    def send(index: int, b: Batch) -> None:
        wires = (_to_wire(b.x0), _to_wire(b.x1), _to_wire(b.labels), _to_wire(b.condition))
        conn.send(("batch", index, *wires))

    try:
        _produce(batches, seed, rank, counter, slots, stopped, send)
    except BaseException as error:  # handed to the consumer, raised by next()
        text = "".join(traceback.format_exception(error))
        try:
            conn.send(("error", _portable(error), text))
        except Exception:
            pass


class _Closed(RuntimeError):
    def __init__(self) -> None:
        super().__init__("PrefetchedBatches is closed")


class _RemoteTraceback(Exception):
    """The traceback of an error raised in a producer process (attached as its cause)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)

    def __str__(self) -> str:
        return f"\n{self.args[0]}"


@final
class PrefetchedBatches:
    """Coupled batches computed ahead of time by background threads or processes.

    An iterable of :class:`Batch` for :class:`Trainer`. Batch i
    is ``batches(batch_generator(seed, i, rank))``, whoever computes it, so the stream is
    reproducible from ``(seed, rank)`` alone and identical for any ``workers``, ``backend`` and
    ``assist``, and to the trainer's inline batches with that seed. Each producer keeps up to
    ``depth`` batches in flight (made or being made); the coupling of the next batches runs
    while the trainer steps on this one. An error in a producer is raised by ``next()`` (at
    the latest when the failed batch is due), which also closes the stream.
    :class:`~interpolants.Trainer` calls :meth:`seek` with its step before its first batch,
    so a run resumed from a checkpoint continues the stream without ``start``; under
    :mod:`torch.distributed` each rank's stream makes that rank's batches (``rank``).

    Like any overlap it needs free cores. Which backend (measurements in
    :mod:`interpolants.data`): ``"process"`` for CPU couplings that keep a core busy for
    milliseconds (exact OT, Sinkhorn), as nothing is shared with the step's GIL;
    ``"thread"`` (the default) for batches on an accelerator, for couplings that cannot be
    pickled under a ``spawn`` start method, and when a process's start-up (tens of
    milliseconds) matters.

    Use it as a context manager, or call :meth:`close` (safe from another thread), to stop
    the producers. Threads are daemon threads; producer processes ignore Ctrl-C (the
    training script decides what it means) and exit when the training process is gone.

    Parameters
    ----------
    batches:
        The batch recipe (sources, batch size, coupling).
    seed:
        Seed of the stream.
    workers:
        Number of producers (≥ 1).
    depth:
        Batches in flight per producer (≥ 1).
    backend:
        ``"thread"`` or ``"process"``.
    start_method:
        For processes: the :mod:`multiprocessing` start method (``"fork"``, ``"spawn"``,
        ``"forkserver"``); ``None`` takes the platform's default, as ``DataLoader`` does.
        Under ``spawn`` and ``forkserver``, ``batches`` must be picklable.
    assist:
        When the next batch is not ready, compute an upcoming one in the caller instead of
        waiting (at most one at a time); ``False`` leaves all the work to the producers.
    start:
        Index of the first batch (≥ 0); :meth:`seek` moves it.
    rank:
        The rank whose batches to make; ``None``: this process's :mod:`torch.distributed`
        rank at construction (0 when not distributed).

    Example
    -------
    >>> from interpolants import GaussianMixture, OTCoupling, PairedBatches
    >>> from interpolants.data import Moons, PrefetchedBatches
    >>> paired = PairedBatches(GaussianMixture.standard_normal(2), Moons(), 128, OTCoupling())
    >>> with PrefetchedBatches(paired, seed=0) as stream:
    ...     batch = next(iter(stream))
    >>> batch.x0.shape, batch.x1.shape
    (torch.Size([128, 2]), torch.Size([128, 2]))
    """

    def __init__(
        self,
        batches: PairedBatches,
        seed: int = 0,
        workers: int = 1,
        depth: int = 2,
        backend: Literal["thread", "process"] = "thread",
        start_method: str | None = None,
        assist: bool = True,
        start: int = 0,
        rank: int | None = None,
    ) -> None:
        if not isinstance(batches, PairedBatches):
            raise TypeError(f"batches must be PairedBatches, got {type(batches).__name__}")
        if start < 0:
            raise ValueError(f"start must be >= 0, got {start}")
        if workers < 1 or depth < 1:
            raise ValueError(f"workers and depth must be >= 1, got {workers} and {depth}")
        if backend not in ("thread", "process"):
            raise ValueError(f"backend must be 'thread' or 'process', got {backend!r}")
        if start_method is not None:
            if backend != "process":
                raise ValueError("start_method applies to backend='process' only")
            methods = multiprocessing.get_all_start_methods()
            if start_method not in methods:
                raise ValueError(f"start_method must be one of {methods}, got {start_method!r}")
        self.batches, self.seed = batches, int(seed)
        self.workers, self.depth = int(workers), int(depth)
        self.backend, self.start_method, self.assist = backend, start_method, bool(assist)
        self.start = int(start)
        self.rank = default_rank() if rank is None else int(rank)
        if self.rank < 0:
            raise ValueError(f"rank must be >= 0, got {self.rank}")
        self._stop = threading.Event()
        self._close_lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        """The state of a stream that has not started (producers not running)."""
        self._started = False
        self._index = self.start  # the batch next() returns next
        self._ready: dict[int, tuple[int | None, Batch]] = {}  # index -> (producer, batch)
        self._own = 0  # batches the consumer made that are not handed out yet
        self._slots: list[Any] = []  # per producer: a semaphore of `depth` slots
        self._counter: Any = None  # the next unclaimed batch index (a multiprocessing.Value)
        # thread backend
        self._results: queue.Queue[tuple[int, int, Batch | BaseException]] = queue.Queue()
        self._threads: list[threading.Thread] = []
        # process backend
        self._processes: list[Any] = []
        self._conns: list[multiprocessing.connection.Connection] = []
        self._process_stop: multiprocessing.synchronize.Event | None = None

    def seek(self, index: int) -> None:
        """Make batch ``index`` the next one ``next()`` returns.

        On a started stream the producers are stopped (batches already made are dropped) and
        restarted from ``index`` at the next ``next()``; a position equal to the current one
        changes nothing. Not to be called while another thread runs ``next()``. Raises
        ``RuntimeError`` on a closed stream.
        """
        if index < 0:
            raise ValueError(f"index must be >= 0, got {index}")
        if self._stop.is_set():
            raise _Closed()
        if self._started and index == self._index:
            return
        if self._started:
            self._stop.set()
            self._halt()
            self._stop = threading.Event()
        self.start = int(index)
        self._reset()

    def __iter__(self) -> "PrefetchedBatches":
        if self._stop.is_set():
            raise _Closed()
        if not self._started:
            self._started = True
            try:
                ctx: Any = multiprocessing.get_context(self.start_method)
                self._counter = ctx.Value("q", self.start)
                if self.backend == "thread":
                    self._start_threads()
                else:
                    self._start_processes(ctx)
            except BaseException:
                self.close()  # a half-started stream is not left behind
                raise
        return self

    def __next__(self) -> Batch:
        iter(self)
        want = self._index
        try:
            while want not in self._ready:
                if self._collect(block=False) or want in self._ready:
                    continue
                if self.assist and self._own == 0:  # make an upcoming batch instead of idling
                    index = _claim(self._counter)
                    made = self.batches(batch_generator(self.seed, index, self.rank))
                    self._ready[index] = (None, made)
                    self._own += 1
                    continue
                self._collect(block=True)
            producer, batch = self._ready.pop(want)
            if producer is None:
                self._own -= 1
            else:
                self._slots[producer].release()
            if self._stop.is_set():
                raise _Closed()
        except BaseException:
            if self._stop.is_set():  # closed meanwhile (e.g. from another thread)
                raise _Closed() from None
            self.close()
            raise
        self._index += 1
        return batch

    def _collect(self, block: bool) -> bool:
        """Move arrived batches into ``_ready``; wait up to a poll interval if ``block``.
        Raises a producer's error, or :class:`_Closed` once closed. Whether any arrived."""
        if self._stop.is_set():
            raise _Closed()
        if self.backend == "thread":
            return self._collect_from_threads(block)
        return self._collect_from_processes(block)

    # -- threads ---------------------------------------------------------------------------

    def _start_threads(self) -> None:
        self._slots = [threading.Semaphore(self.depth) for _ in range(self.workers)]
        self._threads = [
            threading.Thread(
                target=self._produce, args=(k,), name=f"interpolants-prefetch-{k}", daemon=True
            )
            for k in range(self.workers)
        ]
        for worker in self._threads:
            worker.start()

    def _produce(self, k: int) -> None:
        def put(index: int, b: Batch) -> None:
            self._results.put((k, index, b))

        try:
            args = (self.batches, self.seed, self.rank, self._counter, self._slots[k])
            _produce(*args, self._stop.is_set, put)
        except BaseException as error:  # handed to the consumer, raised by next()
            self._results.put((k, -1, error))

    def _collect_from_threads(self, block: bool) -> bool:
        arrived = False
        while True:
            try:
                if block and not arrived:
                    k, index, item = self._results.get(timeout=2 * _POLL_S)
                else:
                    k, index, item = self._results.get_nowait()
            except queue.Empty:
                return arrived
            if isinstance(item, BaseException):
                raise item
            self._ready[index] = (k, item)
            arrived = True

    # -- processes -------------------------------------------------------------------------

    def _start_processes(self, ctx: Any) -> None:  # typeshed's contexts lack Process
        self._process_stop = ctx.Event()
        for k in range(self.workers):
            receiver, sender = ctx.Pipe(duplex=False)
            slots = ctx.Semaphore(self.depth)
            process = ctx.Process(
                target=_process_producer,
                args=(
                    self.batches,
                    self.seed,
                    self.rank,
                    self._counter,
                    sender,
                    slots,
                    self._process_stop,
                ),
                name=f"interpolants-prefetch-{k}",
                daemon=True,
            )
            process.start()
            sender.close()  # the child holds the writing end: EOF here when it exits
            self._processes.append(process)
            self._conns.append(receiver)
            self._slots.append(slots)

    def _collect_from_processes(self, block: bool) -> bool:
        timeout = 2 * _POLL_S if block else 0.0
        arrived = False
        for conn in multiprocessing.connection.wait(self._conns, timeout):
            assert isinstance(conn, multiprocessing.connection.Connection)
            k = self._conns.index(conn)
            try:
                message = conn.recv()
            except (EOFError, OSError):
                if self._stop.is_set():
                    raise _Closed() from None
                process = self._processes[k]
                process.join(timeout=1.0)  # its exit code is set once it is reaped
                raise RuntimeError(
                    f"producer process {k} died (exit code {process.exitcode})"
                ) from None
            if message[0] == "error":
                error: BaseException = message[1]
                raise error from _RemoteTraceback(f"in producer process {k}:\n{message[2]}")
            _, index, x0, x1, labels, condition = message
            out0, out1 = _from_wire(x0), _from_wire(x1)
            assert out0 is not None and out1 is not None
            self._ready[index] = (k, Batch(out0, out1, _from_wire(labels), _from_wire(condition)))
            arrived = True
        return arrived

    # -- common ----------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the producers (batches already made are dropped). Idempotent, and safe to
        call from another thread: a ``next()`` running there raises ``RuntimeError``."""
        self._stop.set()
        self._halt()

    def _halt(self) -> None:
        """Stop and join the producers; ``_stop`` must be set."""
        with self._close_lock:
            if self._process_stop is not None:
                self._process_stop.set()
            for slots in self._slots:  # wake producers waiting for a slot
                for _ in range(self.depth):
                    slots.release()
            for worker in self._threads:
                worker.join()
            for process in self._processes:
                process.join(timeout=4 * _POLL_S)
                if process.is_alive():  # e.g. blocked sending a batch nobody will read
                    process.terminate()
                    process.join()
            for conn in self._conns:
                conn.close()
            self._slots = []

    def __enter__(self) -> "PrefetchedBatches":
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
