r"""The markdown tables of :mod:`density`, computed from its list of job results.

Scores per task and method (:func:`comparison_table`), evaluation cost against zuko
(:func:`cost_table`, :func:`calibrated_table`, :func:`sweep_table`), the ablation's rows
(:func:`ablation_table`) and the issue's targets met or not (:func:`targets`).
"""

import statistics
from typing import Any

from common import table
from density_zuko import PREP_NSF


def mean_spread(values: list[float], digits: int = 3) -> str:
    """``mean ± sample standard deviation`` (just the value for one seed)."""
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def select(results: list[dict[str, Any]], **match: Any) -> list[dict[str, Any]]:
    return [r for r in results if all(r.get(k) == v for k, v in match.items())]


def comparison_table(results: list[dict[str, Any]], tasks: list[str]) -> str:
    headers = [
        "task (metric)",
        "ours, equal CPU-s",
        "zuko NSF",
        "zuko MAF",
        "zuko NSF, our digits preprocessing",
        "ours, NSF's steps",
        "steps: ours / NSF / MAF / ours at NSF's",
        "train CPU-s: same order",
    ]
    body = []
    for task in tasks:
        groups = [
            select(results, task=task, method="ours", kind="budget"),
            select(results, task=task, method="NSF", kind="budget"),
            select(results, task=task, method="MAF", kind="budget"),
            select(results, task=task, method="ours", kind="steps"),
        ]
        prepped = select(results, task=task, method=PREP_NSF, kind="budget")
        cells = [mean_spread([r["score"] for r in g]) if g else "" for g in groups]
        cells.insert(3, mean_spread([r["score"] for r in prepped]) if prepped else "–")
        steps = [str(round(statistics.mean(r["steps"] for r in g))) if g else "" for g in groups]
        cpu = [f"{statistics.mean(r['train_cpu_s'] for r in g):.0f}" if g else "" for g in groups]
        unit = "bits/dim" if task == "digits" else "NLL nats"
        body.append([f"{task} ({unit})", *cells, " / ".join(steps), " / ".join(cpu)])
    return table(headers, body)


def cost_table(results: list[dict[str, Any]], tasks: list[str], tolerance: float) -> str:
    """Per toy: the cheapest integrator within ``tolerance`` nats of the reference, and zuko's
    times (seed-0 models)."""
    headers = [
        "task",
        "log_prob: integrator (NFE)",
        "error nats",
        "ours CPU-s",
        "NSF CPU-s",
        "MAF CPU-s",
        "ratio ours/NSF",
        "sample: integrator (NFE)",
        "RMS error",
        "ours CPU-s",
        "NSF CPU-s",
        "MAF CPU-s",
        "ratio ours/NSF",
    ]
    body = []
    for task in tasks:
        ours = [
            r
            for r in select(results, task=task, method="ours", kind="budget")
            if "integrators" in r
        ]
        nsf = [
            r
            for r in select(results, task=task, method="NSF", kind="budget")
            if "sample_cpu_s" in r
        ]
        maf = [
            r
            for r in select(results, task=task, method="MAF", kind="budget")
            if "sample_cpu_s" in r
        ]
        if not (ours and nsf and maf):
            continue
        sweep = ours[0]["integrators"]
        lp = min(
            (r for r in sweep if r["nll_error"] <= tolerance),
            key=lambda r: r["log_prob_cpu_s"],
            default=sweep[-1],
        )
        sm = min(
            (r for r in sweep if r["sample_rms_error"] <= 10 * tolerance),
            key=lambda r: r["sample_cpu_s"],
            default=sweep[-1],
        )
        body.append(
            [
                task,
                f"{lp['integrator']} ({lp['log_prob_nfe']})",
                f"{lp['nll_error']:.4f}",
                f"{lp['log_prob_cpu_s']:.4f}",
                f"{nsf[0]['log_prob_cpu_s']:.4f}",
                f"{maf[0]['log_prob_cpu_s']:.4f}",
                f"{lp['log_prob_cpu_s'] / nsf[0]['log_prob_cpu_s']:.1f}×",
                f"{sm['integrator']} ({sm['sample_nfe']})",
                f"{sm['sample_rms_error']:.4f}",
                f"{sm['sample_cpu_s']:.4f}",
                f"{nsf[0]['sample_cpu_s']:.4f}",
                f"{maf[0]['sample_cpu_s']:.4f}",
                f"{sm['sample_cpu_s'] / nsf[0]['sample_cpu_s']:.1f}×",
            ]
        )
    return table(headers, body)


