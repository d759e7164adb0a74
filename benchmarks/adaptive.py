"""Error against NFE of adaptive Runge–Kutta stepping: ours against torchebm and torchdiffeq.

    python benchmarks/adaptive.py             # 5 problems, 33 tolerances 1e-2 … 1e-10 (~10 min)
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
(a = 0.2 + 6t²) in d = 6 with 32 samples, exact solution exp(A) x₀ and exp(2.2 A) x₀.

Solvers: ours (`Dopri5`, `Bosh3`); ours with one RMS over the whole batch (the
`EmbeddedRungeKutta.error_norm` override of its docstring); ours started by Hairer's initial
step (its extra evaluation counted); torchebm's `Dopri5Integrator` / `Bosh3Integrator`
(float64 tableau; it needs the initial step from the caller: 0.01 and 0.1 are both run);
torchdiffeq's `odeint(method="dopri5" / "bosh3")` told to stop on t = 1 (`step_t`; the mixture
fields do not exist past t = 1), and on the linear problems also by default (stepping past
t = 1 and interpolating). The comparison pairs runs at matched error: each side's NFE at an
error e is interpolated (log–log) on its Pareto front (the cheapest run reaching each error),
at every error any run achieved in the range both sides cover; "best peer" is the smallest
peer NFE there. Nothing here is asserted.
"""

import argparse
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from common import machine, table, versions, write_results
from interpolants import Dopri5, GaussianMixture, LinearInterpolant
from interpolants.analytic import ExactInterpolantFields
from interpolants.integrate import RK4, Bosh3, EmbeddedRungeKutta
from interpolants.integrate._tableau import DOPRI5
from interpolants.interpolant import QuadraticGamma

DT = torch.float64
GRID = torch.tensor([0.0, 1.0], dtype=DT)
Field = Callable[[Tensor, Tensor], Tensor]
Run = Callable[[Field, Tensor, float], tuple[Tensor, int]]


class Counted:
    """``field`` with a call counter."""

    def __init__(self, field: Field) -> None:
        self.field, self.count = field, 0

    def __call__(self, t: Tensor, x: Tensor) -> Tensor:
        self.count += 1
        return self.field(t, x)


# --- problems ----------------------------------------------------------------------------------
def two_mixtures(dim: int) -> tuple[GaussianMixture, GaussianMixture]:
    """``tests/bank.py: two_mixtures``: a 2-component base and a 3-component target, fixed."""
    gen = torch.Generator().manual_seed(1234)
    a = torch.randn(2, dim, dim, generator=gen, dtype=DT)
    c0 = 0.3 * a @ a.mT + 0.2 * torch.eye(dim, dtype=DT)
    m0 = torch.randn(2, dim, generator=gen, dtype=DT)
    base = GaussianMixture(torch.tensor([0.4, 0.6], dtype=DT), m0, c0)
    m1 = 2.5 * torch.randn(3, dim, generator=gen, dtype=DT)
    b = torch.randn(3, dim, dim, generator=gen, dtype=DT)
    c1 = 0.1 * b @ b.mT + 0.1 * torch.eye(dim, dtype=DT)
    target = GaussianMixture(torch.tensor([0.2, 0.5, 0.3], dtype=DT), m1, c1)
    return base, target


def mixture(gamma: bool, dim: int, quick: bool) -> dict[str, Any]:
    base, target = two_mixtures(dim)
    interpolant = LinearInterpolant(QuadraticGamma()) if gamma else LinearInterpolant()
    exact = ExactInterpolantFields(interpolant, base, target)
    x0 = base.sample(64, torch.Generator().manual_seed(0 if dim == 2 else 1))

    def field(t: Tensor, x: Tensor) -> Tensor:
        return exact.velocity(t, x)

    n = 500 if quick else 1000
    coarse = RK4().integrate(field, x0, torch.linspace(0, 1, n + 1, dtype=DT)).state
    fine = RK4().integrate(field, x0, torch.linspace(0, 1, 2 * n + 1, dtype=DT)).state
    reference = (16 * fine - coarse) / 15
    check = Dopri5(rtol=1e-12, atol=1e-12).integrate(field, x0, GRID).state
    return {
        "field": field,
        "x0": x0,
        "reference": reference,
        "reference_check": float((check - reference).abs().max()),
        "reference_how": f"RK4 {2 * n} and {n} steps, Richardson",
        "description": (
            f"two_mixtures(dim={dim}), linear interpolant, "
            + ("γ = t(1 − t)" if gamma else "γ ≡ 0")
            + ", 64 samples"
        ),
        "dense_ok": False,
    }


