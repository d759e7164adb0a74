r"""Named recipes: turn a flat run configuration into library objects, and evaluate runs.

The command line (:mod:`interpolants.cli`) and ``make demo`` describe a run by a
:class:`RunConfig` of plain strings and numbers (stored as JSON next to the checkpoint); this
module is the one place that maps those names to interpolants, couplings, objectives, models
and the sampling fields, so a run can be rebuilt from its folder.

Which fields a run can sample with depends on what it learned:

==============  ===========================================  =======================================
objective       velocity b                                   score s (for SDEs)
==============  ===========================================  =======================================
``velocity``    the model                                    one-sided only: s from b in closed form
``split``       b = v + γ̇ η_z                                s = −η_z/γ (−η_z/α one-sided)
``denoiser``    one-sided only: b from η_z                   s = −η_z/α (one-sided) or −η_z/γ
``score``       one-sided only: b from s                     the model
``target``      γ ≡ 0 only: b from η1                        —
``mean-flow``   γ ≡ 0 only: b = u(t, t, ·) of the model u     —
==============  ===========================================  =======================================

The one-sided score relations (s = −η_z/α, and s from b) hold only when x0 ~ N(0, I) is
independent of x1, i.e. for ``--coupling independent``; with another coupling a one-sided run
has no score (its ODE samples are still exact).

Which names a run may combine is the business of :mod:`interpolants.cli._config`
(:meth:`RunConfig.validate`).

**Reflow (k-rectified flow).** ``--coupling reflow --reflow-from RUN`` trains on the pairs
(x0, X_1(x0)) of the trained run in folder RUN (its sampling velocity, integrated by
``--reflow-method`` in ``--reflow-steps`` steps for every batch:
:class:`~interpolants.coupling.ReflowCoupling`), with any objective; the teacher must share the
run's ``--base`` and ``--data``. ``interpolants train --reflow-rounds k`` repeats it k times,
each round's model the next one's teacher (:func:`reflow_rounds`: rounds 1 … k − 1 go to
``OUT/round-r``, the last to ``OUT``). ``--distill`` makes the (last) round a one-step
distillation: it trains the velocity at t = 0 only, so that one Euler step x0 + b(0, x0)
regresses onto X_1(x0); it needs the straight path whose one Euler step is the
pair's end point (``--interpolant linear --gamma none --objective velocity``). A reflow run's
samples target the teacher's distribution, not the data's (see the coupling's notes).
"""

import math
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Literal, cast

import torch
from torch import Tensor, nn

from .._atomic import write_text_atomic
from ..analytic._exact import GaussianMixture
from ..coupling import (
    DataDependentCoupling,
    LabelConditionalCoupling,
    ReflowCoupling,
    SchrodingerBridgeCoupling,
    SinkhornCoupling,
    StableMatchingCoupling,
)
from ..coupling._base import Coupling
from ..coupling._exact import OTCoupling
from ..coupling._independent import IndependentCoupling
from ..data import (
    TOY_DATASETS,
    EightGaussians,
    GaussianMixtureData,
    PrefetchedBatches,
    Source,
    TensorData,
    load_digits,
)
from ..data._batches import PairedBatches
from ..density import InterpolantFlow
from ..fields import (
    Field,
    ScoreFromDenoiser,
    ScoreFromVelocity,
    VelocityFromDenoiser,
    VelocityFromScore,
    VelocityFromSplit,
    VelocityFromTarget,
)
from ..integrate import RK4
from ..integrate._flow_map import AverageVelocity, FlowMap
from ..nn._average import AverageVelocityMLP
from ..nn._mlp import MLP, TwoHeadMLP
from ..objective._base import bind_condition
from ..objective._time import TimeSampler
from ..train._checkpoint import CheckpointError, first_line, load_checkpoint
from ._config import (
    GAMMAS,
    INTEGRATORS,
    INTERPOLANTS,
    OBJECTIVES,
    SPLITS,
    RunConfig,
    _choice,
    load_config,
)

__all__ = [
    "BEST",
    "COUPLINGS",
    "Run",
    "TeacherVelocity",
    "inpaint_halves",
    "load_run",
    "reflow_rounds",
]