def sweep_table(results: list[dict[str, Any]], task: str) -> str:
    ours = [
        r for r in select(results, task=task, method="ours", kind="budget") if "integrators" in r
    ]
    if not ours:
        return ""
    return table(
        [
            "integrator",
            "NLL error (mean)",
            "|Δ log p| per point",
            "NFE",
            "log_prob CPU-s",
            "sample RMS error",
            "sample NFE",
            "sample CPU-s",
        ],
        [
            [
                r["integrator"],
                f"{r['nll_error']:.4f}",
                f"{r['nll_error_pointwise']:.4f}",
                r["log_prob_nfe"],
                f"{r['log_prob_cpu_s']:.4f}",
                f"{r['sample_rms_error']:.4f}",
                r["sample_nfe"],
                f"{r['sample_cpu_s']:.4f}",
            ]
            for r in ours[0]["integrators"]
        ],
    )


def ablation_table(results: list[dict[str, Any]], tasks: list[str]) -> str:
    labels = list(dict.fromkeys(r["label"] for r in results))
    body = []
    for label in labels:
        row: list[Any] = [label]
        for task in tasks:
            rs = select(results, task=task, label=label)
            row.append(mean_spread([r["score"] for r in rs]) if rs else "")
        rs = select(results, label=label)
        row.append(str(round(statistics.mean(r["steps"] for r in rs))))
        body.append(row)
    return table(["recipe", *[f"{t}" for t in tasks], "steps (mean)"], body)


def _nsf_times(results: list[dict[str, Any]], task: str) -> dict[str, float] | None:
    nsf = [
        r for r in select(results, task=task, method="NSF", kind="budget") if "sample_cpu_s" in r
    ]
    return nsf[0] if nsf else None


def _calibrated(
    results: list[dict[str, Any]], task: str
) -> tuple[dict[str, Any], dict[str, float]] | None:
    """Our calibrated costs on ``task`` and NSF's times, when the run measured both."""
    ours = [
        r for r in select(results, task=task, method="ours", kind="budget") if "calibrated" in r
    ]
    nsf = _nsf_times(results, task)
    return None if not ours or nsf is None else (ours[0]["calibrated"], nsf)


def calibrated_table(results: list[dict[str, Any]], tasks: list[str]) -> str:
    body = []
    for task in tasks:
        pair = _calibrated(results, task)
        if pair is None:
            continue
        c, nsf = pair
        body.append(
            [
                task,
                f"{c['likelihood_steps']} / {c['sample_steps']}",
                f"{c['test_nll_error']:.4f}",
                c["log_prob_nfe"],
                f"{c['log_prob_cpu_s']:.4f}",
                f"{c['log_prob_cpu_s'] / nsf['log_prob_cpu_s']:.1f}×",
                c["sample_nfe"],
                f"{c['sample_cpu_s']:.4f}",
                f"{c['sample_cpu_s'] / nsf['sample_cpu_s']:.1f}×",
            ]
        )
    return table(
        [
            "task",
            "RK4 steps: log_prob / sample",
            "test NLL error (nats)",
            "log_prob NFE",
            "log_prob CPU-s",
            "ratio to NSF",
            "sample NFE",
            "sample CPU-s",
            "ratio to NSF",
        ],
        body,
    )


def targets(results: list[dict[str, Any]], tasks: list[str]) -> str:
    """Met / not met, per target of the issue, from the means over the seeds."""
    rows = []
    for task in tasks:
        for kind, what in (("budget", "equal CPU-s"), ("steps", "equal steps")):
            ours = [r["score"] for r in select(results, task=task, method="ours", kind=kind)]
            nsf = [r["score"] for r in select(results, task=task, method="NSF", kind="budget")]
            if not (ours and nsf):
                continue
            a, b = statistics.mean(ours), statistics.mean(nsf)
            unit = "bits/dim" if task == "digits" else "test NLL"
            rows.append([f"{task}: {unit} ≤ NSF's ({what})", f"{a:.3f} vs {b:.3f}", _yes(a <= b)])
        prepped = [r["score"] for r in select(results, task=task, method=PREP_NSF, kind="budget")]
        ours = [r["score"] for r in select(results, task=task, method="ours", kind="budget")]
        if prepped and ours:
            a, b = statistics.mean(ours), statistics.mean(prepped)
            rows.append(
                [
                    f"{task}: bits/dim ≤ NSF's with our preprocessing (equal CPU-s; not an "
                    "issue target, the fair reading of the row above)",
                    f"{a:.3f} vs {b:.3f}",
                    _yes(a <= b),
                ]
            )
    for task in tasks:
        pair = _calibrated(results, task)
        if pair is None:
            continue
        c, nsf = pair
        for name in ("log_prob", "sample"):
            ratio = c[f"{name}_cpu_s"] / nsf[f"{name}_cpu_s"]
            rows.append(
                [
                    f"{task}: {name} of 2000 points ≤ 10× NSF's "
                    f"(calibrated RK4, {c[f'{name}_nfe']} NFE)",
                    f"{ratio:.1f}×",
                    _yes(ratio <= 10),
                ]
            )
    return table(["target", "measured (ours vs NSF)", "met"], rows)


def _yes(ok: bool) -> str:
    return "yes" if ok else "**no**"
