r"""Spatially linear stochastic interpolants x_t = α(t)·x0 + β(t)·x1 + γ(t)·z, and γ schedules.

Every family satisfies α(0) = β(1) = 1, α(1) = β(0) = 0 and γ(0) = γ(1) = 0, so that
x_{t=0} = x0 and x_{t=1} = x1 for *any* coupling of (x0, x1), with z ~ N(0, I) independent of
them. Training regresses on

* the velocity target α̇ x0 + β̇ x1 + γ̇ z (its conditional mean is the velocity b(t, x)),
* the mean-velocity target α̇ x0 + β̇ x1 (its conditional mean is v(t, x)),
* the noise variable: z, or x0 for a one-sided interpolant (its conditional mean is the
  denoiser η_z).

**One-sided interpolants** (:class:`OneSidedInterpolant`) have a
Gaussian base: x0 ~ N(0, I) itself plays the noise, γ ≡ 0, and x_t = α(t)·x0 + β(t)·x1.

**Sign of the denoiser.** This library uses the paper's convention η_z(t, x) = E[z | x_t = x],
so that the score is s = −η_z/σ with the noise scale σ = γ (two-sided) or σ = α (one-sided,
where η_z = E[x0 | x_t]). The official research code trains the opposite sign; nothing here
does.

Times may be a Python number, a scalar tensor or one value per sample; states may have any
trailing shape. Computations run on the states' device and in their dtype. The mathematics is
on the :doc:`/mathematics` page.

References
----------
M. S. Albergo, N. M. Boffi, E. Vanden-Eijnden, *Stochastic Interpolants: A Unifying Framework
for Flows and Diffusions*, arXiv:2303.08797.
M. S. Albergo, E. Vanden-Eijnden, *Building Normalizing Flows with Stochastic Interpolants*,
arXiv:2209.15571.
"""

from ._families import CustomInterpolant as CustomInterpolant
from ._families import EncoderDecoderInterpolant as EncoderDecoderInterpolant
from ._families import MirrorInterpolant as MirrorInterpolant
from ._families import OneSidedLinearInterpolant as OneSidedLinearInterpolant
from ._families import TrigonometricInterpolant as TrigonometricInterpolant
from ._families import VPInterpolant as VPInterpolant
from ._gamma import CustomGamma as CustomGamma
from ._gamma import GammaSchedule as GammaSchedule
from ._gamma import NoGamma as NoGamma
from ._gamma import QuadraticGamma as QuadraticGamma
from ._gamma import SineSquaredGamma as SineSquaredGamma
from ._learned import LearnedInterpolant as LearnedInterpolant
from ._one_sided import OneSidedInterpolant as OneSidedInterpolant
from ._values import Coefficients as Coefficients
from ._values import InterpolantSample as InterpolantSample

__all__ = [
    "Coefficients",
    "CustomGamma",
    "CustomInterpolant",
    "EncoderDecoderInterpolant",
    "GammaSchedule",
    "InterpolantSample",
    "LearnedInterpolant",
    "MirrorInterpolant",
    "NoGamma",
    "OneSidedInterpolant",
    "OneSidedLinearInterpolant",
    "QuadraticGamma",
    "SineSquaredGamma",
    "TrigonometricInterpolant",
    "VPInterpolant",
]
