r"""Density estimation: a trained interpolant as a distribution.

:class:`InterpolantFlow` bundles a velocity field b, a base ρ0 and the integrators; calling it
returns an :class:`InterpolantDistribution` (a :class:`torch.distributions.Distribution`) with
``log_prob`` (exact or Hutchinson divergence, in chunks, optionally differentiable),
``sample`` and ``rsample``. :func:`calibrate` chooses its integration grids by measured
error; :func:`split_data` makes train/validation/test sets and :class:`EarlyStopping` selects
the checkpoint of lowest validation NLL during :meth:`~interpolants.Trainer.fit`. It follows
zuko's convention (a module called to get a distribution), so a zuko flow can be its base and
it can stand where a zuko flow does.

References
----------
M. S. Albergo, E. Vanden-Eijnden, *Building Normalizing Flows with Stochastic Interpolants*,
arXiv:2209.15571. W. Grathwohl et al., *FFJORD*, arXiv:1810.01367.
"""

from ._calibrate import Calibration as Calibration
from ._calibrate import calibrate as calibrate
from ._flow import InterpolantDistribution as InterpolantDistribution
from ._flow import InterpolantFlow as InterpolantFlow
from ._validation import EarlyStopping as EarlyStopping
from ._validation import Splits as Splits
from ._validation import split_data as split_data

__all__ = [
    "Calibration",
    "EarlyStopping",
    "InterpolantDistribution",
    "InterpolantFlow",
    "Splits",
    "calibrate",
    "split_data",
]
