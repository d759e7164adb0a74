"""Error against NFE of adaptive Runge–Kutta stepping: ours against torchebm and torchdiffeq.

    python benchmarks/adaptive.py             # 5 + 7 problems, 33 tolerances 1e-2 … 1e-10 (~20 min)
    python benchmarks/adaptive.py --no-validation   # the 5 problems only (~10 min)
    python benchmarks/adaptive.py --quick     # 4 problems, 13 tolerances 1e-2 … 1e-8 (~2 min)
    python benchmarks/adaptive.py --threads 0 # torch's default thread count (default: 1)

Every solver integrates the same float64 problem with a known solution from t = 0 to 1 at
rtol = atol = tol, through the same field wrapped in a call counter (the libraries' own counters
are not used), and is scored by its NFE and by its error against the exact solution:

* the worst sample's error, max_i sqrt(mean_j (x_ij − x*_ij)²) (our tolerance semantics), and
* the batch RMS error, sqrt(mean_ij (x_ij − x*_ij)²) (the peers' norm).

Problems: the exact probability-flow fields of `ExactInterpolantFields` between the two Gaussian
mixtures of `tests/bank.py` (`two_mixtures`, re-built here), linear interpolant with
γ(t) = t(1 − t) and with γ ≡ 0, 64 samples of the base (and an 8-dimensional pair, held out
from the tuning of the controller); the reference is RK4 with 2000 and 1000 steps,
Richardson-extrapolated, checked against our Dopri5 at 1e-12. And ẋ = A x and ẋ = a(t) A x
(a = 0.2 + 6t²) in d = 6 with 32 samples, exact solution exp(A) x₀ and exp(2.2 A) x₀. Seven
validation problems (`adaptive_problems.VALIDATION`), not used to choose the controller, run
the Dopri5 pairs only: random mixture pairs (d = 3 … 16; linear with γ ≡ 0, t(1 − t) or
sin²(πt), and trigonometric interpolants; 1 to 256 samples), Lotka–Volterra and a damped
pendulum (reference: SciPy's DOP853 at 1e-13).

Solvers: ours (`Dopri5`, `Bosh3`); ours with one RMS over the whole batch (the
`EmbeddedRungeKutta.error_norm` override of its docstring); ours started by Hairer's initial
step (its extra evaluation counted); torchebm's `Dopri5Integrator` / `Bosh3Integrator`
(float64 tableau; it needs the initial step from the caller: 0.01 and 0.1 are both run);
torchdiffeq's `odeint(method="dopri5" / "bosh3")` told to stop on t = 1 (`step_t`; the mixture
fields do not exist past t = 1), and on the linear problems also by default (stepping past
t = 1 and interpolating). The comparison pairs runs at matched error: each side's NFE at an
error e is interpolated (log–log) on its Pareto front (the cheapest run reaching each error),
at every error any run achieved in the range both sides cover; "best peer" is the smallest
peer NFE there. The target's floor: torchebm's Dopri5 at three other initial steps
(`adaptive_solvers.SPREAD_H0`), scored against the same best peer as ours, shows how often the
peer itself, run once more, needs more NFE than the best of its own runs. Nothing here is
asserted.
"""

import argparse
import time
from collections.abc import Callable
from typing import Any

import torch

from adaptive_compare import METRICS, brief, compare, errors, nfe_at, summarize
from adaptive_problems import VALIDATION, linear, mixture
from adaptive_report import markdown
from adaptive_solvers import (
    ABLATION,
    SPREAD_H0,
    BatchNormDopri5,
    Run,
    ours,
    ours_hairer,
    torchdiffeq,
    torchebm,
)
from common import machine, versions, write_results
from interpolants import Dopri5
from interpolants.integrate import Bosh3


# --- the run -----------------------------------------------------------------------------------
def sweep(run: Run, problem: dict[str, Any], tols: list[float]) -> list[list[float]]:
    rows = []
    for tol in tols:
        state, nfe = run(problem["field"], problem["x0"], tol)
        rows.append([tol, nfe, *errors(state, problem["reference"])])
    return rows


def dopri5_solvers(dense: bool, hairer: bool = True) -> tuple[dict[str, Run], dict[str, Run]]:
    mine: dict[str, Run] = {"ours": ours(Dopri5), "ours, batch norm": ours(BatchNormDopri5)}
    if hairer:
        mine["ours, Hairer h0"] = ours_hairer
    peers: dict[str, Run] = {
        "torchebm h0=0.01": torchebm("dopri5", 0.01),
        "torchebm h0=0.1": torchebm("dopri5", 0.1),
        "torchdiffeq": torchdiffeq("dopri5", stop=True),
    }
    if dense:
        peers["torchdiffeq dense"] = torchdiffeq("dopri5", stop=False)
    return mine, peers


def bosh3_solvers(dense: bool) -> tuple[dict[str, Run], dict[str, Run]]:
    peers: dict[str, Run] = {
        "torchebm h0=0.01": torchebm("bosh3", 0.01),
        "torchebm h0=0.1": torchebm("bosh3", 0.1),
        "torchdiffeq": torchdiffeq("bosh3", stop=True),
    }
    if dense:
        peers["torchdiffeq dense"] = torchdiffeq("bosh3", stop=False)
    return {"ours": ours(Bosh3)}, peers


