r"""The peer rows of :mod:`few_step`: torchcfm's OT-CFM and torchebm's OT flow matching and reflow.

Each peer trains the same MLP as ours in its own plain Adam 1e-3 loop (no EMA):
:func:`train_torchcfm_ot` for as many steps as our longest pipeline,
:func:`train_torchebm_reflow` one stage of OT flow matching and one of reflow on a pool of
pairs its own sampler generates.
"""

import time
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from few_step_ours import _model
from sampling_quality_train import train_torchcfm


def train_torchcfm_ot(base: Any, target: Any, steps: int, seed: int) -> dict[str, Any]:
    """torchcfm's OT-CFM, the loop of :func:`sampling_quality_train.train_torchcfm`."""
    out = train_torchcfm("otcfm", base, target, steps, seed)
    return {"model": out["velocity"], "cpu_s": out["cpu_s"]}


class _XT(nn.Module):
    """torchebm calls ``model(x, t)``; ours is ``model(t, x)``."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: Tensor, t: Tensor, **_: Any) -> Tensor:
        return self.inner(t, x)


def train_torchebm_reflow(
    base: Any, target: Any, steps: int, pool: int, seed: int
) -> dict[str, Any]:
    """torchebm: OT flow matching for one stage; then its ReflowCoupling of that model (its
    FlowSampler, Dopri5, 50 steps) generates a pool of pairs once, and a model initialised
    from the teacher trains one stage on random rows of the pool (its loss, independent)."""
    from torchebm.couplings import ReflowCoupling as EBMReflow
    from torchebm.losses import FlowMatchingLoss
    from torchebm.samplers import FlowSampler

    gen = torch.Generator().manual_seed(seed)

    def stage(model: nn.Module, coupling: Any, draw: Callable[[], tuple[Tensor, Tensor]]) -> float:
        loss_fn = FlowMatchingLoss(model=_XT(model), interpolant="linear", coupling=coupling)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        start = time.process_time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for _ in range(steps):
                x0, x1 = draw()
                loss = loss_fn(x1, x0=x0)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        return time.process_time() - start

    teacher = _model(seed)
    cpu = stage(teacher, "ot", lambda: (base.sample(256, gen), target.sample(256, gen)))
    teacher.eval()
    start = time.process_time()
    sampler = FlowSampler(_XT(teacher), interpolant="linear")
    p0 = base.sample(pool, torch.Generator().manual_seed(20_000 + seed))
    with torch.no_grad():
        _, p1 = EBMReflow(sampler, n_steps=50).couple(p0)
    cpu += time.process_time() - start

    def rows() -> tuple[Tensor, Tensor]:
        idx = torch.randint(0, pool, (256,), generator=gen)
        return p0[idx], p1[idx]

    student = _model(seed)
    student.load_state_dict(teacher.state_dict())
    cpu += stage(student, None, rows)
    return {"teacher": teacher, "model": student.eval(), "cpu_s": cpu}
