r"""Sampling quality: W2 to held-out target samples and path straightness per NFE, ours vs torchcfm.

    python benchmarks/sampling_quality.py          # three tasks, 3000-step reference (~17 min)
    python benchmarks/sampling_quality.py --quick  # 600-step budget, 1000 eval points (~4 min)
    python benchmarks/sampling_quality.py --threads 0  # torch's default thread count (default 1)

Tasks: N(0, I) → 8 Gaussians, 8 Gaussians → moons, N(0, I) → checkerboard. The 8 Gaussians and
the moons follow torchcfm's ``torchcfm.utils.sample_8gaussians`` / ``sample_moons`` exactly
(radius 5, covariance √0.1·I; torchdyn's ``generate_moons(n, noise=0.2)·3 − 1``, i.e. points on
evenly spaced arc positions shifted by one U[0, 0.2) number along (1, 1)). ``torchcfm.utils``
imports torchdyn at import time, which is not installed here, so the two samplers are
re-implemented below from their definitions (with a torch generator instead of the global
numpy RNG). The checkerboard is :class:`interpolants.data.Checkerboard`.

Every side uses the same MLP class (:class:`interpolants.MLP`, 3 × 256, SiLU), Adam 1e-3,
batch 256 and the same data samplers:

* **torchcfm I-CFM / OT-CFM**: ``ConditionalFlowMatcher(sigma=0)`` /
  ``ExactOptimalTransportConditionalFlowMatcher(sigma=0)``, plain loop (MSE, no EMA, no
  clipping), ``steps`` steps (3000 as in the reference setting).
* **ours, same settings**: :class:`~interpolants.Trainer` with ``ema_decay=None,
  grad_clip=None``, :class:`~interpolants.VelocityObjective` on the linear interpolant (γ ≡ 0),
  couplings independent / exact OT / Sinkhorn (reg 0.05) / Schrödinger bridge (σ = 0.5 with
  the Brownian-bridge interpolant γ = σ√(t(1−t)), antithetic), ``steps`` steps.
* **ours, best**: exact OT + EMA (see ``BEST``), trained for the *same CPU-seconds* of training
  steps as torchcfm's OT-CFM used for its ``steps`` (coupling time included on both sides).
* **ours, best, prefetched**: the same recipe for the *same wall-clock seconds* as torchcfm's
  OT-CFM took (the issue's criterion), with the couplings computed ahead by one producer
  process (:class:`interpolants.PrefetchedBatches`, assisted by the training loop) on the
  machine's second core: the library's way to take the coupling off the training step.
  torchcfm computes its couplings inline, so this row uses more CPU than OT-CFM; its CPU column
  counts the training process only.
* **ours, SDE**: the split objective (v, η_z) on the linear interpolant with γ = a·t(1−t),
  exact OT, EMA, same CPU budget; sampled by the ODE (b = v + γ̇η_z) and by Euler–Maruyama
  with ε(t) = ε·γ(t)/max γ (:func:`interpolants.cli.sde_samples`).

Metrics: exact W2 (POT, :func:`interpolants.wasserstein2`) between ``eval`` generated samples
and ``eval`` held-out target samples, for Euler with NFE ∈ {1, 2, 4, 8, 16, 32, 100}; the floor
is W2 between two independent target samples of that size. Straightness
S = ∫ E|(X1 − X0) − v(t, X_t)|² dt on the Euler grid: S = Σ_k Δt·mean|X_N − X_0 − v(t_k, X_k)|²
(zero at NFE 1 by construction).
"""

import argparse
import json
import math
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, machine, table, versions, write_results
from interpolants import (
    MLP,
    BrownianGamma,
    Coupling,
    Euler,
    IndependentCoupling,
    LinearInterpolant,
    OTCoupling,
    PairedBatches,
    SplitObjective,
    Trainer,
    VelocityObjective,
    time_grid,
)
from interpolants.cli import sde_samples
from interpolants.coupling import SchrodingerBridgeCoupling, SinkhornCoupling
from interpolants.data import Checkerboard, PrefetchedBatches
from interpolants.fields import ScoreFromDenoiser, VelocityFromSplit
from interpolants.interpolant import QuadraticGamma
from interpolants.metrics import wasserstein2
from interpolants.nn import TwoHeadMLP

NFES = (1, 2, 4, 8, 16, 32, 100)


