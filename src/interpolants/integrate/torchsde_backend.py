r"""The interpolant SDEs solved by ``torchsde.sdeint`` behind the :class:`SDEIntegrator` interface.

The SDE, its direction, the end handling and the result are those of
:mod:`interpolants.integrate.sde`; only the stochastic steps are delegated to torchsde (with
diagonal noise √(2ε(t))·I, which does not depend on the state, so the Itô and Stratonovich
forms coincide and torchsde's Stratonovich solvers apply). torchsde integrates forwards in time
only, so a backward run (decreasing grid) is solved in τ = −t:
dY = [−(b − ε s)](−τ, Y)\,dτ + √(2ε(−τ))\,dW_τ.

torchsde steps with a constant ``dt``, so the grid must be uniform. Its Brownian motion is a
``torchsde.BrownianInterval`` seeded from ``generator`` (one draw), so runs are reproducible,
but the noise differs from the native integrators' for the same seed. torchsde is imported
when an integration runs, not when :mod:`interpolants` is imported.

References
----------
X. Li, T.-K. L. Wong, R. T. Q. Chen, D. Duvenaud, *Scalable Gradients for Stochastic
Differential Equations*, arXiv:2001.01328 (torchsde).
"""

from typing import Literal, final

import torch
from jaxtyping import Float
from torch import Tensor

from ..fields import Field
from .base import CountedField, Solution, make_solution
from .diffusion import ConstantDiffusion, Diffusion
from .ode import _Step, euler_step, heun_step, midpoint_step
from .sde import SDEIntegrator

__all__ = ["TorchSDEIntegrator"]

Method = Literal["euler", "heun", "midpoint"]

# torchsde method -> (SDE type it solves, the matching deterministic step, its order)
_METHODS: dict[str, tuple[str, _Step, int]] = {
    "euler": ("ito", euler_step, 1),
    "heun": ("stratonovich", heun_step, 2),
    "midpoint": ("stratonovich", midpoint_step, 2),
}


class _Problem:
    """The SDE in torchsde's protocol: flat state (B, D), time τ = sign·t."""

    noise_type = "diagonal"

    def __init__(
        self,
        sde_type: str,
        velocity: CountedField,
        score: CountedField,
        diffusion: Diffusion,
        sign: float,
        shape: torch.Size,
    ) -> None:
        self.sde_type = sde_type
        self.velocity = velocity
        self.score = score
        self.diffusion = diffusion
        self.sign = sign
        self.shape = shape

    def _time(self, tau: Tensor) -> Tensor:
        return (self.sign * tau).clamp(0.0, 1.0)

    def f(self, tau: Tensor, y: Tensor) -> Tensor:
        t = self._time(tau)
        x = y.reshape(self.shape)
        tb = t.expand(self.shape[0])
        drift = self.sign * self.velocity(tb, x)
        eps = float(self.diffusion(t))
        if eps > 0.0:
            drift = drift + eps * self.score(tb, x)
        return drift.reshape(y.shape)

    def g(self, tau: Tensor, y: Tensor) -> Tensor:
        eps = self.diffusion(self._time(tau)).clamp_min(0.0)
        return torch.sqrt(2 * eps).expand(y.shape)


@final
class TorchSDEIntegrator(SDEIntegrator):
    r"""Sample the interpolant SDEs with ``torchsde.sdeint`` (fixed step, uniform grid).

    Parameters
    ----------
    method:
        ``"euler"`` (Euler–Maruyama), ``"heun"`` or ``"midpoint"`` (torchsde's Stratonovich
        solvers; exact here because the noise is additive).
    final_ode_step:
        Integrate the last grid interval with the matching deterministic step (Euler, Heun or
        midpoint), as in :class:`~interpolants.integrate.EulerMaruyama`.

    Example
    -------
    >>> import torch
    >>> from interpolants.integrate import TorchSDEIntegrator, time_grid
    >>> gen = torch.Generator().manual_seed(0)
    >>> sol = TorchSDEIntegrator("euler").integrate(
    ...     lambda t, x: torch.zeros_like(x), lambda t, x: -x, torch.randn(2000, 1, generator=gen),
    ...     time_grid(20), 1.0, generator=gen)
    >>> abs(float(sol.state.var()) - 1.0) < 0.15
    True
    """

    def __init__(self, method: Method = "euler", *, final_ode_step: bool = True) -> None:
        if method not in _METHODS:
            raise ValueError(f"method must be one of {sorted(_METHODS)}, got {method!r}")
        super().__init__(final_ode_step=final_ode_step)
        self.method = method

    @property
    def order(self) -> int:
        return _METHODS[self.method][2]

    def __repr__(self) -> str:
        return f"TorchSDEIntegrator({self.method!r}, final_ode_step={self.final_ode_step})"

    def integrate(
        self,
        velocity: Field,
        score: Field,
        x: Float[Tensor, "batch *dims"],
        grid: Tensor,
        diffusion: Diffusion | float,
        *,
        save_at: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Solution:
        """Sample the SDE; arguments and result as :meth:`SDEIntegrator.integrate`.

        The grid must be uniform (torchsde steps with a constant ``dt``).
        """
        import torchsde

        g, saved, eps, v, s = self._checked(velocity, score, x, grid, diffusion, save_at, generator)
        h = g.diff()
        if float((h - h.mean()).abs().max()) > 1e-4 * float(h.abs().mean()):
            raise ValueError("grid must be uniform for TorchSDEIntegrator (torchsde uses one dt)")
        if not isinstance(diffusion, Diffusion):
            diffusion = ConstantDiffusion(eps[0])
        sde_type, ode_step, _ = _METHODS[self.method]
        sign = 1.0 if float(h[0]) > 0 else -1.0
        stochastic = g[:-1] if self.final_ode_step else g
        states = [x[None]]
        if stochastic.shape[0] > 1:
            tau = sign * stochastic
            flat = x.reshape(x.shape[0], -1)
            entropy = None
            if generator is not None:
                seed = torch.randint(2**31 - 1, (1,), generator=generator, device=generator.device)
                entropy = int(seed)
            bm = torchsde.BrownianInterval(
                t0=float(tau[0]),
                t1=float(tau[-1]),
                size=tuple(flat.shape),
                dtype=x.dtype,
                device=x.device,
                entropy=entropy,
            )
            problem = _Problem(sde_type, v, s, diffusion, sign, x.shape)
            ys = torchsde.sdeint(
                problem, flat, tau, bm=bm, method=self.method, dt=float(h.abs().mean())
            )
            states = [ys.reshape(ys.shape[0], *x.shape)]
        if self.final_ode_step:
            last = ode_step(v, g[-2], g[-1], h[-1], states[-1][-1])
            states.append(last[None])
        path = torch.cat(states)[-g.shape[0] :]
        trajectory = [path[i] for i in saved]
        return make_solution(path[-1], g, saved, trajectory, v.count + s.count, h.shape[0])
