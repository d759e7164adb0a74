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
==============  ===========================================  =======================================
"""

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal, cast

import torch
from torch import Tensor, nn

from .._atomic import write_text_atomic
from ..analytic._exact import GaussianMixture
from ..coupling import SchrodingerBridgeCoupling, SinkhornCoupling, StableMatchingCoupling
from ..coupling._base import Coupling, IndependentCoupling
from ..coupling._exact import OTCoupling
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
from ..fields import (
    Field,
    ScoreFromDenoiser,
    ScoreFromVelocity,
    VelocityFromDenoiser,
    VelocityFromScore,
    VelocityFromSplit,
    VelocityFromTarget,
)
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
from ..nn._mlp import MLP, TwoHeadMLP
from ..objective import DenoiserObjective, ScoreObjective, TargetObjective
from ..objective._base import Objective
from ..objective._losses import SplitObjective, VelocityObjective

__all__ = [
    "BASES",
    "COUPLINGS",
    "DATASETS",
    "GAMMAS",
    "INTEGRATORS",
    "INTERPOLANTS",
    "LR_SCHEDULES",
    "OBJECTIVES",
    "Run",
    "RunConfig",
    "load_run",
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
COUPLINGS: dict[str, Callable[[float], Coupling]] = {
    "independent": lambda reg: IndependentCoupling(),
    "ot": lambda reg: OTCoupling(),
    "sinkhorn": lambda reg: SinkhornCoupling(reg=reg),
    "sb": lambda reg: SchrodingerBridgeCoupling(sigma=math.sqrt(reg / 2)),
    "stable": lambda reg: StableMatchingCoupling(),
}
"""Command-line names of the couplings (the argument is the entropic regularisation)."""
OBJECTIVES: dict[str, type[Objective]] = {
    "velocity": VelocityObjective,
    "split": SplitObjective,
    "denoiser": DenoiserObjective,
    "score": ScoreObjective,
    "target": TargetObjective,
}
"""Command-line names of the objectives."""
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
LR_SCHEDULES = ("cosine", "constant")
"""Learning-rate schedules (cosine decay to zero over the run, or constant)."""
DATASETS = (*TOY_DATASETS, "digits")
"""Command-line names of the targets (the 2-D toys and the bundled digits)."""
BASES = ("gaussian", "8gaussians", *[k for k in TOY_DATASETS if k != "8gaussians"])
"""Command-line names of the bases (N(0, I) or a 2-D toy)."""


PREFETCH_BACKENDS = ("thread", "process")
"""Command-line names of :class:`PrefetchedBatches`'s producer kinds."""


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

    def validate(self) -> "RunConfig":
        """Raise :class:`ValueError` naming the first bad field."""
        _choice("data", self.data, DATASETS)
        _choice("base", self.base, BASES)
        _choice("interpolant", self.interpolant, INTERPOLANTS)
        _choice("gamma", self.gamma, GAMMAS)
        _choice("coupling", self.coupling, COUPLINGS)
        _choice("objective", self.objective, OBJECTIVES)
        _choice("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        _choice("prefetch_backend", self.prefetch_backend, PREFETCH_BACKENDS)
        for name in ("steps", "batch", "hidden", "depth"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}")
        for name in ("lr", "gamma_scale", "coupling_reg"):
            if not float(getattr(self, name)) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not 0 <= self.ema < 1:
            raise ValueError(f"ema must lie in [0, 1), got {self.ema}")
        if int(self.prefetch) < 0:
            raise ValueError(f"prefetch must be a non-negative integer, got {self.prefetch}")
        return self

    def to_json(self) -> str:
        """The configuration as a JSON document."""
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "RunConfig":
        """Build from a dictionary, ignoring unknown keys."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known}).validate()


class Run:
    """All objects of a :class:`RunConfig`: sources, interpolant, objective, model, fields."""

    def __init__(self, config: RunConfig) -> None:
        self.config = config.validate()
        self.target, self.test_target, self.dim = self._target()
        gamma = GAMMAS[config.gamma](config.gamma_scale)
        self.interpolant = INTERPOLANTS[config.interpolant](gamma)
        self.base = self._base()
        self.coupling = COUPLINGS[config.coupling](config.coupling_reg)
        self.objective = OBJECTIVES[config.objective](self.interpolant)
        torch.manual_seed(config.seed)
        two_heads = config.objective == "split"
        net = TwoHeadMLP if two_heads else MLP
        self.model: nn.Module = net(self.dim, hidden=config.hidden, depth=config.depth)

    def _target(self) -> tuple[Source, Tensor, int]:
        gen = torch.Generator().manual_seed(10_000 + self.config.seed)
        if self.config.data == "digits":
            digits = load_digits(gen)
            return TensorData(digits.train), digits.test, 64
        toy = TOY_DATASETS[self.config.data]()
        return toy, toy.sample(2000, gen), 2

    def _base(self) -> Source:
        if self.config.base == "gaussian" or self.interpolant.one_sided:
            return GaussianMixtureData(GaussianMixture.standard_normal(self.dim))
        if self.dim != 2:
            raise ValueError(f"base {self.config.base!r} is 2-D but the data has {self.dim} dims")
        return TOY_DATASETS[self.config.base]()

    def optimizer(
        self,
    ) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler | None]:
        """Adam at ``lr`` and the configured schedule over ``steps``."""
        opt = torch.optim.Adam(self.model.parameters(), lr=self.config.lr)
        if self.config.lr_schedule == "cosine":
            return opt, torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=self.config.steps)
        return opt, None

    def batches(self) -> PairedBatches:
        """The inline coupled-batch pipeline."""
        return PairedBatches(self.base, self.target, self.config.batch, self.coupling)

    def batch_source(self) -> PairedBatches | PrefetchedBatches:
        """What the trainer draws from: :meth:`batches` inline, or with ``prefetch`` > 0 a
        :class:`PrefetchedBatches` whose ``prefetch`` producers (threads or
        processes, by ``prefetch_backend``; seeded with ``seed``) compute the coupled batches
        ahead; close it when training ends."""
        if self.config.prefetch == 0:
            return self.batches()
        backend = cast(Literal["thread", "process"], self.config.prefetch_backend)  # validated
        return PrefetchedBatches(
            self.batches(), seed=self.config.seed, workers=self.config.prefetch, backend=backend
        )

    def base_log_prob(self) -> Callable[[Tensor], Tensor] | None:
        """log ρ0 when known in closed form (Gaussian and 8-Gaussians bases), else ``None``."""
        if isinstance(self.base, GaussianMixtureData):
            mixture = self.base.mixture
        elif isinstance(self.base, EightGaussians):
            mixture = self.base.as_mixture(torch.float32)
        else:
            return None
        return lambda x: mixture.to(dtype=x.dtype, device=x.device).log_prob(x)

    def velocity(self, model: nn.Module) -> Field:
        """The velocity field b of a trained ``model`` (see the module table)."""
        obj, interp = self.config.objective, self.interpolant
        if obj == "velocity":
            return model
        if obj == "split":
            return VelocityFromSplit(interp, model)
        if obj in ("denoiser", "score") and interp.one_sided:
            return (VelocityFromDenoiser if obj == "denoiser" else VelocityFromScore)(interp, model)
        if obj == "target" and not interp.is_stochastic:
            return VelocityFromTarget(interp, model)
        raise ValueError(f"a {obj} objective with {interp!r} does not determine the velocity")

    def score(self, model: nn.Module) -> Field | None:
        """The score field s of a trained ``model``, or ``None`` if the run did not learn it."""
        obj, interp = self.config.objective, self.interpolant
        if obj == "split":
            return ScoreFromDenoiser(interp, lambda t, x: model(t, x)[1])
        if obj == "denoiser":
            return ScoreFromDenoiser(interp, model)
        if obj == "score":
            return model
        if obj == "velocity" and interp.one_sided:
            return ScoreFromVelocity(interp, model)
        return None

    def save_config(self, folder: Path) -> None:
        """Write ``config.json`` into ``folder`` atomically."""
        write_text_atomic(folder / "config.json", self.config.to_json())


def load_run(folder: Path) -> tuple[Run, nn.Module]:
    """Rebuild a run from its folder and load its EMA weights (the sampling model)."""
    from ..train._trainer import load_checkpoint

    config = RunConfig.from_dict(json.loads((folder / "config.json").read_text()))
    run = Run(config)
    state = load_checkpoint(folder / "checkpoint.pt")
    run.model.load_state_dict(state["ema"] if state.get("ema") is not None else state["model"])
    run.model.eval()
    return run, run.model
