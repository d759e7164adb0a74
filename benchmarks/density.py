r"""Density estimation against zuko's NSF and MAF at equal training CPU-seconds.

    python benchmarks/density.py --jobs 2        # full: 3 seeds, toys 60 CPU-s, digits 300
    python benchmarks/density.py --quick         # 1 seed, toys 6 CPU-s, digits 20 (a few min)
    python benchmarks/density.py --ablation      # the recipe's ingredients, one at a time
    python benchmarks/density.py --threads 0     # torch's default thread count (default 1)
    python benchmarks/density.py --jobs 2 --budget 15 --digits-budget 45   # a reduced run
    python benchmarks/density.py --render density --note "..."   # rewrite the markdown only

Runtime: the full run trains 3 tasks × 3 methods × 3 seeds × 60 CPU-s plus digits
3 × 3 × 300 CPU-s plus the equal-steps rows (≈ 90 CPU-minutes in all, ≈ 50 minutes of wall
time with ``--jobs 2`` on an idle 2-core machine); ``--ablation`` ≈ 40 CPU-minutes.

Every method is trained by one process on one torch thread until its *CPU-time* budget
(``time.process_time``, so that other load on the machine does not count) is spent, with the
learning rate following a cosine of the budget's fraction spent; the number of steps reached is
reported beside. Evaluation time is not part of the budget.

* **ours**: the recipe below: a velocity field learned by flow matching
  (:class:`~interpolants.VelocityObjective` on the linear interpolant from a Gaussian base),
  turned into a distribution by :class:`~interpolants.density.InterpolantFlow`, whose
  ``log_prob`` integrates the probability-flow ODE with the exact divergence. On the toys the
  network also sees random Fourier features of x (``density_nets.FourierMLP``, with its own
  exact divergence); on the digits the flow models z = Φ⁻¹(F(y)), a fixed per-pixel marginal
  Gaussianization fitted to the training counts (``density_prep``), whose log-Jacobian is
  counted in the likelihood of y.
* **zuko NSF / MAF**: ``zuko.flows.NSF`` / ``MAF`` trained by maximum likelihood (Adam, same
  cosine schedule, same batches).
* **zuko NSF with our digits preprocessing** (``NSF+prep``, digits only): the same NSF trained
  on the z our digits flow models, scored on y by the same change of variables — the control
  that separates the preprocessing's share of our digits score from the flow's.

Tasks: moons, 8 Gaussians and checkerboard of :mod:`interpolants.data` (test NLL in nats on
2000 held-out points; training samples are fresh every step), and scikit-learn's 8×8 digits
(64-d, 17 levels) with the fixed test split of :func:`interpolants.data.load_digits` (300
images), 200 training images held out for validation, and the *same* dequantisation for every
method: fresh uniform noise y = −1 + (x + u)·2/17 on every training batch, one fixed draw for
the validation and test images. Digits report bits/dim of the best validation checkpoint.
"""

import argparse
import copy
import hashlib
import inspect
import json
import math
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, machine, table, versions, write_atomic, write_results
from density_nets import FourierMLP
from density_prep import MarginalGaussianization, Preprocessed
from interpolants import (
    MLP,
    ODE,
    Dopri5,
    Integrator,
    LinearInterpolant,
    VelocityObjective,
    log_likelihood,
    time_grid,
)
from interpolants.data import Checkerboard, EightGaussians, Moons, bits_per_dim, dequantize
from interpolants.density import InterpolantFlow, calibrate
from interpolants.integrate import RK4, AdaptiveIntegrator, Bosh3
from interpolants.objective import UniformTime

PREP_NSF = "NSF+prep"  # zuko's NSF on the digits with our preprocessing (train_zuko_prep)
LEVELS = 17  # digits: intensity levels 0..16, dequantised onto [−1, 1)
TOLERANCE = 0.01  # nats: allowed error of a mean log-likelihood from the integrator
SAMPLE_TOLERANCE = 0.02  # RMS distance of samples from the reference's (data units ~ 1)


# ----------------------------------------------------------------------------- tasks


@dataclass(frozen=True)
class Task:
    """A density-estimation problem: fresh training batches, fixed validation/test sets."""

    name: str
    dim: int
    budget_s: float
    test: Tensor
    sample: Callable[[int, torch.Generator], Tensor]
    val: Tensor | None = None
    digits: bool = False

    def score(self, log_prob: Tensor) -> float:
        """Mean test NLL (nats) or, for the digits, bits/dim."""
        if self.digits:
            return float(bits_per_dim(log_prob, self.dim, levels=LEVELS, low=-1.0, high=1.0).mean())
        return float(-log_prob.mean())


TOYS = {"moons": Moons, "8gaussians": EightGaussians, "checkerboard": Checkerboard}


def toy_task(name: str, budget_s: float, n_test: int, seed: int) -> Task:
    toy = TOYS[name]()
    test = toy.sample(n_test, torch.Generator().manual_seed(20_000 + seed))
    return Task(name, 2, budget_s, test, toy.sample)


