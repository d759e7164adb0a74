"""Benchmark the minibatch couplings against torchcfm and POT (run on demand, not a test).

    python benchmarks/coupling.py            # full grid, n ∈ {256, 1024, 4096} (~10 min on 2 cores)
    python benchmarks/coupling.py --quick    # small subset (< 2 min)
    python benchmarks/coupling.py --threads 0  # default thread counts (default: 1 for torch
                                               # and for numpy's BLAS, which POT uses)
    python benchmarks/coupling.py --name coupling_lapx  # another results file name
    python benchmarks/coupling.py --large    # only the large-n exact OT rows, merged into the
                                             # saved results (the rest is kept)
    python benchmarks/coupling.py --memory 8192 moons   # one peak-memory measurement (internal)

Exact OT: ``OTCoupling()(x0, x1)`` against torchcfm's ``OTPlanSampler(method="exact")
.sample_plan(x0, x1)``, both including the cost matrix. Entropic OT: our ``sinkhorn`` against
POT's ``ot.sinkhorn`` on the same cost, ε and tolerance (both stop when the 2-norm of the
row-marginal violation is below it; POT checks every 10 iterations, ours every iteration, as
the check reuses a product it needs anyway). Large exact OT in 2-D (issue 17): time over several
distributions (the certificate's gap included) and peak memory, measured in a fresh subprocess
as the growth of the peak RSS over the call; small ε: our Sinkhorn at reg 1e-3 against reg 0.05
on the same batch, and the Schrödinger-bridge coupling at σ → 0 on data of scale 1e3 (full run:
n = 4096 and 8192; ``--quick``: n = 1024 and 2048). Calls alternate ours/theirs after one warm-up
each; the medians are reported, with the 1-minute load average before and after each cell
(the machine is shared). Writes ``benchmarks/results/<name>.json`` and ``<name>.md``
(atomically; default name ``coupling``, ``coupling_quick`` with ``--quick``) and regenerates
``benchmarks/RESULTS.md``. Which LAP package backs ``import lap`` (``lap`` or its fork
``lapx``) is recorded with the versions.
"""

import argparse
import json
from pathlib import Path
from typing import Any

import torch
from threadpoolctl import threadpool_info, threadpool_limits

from common import machine, versions, write_results
from coupling_bench import (
    bench_bridge,
    bench_exact,
    bench_exact_large,
    bench_sinkhorn,
    bench_small_eps,
)
from coupling_memory import _measure_memory
from coupling_problems import KINDS, SMALL_EPS_KINDS
from coupling_report import _large, _markdown


def _versions() -> dict[str, str]:
    import lap

    out = versions("scipy", "lap", "torchcfm")
    out["lap_module"] = "lapx" if hasattr(lap, "lapjvr") else "lap"
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
    parser.add_argument(
        "--large",
        action="store_true",
        help="only rerun the large-n exact OT section (n = 4096 and 8192 in 2-D) and merge it "
        "into the saved full results",
    )
    parser.add_argument(
        "--small-eps",
        action="store_true",
        help="only rerun the small-ε Sinkhorn section (n = 8192) and merge it into the saved "
        "full results",
    )
    parser.add_argument("--memory", nargs=2, metavar=("N", "KIND"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory:
        _measure_memory(int(args.memory[0]), args.memory[1])
        return
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
    if args.small_eps:
        name = args.name or "coupling"
        path = Path(__file__).parent / "results" / f"{name}.json"
        saved = json.loads(path.read_text())
        saved["small_eps"] = bench_small_eps(8192, (0.05, 1e-3), 1e-6, SMALL_EPS_KINDS, 3)
        write_results(name, saved, _markdown(saved))
        return
    if args.large:
        name = args.name or "coupling"
        path = Path(__file__).parent / "results" / f"{name}.json"
        saved = json.loads(path.read_text())
        saved["exact_large"] = bench_exact_large(4096, KINDS, 3, peer=True)
        saved["exact_large"] += bench_exact_large(8192, KINDS, 1, False)
        write_results(name, saved, _markdown(saved))
        print("\n".join(_large(saved)))
        return
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
    if args.quick:
        report["exact_large"] = bench_exact_large(2048, ("gauss", "moons"), 1, peer=False)
        report["small_eps"] = bench_small_eps(1024, (0.05, 1e-3), 1e-6, SMALL_EPS_KINDS)
    else:
        report["exact_large"] = bench_exact_large(4096, KINDS, 3, peer=True)
        report["exact_large"] += bench_exact_large(8192, KINDS, 1, False)
        report["small_eps"] = bench_small_eps(8192, (0.05, 1e-3), 1e-6, SMALL_EPS_KINDS, 3)
    report["bridge"] = bench_bridge(256, (1e-3, 1.0))
    name = args.name or ("coupling_quick" if args.quick else "coupling")
    write_results(name, report, _markdown(report))  # also regenerates RESULTS.md
    print(_markdown(report))


if __name__ == "__main__":
    main()
