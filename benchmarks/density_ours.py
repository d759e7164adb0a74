r"""Our method in :mod:`density`: the :class:`Recipe` and its training.

:func:`train_ours` learns a velocity field by flow matching (the linear interpolant from a
Gaussian base, optionally fitted to the data, with a time sampler and a fixed preprocessing
chosen by the recipe) and turns its EMA weights into an
:class:`~interpolants.density.InterpolantFlow`; :func:`finetune` optionally spends the end of
the budget on maximum likelihood through the differentiable ``log_prob``.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from density_fit import EMA, Budget, Checkpoints, fit
from density_nets import FourierMLP
from density_prep import MarginalGaussianization, Preprocessed
from density_tasks import LEVELS, Task
from interpolants import MLP, LinearInterpolant, VelocityObjective
from interpolants.density import InterpolantFlow
from interpolants.integrate import RK4
from interpolants.objective import UniformTime


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
