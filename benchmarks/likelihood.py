"""Benchmark exact log-likelihoods against flow_matching's ``ODESolver.compute_likelihood``.

    python benchmarks/likelihood.py             # d ∈ {2, 64}, 1000 points (~5 min on 2 cores)
    python benchmarks/likelihood.py --quick     # d ∈ {2, 64}, 250 points (~1 min)
    python benchmarks/likelihood.py --threads 0 # torch's default thread count (default: 1)

Both sides integrate the same field (``interpolants.MLP(d, hidden=256, depth=3)``: 3×256 SiLU
layers on [x, projected sinusoidal embedding of t]) backwards from the data at t = 1 to the
base N(0, I) at t = 0 with 20 explicit midpoint steps and the *exact* divergence, and return
log ρ1(x) = log ρ0(X_0) − ∫₀¹ ∇·b dt for the same points:

* ours: ``log_likelihood(net, x, log_p0, integrator=Midpoint(), grid=time_grid(20, 1.0, 0.0),
  divergence=ExactDivergence())``, which uses the MLP's own forward-mode divergence
  (``MLP.forward_and_divergence``); also timed with ``ExactDivergence(structured=False)``, the
  generic ``torch.func`` path any field gets;
* flow_matching: ``ODESolver(velocity_model=wrapper).compute_likelihood(x_1=x, log_p0=log_p0,
  step_size=1/20, method="midpoint", exact_divergence=True)`` (torchdiffeq; time grid
  [1, 0]; the wrapper calls ``net(t, x)`` from flow_matching's ``forward(x, t)``). It returns
  ``(X_0, log_p0(X_0) + log_det)`` with log_det = ∫₁⁰ ∇·b dt, the same quantity.

For d = 2 the field is trained first (our ``Trainer``, ``VelocityObjective(LinearInterpolant())``,
N(0, I) → moons, batch 256, Adam 1e-3, no EMA) and the points are fresh moons samples; for
d = 64 the network is untrained (random initialisation, seed 0) and the points are N(0, I)
samples. Both sides count their field evaluations (both must be 40). Timings are medians of
alternating calls (ours, theirs, …) after a warm-up of each. Nothing here is asserted.
"""

import argparse
import math
import time
from typing import Any

import torch
from torch import Tensor, nn

from common import alternate, machine, table, versions, write_results
from interpolants import (
    MLP,
    GaussianMixture,
    LinearInterpolant,
    PairedBatches,
    Trainer,
    VelocityObjective,
    log_likelihood,
    time_grid,
)
from interpolants.data import Moons
from interpolants.integrate import ExactDivergence, Midpoint
from training_step import load_average, wait_for_quiet

STEPS = 20
# our d = 2 midpoint step's floor, profiled on the 2-core Xeon (one thread): two forward passes
# (~2.2 ms each) and four 1000 × 256 × 256 tangent products at peak (~2.8 ms)
FLOOR_MS = 7.2


def standard_normal_log_prob(x: Tensor) -> Tensor:
    """log N(x; 0, I) per sample, shape ``(B,)`` (the same callable for both sides)."""
    d = x.shape[1]
    return -0.5 * x.square().sum(1) - 0.5 * d * math.log(2 * math.pi)


class Counted(nn.Module):
    """``net`` with a call counter (NFE), called as ``f(t, x)``."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net, self.count = net, 0

    def forward(self, t: Tensor, x: Tensor) -> Tensor:
        self.count += 1
        out: Tensor = self.net(t, x)
        return out


def flow_matching_wrapper(field: nn.Module) -> nn.Module:
    """flow_matching's model protocol, ``forward(x, t, **extras)``, around ``field(t, x)``."""
    from flow_matching.utils import ModelWrapper

    class Wrapper(ModelWrapper):
        def forward(self, x: Tensor, t: Tensor, **extras: Any) -> Tensor:
            out: Tensor = self.model(t, x)
            return out

    return Wrapper(field)


def trained_net(dim: int, train_steps: int) -> MLP:
    torch.manual_seed(0)
    net = MLP(dim, hidden=256, depth=3)
    if dim == 2 and train_steps > 0:
        batches = PairedBatches(GaussianMixture.standard_normal(2), Moons(), batch_size=256)
        trainer = Trainer(
            net,
            VelocityObjective(LinearInterpolant()),
            batches,
            lr=1e-3,
            ema_decay=None,
            grad_clip=None,
            seed=0,
        )
        trainer.fit(train_steps, progress=False)
    return net.eval().requires_grad_(False)


def points(dim: int, n: int) -> Tensor:
    gen = torch.Generator().manual_seed(12345)
    if dim == 2:
        return Moons().sample(n, gen)
    return torch.randn(n, dim, generator=gen)


