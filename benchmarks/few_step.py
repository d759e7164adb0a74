r"""Few-step generation: W2 and sliced W2 at NFE 1, 2, 4, 8 (and 100) per model family, with peers.

    python benchmarks/few_step.py            # three tasks, 2000 training steps per stage
    python benchmarks/few_step.py --quick    # 400 steps per stage, 1000 evaluation points
    python benchmarks/few_step.py --tasks "8gaussians→moons"

Tasks (the seeds' 2-D tasks, data as in ``benchmarks/sampling_quality.py``): 8 Gaussians →
moons, N(0, I) → 8 Gaussians, N(0, I) → checkerboard.

Every model is the same MLP (:class:`interpolants.MLP`, 3 × 256, SiLU), batch 256, Adam. A
*stage* is ``steps`` optimiser steps (the budget unit; CPU-seconds are reported beside it).

* **ours OT** — the sampling-quality benchmark's best recipe (exact OT, lr 1e-2 with a cosine
  decay, gradient clipping at 1, EMA 0.99), one stage. The teacher of the reflow rows.
* **reflow 1 / reflow 2** — :class:`~interpolants.coupling.ReflowCoupling` of the previous
  model (our Dopri5, rtol 1e-4) generates a pool of ``pool`` pairs (x0, X1(x0)) once
  (cached on disk under ``benchmarks/results/few_step_cache``); a model initialised from the
  teacher is trained one stage on random rows of the pool (independent pairing, the pairs
  kept), same recipe without OT. Reflow 2 repeats this from reflow 1.
* **reflow 2 + distil** — the reflow-2 model fine-tuned one stage as a one-step map
  x1 ≈ x0 + u(0, x0) on the same pool (velocity regression at t = 0); NFE 1 only.
* **mean flow** — :class:`~interpolants.objective.MeanFlowObjective` (average velocity
  u(t, r, x), a quarter of the draws with r = t) on exact-OT pairs, an
  :class:`~interpolants.nn.AverageVelocityMLP` (3 × 256), Adam 1e-3 with the cosine decay,
  clipping and EMA, one stage; sampled by :class:`~interpolants.integrate.FlowMapSteps`
  (one evaluation per jump).
* **weighted CFM** — :class:`~interpolants.coupling.GibbsWeightedCoupling` with
  ε = κ·E|x0 − x1|² of independent pairs (κ = 1), the best recipe otherwise, one stage.
* **learned path** — :class:`~interpolants.LearnedInterpolant` (degree 6) trained jointly with
  the velocity, independent coupling: the velocity descends the MSE, the interpolant's
  coefficients ascend the dot-form loss (max–min of the kinetic energy), one stage.
* **torchcfm OT-CFM** — ``ExactOptimalTransportConditionalFlowMatcher(0)``, plain Adam 1e-3
  loop, for as many steps as our longest pipeline (three stages): the peer gets at least our
  budget in steps.
* **torchebm OT / reflow** — torchebm's ``FlowMatchingLoss`` (linear interpolant) with its OT
  coupling for one stage; then its ``ReflowCoupling`` of that model (its ``FlowSampler``,
  Dopri5, 50 steps) generates a pool of ``pool`` pairs once and a model initialised from the
  teacher trains one stage on random rows of it; its own Adam 1e-3 loop (no EMA).

Metrics on ``eval`` points: exact W2 (POT) to held-out target samples and sliced W2 (256
projections), for Euler (the flows) at NFE 1, 2, 4, 8 and 100; the floor is W2 between two
target samples of that size. The issue's target: at NFE 1, W2 ≤ 1.15 × the same family's
NFE-100 W2 on all three tasks, and below every peer row at NFE 1 and 2.
"""

import argparse
import json
import math
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, machine, table, versions, write_results
from interpolants import (
    MLP,
    Dopri5,
    Euler,
    LinearInterpolant,
    OTCoupling,
    PairedBatches,
    Trainer,
    VelocityObjective,
    time_grid,
)
from interpolants.coupling import GibbsWeightedCoupling, ReflowCoupling
from interpolants.data import Batch
from interpolants.integrate import FlowMap, FlowMapSteps
from interpolants.interpolant import LearnedInterpolant
from interpolants.metrics import sliced_wasserstein, wasserstein2
from interpolants.nn import AverageVelocityMLP
from interpolants.objective import MeanFlowObjective
from sampling_quality import TASKS

NFES = (1, 2, 4, 8, 100)
ROWS = ["ot", "reflow", "meanflow", "wcfm", "learned", "torchcfm", "torchebm"]
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


