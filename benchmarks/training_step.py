"""Benchmark one training step against torchcfm, flow_matching and a hand-written floor.

    python benchmarks/training_step.py             # batch 256 and 1024 (a few minutes)
    python benchmarks/training_step.py --quick     # batch 256 only, fewer repetitions
    python benchmarks/training_step.py --threads 0 # torch's default thread count (default: 1)

Every side trains the *same* network (:class:`Net`, a 3×256 SiLU MLP on [x, t], one module
class, every copy starting from the same weights) with the same optimiser (Adam, lr 1e-3) on
the same problem: x0 ~ N(0, I) in 2D, x1 ~ moons, both drawn each step from the same sources
(``GaussianMixture.standard_normal(2)``, ``datasets.Moons()``), so data generation costs every
side the same. One step is: draw (and pair) a batch, form x_t and the target, one forward and
backward pass, one Adam step.

Sides:

* ``floor``: the minimal loop, x_t = (1 − t)x0 + t·x1, target x1 − x0, MSE, step;
* ``ours``: :class:`~interpolants.Trainer` (``ema_decay=None, grad_clip=None``) with
  ``VelocityObjective(LinearInterpolant())`` and a coupling, either *inline*
  (``PairedBatches``) or *overlapped*: in background threads of the same process or in
  producer processes (``PrefetchedBatches(paired, workers=k, backend="thread" | "process")``)
  or in a ``DataLoader`` worker process
  (``DataLoader(CoupledBatchStream(...), batch_size=None, num_workers=1)``), the coupling of
  the next batches running while the main thread steps; one row also shows the defaults
  (EMA 0.999 and clipping at 1.0);
* ``torchcfm``: ``ConditionalFlowMatcher(sigma=0)`` / ``ExactOptimalTransportConditional
  FlowMatcher(sigma=0)``: ``sample_location_and_conditional_flow`` + model + MSE + step;
* ``flow_matching``: ``AffineProbPath(CondOTScheduler())``, ``path.sample(...)`` + MSE + step.

Every side minimises the same MSE, mean|m̂ − y|² over the batch and the coordinates (ours by
one fused ``mse_loss``, :meth:`~interpolants.Objective.sample_mean_loss`), so the gradients
agree.

Timings are medians of alternating blocks of steps (every side once per round, after a warm-up
block each), in two groups: the independent loops (short blocks, many rounds: the 1.05× target
is a small difference) and the coupled loops (longer blocks, see the prefetch note below).
The machine's load average is recorded before each group; the suite first waits (up to
``--max-wait`` seconds) for the 1-minute load to fall below ``--max-load``. Nothing here is
asserted by the tests.
"""

import argparse
import copy
import os
import time
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from common import alternate, machine, table, versions, write_results
from interpolants import (
    Coupling,
    GaussianMixture,
    IndependentCoupling,
    LinearInterpolant,
    OTCoupling,
    PairedBatches,
    Trainer,
    VelocityObjective,
)
from interpolants.coupling import SinkhornCoupling
from interpolants.data import CoupledBatchStream, Moons, PrefetchedBatches

DIM = 2


class Net(nn.Module):
    """The network every side trains: ``depth`` × ``hidden`` SiLU MLP on [x, t] (t as a column).

    Called as ``net(t, x)`` with ``t`` of shape ``()``, ``(B,)`` or ``(B, 1)``.
    """

    def __init__(self, dim: int, hidden: int = 256, depth: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Linear(dim + 1, hidden), nn.SiLU()]
        for _ in range(depth - 1):
            layers += [nn.Linear(hidden, hidden), nn.SiLU()]
        layers.append(nn.Linear(hidden, dim))
        self.net = nn.Sequential(*layers)

    def forward(self, t: Tensor, x: Tensor) -> Tensor:
        tt = t.to(x.dtype).reshape(-1, 1).expand(x.shape[0], 1)
        out: Tensor = self.net(torch.cat([x, tt], dim=1))
        return out


def load_average() -> float:
    return os.getloadavg()[0]


def wait_for_quiet(max_load: float, max_wait: float) -> float:
    """Sleep while the 1-minute load exceeds ``max_load`` (at most ``max_wait`` s); the load."""
    deadline = time.monotonic() + max_wait
    load = load_average()
    while load > max_load and time.monotonic() < deadline:
        print(f"  load {load:.2f} > {max_load}: waiting 30 s", flush=True)
        time.sleep(30)
        load = load_average()
    return load


