r"""The markdown report of :mod:`coupling`, from its saved results.

:func:`_markdown` writes the grid's exact and entropic OT tables, :func:`_large` the issue-17
tables (large-n exact OT, small ε, the bridge at small σ) and :func:`_targets` the issue's
targets met or not on this machine.
"""

from typing import Any

_KIND_NAMES = {"gauss": "N(0, I)"}


def _markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = [
        "# Coupling benchmark",
        "",
        f"Machine: {m['cpu']}, {m['cpu_count']} CPU cores, "
        f"torch threads {m['torch_threads']}, numpy BLAS threads {m.get('blas_threads')}, "
        f"device {m['device']}. Medians of alternating runs.",
        f"LAP package: {report['versions']['lap_module']} {report['versions']['lap']}, "
        f"POT {report['versions']['ot']}, torchcfm {report['versions']['torchcfm']}.",
        "",
        '## Exact OT: `OTCoupling` vs torchcfm `OTPlanSampler(method="exact").sample_plan`',
        "",
        "| n | d | ours (s) | torchcfm (s) | speed-up | solver | torchcfm cost excess | "
        "torchcfm duplicates | ours vs emd2 | 1-min load |",
        "|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    for r in report["exact"]:
        lines.append(
            f"| {r['n']} | {r['d']} | {r['ours_s']:.4f} | {r['torchcfm_s']:.4f} | "
            f"{r['speedup']:.1f}× | {r['solver']} | {100 * r['torchcfm_cost_excess']:.2f}% | "
            f"{100 * r['torchcfm_duplicate_rate']:.1f}% | {r['ours_cost_rel_to_emd2']:.1e} | "
            f"{r['load_1min'][0]:.1f}–{r['load_1min'][1]:.1f} |"
        )
    lines += [
        "",
        "## Entropic OT: `sinkhorn` (torch, float32) vs POT `ot.sinkhorn` (numpy, float64)",
        "",
        "| n | d | ε (reg × mean C) | tol | ours (s) | POT (s) | speed-up | iterations ours / POT "
        "| full `SinkhornCoupling` call (s) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["sinkhorn"]:
        lines.append(
            f"| {r['n']} | {r['d']} | {r['eps']:.3g} ({r['reg_relative']:g}) | {r['tol']:g} | "
            f"{r['ours_s']:.4f} | {r['pot_s']:.4f} | {r['speedup']:.1f}× | "
            f"{r['ours_iterations']} / {r['pot_iterations']} | "
            f"{r['ours_full_coupling_call_s']:.4f} |"
        )
    lines += ["", *_large(report), "", *_targets(report)]
    return "\n".join(lines) + "\n"


def _large(report: dict[str, Any]) -> list[str]:
    """Tables of the issue-17 rows: large exact OT in 2-D, small ε, the bridge at σ → 0."""
    out = [
        "## Exact OT at large n in 2-D (`OTCoupling()`, the whole call)",
        "",
        "Ours solves from the points (`AuctionSolver.certified_points`, no n×n matrix); "
        "'via the matrix' is the same solver given the float64 cost matrix "
        "(`AuctionSolver(max_point_dim=0)`, the path before), cost matrix included.",
        "",
        "| n | data | ours (s) | ours (CPU s) | via the matrix (s) | torchcfm (s) | solver | "
        "certified gap / total | peak RSS growth (MiB) | float64 cost matrix (MiB) | "
        "1-min load |",
        "|---:|---|---:|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    for r in report.get("exact_large", []):
        peer = f"{r['torchcfm_s']:.2f}" if "torchcfm_s" in r else "–"
        ours_cpu = f"{r['ours_cpu_s']:.3f}" if "ours_cpu_s" in r else "–"
        via = f"{r['matrix_path_s']:.3f}" if "matrix_path_s" in r else "–"
        out.append(
            f"| {r['n']} | {r['kind']} | {r['ours_s']:.3f} | {ours_cpu} | {via} | {peer} | "
            f"{r['solver'].split('(')[0]} "
            f"| {r['certified_gap_rel']:.1e} | {r['peak_growth_mib']:.0f} | "
            f"{r['cost_matrix_mib']:.0f} | {r['load_1min'][0]:.1f}–{r['load_1min'][1]:.1f} |"
        )
    out += [
        "",
        "## Entropic OT at small ε (`sinkhorn`, float32, 2-D, tol 1e-6)",
        "",
        "*N(0, I)* is the issue's problem (its own seed); the other data are those of the exact "
        "OT rows. Seconds: median of the runs (range in brackets).",
        "",
        "| n | data | reg (ε / mean C) | ε | seconds | iterations | converged | reg 1e-3 / "
        "reg 0.05 | 1-min load |",
        "|---:|---|---:|---:|---:|---:|---|---:|---:|",
    ]
    base = {
        r.get("kind", "gauss"): r["ours_s"]
        for r in report.get("small_eps", [])
        if r["reg_relative"] == 0.05
    }
    for r in report.get("small_eps", []):
        kind = r.get("kind", "gauss")
        spread = r.get("ours_s_range", [r["ours_s"], r["ours_s"]])
        ratio = r["ours_s"] / base[kind] if kind in base and r["reg_relative"] != 0.05 else None
        out.append(
            f"| {r['n']} | {_KIND_NAMES.get(kind, kind)} | {r['reg_relative']:g} | "
            f"{r['eps']:.3g} | {r['ours_s']:.2f} ({spread[0]:.2f}–{spread[1]:.2f}) | "
            f"{r['iterations']} | {r['converged']} | "
            f"{'–' if ratio is None else f'{ratio:.1f}×'} | {r['load_1min']:.1f} |"
        )
    out += [
        "",
        "## Schrödinger bridge at small σ (data of scale 1e3, n = 256)",
        "",
        "| σ | dtype | seconds | row error | column error | what it said |",
        "|---:|---|---:|---:|---:|---|",
    ]
    for r in report.get("bridge", []):
        said = r["warning"].split(": ", 1)[-1][:160].replace("|", "/") or "(converged, silent)"
        out.append(
            f"| {r['sigma']:g} | {r['dtype']} | {r['seconds']:.2f} | {r['row_error']:.1e} | "
            f"{r['column_error']:.1e} | {said} |"
        )
    return out


def _targets(report: dict[str, Any]) -> list[str]:
    """The issue's targets on this machine, met or not, and where a peer wins."""
    exact, sink = report["exact"], report["sinkhorn"]
    big = [r for r in exact if r["d"] >= 64 and r["n"] >= 1024]
    worst_excess = max(abs(r["ours_cost_rel_to_emd2"]) for r in exact)
    slowest = min(r["speedup"] for r in exact)
    rows = [  # (target, value as shown, met)
        (
            "always the exact optimum (relative cost vs `ot.emd2` ≤ 1e-6)",
            f"{worst_excess:.1e}",
            worst_excess <= 1e-6,
        ),
        ("never slower than torchcfm (smallest speed-up ≥ 1)", f"{slowest:.2f}", slowest >= 1),
    ]
    for name, cells, floor in (("torchcfm", big, 5.0), ("POT's Sinkhorn", sink, 2.0)):
        for r in cells:
            speedup = r["speedup"]
            target = f"≥ {floor:g}× {name} at n = {r['n']}, d = {r['d']}"
            rows.append((target, f"{speedup:.2f}", speedup >= floor))
    for r in report.get("exact_large", []):
        limit = {4096: 0.6, 8192: 5.0}.get(r["n"])
        if limit is not None:
            rows.append(
                (
                    f"exact OT n = {r['n']}, d = 2 ({r['kind']}) ≤ {limit:g} s",
                    f"{r['ours_s']:.2f} s",
                    r["ours_s"] <= limit,
                )
            )
        ratio = r["peak_growth_mib"] / r["cost_matrix_mib"]
        rows.append(
            (
                f"peak memory ≤ 2× the float64 cost matrix (n = {r['n']}, {r['kind']})",
                f"{ratio:.2f}×",
                ratio <= 2.0,
            )
        )
        rows.append(
            (
                f"certified optimum (gap ≤ 1e-9 of the total; n = {r['n']}, {r['kind']})",
                f"{r['certified_gap_rel']:.1e}",
                r["certified_gap_rel"] <= 1e-9 and r["same_total_as_certified"],
            )
        )
    small = {(r.get("kind", "gauss"), r["reg_relative"]): r for r in report.get("small_eps", [])}
    for kind in dict.fromkeys(k for k, _ in small):
        if (kind, 0.05) in small and (kind, 1e-3) in small:
            ratio = small[kind, 1e-3]["ours_s"] / small[kind, 0.05]["ours_s"]
            label = "" if kind == "gauss" else f", {_KIND_NAMES.get(kind, kind)}"
            rows.append(
                (
                    f"Sinkhorn reg 1e-3 ≤ 5× reg 0.05 (n = {small[kind, 0.05]['n']}{label})",
                    f"{ratio:.1f}×",
                    ratio <= 5.0,
                )
            )
    for r in report.get("bridge", []):
        if r["sigma"] <= 1e-3:
            clear = "error inf" not in r["warning"] and (
                r["row_error"] < 1e-6 or bool(r["warning"])
            )
            rows.append(
                (
                    f"bridge σ = {r['sigma']:g} ({r['dtype']}, scale 1e3) converges or says why",
                    f"{r['seconds']:.2f} s, row error {r['row_error']:.0e}",
                    clear,
                )
            )
    out = ["## Targets", "", "| target | value | met |", "|---|---:|---|"]
    out += [f"| {name} | {text} | {'yes' if ok else '**no**'} |" for name, text, ok in rows]
    out += [
        "",
        "Where the time goes when a ≥ 5× cell is missed: at d = 3072 both sides compute the "
        "same n×n×d matrix product in float32 (ours as one GEMM with the factor −2 as alpha), "
        "which runs at this core's peak (~200 GFLOP/s: ~33 ms at n = 1024, ~0.5 s at n = 4096), "
        "about a fifth of torchcfm's whole call: 5× would leave nothing for the transfer and "
        "the assignment; at n = 4096, d = 64 the float64 LAPJV (lapx `lapjvr`, ~0.38 s) is "
        "most of our time (a float32 kernel would take ~0.25 s, but the assignment is solved "
        "in float64 to stay exact). Peers never win a cell here.",
    ]
    if any(r["speedup"] < 1.0 for r in exact):
        out[-1] = out[-1].replace(
            "Peers never win a cell here.",
            "**Where a peer wins:** "
            + ", ".join(f"n = {r['n']}, d = {r['d']}" for r in exact if r["speedup"] < 1.0)
            + ".",
        )
    return out
