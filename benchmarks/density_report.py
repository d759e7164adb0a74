r"""The markdown reports of :mod:`density`: the comparison and the ablation.

:func:`markdown` assembles ``results/density*.md`` from a saved report (settings, machine and
job results) with the tables of :mod:`density_tables` and the recipe in words
(:func:`recipe_text`); :func:`ablation_markdown` writes the ablation's.
"""

from typing import Any

from common import RESULTS, table
from density_eval import SAMPLE_TOLERANCE, TOLERANCE
from density_ours import Recipe
from density_tables import (
    ablation_table,
    calibrated_table,
    comparison_table,
    cost_table,
    select,
    sweep_table,
    targets,
)


def time_text(spec: str) -> str:
    """A time sampler's spec in words (``late:k`` → t = 1 − (1 − u)^k)."""
    kind, _, value = spec.partition(":")
    return f"t = 1 − (1 − u)^{value}" if kind == "late" else f"{spec} t"


def recipe_text(recipe: Recipe) -> str:
    r = recipe
    text = (
        f"linear interpolant (γ = 0) from N(0, I), independent coupling, "
        f"{time_text(r.time)}; MLP {r.depth}×{r.hidden} "
        f"(digits {r.depth_digits}×{r.hidden_digits}), "
        f"SiLU; AdamW lr {r.lr:g} (weight decay {r.weight_decay:g}), cosine over the budget"
        f"{f' after {r.warmup:.0%} warm-up' if r.warmup else ''}, batch {r.batch}, "
        f"gradient clip {r.clip}, EMA {r.ema} (digits: {time_text(r.time_digits)}, lr "
        f"{r.lr_digits:g}, batch {r.batch_digits})"
    )
    if r.fourier != "none":
        m, _, scale = r.fourier.partition(":")
        text += (
            f"; toys: the MLP also sees {m} random Fourier features [sin(Bx), cos(Bx)] of x "
            f"(B fixed, entries N(0, {scale}²); exact divergence by forward-mode tangents)"
        )
    if r.fitted_base:
        text += "; base N(mean, covariance) fitted to the data"
    if r.prep != "none":
        text += f"; toys: fixed marginal Gaussianization ({r.prep})"
    if r.prep_digits == "histogram":
        text += (
            "; digits: fixed marginal Gaussianization z = Φ⁻¹(F(y)) per pixel, F the "
            "piecewise-linear CDF of the 17 dequantisation bins with the training counts "
            "(+ 0.5 per bin), its log-Jacobian counted in the likelihood, the flow (base "
            f"N(mean, covariance) of z) trained on z; {r.validations} validation checkpoints"
        )
    if r.zero_init:
        text += "; zero-initialised output layer"
    if r.finetune:
        text += (
            f"; the last {r.finetune:.0%} of the budget maximum likelihood through "
            f"``log_prob(differentiable=True)`` (RK4, {r.finetune_steps} steps, batch "
            f"{r.finetune_batch}, lr {r.finetune_lr:g})"
        )
    return text


