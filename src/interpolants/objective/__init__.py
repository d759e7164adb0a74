r"""Regression objectives for the fields of a stochastic interpolant.

The model protocol
------------------
A model is any callable (typically a :class:`torch.nn.Module`) called as

    ``model(t, x)``  or, when a ``condition`` is passed to the loss, ``model(t, x, condition=c)``

with ``t`` of shape ``(B,)`` (one time per sample, in the dtype and on the device of ``x``)
and ``x`` of shape ``(B, *dims)``; it returns a tensor of the shape of ``x`` (for
:class:`SplitObjective`, a pair of such tensors). The condition is passed through untouched
(labels, a context tensor, a dict ...). With ``antithetic=True`` the model is called twice per
loss, with the same ``t`` and ``condition``. A model that returns a wrong shape raises
:class:`ValueError`.

The objectives
--------------
An objective receives already paired (x0, x1) (couplings live elsewhere) and returns a scalar
loss (:meth:`~Objective.loss`) or the per-sample losses (:meth:`~Objective.per_sample_loss`),
mean squared errors (1/D)‖m̂ − y‖² over the D entries of a sample, the scale torchcfm and
torchebm report (:class:`Objective` gives the gradient factor and the variance near the ends):

* :class:`VelocityObjective` learns b = E[İ + γ̇z | x_t] from the target α̇x0 + β̇x1 + γ̇z;
* :class:`DenoiserObjective` learns η_z = E[z | x_t] from z (x0 if one-sided);
* :class:`ScoreObjective` learns s = −η_z/σ with the weight σ² (σŝ regressed on −z, with
  the noise scale σ = γ, or α if one-sided);
* :class:`SplitObjective` learns (v, η_z) with a two-headed model, from (α̇x0 + β̇x1, z);
* :class:`TargetObjective` learns η1 = E[x1 | x_t] from x1;
* :class:`MeanFlowObjective` learns the average velocity u(t, r, x) over [t, r] of the flow
  of b (a model ``model(t, r, x)``) for one- and few-step sampling, from the MeanFlow target
  (:func:`mean_flow_target`).

Times are drawn from a :class:`TimeSampler` (uniform by default; also Beta, logit-normal, any
inverse CDF or any density), optionally importance weighted, and every objective takes an
optional per-time ``loss_weight`` λ(t); antithetic noise pairs are an option of every
objective. Use
:mod:`interpolants.fields` to turn the learned fields into a velocity or a score, and
:class:`~interpolants.ODE` or :class:`~interpolants.SDE` to sample with them.

References
----------
M. S. Albergo, N. M. Boffi, E. Vanden-Eijnden, *Stochastic Interpolants: A Unifying Framework
for Flows and Diffusions*, arXiv:2303.08797.
"""

from ._base import LossWeight as LossWeight
from ._base import Model as Model
from ._base import Predict as Predict
from ._base import check_prediction as check_prediction
from ._losses import DenoiserObjective as DenoiserObjective
from ._losses import ScoreObjective as ScoreObjective
from ._losses import TargetObjective as TargetObjective
from ._mean_flow import MeanFlowObjective as MeanFlowObjective
from ._mean_flow import mean_flow_target as mean_flow_target
from ._regression import RegressionObjective as RegressionObjective
from ._regression import mean_regression_loss as mean_regression_loss
from ._regression import regression_loss as regression_loss
from ._time import BetaTime as BetaTime
from ._time import DensityTime as DensityTime
from ._time import ImportanceWeighted as ImportanceWeighted
from ._time import InverseCDFTime as InverseCDFTime
from ._time import LogitNormalTime as LogitNormalTime
from ._time import TimeSampler as TimeSampler
from ._time import UniformTime as UniformTime

__all__ = [
    "BetaTime",
    "DenoiserObjective",
    "DensityTime",
    "ImportanceWeighted",
    "InverseCDFTime",
    "LogitNormalTime",
    "LossWeight",
    "MeanFlowObjective",
    "Model",
    "Predict",
    "RegressionObjective",
    "ScoreObjective",
    "TargetObjective",
    "TimeSampler",
    "UniformTime",
    "check_prediction",
    "mean_flow_target",
    "mean_regression_loss",
    "regression_loss",
]