def inpaint_halves(x1: Tensor, noise: Tensor) -> tuple[Tensor, Tensor]:
    """The in-painting coupling of ``--coupling inpaint``: x0 = m ⊙ x1 + (1 − m) ⊙ ζ, ξ = m.

    The mask m keeps the first half of a sample's coordinates (flattened) on even rows and
    the second half on odd rows; the batches are drawn in random order, so each sample's
    half is a fair coin independent of the data, and the masked half is filled with the
    base noise ζ ~ N(0, I). For the 8×8 digits the halves are the top and bottom four rows.
    """
    flat = x1.reshape(x1.shape[0], -1)
    half = flat.shape[1] // 2
    first = torch.arange(flat.shape[1], device=x1.device) < max(half, 1)
    even = torch.arange(x1.shape[0], device=x1.device) % 2 == 0
    mask = (first[None, :] == even[:, None]).to(x1.dtype).reshape(x1.shape)
    return mask * x1 + (1 - mask) * noise, mask


COUPLINGS: dict[str, Callable[[RunConfig], Coupling]] = {
    "independent": lambda c: IndependentCoupling(),
    "ot": lambda c: OTCoupling(),
    "sinkhorn": lambda c: SinkhornCoupling(reg=c.coupling_reg),
    "sb": lambda c: SchrodingerBridgeCoupling(sigma=math.sqrt(c.gamma_scale)),
    "stable": lambda c: StableMatchingCoupling(),
    "label-ot": lambda c: LabelConditionalCoupling(OTCoupling()),
    "inpaint": lambda c: DataDependentCoupling(inpaint_halves),
    "reflow": lambda c: ReflowCoupling(
        TeacherVelocity(c), INTEGRATORS[c.reflow_method](), steps=c.reflow_steps
    ),
}
"""Command-line names of the couplings, built from the run's configuration: ``sinkhorn``
takes the relative ``coupling_reg``, ``sb`` the σ of its path (σ² = ``gamma_scale``),
``label-ot`` pairs by exact OT within the target's classes (labelled data: the base noise
takes the target's labels), ``inpaint`` builds x0 from x1 (:func:`inpaint_halves`) and
conditions the model on the mask, ``reflow`` pairs x0 with the end point of the ODE of the run
in ``reflow_from`` (:class:`TeacherVelocity`)."""


