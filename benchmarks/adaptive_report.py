"""The markdown report of :mod:`adaptive`: summary, verdicts, tables, ablation and notes."""

import math
from typing import Any

from adaptive_compare import METRICS, nfe_at
from common import table

DECADES = [1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8]
TARGETS = [1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9]


def _cell(row: list[float] | None) -> str:
    return "–" if row is None else f"{int(row[1])} / {row[2]:.1e}"


def _row_at(curve: list[list[float]], tol: float) -> list[float] | None:
    for row in curve:
        if abs(math.log10(row[0]) - math.log10(tol)) < 1e-6:
            return row
    return None


def _nfe(v: float | None) -> str:
    return "–" if v is None else f"{v:.0f}"


def markdown(report: dict[str, Any]) -> str:
    quick = " (quick)" if report["quick"] else ""
    m = report["machine"]
    lines = [
        f"# Adaptive stepping: error against NFE{quick}",
        "",
        "Every solver integrates the same float64 problem from t = 0 to 1 at rtol = atol = tol "
        "through one call-counting wrapper of the field; errors are against the exact solution "
        "(worst sample: max over samples of the RMS over coordinates; batch RMS: over all "
        "entries). Ours: `Dopri5` / `Bosh3` (error norm per sample, PI controller with β = 0.04 "
        "and safety 0.8, equal steps to the grid point stretched by at most θ = 0.2, initial "
        "step without an extra evaluation). "
        "*batch norm*: our loop with one RMS over the whole batch, the peers' norm "
        "(`EmbeddedRungeKutta.error_norm` overridden); *Hairer h0*: our Dopri5 started by "
        "Hairer's initial-step algorithm, its extra evaluation counted. torchebm needs the "
        "initial step from the caller (0.01 and 0.1 are both run); torchdiffeq stops on t = 1 "
        "(`step_t`), and on the linear problems also runs by default (*dense*: past t = 1, "
        "interpolated). **Matched error**: NFE at an error is interpolated log–log on each "
        "solver's Pareto front; the ratio ours / best peer is taken at every error any run "
        f"achieved within both ranges ({len(report['tolerances'])} tolerances from "
        f"{report['tolerances'][0]:.0e} to {report['tolerances'][-1]:.0e}). torch threads: "
        f"{m['torch_threads']}; {m['cpu']}; NFE and errors do not depend on the machine. "
        "The problems marked *validation* (random mixture pairs of other dimensions, "
        "interpolants and batch sizes, Lotka–Volterra, a damped pendulum) were not used to "
        "choose the controller; they run the Dopri5 pairs only.",
        "",
        "## Summary: ours / best peer at matched error (≤ 1: ours needs no more NFE)",
        "",
    ]

    def cell(c: dict[str, Any]) -> str:
        return f"{c['max_ratio']:.3f} / {c['geomean_ratio']:.3f} ({len(c['worse'])}/{c['points']})"

    rows = []
    for name, res in report["problems"].items():
        label = f"{name} (validation)" if res.get("validation") else name
        for method in ("dopri5", "bosh3"):
            for who, comp in res.get(method, {"comparison": {}})["comparison"].items():
                rows.append([label, method, who, cell(comp["worst"]), cell(comp["rms"])])
    lines += [
        table(
            [
                "problem",
                "pair",
                "ours",
                "worst-sample error: max / geo-mean (points > 1)",
                "batch RMS error: max / geo-mean (points > 1)",
            ],
            rows,
        ),
        "",
    ]
    lines += _overall(report)
    lines += _spread(report)
    lines += _verdict(report)
    for name, res in report["problems"].items():
        lines += _problem_section(name, res)
    lines += _ablation(report)
    lines += _notes(report)
    return "\n".join(lines) + "\n"


def _overall(report: dict[str, Any]) -> list[str]:
    """Ours / best peer (Dopri5, per-sample norm, both metrics) over each group of problems."""
    out = []
    for group, wanted in (("original", False), ("validation", True)):
        chosen = [r for r in report["problems"].values() if bool(r.get("validation")) == wanted]
        comps = [c for res in chosen for c in res["dopri5"]["comparison"]["ours"].values()]
        if comps:
            out.append(_group_line(f"the {len(chosen)} {group} problems, our Dopri5", comps))
    return [*out, ""] if out else []


