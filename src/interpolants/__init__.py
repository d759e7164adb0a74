"""interpolants: typed PyTorch stochastic interpolants.

Set the environment variable ``INTERPOLANTS_TYPECHECK=1`` before importing to check every
call's shapes and dtypes at runtime (jaxtyping + beartype, ~20 µs a call).
"""

import os as _os

if _os.environ.get("INTERPOLANTS_TYPECHECK", "").lower() in {"1", "true", "yes"}:
    from jaxtyping import install_import_hook as _install_import_hook

    _install_import_hook("interpolants", "beartype.beartype")

from .analytic import ExactInterpolantFields as ExactInterpolantFields
from .analytic import GaussianMixture as GaussianMixture
from .coupling import AssignmentSolver as AssignmentSolver
from .coupling import AutoAssignmentSolver as AutoAssignmentSolver
from .coupling import Cost as Cost
from .coupling import Coupling as Coupling
from .coupling import CustomCost as CustomCost
from .coupling import DataDependentCoupling as DataDependentCoupling
from .coupling import EuclideanCost as EuclideanCost
from .coupling import IndependentCoupling as IndependentCoupling
from .coupling import LabelConditionalCoupling as LabelConditionalCoupling
from .coupling import LapjvSolver as LapjvSolver
from .coupling import LapxSolver as LapxSolver
from .coupling import NetworkSimplexSolver as NetworkSimplexSolver
from .coupling import OTCoupling as OTCoupling
from .coupling import Pairing as Pairing
from .coupling import PartialOTCoupling as PartialOTCoupling
from .coupling import PermutationCoupling as PermutationCoupling
from .coupling import PlanCoupling as PlanCoupling
from .coupling import SchrodingerBridgeCoupling as SchrodingerBridgeCoupling
from .coupling import ScipySolver as ScipySolver
from .coupling import SinkhornCoupling as SinkhornCoupling
from .coupling import SinkhornResult as SinkhornResult
from .coupling import SquaredEuclideanCost as SquaredEuclideanCost
from .coupling import StableMatchingCoupling as StableMatchingCoupling
from .coupling import UnbalancedOTCoupling as UnbalancedOTCoupling
from .coupling import sinkhorn as sinkhorn
from .data import CoupledBatchStream as CoupledBatchStream
from .data import PairedBatches as PairedBatches
from .data import TensorData as TensorData
from .fields import ConvertedField as ConvertedField
from .fields import DenoiserFromScore as DenoiserFromScore
from .fields import DenoiserFromVelocity as DenoiserFromVelocity
from .fields import Field as Field
from .fields import ScoreFromDenoiser as ScoreFromDenoiser
from .fields import ScoreFromVelocity as ScoreFromVelocity
from .fields import SDEDrift as SDEDrift
from .fields import SplitField as SplitField
from .fields import TargetFromVelocity as TargetFromVelocity
from .fields import VelocityFromDenoiser as VelocityFromDenoiser
from .fields import VelocityFromMeanAndDenoiser as VelocityFromMeanAndDenoiser
from .fields import VelocityFromMeanAndScore as VelocityFromMeanAndScore
from .fields import VelocityFromScore as VelocityFromScore
from .fields import VelocityFromSplit as VelocityFromSplit
from .fields import VelocityFromTarget as VelocityFromTarget
from .fields import denoiser_from_score as denoiser_from_score
from .fields import denoiser_from_velocity as denoiser_from_velocity
from .fields import score_from_denoiser as score_from_denoiser
from .fields import score_from_velocity as score_from_velocity
from .fields import sde_drift as sde_drift
from .fields import target_from_velocity as target_from_velocity
from .fields import velocity_from_denoiser as velocity_from_denoiser
from .fields import velocity_from_mean_and_denoiser as velocity_from_mean_and_denoiser
from .fields import velocity_from_mean_and_score as velocity_from_mean_and_score
from .fields import velocity_from_score as velocity_from_score
from .fields import velocity_from_target as velocity_from_target
from .gamma import BrownianGamma as BrownianGamma
from .gamma import CustomGamma as CustomGamma
from .gamma import GammaSchedule as GammaSchedule
from .gamma import NoGamma as NoGamma
from .gamma import QuadraticGamma as QuadraticGamma
from .gamma import SineSquaredGamma as SineSquaredGamma
from .guidance import ClassifierFreeGuidance as ClassifierFreeGuidance
from .integrate import RK4 as RK4
from .integrate import AdaptiveIntegrator as AdaptiveIntegrator
from .integrate import ConstantDiffusion as ConstantDiffusion
from .integrate import CustomDiffusion as CustomDiffusion
from .integrate import Diffusion as Diffusion
from .integrate import Dopri5 as Dopri5
from .integrate import Euler as Euler
from .integrate import EulerMaruyama as EulerMaruyama
from .integrate import ExactDivergence as ExactDivergence
from .integrate import GammaProportionalDiffusion as GammaProportionalDiffusion
from .integrate import Heun as Heun
from .integrate import HutchinsonDivergence as HutchinsonDivergence
from .integrate import Integrator as Integrator
from .integrate import LikelihoodResult as LikelihoodResult
from .integrate import Midpoint as Midpoint
from .integrate import ODEIntegrator as ODEIntegrator
from .integrate import SDEIntegrator as SDEIntegrator
from .integrate import Solution as Solution
from .integrate import StochasticHeun as StochasticHeun
from .integrate import TorchSDEIntegrator as TorchSDEIntegrator
from .integrate import bits_per_dim as bits_per_dim
from .integrate import dequantize as dequantize
from .integrate import log_likelihood as log_likelihood
from .integrate import time_grid as time_grid
from .interpolant import Coefficients as Coefficients
from .interpolant import CustomInterpolant as CustomInterpolant
from .interpolant import EncoderDecoderInterpolant as EncoderDecoderInterpolant
from .interpolant import Interpolant as Interpolant
from .interpolant import InterpolantSample as InterpolantSample
from .interpolant import LinearInterpolant as LinearInterpolant
from .interpolant import MirrorInterpolant as MirrorInterpolant
from .interpolant import OneSidedInterpolant as OneSidedInterpolant
from .interpolant import OneSidedLinearInterpolant as OneSidedLinearInterpolant
from .interpolant import TrigonometricInterpolant as TrigonometricInterpolant
from .interpolant import VPInterpolant as VPInterpolant
from .metrics import energy_distance as energy_distance
from .metrics import energy_test as energy_test
from .metrics import wasserstein2 as wasserstein2
from .nn import MLP as MLP
from .nn import TwoHeadMLP as TwoHeadMLP
from .objective import BetaTime as BetaTime
from .objective import DenoiserObjective as DenoiserObjective
from .objective import ImportanceWeighted as ImportanceWeighted
from .objective import InverseCDFTime as InverseCDFTime
from .objective import Model as Model
from .objective import Objective as Objective
from .objective import ScoreObjective as ScoreObjective
from .objective import SplitObjective as SplitObjective
from .objective import TargetObjective as TargetObjective
from .objective import TimeSampler as TimeSampler
from .objective import UniformTime as UniformTime
from .objective import VelocityObjective as VelocityObjective
from .prefetch import PrefetchedBatches as PrefetchedBatches
from .train import Trainer as Trainer

