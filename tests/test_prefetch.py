"""PrefetchedBatches: reproducible streams from thread and process producers, errors, closing."""

import math
import os
import threading
import time

import pytest
import torch

from interpolants import (
    MLP,
    GaussianMixture,
    LinearInterpolant,
    OTCoupling,
    PairedBatches,
    Trainer,
    VelocityObjective,
)
from interpolants.data import EightGaussians, Moons, PrefetchedBatches, TensorData, batch_generator

BACKENDS = ["thread", "process"]


def _alive(stream: PrefetchedBatches) -> list[bool]:
    return [w.is_alive() for w in (*stream._threads, *stream._processes)]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("workers", "assist"), [(1, True), (2, True), (2, False)])
def test_batch_i_is_drawn_with_its_own_generator(backend: str, workers: int, assist: bool) -> None:
    batches = PairedBatches(
        GaussianMixture.standard_normal(2), EightGaussians(), batch_size=16, coupling=OTCoupling()
    )
    stream = PrefetchedBatches(batches, seed=5, workers=workers, backend=backend, assist=assist)  # type: ignore[arg-type]
    with stream:
        got = [next(stream) for _ in range(8)]
        alive = _alive(stream)
        assert len(alive) == workers and all(alive)
    # whoever computed it (a producer or the consumer), batch i is batches(generator(seed, i))
    for i, b in enumerate(got):
        want = batches(batch_generator(5, i))
        assert torch.equal(b.x0, want.x0) and torch.equal(b.x1, want.x1) and b.labels is None
    assert not any(_alive(stream))  # closed by the context manager
    with pytest.raises(RuntimeError, match="closed"):
        iter(stream)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_stream_can_start_at_any_batch(backend: str) -> None:
    # start= positions a stream used on its own (the trainer seeks it to its step)
    batches = PairedBatches(GaussianMixture.standard_normal(2), Moons(), 8, OTCoupling())
    with PrefetchedBatches(batches, seed=3, start=5, backend=backend) as stream:  # type: ignore[arg-type]
        got = [next(stream) for _ in range(3)]
    for i, b in zip(range(5, 8), got, strict=True):
        assert torch.equal(b.x0, batches(batch_generator(3, i)).x0)
    with pytest.raises(ValueError, match="start"):
        PrefetchedBatches(batches, start=-1)


def test_batch_generators_differ_between_batches_and_seeds() -> None:
    draws = {
        float(torch.rand((), generator=batch_generator(seed, i)))
        for seed in range(3)
        for i in range(50)
    }
    assert len(draws) == 150
    a, b = batch_generator(7, 3), batch_generator(7, 3)
    assert torch.equal(torch.rand(5, generator=a), torch.rand(5, generator=b))


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_process_batches_keep_dtype_shape_and_labels(dtype: torch.dtype) -> None:
    gen = torch.Generator().manual_seed(0)
    images = torch.randn(40, 1, 3, 5, generator=gen).to(dtype)
    labels = torch.randint(0, 4, (40,), generator=gen)
    base = TensorData(torch.randn(40, 1, 3, 5, generator=gen).to(dtype))
    batches = PairedBatches(base, TensorData(images, labels), batch_size=8)
    with PrefetchedBatches(batches, seed=1, backend="process", assist=False) as stream:
        got = [next(stream) for _ in range(3)]
    for i, b in enumerate(got):
        want = batches(batch_generator(1, i))
        assert b.x0.dtype == dtype and b.x0.shape == (8, 1, 3, 5)
        assert torch.equal(b.x0, want.x0) and torch.equal(b.x1, want.x1)
        assert b.labels is not None and want.labels is not None
        assert b.labels.dtype == torch.int64 and torch.equal(b.labels, want.labels)