# --- peers ------------------------------------------------------------------------------------
def train_torchcfm_ot(base: Any, target: Any, steps: int, seed: int) -> dict[str, Any]:
    import numpy as np
    from torchcfm.conditional_flow_matching import ExactOptimalTransportConditionalFlowMatcher

    fm = ExactOptimalTransportConditionalFlowMatcher(0.0)
    model = _model(seed)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(seed)
    np.random.seed(seed)  # noqa: NPY002 (torchcfm draws its OT pairs with np.random.choice)
    start = time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(steps):
            x0, x1 = base.sample(256, gen), target.sample(256, gen)
            t, xt, ut = fm.sample_location_and_conditional_flow(x0, x1)
            loss = ((model(t, xt) - ut) ** 2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return {"model": model.eval(), "cpu_s": time.process_time() - start}


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


# --- evaluation -------------------------------------------------------------------------------
@torch.no_grad()
def metrics(
    step: Callable[[Tensor, int], Tensor], x0: Tensor, ref: Tensor, nfes: tuple[int, ...]
) -> dict[int, dict[str, float]]:
    out = {}
    for nfe in nfes:
        x1 = step(x0, nfe)
        gen = torch.Generator().manual_seed(nfe)
        out[nfe] = {
            "w2": wasserstein2(x1, ref),
            "sw2": float(sliced_wasserstein(x1, ref, generator=gen)),
        }
    return out


def euler(velocity: Any) -> Callable[[Tensor, int], Tensor]:
    def run(x0: Tensor, nfe: int) -> Tensor:
        return Euler().integrate(velocity, x0, time_grid(nfe, dtype=x0.dtype)).state

    return run


def flow_map(average: Any) -> Callable[[Tensor, int], Tensor]:
    def run(x0: Tensor, nfe: int) -> Tensor:
        grid = time_grid(nfe, dtype=x0.dtype)
        return FlowMapSteps().integrate(FlowMap(average), x0, grid).state

    return run


def run_task(
    name: str, steps: int, n_eval: int, pool: int, seed: int, rows_wanted: set[str]
) -> dict[str, Any]:
    base, target = TASKS[name]
    gen = torch.Generator().manual_seed(10_000 + seed)
    x0 = base.sample(n_eval, gen)
    ref = target.sample(n_eval, gen)
    floor = wasserstein2(target.sample(n_eval, gen), ref)
    rows: dict[str, Any] = {}
    slug = "".join(c if c.isalnum() else "_" for c in name.replace("→", "_to_"))
    tag = f"{slug}_{seed}_{steps}"

    def add(
        label: str,
        family: str,
        trained: dict[str, Any],
        step: Any,
        stages: float,
        nfes: tuple[int, ...] = NFES,
        **extra: Any,
    ) -> None:
        rows[label] = {
            "family": family,
            "stages": stages,
            "train_steps": int(stages * steps),
            "cpu_s": trained["cpu_s"],
            "metrics": metrics(step, x0, ref, nfes),
            **extra,
        }
        m = rows[label]["metrics"]
        print(
            f"  {label:28s} cpu {trained['cpu_s']:7.1f}s  "
            + "  ".join(f"{k}:{v['w2']:.3f}" for k, v in m.items()),
            flush=True,
        )

    print(f"{name}: floor W2 {floor:.3f}", flush=True)
    if rows_wanted & {"ot", "reflow"}:
        ot = train_ot(base, target, steps, seed)
        add("ours OT", "OT", ot, euler(ot["model"]), 1)
    if "reflow" in rows_wanted:
        x0p, x1p, gen_cpu = reflow_pool(ot["model"], base, pool, seed, tag + "_r1")
        r1 = train_reflow(ot["model"], x0p, x1p, steps, seed)
        r1["cpu_s"] += ot["cpu_s"] + gen_cpu
        add("ours reflow 1", "reflow", r1, euler(r1["model"]), 2, pool_cpu_s=gen_cpu)
        x0q, x1q, gen_cpu2 = reflow_pool(r1["model"], base, pool, seed + 1, tag + "_r2")
        r2 = train_reflow(r1["model"], x0q, x1q, steps, seed)
        r2["cpu_s"] += r1["cpu_s"] + gen_cpu2
        add("ours reflow 2", "reflow", r2, euler(r2["model"]), 3, pool_cpu_s=gen_cpu2)
        d = distil(r2["model"], x0q, x1q, steps, seed)
        d["cpu_s"] += r2["cpu_s"]
        add("ours reflow 2 + distil", "reflow", d, euler(d["model"]), 4, nfes=(1,))
    if "meanflow" in rows_wanted:
        mf = train_mean_flow(base, target, steps, seed)
        add("ours mean flow", "mean flow", mf, flow_map(mf["model"]), 1)
    if "wcfm" in rows_wanted:
        wc = train_wcfm(base, target, steps, seed)
        add("ours weighted CFM", "W-CFM", wc, euler(wc["model"]), 1, epsilon=wc["epsilon"])
    if "learned" in rows_wanted:
        lp = train_learned_path(base, target, steps, seed)
        add(
            "ours learned path",
            "learned path",
            lp,
            euler(lp["model"]),
            1,
            interpolant=lp["interpolant"],
        )
    if "torchcfm" in rows_wanted:
        tc = train_torchcfm_ot(base, target, 3 * steps, seed)
        add("torchcfm OT-CFM", "peer", tc, euler(tc["model"]), 3)
    if "torchebm" in rows_wanted:
        te = train_torchebm_reflow(base, target, steps, pool, seed)
        add("torchebm OT", "peer", {"cpu_s": float("nan")}, euler(te["teacher"]), 1)
        add("torchebm reflow", "peer", te, euler(te["model"]), 2)
    return {"floor": floor, "rows": rows}


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "# Few-step generation",
        "",
        f"Machine: {report['machine'].get('cpu', '?')}, torch threads {report['threads']}; "
        f"{report['steps']} optimiser steps per stage, batch 256, {report['eval']} evaluation "
        f"points, reflow pools of {report['pool']} pairs, seed {report['seed']}. "
        "`stages` counts optimiser stages of the row's whole pipeline (teachers included); "
        "CPU-s is the pipeline's training and pair-generation CPU time.",
        "",
    ]
    for task, res in report["tasks"].items():
        lines += [f"## {task} (floor W2 {res['floor']:.3f})", ""]
        headers = (
            ["model", "stages", "CPU-s"]
            + [f"W2 @{n}" for n in NFES]
            + [f"SW2 @{n}" for n in (1, 2)]
            + ["W2@1 / W2@100"]
        )
        body = []
        for label, row in res["rows"].items():
            m = {int(k): v for k, v in row["metrics"].items()}
            w = [f"{m[n]['w2']:.3f}" if n in m else "" for n in NFES]
            sw = [f"{m[n]['sw2']:.3f}" if n in m else "" for n in (1, 2)]
            ratio = f"{m[1]['w2'] / m[100]['w2']:.2f}" if 100 in m else ""
            cpu = row["cpu_s"]
            cpu_text = f"{cpu:.0f}" if math.isfinite(cpu) else "(in the next row)"
            body.append([label, row["stages"], cpu_text, *w, *sw, ratio])
        lines += [table(headers, body), ""]
    lines += ["## Targets", "", *report["verdicts"], ""]
    return "\n".join(lines)