__version__ = "0.1.0.dev0"

__all__ = [
    "MLP",
    "RK4",
    "AdaptiveIntegrator",
    "AssignmentSolver",
    "AutoAssignmentSolver",
    "BetaTime",
    "BrownianGamma",
    "ClassifierFreeGuidance",
    "Coefficients",
    "ConstantDiffusion",
    "ConvertedField",
    "Cost",
    "CoupledBatchStream",
    "Coupling",
    "CustomCost",
    "CustomDiffusion",
    "CustomGamma",
    "CustomInterpolant",
    "DataDependentCoupling",
    "DenoiserFromScore",
    "DenoiserFromVelocity",
    "DenoiserObjective",
    "Diffusion",
    "Dopri5",
    "EncoderDecoderInterpolant",
    "EuclideanCost",
    "Euler",
    "EulerMaruyama",
    "ExactDivergence",
    "ExactInterpolantFields",
    "Field",
    "GammaProportionalDiffusion",
    "GammaSchedule",
    "GaussianMixture",
    "Heun",
    "HutchinsonDivergence",
    "ImportanceWeighted",
    "IndependentCoupling",
    "Integrator",
    "Interpolant",
    "InterpolantSample",
    "InverseCDFTime",
    "LabelConditionalCoupling",
    "LapjvSolver",
    "LapxSolver",
    "LikelihoodResult",
    "LinearInterpolant",
    "Midpoint",
    "MirrorInterpolant",
    "Model",
    "NetworkSimplexSolver",
    "NoGamma",
    "ODEIntegrator",
    "OTCoupling",
    "Objective",
    "OneSidedInterpolant",
    "OneSidedLinearInterpolant",
    "PairedBatches",
    "Pairing",
    "PartialOTCoupling",
    "PermutationCoupling",
    "PlanCoupling",
    "PrefetchedBatches",
    "QuadraticGamma",
    "SDEDrift",
    "SDEIntegrator",
    "SchrodingerBridgeCoupling",
    "ScipySolver",
    "ScoreFromDenoiser",
    "ScoreFromVelocity",
    "ScoreObjective",
    "SineSquaredGamma",
    "SinkhornCoupling",
    "SinkhornResult",
    "Solution",
    "SplitField",
    "SplitObjective",
    "SquaredEuclideanCost",
    "StableMatchingCoupling",
    "StochasticHeun",
    "TargetFromVelocity",
    "TargetObjective",
    "TensorData",
    "TimeSampler",
    "TorchSDEIntegrator",
    "Trainer",
    "TrigonometricInterpolant",
    "TwoHeadMLP",
    "UnbalancedOTCoupling",
    "UniformTime",
    "VPInterpolant",
    "VelocityFromDenoiser",
    "VelocityFromMeanAndDenoiser",
    "VelocityFromMeanAndScore",
    "VelocityFromScore",
    "VelocityFromSplit",
    "VelocityFromTarget",
    "VelocityObjective",
    "bits_per_dim",
    "denoiser_from_score",
    "denoiser_from_velocity",
    "dequantize",
    "energy_distance",
    "energy_test",
    "log_likelihood",
    "score_from_denoiser",
    "score_from_velocity",
    "sde_drift",
    "sinkhorn",
    "target_from_velocity",
    "time_grid",
    "velocity_from_denoiser",
    "velocity_from_mean_and_denoiser",
    "velocity_from_mean_and_score",
    "velocity_from_score",
    "velocity_from_target",
    "wasserstein2",
]
