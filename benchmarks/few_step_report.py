r"""The report of :mod:`few_step`: its markdown tables and the issue's targets.

:func:`verdicts` states per task whether the best one-step row meets the targets;
:func:`markdown` writes the tables and those verdicts; :func:`render` rewrites
``results/<suite>.md`` from the saved JSON.
"""

import json
import math
from typing import Any

from common import RESULTS, table, write_results
from few_step_eval import NFES


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