def bench(
    dim: int, n: int, reps: int, train_steps: int, args: argparse.Namespace
) -> dict[str, Any]:
    from flow_matching.solver import ODESolver

    t0 = time.perf_counter()
    net = trained_net(dim, train_steps)
    train_s = time.perf_counter() - t0
    x = points(dim, n)
    generic_field, theirs_field = Counted(net), Counted(net)
    solver = ODESolver(velocity_model=flow_matching_wrapper(theirs_field))
    grid = time_grid(STEPS, 1.0, 0.0)
    nfe: dict[str, int] = {}

    def ours() -> Tensor:  # the MLP itself: its forward-mode divergence
        res = log_likelihood(
            net,
            x,
            standard_normal_log_prob,
            integrator=Midpoint(),
            grid=grid,
            divergence=ExactDivergence(),
        )
        nfe["ours"] = res.nfe
        return res.log_prob

    def generic() -> Tensor:  # a wrapped field: torch.func vmap over vjp
        res = log_likelihood(
            generic_field,
            x,
            standard_normal_log_prob,
            integrator=Midpoint(),
            grid=grid,
            divergence=ExactDivergence(structured=False),
        )
        return res.log_prob

    def theirs() -> Tensor:
        _, log_p = solver.compute_likelihood(
            x_1=x,
            log_p0=standard_normal_log_prob,
            step_size=1.0 / STEPS,
            method="midpoint",
            exact_divergence=True,
        )
        return log_p.detach()

    # one call each for the numbers (and the NFE), then the timed rounds
    generic_field.count = theirs_field.count = 0
    lp_ours, lp_generic, lp_theirs = ours(), generic(), theirs()
    nfe_ours, nfe_theirs = nfe["ours"], theirs_field.count
    nll_ours, nll_theirs = -float(lp_ours.mean()), -float(lp_theirs.mean())
    load_before = wait_for_quiet(args.max_load, args.max_wait)
    t_ours, t_generic, t_theirs = alternate([ours, generic, theirs], reps, warmup=0)
    return {
        "dim": dim,
        "points": n,
        "steps": STEPS,
        "reps": reps,
        "field": f"trained {train_steps} steps on moons" if dim == 2 else "untrained (seed 0)",
        "train_s": train_s,
        "load_before": load_before,
        "load_after": load_average(),
        "nfe_ours": nfe_ours,
        "nfe_flow_matching": nfe_theirs,
        "nll_ours": nll_ours,
        "nll_flow_matching": nll_theirs,
        "abs_nll_diff": abs(nll_ours - nll_theirs),
        "max_abs_logp_diff": float((lp_ours - lp_theirs).abs().max()),
        "max_abs_logp_diff_generic": float((lp_generic - lp_theirs).abs().max()),
        "nfe_generic": generic_field.count,
        "ours_s": t_ours,
        "ours_generic_s": t_generic,
        "flow_matching_s": t_theirs,
        "speedup": t_theirs / t_ours,
        "speedup_generic": t_theirs / t_generic,
    }


def _step_budget(report: dict[str, Any]) -> list[str]:
    """The per-step times at d = 2 behind the 3× target, from this run's medians."""
    for r in report["results"]:
        if r["dim"] == 2 and not report["quick"]:
            theirs, ours = 1e3 * r["flow_matching_s"] / STEPS, 1e3 * r["ours_s"] / STEPS
            return [
                "",
                f"At d = 2 in this run a flow_matching step takes {theirs:.1f} ms, so 3× allows "
                f"{theirs / 3:.1f} ms per step; ours takes {ours:.1f} ms. Closing that gap means "
                f"cutting our step to within {theirs / 3 - FLOOR_MS:.1f} ms of the ~{FLOOR_MS} ms "
                "that its "
                "forward passes and tangent products need; cheaper forward passes would speed "
                "flow_matching up by the same amount of time, since both sides share them.",
            ]
    return []


