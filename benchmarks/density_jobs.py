r"""Running the jobs of :mod:`density`: one training and evaluation per :class:`Job`.

:func:`run_job` builds the task, trains the job's method and measures it; :func:`cached_job`
reuses a stored result when the job and the code it runs are unchanged; :func:`run_all` runs a
list of jobs in one process or a pool of them.
"""

import hashlib
import inspect
import json
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from common import write_atomic
from density_eval import (
    calibrated_cost,
    cpu_time,
    digits_integrator_check,
    integrator_sweep,
    log_prob,
)
from density_fit import EMA, Budget, Checkpoints, cosine, fit
from density_nets import FourierMLP
from density_ours import Recipe, finetune, gaussian_base, make_prep, time_sampler, train_ours
from density_prep import MarginalGaussianization, Preprocessed
from density_tasks import Task, digits_task, toy_task
from density_zuko import PREP_NSF, train_zuko, train_zuko_prep
from interpolants.density import InterpolantFlow


@dataclass(frozen=True)
class Job:
    task: str
    method: str  # "ours", "NSF", "MAF"
    seed: int
    budget_s: float
    n_test: int
    steps: int | None = None  # equal-steps runs: this many steps instead of the budget
    recipe: Recipe = field(default_factory=Recipe)
    label: str = ""
    sweep: bool = False  # also measure the evaluation cost (seed 0)


def make_task(job: Job) -> Task:
    if job.task == "digits":
        return digits_task(job.budget_s, job.seed)
    return toy_task(job.task, job.budget_s, job.n_test, job.seed)


def run_job(job: Job, threads: int = 1) -> dict[str, Any]:
    if threads > 0:
        torch.set_num_threads(threads)
    warnings.simplefilter("ignore")
    task = make_task(job)
    model: nn.Module
    if job.method == "ours":
        model, info = train_ours(task, job.recipe, job.seed, job.steps)
    elif job.method == PREP_NSF:
        model, info = train_zuko_prep(task, job.seed, job.steps)
    else:
        model, info = train_zuko(task, job.method, job.seed, job.steps)
    start = time.process_time()
    lp = log_prob(model, task.test)
    out: dict[str, Any] = {
        **{k: v for k, v in asdict(job).items() if k != "recipe"},
        **info,
        "score": task.score(lp),
        "eval_cpu_s": time.process_time() - start,
    }
    if job.method == "ours":
        out["recipe"] = asdict(job.recipe)
    if job.sweep and not task.digits:
        if job.method == "ours":
            assert isinstance(model, InterpolantFlow)
            out["integrators"] = integrator_sweep(model, task.test)
            out["calibrated"] = calibrated_cost(model, task, job.seed)
        else:
            n = task.test.shape[0]
            out["log_prob_cpu_s"] = cpu_time(lambda: log_prob(model, task.test))
            out["sample_cpu_s"] = cpu_time(lambda: model().sample((n,)))
    if job.sweep and task.digits and job.method == "ours":
        out["digits_integrators"] = digits_integrator_check(model, task)
    print(
        f"{job.label or job.method:28s} {job.task:12s} seed {job.seed}  score {out['score']:.4f}  "
        f"steps {out['steps']}  train {out['train_cpu_s']:.1f} CPU-s",
        flush=True,
    )
    return out


TOYS_ONLY = ("hidden", "depth", "batch", "lr", "fitted_base", "prep", "fourier")
DIGITS_ONLY = (
    "hidden_digits",
    "depth_digits",
    "lr_digits",
    "time_digits",
    "batch_digits",
    "fitted_base_digits",
    "prep_digits",
    "validations",
)


def cached_job(job: Job, threads: int, cache: str | None) -> dict[str, Any]:
    """:func:`run_job`, or its stored result when ``cache`` (a folder) holds this very job
    (same task, method, seed, budget, steps and recipe) run with this file's code."""
    if cache is None:
        return run_job(job, threads)
    shared = [Task, toy_task, digits_task, cosine, Budget, fit, Checkpoints]
    own: list[Any] = [train_zuko]
    if job.method == PREP_NSF:
        own += [train_zuko_prep, make_prep, MarginalGaussianization, Preprocessed]
    if job.method == "ours":
        own = [train_ours, finetune, EMA, time_sampler, gaussian_base, run_job]  # recipe: in key
        own += [make_prep, MarginalGaussianization, Preprocessed, FourierMLP]
        own += [integrator_sweep, calibrated_cost, digits_integrator_check]
    code = hashlib.sha256("".join(inspect.getsource(f) for f in shared + own).encode())
    spec = asdict(job)
    if job.method != "ours":
        del spec["recipe"]  # zuko's jobs do not depend on our recipe
    else:  # nor does a task depend on the other kind's fields
        unused = DIGITS_ONLY if job.task != "digits" else TOYS_ONLY
        spec["recipe"] = {k: v for k, v in spec["recipe"].items() if k not in unused}
    key = json.dumps({"job": spec, "threads": threads, "code": code.hexdigest()}, sort_keys=True)
    path = Path(cache) / f"{hashlib.sha256(key.encode()).hexdigest()[:20]}.json"
    if path.exists():
        return dict(json.loads(path.read_text()))
    out = run_job(job, threads)
    write_atomic(path, json.dumps(out, default=str))
    return out


def run_all(
    jobs: list[Job], n_jobs: int, threads: int, cache: str | None = None
) -> list[dict[str, Any]]:
    if n_jobs <= 1:
        return [cached_job(j, threads, cache) for j in jobs]
    with ProcessPoolExecutor(n_jobs) as pool:
        return list(pool.map(cached_job, jobs, [threads] * len(jobs), [cache] * len(jobs)))