def digits_task(budget_s: float, seed: int, n_val: int = 200, test_size: int = 300) -> Task:
    """The digits with :func:`~interpolants.data.load_digits`'s fixed split (permutation seeded
    with 0, the first ``test_size`` images for test); the next ``n_val`` for validation."""
    from sklearn.datasets import load_digits as sk_digits

    raw = torch.as_tensor(sk_digits().data, dtype=torch.float32)
    raw = raw[torch.randperm(raw.shape[0], generator=torch.Generator().manual_seed(0))]
    test_raw, val_raw = raw[:test_size], raw[test_size : test_size + n_val]
    train_raw = raw[test_size + n_val :]
    fixed = torch.Generator().manual_seed(30_000 + seed)

    def deq(x: Tensor, g: torch.Generator) -> Tensor:
        return dequantize(x, levels=LEVELS, low=-1.0, high=1.0, generator=g, dtype=torch.float32)

    def sample(n: int, g: torch.Generator) -> Tensor:
        return deq(train_raw[torch.randint(0, train_raw.shape[0], (n,), generator=g)], g)

    return Task(
        "digits", 64, budget_s, deq(test_raw, fixed), sample, val=deq(val_raw, fixed), digits=True
    )


# ----------------------------------------------------------------------------- training loop


def cosine(frac: float, warmup: float = 0.0) -> float:
    """Learning-rate factor at ``frac`` of the budget: linear warm-up, then a cosine to 0."""
    if warmup > 0 and frac < warmup:
        return frac / warmup
    return 0.5 * (1 + math.cos(math.pi * min(1.0, frac)))


class Budget:
    """Training progress in CPU-seconds of this process (or in steps), with a clock that
    :meth:`pause` stops (validation is not charged)."""

    def __init__(self, seconds: float | None, steps: int | None) -> None:
        self.seconds, self.steps = seconds, steps
        self.spent, self.step = 0.0, 0
        self._start: float | None = time.process_time()

    def cpu(self) -> float:
        """CPU-seconds charged so far."""
        running = 0.0 if self._start is None else time.process_time() - self._start
        return self.spent + running

    def fraction(self) -> float:
        if self.steps is not None:
            return self.step / self.steps
        assert self.seconds is not None
        return self.cpu() / self.seconds

    def pause(self) -> None:
        self.spent = self.cpu()
        self._start = None

    def resume(self) -> None:
        self._start = time.process_time()


def fit(
    loss_fn: Callable[[Tensor, torch.Generator], Tensor],
    params: list[nn.Parameter],
    sample: Callable[[int, torch.Generator], Tensor],
    *,
    batch: int,
    lr: float,
    budget: Budget,
    seed: int,
    after_step: Callable[[int], None] | None = None,
    validate: Callable[[], None] | None = None,
    validations: int = 0,
    warmup: float = 0.0,
    clip: float | None = 1.0,
    weight_decay: float = 0.0,
) -> None:
    """Adam on ``loss_fn(batch, generator)`` until the budget is spent (cosine schedule)."""
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    next_val = 1
    while (frac := budget.fraction()) < 1:
        if validate is not None and frac * validations >= next_val:
            budget.pause()
            validate()
            budget.resume()
            next_val += 1
        for group in opt.param_groups:
            group["lr"] = lr * cosine(frac, warmup)
        loss = loss_fn(sample(batch, g), g)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if clip is not None:
            nn.utils.clip_grad_norm_(params, clip)
        opt.step()
        budget.step += 1
        if after_step is not None:
            after_step(budget.step)
    budget.pause()
    if validate is not None:
        validate()


