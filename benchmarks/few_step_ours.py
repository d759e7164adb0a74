r"""Our rows of :mod:`few_step`: each model family's training pipeline.

:func:`_fit` is the best recipe's optimiser loop (cosine lr, clip 1, EMA 0.99) shared by exact
OT (:func:`train_ot`, the reflow teacher), reflow on a cached pool of pairs
(:func:`reflow_pool`, :func:`train_reflow`, :func:`distil`), mean flow
(:func:`train_mean_flow`) and weighted CFM (:func:`train_wcfm`); :func:`train_learned_path`
trains a velocity and a :class:`~interpolants.LearnedInterpolant` jointly.
"""

import math
import time
import warnings
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor, nn

from common import RESULTS
from interpolants import (
    MLP,
    Dopri5,
    LinearInterpolant,
    OTCoupling,
    PairedBatches,
    Trainer,
    VelocityObjective,
)
from interpolants.coupling import GibbsWeightedCoupling, ReflowCoupling
from interpolants.data import Batch
from interpolants.interpolant import LearnedInterpolant
from interpolants.nn import AverageVelocityMLP
from interpolants.objective import MeanFlowObjective

WCFM_KAPPA = 1.0  # W-CFM temperature ε = κ · E|x0 − x1|² of independent pairs
CACHE = RESULTS / "few_step_cache"


