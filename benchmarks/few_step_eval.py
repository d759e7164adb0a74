r"""The measurements of :mod:`few_step`: W2 and sliced W2 per NFE, one task at a time.

:func:`metrics` measures a sampler (:func:`euler` of a velocity, :func:`flow_map` of an
average velocity) at each NFE; :func:`run_task` trains the wanted rows on one task and
measures them.
"""

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from few_step_ours import (
    distil,
    reflow_pool,
    train_learned_path,
    train_mean_flow,
    train_ot,
    train_reflow,
    train_wcfm,
)
from few_step_peers import train_torchcfm_ot, train_torchebm_reflow
from interpolants import Euler, time_grid
from interpolants.integrate import FlowMap, FlowMapSteps
from interpolants.metrics import sliced_wasserstein, wasserstein2
from sampling_quality_data import TASKS

NFES = (1, 2, 4, 8, 100)


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
