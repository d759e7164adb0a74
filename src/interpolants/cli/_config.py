r"""Run configurations: the command line's names, and the rules that refuse unusable runs.

A run is a :class:`RunConfig` of plain strings and numbers (stored as ``config.json`` in its
folder); the tables below name the library objects a run may choose, and
:meth:`RunConfig.validate` refuses a combination it could not sample with before anything is
trained. :mod:`interpolants.cli._recipes` turns a valid configuration into those objects.

**Runs that cannot be used are refused up front.** :meth:`RunConfig.validate` rejects every
combination of flags that would train a model the run cannot sample with, or a path that
contradicts the coupling, with a message naming the flag to change: an objective whose field
does not give the velocity for the path (``denoiser`` and ``score`` need a one-sided
interpolant; ``target`` needs γ ≡ 0), an objective or interpolant that needs a noise with
``--gamma none``, a one-sided interpolant with a γ or a non-Gaussian base (it uses neither), the
mirror interpolant between two different distributions, ``--coupling sb`` on a path that is not
the bridge's, a label-conditional coupling on unlabelled data, and the in-painting coupling with
a one-sided path or a non-Gaussian base.

**Mean flows.** ``--objective mean-flow`` trains an
:class:`~interpolants.nn.AverageVelocityMLP` u(t, r, x) with
:class:`~interpolants.objective.MeanFlowObjective`; ``interpolants sample`` then jumps
x ↦ x + (r − t)·u(t, r, x) over ``--steps`` intervals
(:class:`~interpolants.integrate.FlowMapSteps`; ``--steps 1``: one evaluation), while the
likelihood and an explicit ``--method`` integrate the ODE of its instantaneous velocity
u(t, t, x). It needs a path without noise (γ ≡ 0: ``--gamma none``, or a one-sided
interpolant). It learns the flow map of a probability-flow ODE and no score, so a noise γz would
buy no SDE sampler; it would only add γ̇z to the regression target, unbounded at t = 0 for
``--gamma brownian``, where the one-step sampler starts. So ``--interpolant mirror`` and
``encdec`` (which need a noise) and ``--coupling sb`` (whose path is Brownian) are refused; so
is ``--coupling inpaint``, whose mask the average-velocity network does not take as a condition.

**Coupling regularisation.** ``--coupling-reg`` is Sinkhorn's *relative* regularisation
ε = reg × mean(C). The Schrödinger bridge has no free regularisation: its static coupling is
the entropic plan with the *absolute* ε = 2σ² of the reference σW, and the bridge's path is
``--interpolant linear --gamma brownian`` with a = σ², so ``--coupling sb`` takes
σ = √(``--gamma-scale``) and refuses a ``--coupling-reg``.
"""

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from ..data import TOY_DATASETS
from ..integrate import RK4, Bosh3, Heun, Midpoint, TorchSDEIntegrator
from ..integrate._adaptive import Dopri5
from ..integrate._base import Integrator
from ..integrate._fixed import Euler
from ..interpolant import (
    EncoderDecoderInterpolant,
    GammaSchedule,
    MirrorInterpolant,
    NoGamma,
    OneSidedLinearInterpolant,
    QuadraticGamma,
    SineSquaredGamma,
    TrigonometricInterpolant,
    VPInterpolant,
)
from ..interpolant._base import Interpolant
from ..interpolant._families import LinearInterpolant
from ..interpolant._gamma import BrownianGamma
from ..objective import DenoiserObjective, MeanFlowObjective, ScoreObjective, TargetObjective
from ..objective._base import Objective
from ..objective._losses import SplitObjective, VelocityObjective

__all__ = [
    "BASES",
    "COUPLING_NAMES",
    "DATASETS",
    "DIGITS_TRAIN",
    "GAMMAS",
    "INTEGRATORS",
    "INTERPOLANTS",
    "LR_SCHEDULES",
    "OBJECTIVES",
    "ONE_SIDED",
    "PREFETCH_BACKENDS",
    "REFLOW_METHODS",
    "SPLITS",
    "RunConfig",
    "load_config",
]