@pytest.mark.parametrize("backend", BACKENDS)
def test_training_on_a_stream_equals_training_on_its_batches(backend: str) -> None:
    batches = PairedBatches(
        GaussianMixture.standard_normal(2), Moons(), batch_size=32, coupling=OTCoupling()
    )
    objective = VelocityObjective(LinearInterpolant())
    fixed = [batches(batch_generator(0, i)) for i in range(20)]  # the stream, drawn up front
    runs = []
    stream = PrefetchedBatches(batches, seed=0, backend=backend)  # type: ignore[arg-type]
    for source in (stream, fixed):
        torch.manual_seed(0)
        trainer = Trainer(MLP(2, 16, 1), objective, source, seed=0)
        runs.append(trainer.fit(20, progress=False).losses)
    stream.close()
    assert runs[0] == runs[1] and all(math.isfinite(x) for x in runs[0])


class _Broken:
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        raise ArithmeticError("source failed")


class _Unpicklable(Exception):
    def __init__(self, a: int, b: int) -> None:  # pickling calls __init__ with one argument
        super().__init__(f"odd error {a}{b}")


class _RaisesUnpicklable:
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        raise _Unpicklable(4, 2)


class _Dies:
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        os._exit(3)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_producer_error_is_raised_by_next_and_closes_the_stream(backend: str) -> None:
    paired = PairedBatches(_Broken(), Moons(), 8)
    for assist in (False, True):  # raised in a producer, or in the consumer's own batch
        stream = PrefetchedBatches(paired, seed=0, backend=backend, assist=assist)  # type: ignore[arg-type]
        with pytest.raises(ArithmeticError, match="source failed"):
            next(iter(stream))
        assert not any(_alive(stream))  # the failure closed it
        with pytest.raises(RuntimeError, match="closed"):
            next(stream)


def test_process_errors_that_cannot_be_pickled_and_dead_producers() -> None:
    odd = PrefetchedBatches(
        PairedBatches(_RaisesUnpicklable(), Moons(), 8), backend="process", assist=False
    )
    with pytest.raises(RuntimeError, match="_Unpicklable: odd error 42"):
        next(iter(odd))
    dead = PrefetchedBatches(PairedBatches(_Dies(), Moons(), 8), backend="process", assist=False)
    with pytest.raises(RuntimeError, match=r"producer process 0 died \(exit code 3\)"):
        next(iter(dead))
    assert not any(_alive(dead))


def test_producer_processes_ignore_ctrl_c_and_die_with_their_parent(tmp_path) -> None:
    import signal
    import subprocess
    import sys

    batches = PairedBatches(GaussianMixture.standard_normal(2), Moons(), 8)
    with PrefetchedBatches(batches, backend="process", assist=False) as stream:
        next(stream)
        os.kill(stream._processes[0].pid, signal.SIGINT)  # Ctrl-C is the parent's business
        for i in range(1, 6):
            assert torch.equal(next(stream).x1, batches(batch_generator(0, i)).x1)
    # a parent killed without running its exit handlers leaves no producer behind
    child = (
        "import os, sys\n"
        "from interpolants import GaussianMixture, PairedBatches\n"
        "from interpolants.data import Moons, PrefetchedBatches\n"
        "b = PairedBatches(GaussianMixture.standard_normal(2), Moons(), 8)\n"
        "s = PrefetchedBatches(b, workers=2, backend='process', assist=False)\n"
        "next(s)\n"
        "open(sys.argv[1], 'w').write(' '.join(str(p.pid) for p in s._processes))\n"
        "os._exit(0)\n"
    )
    pids_file = tmp_path / "pids"
    subprocess.run([sys.executable, "-c", child, str(pids_file)], check=True, timeout=60)
    pids = [int(p) for p in pids_file.read_text().split()]
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline and any(_exists(p) for p in pids):
        time.sleep(0.05)
    assert len(pids) == 2 and not any(_exists(p) for p in pids)


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_stream_that_cannot_start_is_closed() -> None:
    class Local:  # cannot be pickled for a spawned producer
        def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
            return torch.zeros(n, 2)

    stream = PrefetchedBatches(
        PairedBatches(Local(), Moons(), 4), backend="process", start_method="spawn"
    )
    with pytest.raises(AttributeError, match="pickle"):
        next(stream)
    with pytest.raises(RuntimeError, match="closed"):  # not a hang, not silent inline work
        next(stream)


