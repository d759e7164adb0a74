r"""Density estimation against zuko's NSF and MAF at equal training CPU-seconds.

    python benchmarks/density.py --jobs 2        # full: 3 seeds, toys 60 CPU-s, digits 300
    python benchmarks/density.py --quick         # 1 seed, toys 6 CPU-s, digits 20 (a few min)
    python benchmarks/density.py --ablation      # the recipe's ingredients, one at a time
    python benchmarks/density.py --threads 0     # torch's default thread count (default 1)
    python benchmarks/density.py --jobs 2 --budget 15 --digits-budget 45   # a reduced run
    python benchmarks/density.py --render density --note "..."   # rewrite the markdown only

Runtime: the full run trains 3 tasks × 3 methods × 3 seeds × 60 CPU-s plus digits
3 × 3 × 300 CPU-s plus the equal-steps rows (≈ 90 CPU-minutes in all, ≈ 50 minutes of wall
time with ``--jobs 2`` on an idle 2-core machine); ``--ablation`` ≈ 40 CPU-minutes.

Every method is trained by one process on one torch thread until its *CPU-time* budget
(``time.process_time``, so that other load on the machine does not count) is spent, with the
learning rate following a cosine of the budget's fraction spent; the number of steps reached is
reported beside. Evaluation time is not part of the budget.

* **ours**: the recipe below: a velocity field learned by flow matching
  (:class:`~interpolants.VelocityObjective` on the linear interpolant from a Gaussian base),
  turned into a distribution by :class:`~interpolants.density.InterpolantFlow`, whose
  ``log_prob`` integrates the probability-flow ODE with the exact divergence. On the toys the
  network also sees random Fourier features of x (``density_nets.FourierMLP``, with its own
  exact divergence); on the digits the flow models z = Φ⁻¹(F(y)), a fixed per-pixel marginal
  Gaussianization fitted to the training counts (``density_prep``), whose log-Jacobian is
  counted in the likelihood of y.
* **zuko NSF / MAF**: ``zuko.flows.NSF`` / ``MAF`` trained by maximum likelihood (Adam, same
  cosine schedule, same batches).
* **zuko NSF with our digits preprocessing** (``NSF+prep``, digits only): the same NSF trained
  on the z our digits flow models, scored on y by the same change of variables — the control
  that separates the preprocessing's share of our digits score from the flow's.

Tasks: moons, 8 Gaussians and checkerboard of :mod:`interpolants.data` (test NLL in nats on
2000 held-out points; training samples are fresh every step), and scikit-learn's 8×8 digits
(64-d, 17 levels) with the fixed test split of :func:`interpolants.data.load_digits` (300
images), 200 training images held out for validation, and the *same* dequantisation for every
method: fresh uniform noise y = −1 + (x + u)·2/17 on every training batch, one fixed draw for
the validation and test images. Digits report bits/dim of the best validation checkpoint.
"""

import argparse
import json
import sys
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, machine, versions, write_results
from density_jobs import Job, run_all
from density_ours import Recipe
from density_report import ablation_markdown, markdown
from density_tables import select
from density_zuko import PREP_NSF
from interpolants.data import EightGaussians

ABLATIONS: dict[str, dict[str, Any]] = {
    "recipe": {},
    "lr 2e-3, no warm-up (the earlier default)": {"lr": 2e-3, "warmup": 0.0},
    "lr 1e-2": {"lr": 1e-2},
    "batch 256": {"batch": 256},
    "depth 4": {"depth": 4},
    "logit-normal t (s = 1)": {"time": "logit:1"},
    "t = 1 − (1 − u)² (more times near the data)": {"time": "late:2"},
    "no EMA": {"ema": 0.0},
    "last 30% maximum-likelihood fine-tuning": {"finetune": 0.3},
    "last 50% maximum-likelihood fine-tuning": {"finetune": 0.5},
    "MLP 3×64": {"hidden": 64},
}