def markdown(report: dict[str, Any]) -> str:
    s, m, results = report["settings"], report["machine"], report["results"]
    tasks = list(dict.fromkeys(r["task"] for r in results))
    toys = [t for t in tasks if t != "digits"]
    lines = [
        "# Density estimation: ours against zuko NSF and MAF at equal training CPU-seconds",
        "",
        f"Machine: {m['cpu']}, {m['cpu_count']} cores, one torch thread per training process "
        f"({s['jobs']} process{'es' if s['jobs'] != 1 else ''} at a time), "
        "CPU time by ``time.process_time``. "
        f"{run_kind(s)}: seeds {s['seeds']}; budgets "
        f"{s['toy_budget_s']:g} CPU-s (toys), {s['digits_budget_s']:g} CPU-s (digits); "
        f"mean ± standard deviation over the seeds. Lower is better.",
        "",
        f"**Ours**: {recipe_text(Recipe(**s['recipe']))}. Test log-likelihood by "
        "``InterpolantFlow(...)().log_prob`` with the exact divergence, RK4 on 32 steps (its "
        "error against a Dopri5 reference at tolerance 1e-6 is in the last tables). "
        "**zuko**: NSF / MAF with 3 transforms, hidden (64, 64) on the toys and (256, 256) on "
        "the digits, maximum likelihood, Adam 1e-3 with the same cosine schedule, batch 256, "
        "gradient clip 1. "
        "Digits: best of the periodic validation checkpoints (10 for ours, 30 for zuko; "
        "validation CPU time not charged), bits/dim of dequantised data "
        "(an upper bound on the discrete data's; uniform on the 17 levels is 4.087). "
        "“ours, NSF's steps” trains our recipe for as many steps as NSF reached in its budget "
        "(same seed), the schedule then running over steps.",
        "",
        comparison_table(results, tasks),
        "",
    ]
    if "8gaussians" in tasks:
        lines += [
            f"True NLL of the 8 Gaussians on the test points: {s['true_nll_8gaussians']:.3f} "
            "nats; of the checkerboard, log 8 = 2.079.",
            "",
        ]
    cost = cost_table(results, toys, s["tolerance"])
    if cost.count("\n") > 1:
        lines += [
            "## Evaluation cost (2000 points, seed-0 models, one thread)",
            "",
            f"Cheapest integrator whose mean log-likelihood is within {s['tolerance']} nats of "
            "a Dopri5 reference (tolerance 1e-6), and cheapest whose samples are within "
            f"{10 * s['tolerance']:g} RMS of the reference samples from the same base points; "
            "CPU-s are medians of 3 calls.",
            "",
            cost,
            "",
        ]
        calibrated = calibrated_table(results, toys)
        if calibrated.count("\n") > 1:
            lines += [
                "### With the grids chosen by `calibrate`",
                "",
                "RK4 steps chosen by ``interpolants.density.calibrate`` on 1000 fresh training "
                f"samples (mean log-likelihood within {TOLERANCE} nats, samples within "
                f"{SAMPLE_TOLERANCE} RMS of Dopri5 at 1e-6), then measured on the 2000 test "
                "points; ratios are to zuko NSF's ``log_prob`` and ``sample`` of 2000 points.",
                "",
                calibrated,
                "",
            ]
        for task in toys:
            sweep = sweep_table(results, task)
            if sweep:
                lines += [f"### {task}: every integrator measured", "", sweep, ""]
    checks = [
        r
        for r in select(results, task="digits", method="ours", kind="budget")
        if "digits_integrators" in r
    ]
    if checks:
        lines += [
            "### digits: integrator error (seed-0 model, first 100 test images)",
            "",
            "Bits/dim by RK4 against a Dopri5 reference at tolerance 1e-5 (the table's scores "
            "use RK4 on 32 steps; validation used 16).",
            "",
            table(
                ["integrator", "bits/dim", "error", "NFE", "CPU-s"],
                [
                    [
                        c["integrator"],
                        f"{c['bpd']:.4f}",
                        f"{c['error']:.4f}" if "error" in c else "reference",
                        c["nfe"],
                        f"{c['cpu_s']:.1f}",
                    ]
                    for c in checks[0]["digits_integrators"]
                ],
            ),
            "",
        ]
    lines += ["## Targets", "", targets(results, tasks), ""]
    ablation = next(
        (
            RESULTS / f"{n}.md"
            for n in ("density_ablation", "density_ablation_quick")
            if (RESULTS / f"{n}.md").exists()
        ),
        None,
    )
    if ablation is not None:
        text = ablation.read_text().strip().replace("# ", "## ", 1)
        lines += [text, ""]
    if s.get("note"):
        lines += [s["note"], ""]
    return "\n".join(lines)


def run_kind(settings: dict[str, Any]) -> str:
    """ "Full run" only at the full budgets (60 / 300 CPU-s); otherwise says it is reduced."""
    if settings["quick"]:
        return "Quick run"
    if (settings["toy_budget_s"], settings["digits_budget_s"]) == (60.0, 300.0):
        return "Full run"
    return "**Reduced-budget run** (the full run is 60 CPU-s on the toys, 300 on the digits)"


def ablation_markdown(report: dict[str, Any]) -> str:
    s, m = report["settings"], report["machine"]
    tasks = list(dict.fromkeys(r["task"] for r in report["results"]))
    return "\n".join(
        [
            "# Density estimation: the recipe's ingredients",
            "",
            f"Machine: {m['cpu']}, {m['cpu_count']} cores, one torch thread per process. "
            f"Each row changes one thing in the recipe of the first row; test NLL (nats) at "
            f"{s['toy_budget_s']:g} training CPU-s, seeds {s['seeds']} (mean ± std).",
            "",
            f"Recipe: {recipe_text(Recipe(**s['recipe']))}.",
            "",
            ablation_table(report["results"], tasks),
            "",
        ]
    )
