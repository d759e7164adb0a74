"""Integrators: ODE and SDE sampling, adaptive stepping, and log-likelihoods.

The field protocol, time grids and the :class:`Solution` returned by every integrator are
described in :mod:`interpolants.integrate.base`; the SDEs and their end handling in
:mod:`interpolants.integrate.sde`; the likelihood in :mod:`interpolants.integrate.likelihood`.
"""

from .adaptive import AdaptiveIntegrator as AdaptiveIntegrator
from .adaptive import Dopri5 as Dopri5
from .base import Integrator as Integrator
from .base import ODEIntegrator as ODEIntegrator
from .base import Solution as Solution
from .base import time_grid as time_grid
from .diffusion import ConstantDiffusion as ConstantDiffusion
from .diffusion import CustomDiffusion as CustomDiffusion
from .diffusion import Diffusion as Diffusion
from .diffusion import GammaProportionalDiffusion as GammaProportionalDiffusion
from .likelihood import DivergenceEstimator as DivergenceEstimator
from .likelihood import DivergenceField as DivergenceField
from .likelihood import ExactDivergence as ExactDivergence
from .likelihood import HutchinsonDivergence as HutchinsonDivergence
from .likelihood import LikelihoodResult as LikelihoodResult
from .likelihood import bits_per_dim as bits_per_dim
from .likelihood import dequantize as dequantize
from .likelihood import log_likelihood as log_likelihood
from .ode import RK4 as RK4
from .ode import Euler as Euler
from .ode import FixedStepIntegrator as FixedStepIntegrator
from .ode import Heun as Heun
from .ode import Midpoint as Midpoint
from .sde import EulerMaruyama as EulerMaruyama
from .sde import OneStepSDEIntegrator as OneStepSDEIntegrator
from .sde import SDEIntegrator as SDEIntegrator
from .sde import StochasticHeun as StochasticHeun
from .torchsde_backend import TorchSDEIntegrator as TorchSDEIntegrator

__all__ = [
    "RK4",
    "AdaptiveIntegrator",
    "ConstantDiffusion",
    "CustomDiffusion",
    "Diffusion",
    "DivergenceEstimator",
    "DivergenceField",
    "Dopri5",
    "Euler",
    "EulerMaruyama",
    "ExactDivergence",
    "FixedStepIntegrator",
    "Heun",
    "HutchinsonDivergence",
    "Integrator",
    "LikelihoodResult",
    "Midpoint",
    "ODEIntegrator",
    "OneStepSDEIntegrator",
    "SDEIntegrator",
    "Solution",
    "StochasticHeun",
    "TorchSDEIntegrator",
    "bits_per_dim",
    "dequantize",
    "log_likelihood",
    "time_grid",
]
