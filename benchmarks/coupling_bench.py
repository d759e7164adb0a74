r"""The measurements of :mod:`coupling`: one function per kind of table row.

Exact OT against torchcfm (:func:`bench_exact`) and entropic OT against POT
(:func:`bench_sinkhorn`) on the N(0, I) grid; the issue-17 rows: exact OT in 2-D at large n
with its certificate and peak memory (:func:`bench_exact_large`), Sinkhorn at small ε
(:func:`bench_small_eps`) and the Schrödinger bridge at small σ (:func:`bench_bridge`).
"""

import json
import os
import time
import warnings
from typing import Any

import numpy as np
import ot
import torch

from common import alternate
from coupling_memory import peak_memory
from coupling_problems import problem
from interpolants import OTCoupling
from interpolants.coupling import (
    SchrodingerBridgeCoupling,
    SinkhornCoupling,
    SquaredEuclideanCost,
    sinkhorn,
)


def bench_exact_large(
    n: int, kinds: tuple[str, ...], reps: int, peer: bool
) -> list[dict[str, Any]]:
    """Exact OT in 2-D at large n: our time (median of ``reps``), the certificate's gap, peak
    memory against the float64 cost matrix, and torchcfm's time when ``peer``."""
    from torchcfm.optimal_transport import OTPlanSampler

    from interpolants.coupling import AuctionSolver

    rows = []
    for kind in kinds:
        load_before = os.getloadavg()[0]
        x0, x1 = problem(kind, n)
        ours = OTCoupling()
        matrix = OTCoupling(solver=AuctionSolver(max_point_dim=0))  # the path via the matrix
        times, cpu, via_matrix = [], [], []
        for _ in range(reps):
            start, start_cpu = time.perf_counter(), time.process_time()
            p = ours(x0, x1)
            times.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
            start = time.perf_counter()
            matrix(x0, x1)
            via_matrix.append(time.perf_counter() - start)
        # the optimum with its certificate, from the points (the cost OTCoupling solves:
        # squared distances of the float32 points, evaluated in float64), and our total on it
        f0, f1 = x0.double().numpy(), x1.double().numpy()
        cert = AuctionSolver().certified_points(f0, f1)
        i0, i1 = p.index0.numpy(), p.index1.numpy()
        total = float(np.square(f0[i0] - f1[i1]).sum())
        best = float(np.square(f0 - f1[cert.perm]).sum())
        row: dict[str, Any] = {
            "n": n,
            "d": 2,
            "kind": kind,
            "ours_s": float(np.median(times)),
            "ours_cpu_s": float(np.median(cpu)),
            "matrix_path_s": float(np.median(via_matrix)),
            "solver": repr(ours.solver.select(2, n)),  # type: ignore[attr-defined]
            "certified_gap_rel": cert.gap / abs(total),
            "same_total_as_certified": abs(total - best) <= 2 * n * cert.tol,
            "cost_matrix_mib": n * n * 8 / 2**20,
            **peak_memory(n, kind),
        }
        if peer:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                start = time.perf_counter()
                OTPlanSampler(method="exact").sample_plan(x0, x1)
                row["torchcfm_s"] = time.perf_counter() - start
        row["load_1min"] = [load_before, os.getloadavg()[0]]
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def bench_small_eps(
    n: int,
    regs: tuple[float, ...],
    tol: float,
    kinds: tuple[str, ...] = ("gauss",),
    reps: int = 1,
    peers: bool = False,
) -> list[dict[str, Any]]:
    """Our Sinkhorn at several relative ε on 2-D batches, the median of ``reps`` runs each, in
    wall and CPU time (one torch thread): ``gauss`` is one N(0, I) batch (its own seed, the
    rows of the issue's target), the other kinds those of :func:`problem`. With ``peers``:
    also our dense iterations (``truncate=False``, the path before the truncated kernels) and
    POT's ``ot.sinkhorn_epsilon_scaling`` (float64, same ε and stopping threshold) at the
    smallest reg."""
    # warm-up: the compiled kernels of the truncated path (loaded from numba's disk cache)
    wx0, wx1 = problem("moons", 512)
    wcost = SquaredEuclideanCost()(wx0, wx1)
    wa = torch.full((512,), 1.0 / 512)
    sinkhorn(wcost, wa, wa, 1e-3 * float(wcost.mean()), tol=tol, max_iter=2000)
    rows = []
    for kind in kinds:
        if kind == "gauss":
            gen = torch.Generator().manual_seed(7)
            x0, x1 = torch.randn(n, 2, generator=gen), torch.randn(n, 2, generator=gen)
        else:
            x0, x1 = problem(kind, n)
        cost = SquaredEuclideanCost()(x0, x1)
        a = torch.full((n,), 1.0 / n)
        for reg in regs:
            eps = reg * float(cost.mean())
            wall, cpu_s = [], []
            for _ in range(reps):
                start, cpu = time.perf_counter(), time.process_time()
                res = sinkhorn(cost, a, a, eps, tol=tol, max_iter=100_000)
                wall.append(time.perf_counter() - start)
                cpu_s.append(time.process_time() - cpu)
            row = {
                "n": n,
                "kind": kind,
                "reg_relative": reg,
                "eps": eps,
                "tol": tol,
                "reps": reps,
                "ours_s": float(np.median(wall)),
                "ours_cpu_s": float(np.median(cpu_s)),
                "ours_s_range": [min(wall), max(wall)],
                "iterations": res.n_iter,
                "converged": res.converged,
                "error": res.error,
                "load_1min": os.getloadavg()[0],
            }
            if peers and reg == min(regs):
                cpu = time.process_time()
                dense = sinkhorn(cost, a, a, eps, tol=tol, max_iter=100_000, truncate=False)
                row["dense_cpu_s"] = time.process_time() - cpu
                row["dense_iterations"] = dense.n_iter
                a_np, cost_np = np.full(n, 1.0 / n), cost.double().numpy()
                cpu = time.process_time()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    plan = ot.bregman.sinkhorn_epsilon_scaling(
                        a_np, a_np, cost_np, eps, stopThr=tol, numItermax=100_000
                    )
                row["pot_eps_scaling_cpu_s"] = time.process_time() - cpu
                row["pot_eps_scaling_error"] = float(np.linalg.norm(plan.sum(1) - a_np))
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


def bench_bridge(n: int, sigmas: tuple[float, ...]) -> list[dict[str, Any]]:
    """``SchrodingerBridgeCoupling`` on data of scale 1e3 (float32 and float64) at small σ."""
    rows = []
    for dtype in (torch.float32, torch.float64):
        gen = torch.Generator().manual_seed(0)
        x0 = 1e3 * torch.randn(n, 2, generator=gen, dtype=dtype)
        x1 = 1e3 * torch.randn(n, 2, generator=gen, dtype=dtype) + 500
        for sigma in sigmas:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                start = time.perf_counter()
                p = SchrodingerBridgeCoupling(sigma)(x0, x1, return_plan=True)
                seconds = time.perf_counter() - start
            plan = p.plan.double()
            row = {
                "n": n,
                "sigma": sigma,
                "dtype": str(dtype).replace("torch.", ""),
                "seconds": seconds,
                "row_error": float(torch.linalg.vector_norm(plan.sum(1) - 1 / n)),
                "column_error": float(torch.linalg.vector_norm(plan.sum(0) - 1 / n)),
                "warning": str(caught[0].message) if caught else "",
            }
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


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
        "solver": repr(ours.solver.select(d, n)),  # type: ignore[attr-defined]
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
