r"""The tasks of :mod:`sampling_quality` (and :mod:`few_step`): base and target samplers.

torchcfm's ``sample_8gaussians`` and ``sample_moons`` re-implemented from their definitions
(``torchcfm.utils`` imports torchdyn, which is not installed here) with a torch generator
instead of the global numpy RNG, N(0, I), and :class:`interpolants.data.Checkerboard`;
:data:`TASKS` names each (base, target) pair.
"""

import math
from typing import Any

import torch
from torch import Tensor

from interpolants.data import Checkerboard


class TorchCFMEightGaussians:
    """``torchcfm.utils.sample_8gaussians``: centres 5·(unit vectors at kπ/4), covariance √0.1·I.

    (torchcfm passes ``math.sqrt(var) * eye`` as the *covariance* of its MultivariateNormal, so
    the per-coordinate std is 0.1^{1/4} ≈ 0.562.)
    """

    std = 0.1**0.25

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        k = torch.randint(0, 8, (n,), generator=generator)
        angle = k.float() * (math.pi / 4)
        centres = 5.0 * torch.stack([torch.cos(angle), torch.sin(angle)], 1)
        return centres + self.std * torch.randn(n, 2, generator=generator)


class TorchCFMMoons:
    """``torchcfm.utils.sample_moons``: torchdyn ``generate_moons(n, noise=0.2)`` · 3 − 1.

    torchdyn puts n//2 points on evenly spaced positions of the upper arc and the rest on the
    lower arc (``np.linspace``), then adds one U[0, noise) number to *both* coordinates.
    """

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        n_out, n_in = n // 2, n - n // 2
        s_out = torch.linspace(0, math.pi, n_out)
        s_in = torch.linspace(0, math.pi, n_in)
        x = torch.cat([torch.cos(s_out), 1 - torch.cos(s_in)])
        y = torch.cat([torch.sin(s_out), 1 - torch.sin(s_in) - 0.5])
        pts = torch.stack([x, y], 1) + 0.2 * torch.rand(n, 1, generator=generator)
        return pts * 3 - 1


class StandardNormal:
    """N(0, I) in 2-D."""

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return torch.randn(n, 2, generator=generator)


TASKS: dict[str, tuple[Any, Any]] = {
    "N(0,I)→8gaussians": (StandardNormal(), TorchCFMEightGaussians()),
    "8gaussians→moons": (TorchCFMEightGaussians(), TorchCFMMoons()),
    "N(0,I)→checkerboard": (StandardNormal(), Checkerboard()),
}