class Sources:
    """x0 ~ N(0, I) and x1 ~ moons, drawn with a side's own generator (same seed everywhere)."""

    def __init__(self) -> None:
        self.base = GaussianMixture.standard_normal(DIM)
        self.target = Moons()

    def paired(self, batch: int, coupling: Coupling | None = None) -> PairedBatches:
        return PairedBatches(self.base, self.target, batch, coupling)

    def draw(self, batch: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
        return self.base.sample(batch, gen), self.target.sample(batch, gen)


class Side:
    """One training loop: ``step()`` takes one optimiser step; ``close()`` frees workers."""

    def __init__(
        self,
        name: str,
        step: Callable[[], Any],
        close: Callable[[], None] | None = None,
        pair_s: float | None = None,
    ) -> None:
        self.name, self.step = name, step
        self._close = close
        self.pair_s = pair_s  # overlapped sides: seconds per coupled batch, measured inline

    def close(self) -> None:
        if self._close is not None:
            self._close()


FLOOR = "floor (hand-written)"
OURS = "ours independent"
OURS_DEFAULTS = "ours independent, EMA + clip (defaults)"
CFM = "torchcfm independent"
FM = "flow_matching independent"
OURS_OT = "ours OT, inline"
OURS_OT_T = "ours OT, overlapped (1 thread)"
OURS_OT_T2 = "ours OT, overlapped (2 threads)"
OURS_OT_P = "ours OT, overlapped (1 process)"
OURS_OT_P2 = "ours OT, overlapped (2 processes)"
OURS_OT_P_NA = "ours OT, overlapped (1 process, no assist)"
OURS_OT_W = "ours OT, overlapped (1 worker process)"
CFM_OT = "torchcfm OT"
OURS_SK = "ours Sinkhorn, inline"
OURS_SK_T = "ours Sinkhorn, overlapped (1 thread)"
OURS_SK_W = "ours Sinkhorn, overlapped (1 worker process)"
OURS_SK_P = "ours Sinkhorn, overlapped (1 process)"
PREROLL_STEPS = 3
INDEPENDENT_GROUP = (FLOOR, OURS, OURS_DEFAULTS, CFM, FM)
COUPLED_GROUP = (
    OURS,
    CFM,
    OURS_OT,
    OURS_OT_T,
    OURS_OT_T2,
    OURS_OT_P,
    OURS_OT_P2,
    OURS_OT_P_NA,
    OURS_OT_W,
    CFM_OT,
    OURS_SK,
    OURS_SK_T,
    OURS_SK_W,
    OURS_SK_P,
)
OVERLAPPED_OT = (OURS_OT_T, OURS_OT_T2, OURS_OT_P, OURS_OT_P2, OURS_OT_P_NA, OURS_OT_W)


def make_side(name: str, net0: Net, sources: Sources, batch: int) -> Side:
    """A fresh training loop called ``name`` on a copy of ``net0``."""
    net = copy.deepcopy(net0)

    def peer_loop(pair_and_target: Callable[[Tensor, Tensor], tuple[Tensor, ...]]) -> Side:
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        gen = torch.Generator().manual_seed(0)

        def step() -> None:
            x0, x1 = sources.draw(batch, gen)
            t, xt, ut = pair_and_target(x0, x1)
            loss = (net(t, xt) - ut).square().mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()

        return Side(name, step)

    def ours(coupling: Coupling, mode: str | dict[str, Any], defaults: bool = False) -> Side:
        """``mode``: "inline", "worker", or the keyword arguments of ``PrefetchedBatches``."""
        paired = sources.paired(batch, coupling)
        source: Any = paired
        if mode == "worker":
            source = DataLoader(CoupledBatchStream(paired, seed=0), batch_size=None, num_workers=1)
        elif isinstance(mode, dict):
            source = PrefetchedBatches(paired, seed=0, **mode)
        kwargs: dict[str, Any] = {} if defaults else {"ema_decay": None, "grad_clip": None}
        trainer = Trainer(
            net, VelocityObjective(LinearInterpolant()), source, lr=1e-3, seed=0, **kwargs
        )

        if mode == "inline":
            return Side(name, trainer.step)

        def close() -> None:
            trainer._iterator = None  # drops the DataLoader iterator: its worker exits
            if isinstance(source, PrefetchedBatches):
                source.close()

        gen, times = torch.Generator().manual_seed(1), []
        for _ in range(3):
            start = time.perf_counter()
            paired(gen)
            times.append(time.perf_counter() - start)
        return Side(name, trainer.step, close, pair_s=sorted(times)[1])

    if name == FLOOR:

        def floor_target(x0: Tensor, x1: Tensor) -> tuple[Tensor, Tensor, Tensor]:
            t = torch.rand(x0.shape[0], 1)
            return t, (1 - t) * x0 + t * x1, x1 - x0

        return peer_loop(floor_target)
    if name == FM:
        from flow_matching.path import AffineProbPath
        from flow_matching.path.scheduler import CondOTScheduler

        path = AffineProbPath(scheduler=CondOTScheduler())

        def fm_target(x0: Tensor, x1: Tensor) -> tuple[Tensor, Tensor, Tensor]:
            s = path.sample(t=torch.rand(x0.shape[0]), x_0=x0, x_1=x1)
            return s.t, s.x_t, s.dx_t

        return peer_loop(fm_target)
    if name == CFM:
        from torchcfm.conditional_flow_matching import ConditionalFlowMatcher

        return peer_loop(ConditionalFlowMatcher(sigma=0.0).sample_location_and_conditional_flow)
    if name == CFM_OT:
        from torchcfm.conditional_flow_matching import (
            ExactOptimalTransportConditionalFlowMatcher,
        )

        ot_cfm = ExactOptimalTransportConditionalFlowMatcher(sigma=0.0)
        return peer_loop(ot_cfm.sample_location_and_conditional_flow)
    ours_sides: dict[str, tuple[Coupling, str | dict[str, Any], bool]] = {
        OURS: (IndependentCoupling(), "inline", False),
        OURS_DEFAULTS: (IndependentCoupling(), "inline", True),
        OURS_OT: (OTCoupling(), "inline", False),
        OURS_OT_T: (OTCoupling(), {"backend": "thread"}, False),
        OURS_OT_T2: (OTCoupling(), {"backend": "thread", "workers": 2}, False),
        OURS_OT_P: (OTCoupling(), {"backend": "process"}, False),
        OURS_OT_P2: (OTCoupling(), {"backend": "process", "workers": 2}, False),
        OURS_OT_P_NA: (OTCoupling(), {"backend": "process", "assist": False}, False),
        OURS_OT_W: (OTCoupling(), "worker", False),
        OURS_SK: (SinkhornCoupling(), "inline", False),
        OURS_SK_T: (SinkhornCoupling(), {"backend": "thread"}, False),
        OURS_SK_P: (SinkhornCoupling(), {"backend": "process"}, False),
        OURS_SK_W: (SinkhornCoupling(), "worker", False),
    }
    coupling, mode, defaults = ours_sides[name]
    return ours(coupling, mode, defaults)


def time_group(
    names: tuple[str, ...], batch: int, steps: int, reps: int, args: argparse.Namespace
) -> dict[str, Any]:
    """ms/step of each side, timed in alternation in blocks of ``steps`` steps."""
    torch.manual_seed(0)
    net0, sources = Net(DIM), Sources()
    sides = [make_side(name, net0, sources, batch) for name in names]
    load_before = wait_for_quiet(args.max_load, args.max_wait)

    def block(side: Side) -> Callable[[], None]:
        def run() -> None:
            for _ in range(steps):
                side.step()

        return run

    def preroll(side: Side) -> Callable[[], None]:
        def run() -> None:  # untimed: brings the worker to its steady state
            for _ in range(PREROLL_STEPS):
                side.step()

        return run

    def settle(side: Side) -> Callable[[], None]:
        def run() -> None:  # untimed: the worker refills its queue before the next side runs
            time.sleep(4 * (side.pair_s or 0.0) + 0.01)

        return run

    fns: list[Callable[[], None]] = []
    timed: list[Side | None] = []
    for side in sides:
        if side.pair_s is not None:
            fns.append(preroll(side))
            timed.append(None)
        fns.append(block(side))
        timed.append(side)
        if side.pair_s is not None:
            fns.append(settle(side))
            timed.append(None)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torchcfm/POT warnings
            medians = alternate(fns, reps, warmup=1)
    finally:
        for side in sides:
            side.close()
    return {
        "steps_per_block": steps,
        "reps": reps,
        "load_before": load_before,
        "load_after": load_average(),
        "ms_per_step": {s.name: 1e3 * m / steps for s, m in zip(timed, medians) if s is not None},
    }


def bench(
    batch: int, plan: tuple[tuple[int, int], tuple[int, int]], args: argparse.Namespace
) -> dict[str, Any]:
    (steps_a, reps_a), (steps_b, reps_b) = plan
    print(f"batch {batch}: independent group, {reps_a} rounds × {steps_a} steps", flush=True)
    a = time_group(INDEPENDENT_GROUP, batch, steps_a, reps_a, args)
    print(f"batch {batch}: coupled group, {reps_b} rounds × {steps_b} steps", flush=True)
    b = time_group(COUPLED_GROUP, batch, steps_b, reps_b, args)
    ma, mb = a["ms_per_step"], b["ms_per_step"]
    for group in (a, b):
        for name, v in group["ms_per_step"].items():
            print(f"  {name:42s} {v:8.3f} ms/step", flush=True)
    ratios = {
        "ours_independent_over_floor": ma[OURS] / ma[FLOOR],
        "ours_defaults_over_floor": ma[OURS_DEFAULTS] / ma[FLOOR],
        "torchcfm_independent_over_floor": ma[CFM] / ma[FLOOR],
        "flow_matching_independent_over_floor": ma[FM] / ma[FLOOR],
        "ours_ot_inline_over_ours_independent": mb[OURS_OT] / mb[OURS],
        "ours_ot_thread_over_ours_independent": mb[OURS_OT_T] / mb[OURS],
        "ours_ot_2_threads_over_ours_independent": mb[OURS_OT_T2] / mb[OURS],
        "ours_ot_process_over_ours_independent": mb[OURS_OT_P] / mb[OURS],
        "ours_ot_2_processes_over_ours_independent": mb[OURS_OT_P2] / mb[OURS],
        "ours_ot_worker_over_ours_independent": mb[OURS_OT_W] / mb[OURS],
        "ours_ot_overlapped_best_over_ours_independent": min(mb[k] for k in OVERLAPPED_OT)
        / mb[OURS],
        "torchcfm_ot_over_torchcfm_independent": mb[CFM_OT] / mb[CFM],
        "torchcfm_ot_over_ours_ot_inline": mb[CFM_OT] / mb[OURS_OT],
        "torchcfm_ot_over_ours_ot_overlapped_best": mb[CFM_OT] / min(mb[k] for k in OVERLAPPED_OT),
        "ours_sinkhorn_inline_over_ours_independent": mb[OURS_SK] / mb[OURS],
        "ours_sinkhorn_thread_over_ours_independent": mb[OURS_SK_T] / mb[OURS],
        "ours_sinkhorn_worker_over_ours_independent": mb[OURS_SK_W] / mb[OURS],
        "ours_sinkhorn_process_over_ours_independent": mb[OURS_SK_P] / mb[OURS],
    }
    return {"batch": batch, "independent_group": a, "coupled_group": b, "ratios": ratios}


def markdown(report: dict[str, Any]) -> str:
    quick = " (quick)" if report["quick"] else ""
    lines = [
        f"# Training step{quick}",
        "",
        f"ms per optimiser step (median of alternating blocks), 2D N(0, I) → moons, the same "
        f"3×256 SiLU MLP on [x, t] and Adam(1e-3) on every side; torch threads: "
        f"{report['machine']['torch_threads']}; {report['machine']['cpu']} "
        f"({report['machine']['cpu_count']} cores, shared with other jobs).",
        "",
        "Every side minimises the MSE mean|m̂ − y|² over batch and coordinates, so the "
        "gradients agree. EMA and gradient clipping are off in our rows except the one "
        "marked *defaults*. *Overlapped*: the coupling of the "
        "next batches runs while the main thread steps, in background threads of the same "
        "process or in producer processes (`PrefetchedBatches`, 1 or 2 of either; a process "
        "returns each batch as raw bytes through a pipe; the training loop *assists*, making "
        "an upcoming batch itself when the next one is not ready, except in the row marked "
        "*no assist*) or in one `DataLoader` worker process "
        "(`CoupledBatchStream`, whose tensors travel through shared-memory files); it only "
        "helps when a core is free (this machine has 2). Each "
        f"timed block of an overlapped side follows {PREROLL_STEPS} untimed steps (the "
        "producers reach their steady state) and is followed by an untimed pause (they refill "
        "their 2-batch queues then, not while the next side is timed).",
    ]
    for res in report["results"]:
        a, b, r = res["independent_group"], res["coupled_group"], res["ratios"]
        ma, mb = a["ms_per_step"], b["ms_per_step"]
        rows_a = [[name, v, v / ma[FLOOR]] for name, v in ma.items()]
        rows_b = [[name, v, v / mb[OURS]] for name, v in mb.items()]
        lines += [
            "",
            f"## Batch {res['batch']}",
            "",
            f"Independent coupling: {a['reps']} alternating rounds of {a['steps_per_block']} "
            f"steps per side; 1-minute load {a['load_before']:.2f} before, "
            f"{a['load_after']:.2f} after.",
            "",
            table(["side", "ms/step", "× floor"], rows_a),
            "",
            f"Couplings: {b['reps']} alternating rounds of {b['steps_per_block']} steps per side "
            f"(ours independent and torchcfm independent timed again as the reference); "
            f"1-minute load {b['load_before']:.2f} before, {b['load_after']:.2f} after.",
            "",
            table(["side", "ms/step", "× ours independent"], rows_b),
            "",
        ]
        if res["batch"] == 256:
            targets = [
                ("ours independent ≤ 1.05 × floor", r["ours_independent_over_floor"], 1.05),
                (
                    "ours OT (inline) ≤ 1.5 × ours independent",
                    r["ours_ot_inline_over_ours_independent"],
                    1.5,
                ),
                (
                    "ours OT (overlapped, best) ≤ 1.5 × ours independent",
                    r["ours_ot_overlapped_best_over_ours_independent"],
                    1.5,
                ),
            ]
            rows = [[n, v, "yes" if v <= lim else "**no**"] for n, v, lim in targets]
            lines += [table(["target (batch 256)", "ratio", "met"], rows), ""]
        lines.append(
            f"torchcfm's OT step costs {r['torchcfm_ot_over_torchcfm_independent']:.2f}× its "
            f"independent step; ours costs {r['ours_ot_inline_over_ours_independent']:.2f}× "
            f"(inline), {r['ours_ot_thread_over_ours_independent']:.2f}× (1 thread), "
            f"{r['ours_ot_2_threads_over_ours_independent']:.2f}× (2 threads), "
            f"{r['ours_ot_process_over_ours_independent']:.2f}× (1 process), "
            f"{r['ours_ot_2_processes_over_ours_independent']:.2f}× (2 processes) and "
            f"{r['ours_ot_worker_over_ours_independent']:.2f}× (1 `DataLoader` worker) ours "
            "independent."
        )
        wins = [n for n in (CFM, FM) if ma[n] < ma[OURS]]
        if wins:
            lines.append(
                "**Where a peer wins:** "
                + ", ".join(f"{n} ({ma[n]:.3f} ms)" for n in wins)
                + f" {'is' if len(wins) == 1 else 'are'} faster per step than ours independent "
                f"({ma[OURS]:.3f} ms)."
            )
        if mb[CFM_OT] < mb[OURS_OT]:
            lines.append(
                f"**Where a peer wins:** torchcfm's OT step ({mb[CFM_OT]:.3f} ms) is faster than "
                f"ours inline ({mb[OURS_OT]:.3f} ms) (its plan is sampled with replacement, "
                "duplicating and dropping points; ours is an exact permutation)."
            )
        best = min(OVERLAPPED_OT, key=lambda k: mb[k])
        if mb[best] > mb[OURS_OT]:
            lines.append(
                f"Overlapping did not pay here ({mb[best]:.3f} vs {mb[OURS_OT]:.3f} ms "
                "inline): with the machine's 2 cores already loaded there is no free core for "
                "the producers."
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="batch 256 only, fewer repetitions")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: default)")
    parser.add_argument("--max-load", type=float, default=1.5, help="wait below this load")
    parser.add_argument("--max-wait", type=float, default=90.0, help="longest wait (s)")
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    # per batch size: (steps, rounds) for the independent group, then the coupled group
    plans = (
        [(256, ((10, 31), (40, 7)))]
        if args.quick
        else [(256, ((10, 61), (40, 15))), (1024, ((5, 21), (20, 7)))]
    )
    results = [bench(batch, plan, args) for batch, plan in plans]
    report = {
        "suite": "training_step",
        "quick": args.quick,
        "machine": machine(),
        "versions": versions("torchcfm", "flow_matching"),
        "problem": "2D N(0, I) -> moons, Net(2, 256, 3) on [x, t], Adam(1e-3)",
        "results": results,
    }
    suite = "training_step_quick" if args.quick else "training_step"
    write_results(suite, report, markdown(report))
    print(f"wrote benchmarks/results/{suite}.json and .md")


if __name__ == "__main__":
    main()
