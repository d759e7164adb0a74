"""interpolants: typed PyTorch stochastic interpolants.

The top level holds the four abstractions (:class:`Interpolant`, :class:`Coupling`,
:class:`Objective`, :class:`Integrator`), the concrete classes a first script names, and the
subpackages; everything else lives in its subpackage, under exactly one public name:

* :mod:`interpolants.interpolant` — interpolant families and γ schedules;
* :mod:`interpolants.coupling` — minibatch couplings, costs and solvers;
* :mod:`interpolants.objective` — regression objectives and time samplers;
* :mod:`interpolants.fields` — conversions between fields, guidance;
* :mod:`interpolants.integrate` — integrators, diffusions, likelihood;
* :mod:`interpolants.data` — sources, coupled batches, prefetching, datasets;
* :mod:`interpolants.density` — a trained model as a distribution (``log_prob``, ``sample``);
* :mod:`interpolants.analytic` — the exact Gaussian-mixture test bed;
* :mod:`interpolants.metrics`, :mod:`interpolants.nn`, :mod:`interpolants.train`;
* :mod:`interpolants.cli` — the command line, its recipes and evaluation helpers.

Set the environment variable ``INTERPOLANTS_TYPECHECK=1`` before importing to check every
call's shapes and dtypes at runtime (jaxtyping + beartype) and the range of the time tensors
passed to per-step code (a host read per call, which the default mode never makes).
"""

import os as _os

if _os.environ.get("INTERPOLANTS_TYPECHECK", "").lower() in {"1", "true", "yes"}:
    from jaxtyping import install_import_hook as _install_import_hook

    _install_import_hook("interpolants", "beartype.beartype")

from . import analytic as analytic
from . import cli as cli
from . import coupling as coupling
from . import data as data
from . import density as density
from . import fields as fields
from . import integrate as integrate
from . import interpolant as interpolant
from . import metrics as metrics
from . import nn as nn
from . import objective as objective
from . import train as train
from .analytic._exact import GaussianMixture as GaussianMixture
from .coupling._base import Coupling as Coupling
from .coupling._exact import OTCoupling as OTCoupling
from .coupling._independent import IndependentCoupling as IndependentCoupling
from .data._batches import PairedBatches as PairedBatches
from .integrate._adaptive import Dopri5 as Dopri5
from .integrate._base import Integrator as Integrator
from .integrate._base import time_grid as time_grid
from .integrate._dynamics import ODE as ODE
from .integrate._dynamics import SDE as SDE
from .integrate._fixed import Euler as Euler
from .integrate._likelihood import log_likelihood as log_likelihood
from .interpolant._base import Interpolant as Interpolant
from .interpolant._families import LinearInterpolant as LinearInterpolant
from .interpolant._gamma import BrownianGamma as BrownianGamma
from .nn._mlp import MLP as MLP
from .objective._base import Objective as Objective
from .objective._losses import SplitObjective as SplitObjective
from .objective._losses import VelocityObjective as VelocityObjective
from .train._trainer import Trainer as Trainer

__version__ = "0.1.0.dev0"

__all__ = [
    "MLP",
    "ODE",
    "SDE",
    "BrownianGamma",
    "Coupling",
    "Dopri5",
    "Euler",
    "GaussianMixture",
    "IndependentCoupling",
    "Integrator",
    "Interpolant",
    "LinearInterpolant",
    "OTCoupling",
    "Objective",
    "PairedBatches",
    "SplitObjective",
    "Trainer",
    "VelocityObjective",
    "analytic",
    "cli",
    "coupling",
    "data",
    "density",
    "fields",
    "integrate",
    "interpolant",
    "log_likelihood",
    "metrics",
    "nn",
    "objective",
    "time_grid",
    "train",
]
