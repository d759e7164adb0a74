"""Benchmark the minibatch couplings against torchcfm and POT (run on demand, not a test).

    python benchmarks/coupling.py            # full grid, n ∈ {256, 1024, 4096} (~10 min on 2 cores)
    python benchmarks/coupling.py --quick    # small subset (< 2 min)
    python benchmarks/coupling.py --threads 0  # default thread counts (default: 1 for torch
                                               # and for numpy's BLAS, which POT uses)
    python benchmarks/coupling.py --name coupling_lapx  # another results file name

Exact OT: ``OTCoupling()(x0, x1)`` against torchcfm's ``OTPlanSampler(method="exact")
.sample_plan(x0, x1)``, both including the cost matrix. Entropic OT: our ``sinkhorn`` against
POT's ``ot.sinkhorn`` on the same cost, ε and tolerance (both stop when the 2-norm of the
row-marginal violation is below it; POT checks every 10 iterations, ours every iteration, as
the check reuses a product it needs anyway). Calls alternate ours/theirs after one warm-up
each; the medians are reported, with the 1-minute load average before and after each cell
(the machine is shared). Writes ``benchmarks/results/<name>.json`` and ``<name>.md``
(atomically; default name ``coupling``, ``coupling_quick`` with ``--quick``) and regenerates
``benchmarks/RESULTS.md``. Which LAP package backs ``import lap`` (``lap`` or its fork
``lapx``) is recorded with the versions.
"""

import argparse
import json
import os
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import ot
import torch
from threadpoolctl import threadpool_info, threadpool_limits

from common import alternate, machine, versions, write_results
from interpolants import OTCoupling
from interpolants.coupling import SinkhornCoupling, SquaredEuclideanCost, sinkhorn


def bench_exact(n: int, d: int, reps: int) -> dict[str, Any]:
    from torchcfm.optimal_transport import OTPlanSampler

    load_before = os.getloadavg()[0]
    gen = torch.Generator().manual_seed(n + d)
    x0 = torch.randn(n, d, generator=gen)
    x1 = torch.randn(n, d, generator=gen)
    ours = OTCoupling()
    theirs = OTPlanSampler(method="exact")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchcfm/POT warn when numItermax is reached
        t_ours, t_theirs = alternate(
            [lambda: ours(x0, x1), lambda: theirs.sample_plan(x0, x1)], reps
        )
        pi = theirs.get_map(x0, x1)
        i, j = theirs.sample_map(pi, n, replace=True)
    cost = SquaredEuclideanCost()(x0.double(), x1.double())
    p = ours(x0, x1)
    optimum = float(cost[p.index0, p.index1].sum()) / n
    theirs_cost = float(cost[torch.as_tensor(i), torch.as_tensor(j)].sum()) / n
    emd = float(ot.emd2(np.full(n, 1 / n), np.full(n, 1 / n), cost.numpy(), numItermax=10**9))
    return {
        "n": n,
        "d": d,
        "ours_s": t_ours,
        "torchcfm_s": t_theirs,
        "speedup": t_theirs / t_ours,
        "ours_cost_rel_to_emd2": optimum / emd - 1,
        "torchcfm_cost_excess": theirs_cost / optimum - 1,
        "torchcfm_duplicate_rate": 1 - len(set(np.asarray(i).tolist())) / n,
        "solver": repr(ours.solver.select(d)),  # type: ignore[attr-defined]
        "load_1min": [load_before, os.getloadavg()[0]],
    }


def bench_sinkhorn(n: int, d: int, reg: float, tol: float, reps: int) -> dict[str, Any]:
    gen = torch.Generator().manual_seed(7)
    x0 = torch.randn(n, d, generator=gen)
    x1 = torch.randn(n, d, generator=gen)
    cost = SquaredEuclideanCost()(x0, x1)
    eps = reg * float(cost.mean())
    a = torch.full((n,), 1.0 / n)
    a_np, cost_np = np.full(n, 1.0 / n), cost.double().numpy()
    res = sinkhorn(cost, a, a, eps, tol=tol, max_iter=100_000)
    _, log = ot.sinkhorn(a_np, a_np, cost_np, eps, stopThr=tol, numItermax=100_000, log=True)
    t_ours, t_pot = alternate(
        [
            lambda: sinkhorn(cost, a, a, eps, tol=tol, max_iter=100_000),
            lambda: ot.sinkhorn(a_np, a_np, cost_np, eps, stopThr=tol, numItermax=100_000),
        ],
        reps,
    )
    coupling = SinkhornCoupling(reg=reg, tol=tol, max_iter=100_000)
    start = time.perf_counter()
    coupling(x0, x1, generator=torch.Generator().manual_seed(0))
    t_call = time.perf_counter() - start
    return {
        "n": n,
        "d": d,
        "reg_relative": reg,
        "eps": eps,
        "tol": tol,
        "ours_s": t_ours,
        "pot_s": t_pot,
        "speedup": t_pot / t_ours,
        "ours_iterations": res.n_iter,
        "pot_iterations": int(log.get("niter", len(log["err"]) * 10)),
        "ours_full_coupling_call_s": t_call,
        "ours_dtype": "float32",
        "pot_dtype": "float64",
    }


def _versions() -> dict[str, str]:
    import lap

    out = versions("scipy", "lap", "torchcfm")
    out["lap_module"] = "lapx" if hasattr(lap, "lapjvr") else "lap"
    return out


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
    lines += ["", *_targets(report)]
    return "\n".join(lines) + "\n"


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small subset (< 2 min)")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads for both sides (default 1: on a shared machine OpenMP "
        "spin-waiting dominates multi-threaded timings; 0 keeps torch's default)",
    )
    parser.add_argument("--name", default=None, help="results file name (no extension)")
    parser.add_argument(
        "--render", action="store_true", help="only rewrite the markdown from the saved JSON"
    )
    args = parser.parse_args()
    if args.render:
        name = args.name or "coupling"
        path = Path(__file__).parent / "results" / f"{name}.json"
        saved = json.loads(path.read_text())
        write_results(name, saved, _markdown(saved))
        return
    if args.threads > 0:
        torch.set_num_threads(args.threads)
        # the same thread count for numpy's BLAS (POT's matrix products): equal resources
        threadpool_limits(limits=args.threads, user_api="blas")
    grid_n = [256, 1024] if args.quick else [256, 1024, 4096]
    grid_d = [2, 64] if args.quick else [2, 64, 3072]
    report: dict[str, Any] = {
        "machine": {
            **machine(),
            "blas_threads": min(
                (p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"),
                default=None,
            ),
        },
        "versions": _versions(),
        "quick": args.quick,
        "exact": [],
        "sinkhorn": [],
    }
    for n in grid_n:
        for d in grid_d:
            reps = {256: 9, 1024: 5}.get(n, 2)
            row = bench_exact(n, d, reps)
            print(json.dumps(row), flush=True)
            report["exact"].append(row)
    for d in [2, 64]:
        row = bench_sinkhorn(1024, d, reg=0.05, tol=1e-6, reps=5)
        print(json.dumps(row), flush=True)
        report["sinkhorn"].append(row)
    name = args.name or ("coupling_quick" if args.quick else "coupling")
    write_results(name, report, _markdown(report))  # also regenerates RESULTS.md
    print(_markdown(report))


if __name__ == "__main__":
    main()
