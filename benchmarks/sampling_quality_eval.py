r"""The measurements of :mod:`sampling_quality`: W2 and straightness per NFE, one task at a time.

:func:`ode_metrics` (Euler) and :func:`sde_metrics` (Euler–Maruyama) measure a trained model
at each NFE of :data:`NFES`; :func:`run_task` trains every row on one task and measures it.
"""

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from interpolants import (
    BrownianGamma,
    Euler,
    IndependentCoupling,
    LinearInterpolant,
    OTCoupling,
    SplitObjective,
    VelocityObjective,
    time_grid,
)
from interpolants.cli import sde_samples
from interpolants.coupling import SchrodingerBridgeCoupling, SinkhornCoupling
from interpolants.fields import ScoreFromDenoiser, VelocityFromSplit
from interpolants.interpolant import QuadraticGamma
from interpolants.metrics import wasserstein2
from interpolants.nn import TwoHeadMLP
from sampling_quality_data import TASKS
from sampling_quality_train import BEST, PREFETCHED, SDE_EPS, SDE_GAMMA, train_ours, train_torchcfm

NFES = (1, 2, 4, 8, 16, 32, 100)


@torch.no_grad()
def ode_metrics(
    velocity: Callable[..., Tensor], x0: Tensor, ref: Tensor
) -> dict[int, dict[str, float]]:
    """W2 and straightness of Euler at each NFE."""
    out = {}
    for nfe in NFES:
        grid = time_grid(nfe, dtype=x0.dtype)
        traj = Euler().integrate(velocity, x0, grid, save_at=grid).trajectory
        assert traj is not None
        dt = 1.0 / nfe
        chord = traj[-1] - traj[0]
        steps = (traj[1:] - traj[:-1]) / dt  # v(t_k, X_k) for Euler
        straight = float(((chord[None] - steps).square().sum(-1).mean(-1) * dt).sum())
        out[nfe] = {"w2": wasserstein2(traj[-1], ref), "straightness": straight}
    return out


@torch.no_grad()
def sde_metrics(
    interp: Any, velocity: Any, score: Any, x0: Tensor, ref: Tensor, seed: int
) -> dict[float, dict[int, float]]:
    """W2 of Euler–Maruyama (ε(t) = ε·γ(t)/max γ) at each NFE and peak ε."""
    out: dict[float, dict[int, float]] = {}
    for eps in SDE_EPS:
        out[eps] = {}
        for nfe in NFES:
            gen = torch.Generator().manual_seed(seed + nfe)
            sol = sde_samples(interp, velocity, score, x0, eps, nfe, generator=gen)
            out[eps][nfe] = wasserstein2(sol.state, ref)
    return out


def run_task(name: str, steps: int, n_eval: int, seed: int) -> dict[str, Any]:
    """Train every side on one task and measure it."""
    base, target = TASKS[name]
    gen = torch.Generator().manual_seed(10_000 + seed)
    x0 = base.sample(n_eval, gen)
    ref = target.sample(n_eval, gen)
    floor = wasserstein2(target.sample(n_eval, gen), ref)
    rows: dict[str, dict[str, Any]] = {}
    samples: dict[str, Tensor] = {}

    def record(label: str, trained: dict[str, Any], velocity: Any, extra: dict[str, Any]) -> None:
        metrics = ode_metrics(velocity, x0, ref)
        rows[label] = {
            "cpu_s": trained["cpu_s"],
            "wall_s": trained["wall_s"],
            "steps": trained["steps"],
            **extra,
            "ode": metrics,
        }
        with torch.no_grad():
            samples[label] = Euler().integrate(velocity, x0, time_grid(1)).state
        w2 = [f"{metrics[k]['w2']:.3f}" for k in NFES]
        print(
            f"  {label:38s} {trained['steps']:5d} steps {trained['cpu_s']:6.1f} CPU s "
            f"{trained['wall_s']:6.1f} s  W2 {w2}",
            flush=True,
        )

    print(f"{name}: floor W2 {floor:.3f}", flush=True)
    for kind, label in (("icfm", "torchcfm I-CFM"), ("otcfm", "torchcfm OT-CFM")):
        tr = train_torchcfm(kind, base, target, steps, seed)
        record(label, tr, tr["velocity"], {"recipe": "torchcfm, Adam 1e-3, no EMA"})
    budget, budget_wall = rows["torchcfm OT-CFM"]["cpu_s"], rows["torchcfm OT-CFM"]["wall_s"]

    linear = LinearInterpolant()
    sb_sigma = 0.5
    same = {
        "ours independent": (IndependentCoupling(), VelocityObjective(linear)),
        "ours OT": (OTCoupling(), VelocityObjective(linear)),
        "ours Sinkhorn (reg 0.05)": (SinkhornCoupling(reg=0.05), VelocityObjective(linear)),
        f"ours SB (σ={sb_sigma})": (
            SchrodingerBridgeCoupling(sigma=sb_sigma),
            VelocityObjective(LinearInterpolant(BrownianGamma(a=sb_sigma**2)), antithetic=True),
        ),
    }
    for label, (coupling, objective) in same.items():
        tr = train_ours(coupling, objective, base, target, seed, steps=steps)
        record(label, tr, tr["model"], {"recipe": "same as torchcfm (Adam 1e-3, no EMA)"})

    best_kw = {
        "budget_s": budget,
        "lr": BEST["lr"],
        "cosine": True,
        "ema": BEST["ema"],
        "grad_clip": BEST["grad_clip"],
    }
    tr = train_ours(OTCoupling(), VelocityObjective(linear), base, target, seed, **best_kw)
    record("ours best (OT, equal CPU)", tr, tr["model"], {"recipe": "BEST, equal CPU-seconds"})
    tr = train_ours(
        OTCoupling(),
        VelocityObjective(linear),
        base,
        target,
        seed,
        prefetch=True,
        **{**best_kw, "budget_s": budget_wall},
    )
    record(PREFETCHED, tr, tr["model"], {"recipe": "BEST, prefetched OT, equal wall-clock"})

    interp = LinearInterpolant(QuadraticGamma(SDE_GAMMA))
    tr = train_ours(
        OTCoupling(), SplitObjective(interp), base, target, seed, model_cls=TwoHeadMLP, **best_kw
    )
    model = tr["model"]
    velocity = VelocityFromSplit(interp, model)
    score = ScoreFromDenoiser(interp, lambda t, x: model(t, x)[1])
    label = f"ours split γ={SDE_GAMMA:g}t(1−t) (OT)"
    record(label, tr, velocity, {"recipe": "BEST with the split objective, equal CPU-seconds"})
    rows[label]["sde"] = sde_metrics(interp, velocity, score, x0, ref, seed)
    print(f"  SDE: {rows[label]['sde']}", flush=True)
    return {
        "floor_w2": floor,
        "n_eval": n_eval,
        "budget_cpu_s": budget,
        "budget_wall_s": budget_wall,
        "rows": rows,
        "samples": {k: v.tolist() for k, v in samples.items()},
        "target": ref.tolist(),
    }
