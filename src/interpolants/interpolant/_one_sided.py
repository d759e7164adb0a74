"""The abstract one-sided family: interpolants whose Gaussian base sample plays the noise."""

from jaxtyping import Float
from torch import Tensor

from .._types import State, Times
from ._base import Interpolant
from ._gamma import NoGamma

__all__ = ["OneSidedInterpolant"]


class OneSidedInterpolant(Interpolant):
    r"""Abstract family whose Gaussian base x0 ~ N(0, I) plays the noise (γ ≡ 0).

    x_t = α(t)x0 + β(t)x1 with x0 independent of x1. The denoiser is η_z = E[x0 | x_t], the
    noise scale is σ = α (score s = −η_z/α), the antithetic flip negates x0, and since
    x = αη_z + βη1 the velocity, score and denoiser determine each other in closed form, with
    D = αβ̇ − α̇β:

    .. math::

        s = \frac{βb − \dot β x}{α D},\qquad b = \frac{\dot β x + α D s}{β},\qquad
        η_z = \frac{\dot β x − βb}{D},\qquad b = \frac{\dot β x − Dη_z}{β}.

    Subclasses implement α, β and their derivatives as for :class:`Interpolant`.
    """

    def __init__(self) -> None:
        super().__init__(NoGamma())

    @property
    def one_sided(self) -> bool:
        return True

    def noise_scale(self, t: Times) -> Times:
        return self.alpha(t)

    def noise(
        self, x0: Float[Tensor, "batch *dims"], z: Float[Tensor, "batch *dims"] | None
    ) -> State:
        return x0

    def antithetic(
        self,
        x0: Float[Tensor, "batch *dims"],
        x1: Float[Tensor, "batch *dims"],
        z: Float[Tensor, "batch *dims"] | None,
    ) -> tuple[State, State, State | None]:
        return -x0, x1, z

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
