"""Exact OT on quantised 2-D data: the transportation problem between the distinct points
against the auction, by the share of distinct pairs.

    python benchmarks/coupling_quantised.py            # n = 2048, 4096, 8192 (~7 min)
    python benchmarks/coupling_quantised.py --quick    # n = 1024, 2048

Points drawn from six pairs of distributions are rounded to grids of steps 0.05 to 0.4, so that
x0 takes m0 distinct values and x1 m1; in two more pairs only x0 is rounded (m1 = n). For each
batch whose ratio n²/(m0·m1) lies in [2, 500], both exact paths of
``AuctionSolver().certified_points`` are timed on the same points: the transportation problem
between the distinct points (POT's network simplex, ``_repeated._transport_assignment``, forced)
and the auction (that path disabled). The shipped rule (``_repeated._prefers_transport``) takes
the first where both sets are repeated (m0, m1 ≤ 3n/4) and m0·m1 ≤ n²/64, or ≤ n²/16 and ≤ 2²³,
or ≤ n²/5 and ≤ 2.5·10⁶; or where one set is not and m0·m1 ≤ 32n. One call each. Both answers
are certified; the script checks that their totals agree within the certificates' tolerance. One
torch and BLAS thread, seed 2. Writes ``benchmarks/results/coupling_quantised[_quick].json`` and
``.md`` (atomically) and regenerates ``benchmarks/RESULTS.md``.
"""

import argparse
import time
from typing import Any

import numpy as np

from common import print_row, single_threaded, table, write_results
from interpolants.coupling import AuctionSolver
from interpolants.coupling import _auction as auction
from interpolants.coupling import _repeated as repeated

PAIRS = (
    "gauss",
    "uniform",
    "student-t",
    "clusters",
    "ring-square",
    "arc-gauss",
    "gauss-one-sided",
    "student-t-one-sided",
)
ONE_SIDED = "-one-sided"
STEPS = (0.4, 0.25, 0.15, 0.1, 0.05)
BINS = ((64.0, np.inf), (16.0, 64.0), (10.0, 16.0), (5.0, 10.0), (2.0, 5.0))


