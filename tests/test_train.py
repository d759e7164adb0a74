"""The training loop: determinism, exact resumption, atomic checkpoints, EMA, DDP, workers."""

import hashlib
import io
import math
import os
import socket
import struct
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.utils.data import DataLoader

from interpolants import (
    MLP,
    BrownianGamma,
    GaussianMixture,
    LinearInterpolant,
    OTCoupling,
    PairedBatches,
    Trainer,
    VelocityObjective,
)
from interpolants.data import Batch, CoupledBatchStream, EightGaussians, Moons, TensorData
from interpolants.fields import ClassifierFreeGuidance
from interpolants.train import EMA, CheckpointError, load_checkpoint, save_checkpoint
from interpolants.train._checkpoint import MAGIC


def _trainer(seed: int = 0, coupling: object = None) -> Trainer:
    torch.manual_seed(seed)
    batches = PairedBatches(
        GaussianMixture.standard_normal(2), Moons(), batch_size=32, coupling=coupling
    )
    objective = VelocityObjective(LinearInterpolant(BrownianGamma()))
    return Trainer(MLP(2, hidden=32, depth=2), objective, batches, seed=seed, ema_decay=0.9)


def test_resume_gives_the_same_loss_sequence(tmp_path: Path) -> None:
    full = _trainer().fit(20, progress=False).losses
    first = _trainer()
    head = first.fit(10, progress=False, checkpoint=tmp_path / "ck.pt").losses
    resumed = _trainer(seed=123)  # different init and seeds: everything must come from the file
    resumed.load(tmp_path / "ck.pt")
    tail = resumed.fit(10, progress=False).losses
    assert head + tail == full  # bitwise: CPU training is deterministic
    assert resumed.step_count == 20
    for p, q in zip(_trainer_params(resumed), _trainer_params(_fit(20))):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


def _fit(steps: int) -> Trainer:
    t = _trainer()
    t.fit(steps, progress=False)
    return t


def _trainer_params(t: Trainer) -> list[torch.Tensor]:
    assert t.ema is not None
    return [*t.model.parameters(), *t.ema.model.parameters()]