def _count(worse: int | list[Any]) -> int:
    """The number of errors where the run needs more NFE (stored as a count or a list)."""
    return worse if isinstance(worse, int) else len(worse)


def _group_line(label: str, comps: list[dict[str, Any]]) -> str:
    points = sum(c["points"] for c in comps)
    worse = sum(_count(c["worse"]) for c in comps)
    log_mean = sum(c["points"] * math.log(c["geomean_ratio"]) for c in comps) / points
    worst = max(c["max_ratio"] for c in comps)
    return (
        f"- {label}: max {worst:.3f}, geometric mean {math.exp(log_mean):.3f} over {points} "
        f"matched errors, {worse} of them above 1 ({100 * worse / points:.0f} %)."
    )


def _spread(report: dict[str, Any]) -> list[str]:
    """torchebm at other initial steps against the best peer: the floor of the target."""
    problems = {k: v for k, v in report["problems"].items() if "spread" in v["dopri5"]}
    if not problems:
        return []
    labels = list(next(iter(problems.values()))["dopri5"]["spread"])
    lines = [
        "## The target's floor: the peer against its own best runs",
        "",
        "The target compares one run of ours with the cheapest of three peer runs (torchebm "
        "started at h0 = 0.01 and 0.1, torchdiffeq) at every error. The same comparison for "
        "torchebm's Dopri5 started at other initial steps, worst-sample error, max / geo-mean "
        "(points > 1); ours in the last column:",
        "",
    ]

    def cell(c: dict[str, Any]) -> str:
        worse = _count(c["worse"])
        return f"{c['max_ratio']:.3f} / {c['geomean_ratio']:.3f} ({worse}/{c['points']})"

    rows = [
        [
            f"{name} (validation)" if res.get("validation") else name,
            *[cell(res["dopri5"]["spread"][label]["worst"]) for label in labels],
            cell(res["dopri5"]["comparison"]["ours"]["worst"]),
        ]
        for name, res in problems.items()
    ]
    lines += [table(["problem", *labels, "ours"], rows), ""]
    for label in labels:
        comps = [r["dopri5"]["spread"][label][m] for r in problems.values() for m in METRICS]
        lines.append(_group_line(f"{label}, all problems, both metrics", comps))
    comps = [r["dopri5"]["comparison"]["ours"][m] for r in problems.values() for m in METRICS]
    lines.append(_group_line("ours, all problems, both metrics", comps))
    return [*lines, ""]


def _ranges(worse: list[dict[str, Any]], pairs: list[float]) -> str:
    """The errors where ours needs more NFE, as ranges of consecutive compared errors."""
    bad = {p["error"]: p for p in worse}
    groups: list[list[dict[str, Any]]] = []
    previous_bad = False
    for e in sorted(pairs):
        if e in bad:
            if not previous_bad:
                groups.append([])
            groups[-1].append(bad[e])
        previous_bad = e in bad
    parts = []
    for g in groups:
        top = max(g, key=lambda p: p["ratio"])
        span = (
            f"{g[0]['error']:.1e}" if len(g) == 1 else f"{g[0]['error']:.1e}–{g[-1]['error']:.1e}"
        )
        parts.append(
            f"{span} ({len(g)} point{'s' if len(g) > 1 else ''}, up to {top['ratio']:.3f}: "
            f"{top['ours']:.0f} vs {top['peer']:.0f} NFE of {top['best_peer']})"
        )
    return "; ".join(parts)