# --- data: torchcfm's samplers, re-implemented (torchcfm.utils needs torchdyn) ----------------
class TorchCFMEightGaussians:
    """``torchcfm.utils.sample_8gaussians``: centres 5·(unit vectors at kπ/4), covariance √0.1·I.

    (torchcfm passes ``math.sqrt(var) * eye`` as the *covariance* of its MultivariateNormal, so
    the per-coordinate std is 0.1^{1/4} ≈ 0.562.)
    """

    std = 0.1**0.25

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        k = torch.randint(0, 8, (n,), generator=generator)
        angle = k.float() * (math.pi / 4)
        centres = 5.0 * torch.stack([torch.cos(angle), torch.sin(angle)], 1)
        return centres + self.std * torch.randn(n, 2, generator=generator)


class TorchCFMMoons:
    """``torchcfm.utils.sample_moons``: torchdyn ``generate_moons(n, noise=0.2)`` · 3 − 1.

    torchdyn puts n//2 points on evenly spaced positions of the upper arc and the rest on the
    lower arc (``np.linspace``), then adds one U[0, noise) number to *both* coordinates.
    """

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        n_out, n_in = n // 2, n - n // 2
        s_out = torch.linspace(0, math.pi, n_out)
        s_in = torch.linspace(0, math.pi, n_in)
        x = torch.cat([torch.cos(s_out), 1 - torch.cos(s_in)])
        y = torch.cat([torch.sin(s_out), 1 - torch.sin(s_in) - 0.5])
        pts = torch.stack([x, y], 1) + 0.2 * torch.rand(n, 1, generator=generator)
        return pts * 3 - 1


class StandardNormal:
    """N(0, I) in 2-D."""

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return torch.randn(n, 2, generator=generator)


TASKS: dict[str, tuple[Any, Any]] = {
    "N(0,I)→8gaussians": (StandardNormal(), TorchCFMEightGaussians()),
    "8gaussians→moons": (TorchCFMEightGaussians(), TorchCFMMoons()),
    "N(0,I)→checkerboard": (StandardNormal(), Checkerboard()),
}

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


# --- training ---------------------------------------------------------------------------------
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


# --- evaluation -------------------------------------------------------------------------------
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


