"""Exact OT on heavy-tailed data of dimension 8 to 64: the path from the points against the
matrix path.

    python benchmarks/coupling_heavy.py            # n = 4096, d = 8, 10, 16, 32, 64 (~4 min)
    python benchmarks/coupling_heavy.py --quick    # n = 2048, d = 8, 32 (~1 min)

For d ≥ ``AuctionSolver.max_point_dim`` (11) the certified auction works on the n × n cost
matrix, which :class:`~interpolants.OTCoupling` reduces for d ≥ 8 (C_ij − ‖x0_i‖² − ‖x1_j‖²);
below, it works from the points (``certified_points``). This script times both paths on the
same float32 batches of dimension 8 to 64 through ``OTCoupling(solver=...)`` (the whole call,
the cost matrix's construction included): the matrix path with
``AuctionSolver(max_point_dim=0)``, the points with ``AuctionSolver(max_point_dim=65)``.
Data: N(0, I) and
heavy-tailed kinds against N(0, I) or against their own kind; *R²/s* is the squared reach of
the two sets over the typical row's range of ‖x0_i − x1_j‖² (how far the far points lie). The
two permutations' totals are checked to agree. One call each, one torch and BLAS thread,
seed 1.
Writes ``benchmarks/results/coupling_heavy[_quick].json`` and ``.md`` (atomically) and
regenerates ``benchmarks/RESULTS.md``.
"""

import argparse
import time
from typing import Any

import numpy as np
import torch

from common import print_row, single_threaded, table, write_results
from interpolants import OTCoupling
from interpolants.coupling import AuctionSolver
from interpolants.coupling._certificate import _max_norm
from interpolants.coupling._point_start import _typical_range

KINDS = ("gauss", "t3, both", "t2", "t1.5", "lognormal", "cauchy", "cauchy, both")


def heavy(kind: str, n: int, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Float64 points of one of :data:`KINDS` (float32 values): x0 of the kind (N(0, I),
    Student-t with 3, 2 or 1.5 degrees of freedom, lognormal(0, 1.5), Cauchy; coordinates
    independent) against N(0, I), or against the same kind (``both``)."""
    rng = np.random.default_rng(seed)
    name = kind.split(",")[0]

    def draw() -> np.ndarray:
        if name == "gauss":
            return rng.standard_normal((n, dim))
        if name.startswith("t"):
            return rng.standard_t(float(name[1:]), (n, dim))
        if name == "lognormal":
            return rng.lognormal(0.0, 1.5, (n, dim))
        if name == "cauchy":
            return rng.standard_cauchy((n, dim))
        raise ValueError(kind)

    x0 = draw()
    x1 = draw() if kind.endswith("both") else rng.standard_normal((n, dim))
    return x0.astype(np.float32).astype(np.float64), x1.astype(np.float32).astype(np.float64)


def _statistic(solver: AuctionSolver, x0: np.ndarray, x1: np.ndarray) -> float:
    """R²/s: the squared reach of the centred sets over the typical row's range of C."""
    centre = 0.5 * (x0.mean(axis=0) + x1.mean(axis=0))
    xs, ys = x0 - centre, x1 - centre
    return (_max_norm(xs) + _max_norm(ys)) ** 2 / _typical_range(solver, xs, ys)[0]


def _timed(coupling: OTCoupling, x0: torch.Tensor, x1: torch.Tensor) -> tuple[float, float]:
    """(seconds, total cost in float64) of one call."""
    start = time.perf_counter()
    pairs = coupling(x0, x1)
    seconds = time.perf_counter() - start
    diff = x0[pairs.index0].double() - x1[pairs.index1].double()
    return seconds, float(diff.square().sum())


def run(n: int, dims: tuple[int, ...], seed: int = 1) -> dict[str, Any]:
    solver = AuctionSolver()
    matrix = OTCoupling(solver=AuctionSolver(max_point_dim=0))
    points = OTCoupling(solver=AuctionSolver(max_point_dim=65))
    warm = [torch.from_numpy(a).float() for a in heavy("cauchy, both", 2048, 8, 0)]
    matrix(*warm), points(*warm)  # compiles (or loads) the kernels of both paths
    rows = []
    for dim in dims:
        for kind in KINDS:
            x0, x1 = heavy(kind, n, dim, seed)
            t0, t1 = torch.from_numpy(x0).float(), torch.from_numpy(x1).float()
            t_points, total_p = _timed(points, t0, t1)
            t_matrix, total_m = _timed(matrix, t0, t1)
            if abs(total_p - total_m) > 1e-9 * abs(total_m):
                raise RuntimeError(f"{kind}, d = {dim}: the two paths' optima differ")
            row = {
                "kind": kind,
                "dim": dim,
                "statistic": _statistic(solver, x0, x1),
                "points_s": t_points,
                "matrix_s": t_matrix,
            }
            print_row(row)
            rows.append(row)
    return {"n": n, "dims": list(dims), "seed": seed, "rows": rows}


def markdown(report: dict[str, Any]) -> str:
    rows = report["rows"]
    body = [
        [
            r["kind"],
            r["dim"],
            f"{r['statistic']:.3g}",
            f"{r['points_s']:.3f}",
            f"{r['matrix_s']:.3f}",
            f"{r['points_s'] / r['matrix_s']:.2f}",
        ]
        for r in rows
    ]
    lines = [
        f"# Exact OT on heavy-tailed data in dimension 8 to 64 (n = {report['n']})",
        "",
        "`OTCoupling(solver=AuctionSolver(...))` on float32 batches, seconds of one call, one "
        f"thread, seed {report['seed']}: *points* from the points (`max_point_dim=65`), "
        "*matrix* on the reduced n × n cost (`max_point_dim=0`; the default from d = 11 on, "
        "from d = 8 before; its construction included). *R²/s*: the squared reach of the "
        "two sets over the typical row's range of ‖x0_i − x1_j‖². The two permutations' "
        "totals agree.",
        "",
        table(["data", "d", "R²/s", "points", "matrix", "points / matrix"], body),
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="n = 2048, d = 8 and 32 (~1 min)")
    args = parser.parse_args()
    sizes = (2048, (8, 32)) if args.quick else (4096, (8, 10, 16, 32, 64))
    report = single_threaded(lambda: run(*sizes), "numba", "lap")
    write_results(
        "coupling_heavy_quick" if args.quick else "coupling_heavy", report, markdown(report)
    )


if __name__ == "__main__":
    main()
