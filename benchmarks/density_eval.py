r"""Evaluation cost and integrator error of the flows of :mod:`density`.

CPU-seconds of ``log_prob`` and ``sample``, the sweep of integrators of :data:`SWEEP` against a
Dopri5 reference (:func:`integrator_sweep`), the RK4 error on the digits
(:func:`digits_integrator_check`) and the grids chosen by
:func:`~interpolants.density.calibrate` measured on the test points (:func:`calibrated_cost`).
"""

import statistics
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import torch
from torch import Tensor, nn

from density_prep import Preprocessed
from density_tasks import Task
from interpolants import ODE, Dopri5, Integrator, log_likelihood, time_grid
from interpolants.density import InterpolantFlow, calibrate
from interpolants.integrate import RK4, AdaptiveIntegrator, Bosh3

TOLERANCE = 0.01  # nats: allowed error of a mean log-likelihood from the integrator
SAMPLE_TOLERANCE = 0.02  # RMS distance of samples from the reference's (data units ~ 1)


def log_prob(model: nn.Module, x: Tensor) -> Tensor:
    with torch.no_grad():
        return model().log_prob(x)


def draw(model: nn.Module, n: int) -> Tensor:
    with torch.no_grad():
        return model().sample((n,))


def cpu_time(fn: Callable[[], Any], reps: int = 3) -> float:
    """Median CPU-seconds of ``fn`` after one warm-up call."""
    fn()
    times = []
    for _ in range(reps):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return statistics.median(times)


def with_integrators(flow: InterpolantFlow, integrator: Integrator, steps: int) -> InterpolantFlow:
    """The same velocity and base with ``integrator`` for both ``log_prob`` and ``sample``."""
    return InterpolantFlow(
        flow.velocity, flow.base, sampler=integrator, likelihood=integrator, steps=steps
    )


def grid_of(integrator: Integrator, steps: int, start: float, end: float) -> Tensor:
    n = 1 if isinstance(integrator, AdaptiveIntegrator) else steps
    return time_grid(n, start, end)


SWEEP: list[tuple[str, Integrator, int]] = [
    *[(f"RK4, {n} steps", RK4(), n) for n in (2, 4, 8, 16)],
    ("Bosh3, tol 1e-3", Bosh3(rtol=1e-3, atol=1e-3), 1),
    ("Dopri5, tol 1e-3", Dopri5(rtol=1e-3, atol=1e-3), 1),
]


def integrator_sweep(flow: InterpolantFlow, test: Tensor) -> list[dict[str, Any]]:
    """Log-likelihood and samples of ``len(test)`` points by each integrator of :data:`SWEEP`
    against a Dopri5 reference at tolerance 1e-6: errors, NFE and CPU-seconds."""
    reference = Dopri5(rtol=1e-6, atol=1e-6)
    ode = ODE(flow.velocity)
    base = flow()
    with torch.no_grad():
        ref = log_likelihood(
            flow.velocity,
            test,
            base.base.log_prob,
            integrator=reference,
            grid=grid_of(reference, 1, 1.0, 0.0),
        )
        x0 = base.base.sample((test.shape[0],))
        ref_x1 = reference.integrate(ode, x0, grid_of(reference, 1, 0.0, 1.0)).state
    rows = []
    for label, integrator, steps in SWEEP:
        with torch.no_grad():
            res = log_likelihood(
                flow.velocity,
                test,
                base.base.log_prob,
                integrator=integrator,
                grid=grid_of(integrator, steps, 1.0, 0.0),
            )
            sol = integrator.integrate(ode, x0, grid_of(integrator, steps, 0.0, 1.0))
        cand = with_integrators(flow, integrator, steps)
        rows.append(
            {
                "integrator": label,
                "nll_error": float((res.log_prob - ref.log_prob).mean().abs()),
                "nll_error_pointwise": float((res.log_prob - ref.log_prob).abs().mean()),
                "log_prob_nfe": res.nfe,
                "log_prob_cpu_s": cpu_time(partial(log_prob, cand, test)),
                "sample_rms_error": float((sol.state - ref_x1).pow(2).sum(1).mean().sqrt()),
                "sample_nfe": sol.nfe,
                "sample_cpu_s": cpu_time(partial(draw, cand, test.shape[0])),
            }
        )
    return rows


def digits_integrator_check(model: nn.Module, task: Task, n: int = 100) -> list[dict[str, Any]]:
    """Bits/dim of the first ``n`` test images by RK4 on 16, 32 (the reported grid) and 64
    steps against a Dopri5 reference at tolerance 1e-5 (the preprocessing's Jacobian is exact,
    so the error is the integrator's alone)."""
    flow = model.inner if isinstance(model, Preprocessed) else model
    assert isinstance(flow, InterpolantFlow)
    x = task.test[:n]
    z, logdet = model.prep(x) if isinstance(model, Preprocessed) else (x, torch.zeros(n))
    reference = Dopri5(rtol=1e-5, atol=1e-5)

    def bpd(integrator: Integrator, steps: int) -> tuple[float, int, float]:
        start = time.process_time()
        with torch.no_grad():
            res = log_likelihood(
                flow.velocity,
                z,
                flow().base.log_prob,
                integrator=integrator,
                grid=grid_of(integrator, steps, 1.0, 0.0),
            )
        return task.score(res.log_prob + logdet), res.nfe, time.process_time() - start

    ref, ref_nfe, ref_s = bpd(reference, 1)
    rows = [{"integrator": "Dopri5, tol 1e-5", "bpd": ref, "nfe": ref_nfe, "cpu_s": ref_s}]
    for steps in (16, 32, 64):
        value, nfe, cpu = bpd(RK4(), steps)
        rows.append(
            {
                "integrator": f"RK4, {steps} steps",
                "bpd": value,
                "error": abs(value - ref),
                "nfe": nfe,
                "cpu_s": cpu,
            }
        )
    return rows


def calibrated_cost(flow: InterpolantFlow, task: Task, seed: int) -> dict[str, Any]:
    """RK4 grids chosen by :func:`~interpolants.density.calibrate` on 1000 fresh samples
    (not the test points), then measured on the test points: error of the mean
    log-likelihood against the Dopri5 reference, NFE and CPU-seconds."""
    calib = task.sample(1000, torch.Generator().manual_seed(40_000 + seed))
    cal = calibrate(
        flow,
        calib,
        tolerance=TOLERANCE,
        sample_tolerance=SAMPLE_TOLERANCE,
        generator=torch.Generator().manual_seed(seed),
    )
    reference = Dopri5(rtol=1e-6, atol=1e-6)
    base = flow()
    with torch.no_grad():
        ref = log_likelihood(
            flow.velocity,
            task.test,
            base.base.log_prob,
            integrator=reference,
            grid=grid_of(reference, 1, 1.0, 0.0),
        )
        res = log_likelihood(
            flow.velocity,
            task.test,
            base.base.log_prob,
            integrator=RK4(),
            grid=grid_of(RK4(), cal.likelihood_steps, 1.0, 0.0),
        )
    return {
        "likelihood_steps": cal.likelihood_steps,
        "sample_steps": cal.sample_steps,
        "met": cal.met,
        "calibration_errors": cal.likelihood_errors,
        "calibration_sample_errors": cal.sample_errors,
        "test_nll_error": float((res.log_prob - ref.log_prob).mean().abs()),
        "log_prob_nfe": res.nfe,
        "sample_nfe": 4 * cal.sample_steps,
        "log_prob_cpu_s": cpu_time(partial(log_prob, cal.flow, task.test)),
        "sample_cpu_s": cpu_time(partial(draw, cal.flow, task.test.shape[0])),
    }