def verdicts(report: dict[str, Any]) -> list[str]:
    out = []
    for task, res in report["tasks"].items():
        rows = {k: {int(n): v for n, v in r["metrics"].items()} for k, r in res["rows"].items()}
        peers = {k: v for k, v in rows.items() if res["rows"][k]["family"] == "peer"}
        best_ours = min(
            (k for k in rows if res["rows"][k]["family"] != "peer"), key=lambda k: rows[k][1]["w2"]
        )
        fam = res["rows"][best_ours]["family"]
        ref100 = min(
            r[100]["w2"] for k, r in rows.items() if res["rows"][k]["family"] == fam and 100 in r
        )
        ratio = rows[best_ours][1]["w2"] / ref100
        beat = all(
            min(r[n]["w2"] for k, r in rows.items() if k not in peers and n in r) < p[n]["w2"]
            for p in peers.values()
            for n in (1, 2)
        )
        out.append(
            f"- {task}: best one-step row `{best_ours}` W2@1 = {rows[best_ours][1]['w2']:.3f}, "
            f"family's best W2@100 = {ref100:.3f}, ratio {ratio:.2f} "
            f"({'met' if ratio <= 1.15 else 'NOT met'} ≤ 1.15); below every peer at NFE 1 and 2: "
            f"{'met' if beat else 'NOT met'}"
        )
    return out


def render(suite: str) -> None:
    """Rewrite ``results/<suite>.md`` (and RESULTS.md) from the saved JSON."""
    report = json.loads((RESULTS / f"{suite}.json").read_text())
    write_results(suite, report, markdown(report))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--pool", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--tasks", nargs="*", default=list(TASKS))
    parser.add_argument("--rows", nargs="*", default=ROWS, choices=ROWS)
    parser.add_argument("--merge", action="store_true", help="add the rows to the last results")
    parser.add_argument("--render", action="store_true", help="only rewrite the markdown")
    args = parser.parse_args()
    if args.render:
        render("few_step_quick" if args.quick else "few_step")
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    steps = args.steps or (400 if args.quick else 2000)
    pool = args.pool or (8192 if args.quick else 16384)
    n_eval = 1000 if args.quick else 2000
    report: dict[str, Any] = {
        "machine": machine(),
        "versions": versions("torch", "torchcfm", "torchebm"),
        "threads": torch.get_num_threads(),
        "steps": steps,
        "pool": pool,
        "eval": n_eval,
        "seed": args.seed,
        "tasks": {},
    }
    suite = "few_step_quick" if args.quick else "few_step"
    previous = RESULTS / f"{suite}.json"
    if args.merge and previous.exists():  # add or replace rows of an earlier run
        old = json.loads(previous.read_text())
        if (old["steps"], old["pool"], old["eval"], old["seed"]) != (
            steps,
            pool,
            n_eval,
            args.seed,
        ):
            raise SystemExit(f"--merge: {previous} was run with other settings")
        report["tasks"] = old["tasks"]
    for name in args.tasks:
        res = run_task(name, steps, n_eval, pool, args.seed, set(args.rows))
        report["tasks"].setdefault(name, {"rows": {}})["floor"] = res["floor"]
        report["tasks"][name]["rows"].update(res["rows"])
    report["verdicts"] = verdicts(report)
    for line in report["verdicts"]:
        print(line)
    write_results(suite, json.loads(json.dumps(report, default=str)), markdown(report))


if __name__ == "__main__":
    main()
