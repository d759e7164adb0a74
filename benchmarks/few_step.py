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
import sys
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, machine, versions, write_results
from few_step_eval import run_task
from few_step_report import markdown, render, verdicts
from sampling_quality_data import TASKS

ROWS = ["ot", "reflow", "meanflow", "wcfm", "learned", "torchcfm", "torchebm"]


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