def linear(time_dependent: bool) -> dict[str, Any]:
    gen = torch.Generator().manual_seed(5 if time_dependent else 3)
    d = 6
    m = torch.randn(d, d, generator=gen, dtype=DT)
    if time_dependent:
        a = (
            (m - m.T)
            - 0.3 * torch.eye(d, dtype=DT)
            + 0.2 * torch.randn(d, d, generator=gen, dtype=DT)
        )
    else:
        a = (
            2 * (m - m.T)
            - 0.5 * torch.eye(d, dtype=DT)
            + 0.3 * torch.randn(d, d, generator=gen, dtype=DT)
        )
    x0 = torch.randn(32, d, generator=gen, dtype=DT)

    def field(t: Tensor, x: Tensor) -> Tensor:
        if not time_dependent:
            return x @ a.T
        s = t.reshape(-1)[:1]  # one time per call on every side
        return (0.2 + 6 * s * s) * (x @ a.T)

    reference = x0 @ torch.linalg.matrix_exp((2.2 if time_dependent else 1.0) * a).T
    check = Dopri5(rtol=1e-12, atol=1e-12).integrate(field, x0, GRID).state
    return {
        "field": field,
        "x0": x0,
        "reference": reference,
        "reference_check": float((check - reference).abs().max()),
        "reference_how": "matrix exponential",
        "description": ("ẋ = (0.2 + 6t²) A x" if time_dependent else "ẋ = A x")
        + ", d = 6, A = skew + dissipative + random, 32 samples",
        "dense_ok": True,
    }


# --- solvers -----------------------------------------------------------------------------------
class BatchNormDopri5(EmbeddedRungeKutta):
    """Our Dopri5 loop with the peers' norm: one RMS over the whole batch tensor."""

    tableau, order, error_order = DOPRI5, 5, 4

    def error_norm(self, error: Tensor, x: Tensor, y: Tensor) -> Tensor:
        scale = self.atol + self.rtol * torch.maximum(x.abs(), y.abs())
        return (error / scale).square().mean().sqrt()


def hairer_first_step(field: Field, x: Tensor, tol: float, order: int) -> float:
    """Hairer, Nørsett & Wanner §II.4 (p. 169) in our per-sample norm: one extra evaluation."""
    integrator = Dopri5(rtol=tol, atol=tol)
    t0 = torch.zeros((), dtype=DT)
    f0 = field(t0.expand(x.shape[0]), x)

    def norm(v: Tensor) -> float:
        return float(integrator.error_norm(v, x, x))

    d0, d1 = norm(x), norm(f0)
    h0 = 1e-6 if d0 < 1e-5 or d1 < 1e-5 else 0.01 * d0 / d1
    f1 = field((t0 + h0).expand(x.shape[0]), x + h0 * f0)
    d2 = norm(f1 - f0) / h0
    big = max(d1, d2)
    h1 = max(1e-6, h0 * 1e-3) if big <= 1e-15 else (0.01 / big) ** (1 / (order + 1))
    return min(100 * h0, h1, 1.0)


def ours(cls: type[EmbeddedRungeKutta]) -> Run:
    def run(field: Field, x0: Tensor, tol: float) -> tuple[Tensor, int]:
        counted = Counted(field)
        return cls(rtol=tol, atol=tol).integrate(counted, x0, GRID).state, counted.count

    return run


def ours_hairer(field: Field, x0: Tensor, tol: float) -> tuple[Tensor, int]:
    counted = Counted(field)
    h = hairer_first_step(counted, x0, tol, 4)  # its two evaluations: k1 (again) and the probe
    state = Dopri5(rtol=tol, atol=tol, first_step=h).integrate(counted, x0, GRID).state
    return state, counted.count - 1  # k1 is evaluated twice here; the algorithm needs it once


class Variant(EmbeddedRungeKutta):
    """Our Dopri5 loop with another controller, for the ablation (private hooks overridden)."""

    tableau, order, error_order = DOPRI5, 5, 4
    safety = 0.8
    beta: float | None = 0.04  # PI integral gain (α = 1/5 − 0.75 β); None: elementary rule
    stretch: float | None = 0.2  # θ of the equal steps ⌈R/h − θ⌉; None: h and a remainder

    def _factor(self, err: float, previous: float | None) -> float:
        if err == 0.0:
            return 10.0
        if self.beta is None or previous is None or err > 1.0:  # the elementary rule
            return self.safety * err ** (-1 / 5)
        alpha = 1 / 5 - 0.75 * self.beta
        return self.safety * err ** (-alpha) * max(previous, 1e-4) ** self.beta

    def _step(self, remaining: float, h: float, stretch: float = 0.2) -> float:
        # the loop passes stretch = 0 for a retry (never longer than h)
        if self.stretch is None:
            return min(h, remaining)
        theta = min(stretch, self.stretch)
        return remaining / max(1, math.ceil(remaining / h - theta - 1e-10))