class _StartTime(TimeSampler):
    """t ≡ 0 (a point mass, not a density): the times of ``--distill``."""

    def sample(
        self,
        n: int,
        *,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> Tensor:
        return torch.zeros(n, dtype=dtype, device=device)

    def density(self, t: Tensor) -> Tensor:
        raise ValueError("t ≡ 0 has no density: it cannot be importance-weighted")

    def __repr__(self) -> str:
        return "_StartTime()"


class TeacherVelocity:
    """The sampling velocity of the trained run in ``config.reflow_from``, the teacher of
    ``--coupling reflow``; loaded on its first call (so that rebuilding the student's run for
    sampling never reads the teacher's folder), on the CPU, in eval mode.

    Raises :class:`ValueError` when the teacher's base or data differ from the student's, or
    when its velocity needs a condition (an in-painting run).
    """

    def __init__(self, config: RunConfig) -> None:
        self.folder = Path(config.reflow_from)
        self.base, self.data = config.base, config.data
        self._field: Field | None = None

    def load(self) -> Field:
        """The teacher's velocity field (loaded once)."""
        if self._field is None:
            teacher = load_config(self.folder)
            if (teacher.base, teacher.data) != (self.base, self.data):
                raise ValueError(
                    f"--reflow-from {self.folder}: the teacher maps --base {teacher.base} to "
                    f"--data {teacher.data}, the run --base {self.base} to --data {self.data}; "
                    "reflow keeps both: pass the teacher's"
                )
            if teacher.coupling == "inpaint":
                raise ValueError(
                    f"--reflow-from {self.folder}: an in-painting run's velocity needs its "
                    "mask, so it cannot be reflowed"
                )
            run, model = load_run(self.folder)
            model.requires_grad_(False)
            self._field = run.velocity(model)
        return self._field

    def __call__(self, t: Tensor, x: Tensor) -> Tensor:
        out: Tensor = self.load()(t, x)
        return out

    def __repr__(self) -> str:
        return f"TeacherVelocity({os.fspath(self.folder)!r})"


def reflow_rounds(config: RunConfig, out: Path, rounds: int) -> list[tuple[RunConfig, Path]]:
    """The runs of k-rectified flow: ``rounds`` reflow runs, each the next one's teacher.

    Round r trains with ``--coupling reflow`` from the previous round's folder (round 1 from
    ``config.reflow_from``) and is written to ``out/round-r``, except the last, written to
    ``out``; ``config.distill`` applies to the last round only (so ``rounds = 2`` with
    ``distill`` is one reflow then its one-step distillation).

    Returns
    -------
    list of (RunConfig, Path)
        Each round's validated configuration and folder, in training order.
    """
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise ValueError(f"--reflow-rounds must be a positive integer, got {rounds!r}")
    if config.coupling != "reflow":
        raise ValueError("--reflow-rounds repeats --coupling reflow: pass it and --reflow-from")
    plan: list[tuple[RunConfig, Path]] = []
    teacher = config.reflow_from
    for r in range(1, rounds + 1):
        last = r == rounds
        folder = out if last else out / f"round-{r}"
        step = replace(config, reflow_from=teacher, distill=config.distill and last)
        plan.append((step.validate(), folder))
        teacher = os.fspath(folder)
    return plan


class Run:
    """All objects of a :class:`RunConfig`: sources, interpolant, objective, model, fields."""

    def __init__(self, config: RunConfig) -> None:
        self.config = config.validate()
        #: Which weights :func:`load_run` loaded (file and step); empty for a fresh run.
        self.weights = ""
        self.target, self.test_target, self.dim = self._target()
        gamma = GAMMAS[config.gamma](config.gamma_scale)
        self.interpolant = INTERPOLANTS[config.interpolant](gamma)
        self.base = self._base()
        self.coupling = COUPLINGS[config.coupling](config)
        times = _StartTime() if config.distill else None  # validated: a velocity objective
        self.objective = OBJECTIVES[config.objective](self.interpolant, time_sampler=times)
        torch.manual_seed(config.seed)
        two_heads = config.objective == "split"
        net = TwoHeadMLP if two_heads else MLP
        context = self.dim if config.coupling == "inpaint" else None
        self.model: nn.Module
        if config.objective == "mean-flow":  # validated: no condition (not inpaint)
            self.model = AverageVelocityMLP(self.dim, hidden=config.hidden, depth=config.depth)
        else:
            self.model = net(
                self.dim, hidden=config.hidden, depth=config.depth, context_dim=context
            )

    def _target(self) -> tuple[Source, Tensor, int]:
        gen = torch.Generator().manual_seed(10_000 + self.config.seed)
        n_val = self.config.validation
        if self.config.data == "digits":
            digits = load_digits(gen)
            keep = digits.train.shape[0] - n_val
            self.validation_target = digits.train[keep:]
            self.train_target = digits.train[:keep]
            return TensorData(self.train_target, digits.train_labels[:keep]), digits.test, 64
        toy = TOY_DATASETS[self.config.data]()
        test = toy.sample(2000, gen)
        val_gen = torch.Generator().manual_seed(20_000 + self.config.seed)
        self.validation_target = toy.sample(n_val or 2000, val_gen)
        self.train_target = toy.sample(
            2000, torch.Generator().manual_seed(30_000 + self.config.seed)
        )
        return toy, test, 2

    def split(self, name: str, n: int | None = None) -> Tensor:
        """The first ``n`` points (all if ``None``) of a data split.

        ``test``: the held-out test set (2000 points of a toy drawn with seed 10000 + seed;
        the 300 test images of :func:`~interpolants.data.load_digits`). ``validation``: the
        ``--validation`` points held out for early stopping (the last images of the training
        split, which are then not trained on; for a toy, fresh draws with seed 20000 + seed,
        2000 of them when the run held none out). ``train``: the training images, or for a
        toy (trained on fresh samples every step) 2000 draws with seed 30000 + seed.
        """
        _choice("split", name, SPLITS)
        data = {
            "test": self.test_target,
            "validation": self.validation_target,
            "train": self.train_target,
        }[name]
        if data.shape[0] == 0:
            raise ValueError(
                f"this run held out no {name} images: train it with --validation N to have one"
            )
        return data if n is None else data[:n]

    def flow(self, model: nn.Module) -> InterpolantFlow:
        """The trained ``model`` as an :class:`~interpolants.density.InterpolantFlow` (RK4 on
        16 steps for ``log_prob``); raises when the base has no closed-form density."""
        mixture = self._base_mixture()
        if mixture is None:
            why = "x0 is built from x1" if self.config.coupling == "inpaint" else "no closed form"
            raise ValueError(f"the base of this run has no log-density ({why}): no likelihood")
        velocity = _VelocityModule(model, self.velocity(model))
        return InterpolantFlow(
            velocity, mixture.to(dtype=torch.float32), likelihood=RK4(), steps=16
        )

    def _base(self) -> Source:
        if self.config.base == "gaussian":
            return GaussianMixtureData(GaussianMixture.standard_normal(self.dim))
        return TOY_DATASETS[self.config.base]()  # 2-D, checked by validate

    def optimizer(
        self,
    ) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler | None]:
        """Adam at ``lr`` and the configured schedule over ``steps``."""
        opt = torch.optim.Adam(self.model.parameters(), lr=self.config.lr)
        if self.config.lr_schedule == "cosine":
            return opt, torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=self.config.steps)
        return opt, None

    def batches(self) -> PairedBatches:
        """The inline coupled-batch pipeline (a reflow run loads and checks its teacher here,
        before training starts)."""
        if isinstance(self.coupling, ReflowCoupling) and isinstance(
            self.coupling.velocity, TeacherVelocity
        ):
            self.coupling.velocity.load()
        return PairedBatches(self.base, self.target, self.config.batch, self.coupling)

    def batch_source(self) -> PairedBatches | PrefetchedBatches:
        """What the trainer draws from: :meth:`batches` inline, or with ``prefetch`` > 0 a
        :class:`PrefetchedBatches` whose ``prefetch`` producers (threads or
        processes, by ``prefetch_backend``; seeded with ``seed``) compute the coupled batches
        ahead; close it when training ends. Both give the same batches (the seeding scheme of
        :mod:`interpolants.data`), so a run may be resumed with another choice."""
        if self.config.prefetch == 0:
            return self.batches()
        backend = cast(Literal["thread", "process"], self.config.prefetch_backend)  # validated
        return PrefetchedBatches(
            self.batches(), seed=self.config.seed, workers=self.config.prefetch, backend=backend
        )

    def starts(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor | None]:
        """``n`` starting points x0 for sampling and their condition ξ (``None`` unless the
        coupling is data-dependent, when x0 and ξ are built from the first ``n`` held-out
        targets: in-painting them)."""
        noise = self.base.sample(n, generator)
        if self.config.coupling != "inpaint":
            return noise, None
        if n > self.test_target.shape[0]:
            raise ValueError(
                f"--coupling inpaint samples from held-out targets: --n must be at most "
                f"{self.test_target.shape[0]}, got {n}"
            )
        return inpaint_halves(self.test_target[:n], noise.to(self.test_target.dtype))

    def base_log_prob(self) -> Callable[[Tensor], Tensor] | None:
        """log ρ0 when known in closed form (Gaussian and 8-Gaussians bases, independent of
        the data), else ``None``."""
        mixture = self._base_mixture()
        if mixture is None:
            return None
        return lambda x: mixture.to(dtype=x.dtype, device=x.device).log_prob(x)

    def _base_mixture(self) -> GaussianMixture | None:
        if self.config.coupling == "inpaint":
            return None  # x0 is built from x1
        if isinstance(self.base, GaussianMixtureData):
            return self.base.mixture
        if isinstance(self.base, EightGaussians):
            return self.base.as_mixture(torch.float32)
        return None

    def velocity(self, model: nn.Module, condition: Tensor | None = None) -> Field:
        """The velocity field b of a trained ``model`` (see the module table), conditioned on
        ``condition`` when given (the ξ of :meth:`starts`)."""
        obj, interp = self.config.objective, self.interpolant
        net = bind_condition(model, condition)
        if obj == "velocity":
            return net
        if obj == "mean-flow":
            return FlowMap(cast(AverageVelocity, net)).velocity  # u(t, t, x)
        if obj == "split":
            return VelocityFromSplit(interp, net)
        if obj in ("denoiser", "score") and interp.one_sided:
            return (VelocityFromDenoiser if obj == "denoiser" else VelocityFromScore)(interp, net)
        if obj == "target" and not interp.is_stochastic:
            return VelocityFromTarget(interp, net)
        raise ValueError(f"a {obj} objective with {interp!r} does not determine the velocity")

    def flow_map(self, model: nn.Module) -> FlowMap | None:
        """The flow map x ↦ x + (r − t)·u(t, r, x) of a ``mean-flow`` run's ``model`` (for
        :class:`~interpolants.integrate.FlowMapSteps`), or ``None`` for a run that learned no
        average velocity."""
        return FlowMap(model) if self.config.objective == "mean-flow" else None

    def score(self, model: nn.Module, condition: Tensor | None = None) -> Field | None:
        """The score field s of a trained ``model``, or ``None`` if the run did not learn it
        (a one-sided run with a coupling other than the independent one has none)."""
        obj, interp = self.config.objective, self.interpolant
        net = bind_condition(model, condition)
        if interp.one_sided and self.config.coupling != "independent":
            return None  # s = −η_z/α needs x0 ~ N(0, I) independent of x1 (not reflow's)
        if obj == "split":
            return ScoreFromDenoiser(interp, lambda t, x: net(t, x)[1])
        if obj == "denoiser":
            return ScoreFromDenoiser(interp, net)
        if obj == "score":
            return net
        if obj == "velocity" and interp.one_sided:
            return ScoreFromVelocity(interp, net)
        return None

    def save_config(self, folder: Path) -> None:
        """Write ``config.json`` into ``folder`` atomically."""
        write_text_atomic(folder / "config.json", self.config.to_json())


