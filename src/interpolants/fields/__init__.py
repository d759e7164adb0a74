r"""Fields of a stochastic interpolant and the conversions between them, as fields.

The field protocol
------------------
A *field* is any callable ``f(t, x)`` with ``t`` of shape ``(B,)`` and ``x`` of shape
``(B, *dims)`` that returns a tensor of shape ``(B, *dims)`` (:data:`Field`); a trained
``nn.Module`` called as ``model(t, x)`` is one.

The fields
----------
For x_t = α x0 + β x1 + γ z, with η0, η1, η_z the conditional means of x0, x1, z given
x_t = x (paper sign: η_z = E[z | x_t]):

* velocity b = α̇η0 + β̇η1 + γ̇η_z, the mean velocity v = α̇η0 + β̇η1 (so b = v + γ̇η_z);
* score s = ∇log ρ_t = −η_z/σ with the noise scale σ = γ, so b = v − γγ̇ s;
* **one-sided** interpolants (x0 ~ N(0, I) is the noise, γ ≡ 0, σ = α): v = b, and since
  x = αη_z + βη1 the velocity, score and denoiser are equivalent in closed form;
* **deterministic** interpolants (γ ≡ 0): the target prediction η1 = E[x1 | x_t] and b are
  equivalent.

The formulas are methods of the interpolant (:meth:`~Interpolant.score_from_velocity`,
:meth:`~Interpolant.velocity_from_mean_and_denoiser`, ...; see :doc:`/mathematics`);
the classes here wrap them as fields for the integrators. Where a conversion divides by a
vanishing coefficient it is singular:

==========================================  ==========================  =====================
conversion                                  divides by                  singular at
==========================================  ==========================  =====================
score from velocity (one-sided)             α·D                         t = 1
velocity from score (one-sided)             β                           t = 0
velocity from denoiser (one-sided)          β                           t = 0
denoiser from velocity (one-sided)          D = αβ̇ − α̇β                 nowhere
score from denoiser                         σ (γ, or α if one-sided)    t = 0, 1 (t = 1)
denoiser from score                         —                           nowhere
velocity from (v, s): b = v − γγ̇ s          —                           nowhere
velocity from (v, η_z): b = v + γ̇ η_z       —                           see the method
target from velocity (γ ≡ 0)                D                           nowhere
velocity from target (γ ≡ 0)                α                           t = 1
==========================================  ==========================  =====================

At t = 0 the velocity is genuinely not determined by the score (b(0, x) = α̇x + β̇E[x1]
involves the target mean, while s(0, ·) is the base score). A singular point evaluated with a
Python-number time raises :class:`ValueError`; inside an integration it gives non-finite
values, which the integrators report (they never return NaN silently).

References
----------
M. S. Albergo, N. M. Boffi, E. Vanden-Eijnden, *Stochastic Interpolants: A Unifying Framework
for Flows and Diffusions*, arXiv:2303.08797.
"""

from ._convert import ConvertedField as ConvertedField
from ._convert import DenoiserFromScore as DenoiserFromScore
from ._convert import DenoiserFromVelocity as DenoiserFromVelocity
from ._convert import ScoreFromDenoiser as ScoreFromDenoiser
from ._convert import ScoreFromVelocity as ScoreFromVelocity
from ._convert import TargetFromVelocity as TargetFromVelocity
from ._convert import VelocityFromDenoiser as VelocityFromDenoiser
from ._convert import VelocityFromMeanAndDenoiser as VelocityFromMeanAndDenoiser
from ._convert import VelocityFromMeanAndScore as VelocityFromMeanAndScore
from ._convert import VelocityFromScore as VelocityFromScore
from ._convert import VelocityFromSplit as VelocityFromSplit
from ._convert import VelocityFromTarget as VelocityFromTarget
from ._guidance import ClassifierFreeGuidance as ClassifierFreeGuidance
from ._types import Field as Field
from ._types import SplitField as SplitField

__all__ = [
    "ClassifierFreeGuidance",
    "ConvertedField",
    "DenoiserFromScore",
    "DenoiserFromVelocity",
    "Field",
    "ScoreFromDenoiser",
    "ScoreFromVelocity",
    "SplitField",
    "TargetFromVelocity",
    "VelocityFromDenoiser",
    "VelocityFromMeanAndDenoiser",
    "VelocityFromMeanAndScore",
    "VelocityFromScore",
    "VelocityFromSplit",
    "VelocityFromTarget",
]
