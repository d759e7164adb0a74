"""The training pipeline: every coupling through the trainer, one seeding scheme for the data
(inline, threads, processes, DataLoader give the same batches, bit for bit), exact resumption
with each of them, gradient accumulation and bfloat16 autocast against the full float32 step.
"""

import math
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from contracts import concrete_subclasses, instances
from interpolants import (
    MLP,
    BrownianGamma,
    Coupling,
    GaussianMixture,
    LinearInterpolant,
    OTCoupling,
    PairedBatches,
    Trainer,
    VelocityObjective,
)
from interpolants.coupling import (
    DataDependentCoupling,
    LabelConditionalCoupling,
    ReflowCoupling,
    SchrodingerBridgeCoupling,
)
from interpolants.data import (
    Batch,
    CoupledBatchStream,
    EightGaussians,
    PrefetchedBatches,
    TensorData,
    batch_generator,
)
from interpolants.integrate import RK4


def keep_first_coordinate(x1: Tensor, noise: Tensor) -> tuple[Tensor, Tensor]:
    """In-painting of the second coordinate: x0 = m ⊙ x1 + (1 − m) ⊙ ζ, ξ = m (picklable)."""
    mask = torch.zeros_like(x1)
    mask[:, 0] = 1.0
    return mask * x1 + (1 - mask) * noise, mask


def half_turn(t: Tensor, x: Tensor) -> Tensor:
    """A "trained" velocity for the reflow coupling: a rotation field (picklable)."""
    return torch.stack([-x[:, 1], x[:, 0]], 1)


COUPLINGS: dict[type[Any], Callable[[], list[Coupling]]] = {
    ReflowCoupling: lambda: [ReflowCoupling(half_turn, RK4(), steps=4)],
    DataDependentCoupling: lambda: [DataDependentCoupling(keep_first_coordinate)],
    SchrodingerBridgeCoupling: lambda: [SchrodingerBridgeCoupling(sigma=0.5)],
    LabelConditionalCoupling: lambda: [
        LabelConditionalCoupling(),
        LabelConditionalCoupling(SchrodingerBridgeCoupling(sigma=0.5)),
    ],
}


def _labelled_target(n: int = 200) -> TensorData:
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(n) % 3
    centres = torch.tensor([[2.0, 0.0], [-1.0, 1.7], [-1.0, -1.7]])
    return TensorData(centres[labels] + 0.3 * torch.randn(n, 2, generator=g), labels)


class Recorder(nn.Module):
    """An MLP that records the condition of every call (for the condition rule)."""

    def __init__(self, num_classes: int | None, context_dim: int | None) -> None:
        super().__init__()
        self.net = MLP(2, hidden=16, depth=1, num_classes=num_classes, context_dim=context_dim)
        self.num_classes = num_classes
        self.seen: list[Any] = []

    def forward(self, t: Tensor, x: Tensor, condition: Any = None) -> Tensor:
        self.seen.append(condition)
        out: Tensor = self.net(t, x, condition)
        return out