INTERPOLANTS: dict[str, Callable[[GammaSchedule], Interpolant]] = {
    "linear": LinearInterpolant,
    "trig": TrigonometricInterpolant,
    "encdec": EncoderDecoderInterpolant,
    "mirror": MirrorInterpolant,
    "onesided-linear": lambda g: OneSidedLinearInterpolant(),
    "vp": lambda g: VPInterpolant(),
}
"""Command-line names of the interpolant families (γ given separately)."""
GAMMAS: dict[str, Callable[[float], GammaSchedule]] = {
    "none": lambda a: NoGamma(),
    "brownian": lambda a: BrownianGamma(a),
    "quadratic": lambda a: QuadraticGamma(a),
    "sinesq": lambda a: SineSquaredGamma(a),
}
"""Command-line names of the γ schedules (the argument is the scale a)."""
COUPLING_NAMES = (
    "independent",
    "ot",
    "sinkhorn",
    "sb",
    "stable",
    "label-ot",
    "inpaint",
    "reflow",
)
"""Command-line names of the couplings (built by :data:`interpolants.cli.COUPLINGS`)."""
OBJECTIVES: dict[str, type[Objective]] = {
    "velocity": VelocityObjective,
    "split": SplitObjective,
    "denoiser": DenoiserObjective,
    "score": ScoreObjective,
    "target": TargetObjective,
    "mean-flow": MeanFlowObjective,
}
"""Command-line names of the objectives (``mean-flow`` learns an average velocity u(t, r, x):
see the module notes)."""
INTEGRATORS: dict[str, Callable[[], Integrator]] = {
    "euler": Euler,
    "heun": Heun,
    "midpoint": Midpoint,
    "rk4": RK4,
    "dopri5": Dopri5,
    "bosh3": Bosh3,
    "torchsde-euler": lambda: TorchSDEIntegrator("euler"),
    "torchsde-heun": lambda: TorchSDEIntegrator("heun"),
}
"""The integrators by command-line name. Each samples the ODE (``--eps 0``) or the SDE
(``--eps > 0``) if it :meth:`~interpolants.Integrator.supports` it: the fixed-step rules both
(Euler on the SDE is Euler–Maruyama, Heun stochastic Heun), Dopri5 and Bosh3 the ODE, torchsde
the SDE."""
REFLOW_METHODS = tuple(k for k in INTEGRATORS if not k.startswith("torchsde"))
"""The integrators ``--reflow-method`` may name (those of ODEs)."""
LR_SCHEDULES = ("cosine", "constant")
"""Learning-rate schedules (cosine decay to zero over the run, or constant)."""
DATASETS = (*TOY_DATASETS, "digits")
"""Command-line names of the targets (the 2-D toys and the bundled digits)."""
BASES = ("gaussian", "8gaussians", *[k for k in TOY_DATASETS if k != "8gaussians"])
"""Command-line names of the bases (N(0, I) or a 2-D toy)."""


SPLITS = ("test", "validation", "train")
"""The data splits ``interpolants nll --split`` evaluates (see :meth:`Run.split`)."""
DIGITS_TRAIN = 1497
"""Training images of :func:`~interpolants.data.load_digits` (before a validation set)."""
ONE_SIDED = ("onesided-linear", "vp")
"""The one-sided interpolant families (base N(0, I), γ ≡ 0)."""
PREFETCH_BACKENDS = ("thread", "process")
"""Command-line names of :class:`PrefetchedBatches`'s producer kinds."""


def _flag(name: str) -> str:
    """The command-line flag of a :class:`RunConfig` field (``gamma_scale`` → ``--gamma-scale``)."""
    return "--" + name.replace("_", "-")


def _choice(name: str, value: str, options: Any) -> None:
    if value not in options:
        raise ValueError(f"unknown {name} {value!r}; choose one of: {', '.join(options)}")