# --- report -----------------------------------------------------------------------------------
def markdown(report: dict[str, Any]) -> str:
    s = report["settings"]
    m = report["machine"]
    lines = [
        "# Sampling quality: W2 to held-out target samples per NFE (Euler), ours vs torchcfm",
        "",
        f"Machine: {m['cpu']}, {m['cpu_count']} cores, torch threads {m['torch_threads']}. "
        f"{'Quick run' if s['quick'] else 'Full run'}: reference budget {s['steps']} steps of "
        f"batch 256, {s['n_eval']} generated vs {s['n_eval']} held-out points, seed {s['seed']} "
        "(one seed: differences of a few hundredths are within run-to-run noise).",
        "",
        "All sides: `interpolants.MLP` 3×256, Adam, batch 256, the same samplers (torchcfm's "
        "8 Gaussians and moons scaling, re-implemented because `torchcfm.utils` needs torchdyn). "
        "torchcfm rows and *ours (same settings)* rows: Adam 1e-3, no EMA, no clipping, "
        f"{s['steps']} steps. *ours best*: {s['best']} — trained for the same CPU-seconds of "
        "training steps as torchcfm OT-CFM used (coupling included on both sides), so it takes "
        "fewer steps when its step is slower. *ours best (OT prefetched, equal wall)*: the same "
        "recipe for the same *wall-clock* seconds as OT-CFM took (the issue's criterion), its "
        "couplings computed ahead by one producer process on the second core "
        "(`PrefetchedBatches`, assisted by the training loop); torchcfm has no such mode and "
        "computes its couplings inline, so this row uses more CPU than OT-CFM (its CPU column "
        "counts the training process only). Straightness S = ∫E|(X1−X0) − v(t,X_t)|²dt on the "
        "Euler grid (0 at NFE 1 by construction).",
        "",
    ]
    verdicts = []
    for name, task in report["tasks"].items():
        rows = task["rows"]
        lines += [
            f"## {name}",
            "",
            f"Floor (two independent target samples): W2 = {task['floor_w2']:.3f}. "
            f"Budgets (OT-CFM's training steps): {task['budget_cpu_s']:.1f} CPU s, "
            f"{task['budget_wall_s']:.1f} s wall-clock.",
            "",
        ]
        headers = ["method", "steps", "train CPU s", "train wall s", *[f"NFE {k}" for k in NFES]]
        body = []
        for label, r in rows.items():
            body.append(
                [
                    label,
                    r["steps"],
                    round(r["cpu_s"], 1),
                    round(r["wall_s"], 1),
                    *[round(_get(r["ode"], k)["w2"], 3) for k in NFES],
                ]
            )
        lines += ["W2 (ODE, Euler):", "", table(headers, body), ""]
        body = [
            [label, *[round(_get(r["ode"], k)["straightness"], 3) for k in NFES[1:]]]
            for label, r in rows.items()
        ]
        lines += [
            "Straightness S (ODE, Euler grid):",
            "",
            table(["method", *[f"NFE {k}" for k in NFES[1:]]], body),
            "",
        ]
        for label, r in rows.items():
            if "sde" in r:
                body = [
                    [f"EM, ε = {eps}", *[round(_get(v, k), 3) for k in NFES]]
                    for eps, v in r["sde"].items()
                ]
                body.insert(0, ["ODE (Euler)", *[round(_get(r["ode"], k)["w2"], 3) for k in NFES]])
                lines += [
                    f"W2 of {label}, ODE vs SDE (Euler–Maruyama, ε(t) = ε·γ(t)/max γ):",
                    "",
                    table(["sampler", *[f"NFE {k}" for k in NFES]], body),
                    "",
                ]
        ot = rows["torchcfm OT-CFM"]["ode"]
        for label in BEST_ROWS:
            if label not in rows:
                continue
            best = rows[label]["ode"]
            lost = _nfes_lost(best, ot)
            verdicts.append((name, label, lost, _get(best, 1)["w2"], _get(ot, 1)["w2"]))
            lines += [
                (
                    f"**{label} beats torchcfm OT-CFM at every NFE.**"
                    if not lost
                    else f"**torchcfm OT-CFM wins (or ties) against {label} at NFE "
                    f"{', '.join(map(str, lost))}.**"
                ),
                "",
            ]
    lines += ["## Targets", ""]
    moons = report["tasks"].get("8gaussians→moons")
    for label, budget in zip(BEST_ROWS, ("training CPU time", "training wall-clock")):
        if moons is None or label not in moons["rows"]:
            continue
        w = _get(moons["rows"][label]["ode"], 1)["w2"]
        lines.append(
            f"- W2 ≤ 0.30 at NFE 1 on 8 Gaussians→moons at equal {budget} ({label}): "
            f"{'**met**' if w <= 0.30 else '**not met**'} (W2 = {w:.3f})."
        )
    for name, label, lost, w_ours, w_ot in verdicts:
        lines.append(
            f"- {label} beats OT-CFM at every NFE on {name}: "
            + (
                "**met**"
                if not lost
                else f"**not met** (OT-CFM wins at NFE {', '.join(map(str, lost))})"
            )
            + f"; NFE 1: ours {w_ours:.3f} vs OT-CFM {w_ot:.3f}."
        )
    lines += _other_seeds(report)
    lines += [
        "",
        f"Plots: `results/{report['name']}_w2.png` (W2 vs NFE), "
        f"`results/{report['name']}_nfe1.png` (NFE-1 samples).",
        "",
    ]
    return "\n".join(lines)


def _other_seeds(report: dict[str, Any]) -> list[str]:
    """For the seed-0 report: the NFE-1 W2 of OT-CFM and of the best rows in the runs with other
    seeds (``--seed s`` writes ``<name>_seed<s>.json``), and whether each best row beat OT-CFM
    at every NFE there."""
    if report["settings"]["seed"] != 0:
        return []
    body = []
    for path in sorted(RESULTS.glob(f"{report['name']}_seed*.json")):
        other = json.loads(path.read_text())
        for task, result in other["tasks"].items():
            rows, ot = result["rows"], result["rows"]["torchcfm OT-CFM"]["ode"]
            cells = []
            for label in BEST_ROWS:
                if label not in rows:
                    cells.append("–")
                    continue
                best = rows[label]["ode"]
                lost = _nfes_lost(best, ot)
                verdict = f"no: OT-CFM wins at NFE {', '.join(map(str, lost))}" if lost else "yes"
                cells.append(f"{_get(best, 1)['w2']:.3f} ({verdict})")
            body.append([other["settings"]["seed"], task, f"{_get(ot, 1)['w2']:.3f}", *cells])
    if not body:
        return []
    headers = [
        "seed",
        "task",
        "OT-CFM NFE 1",
        *[f"{b} NFE 1 (beats at every NFE)" for b in BEST_ROWS],
    ]
    return [
        "",
        "Other seeds (their own files `results/" + report["name"] + "_seed<s>.*`):",
        "",
        table(headers, body),
    ]