def test_checkpoint_is_atomic_and_loads_with_weights_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "ck.pt"
    save_checkpoint({"a": torch.ones(3)}, path)

    def broken_save(obj: object, f: object) -> None:
        f.write(b"partial")  # type: ignore[attr-defined]
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint({"a": torch.zeros(3)}, path)
    monkeypatch.undo()
    # The old checkpoint is intact and no temporary file is left behind.
    torch.testing.assert_close(load_checkpoint(path)["a"], torch.ones(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.pt"]
    # weights_only=True refuses arbitrary pickled objects, even in a file whose checksum holds
    evil = io.BytesIO()
    torch.save({"x": socket.socket}, evil)
    payload = evil.getvalue()
    header = MAGIC + struct.pack("<Q32s", len(payload), hashlib.sha256(payload).digest())
    (tmp_path / "evil.pt").write_bytes(header + payload)
    with pytest.raises(CheckpointError, match=r"refused by torch\.load\(weights_only=True\)"):
        load_checkpoint(tmp_path / "evil.pt")


def test_a_damaged_or_foreign_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    trainer = _trainer()
    trainer.fit(2, progress=False, checkpoint=tmp_path / "ck.pt")
    good = (tmp_path / "ck.pt").read_bytes()
    cases = {
        "flipped": bytearray(good),
        "truncated": good[: len(good) // 2],
        "header": good[:10],
    }
    cases["flipped"][-len(good) // 3] ^= 0x01  # one bit inside the payload (tensor data)
    errors = {}
    for name, data in cases.items():
        (tmp_path / f"{name}.pt").write_bytes(bytes(data))
        with pytest.raises(CheckpointError) as err:
            load_checkpoint(tmp_path / f"{name}.pt")
        errors[name] = str(err.value)
    assert "corrupt" in errors["flipped"] and "checksum" in errors["flipped"]
    assert "truncated" in errors["truncated"] and "truncated" in errors["header"]
    torch.save({"model": {}}, tmp_path / "plain.pt")  # written without the header
    with pytest.raises(CheckpointError, match="not an interpolants checkpoint"):
        load_checkpoint(tmp_path / "plain.pt")
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt")
    assert all("\n" not in e for e in errors.values())  # one line each
    # a valid file that is not a trainer's state, or does not fit the model
    save_checkpoint({"a": torch.ones(1)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a Trainer checkpoint"):
        _trainer().load(tmp_path / "other.pt")
    state = load_checkpoint(tmp_path / "ck.pt")
    state["model"]["net.0.weight"] = torch.zeros(3, 3)
    with pytest.raises(CheckpointError, match="does not fit"):
        _trainer().load_state_dict(state)


def test_orphan_temporary_files_are_removed_but_not_a_live_writers(tmp_path: Path) -> None:
    """A dead writer's ``.<name>.XXXXXXXX.tmp`` (unlocked, older than STALE_AFTER_S) goes at
    the next save or load; a live writer's (locked) and a fresh one stay."""
    import fcntl

    from interpolants._atomic import STALE_AFTER_S

    path = tmp_path / "ck.pt"
    save_checkpoint({"a": torch.ones(1)}, path)
    old = time.time() - 2 * STALE_AFTER_S

    def orphan(name: str, age: float = old) -> Path:
        p = tmp_path / name
        p.write_bytes(b"half a checkpoint")
        os.utime(p, (age, age))
        return p

    dead = orphan(".ck.pt.abcd1234.tmp")
    live = orphan(".ck.pt.live0000.tmp")
    fresh = orphan(".ck.pt.fresh000.tmp", age=time.time())
    other = orphan(".ck.pt.x.abcd1234.tmp")  # another target's name: not ours to judge
    with open(live, "rb") as holder:
        fcntl.flock(holder.fileno(), fcntl.LOCK_EX)  # as a writer holds it until its rename
        load_checkpoint(path)
        assert not dead.exists() and live.exists() and fresh.exists() and other.exists()
        dead = orphan(".ck.pt.zzzz9999.tmp")
        save_checkpoint({"a": torch.zeros(1)}, path)
        assert not dead.exists() and live.exists()
    load_checkpoint(path)  # the writer is gone: its file is an orphan now
    assert not live.exists() and fresh.exists()


def test_resuming_with_another_number_of_ranks_warns() -> None:
    state = _fit(2).state_dict()
    state["world_size"], state["rng"] = 2, state["rng"] * 2
    with pytest.warns(RuntimeWarning, match="written by 2 rank"):
        _trainer().load_state_dict(state)


def test_ema_follows_the_exponential_average() -> None:
    net = torch.nn.Linear(2, 1)
    ema = EMA(net, decay=0.75, warmup=False)
    start = net.weight.detach().clone()
    with torch.no_grad():
        net.weight.add_(1.0)
    ema.update(net)
    ema.update(net)
    # After two updates towards w + 1: w + (1 − 0.75²).
    torch.testing.assert_close(ema.model.weight, start + (1 - 0.75**2))
    assert not any(p.requires_grad for p in ema.model.parameters())


def test_ema_warmup_decay_schedule() -> None:
    net = torch.nn.Linear(1, 1, bias=False)
    ema = EMA(net, decay=0.999)
    with torch.no_grad():
        net.weight.fill_(0.0)
        ema.model.weight.fill_(0.0)
        net.weight.fill_(1.0)
    ema.update(net)  # δ₀ = min(0.999, 1/10) = 0.1: the average moves 90 % of the way
    torch.testing.assert_close(ema.model.weight, torch.full((1, 1), 0.9))
    assert ema.updates == 1


def test_scheduler_is_stepped_and_resumed(tmp_path: Path) -> None:
    def make() -> Trainer:
        torch.manual_seed(0)
        model = MLP(2, hidden=8, depth=1)
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=20)
        batches = PairedBatches(GaussianMixture.standard_normal(2), Moons(), 16)
        objective = VelocityObjective(LinearInterpolant())
        return Trainer(model, objective, batches, optimizer=opt, scheduler=sched)

    full = make()
    full_losses = full.fit(10, progress=False).losses
    first = make()
    head = first.fit(5, progress=False, checkpoint=tmp_path / "s.pt").losses
    second = make()
    second.load(tmp_path / "s.pt")
    assert head + second.fit(5, progress=False).losses == full_losses
    lr = second.optimizer.param_groups[0]["lr"]
    assert lr == pytest.approx(1e-2 * (1 + math.cos(math.pi * 10 / 20)) / 2)


def test_gradient_clipping_bounds_the_sgd_update() -> None:
    torch.manual_seed(0)
    model = MLP(2, hidden=16, depth=1)
    objective = VelocityObjective(LinearInterpolant())
    batches = PairedBatches(GaussianMixture.standard_normal(2), EightGaussians(), 64)
    lr, clip = 0.1, 1e-3
    trainer = Trainer(
        model,
        objective,
        batches,
        optimizer=torch.optim.SGD(model.parameters(), lr=lr),
        grad_clip=clip,
        ema_decay=None,
    )
    before = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
    trainer.step()
    after = torch.cat([p.detach().flatten() for p in model.parameters()])
    # The clipped update has norm lr·clip exactly up to float32 rounding of the parameters
    # (ulp ~1e-8 each, against per-entry updates ~1e-6): 1 % slack.
    moved = float((after.double() - before.double()).norm())
    assert 0.99 * lr * clip <= moved <= 1.01 * lr * clip


def test_training_reduces_the_loss_and_ot_batches_are_permutations() -> None:
    trainer = _trainer(coupling=OTCoupling())
    losses = trainer.fit(150, progress=False).losses
    assert sum(losses[-20:]) / 20 < sum(losses[:20]) / 20
    batch = trainer.batches(torch.Generator().manual_seed(0))  # type: ignore[operator]
    assert batch.x0.shape == batch.x1.shape == (32, 2)


def test_coupled_batches_in_dataloader_workers() -> None:
    batches = PairedBatches(
        GaussianMixture.standard_normal(2), EightGaussians(), batch_size=16, coupling=OTCoupling()
    )
    loader = DataLoader(CoupledBatchStream(batches, seed=3), batch_size=None, num_workers=2)
    got = [b for _, b in zip(range(4), loader)]
    assert all(isinstance(b, Batch) and b.x0.shape == (16, 2) for b in got)
    # Two workers draw from different streams: their first batches differ.
    assert not torch.equal(got[0].x1, got[1].x1)
    # Each batch is an optimal pairing: no swap of two pairs lowers the squared cost.
    b = got[0]
    cost = torch.cdist(b.x0, b.x1) ** 2
    diag = cost.diagonal()
    swap = cost + cost.T - diag[:, None] - diag[None, :]  # cost change of swapping i, j
    assert float(swap.min()) >= -1e-4
    trainer = Trainer(MLP(2, 16, 1), VelocityObjective(LinearInterpolant()), loader)
    assert math.isfinite(trainer.fit(3, progress=False).losses[-1])


def test_conditional_training_with_label_dropout_and_guidance() -> None:
    torch.manual_seed(0)
    data = torch.randn(100, 2)
    labels = (data[:, 0] > 0).long()
    batches = PairedBatches(GaussianMixture.standard_normal(2), TensorData(data, labels), 32)
    model = MLP(2, hidden=16, depth=1, num_classes=2)
    trainer = Trainer(
        model, VelocityObjective(LinearInterpolant()), batches, conditional=True, label_dropout=0.2
    )
    assert math.isfinite(trainer.fit(5, progress=False).losses[-1])
    y = torch.tensor([0, 1, 1])
    x, t = torch.randn(3, 2), torch.rand(3)
    guided = ClassifierFreeGuidance(model, y, null_label=2, scale=2.0)
    expected = 3 * model(t, x, condition=y) - 2 * model(t, x, condition=torch.full_like(y, 2))
    torch.testing.assert_close(guided(t, x), expected)


def test_bad_arguments() -> None:
    batches = PairedBatches(GaussianMixture.standard_normal(2), Moons(), 8)
    with pytest.raises(TypeError, match="objective"):
        Trainer(MLP(2), "velocity", batches)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="grad_clip"):
        Trainer(MLP(2), VelocityObjective(LinearInterpolant()), batches, grad_clip=0.0)
    with pytest.raises(ValueError, match="batch_size"):
        PairedBatches(GaussianMixture.standard_normal(2), Moons(), 0)
    trainer = Trainer(MLP(2), VelocityObjective(LinearInterpolant()), batches, conditional=True)
    with pytest.raises(ValueError, match="labels"):
        trainer.step()


# --- multi-process training (torch.distributed, gloo on CPU) -----------------------------------

STEPS, LOCAL = 5, 16


def _global_batch(step: int) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(1000 + step)
    x0 = torch.randn(2 * LOCAL, 2, generator=g)
    x1 = EightGaussians().sample(2 * LOCAL, g)
    t = torch.rand(2 * LOCAL, generator=g)
    z = torch.randn(2 * LOCAL, 2, generator=g)
    return x0, x1, t, z


def _run(rank: int, world: int) -> list[torch.Tensor]:
    torch.manual_seed(0)
    model = MLP(2, hidden=16, depth=2)
    objective = VelocityObjective(LinearInterpolant(BrownianGamma()))
    trainer = Trainer(model, objective, [], ema_decay=None, grad_clip=None, lr=1e-2)
    part = slice(rank * 2 * LOCAL // world, (rank + 1) * 2 * LOCAL // world)
    for step in range(STEPS):
        x0, x1, t, z = _global_batch(step)
        trainer.train_step(Batch(x0[part], x1[part]), t=t[part], z=z[part])
    return [p.detach().clone() for p in model.parameters()]


def _global_coupling_slices() -> dict[str, torch.Tensor]:
    """Each rank's slice of one OT coupling of the all-gathered batch (global_coupling=True)."""
    batches = PairedBatches(
        GaussianMixture.standard_normal(2),
        EightGaussians(),
        batch_size=LOCAL,
        coupling=OTCoupling(),
    )
    objective = VelocityObjective(LinearInterpolant())
    trainer = Trainer(MLP(2, 8, 1), objective, batches, seed=5, global_coupling=True)
    mine = trainer.next_batch()
    gathered = (
        [torch.empty_like(mine.x0) for _ in range(2)],
        [torch.empty_like(mine.x1) for _ in range(2)],
    )
    dist.all_gather(gathered[0], mine.x0)
    dist.all_gather(gathered[1], mine.x1)
    return {"x0": torch.cat(gathered[0]), "x1": torch.cat(gathered[1])}


class DropoutMLP(torch.nn.Module):
    """An MLP with dropout: its masks come from the global torch RNG, so each rank's RNG state
    must be restored with that rank's own."""

    def __init__(self) -> None:
        super().__init__()
        self.net = MLP(2, hidden=16, depth=2)
        self.drop = torch.nn.Dropout(0.3)

    def forward(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.drop(self.net(t, x))
        return out


def _ddp_resume_trainer(rank: int) -> Trainer:
    torch.manual_seed(0)  # the same initial weights on every rank
    model = DropoutMLP()
    torch.manual_seed(100 + rank)  # ... and a different global RNG (dropout) on each
    batches = PairedBatches(GaussianMixture.standard_normal(2), EightGaussians(), 16, OTCoupling())
    objective = VelocityObjective(LinearInterpolant(BrownianGamma()))
    return Trainer(model, objective, batches, seed=11, ema_decay=0.9)


def _ddp_resume(rank: int, out_dir: str) -> None:
    """An uninterrupted 6-step DDP run against 3 steps, a checkpoint, and 3 more steps on
    fresh trainers with a scrambled global RNG."""
    full = _ddp_resume_trainer(rank)
    first_batch = full.next_batch()
    full.fit(6, progress=False)
    half = _ddp_resume_trainer(rank)
    half.fit(3, progress=False, checkpoint=os.path.join(out_dir, "resume.pt"))
    torch.manual_seed(999)
    resumed = _ddp_resume_trainer(rank)
    torch.manual_seed(12345)
    resumed.load(os.path.join(out_dir, "resume.pt"))
    resumed.fit(3, progress=False)
    torch.save(
        {
            "full": [p.detach().clone() for p in full.model.parameters()],
            "resumed": [p.detach().clone() for p in resumed.model.parameters()],
            "x1": first_batch.x1,
        },
        os.path.join(out_dir, f"resume{rank}.pt"),
    )


def _ddp_worker(rank: int, world: int, out_dir: str) -> None:
    dist.init_process_group(
        "gloo", init_method=f"file://{out_dir}/rendezvous", rank=rank, world_size=world
    )
    try:
        params = _run(rank, world)
        torch.save(params, os.path.join(out_dir, f"rank{rank}.pt"))
        torch.save(_global_coupling_slices(), os.path.join(out_dir, f"global{rank}.pt"))
        _ddp_resume(rank, out_dir)
        dist.barrier()  # neither rank tears gloo down while the other still talks to it
    finally:
        dist.destroy_process_group()
    # Leave without running the interpreter's teardown: gloo's background threads occasionally
    # abort in C++ static destructors at exit ("terminate called without an active exception"),
    # after all the work above has finished and its results are on disk.
    os._exit(0)


@pytest.fixture(scope="module")
def ddp_results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One 2-process gloo run (file:// rendezvous) for both DDP tests: one start-up."""
    folder = tmp_path_factory.mktemp("ddp")
    mp.spawn(_ddp_worker, args=(2, str(folder)), nprocs=2, join=True)
    return folder


def test_two_process_ddp_matches_single_process_on_the_combined_batch(ddp_results: Path) -> None:
    tmp_path = ddp_results
    rank0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    single = _run(0, 1)
    for a, b, c in zip(rank0, rank1, single):
        torch.testing.assert_close(a, b, rtol=0, atol=0)  # DDP keeps the replicas identical
        # Same math, different float summation order (all-reduce of two half-batch means).
        torch.testing.assert_close(a, c, rtol=1e-5, atol=1e-6)
    # global_coupling=True: both ranks see the same global pairing, made of their two slices,
    # which is an optimal assignment of the gathered batch (no swap of two pairs lowers it).
    g0 = torch.load(tmp_path / "global0.pt", weights_only=True)
    g1 = torch.load(tmp_path / "global1.pt", weights_only=True)
    torch.testing.assert_close(g0["x0"], g1["x0"], rtol=0, atol=0)
    x0, x1 = g0["x0"], g0["x1"]
    assert x0.shape == (2 * LOCAL, 2)
    cost = torch.cdist(x0, x1) ** 2
    diag = cost.diagonal()
    assert float((cost + cost.T - diag[:, None] - diag[None, :]).min()) >= -1e-4


def test_two_process_ddp_resumes_exactly(ddp_results: Path) -> None:
    """Each rank trains on its own batches (seeded by rank) and resumes with its own RNG
    state: the resumed run equals the uninterrupted one bit for bit on both ranks."""
    folder = ddp_results
    r0 = torch.load(folder / "resume0.pt", weights_only=True)
    r1 = torch.load(folder / "resume1.pt", weights_only=True)
    assert not torch.equal(r0["x1"], r1["x1"])  # ranks draw different batches
    for a, b, c in zip(r0["full"], r0["resumed"], r1["resumed"], strict=True):
        assert torch.equal(a, b) and torch.equal(b, c)
    state = load_checkpoint(folder / "resume.pt")
    assert state["world_size"] == 2 and len(state["rng"]) == 2
    assert not torch.equal(state["rng"][0]["torch"], state["rng"][1]["torch"])