def _model(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return MLP(2, hidden=256, depth=3)


class PairPool:
    """Random rows of a fixed pool of pairs, kept paired: an endless iterable of batches."""

    def __init__(self, x0: Tensor, x1: Tensor, batch: int, seed: int) -> None:
        self.x0, self.x1, self.batch = x0, x1, batch
        self.gen = torch.Generator().manual_seed(seed)

    def __iter__(self) -> Iterator[Batch]:
        while True:
            idx = torch.randint(0, self.x0.shape[0], (self.batch,), generator=self.gen)
            yield Batch(x0=self.x0[idx], x1=self.x1[idx])


def _fit(
    model: nn.Module,
    batches: Any,
    steps: int,
    seed: int,
    *,
    lr: float,
    objective: Any = None,
) -> dict[str, Any]:
    """``steps`` Trainer steps with the best recipe's optimiser (cosine lr, clip 1, EMA 0.99)."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    trainer = Trainer(
        model,
        objective or VelocityObjective(LinearInterpolant()),
        batches,
        optimizer=opt,
        ema_decay=0.99,
        grad_clip=1.0,
        seed=seed,
    )
    start = time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for n in range(steps):
            for group in opt.param_groups:
                group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * n / steps))
            trainer.step()
    return {"model": trainer.sampling_model.eval(), "cpu_s": time.process_time() - start}


def train_ot(base: Any, target: Any, steps: int, seed: int) -> dict[str, Any]:
    paired = PairedBatches(base, target, 256, OTCoupling())
    return _fit(_model(seed), paired, steps, seed, lr=1e-2)


def reflow_pool(
    teacher: nn.Module, base: Any, n: int, seed: int, tag: str
) -> tuple[Tensor, Tensor, float]:
    """(x0, X1(x0)) for ``n`` base draws, our Dopri5 at rtol 1e-4; cached on disk."""
    x0 = base.sample(n, torch.Generator().manual_seed(20_000 + seed))
    coupling = ReflowCoupling(teacher, Dopri5(rtol=1e-4, atol=1e-5), batch_size=4096)
    CACHE.mkdir(parents=True, exist_ok=True)
    start = time.process_time()
    x1 = coupling.generate(x0, cache=CACHE / f"{tag}.pt")
    return x0, x1, time.process_time() - start


def train_reflow(
    teacher: nn.Module, x0: Tensor, x1: Tensor, steps: int, seed: int
) -> dict[str, Any]:
    model = _model(seed)
    model.load_state_dict(teacher.state_dict())
    return _fit(model, PairPool(x0, x1, 256, seed), steps, seed, lr=1e-3)


def distil(model: nn.Module, x0: Tensor, x1: Tensor, steps: int, seed: int) -> dict[str, Any]:
    """Fine-tune u(0, ·) to the one-step map x1 − x0 on the pool (MSE of the velocity at t=0)."""
    student = _model(seed)
    student.load_state_dict(model.state_dict())
    opt = torch.optim.Adam(student.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(seed)
    start = time.process_time()
    ema = {k: v.detach().clone() for k, v in student.state_dict().items()}
    for n in range(steps):
        for group in opt.param_groups:
            group["lr"] = 1e-3 * 0.5 * (1 + math.cos(math.pi * n / steps))
        idx = torch.randint(0, x0.shape[0], (256,), generator=gen)
        a, b = x0[idx], x1[idx]
        t = torch.zeros(256)
        loss = (student(t, a) - (b - a)).square().sum(1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(student.parameters(), 1.0)
        opt.step()
        with torch.no_grad():
            for k, v in student.state_dict().items():
                ema[k].lerp_(v, 0.01)
    student.load_state_dict(ema)
    return {"model": student.eval(), "cpu_s": time.process_time() - start}


def train_mean_flow(base: Any, target: Any, steps: int, seed: int) -> dict[str, Any]:
    """MeanFlowObjective (u(t, r, x), a quarter of the pairs with r = t) with OT pairs, an
    AverageVelocityMLP of the same width and depth, the best recipe's optimiser."""
    torch.manual_seed(seed)
    model = AverageVelocityMLP(2, hidden=256, depth=3)
    paired = PairedBatches(base, target, 256, OTCoupling())
    objective = MeanFlowObjective(LinearInterpolant())
    return _fit(model, paired, steps, seed, lr=1e-3, objective=objective)


def train_wcfm(base: Any, target: Any, steps: int, seed: int) -> dict[str, Any]:
    """Weighted CFM: GibbsWeightedCoupling with ε = κ·E|x0 − x1|² (independent pairs)."""
    gen = torch.Generator().manual_seed(30_000 + seed)
    scale = float((base.sample(4096, gen) - target.sample(4096, gen)).square().sum(1).mean())
    paired = PairedBatches(base, target, 256, GibbsWeightedCoupling(epsilon=WCFM_KAPPA * scale))
    out = _fit(_model(seed), paired, steps, seed, lr=1e-2)
    out["epsilon"] = WCFM_KAPPA * scale
    return out


def train_learned_path(base: Any, target: Any, steps: int, seed: int) -> dict[str, Any]:
    """Velocity (descending the MSE) and a LearnedInterpolant (ascending the dot form), jointly."""
    model = _model(seed)
    interp = LearnedInterpolant(degree=6)
    opt_v = torch.optim.Adam(model.parameters(), lr=1e-2)
    opt_i = torch.optim.Adam(interp.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(seed)
    ema = {k: v.detach().clone() for k, v in model.state_dict().items()}
    start = time.process_time()
    for n in range(steps):
        for group in opt_v.param_groups:
            group["lr"] = 1e-2 * 0.5 * (1 + math.cos(math.pi * n / steps))
        x0, x1 = base.sample(256, gen), target.sample(256, gen)
        t = torch.rand(256, generator=gen)
        s = interp.sample(t, x0, x1)
        b = model(t, s.xt)
        # velocity: MSE to the path's velocity (path fixed)
        loss_v = (b - s.velocity.detach()).square().sum(1).mean()
        # interpolant: ascend the dot form ½|b|² − y·b (model fixed)
        dot = (b.detach() * (0.5 * b.detach() - s.velocity)).sum(1).mean()
        opt_v.zero_grad(set_to_none=True)
        opt_i.zero_grad(set_to_none=True)
        loss_v.backward(inputs=list(model.parameters()))
        (-dot).backward(inputs=interp.parameters())
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt_v.step()
        opt_i.step()
        with torch.no_grad():
            for k, v in model.state_dict().items():
                ema[k].lerp_(v, 0.01)
    model.load_state_dict(ema)
    return {
        "model": model.eval(),
        "cpu_s": time.process_time() - start,
        "interpolant": repr(interp),
    }
