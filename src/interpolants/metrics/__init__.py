r"""Sample-based distances and two-sample tests.

* :func:`energy_distance` — the (V-statistic) energy distance
  :math:`E(X, Y) = 2 E|X − Y| − E|X − X'| − E|Y − Y'|`, zero iff the laws agree.
* :func:`energy_test` — its permutation two-sample test: a p-value that is valid (uniform or
  conservative under the null) at every sample size, so a test that rejects at level 10⁻³
  with a fixed seed is calibrated, not tuned.
* :func:`wasserstein2` — the exact W2 between two empirical measures (POT's network simplex;
  the n × m cost matrix crosses to the host in float64).
* :func:`sliced_wasserstein` and :func:`mmd` — distances in any dimension that stay on the
  samples' device (0-d tensors, no host synchronisation).
* :func:`path_statistics` — straightness and kinetic energy of a velocity's paths, and
  :func:`w2_per_nfe` — W2 of ODE samples per budget of field evaluations.

References
----------
G. J. Székely, M. L. Rizzo, *Energy statistics: A class of statistics based on distances*,
J. Stat. Plan. Inference 143 (2013).
"""

from ._distances import energy_distance as energy_distance
from ._distances import energy_test as energy_test
from ._distances import wasserstein2 as wasserstein2
from ._paths import PathStatistics as PathStatistics
from ._paths import path_statistics as path_statistics
from ._paths import w2_per_nfe as w2_per_nfe
from ._sliced import mmd as mmd
from ._sliced import sliced_wasserstein as sliced_wasserstein

__all__ = [
    "PathStatistics",
    "energy_distance",
    "energy_test",
    "mmd",
    "path_statistics",
    "sliced_wasserstein",
    "w2_per_nfe",
    "wasserstein2",
]