def markdown(report: dict[str, Any]) -> str:
    quick = " (quick)" if report["quick"] else ""
    m = report["machine"]
    rows = [
        [
            r["dim"],
            r["points"],
            r["field"],
            f"{r['nll_ours']:.6f}",
            f"{r['nll_flow_matching']:.6f}",
            f"{r['abs_nll_diff']:.1e}",
            f"{r['max_abs_logp_diff']:.1e}",
            f"{r['nfe_ours']} / {r['nfe_flow_matching']}",
            r["ours_s"],
            r["ours_generic_s"],
            r["flow_matching_s"],
            f"{r['speedup']:.2f}× / {r['speedup_generic']:.2f}×",
            f"{r['load_before']:.2f}",
        ]
        for r in report["results"]
    ]
    lines = [
        f"# Likelihood{quick}",
        "",
        f"Exact-divergence log-likelihood, {STEPS} midpoint steps from t = 1 to 0, base N(0, I), "
        "the same field (`interpolants.MLP(d, hidden=256, depth=3)`) and the same points on "
        "both sides. Ours: `log_likelihood(..., integrator=Midpoint(), grid=time_grid(20, 1.0, "
        "0.0), divergence=ExactDivergence())`, which asks the MLP for its forward-mode "
        "divergence (`MLP.forward_and_divergence`); *ours generic*: the same with "
        "`ExactDivergence(structured=False)`, the `torch.func` path every field gets; "
        "flow_matching: `ODESolver.compute_likelihood(..., "
        'step_size=0.05, method="midpoint", exact_divergence=True)`. Seconds per call '
        "(median of 15 alternating calls at d = 2, 3 at d = 64 and in a quick run, after one "
        "call each for the numbers); torch threads: "
        f"{m['torch_threads']}; {m['cpu']} ({m['cpu_count']} cores, shared with other jobs).",
        "",
        table(
            [
                "d",
                "points",
                "field",
                "NLL ours",
                "NLL flow_matching",
                "abs ΔNLL",
                "max abs Δlog p",
                "NFE ours / theirs",
                "ours (s)",
                "ours generic (s)",
                "flow_matching (s)",
                "speed-up ours / generic",
                "load",
            ],
            rows,
        ),
        "",
    ]
    lines += [
        "Where the time goes (profiled): an exact divergence needs the work of D "
        "Jacobian–vector products per field evaluation on every side. flow_matching loops over "
        "D `autograd.grad(..., create_graph=True)` calls; ours generic batches the D "
        "vector–Jacobian products with `torch.func.vmap` over `torch.func.vjp`; ours (the MLP's "
        "own path) folds the x-columns of the first layer and the output layer into the hidden "
        "weights next to them and carries the tangents of blocks of n = 4 directions (n = D "
        "at d = 2) between them as (B, 256) × (256, n·256) and (B, n·256) × (n·256, 256) "
        "matrix products, which run near the CPU's peak matrix "
        "throughput with no autograd bookkeeping. Both of our paths also skip the divergence at "
        "the midpoint rule's first stage, whose derivative has weight 0 in the update (the field "
        "is still evaluated there: the NFE are equal), so half of our evaluations are plain "
        "forward passes. Both sides call the same `MLP.forward`, which embeds a time shared by "
        "the batch once (both solvers pass one time per call), so that saving reaches "
        "flow_matching too. At d = 2 the D = 2 tangent passes cost twice the forward pass: by "
        "operation count (this MLP, 1000 points: ~0.13 G multiply–adds for a forward pass, "
        "~0.39 G with the divergence on either side's path) a midpoint step costs us ~0.52 G and "
        "flow_matching ~0.78 G, 1.5× before overheads. Profiled on this core (one torch "
        "thread): a forward pass takes ~2.2 ms, 1.4 ms of it in its two 256 × 256 products, "
        "and the four tangent products take ~2.8 ms at peak throughput, so our two forward "
        f"passes and the tangents alone take ~{FLOOR_MS} ms per step; the SiLU slopes, the "
        "folds and the integrator add the rest.",
        *_step_budget(report),
        "",
    ]
    for r in report["results"]:
        agree = "met" if r["abs_nll_diff"] <= 1e-3 else "**not met**"
        fast = "met" if r["speedup"] >= 3 else "**not met**"  # ours = the MLP's own path
        lines.append(
            f"- d = {r['dim']}: |ΔNLL| ≤ 1e-3 {agree} ({r['abs_nll_diff']:.1e}); "
            f"≥ 3× faster {fast} ({r['speedup']:.2f}×)."
        )
        if r["speedup"] < 1:
            lines.append(f"  **Where a peer wins:** flow_matching is faster at d = {r['dim']}.")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="250 points, 3 rounds")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: default)")
    parser.add_argument("--max-load", type=float, default=1.5, help="wait below this load")
    parser.add_argument("--max-wait", type=float, default=90.0, help="longest wait (s)")
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    n = 250 if args.quick else 1000
    results = []
    for dim in (2, 64):
        reps = 3 if args.quick or dim == 64 else 15  # d = 2: ~1 s a round, so more rounds
        print(f"d = {dim}: {n} points, {reps} rounds", flush=True)
        res = bench(dim, n, reps, 500, args)
        results.append(res)
        print(
            f"  NLL ours {res['nll_ours']:.6f} flow_matching {res['nll_flow_matching']:.6f} "
            f"(|Δ| {res['abs_nll_diff']:.1e}); ours {res['ours_s']:.3f} s, flow_matching "
            f"{res['flow_matching_s']:.3f} s ({res['speedup']:.2f}×)",
            flush=True,
        )
    report = {
        "suite": "likelihood",
        "quick": args.quick,
        "machine": machine(),
        "versions": versions("flow_matching", "torchdiffeq"),
        "results": results,
    }
    suite = "likelihood_quick" if args.quick else "likelihood"
    write_results(suite, report, markdown(report))
    print(f"wrote benchmarks/results/{suite}.json and .md")


if __name__ == "__main__":
    main()