@pytest.mark.parametrize("name,make", instances(concrete_subclasses(Coupling), COUPLINGS))
def test_every_coupling_trains_through_the_trainer(name: str, make: Callable[[], Coupling]) -> None:
    """Discovered couplings, labelled target, unlabelled noise base (y0 = y1): each trains a
    few steps; a label-conditional model sees the batch labels, a data-dependent coupling's ξ
    reaches the model as ``condition`` (the pair (labels, ξ) with both)."""
    coupling = make()
    data_dependent = isinstance(coupling, DataDependentCoupling)
    batches = PairedBatches(GaussianMixture.standard_normal(2), _labelled_target(), 24, coupling)
    torch.manual_seed(0)
    model = Recorder(num_classes=3, context_dim=2 if data_dependent else None)
    objective = VelocityObjective(LinearInterpolant(BrownianGamma(0.25)))
    trainer = Trainer(model, objective, batches, conditional=True, seed=1, ema_decay=None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no silent fallback along the way
        losses = trainer.fit(3, progress=False).losses
    assert len(losses) == 3 and all(math.isfinite(v) for v in losses)
    batch = batches(batch_generator(1, 2))  # the batch of the last step
    condition = model.seen[-1]
    if data_dependent:
        labels, xi = condition
        assert batch.condition is not None and torch.equal(xi, batch.condition)
        assert torch.equal(xi[:, 0], torch.ones(24)) and torch.equal(batch.x0[:, 0], batch.x1[:, 0])
    else:
        labels = condition
        assert batch.condition is None
    assert batch.labels is not None and torch.equal(labels, batch.labels)
    if isinstance(coupling, LabelConditionalCoupling):  # the pairs never cross classes
        x0, x1, y0, y1 = batches._draw(batch_generator(1, 2))
        pairing = coupling(x0, x1, y0, y1, generator=torch.Generator().manual_seed(0))
        assert isinstance(pairing.y0, Tensor) and isinstance(pairing.y1, Tensor)
        assert torch.equal(pairing.y0, pairing.y1)


def test_a_labelled_base_is_drawn_class_matched() -> None:
    """Labels on both sides name the same classes: x0ᵢ ~ ρ0(· | y1ᵢ), so a label-conditional
    coupling always finds every class on both sides, and a conditional model trains on it."""
    g = torch.Generator().manual_seed(3)
    base_labels = torch.arange(300) % 3
    base = TensorData(10.0 * base_labels[:, None] + torch.randn(300, 2, generator=g), base_labels)
    target = _labelled_target()
    batches = PairedBatches(base, target, 32, LabelConditionalCoupling())
    for i in range(5):
        x0, _x1, y0, y1 = batches._draw(batch_generator(0, i))
        assert y0 is y1 and y1 is not None
        # the base's class is readable from its coordinate: 10·y ± a few σ
        assert torch.equal((x0[:, 0] / 10).round().long().clamp(0, 2), y1)
        b = batches(batch_generator(0, i))
        assert b.labels is not None
        assert torch.equal((b.x0[:, 0] / 10).round().long().clamp(0, 2), b.labels)
    model = MLP(2, hidden=16, depth=1, num_classes=3)
    trainer = Trainer(model, VelocityObjective(LinearInterpolant()), batches, conditional=True)
    assert all(math.isfinite(v) for v in trainer.fit(3, progress=False).losses)
    # every target class must occur in the base
    with pytest.raises(ValueError, match=r"classes \[2\] do not occur"):
        PairedBatches(TensorData(torch.zeros(4, 2), torch.tensor([0, 1, 0, 1])), target, 8)
    with pytest.raises(ValueError, match="no rows carry the labels"):
        base.matching_indices(torch.tensor([0, 7]))


def test_matching_indices_draw_uniformly_within_each_class() -> None:
    labels = torch.tensor([5, 2, 5, 9, 2, 5])
    data = TensorData(torch.arange(6.0)[:, None], labels)
    want = torch.tensor([5, 2, 9] * 2000)
    idx = data.matching_indices(want, torch.Generator().manual_seed(0))
    assert torch.equal(labels[idx], want)
    counts = torch.bincount(idx, minlength=6).double()
    # the rows of class 5 (0, 2, 5) and of class 2 (1, 4): each drawn 2000/k times, ±5 SE
    for rows, k in (([0, 2, 5], 3), ([1, 4], 2)):
        p = 1 / k
        se = math.sqrt(2000 * p * (1 - p))
        assert all(abs(float(counts[r]) - 2000 * p) < 5 * se for r in rows)
    assert float(counts[3]) == 2000


# --- one seeding scheme ------------------------------------------------------------------------

SEED, STEPS = 7, 6


def _paired() -> PairedBatches:
    return PairedBatches(
        GaussianMixture.standard_normal(2), EightGaussians(), batch_size=16, coupling=OTCoupling()
    )


def _sources() -> dict[str, Callable[[], Iterable[Batch] | PairedBatches]]:
    return {
        "inline": _paired,
        "thread": lambda: PrefetchedBatches(_paired(), seed=SEED, workers=2),
        "process": lambda: PrefetchedBatches(_paired(), seed=SEED, backend="process"),
        "dataloader": lambda: DataLoader(
            CoupledBatchStream(_paired(), seed=SEED), batch_size=None, num_workers=2
        ),
    }


def _close(source: object) -> None:
    if isinstance(source, PrefetchedBatches):
        source.close()


def _trainer(source: Iterable[Batch] | PairedBatches) -> Trainer:
    torch.manual_seed(0)
    model = MLP(2, hidden=16, depth=2)
    objective = VelocityObjective(LinearInterpolant(BrownianGamma()))
    return Trainer(model, objective, source, seed=SEED, ema_decay=0.9)


def _params(trainer: Trainer) -> list[Tensor]:
    assert trainer.ema is not None
    params = (*trainer.model.parameters(), *trainer.ema.model.parameters())
    return [p.detach().clone() for p in params]


@pytest.mark.filterwarnings("ignore:This DataLoader will create 3 worker")
def test_the_same_seed_gives_the_same_batches_whatever_makes_them() -> None:
    want = [_paired()(batch_generator(SEED, i)) for i in range(STEPS)]
    for name, make in _sources().items():
        if name == "inline":
            continue
        source = make()
        got = [b for _, b in zip(range(STEPS), source)]  # type: ignore[arg-type]
        _close(source)
        for a, b in zip(got, want, strict=True):
            assert torch.equal(a.x0, b.x0) and torch.equal(a.x1, b.x1), name
    # a DataLoader without workers, and with three, gives the same stream
    for workers in (0, 3):
        loader = DataLoader(
            CoupledBatchStream(_paired(), seed=SEED), batch_size=None, num_workers=workers
        )
        got = [b for _, b in zip(range(STEPS), loader)]
        assert all(torch.equal(a.x1, b.x1) for a, b in zip(got, want, strict=True))
    # ranks draw different batches
    other = _paired()(batch_generator(SEED, 0, rank=1))
    assert not torch.equal(other.x1, want[0].x1)


def test_resume_is_exact_with_every_batch_source(tmp_path: Path) -> None:
    """Half a run, a checkpoint, a fresh trainer on a fresh source (no ``start``): the same
    losses and weights, bit for bit, as the uninterrupted inline run, for every source."""
    full = _trainer(_paired())
    reference = full.fit(STEPS, progress=False).losses
    for name, make in _sources().items():
        first_source, second_source = make(), make()
        first = _trainer(first_source)
        head = first.fit(STEPS // 2, progress=False, checkpoint=tmp_path / f"{name}.pt").losses
        second = _trainer(second_source)
        torch.manual_seed(123)  # the global RNG comes from the checkpoint too
        second.load(tmp_path / f"{name}.pt")
        tail = second.fit(STEPS - STEPS // 2, progress=False).losses
        _close(first_source)
        _close(second_source)
        assert head + tail == reference, name
        for a, b in zip(_params(second), _params(full), strict=True):
            assert torch.equal(a, b), name


def test_a_trainer_repositions_its_stream() -> None:
    """A step taken on an outside batch moves the trainer on; its stream follows (a started
    PrefetchedBatches restarts at the trainer's step)."""
    stream = PrefetchedBatches(_paired(), seed=SEED, workers=1)
    trainer = _trainer(stream)
    trainer.step()
    trainer.train_step(_paired()(batch_generator(SEED, 1)))
    got = trainer.next_batch()
    stream.close()
    assert torch.equal(got.x1, _paired()(batch_generator(SEED, 2)).x1)
    with pytest.raises(ValueError, match="rank 1's batches"):
        Trainer(
            MLP(2, 8, 1),
            VelocityObjective(LinearInterpolant()),
            CoupledBatchStream(_paired(), rank=1),
        )


def test_a_plain_iterable_cannot_be_positioned_and_says_so(tmp_path: Path) -> None:
    batches = [_paired()(batch_generator(0, i)) for i in range(4)]
    trainer = _trainer(batches)
    trainer.fit(2, progress=False, checkpoint=tmp_path / "ck.pt")
    again = _trainer(batches)
    again.load(tmp_path / "ck.pt")
    with pytest.warns(RuntimeWarning, match="cannot position a list"):
        again.step()


# --- gradient accumulation and mixed precision --------------------------------------------------


def _sgd_trainer(dtype: torch.dtype, antithetic: bool = True, **kwargs: Any) -> Trainer:
    torch.manual_seed(0)
    model = MLP(2, hidden=32, depth=2).to(dtype)
    target = TensorData(EightGaussians().sample(500, torch.Generator().manual_seed(1)).to(dtype))
    base = TensorData(torch.randn(500, 2, generator=torch.Generator().manual_seed(2)).to(dtype))
    batches = PairedBatches(base, target, batch_size=30)
    objective = VelocityObjective(LinearInterpolant(BrownianGamma()), antithetic=antithetic)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    return Trainer(
        model, objective, batches, optimizer=opt, ema_decay=None, grad_clip=None, **kwargs
    )


@pytest.mark.parametrize("antithetic", [True, False])  # per-sample weights; the fused mean
def test_gradient_accumulation_equals_the_full_batch_step(antithetic: bool) -> None:
    # float64, slices of 7, 8, 7, 8: the same sums in another order, so the losses and the
    # weights after three SGD steps agree to a few ulps of their size (rtol 1e-12, atol 1e-14)
    full = _sgd_trainer(torch.float64, antithetic)
    sliced = _sgd_trainer(torch.float64, antithetic, accumulate=4)
    a = full.fit(3, progress=False).losses
    b = sliced.fit(3, progress=False).losses
    assert a == pytest.approx(b, rel=1e-12)
    for p, q in zip(full.model.parameters(), sliced.model.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-14)
    with pytest.raises(ValueError, match="exceeds the batch size"):
        _sgd_trainer(torch.float64, accumulate=31).step()
    with pytest.raises(ValueError, match="accumulate"):
        _sgd_trainer(torch.float64, accumulate=0)


@pytest.mark.parametrize("antithetic", [True, False])  # per-sample path; the fused mean
def test_bfloat16_autocast_matches_the_float32_step(antithetic: bool) -> None:
    """bfloat16 keeps 8 significant bits (unit roundoff u = 2⁻⁹ ≈ 2e-3): the weights and
    activations rounded to it at each of three linear layers give the step a relative error of
    a few u (measured 3.5e-3 ≈ 2u on this problem); we allow 2e-2 (10u) in norm on one step's
    weight update, and 1e-2 on the loss, whose parameter-free |y|²/D part is computed in
    float32. Accumulation composes with it; autocast is really on (the losses differ)."""
    full = _sgd_trainer(torch.float32, antithetic)
    mixed = _sgd_trainer(torch.float32, antithetic, autocast=torch.bfloat16, accumulate=2)
    start = [p.detach().clone() for p in full.model.parameters()]
    loss32, loss16 = full.step(), mixed.step()
    assert loss16 != loss32 and abs(loss16 - loss32) < 1e-2 * abs(loss32)
    step32 = torch.cat([(p.detach() - s).flatten() for p, s in zip(full.model.parameters(), start)])
    step16 = torch.cat(
        [(p.detach() - s).flatten() for p, s in zip(mixed.model.parameters(), start)]
    )
    assert float((step16 - step32).norm()) < 2e-2 * float(step32.norm())
    assert all(p.dtype == torch.float32 for p in mixed.model.parameters())
    with pytest.raises(ValueError, match="bfloat16 only"):
        _sgd_trainer(torch.float32, autocast=torch.float16)