def test_spawned_producers_give_the_same_stream() -> None:
    batches = PairedBatches(GaussianMixture.standard_normal(2), Moons(), 16, OTCoupling())
    with PrefetchedBatches(batches, seed=2, backend="process", start_method="spawn") as stream:
        got = next(stream)
    want = batches(batch_generator(2, 0))
    assert torch.equal(got.x0, want.x0) and torch.equal(got.x1, want.x1)


class _Slow:
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        time.sleep(0.5)
        return torch.zeros(n, 2)


@pytest.mark.parametrize("backend", BACKENDS)
def test_close_from_another_thread_wakes_the_consumer(backend: str) -> None:
    paired = PairedBatches(_Slow(), Moons(), 4)
    stream = PrefetchedBatches(paired, seed=0, backend=backend, assist=False)  # type: ignore[arg-type]
    iter(stream)
    seen: list[BaseException] = []

    def consume() -> None:
        try:
            for _ in range(3):
                next(stream)
        except RuntimeError as error:
            seen.append(error)

    consumer = threading.Thread(target=consume)
    consumer.start()
    time.sleep(0.2)
    stream.close()
    consumer.join(timeout=5)
    assert not consumer.is_alive() and seen and "closed" in str(seen[0])
    assert not any(_alive(stream))


def test_bad_arguments_are_named() -> None:
    batches = PairedBatches(GaussianMixture.standard_normal(2), Moons(), 8)
    with pytest.raises(ValueError, match="workers and depth"):
        PrefetchedBatches(batches, workers=0)
    with pytest.raises(ValueError, match="workers and depth"):
        PrefetchedBatches(batches, depth=0)
    with pytest.raises(TypeError, match="PairedBatches"):
        PrefetchedBatches([], seed=0)  # type: ignore[arg-type]
    with pytest.raises((TypeError, ValueError), match="backend"):  # beartype checks first
        PrefetchedBatches(batches, backend="greenlet")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="start_method"):
        PrefetchedBatches(batches, backend="process", start_method="teleport")
    with pytest.raises(ValueError, match="start_method applies"):
        PrefetchedBatches(batches, start_method="spawn")


def _mask_first(x1: torch.Tensor, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mask = torch.zeros_like(x1)
    mask[:, 0] = 1.0
    return mask * x1 + (1 - mask) * noise, mask


@pytest.mark.parametrize("backend", BACKENDS)
def test_seek_repositions_a_started_stream_of_any_rank(backend: str) -> None:
    from interpolants.coupling import DataDependentCoupling

    batches = PairedBatches(
        GaussianMixture.standard_normal(2), Moons(), 8, DataDependentCoupling(_mask_first)
    )
    with PrefetchedBatches(batches, seed=4, backend=backend, rank=1) as stream:  # type: ignore[arg-type]
        first = [next(stream) for _ in range(2)]
        stream.seek(0)  # producers restarted from batch 0
        again = next(stream)
        stream.seek(5)
        later = [next(stream) for _ in range(2)]
    want = [batches(batch_generator(4, i, 1)) for i in (0, 1, 0, 5, 6)]
    for got, ref in zip([*first, again, *later], want, strict=True):
        assert torch.equal(got.x0, ref.x0) and torch.equal(got.x1, ref.x1)
        assert got.condition is not None and ref.condition is not None
        assert torch.equal(got.condition, ref.condition)  # ξ crosses the pipe too
    with pytest.raises(RuntimeError, match="closed"):
        stream.seek(0)
    with pytest.raises(ValueError, match="rank"):
        PrefetchedBatches(batches, rank=-1)