def _verdict(report: dict[str, Any]) -> list[str]:
    out = [
        "**Target** (Dopri5: at every achieved error no more NFE than the best peer), "
        "with the errors where it is not met:",
        "",
    ]
    for name, res in report["problems"].items():
        for who in ("ours", "ours, batch norm"):
            for metric in METRICS:
                comp = res["dopri5"]["comparison"][who][metric]
                head = f"- {name}, {who}, {metric} error:"
                if not comp["worse"]:
                    out.append(f"{head} met ({comp['points']} points).")
                    continue
                ranges = _ranges(comp["worse"], comp["errors"])
                out.append(
                    f"{head} **not met** at {len(comp['worse'])} of {comp['points']} points: "
                    f"{ranges}."
                )
    return [*out, ""]


def _problem_section(name: str, res: dict[str, Any]) -> list[str]:
    d5 = res["dopri5"]
    lines = [
        f"## {name}: {res['description']}",
        "",
        f"Reference: {res['reference']} (max difference to our Dopri5 at 1e-12: "
        f"{res['reference_check']:.1e}).",
        "",
        "NFE / worst-sample error at each tolerance (Dopri5 pairs):",
        "",
    ]
    names = list(d5["curves"])
    rows = [
        [f"{tol:.0e}", *[_cell(_row_at(d5["curves"][k], tol)) for k in names]] for tol in DECADES
    ]
    lines += [table(["tol", *names], rows), ""]
    for metric, col in METRICS.items():
        lines.append(f"NFE to reach a {metric} error of (Dopri5 pairs, matched error):")
        lines.append("")
        rows = [
            [f"{e:.0e}", *[_nfe(nfe_at(d5["curves"][k], col, e)) for k in names]] for e in TARGETS
        ]
        lines += [table(["error", *names], rows), ""]
    if "bosh3" not in res:
        return lines
    b3 = res["bosh3"]
    names3 = list(b3["curves"])
    lines.append("Bosh3 pairs, NFE to reach a worst-sample error of:")
    lines.append("")
    rows = [
        [
            f"{e:.0e}",
            *[_nfe(nfe_at(b3["curves"][k], 1, e)) for k in names3],
            _nfe(nfe_at(d5["curves"]["ours"], 1, e)),
        ]
        for e in [1e-1, 3e-2, 1e-2, 3e-3, 1e-3, 1e-4, 1e-5]
    ]
    lines += [table(["error", *names3, "ours Dopri5"], rows), ""]
    return lines


def _ablation(report: dict[str, Any]) -> list[str]:
    problems = {k: v for k, v in report["problems"].items() if "ablation" in v}
    if not problems:
        return []
    labels = list(next(iter(problems.values()))["ablation"])

    def cell(a: dict[str, Any]) -> str:
        return f"{a['geomean_ratio']:.3f} / {a['max_ratio']:.3f}"

    rows = [[label, *[cell(p["ablation"][label]) for p in problems.values()]] for label in labels]
    return [
        "## Ablation: the controller (Dopri5, per-sample norm)",
        "",
        "Ours / best peer at matched error, geometric mean / max over both error metrics; each "
        "row changes one thing in our loop (`_factor` / `_step` overridden; *s*: safety "
        "factor; PI: h_new = h·s·err^−α·max(err₋₁, 1e-4)^β, α = 1/5 − 0.75β, after an "
        "accepted step that follows one, the elementary rule h·s·err^−1/5 (I) otherwise; "
        "θ: n = ⌈R/h − θ⌉ equal steps to the grid point at distance R).",
        "",
        table(["variant", *problems], rows),
        "",
    ]


