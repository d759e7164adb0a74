r"""The default network for vector data: a time-conditioned MLP.

:class:`MLP` follows the library's model protocol ``model(t, x)`` (and
``model(t, x, condition=y)`` with class labels): ``t`` of shape ``(B,)``, ``x`` of shape
``(B, dim)``, output of shape ``(B, dim)``. Time enters through a sinusoidal embedding
(Vaswani et al.; as in diffusion models) followed by a linear layer, concatenated to x.

With ``num_classes`` set, labels enter through a learned embedding with one extra *null*
class (index ``num_classes``), which :func:`drop_labels` substitutes at random during
training and which :class:`ClassifierFreeGuidance` uses at sampling time.

:class:`AverageVelocityMLP` is the model of a mean flow, ``model(t, r, x)``: the average
velocity u(t, r, x) over [t, r] that :class:`~interpolants.objective.MeanFlowObjective` learns
and :class:`~interpolants.integrate.FlowMapSteps` samples in one or a few jumps.
"""

from ._average import AverageVelocityMLP as AverageVelocityMLP
from ._mlp import SinusoidalTimeEmbedding as SinusoidalTimeEmbedding
from ._mlp import TwoHeadMLP as TwoHeadMLP
from ._mlp import drop_labels as drop_labels

__all__ = [
    "AverageVelocityMLP",
    "SinusoidalTimeEmbedding",
    "TwoHeadMLP",
    "drop_labels",
]
