r"""The training of :mod:`sampling_quality`'s rows: torchcfm's loop and ours.

:func:`train_torchcfm` is torchcfm's I-CFM / OT-CFM in a plain Adam loop; :func:`train_ours`
runs our :class:`~interpolants.Trainer` for a number of steps or a CPU (or, prefetched,
wall-clock) budget. :data:`BEST` is our best recipe and the constants beside it name the rows
trained with it and the split (SDE) model's γ and ε.
"""

import math
import time
import warnings
from typing import Any

import numpy as np
import torch
from torch import nn

from interpolants import MLP, Coupling, PairedBatches, Trainer
from interpolants.data import PrefetchedBatches

# Our best recipe (found on 8gaussians→moons, used unchanged on every task): exact OT at batch
# 256, Adam with a higher peak learning rate and a cosine decay over the CPU budget, global
# gradient-norm clipping at 1 and EMA 0.99 of the weights.
BEST = {
    "coupling": "ot",
    "batch": 256,
    "lr": 1e-2,
    "schedule": "cosine over the training budget (CPU or wall-clock seconds)",
    "grad_clip": 1.0,
    "ema": 0.99,
    "interpolant": "linear, γ ≡ 0",
    "objective": "velocity",
}
PREFETCHED = "ours best (OT prefetched, equal wall)"
BEST_ROWS = ("ours best (OT, equal CPU)", PREFETCHED)
SDE_GAMMA = 1.0  # γ(t) = a·t(1−t) of the split (SDE) model
SDE_EPS = (0.2, 1.0)


def _seeded_model(cls: type[nn.Module], seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return cls(2, hidden=256, depth=3)


def train_torchcfm(kind: str, base: Any, target: Any, steps: int, seed: int) -> dict[str, Any]:
    """torchcfm I-CFM ("icfm") or OT-CFM ("otcfm"), σ = 0, plain Adam loop on our MLP."""
    from torchcfm.conditional_flow_matching import (
        ConditionalFlowMatcher,
        ExactOptimalTransportConditionalFlowMatcher,
    )

    fm = (
        ConditionalFlowMatcher(0.0)
        if kind == "icfm"
        else ExactOptimalTransportConditionalFlowMatcher(0.0)
    )
    model = _seeded_model(MLP, seed)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(seed)
    np.random.seed(seed)  # noqa: NPY002 (torchcfm draws its OT pairs with np.random.choice)
    start, wall = time.process_time(), time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(steps):
            x0, x1 = base.sample(256, gen), target.sample(256, gen)
            t, xt, ut = fm.sample_location_and_conditional_flow(x0, x1)
            loss = ((model(t, xt) - ut) ** 2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return {
        "velocity": model.eval(),
        "cpu_s": time.process_time() - start,
        "wall_s": time.perf_counter() - wall,
        "steps": steps,
    }


def train_ours(
    coupling: Coupling,
    objective: Any,
    base: Any,
    target: Any,
    seed: int,
    *,
    model_cls: type[nn.Module] = MLP,
    steps: int | None = None,
    budget_s: float | None = None,
    lr: float = 1e-3,
    cosine: bool = False,
    ema: float | None = None,
    grad_clip: float | None = None,
    prefetch: bool = False,
) -> dict[str, Any]:
    """Our Trainer for ``steps`` steps, or until ``budget_s`` seconds of steps are spent:
    CPU-seconds of this process, or with ``prefetch`` (couplings made ahead by one producer
    process, which the training loop assists) wall-clock seconds.

    With ``cosine`` the learning rate follows lr·½(1 + cos(π·elapsed/budget)) (by the budget's
    clock when a budget is given, else by step).
    """
    model = _seeded_model(model_cls, seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    paired = PairedBatches(base, target, 256, coupling)
    source = PrefetchedBatches(paired, seed=seed, backend="process") if prefetch else paired
    trainer = Trainer(
        model,
        objective,
        source,
        optimizer=opt,
        ema_decay=ema,
        grad_clip=grad_clip,
        seed=seed,
    )
    clock = time.perf_counter if prefetch else time.process_time
    start, cpu, wall, n = clock(), time.process_time(), time.perf_counter(), 0
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            while True:
                elapsed = clock() - start
                if (budget_s is not None and elapsed >= budget_s) or (
                    steps is not None and n >= steps
                ):
                    break
                if cosine:
                    frac = elapsed / budget_s if budget_s is not None else n / max(steps or 1, 1)
                    for group in opt.param_groups:
                        group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0)))
                trainer.step()
                n += 1
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        if isinstance(source, PrefetchedBatches):
            source.close()
    return {"model": trainer.sampling_model.eval(), "cpu_s": cpu, "wall_s": wall, "steps": n}
