r"""Conversions between the fields of a stochastic interpolant, and SDE drifts.

The field protocol
------------------
A *field* is any callable ``f(t, x)`` with ``t`` of shape ``(B,)`` and ``x`` of shape
``(B, *dims)`` that returns a tensor of shape ``(B, *dims)`` (:data:`Field`); a trained
``nn.Module`` called as ``model(t, x)`` is one. The conversions below come twice: as functions
on tensors (``score_from_velocity(interpolant, t, x, velocity)``, validated once) and as field
combinators (``ScoreFromVelocity(interpolant, velocity_field)``, a field itself, with no
per-call validation beyond the singularity checks) for the integrators.

The fields
----------
For x_t = α x0 + β x1 + γ z, with η0, η1, η_z the conditional means of x0, x1, z given
x_t = x (paper sign: η_z = E[z | x_t]):

* velocity b = α̇η0 + β̇η1 + γ̇η_z, the mean velocity v = α̇η0 + β̇η1 (so b = v + γ̇η_z);
* score s = ∇log ρ_t = −η_z/γ where γ > 0, so b = v − γγ̇ s;
* **one-sided** interpolants (:class:`~interpolants.OneSidedInterpolant`: x0 ~ N(0, I) is the
  noise, γ ≡ 0): η_z = E[x0 | x_t], s = −η_z/α, v = b, and since x = αη_z + βη1 the three
  fields are equivalent in closed form (MATH.md §1), with D = αβ̇ − α̇β:

  .. math::

      s = \frac{βb − \dot β x}{α D},\qquad
      b = \frac{\dot β x + α D s}{β} \;(= \tfrac{\dot β}{β}x + (\tfrac{α^2\dot β}{β} − α\dot α)s),
      \qquad η_z = \frac{\dot β x − βb}{D};

* **deterministic** interpolants (γ ≡ 0, any coupling, including one-sided): x = αη0 + βη1
  and b = α̇η0 + β̇η1, so the target prediction η1 = E[x1 | x_t] and b are equivalent:
  η1 = (αb − α̇x)/D and b = (α̇x + D η1)/α.

Singular points
---------------
Where a conversion divides by a coefficient that vanishes, it raises :class:`ValueError`
naming the conversion and the times (never a silent NaN or Inf). A coefficient counts as zero
when its magnitude is at most ``10·eps`` of the dtype (≈2·10⁻¹⁵ in float64, ≈10⁻⁶ in float32),
so that e.g. cos(π/2) ≈ 6·10⁻¹⁷ of the VP interpolant is caught. The singular sets are:

==========================================  ==========================  =====================
conversion                                  divides by                  singular at
==========================================  ==========================  =====================
score from velocity (one-sided)             α·D                         t = 1
velocity from score (one-sided)             β                           t = 0
velocity from denoiser (one-sided)          β                           t = 0
denoiser from velocity (one-sided)          D                           nowhere
score from denoiser                         γ (α if one-sided)          t = 0, 1 (t = 1)
denoiser from score                         —                           nowhere
velocity from (v, s): b = v − γγ̇ s          —                           nowhere
velocity from (v, η_z): b = v + γ̇ η_z       —                           see below
target from velocity (γ ≡ 0)                D                           nowhere
velocity from target (γ ≡ 0)                α                           t = 1
==========================================  ==========================  =====================

At t = 0 the velocity is genuinely not determined by the score (b(0, x) = α̇x + β̇E[x1]
involves the target mean, while s(0, ·) is the base score), so the error is not a weakness
of the formula. b = v + γ̇ η_z uses the schedule's γ̇, which is finite everywhere (for the
Brownian γ it is clamped near the ends, see :mod:`interpolants.gamma`); the exact η_z vanishes
like γ there so that the product tends to the finite −γγ̇s, but a learned η̂ need not, so
prefer evaluating b from (v, η_z) away from the ends (as the integrators' time grids do).

SDE drifts
----------
For any ε(t) ≥ 0 the forward SDE dX = [b + εs]dt + √(2ε)dW (from ρ0) and the backward SDE
dY = [b − εs]dt + √(2ε)dW^B (from ρ1, integrated from t = 1 down to 0) have the marginals
ρ_t of the interpolant (MATH.md §1); :func:`sde_drift` builds these drifts.

References
----------
M. S. Albergo, N. M. Boffi, E. Vanden-Eijnden, *Stochastic Interpolants: A Unifying Framework
for Flows and Diffusions*, arXiv:2303.08797.
"""

from ._core import Field as Field
from ._core import SplitField as SplitField
from .combinators import ConvertedField as ConvertedField
from .combinators import DenoiserFromScore as DenoiserFromScore
from .combinators import DenoiserFromVelocity as DenoiserFromVelocity
from .combinators import ScoreFromDenoiser as ScoreFromDenoiser
from .combinators import ScoreFromVelocity as ScoreFromVelocity
from .combinators import TargetFromVelocity as TargetFromVelocity
from .combinators import VelocityFromDenoiser as VelocityFromDenoiser
from .combinators import VelocityFromMeanAndDenoiser as VelocityFromMeanAndDenoiser
from .combinators import VelocityFromMeanAndScore as VelocityFromMeanAndScore
from .combinators import VelocityFromScore as VelocityFromScore
from .combinators import VelocityFromSplit as VelocityFromSplit
from .combinators import VelocityFromTarget as VelocityFromTarget
from .convert import denoiser_from_score as denoiser_from_score
from .convert import denoiser_from_velocity as denoiser_from_velocity
from .convert import score_from_denoiser as score_from_denoiser
from .convert import score_from_velocity as score_from_velocity
from .convert import target_from_velocity as target_from_velocity
from .convert import velocity_from_denoiser as velocity_from_denoiser
from .convert import velocity_from_mean_and_denoiser as velocity_from_mean_and_denoiser
from .convert import velocity_from_mean_and_score as velocity_from_mean_and_score
from .convert import velocity_from_score as velocity_from_score
from .convert import velocity_from_target as velocity_from_target
from .drift import SDEDrift as SDEDrift
from .drift import sde_drift as sde_drift

__all__ = [
    "ConvertedField",
    "DenoiserFromScore",
    "DenoiserFromVelocity",
    "Field",
    "SDEDrift",
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
    "denoiser_from_score",
    "denoiser_from_velocity",
    "score_from_denoiser",
    "score_from_velocity",
    "sde_drift",
    "target_from_velocity",
    "velocity_from_denoiser",
    "velocity_from_mean_and_denoiser",
    "velocity_from_mean_and_score",
    "velocity_from_score",
    "velocity_from_target",
]