def variant(hairer: bool = False, **attrs: Any) -> Run:
    cls = type("V", (Variant,), attrs)

    def run(field: Field, x0: Tensor, tol: float) -> tuple[Tensor, int]:
        counted = Counted(field)
        first = hairer_first_step(counted, x0, tol, 4) if hairer else None
        solver = cls(rtol=tol, atol=tol, first_step=first)
        state = solver.integrate(counted, x0, GRID).state
        return state, counted.count - (1 if hairer else 0)

    return run


ABLATION: dict[str, Run] = {
    "ours: PI β = 0.04, s = 0.8, equal steps θ = 0.2, free h0": variant(),
    "θ = 0 (⌈R/h⌉ equal steps)": variant(stretch=0.0),
    "h and a remainder (no equal steps)": variant(stretch=None),
    "PI, s = 0.7": variant(safety=0.7),
    "PI, s = 0.9 (DOPRI5's)": variant(safety=0.9),
    "I, s = 0.7": variant(beta=None, safety=0.7),
    "≈ previous Dopri5: I, s = 0.7, θ = 0": variant(beta=None, safety=0.7, stretch=0.0),
    "≈ torchebm's loop: I, s = 0.9, h and a remainder, Hairer h0": variant(
        hairer=True, beta=None, safety=0.9, stretch=None
    ),
}


def torchebm(name: str, h0: float) -> Run:
    def run(field: Field, x0: Tensor, tol: float) -> tuple[Tensor, int]:
        from torchebm.integrators import Bosh3Integrator, Dopri5Integrator

        cls = Dopri5Integrator if name == "dopri5" else Bosh3Integrator
        counted = Counted(field)
        solver = cls(dtype=DT, atol=tol, rtol=tol)  # float64 tableau (float32 by default)
        out = solver.integrate(
            {"x": x0}, step_size=h0, n_steps=1, drift=lambda x, t: counted(t, x), t=GRID
        )
        return out["x"], counted.count

    return run


def torchdiffeq(method: str, stop: bool) -> Run:
    def run(field: Field, x0: Tensor, tol: float) -> tuple[Tensor, int]:
        from torchdiffeq import odeint

        counted = Counted(field)
        options = {"step_t": GRID[1:]} if stop else None
        out = odeint(counted, x0, GRID, rtol=tol, atol=tol, method=method, options=options)
        return out[-1], counted.count

    return run


def errors(x: Tensor, reference: Tensor) -> tuple[float, float]:
    per_sample = (x - reference).reshape(x.shape[0], -1).square().mean(1).sqrt()
    return float(per_sample.max()), float(per_sample.square().mean().sqrt())


# --- matched-error comparison ------------------------------------------------------------------
METRICS = {"worst": 1, "rms": 2}


def front(curve: list[list[float]], col: int) -> tuple[np.ndarray, np.ndarray]:
    """log error (increasing) and log NFE of the Pareto front: the cheapest run to each error."""
    kept: list[list[float]] = []
    for p in sorted(curve, key=lambda p: (p[1], p[col + 1])):  # rows: tol, nfe, worst, rms
        if not kept or p[col + 1] < kept[-1][col + 1]:
            kept.append(p)
    err = np.log([p[col + 1] for p in kept])[::-1]
    nfe = np.log([p[1] for p in kept])[::-1]
    return err, nfe


def nfe_at(curve: list[list[float]], col: int, error: float) -> float | None:
    """NFE needed for ``error`` by log–log interpolation on the front (None outside it)."""
    err, nfe = front(curve, col)
    e = math.log(error)
    if e < err[0] - 1e-12 or e > err[-1] + 1e-12:
        return None
    return math.exp(float(np.interp(e, err, nfe)))


def compare(
    mine: list[list[float]], peers: dict[str, list[list[float]]], col: int
) -> list[dict[str, Any]]:
    """Ours / best peer at every error any run achieved, where both sides have a value."""
    seen = sorted({p[col + 1] for c in (mine, *peers.values()) for p in c})
    out = []
    for e in seen:
        o = nfe_at(mine, col, e)
        values = {k: nfe_at(c, col, e) for k, c in peers.items()}
        known = {k: v for k, v in values.items() if v is not None}
        if o is None or not known:
            continue
        best = min(known, key=known.__getitem__)
        out.append(
            {
                "error": e,
                "ours": o,
                "best_peer": best,
                "peer": known[best],
                "ratio": o / known[best],
            }
        )
    return out


