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
from .gamma import BrownianGamma as BrownianGamma
from .gamma import CustomGamma as CustomGamma
from .gamma import GammaSchedule as GammaSchedule
from .gamma import NoGamma as NoGamma
from .gamma import QuadraticGamma as QuadraticGamma
from .gamma import SineSquaredGamma as SineSquaredGamma
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

__version__ = "0.1.0.dev0"

__all__ = [
    "BrownianGamma",
    "Coefficients",
    "CustomGamma",
    "CustomInterpolant",
    "EncoderDecoderInterpolant",
    "ExactInterpolantFields",
    "GammaSchedule",
    "GaussianMixture",
    "Interpolant",
    "InterpolantSample",
    "LinearInterpolant",
    "MirrorInterpolant",
    "NoGamma",
    "OneSidedInterpolant",
    "OneSidedLinearInterpolant",
    "QuadraticGamma",
    "SineSquaredGamma",
    "TrigonometricInterpolant",
    "VPInterpolant",
    "energy_distance",
    "energy_test",
    "wasserstein2",
]