def quantised(pair: str, n: int, step: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Float64 2-D points of one of :data:`PAIRS`, rounded to the grid of the given step:
    N(0, I) against N(0, I), uniform on [−3, 3]² against another uniform draw, Student-t(3)
    against N(0, I),
    eight Gaussian clusters against N(0, 4I), a noisy ring of radius 3 against the square
    [−1, 1]², a noisy half-circle against N(0, I); the ``-one-sided`` pairs round x0 only
    (x1 distinct)."""
    one_sided = pair.endswith(ONE_SIDED)
    pair = pair.removesuffix(ONE_SIDED)
    rng = np.random.default_rng(seed)
    if pair == "gauss":
        x, y = rng.standard_normal((n, 2)), rng.standard_normal((n, 2))
    elif pair == "uniform":
        x, y = rng.uniform(-3.0, 3.0, (n, 2)), rng.uniform(-3.0, 3.0, (n, 2))
    elif pair == "student-t":
        x, y = rng.standard_t(3.0, (n, 2)), rng.standard_normal((n, 2))
    elif pair == "clusters":
        centres = 4.0 * rng.standard_normal((8, 2))
        x = centres[rng.integers(0, 8, n)] + 0.3 * rng.standard_normal((n, 2))
        y = 2.0 * rng.standard_normal((n, 2))
    elif pair == "ring-square":
        angle = rng.uniform(0.0, 2.0 * np.pi, n)
        x = 3.0 * np.c_[np.cos(angle), np.sin(angle)] + 0.2 * rng.standard_normal((n, 2))
        y = rng.uniform(-1.0, 1.0, (n, 2))
    elif pair == "arc-gauss":
        angle = rng.uniform(0.0, np.pi, n)
        x = np.c_[np.cos(angle), np.sin(angle)] + 0.1 * rng.standard_normal((n, 2))
        y = rng.standard_normal((n, 2))
    else:
        raise ValueError(pair)
    return np.round(x / step) * step, (y if one_sided else np.round(y / step) * step)


def _timed(solver: AuctionSolver, x: np.ndarray, y: np.ndarray, transport: bool) -> Any:
    """(seconds, optimal total, 2n·tol, whether the transportation problem answered) of one
    ``certified_points`` call with the transportation problem forced (``transport``; where its
    duals fail the check it gives no answer and the auction runs, in the same call) or
    disabled."""
    saved, solved = repeated._prefers_transport, auction._transport_assignment
    answered = []

    def spy(*args: Any) -> Any:
        out = solved(*args)
        answered.append(out is not None)
        return out

    repeated._prefers_transport = lambda n, m0, m1: transport  # type: ignore[assignment]
    auction._transport_assignment = spy  # type: ignore[assignment]
    try:
        start = time.perf_counter()
        out = solver.certified_points(x, y)
        seconds = time.perf_counter() - start
    finally:
        repeated._prefers_transport = saved
        auction._transport_assignment = solved  # type: ignore[assignment]
    total = float(np.square(x - y[out.perm]).sum())
    return seconds, total, 2 * x.shape[0] * out.tol, answered[0]


def run(sizes: tuple[int, ...], seed: int = 2) -> dict[str, Any]:
    solver = AuctionSolver()
    warm = quantised("gauss", 2048, 0.05, 0)  # compiles (or loads) every kernel of both paths
    for transport in (True, False):
        _timed(solver, *warm, transport)
    rows = []
    for pair in PAIRS:
        for n in sizes:
            for step in STEPS:
                x, y = quantised(pair, n, step, seed)
                m0 = np.unique(x, axis=0).shape[0]
                m1 = np.unique(y, axis=0).shape[0]
                ratio = n * n / (m0 * m1)
                if not 2.0 <= ratio <= 500.0:
                    continue
                t_transport, total_t, tol_t, answered = _timed(solver, x, y, True)
                t_auction, total_a, tol_a, _ = _timed(solver, x, y, False)
                if abs(total_t - total_a) > tol_t + tol_a:
                    raise RuntimeError(f"{pair}, n = {n}, step {step}: the optima differ")
                row = {
                    "pair": pair,
                    "n": n,
                    "step": step,
                    "m0": m0,
                    "m1": m1,
                    "ratio": ratio,
                    "transport_s": t_transport,
                    "transport_answered": answered,
                    "auction_s": t_auction,
                    "rule": "transport" if repeated._prefers_transport(n, m0, m1) else "auction",
                }
                print_row(row)
                rows.append(row)
    return {"sizes": list(sizes), "seed": seed, "rows": rows}


def markdown(report: dict[str, Any]) -> str:
    rows = report["rows"]
    summary = []
    for lo, hi in BINS:
        part = [r for r in rows if lo <= r["ratio"] < hi]
        if not part:
            continue
        share = [r["transport_s"] / r["auction_s"] for r in part]
        worst = max(part, key=lambda r: r["transport_s"] / r["auction_s"])
        label = f"≥ {lo:g}" if hi == np.inf else f"{lo:g}–{hi:g}"
        moved = sum(r["rule"] == "transport" for r in part)
        taken = "all" if moved == len(part) else ("none" if moved == 0 else f"{moved}")
        summary.append(
            [
                label,
                taken,
                len(part),
                f"{min(share):.3f}–{max(share):.2f}",
                f"{worst['pair']}, n = {worst['n']}, step {worst['step']:g}: "
                f"{worst['transport_s']:.3f} s against {worst['auction_s']:.3f} s",
            ]
        )
    detail = [
        [
            r["pair"],
            r["n"],
            f"{r['step']:g}",
            f"{r['m0']} × {r['m1']}",
            f"{r['ratio']:.1f}",
            f"{r['transport_s']:.3f}" + ("" if r["transport_answered"] else " (no answer)"),
            f"{r['auction_s']:.3f}",
            r["rule"],
        ]
        for r in rows
    ]
    parts = []
    for label, part in (
        ("All", rows),
        ("Both sets rounded", [r for r in rows if not r["pair"].endswith(ONE_SIDED)]),
        ("x0 rounded only", [r for r in rows if r["pair"].endswith(ONE_SIDED)]),
    ):
        ruled = sum(r["transport_s"] if r["rule"] == "transport" else r["auction_s"] for r in part)
        best = sum(min(r["transport_s"], r["auction_s"]) for r in part)
        parts.append(
            f"{label}, {len(part)} batches: {ruled:.2f} s by the rule, {best:.2f} s by the "
            f"faster path of each, {sum(r['auction_s'] for r in part):.2f} s by the auction "
            f"alone, {sum(r['transport_s'] for r in part):.2f} s by the transportation "
            "problem alone."
        )
    totals = " ".join(parts)
    sizes = ", ".join(map(str, report["sizes"]))
    lines = [
        f"# Exact OT on quantised 2-D data: transportation problem against auction (n = {sizes})",
        "",
        "`AuctionSolver().certified_points` from float64 points rounded to a grid, seconds of "
        f"one call each, one thread, seed {report['seed']}: *transport* the transportation "
        "problem between the "
        "distinct points (POT's network simplex), *auction* the same call with that path "
        "disabled (*no answer*: POT's duals failed the check, and the auction ran in the same "
        "call). The shipped rule (`_repeated._prefers_transport`) takes the first where both "
        "sets are repeated (m0, m1 ≤ 3n/4) and m0·m1 ≤ n²/64, or ≤ n²/16 and ≤ 2²³, or "
        "≤ n²/5 and ≤ 2.5·10⁶; or where one set is not and m0·m1 ≤ 32n (*taken*: in how "
        "many of the batches). The *-one-sided* pairs "
        "round x0 only. Both answers are certified and their totals agree.",
        "",
        table(
            [
                "n²/(m0·m1)",
                "taken",
                "batches",
                "transport / auction",
                "slowest transport / auction",
            ],
            summary,
        ),
        "",
        totals,
        "",
        table(
            ["data", "n", "grid step", "m0 × m1", "n²/(m0·m1)", "transport", "auction", "rule"],
            detail,
        ),
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="n = 1024 and 2048 (~20 s)")
    args = parser.parse_args()
    sizes = (1024, 2048) if args.quick else (2048, 4096, 8192)
    report = single_threaded(lambda: run(sizes), "numba", "lap")
    name = "coupling_quantised_quick" if args.quick else "coupling_quantised"
    write_results(name, report, markdown(report))


if __name__ == "__main__":
    main()