def summarize(pairs: list[dict[str, Any]]) -> dict[str, Any]:
    ratios = [p["ratio"] for p in pairs]
    worse = [p for p in pairs if p["ratio"] > 1.0 + 1e-9]
    return {
        "errors": [p["error"] for p in pairs],
        "points": len(ratios),
        "max_ratio": max(ratios) if ratios else float("nan"),
        "geomean_ratio": float(np.exp(np.mean(np.log(ratios)))) if ratios else float("nan"),
        "worse": worse,
    }


# --- the run -----------------------------------------------------------------------------------
def sweep(run: Run, problem: dict[str, Any], tols: list[float]) -> list[list[float]]:
    rows = []
    for tol in tols:
        state, nfe = run(problem["field"], problem["x0"], tol)
        rows.append([tol, nfe, *errors(state, problem["reference"])])
    return rows


def dopri5_solvers(dense: bool) -> tuple[dict[str, Run], dict[str, Run]]:
    mine: dict[str, Run] = {
        "ours": ours(Dopri5),
        "ours, batch norm": ours(BatchNormDopri5),
        "ours, Hairer h0": ours_hairer,
    }
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
    name: str, problem: dict[str, Any], tols: list[float], tols3: list[float], ablation: bool
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "description": problem["description"],
        "reference": problem["reference_how"],
        "reference_check": problem["reference_check"],
    }
    for method, solvers, grid in (
        ("dopri5", dopri5_solvers, tols),
        ("bosh3", bosh3_solvers, tols3),
    ):
        mine, peers = solvers(problem["dense_ok"])
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
        c = comparisons["ours"]
        print(
            f"  {method}: ours / best peer at matched worst-sample error: max "
            f"{c['worst']['max_ratio']:.3f}, geometric mean {c['worst']['geomean_ratio']:.3f}; "
            f"batch RMS error: max {c['rms']['max_ratio']:.3f}, "
            f"geometric mean {c['rms']['geomean_ratio']:.3f} "
            f"({out[method]['seconds']:.0f} s)",
            flush=True,
        )
    if ablation:
        start = time.perf_counter()
        peer_curves = {k: out["dopri5"]["curves"][k] for k in out["dopri5"]["peers"]}
        out["ablation"] = {}
        for label, run in ABLATION.items():
            curve = sweep(run, problem, tols)
            pairs = [p for col in METRICS.values() for p in compare(curve, peer_curves, col)]
            out["ablation"][label] = {"curve": curve, **summarize(pairs)}
        print(f"  ablation ({time.perf_counter() - start:.0f} s)", flush=True)
    # where Bosh3 beats Dopri5 (ours against ours)
    d5, b3 = out["dopri5"]["curves"]["ours"], out["bosh3"]["curves"]["ours"]
    out["bosh3_vs_dopri5"] = [
        {"error": p[2], "bosh3": p[1], "dopri5": nfe_at(d5, 1, p[2])} for p in b3
    ]
    return out


# --- report ------------------------------------------------------------------------------------
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
        f"{m['torch_threads']}; {m['cpu']}; NFE and errors do not depend on the machine.",
        "",
        "## Summary: ours / best peer at matched error (≤ 1: ours needs no more NFE)",
        "",
    ]

    def cell(c: dict[str, Any]) -> str:
        return f"{c['max_ratio']:.3f} / {c['geomean_ratio']:.3f} ({len(c['worse'])}/{c['points']})"

    rows = []
    for name, res in report["problems"].items():
        for method in ("dopri5", "bosh3"):
            for who, comp in res[method]["comparison"].items():
                rows.append([name, method, who, cell(comp["worst"]), cell(comp["rms"])])
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
    lines += _verdict(report)
    for name, res in report["problems"].items():
        lines += _problem_section(name, res)
    lines += _ablation(report)
    lines += _notes(report)
    return "\n".join(lines) + "\n"


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
        hairer = comp["ours, Hairer h0"]["worst"]
        crossover = [
            p["error"] for p in res["bosh3_vs_dopri5"] if p["dopri5"] and p["bosh3"] < p["dopri5"]
        ]
        lines.append(
            f"- {name}: geometric mean ours / best peer (worst-sample error) "
            f"{mine['geomean_ratio']:.3f} per-sample norm, {batch['geomean_ratio']:.3f} batch "
            f"norm, {hairer['geomean_ratio']:.3f} with Hairer's initial step; Bosh3 cheaper "
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
        "",
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="fewer tolerances and problems")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: default)")
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
    problems = {}
    for name, build in builders.items():
        start = time.perf_counter()
        problem = build()
        print(
            f"{name}: reference {problem['reference_how']} "
            f"({time.perf_counter() - start:.0f} s; check {problem['reference_check']:.1e})",
            flush=True,
        )
        problems[name] = bench_problem(name, problem, tols, tols3, not args.quick)
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