def bench_problem(
    name: str,
    problem: dict[str, Any],
    tols: list[float],
    tols3: list[float],
    ablation: bool,
    validation: bool = False,
) -> dict[str, Any]:
    """Every pair on one problem; a validation problem: the Dopri5 pairs only, no Hairer
    start, no ablation."""
    out: dict[str, Any] = {
        "description": problem["description"],
        "reference": problem["reference_how"],
        "reference_check": problem["reference_check"],
        "validation": validation,
    }
    methods: list[tuple[str, Callable[[], tuple[dict[str, Run], dict[str, Run]]], list[float]]]
    methods = [("dopri5", lambda: dopri5_solvers(problem["dense_ok"], not validation), tols)]
    if not validation:
        methods.append(("bosh3", lambda: bosh3_solvers(problem["dense_ok"]), tols3))
    for method, solvers, grid in methods:
        mine, peers = solvers()
        start = time.perf_counter()
        curves = {k: sweep(r, problem, grid) for k, r in {**mine, **peers}.items()}
        peer_curves = {k: curves[k] for k in peers}
        comparisons = {
            who: {
                metric: summarize(compare(curves[who], peer_curves, col))
                for metric, col in METRICS.items()
            }
            for who in mine
        }
        out[method] = {
            "curves": curves,
            "peers": list(peers),
            "comparison": comparisons,
            "seconds": time.perf_counter() - start,
        }
        if method == "dopri5":  # the target's floor: the peer itself at other initial steps
            out[method]["spread"] = {}
            for h0 in SPREAD_H0:
                curve = sweep(torchebm("dopri5", h0), problem, grid)
                out[method]["spread"][f"torchebm h0={h0}"] = {
                    "curve": curve,
                    **{m: brief(compare(curve, peer_curves, col)) for m, col in METRICS.items()},
                }
        c = comparisons["ours"]
        print(
            f"  {method}: ours / best peer at matched worst-sample error: max "
            f"{c['worst']['max_ratio']:.3f}, geometric mean {c['worst']['geomean_ratio']:.3f}; "
            f"batch RMS error: max {c['rms']['max_ratio']:.3f}, "
            f"geometric mean {c['rms']['geomean_ratio']:.3f} "
            f"({out[method]['seconds']:.0f} s)",
            flush=True,
        )
    if ablation and not validation:
        start = time.perf_counter()
        peer_curves = {k: out["dopri5"]["curves"][k] for k in out["dopri5"]["peers"]}
        out["ablation"] = {}
        for label, run in ABLATION.items():
            curve = sweep(run, problem, tols)
            pairs = [p for col in METRICS.values() for p in compare(curve, peer_curves, col)]
            out["ablation"][label] = {"curve": curve, **summarize(pairs)}
        print(f"  ablation ({time.perf_counter() - start:.0f} s)", flush=True)
    if validation:
        return out
    # where Bosh3 beats Dopri5 (ours against ours)
    d5, b3 = out["dopri5"]["curves"]["ours"], out["bosh3"]["curves"]["ours"]
    out["bosh3_vs_dopri5"] = [
        {"error": p[2], "bosh3": p[1], "dopri5": nfe_at(d5, 1, p[2])} for p in b3
    ]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="fewer tolerances and problems")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: default)")
    parser.add_argument(
        "--no-validation", action="store_true", help="skip the validation problems (full run)"
    )
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    per_decade, lowest = (2, 8) if args.quick else (4, 10)
    tols = [10 ** (-2 - i / per_decade) for i in range((lowest - 2) * per_decade + 1)]
    tols3 = [10 ** (-1 - i / per_decade) for i in range(5 * per_decade + 1)]  # 1e-1 … 1e-6
    builders: dict[str, Callable[[], dict[str, Any]]] = {
        "mixture γ=t(1−t)": lambda: mixture(True, 2, args.quick),
        "mixture γ≡0": lambda: mixture(False, 2, args.quick),
        "linear": lambda: linear(False),
        "linear a(t)": lambda: linear(True),
    }
    if not args.quick:
        builders["mixture 8-d (held out)"] = lambda: mixture(True, 8, args.quick)
    validation = set()
    if not (args.quick or args.no_validation):
        builders.update(VALIDATION)
        validation = set(VALIDATION)
    problems = {}
    for name, build in builders.items():
        start = time.perf_counter()
        problem = build()
        print(
            f"{name}: reference {problem['reference_how']} "
            f"({time.perf_counter() - start:.0f} s; check {problem['reference_check']:.1e})",
            flush=True,
        )
        problems[name] = bench_problem(
            name, problem, tols, tols3, not args.quick, name in validation
        )
    report = {
        "suite": "adaptive",
        "quick": args.quick,
        "machine": machine(),
        "versions": versions("torchebm", "torchdiffeq"),
        "tolerances": tols,
        "tolerances_bosh3": tols3,
        "rows": "tol, nfe, worst-sample error, batch RMS error",
        "problems": problems,
    }
    suite = "adaptive_quick" if args.quick else "adaptive"
    write_results(suite, report, markdown(report))
    print(f"wrote benchmarks/results/{suite}.json and .md")


if __name__ == "__main__":
    main()
