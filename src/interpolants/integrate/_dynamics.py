r"""What an integrator steps: the probability-flow ODE or an SDE of the interpolant.

An integrator steps *dynamics*, in the spirit of diffrax's terms: an :class:`ODE`
ẋ = b(t, x) of a velocity field, or an :class:`SDE` of a velocity, a score and a diffusion
ε(t) ≥ 0,

.. math::

    \text{forwards } (t: 0 → 1):\quad dX = [b + ε s]\,dt + \sqrt{2ε}\,dW,\qquad
    \text{backwards } (t: 1 → 0):\quad dY = [b − ε s]\,dt + \sqrt{2ε}\,dW^B,

whose marginals are the interpolant's ρ_t for every ε (:doc:`/mathematics`); ε ≡ 0 is the
ODE. The direction is read from the integration grid. Every consumer (sampling, the
likelihood, the command line) passes dynamics to any :class:`Integrator` that
:meth:`~Integrator.supports` them.

End handling of the SDE (explicit)
----------------------------------
The score is singular where the noise scale vanishes: a learned s = −η_z/σ blows up as σ → 0
at t = 0 and t = 1 (t = 1 only for one-sided interpolants). So by default

* the **last interval** [t_{N−1}, t_N] is one deterministic step of the ODE ẋ = b (the same
  rule without score and noise): s is never evaluated at the final time
  (``final_ode_step=False`` uses the stochastic step there too, fine for exact fields);
* the score is evaluated at a stage only where ε > 0 there. To start where s is singular,
  start the grid inside (0, 1) or use a schedule with ε(t₀) = 0, such as
  :class:`GammaProportionalDiffusion`, for which ε s = −scale·η_z
  stays bounded.

References
----------
M. S. Albergo, N. M. Boffi, E. Vanden-Eijnden, *Stochastic Interpolants: A Unifying Framework
for Flows and Diffusions*, arXiv:2303.08797, §2.3. P. Kidger, *On Neural Differential
Equations*, arXiv:2202.02435 (diffrax's terms).
"""

import abc
from typing import final

from ..fields import Field
from ._diffusion import ConstantDiffusion, Diffusion

__all__ = ["ODE", "SDE", "Dynamics"]


class Dynamics(abc.ABC):
    """Abstract right-hand side that an :class:`Integrator` steps.

    The library's dynamics are :class:`ODE` and :class:`SDE`; an integrator says which it can
    step through :meth:`~Integrator.supports`. A downstream package may add a
    kind of dynamics together with an integrator that supports it (its
    :meth:`~Integrator.solve` then reads them from
    :attr:`~Problem.dynamics`).
    """

    @property
    @abc.abstractmethod
    def stochastic(self) -> bool:
        """Whether the dynamics carry noise (an integrator must be able to draw it)."""


@final
class ODE(Dynamics):
    r"""The ODE ẋ = b(t, x) of a velocity field (the probability-flow ODE of an interpolant).

    Parameters
    ----------
    velocity:
        The velocity b, a field ``b(t, x)`` (:data:`Field`).
    partial:
        Optional cheaper evaluation for Runge–Kutta stages whose derivative enters only later
        stages' inputs (zero weight in the update and in the error estimate): it must agree
        with ``velocity`` on every column that later stages read, and may leave pure
        accumulator columns (never read by the field) at zero. The likelihood's augmented
        field uses it to skip a divergence.

    Example
    -------
    >>> import torch
    >>> from interpolants import Euler, ODE, time_grid
    >>> Euler().integrate(ODE(lambda t, x: torch.ones_like(x)), torch.zeros(2, 1),
    ...                   time_grid(4)).state
    tensor([[1.],
            [1.]])
    """

    def __init__(self, velocity: Field, *, partial: Field | None = None) -> None:
        if not callable(velocity):
            raise TypeError(f"velocity must be callable as velocity(t, x), got {velocity!r}")
        if partial is not None and not callable(partial):
            raise TypeError(f"partial must be callable as partial(t, x), got {partial!r}")
        self.velocity = velocity
        self.partial = partial

    @property
    def stochastic(self) -> bool:
        return False

    def __repr__(self) -> str:
        return f"ODE({self.velocity!r})"


@final
class SDE(Dynamics):
    r"""The interpolant SDE with drift b ± ε s and noise √(2ε(t)) dW (see the module notes).

    Parameters
    ----------
    velocity:
        The velocity field b(t, x).
    score:
        The score field s(t, x) = ∇ log ρ_t(x).
    diffusion:
        ε(t) ≥ 0: a :class:`Diffusion` or a number (constant).
    final_ode_step:
        Take the last grid interval as a deterministic ODE step (default ``True``; see the
        module notes on end handling).

    Example
    -------
    >>> import torch
    >>> from interpolants import Euler, SDE, time_grid
    >>> gen = torch.Generator().manual_seed(0)
    >>> # N(0, I) is stationary for b = 0, s = −x (an Ornstein–Uhlenbeck flow)
    >>> sde = SDE(lambda t, x: torch.zeros_like(x), lambda t, x: -x, 1.0)
    >>> sol = Euler().integrate(sde, torch.randn(4000, 1, generator=gen), time_grid(50),
    ...                         generator=gen)
    >>> abs(float(sol.state.var()) - 1.0) < 0.1, sol.nfe
    (True, 99)
    """

    def __init__(
        self,
        velocity: Field,
        score: Field,
        diffusion: Diffusion | float,
        *,
        final_ode_step: bool = True,
    ) -> None:
        for name, field in (("velocity", velocity), ("score", score)):
            if not callable(field):
                raise TypeError(f"{name} must be callable as {name}(t, x), got {field!r}")
        if isinstance(diffusion, (int, float)) and not isinstance(diffusion, bool):
            diffusion = ConstantDiffusion(float(diffusion))
        if not isinstance(diffusion, Diffusion):
            raise TypeError(
                f"diffusion must be a Diffusion or a number, got {type(diffusion).__name__}"
            )
        self.velocity = velocity
        self.score = score
        self.diffusion = diffusion
        self.final_ode_step = bool(final_ode_step)

    @property
    def stochastic(self) -> bool:
        return True

    def __repr__(self) -> str:
        return f"SDE(diffusion={self.diffusion!r}, final_ode_step={self.final_ode_step})"