@dataclass
class RunConfig:
    """A run, by names and numbers (JSON-serialisable)."""

    data: str = "moons"
    base: str = "8gaussians"
    interpolant: str = "linear"
    gamma: str = "quadratic"
    gamma_scale: float = 1.0
    coupling: str = "ot"
    coupling_reg: float = 0.05
    objective: str = "split"
    steps: int = 3000
    batch: int = 256
    lr: float = 1e-2
    lr_schedule: str = "cosine"
    hidden: int = 256
    depth: int = 3
    ema: float = 0.995
    seed: int = 0
    device: str = "cpu"
    prefetch: int = 0  # producers computing coupled batches ahead (0: inline)
    prefetch_backend: str = "thread"  # the producers: "thread" or "process"
    reflow_from: str = ""  # --coupling reflow: the folder of the teacher run
    reflow_method: str = "rk4"  # the ODE integrator of the teacher's pairs
    reflow_steps: int = 16  # its steps
    distill: bool = False  # train at t = 0 only: one-step distillation of the teacher
    validation: int = 0  # held-out validation points (0: none; see Run.split)
    patience: int = 0  # validation evaluations without improvement before stopping (0: never)
    val_every: int = 200  # steps between validation evaluations

    def validate(self) -> "RunConfig":
        """Raise :class:`ValueError` naming the first bad field, or the flag to change for a
        combination the run could not sample with (module notes)."""
        _choice("data", self.data, DATASETS)
        _choice("base", self.base, BASES)
        _choice("interpolant", self.interpolant, INTERPOLANTS)
        _choice("gamma", self.gamma, GAMMAS)
        _choice("coupling", self.coupling, COUPLING_NAMES)
        _choice("objective", self.objective, OBJECTIVES)
        _choice("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        _choice("prefetch_backend", self.prefetch_backend, PREFETCH_BACKENDS)
        _choice("reflow_method", self.reflow_method, REFLOW_METHODS)
        # the messages name the flag (--gamma-scale), what a user of the command changes
        for name in ("steps", "batch", "hidden", "depth", "reflow_steps"):
            if int(getattr(self, name)) < 1:
                raise ValueError(
                    f"{_flag(name)} must be a positive integer, got {getattr(self, name)}"
                )
        for name in ("lr", "gamma_scale", "coupling_reg"):
            if not float(getattr(self, name)) > 0:
                raise ValueError(f"{_flag(name)} must be positive, got {getattr(self, name)}")
        if not 0 <= self.ema < 1:
            raise ValueError(f"--ema must lie in [0, 1), got {self.ema}")
        if int(self.prefetch) < 0:
            raise ValueError(f"--prefetch must be a non-negative integer, got {self.prefetch}")
        for name in ("validation", "patience"):
            if int(getattr(self, name)) < 0:
                raise ValueError(
                    f"{name} must be a non-negative integer, got {getattr(self, name)}"
                )
        if int(self.val_every) < 1:
            raise ValueError(f"val_every must be a positive integer, got {self.val_every}")
        if self.patience > 0 and self.validation == 0:
            raise ValueError("--patience stops on the validation NLL: pass --validation N too")
        if self.data == "digits" and self.validation >= DIGITS_TRAIN:
            raise ValueError(
                f"--validation {self.validation} leaves no training images of {DIGITS_TRAIN}"
            )
        self._check_usable()
        return self

    def _check_usable(self) -> None:
        """The combination rules of the module notes, first failure raised."""
        interp, gamma, obj, coupling = self.interpolant, self.gamma, self.objective, self.coupling
        one_sided = interp in ONE_SIDED
        noises = "--gamma brownian, quadratic or sinesq"
        if obj == "mean-flow":
            self._check_mean_flow()
        if one_sided:
            if gamma != "none":
                raise ValueError(
                    f"--interpolant {interp} is one-sided (its base N(0, I) is the noise, "
                    "γ ≡ 0): pass --gamma none"
                )
            if self.base != "gaussian":
                raise ValueError(f"--interpolant {interp} is one-sided: pass --base gaussian")
        elif gamma == "none" and interp in ("mirror", "encdec"):
            raise ValueError(f"--interpolant {interp} needs a noise: pass {noises}")
        if interp == "mirror" and self.base != self.data:
            raise ValueError(
                "--interpolant mirror maps the data to itself (x0 = x1): pass --base "
                f"{self.data}" + (" (not available for --data digits)" if self.dim > 2 else "")
            )
        if self.dim > 2 and self.base != "gaussian":
            raise ValueError(
                f"--base {self.base} is 2-D but --data {self.data} has {self.dim} dims: pass "
                "--base gaussian"
            )
        stochastic = not one_sided and gamma != "none"
        if obj in ("split", "denoiser", "score") and not (stochastic or one_sided):
            raise ValueError(
                f"--objective {obj} learns the denoiser η_z and needs a noise: pass {noises}, "
                "or a one-sided --interpolant (onesided-linear, vp)"
            )
        if obj in ("denoiser", "score") and not one_sided:
            raise ValueError(
                f"--objective {obj} learns η_z (or s) only, which gives the velocity only for a "
                f"one-sided interpolant: use --objective split with --interpolant {interp}, or "
                "--interpolant onesided-linear or vp"
            )
        if obj == "target" and stochastic:
            raise ValueError(
                "--objective target learns E[x1 | x_t], which gives the velocity only when "
                "γ ≡ 0: pass --gamma none (or use --objective velocity or split)"
            )
        if one_sided and obj == "score" and coupling != "independent":
            raise ValueError(
                "--objective score with a one-sided interpolant gives the velocity only for "
                "independent x0 ~ N(0, I): pass --coupling independent"
            )
        default_reg = RunConfig.coupling_reg
        if coupling != "sinkhorn" and self.coupling_reg != default_reg:
            raise ValueError(
                f"--coupling-reg is the relative regularisation of --coupling sinkhorn; "
                f"--coupling {coupling} does not use it"
                + (": sb's is ε = 2σ² with σ² = --gamma-scale" if coupling == "sb" else "")
            )
        if coupling == "sb" and (interp != "linear" or gamma != "brownian"):
            raise ValueError(
                "--coupling sb pairs by the Schrödinger bridge of σW, whose path is "
                "--interpolant linear --gamma brownian (σ² = --gamma-scale): pass those"
            )
        if coupling == "label-ot" and self.data != "digits":
            raise ValueError(
                f"--coupling label-ot pairs within classes but --data {self.data} has no "
                "labels: pass --data digits"
            )
        if (coupling == "reflow") != (self.reflow_from != ""):
            raise ValueError(
                "--coupling reflow needs --reflow-from RUN (the teacher run's folder)"
                if coupling == "reflow"
                else f"--reflow-from names the teacher of --coupling reflow, not of --coupling "
                f"{coupling}: pass --coupling reflow"
            )
        default = RunConfig()
        if coupling != "reflow" and (
            self.reflow_method != default.reflow_method or self.reflow_steps != default.reflow_steps
        ):
            raise ValueError("--reflow-method and --reflow-steps need --coupling reflow")
        if self.distill and (
            coupling != "reflow" or (interp, gamma, obj) != ("linear", "none", "velocity")
        ):
            raise ValueError(
                "--distill trains one Euler step x0 + b(0, x0) onto the teacher's X_1(x0): it "
                "needs --coupling reflow --interpolant linear --gamma none --objective velocity"
            )
        if coupling == "inpaint":
            if one_sided or interp == "mirror":
                raise ValueError(
                    f"--coupling inpaint builds x0 from x1, which --interpolant {interp} does not "
                    "allow: pass --interpolant linear, trig or encdec"
                )
            if self.base != "gaussian":
                raise ValueError(
                    "--coupling inpaint fills the mask with N(0, I) noise: pass --base gaussian"
                )
        try:
            INTERPOLANTS[interp](GAMMAS[gamma](self.gamma_scale))
        except ValueError as err:
            raise ValueError(
                f"--interpolant {interp} --gamma {gamma} --gamma-scale {self.gamma_scale}: {err}"
            ) from err

    def _check_mean_flow(self) -> None:
        """The combinations ``--objective mean-flow`` refuses (module notes), checked before
        the general rules so that the message says what to change for a mean flow."""
        interp, coupling = self.interpolant, self.coupling
        why = "--objective mean-flow learns the flow map of a path without noise (γ ≡ 0)"
        if interp in ("mirror", "encdec"):
            raise ValueError(
                f"{why}, and --interpolant {interp} needs one: pass --interpolant linear or trig "
                "with --gamma none, or onesided-linear or vp"
            )
        if coupling == "sb":
            raise ValueError(
                f"{why}, and --coupling sb pairs for the Brownian bridge's path: pass --coupling "
                "ot (the σ → 0 limit of its plan) or sinkhorn"
            )
        if coupling == "inpaint":
            raise ValueError(
                "--objective mean-flow trains an average-velocity network that takes no "
                "condition, and --coupling inpaint conditions on its mask: pass another "
                "--coupling, or --objective velocity or split"
            )
        if interp not in ONE_SIDED and self.gamma != "none":
            raise ValueError(
                f"{why}: pass --gamma none (a noise γz would only add γ̇z to its target, "
                "unbounded at t = 0 for --gamma brownian; it learns no score for an SDE)"
            )

    @property
    def dim(self) -> int:
        """The data dimension (64 for the digits, else 2)."""
        return 64 if self.data == "digits" else 2

    def to_json(self) -> str:
        """The configuration as a JSON document."""
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "RunConfig":
        """Build from a dictionary, ignoring unknown keys."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known}).validate()


def load_config(folder: Path) -> RunConfig:
    """The :class:`RunConfig` of a run folder (``config.json``), validated."""
    path = folder / "config.json"
    try:
        values = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from err
    if not isinstance(values, dict):
        raise ValueError(f"{path} does not hold a run configuration")
    return RunConfig.from_dict(values)