def publish(name: str, settings: dict[str, Any], results: list[dict[str, Any]]) -> None:
    """Write results/NAME.json and .md (the ablation's tables for an ablation run) and print
    the markdown."""
    report = {
        "name": name,
        "machine": machine(),
        "versions": versions("zuko"),
        "settings": settings,
        "results": results,
    }
    md = ablation_markdown(report) if "ablation" in name else markdown(report)
    write_results(name, report, md)
    print(md)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="short budgets, one seed")
    parser.add_argument("--ablation", action="store_true", help="the recipe's ingredients")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads per process (0: torch's default)"
    )
    parser.add_argument("--seed", type=int, default=0, help="first seed")
    parser.add_argument("--seeds", type=int, default=None, help="number of seeds (3; quick 1)")
    parser.add_argument("--jobs", type=int, default=1, help="training processes at a time")
    parser.add_argument("--budget", type=float, default=None, help="toy budget in CPU-s")
    parser.add_argument("--digits-budget", type=float, default=None, help="digits budget in CPU-s")
    parser.add_argument("--tasks", default="moons,8gaussians,checkerboard,digits")
    parser.add_argument(
        "--methods",
        default=f"ours,NSF,MAF,{PREP_NSF}",
        help=f"e.g. NSF,MAF to run only those ({PREP_NSF}: the digits only)",
    )
    parser.add_argument(
        "--cache",
        default=str(RESULTS / ".density_cache"),
        help="folder of finished jobs, reused when the job and its code are unchanged ('' : off)",
    )
    parser.add_argument(
        "--render",
        default=None,
        metavar="NAME",
        help="rewrite results/NAME.md (and RESULTS.md) from results/NAME.json, without running",
    )
    parser.add_argument("--note", default="", help="with --render: a paragraph to append")
    args = parser.parse_args()
    if args.render is not None:
        report = json.loads((RESULTS / f"{args.render}.json").read_text())
        if args.note:
            report["settings"]["note"] = args.note
        write_results(args.render, report, markdown(report))
        return
    quick = args.quick
    n_seeds = args.seeds or (1 if quick else 3)
    seeds = list(range(args.seed, args.seed + n_seeds))
    tasks = args.tasks.split(",")
    methods = args.methods.split(",")
    cache = args.cache or None
    toy_budget, digits_budget = (6.0, 20.0) if quick else (60.0, 300.0)
    if args.budget is not None:
        toy_budget = args.budget
    if args.digits_budget is not None:
        digits_budget = args.digits_budget
    n_test = 500 if quick else 2000
    recipe = Recipe()
    settings: dict[str, Any] = {
        "quick": quick,
        "seeds": seeds,
        "jobs": args.jobs,
        "toy_budget_s": toy_budget,
        "digits_budget_s": digits_budget,
        "n_test": n_test,
        "tolerance": 0.01,
        "recipe": asdict(recipe),
    }
    if args.ablation:
        jobs = [
            Job(task, "ours", seed, toy_budget, n_test, recipe=replace(recipe, **change), label=lab)
            for lab, change in ABLATIONS.items()
            for task in tasks
            if task != "digits"
            for seed in seeds
        ]
        results = run_all(jobs, args.jobs, args.threads, cache)
        for r in results:
            r["kind"] = "ablation"
        publish("density_ablation_quick" if quick else "density_ablation", settings, results)
        return

    def budget_of(task: str) -> float:
        return digits_budget if task == "digits" else toy_budget

    first = [
        Job(task, method, seed, budget_of(task), n_test, recipe=recipe, sweep=seed == seeds[0])
        for seed in seeds
        for task in tasks
        for method in methods
        if method != PREP_NSF or task == "digits"
    ]
    results = run_all(first, args.jobs, args.threads, cache)
    for r in results:
        r["kind"] = "budget"
    nsf_steps = {(r["task"], r["seed"]): r["steps"] for r in select(results, method="NSF")}
    second = [
        Job(task, "ours", seed, budget_of(task), n_test, steps=nsf_steps[task, seed], recipe=recipe)
        for task in tasks
        for seed in seeds
        if "ours" in methods and (task, seed) in nsf_steps
    ]
    for r in run_all(second, args.jobs, args.threads, cache):
        r["kind"] = "steps"
        results.append(r)
    if "8gaussians" in tasks:
        eight = EightGaussians()
        test = eight.sample(n_test, torch.Generator().manual_seed(20_000 + seeds[0])).double()
        settings["true_nll_8gaussians"] = float(-eight.as_mixture().log_prob(test).mean())
    publish("density_quick" if quick else "density", settings, results)


if __name__ == "__main__":
    main()
