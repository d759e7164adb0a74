r"""The peers of :mod:`density`: zuko's NSF and MAF trained by maximum likelihood.

:func:`train_zuko` trains ``zuko.flows.NSF`` or ``MAF`` with the same loop, schedule and
batches as ours; :func:`train_zuko_prep` (the method :data:`PREP_NSF`) trains NSF on the z of
our digits preprocessing and scores y by the same change of variables, the control that
separates the preprocessing's share of our digits score from the flow's.
"""

from dataclasses import replace
from typing import Any

import torch
from torch import Tensor, nn

from density_fit import Budget, Checkpoints, fit
from density_ours import make_prep
from density_prep import Preprocessed
from density_tasks import Task

PREP_NSF = "NSF+prep"  # zuko's NSF on the digits with our preprocessing (train_zuko_prep)


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