def _nfes_lost(ours: dict[Any, Any], ot: dict[Any, Any]) -> list[int]:
    """The NFEs at which OT-CFM's W2 is at most ours (it wins or ties)."""
    return [k for k in NFES if _get(ours, k)["w2"] >= _get(ot, k)["w2"]]


def _get(d: dict[Any, Any], k: Any) -> Any:
    return d[k] if k in d else d[str(k)]


def plots(report: dict[str, Any], raw: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = report["tasks"]
    fig, axes = plt.subplots(1, len(tasks), figsize=(5 * len(tasks), 4), squeeze=False)
    for ax, (name, task) in zip(axes[0], tasks.items()):
        for label, r in task["rows"].items():
            ax.plot(NFES, [_get(r["ode"], k)["w2"] for k in NFES], marker="o", ms=3, label=label)
            for eps, v in r.get("sde", {}).items():
                ax.plot(
                    NFES,
                    [_get(v, k) for k in NFES],
                    ls="--",
                    marker="x",
                    ms=3,
                    label=f"{label}, EM ε={eps}",
                )
        ax.axhline(task["floor_w2"], color="k", lw=0.8, ls=":", label="floor")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("NFE (Euler)")
        ax.set_ylabel("W2 to held-out target")
        ax.set_title(name, fontsize=10)
    axes[0][-1].legend(fontsize=6)
    fig.tight_layout()
    _save(fig, RESULTS / f"{report['name']}_w2.png")
    plt.close(fig)

    shown = ["torchcfm I-CFM", "torchcfm OT-CFM", "ours OT", *BEST_ROWS]
    shown = [k for k in shown if all(k in task["samples"] for task in raw.values())]
    fig, axes = plt.subplots(
        len(tasks),
        1 + len(shown),
        figsize=(2.6 * (1 + len(shown)), 2.6 * len(tasks)),
        squeeze=False,
    )
    for row, (name, task) in zip(axes, raw.items()):
        ref = torch.tensor(task["target"])
        lim = float(ref.abs().max()) * 1.25
        panels = [("target", ref)] + [
            (f"{k}, NFE 1", torch.tensor(task["samples"][k])) for k in shown
        ]
        for ax, (title, pts) in zip(row, panels):
            ax.scatter(pts[:, 0], pts[:, 1], s=0.5, alpha=0.5)
            ax.set_title(f"{name}\n{title}" if title == "target" else title, fontsize=7)
            ax.set_xlim(-lim, lim)
            ax.set_ylim(-lim, lim)
            ax.set_aspect("equal")
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    _save(fig, RESULTS / f"{report['name']}_nfe1.png")
    plt.close(fig)


def _save(fig: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, dpi=110)
    tmp.replace(path)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="600-step budget, 1000 eval points")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads (default 1; 0 keeps torch's default)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tasks", default=";".join(TASKS), help="semicolon-separated task names")
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    steps, n_eval = (600, 1000) if args.quick else (3000, 2000)
    name = "sampling_quality_quick" if args.quick else "sampling_quality"
    if args.seed != 0:  # other seeds get their own files; the seed-0 report lists them
        name += f"_seed{args.seed}"
    raw = {t: run_task(t, steps, n_eval, args.seed) for t in args.tasks.split(";")}
    report = {
        "name": name,
        "machine": machine(),
        "versions": versions("torchcfm"),
        "settings": {
            "quick": args.quick,
            "steps": steps,
            "batch": 256,
            "n_eval": n_eval,
            "seed": args.seed,
            "nfes": list(NFES),
            "best": BEST,
            "sde_gamma_a": SDE_GAMMA,
            "sde_eps": list(SDE_EPS),
            "cpu_clock": "time.process_time() around the training steps",
            "wall_clock": "time.perf_counter() around the training steps",
        },
        "tasks": {
            t: {k: v for k, v in r.items() if k not in ("samples", "target")}
            for t, r in raw.items()
        },
    }
    report = json_roundtrip(report)
    plots(report, raw)
    md = markdown(report)
    write_results(name, report, md)
    print(md)


def json_roundtrip(obj: Any) -> Any:
    import json

    return json.loads(json.dumps(obj, default=str))


if __name__ == "__main__":
    main()