class _VelocityModule(nn.Module):
    """A run's velocity field as a module holding the trained model (for InterpolantFlow)."""

    field: Field

    def __init__(self, model: nn.Module, field: Field) -> None:
        super().__init__()
        self.model = model
        self.__dict__["field"] = field  # not a submodule: its weights are the model's

    def forward(self, t: Tensor, x: Tensor) -> Tensor:
        out: Tensor = self.field(t, x)
        return out


BEST = "best.pt"
"""The file of a run folder holding the weights of lowest validation NLL (``--validation``)."""


def load_run(folder: Path) -> tuple[Run, nn.Module]:
    """Rebuild a run from its folder and load its sampling weights: those of lowest validation
    NLL (``best.pt``) when the run was trained with ``--validation``, else the checkpoint's
    EMA weights. ``run.weights`` says which (file and step).

    Raises :class:`~interpolants.train.CheckpointError` for a checkpoint that cannot be
    read, does not fit the run's model or holds non-finite weights.
    """
    config = load_config(folder)
    run = Run(config)
    path = folder / BEST
    if not path.exists():
        path = folder / "checkpoint.pt"
    state = load_checkpoint(path)
    weights = state.get("ema") if state.get("ema") is not None else state.get("model")
    run.weights = f"{path.name} (step {state.get('step')})"
    if not isinstance(weights, dict):
        raise CheckpointError(f"{path} holds no model weights")
    try:
        run.model.load_state_dict(weights)
    except RuntimeError as err:
        raise CheckpointError(f"{path} does not fit the run's model: {first_line(err)}") from err
    bad = [k for k, v in weights.items() if v.is_floating_point() and not v.isfinite().all()]
    if bad:
        raise CheckpointError(f"{path} holds non-finite weights ({bad[0]}, ...)")
    run.model.eval()
    return run, run.model