def _notes(report: dict[str, Any]) -> list[str]:
    lines = ["## Design notes", ""]
    for name, res in report["problems"].items():
        comp = res["dopri5"]["comparison"]
        mine, batch = comp["ours"]["worst"], comp["ours, batch norm"]["worst"]
        text = (
            f"- {name}: geometric mean ours / best peer (worst-sample error) "
            f"{mine['geomean_ratio']:.3f} per-sample norm, {batch['geomean_ratio']:.3f} batch norm"
        )
        if "bosh3_vs_dopri5" not in res:
            lines.append(text + " (validation problem).")
            continue
        hairer = comp["ours, Hairer h0"]["worst"]
        crossover = [
            p["error"] for p in res["bosh3_vs_dopri5"] if p["dopri5"] and p["bosh3"] < p["dopri5"]
        ]
        lines.append(
            f"{text}, {hairer['geomean_ratio']:.3f} with Hairer's initial step; Bosh3 cheaper "
            "than our Dopri5 "
            + (
                f"at worst-sample errors ≥ {min(crossover):.1e}."
                if crossover
                else "nowhere in the range both cover."
            )
        )
    lines += [
        "",
        "- **Norm.** Ours accepts a step when the worst sample's scaled RMS error is ≤ 1, so "
        "every sample meets the tolerance; the peers take one RMS over the batch tensor. At "
        "equal tolerance ours takes more steps and returns smaller errors (the per-tolerance "
        "tables). At matched error the *batch norm* column measures what the per-sample "
        "guarantee costs: where samples reach their peaks of the error estimate at different "
        "times, the per-sample maximum refines at every sample's peak.",
        "- **Controller.** The estimate of an embedded pair on the mixture flows swings by up "
        "to 20× between consecutive steps (its leading term changes sign), so a step that "
        "follows a small estimate is often rejected. A margin absorbs the swings: the PI "
        "controller holds the step at err = s^{1/(α−β)} ≈ 0.18 (s = 0.8), the same target as "
        "the elementary rule with s = 0.7, and its factor err₋₁^β smooths the step sequence, "
        "which removes the last misses at tight tolerances on the 2-d mixtures (the "
        "ablation). A larger safety factor (DOPRI5's 0.9) costs rejections under the "
        "per-sample norm.",
        "- **Equal steps to the grid point** (R / n, n = ⌈R/h − θ⌉): no short last step, and "
        "it damps step-size oscillation; θ = 0.2 stretches the steps by at most θ/n rather "
        "than adding a step for the last fraction of one. Without it (θ = 0, the previous "
        "rule) a remainder of 1.005 h became two steps of 0.5 h.",
        "- **Initial step.** (0.1/d₁)^{1/k} capped by d₀/d₁ (Hairer's algorithm without its "
        "probe evaluation and with 0.1 for 0.01) costs no evaluation; *Hairer h0* measures "
        "the algorithm with its probe.",
        "- **Validation.** Where ours needs more NFE than the best peer on the validation "
        "problems, the loss is at loose and middle tolerances (a few to a few tens of steps), "
        "where one step is several per cent of the run: a guessed first step that is rejected "
        "(the 256-sample mixture: the first attempt's error is 1.7–4.2 at tolerances 1e-3 to "
        "1e-5) or far "
        "too short (Lotka–Volterra: its error is ~0.002), and equal steps to t = 1 that the "
        "controller cannot lengthen in the last few steps. The best peer there is often one of "
        "the two fixed initial steps of torchebm, whichever suits the problem. Twelve "
        "controllers tried on problems of these kinds (safety 0.8–0.9, β 0 to 0.08, θ 0.4, "
        "equal steps only for the last two or three steps, initial-step constant 0.01 or 1) "
        "moved the worst ratio between problems, but none met the target everywhere; nor did "
        "a first step checked by Hairer's second-derivative probe evaluated as the first "
        "step's second stage (free when the guessed step stands).",
        "- **The target's floor.** The best peer is the cheapest of three runs at each error, and "
        "where a run's error depends on where its few steps happen to fall, that minimum is below "
        "what any one run reaches. torchebm's own Dopri5 started at h0 = 0.02, 0.05 or 0.2 needs "
        "more NFE than that best peer at 70–83 % of the matched errors, up to 1.5–1.7× (the floor "
        "section). Ours is above 1 at 23 % of them, and its geometric mean is below 1. The largest"
        " ratio (the 256-sample 3-d mixture, 1.795: 120 against 67 NFE) sits on one such run: "
        "torchebm from h0 = 0.01 reaches 2.9e-3 in 67 NFE, where its neighbouring tolerances give "
        "1.5e-2 in 61 and 4.8e-3 in 85 NFE (a sample whose error the peers' loose runs leave near "
        "3); our front on that problem is smooth, and the batch norm behaves the same.",
        "",
    ]
    return lines