class EMA:
    """Exponential moving average of a module's parameters (decay warmed up as (1+n)/(10+n))."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.model = copy.deepcopy(model).requires_grad_(False).eval()
        self.source, self.decay = model, decay

    @torch.no_grad()
    def __call__(self, step: int) -> None:
        d = min(self.decay, (1 + step) / (10 + step))
        for avg, p in zip(self.model.parameters(), self.source.parameters(), strict=True):
            avg.lerp_(p, 1 - d)


class Checkpoints:
    """Keeps the state of the best validation score (the digits' early stopping)."""

    def __init__(self, module: nn.Module, score: Callable[[], float]) -> None:
        self.module, self.score = module, score
        self.best = math.inf
        self.state: dict[str, Tensor] | None = None
        self.history: list[tuple[int, float]] = []
        self.cpu_s = 0.0

    def __call__(self, step: int) -> None:
        start = time.process_time()
        value = self.score()
        self.history.append((step, value))
        if value < self.best:
            self.best = value
            self.state = copy.deepcopy(self.module.state_dict())
        self.cpu_s += time.process_time() - start

    def restore(self) -> None:
        if self.state is not None:
            self.module.load_state_dict(self.state)


# ----------------------------------------------------------------------------- ours


@dataclass(frozen=True)
class Recipe:
    """Our training recipe (the defaults are the one in the results tables)."""

    hidden: int = 48
    depth: int = 3
    batch: int = 1024
    lr: float = 2e-2
    warmup: float = 0.05
    ema: float = 0.999
    time: str = "uniform"  # or "late:k": t = 1 − (1 − u)^k, more times near the data
    clip: float | None = None
    weight_decay: float = 0.0
    fitted_base: bool = False  # base N(mean, covariance of the data) instead of N(0, I)
    finetune: float = 0.0  # fraction of the budget spent on maximum likelihood at the end
    finetune_lr: float = 2e-4
    finetune_batch: int = 256
    finetune_steps: int = 4  # RK4 steps of the differentiable likelihood
    hidden_digits: int = 256
    depth_digits: int = 3
    lr_digits: float = 8e-3
    time_digits: str = "late:1.5"  # digits: t = 1 − (1 − u)^1.5, more times near the data
    batch_digits: int = 256
    fitted_base_digits: bool = True
    prep: str = "none"  # fixed bijective preprocessing: "none", "quantile:K" (see make_prep)
    prep_digits: str = "histogram"  # or "none"; "histogram": the 17 dequantisation bins' marginals
    fourier: str = "16:2"  # toys: "M:S", M random Fourier features of x with frequencies N(0, S²)
    zero_init: bool = False  # zero output layer: training starts from the base distribution
    validations: int = 5  # digits: validation checkpoints over the budget


def time_sampler(spec: str) -> Any:
    from interpolants.objective import InverseCDFTime

    if spec == "uniform":
        return UniformTime()
    kind, _, value = spec.partition(":")
    if kind == "late":
        k = float(value)
        return InverseCDFTime(
            lambda u: 1 - (1 - u) ** k, lambda t: (1 - t).clamp_min(1e-12) ** (1 / k - 1) / k
        )
    if kind == "logit":  # logit-normal: t = sigmoid(s·N(0, 1)), more times in the middle
        sd = float(value)

        def density(t: Tensor) -> Tensor:
            t = t.clamp(1e-7, 1 - 1e-7)
            logit = torch.log(t) - torch.log1p(-t)
            norm = sd * math.sqrt(2 * math.pi) * t * (1 - t)
            return torch.exp(-0.5 * (logit / sd) ** 2) / norm

        return InverseCDFTime(
            lambda u: torch.sigmoid(sd * math.sqrt(2) * torch.erfinv(2 * u - 1)), density
        )
    raise ValueError(f"unknown time sampler {spec!r}")


def gaussian_base(x: Tensor, fitted: bool) -> torch.distributions.Distribution:
    dim = x.shape[1]
    if not fitted:
        return torch.distributions.Independent(torch.distributions.Normal(torch.zeros(dim), 1.0), 1)
    mean, cov = x.mean(0), torch.cov(x.T) + 1e-4 * torch.eye(dim)
    return torch.distributions.MultivariateNormal(mean, covariance_matrix=cov)


def make_prep(spec: str, x: Tensor, digits: bool) -> MarginalGaussianization | None:
    """The fixed preprocessing ``spec`` fitted to training samples ``x``: ``"histogram"``
    (digits: the dequantisation bins, counts + 0.5), ``"quantile:K"`` (K quantile knots)."""
    if spec == "none":
        return None
    if spec == "histogram":
        assert digits, "the histogram preprocessing is for the dequantised digits"
        return MarginalGaussianization.histogram(x, torch.linspace(-1.0, 1.0, LEVELS + 1))
    kind, _, value = spec.partition(":")
    if kind == "quantile":
        return MarginalGaussianization.quantiles(x, int(value))
    raise ValueError(f"unknown preprocessing {spec!r}")


def train_ours(
    task: Task, recipe: Recipe, seed: int, steps: int | None = None
) -> tuple[nn.Module, dict[str, Any]]:
    """Flow matching, optionally followed by a maximum-likelihood fine-tuning stage."""
    torch.manual_seed(seed)
    hidden, depth = (
        (recipe.hidden_digits, recipe.depth_digits)
        if task.digits
        else (
            recipe.hidden,
            recipe.depth,
        )
    )
    model: nn.Module = MLP(task.dim, hidden=hidden, depth=depth)
    if recipe.fourier != "none" and not task.digits:
        m, _, scale = recipe.fourier.partition(":")
        model = FourierMLP(task.dim, hidden, depth, features=int(m), scale=float(scale), seed=seed)
    if recipe.zero_init:
        last = model.out if isinstance(model, FourierMLP) else model.net[-1]
        assert isinstance(last, nn.Linear)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
    fitted = recipe.fitted_base_digits if task.digits else recipe.fitted_base
    fit_x = task.sample(20_000, torch.Generator().manual_seed(seed))
    prep = make_prep(recipe.prep_digits if task.digits else recipe.prep, fit_x, task.digits)
    sample = task.sample
    if prep is not None:
        fit_x = prep(fit_x)[0]

        def sample(n: int, g: torch.Generator) -> Tensor:
            return prep(task.sample(n, g))[0]

    base = gaussian_base(fit_x, fitted)
    times = time_sampler(recipe.time_digits if task.digits else recipe.time)
    objective = VelocityObjective(LinearInterpolant(), time_sampler=times)
    ema = EMA(model, recipe.ema)
    flow = InterpolantFlow(ema.model, base, likelihood=RK4(), steps=16)
    out: nn.Module = flow if prep is None else Preprocessed(flow, prep)
    total_s = None if steps is not None else task.budget_s
    fm_s = None if total_s is None else total_s * (1 - recipe.finetune)
    fm_steps = None if steps is None else round(steps * (1 - recipe.finetune))
    checkpoints = None
    if task.val is not None:
        checkpoints = Checkpoints(ema.model, lambda: task.score(out().log_prob(task.val)))

    def fm_loss(x1: Tensor, g: torch.Generator) -> Tensor:
        x0 = base.sample((x1.shape[0],))
        return objective.loss(model, x0, x1, generator=g)

    budget = Budget(fm_s, fm_steps)
    fit(
        fm_loss,
        list(model.parameters()),
        sample,
        batch=recipe.batch_digits if task.digits else recipe.batch,
        lr=recipe.lr_digits if task.digits else recipe.lr,
        budget=budget,
        seed=seed,
        after_step=ema,
        validate=checkpoints and (lambda: checkpoints(budget.step)),
        validations=recipe.validations,
        warmup=recipe.warmup,
        clip=recipe.clip,
        weight_decay=recipe.weight_decay,
    )
    info: dict[str, Any] = {"steps": budget.step, "train_cpu_s": budget.cpu()}
    if recipe.finetune > 0:
        tuned = finetune(sample, flow, recipe, seed, total_s, steps)
        info["steps"] += tuned["steps"]
        info["train_cpu_s"] += tuned["cpu_s"]
        info["finetune_steps"] = tuned["steps"]
        if checkpoints is not None:  # the tuned weights compete with the earlier checkpoints
            checkpoints(info["steps"])
    if checkpoints is not None:
        checkpoints.restore()
        info["val_history"] = checkpoints.history
        info["val_cpu_s"] = checkpoints.cpu_s
    flow.steps = 32
    return out, info


def finetune(
    sample: Callable[[int, torch.Generator], Tensor],
    flow: InterpolantFlow,
    recipe: Recipe,
    seed: int,
    total_s: float | None,
    steps: int | None,
) -> dict[str, Any]:
    """Maximum likelihood on ``flow`` (its EMA weights), through the differentiable
    ``log_prob`` on a coarse RK4 grid, then back to an EMA of the tuned weights."""
    velocity = flow.velocity
    velocity.requires_grad_(True)
    tuned = InterpolantFlow(velocity, flow.base, likelihood=RK4(), steps=recipe.finetune_steps)
    ema = EMA(velocity, 0.99)

    def nll(x: Tensor, g: torch.Generator) -> Tensor:
        return -tuned().log_prob(x, differentiable=True).mean()

    budget = Budget(
        None if total_s is None else total_s * recipe.finetune,
        None if steps is None else max(1, round(steps * recipe.finetune)),
    )
    fit(
        nll,
        list(velocity.parameters()),
        sample,
        batch=recipe.finetune_batch,
        lr=recipe.finetune_lr,
        budget=budget,
        seed=seed + 1,
        after_step=ema,
        clip=recipe.clip,
    )
    velocity.load_state_dict(ema.model.state_dict())
    velocity.requires_grad_(False)
    return {"steps": budget.step, "cpu_s": budget.cpu()}


# ----------------------------------------------------------------------------- zuko


def train_zuko(
    task: Task, kind: str, seed: int, steps: int | None = None
) -> tuple[nn.Module, dict[str, Any]]:
    import zuko

    torch.manual_seed(seed)
    hidden = (256, 256) if task.digits else (64, 64)
    cls = {"NSF": zuko.flows.NSF, "MAF": zuko.flows.MAF}[kind]
    flow = cls(task.dim, transforms=3, hidden_features=hidden)
    checkpoints = None
    if task.val is not None:
        val = task.val

        def score() -> float:
            with torch.no_grad():
                return task.score(flow().log_prob(val))

        checkpoints = Checkpoints(flow, score)
    budget = Budget(None if steps is not None else task.budget_s, steps)
    fit(
        lambda x, g: -flow().log_prob(x).mean(),
        list(flow.parameters()),
        task.sample,
        batch=256,
        lr=1e-3,
        budget=budget,
        seed=seed,
        validate=checkpoints and (lambda: checkpoints(budget.step)),
        validations=30,
    )
    info: dict[str, Any] = {"steps": budget.step, "train_cpu_s": budget.cpu()}
    if checkpoints is not None:
        checkpoints.restore()
        info["val_history"] = checkpoints.history
        info["val_cpu_s"] = checkpoints.cpu_s
    return flow, info


def train_zuko_prep(
    task: Task, seed: int, steps: int | None = None
) -> tuple[nn.Module, dict[str, Any]]:
    """zuko's NSF on the digits *with our preprocessing* (``NSF+prep``): the marginal
    Gaussianization ours uses (``Recipe.prep_digits``, fitted the same way), NSF trained on z
    by :func:`train_zuko`, the likelihood of y by the same change of variables. Validation on
    z differs from validation on y by the fixed log-Jacobian of the validation images, so it
    selects the same checkpoint."""
    prep = make_prep("histogram", task.sample(20_000, torch.Generator().manual_seed(seed)), True)
    assert prep is not None

    def sample(n: int, g: torch.Generator) -> Tensor:
        return prep(task.sample(n, g))[0]

    val = None if task.val is None else prep(task.val)[0]
    inner = replace(task, test=prep(task.test)[0], sample=sample, val=val)
    flow, info = train_zuko(inner, "NSF", seed, steps)
    return Preprocessed(flow, prep), info


# ----------------------------------------------------------------------------- evaluation


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


# ----------------------------------------------------------------------------- jobs


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


# ----------------------------------------------------------------------------- report


def mean_spread(values: list[float], digits: int = 3) -> str:
    """``mean ± sample standard deviation`` (just the value for one seed)."""
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def select(results: list[dict[str, Any]], **match: Any) -> list[dict[str, Any]]:
    return [r for r in results if all(r.get(k) == v for k, v in match.items())]


def comparison_table(results: list[dict[str, Any]], tasks: list[str]) -> str:
    headers = [
        "task (metric)",
        "ours, equal CPU-s",
        "zuko NSF",
        "zuko MAF",
        "zuko NSF, our digits preprocessing",
        "ours, NSF's steps",
        "steps: ours / NSF / MAF / ours at NSF's",
        "train CPU-s: same order",
    ]
    body = []
    for task in tasks:
        groups = [
            select(results, task=task, method="ours", kind="budget"),
            select(results, task=task, method="NSF", kind="budget"),
            select(results, task=task, method="MAF", kind="budget"),
            select(results, task=task, method="ours", kind="steps"),
        ]
        prepped = select(results, task=task, method=PREP_NSF, kind="budget")
        cells = [mean_spread([r["score"] for r in g]) if g else "" for g in groups]
        cells.insert(3, mean_spread([r["score"] for r in prepped]) if prepped else "–")
        steps = [str(round(statistics.mean(r["steps"] for r in g))) if g else "" for g in groups]
        cpu = [f"{statistics.mean(r['train_cpu_s'] for r in g):.0f}" if g else "" for g in groups]
        unit = "bits/dim" if task == "digits" else "NLL nats"
        body.append([f"{task} ({unit})", *cells, " / ".join(steps), " / ".join(cpu)])
    return table(headers, body)


def cost_table(results: list[dict[str, Any]], tasks: list[str], tolerance: float) -> str:
    """Per toy: the cheapest integrator within ``tolerance`` nats of the reference, and zuko's
    times (seed-0 models)."""
    headers = [
        "task",
        "log_prob: integrator (NFE)",
        "error nats",
        "ours CPU-s",
        "NSF CPU-s",
        "MAF CPU-s",
        "ratio ours/NSF",
        "sample: integrator (NFE)",
        "RMS error",
        "ours CPU-s",
        "NSF CPU-s",
        "MAF CPU-s",
        "ratio ours/NSF",
    ]
    body = []
    for task in tasks:
        ours = [
            r
            for r in select(results, task=task, method="ours", kind="budget")
            if "integrators" in r
        ]
        nsf = [
            r
            for r in select(results, task=task, method="NSF", kind="budget")
            if "sample_cpu_s" in r
        ]
        maf = [
            r
            for r in select(results, task=task, method="MAF", kind="budget")
            if "sample_cpu_s" in r
        ]
        if not (ours and nsf and maf):
            continue
        sweep = ours[0]["integrators"]
        lp = min(
            (r for r in sweep if r["nll_error"] <= tolerance),
            key=lambda r: r["log_prob_cpu_s"],
            default=sweep[-1],
        )
        sm = min(
            (r for r in sweep if r["sample_rms_error"] <= 10 * tolerance),
            key=lambda r: r["sample_cpu_s"],
            default=sweep[-1],
        )
        body.append(
            [
                task,
                f"{lp['integrator']} ({lp['log_prob_nfe']})",
                f"{lp['nll_error']:.4f}",
                f"{lp['log_prob_cpu_s']:.4f}",
                f"{nsf[0]['log_prob_cpu_s']:.4f}",
                f"{maf[0]['log_prob_cpu_s']:.4f}",
                f"{lp['log_prob_cpu_s'] / nsf[0]['log_prob_cpu_s']:.1f}×",
                f"{sm['integrator']} ({sm['sample_nfe']})",
                f"{sm['sample_rms_error']:.4f}",
                f"{sm['sample_cpu_s']:.4f}",
                f"{nsf[0]['sample_cpu_s']:.4f}",
                f"{maf[0]['sample_cpu_s']:.4f}",
                f"{sm['sample_cpu_s'] / nsf[0]['sample_cpu_s']:.1f}×",
            ]
        )
    return table(headers, body)


def sweep_table(results: list[dict[str, Any]], task: str) -> str:
    ours = [
        r for r in select(results, task=task, method="ours", kind="budget") if "integrators" in r
    ]
    if not ours:
        return ""
    return table(
        [
            "integrator",
            "NLL error (mean)",
            "|Δ log p| per point",
            "NFE",
            "log_prob CPU-s",
            "sample RMS error",
            "sample NFE",
            "sample CPU-s",
        ],
        [
            [
                r["integrator"],
                f"{r['nll_error']:.4f}",
                f"{r['nll_error_pointwise']:.4f}",
                r["log_prob_nfe"],
                f"{r['log_prob_cpu_s']:.4f}",
                f"{r['sample_rms_error']:.4f}",
                r["sample_nfe"],
                f"{r['sample_cpu_s']:.4f}",
            ]
            for r in ours[0]["integrators"]
        ],
    )


def ablation_table(results: list[dict[str, Any]], tasks: list[str]) -> str:
    labels = list(dict.fromkeys(r["label"] for r in results))
    body = []
    for label in labels:
        row: list[Any] = [label]
        for task in tasks:
            rs = select(results, task=task, label=label)
            row.append(mean_spread([r["score"] for r in rs]) if rs else "")
        rs = select(results, label=label)
        row.append(str(round(statistics.mean(r["steps"] for r in rs))))
        body.append(row)
    return table(["recipe", *[f"{t}" for t in tasks], "steps (mean)"], body)


def time_text(spec: str) -> str:
    """A time sampler's spec in words (``late:k`` → t = 1 − (1 − u)^k)."""
    kind, _, value = spec.partition(":")
    return f"t = 1 − (1 − u)^{value}" if kind == "late" else f"{spec} t"


def recipe_text(recipe: Recipe) -> str:
    r = recipe
    text = (
        f"linear interpolant (γ = 0) from N(0, I), independent coupling, "
        f"{time_text(r.time)}; MLP {r.depth}×{r.hidden} "
        f"(digits {r.depth_digits}×{r.hidden_digits}), "
        f"SiLU; AdamW lr {r.lr:g} (weight decay {r.weight_decay:g}), cosine over the budget"
        f"{f' after {r.warmup:.0%} warm-up' if r.warmup else ''}, batch {r.batch}, "
        f"gradient clip {r.clip}, EMA {r.ema} (digits: {time_text(r.time_digits)}, lr "
        f"{r.lr_digits:g}, batch {r.batch_digits})"
    )
    if r.fourier != "none":
        m, _, scale = r.fourier.partition(":")
        text += (
            f"; toys: the MLP also sees {m} random Fourier features [sin(Bx), cos(Bx)] of x "
            f"(B fixed, entries N(0, {scale}²); exact divergence by forward-mode tangents)"
        )
    if r.fitted_base:
        text += "; base N(mean, covariance) fitted to the data"
    if r.prep != "none":
        text += f"; toys: fixed marginal Gaussianization ({r.prep})"
    if r.prep_digits == "histogram":
        text += (
            "; digits: fixed marginal Gaussianization z = Φ⁻¹(F(y)) per pixel, F the "
            "piecewise-linear CDF of the 17 dequantisation bins with the training counts "
            "(+ 0.5 per bin), its log-Jacobian counted in the likelihood, the flow (base "
            f"N(mean, covariance) of z) trained on z; {r.validations} validation checkpoints"
        )
    if r.zero_init:
        text += "; zero-initialised output layer"
    if r.finetune:
        text += (
            f"; the last {r.finetune:.0%} of the budget maximum likelihood through "
            f"``log_prob(differentiable=True)`` (RK4, {r.finetune_steps} steps, batch "
            f"{r.finetune_batch}, lr {r.finetune_lr:g})"
        )
    return text


def markdown(report: dict[str, Any]) -> str:
    s, m, results = report["settings"], report["machine"], report["results"]
    tasks = list(dict.fromkeys(r["task"] for r in results))
    toys = [t for t in tasks if t != "digits"]
    lines = [
        "# Density estimation: ours against zuko NSF and MAF at equal training CPU-seconds",
        "",
        f"Machine: {m['cpu']}, {m['cpu_count']} cores, one torch thread per training process "
        f"({s['jobs']} processes at a time), CPU time by ``time.process_time``. "
        f"{run_kind(s)}: seeds {s['seeds']}; budgets "
        f"{s['toy_budget_s']:g} CPU-s (toys), {s['digits_budget_s']:g} CPU-s (digits); "
        f"mean ± standard deviation over the seeds. Lower is better.",
        "",
        f"**Ours**: {recipe_text(Recipe(**s['recipe']))}. Test log-likelihood by "
        "``InterpolantFlow(...)().log_prob`` with the exact divergence, RK4 on 32 steps (its "
        "error against a Dopri5 reference at tolerance 1e-6 is in the last tables). "
        "**zuko**: NSF / MAF with 3 transforms, hidden (64, 64) on the toys and (256, 256) on "
        "the digits, maximum likelihood, Adam 1e-3 with the same cosine schedule, batch 256, "
        "gradient clip 1. "
        "Digits: best of the periodic validation checkpoints (10 for ours, 30 for zuko; "
        "validation CPU time not charged), bits/dim of dequantised data "
        "(an upper bound on the discrete data's; uniform on the 17 levels is 4.087). "
        "“ours, NSF's steps” trains our recipe for as many steps as NSF reached in its budget "
        "(same seed), the schedule then running over steps.",
        "",
        comparison_table(results, tasks),
        "",
    ]
    if "8gaussians" in tasks:
        lines += [
            f"True NLL of the 8 Gaussians on the test points: {s['true_nll_8gaussians']:.3f} "
            "nats; of the checkerboard, log 8 = 2.079.",
            "",
        ]
    cost = cost_table(results, toys, s["tolerance"])
    if cost.count("\n") > 1:
        lines += [
            "## Evaluation cost (2000 points, seed-0 models, one thread)",
            "",
            f"Cheapest integrator whose mean log-likelihood is within {s['tolerance']} nats of "
            "a Dopri5 reference (tolerance 1e-6), and cheapest whose samples are within "
            f"{10 * s['tolerance']:g} RMS of the reference samples from the same base points; "
            "CPU-s are medians of 3 calls.",
            "",
            cost,
            "",
        ]
        calibrated = calibrated_table(results, toys)
        if calibrated.count("\n") > 1:
            lines += [
                "### With the grids chosen by `calibrate`",
                "",
                "RK4 steps chosen by ``interpolants.density.calibrate`` on 1000 fresh training "
                f"samples (mean log-likelihood within {TOLERANCE} nats, samples within "
                f"{SAMPLE_TOLERANCE} RMS of Dopri5 at 1e-6), then measured on the 2000 test "
                "points; ratios are to zuko NSF's ``log_prob`` and ``sample`` of 2000 points.",
                "",
                calibrated,
                "",
            ]
        for task in toys:
            sweep = sweep_table(results, task)
            if sweep:
                lines += [f"### {task}: every integrator measured", "", sweep, ""]
    checks = [
        r
        for r in select(results, task="digits", method="ours", kind="budget")
        if "digits_integrators" in r
    ]
    if checks:
        lines += [
            "### digits: integrator error (seed-0 model, first 100 test images)",
            "",
            "Bits/dim by RK4 against a Dopri5 reference at tolerance 1e-5 (the table's scores "
            "use RK4 on 32 steps; validation used 16).",
            "",
            table(
                ["integrator", "bits/dim", "error", "NFE", "CPU-s"],
                [
                    [
                        c["integrator"],
                        f"{c['bpd']:.4f}",
                        f"{c['error']:.4f}" if "error" in c else "reference",
                        c["nfe"],
                        f"{c['cpu_s']:.1f}",
                    ]
                    for c in checks[0]["digits_integrators"]
                ],
            ),
            "",
        ]
    lines += ["## Targets", "", targets(results, tasks), ""]
    ablation = next(
        (
            RESULTS / f"{n}.md"
            for n in ("density_ablation", "density_ablation_quick")
            if (RESULTS / f"{n}.md").exists()
        ),
        None,
    )
    if ablation is not None:
        text = ablation.read_text().strip().replace("# ", "## ", 1)
        lines += [text, ""]
    if s.get("note"):
        lines += [s["note"], ""]
    return "\n".join(lines)


def _nsf_times(results: list[dict[str, Any]], task: str) -> dict[str, float] | None:
    nsf = [
        r for r in select(results, task=task, method="NSF", kind="budget") if "sample_cpu_s" in r
    ]
    return nsf[0] if nsf else None


def calibrated_table(results: list[dict[str, Any]], tasks: list[str]) -> str:
    body = []
    for task in tasks:
        ours = [
            r for r in select(results, task=task, method="ours", kind="budget") if "calibrated" in r
        ]
        nsf = _nsf_times(results, task)
        if not ours or nsf is None:
            continue
        c = ours[0]["calibrated"]
        body.append(
            [
                task,
                f"{c['likelihood_steps']} / {c['sample_steps']}",
                f"{c['test_nll_error']:.4f}",
                c["log_prob_nfe"],
                f"{c['log_prob_cpu_s']:.4f}",
                f"{c['log_prob_cpu_s'] / nsf['log_prob_cpu_s']:.1f}×",
                c["sample_nfe"],
                f"{c['sample_cpu_s']:.4f}",
                f"{c['sample_cpu_s'] / nsf['sample_cpu_s']:.1f}×",
            ]
        )
    return table(
        [
            "task",
            "RK4 steps: log_prob / sample",
            "test NLL error (nats)",
            "log_prob NFE",
            "log_prob CPU-s",
            "ratio to NSF",
            "sample NFE",
            "sample CPU-s",
            "ratio to NSF",
        ],
        body,
    )


def targets(results: list[dict[str, Any]], tasks: list[str]) -> str:
    """Met / not met, per target of the issue, from the means over the seeds."""
    rows = []
    for task in tasks:
        for kind, what in (("budget", "equal CPU-s"), ("steps", "equal steps")):
            ours = [r["score"] for r in select(results, task=task, method="ours", kind=kind)]
            nsf = [r["score"] for r in select(results, task=task, method="NSF", kind="budget")]
            if not (ours and nsf):
                continue
            a, b = statistics.mean(ours), statistics.mean(nsf)
            unit = "bits/dim" if task == "digits" else "test NLL"
            rows.append([f"{task}: {unit} ≤ NSF's ({what})", f"{a:.3f} vs {b:.3f}", _yes(a <= b)])
        prepped = [r["score"] for r in select(results, task=task, method=PREP_NSF, kind="budget")]
        ours = [r["score"] for r in select(results, task=task, method="ours", kind="budget")]
        if prepped and ours:
            a, b = statistics.mean(ours), statistics.mean(prepped)
            rows.append(
                [
                    f"{task}: bits/dim ≤ NSF's with our preprocessing (equal CPU-s; not an "
                    "issue target, the fair reading of the row above)",
                    f"{a:.3f} vs {b:.3f}",
                    _yes(a <= b),
                ]
            )
    for task in tasks:
        ours = [
            r for r in select(results, task=task, method="ours", kind="budget") if "calibrated" in r
        ]
        nsf = _nsf_times(results, task)
        if not ours or nsf is None:
            continue
        c = ours[0]["calibrated"]
        for name in ("log_prob", "sample"):
            ratio = c[f"{name}_cpu_s"] / nsf[f"{name}_cpu_s"]
            rows.append(
                [
                    f"{task}: {name} of 2000 points ≤ 10× NSF's "
                    f"(calibrated RK4, {c[f'{name}_nfe']} NFE)",
                    f"{ratio:.1f}×",
                    _yes(ratio <= 10),
                ]
            )
    return table(["target", "measured (ours vs NSF)", "met"], rows)


def _yes(ok: bool) -> str:
    return "yes" if ok else "**no**"


def run_kind(settings: dict[str, Any]) -> str:
    """ "Full run" only at the full budgets (60 / 300 CPU-s); otherwise says it is reduced."""
    if settings["quick"]:
        return "Quick run"
    if (settings["toy_budget_s"], settings["digits_budget_s"]) == (60.0, 300.0):
        return "Full run"
    return "**Reduced-budget run** (the full run is 60 CPU-s on the toys, 300 on the digits)"


def ablation_markdown(report: dict[str, Any]) -> str:
    s, m = report["settings"], report["machine"]
    tasks = list(dict.fromkeys(r["task"] for r in report["results"]))
    return "\n".join(
        [
            "# Density estimation: the recipe's ingredients",
            "",
            f"Machine: {m['cpu']}, {m['cpu_count']} cores, one torch thread per process. "
            f"Each row changes one thing in the recipe of the first row; test NLL (nats) at "
            f"{s['toy_budget_s']:g} training CPU-s, seeds {s['seeds']} (mean ± std).",
            "",
            f"Recipe: {recipe_text(Recipe(**s['recipe']))}.",
            "",
            ablation_table(report["results"], tasks),
            "",
        ]
    )


# ----------------------------------------------------------------------------- main


ABLATIONS: dict[str, dict[str, Any]] = {
    "recipe": {},
    "lr 2e-3, no warm-up (the earlier default)": {"lr": 2e-3, "warmup": 0.0},
    "lr 1e-2": {"lr": 1e-2},
    "batch 256": {"batch": 256},
    "depth 4": {"depth": 4},
    "logit-normal t (s = 1)": {"time": "logit:1"},
    "t = 1 − (1 − u)² (more times near the data)": {"time": "late:2"},
    "no EMA": {"ema": 0.0},
    "last 30% maximum-likelihood fine-tuning": {"finetune": 0.3},
    "last 50% maximum-likelihood fine-tuning": {"finetune": 0.5},
    "MLP 3×64": {"hidden": 64},
}


def publish(name: str, settings: dict[str, Any], results: list[dict[str, Any]]) -> None:
    """Write results/NAME.json and .md (the ablation's tables for an ablation run) and print
    the markdown."""
    report = {
        "name": name,
        "machine": machine(),
        "versions": versions("zuko"),
        "settings": settings,
        "results": results,
    }
    md = ablation_markdown(report) if "ablation" in name else markdown(report)
    write_results(name, report, md)
    print(md)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="short budgets, one seed")
    parser.add_argument("--ablation", action="store_true", help="the recipe's ingredients")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads per process (0: torch's default)"
    )
    parser.add_argument("--seed", type=int, default=0, help="first seed")
    parser.add_argument("--seeds", type=int, default=None, help="number of seeds (3; quick 1)")
    parser.add_argument("--jobs", type=int, default=1, help="training processes at a time")
    parser.add_argument("--budget", type=float, default=None, help="toy budget in CPU-s")
    parser.add_argument("--digits-budget", type=float, default=None, help="digits budget in CPU-s")
    parser.add_argument("--tasks", default="moons,8gaussians,checkerboard,digits")
    parser.add_argument(
        "--methods",
        default=f"ours,NSF,MAF,{PREP_NSF}",
        help=f"e.g. NSF,MAF to run only those ({PREP_NSF}: the digits only)",
    )
    parser.add_argument(
        "--cache",
        default=str(RESULTS / ".density_cache"),
        help="folder of finished jobs, reused when the job and its code are unchanged ('' : off)",
    )
    parser.add_argument(
        "--render",
        default=None,
        metavar="NAME",
        help="rewrite results/NAME.md (and RESULTS.md) from results/NAME.json, without running",
    )
    parser.add_argument("--note", default="", help="with --render: a paragraph to append")
    args = parser.parse_args()
    if args.render is not None:
        report = json.loads((RESULTS / f"{args.render}.json").read_text())
        if args.note:
            report["settings"]["note"] = args.note
        write_results(args.render, report, markdown(report))
        return
    quick = args.quick
    n_seeds = args.seeds or (1 if quick else 3)
    seeds = list(range(args.seed, args.seed + n_seeds))
    tasks = args.tasks.split(",")
    methods = args.methods.split(",")
    cache = args.cache or None
    toy_budget, digits_budget = (6.0, 20.0) if quick else (60.0, 300.0)
    if args.budget is not None:
        toy_budget = args.budget
    if args.digits_budget is not None:
        digits_budget = args.digits_budget
    n_test = 500 if quick else 2000
    recipe = Recipe()
    settings: dict[str, Any] = {
        "quick": quick,
        "seeds": seeds,
        "jobs": args.jobs,
        "toy_budget_s": toy_budget,
        "digits_budget_s": digits_budget,
        "n_test": n_test,
        "tolerance": 0.01,
        "recipe": asdict(recipe),
    }
    if args.ablation:
        jobs = [
            Job(task, "ours", seed, toy_budget, n_test, recipe=replace(recipe, **change), label=lab)
            for lab, change in ABLATIONS.items()
            for task in tasks
            if task != "digits"
            for seed in seeds
        ]
        results = run_all(jobs, args.jobs, args.threads, cache)
        for r in results:
            r["kind"] = "ablation"
        publish("density_ablation_quick" if quick else "density_ablation", settings, results)
        return

    def budget_of(task: str) -> float:
        return digits_budget if task == "digits" else toy_budget

    first = [
        Job(task, method, seed, budget_of(task), n_test, recipe=recipe, sweep=seed == seeds[0])
        for seed in seeds
        for task in tasks
        for method in methods
        if method != PREP_NSF or task == "digits"
    ]
    results = run_all(first, args.jobs, args.threads, cache)
    for r in results:
        r["kind"] = "budget"
    nsf_steps = {(r["task"], r["seed"]): r["steps"] for r in select(results, method="NSF")}
    second = [
        Job(task, "ours", seed, budget_of(task), n_test, steps=nsf_steps[task, seed], recipe=recipe)
        for task in tasks
        for seed in seeds
        if "ours" in methods and (task, seed) in nsf_steps
    ]
    for r in run_all(second, args.jobs, args.threads, cache):
        r["kind"] = "steps"
        results.append(r)
    if "8gaussians" in tasks:
        eight = EightGaussians()
        test = eight.sample(n_test, torch.Generator().manual_seed(20_000 + seeds[0])).double()
        settings["true_nll_8gaussians"] = float(-eight.as_mixture().log_prob(test).mean())
    publish("density_quick" if quick else "density", settings, results)


if __name__ == "__main__":
    main()
