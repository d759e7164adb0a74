"""Integrators: ODE and SDE sampling, adaptive stepping, and log-likelihoods.

An :class:`Integrator` steps :class:`ODE` or
:class:`SDE` dynamics on a time grid and returns a :class:`Solution`; the field
protocol, grids and checks are described with :class:`Integrator`, the SDEs and
their end handling with :class:`SDE`, the fixed-step rules with
:class:`FixedStepIntegrator`, the likelihood with :func:`log_likelihood`, few-step
sampling with a learned average velocity with :class:`FlowMap` and :class:`FlowMapSteps`.
"""

from ._adaptive import AdaptiveIntegrator as AdaptiveIntegrator
from ._adaptive import Bosh3 as Bosh3
from ._adaptive import EmbeddedRungeKutta as EmbeddedRungeKutta
from ._base import CountedField as CountedField
from ._base import Problem as Problem
from ._base import Solution as Solution
from ._diffusion import ConstantDiffusion as ConstantDiffusion
from ._diffusion import CustomDiffusion as CustomDiffusion
from ._diffusion import Diffusion as Diffusion
from ._diffusion import GammaProportionalDiffusion as GammaProportionalDiffusion
from ._divergence import DivergenceEstimator as DivergenceEstimator
from ._divergence import DivergenceField as DivergenceField
from ._divergence import ExactDivergence as ExactDivergence
from ._divergence import HutchinsonDivergence as HutchinsonDivergence
from ._dynamics import Dynamics as Dynamics
from ._fixed import RK4 as RK4
from ._fixed import FixedStepIntegrator as FixedStepIntegrator
from ._fixed import Heun as Heun
from ._fixed import Midpoint as Midpoint
from ._flow_map import AverageVelocity as AverageVelocity
from ._flow_map import FlowMap as FlowMap
from ._flow_map import FlowMapSteps as FlowMapSteps
from ._likelihood import LikelihoodResult as LikelihoodResult
from ._tableau import Tableau as Tableau
from ._torchsde import TorchSDEIntegrator as TorchSDEIntegrator

__all__ = [
    "RK4",
    "AdaptiveIntegrator",
    "AverageVelocity",
    "Bosh3",
    "ConstantDiffusion",
    "CountedField",
    "CustomDiffusion",
    "Diffusion",
    "DivergenceEstimator",
    "DivergenceField",
    "Dynamics",
    "EmbeddedRungeKutta",
    "ExactDivergence",
    "FixedStepIntegrator",
    "FlowMap",
    "FlowMapSteps",
    "GammaProportionalDiffusion",
    "Heun",
    "HutchinsonDivergence",
    "LikelihoodResult",
    "Midpoint",
    "Problem",
    "Solution",
    "Tableau",
    "TorchSDEIntegrator",
]
