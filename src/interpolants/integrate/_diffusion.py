r"""Diffusion schedules ε(t) ≥ 0 for sampling with the SDEs of a stochastic interpolant.

For *any* ε(t) ≥ 0 the SDEs (:doc:`/mathematics`)

.. math::

    dX_t = [b + ε s](t, X_t)\,dt + \sqrt{2ε(t)}\,dW_t \quad (t: 0 → 1,\ X_0 \sim ρ_0),\qquad
    dY_t = [b − ε s](t, Y_t)\,dt + \sqrt{2ε(t)}\,dW^B_t \quad (t: 1 → 0,\ Y_1 \sim ρ_1)

have the marginals ρ_t of the interpolant, so ε is chosen at sampling time for the same trained
b and s; ε ≡ 0 recovers the probability-flow ODE. A schedule is a callable mapping a tensor of
times to a tensor of ε values of the same shape, dtype and device.

References
----------
M. S. Albergo, N. M. Boffi, E. Vanden-Eijnden, *Stochastic Interpolants: A Unifying Framework
for Flows and Diffusions*, arXiv:2303.08797, §2.3.
"""

import abc
import math
from collections.abc import Callable
from typing import final

import torch
from torch import Tensor

from .._types import Times
from ..interpolant._base import Interpolant

__all__ = ["ConstantDiffusion", "CustomDiffusion", "Diffusion", "GammaProportionalDiffusion"]


class Diffusion(abc.ABC):
    """Abstract diffusion coefficient ε(t) ≥ 0 (elementwise in ``t``).

    **Writing a schedule.** Implement :meth:`__call__`: a floating tensor of times in [0, 1]
    of any shape in, ε of the same shape, dtype and device out, finite and ≥ 0 (the
    integrators evaluate it once per call on all the times they need and check the values).

    Example
    -------
    >>> import torch
    >>> from interpolants.integrate import Diffusion
    >>> class Tent(Diffusion):  # ε(t) = min(t, 1 − t)
    ...     def __call__(self, t):
    ...         return torch.minimum(t, 1 - t)
    >>> Tent()(torch.tensor([0.0, 0.25, 1.0]))
    tensor([0.0000, 0.2500, 0.0000])
    """

    @abc.abstractmethod
    def __call__(self, t: Times) -> Times:
        """ε(t), same shape, dtype and device as ``t``."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


@final
class ConstantDiffusion(Diffusion):
    """ε(t) = ``value`` for every t.

    Example
    -------
    >>> import torch
    >>> from interpolants.integrate import ConstantDiffusion
    >>> ConstantDiffusion(0.5)(torch.tensor([0.0, 1.0]))
    tensor([0.5000, 0.5000])
    """

    def __init__(self, value: float) -> None:
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"value (ε) must be a finite number ≥ 0, got {value}")
        self.value = float(value)

    def __call__(self, t: Times) -> Times:
        return torch.full_like(t, self.value)

    def __repr__(self) -> str:
        return f"ConstantDiffusion({self.value})"


@final
class GammaProportionalDiffusion(Diffusion):
    r"""ε(t) = ``scale``·σ(t) with σ the interpolant's noise scale.

    σ = γ for a two-sided interpolant and σ = α for a one-sided one (whose base x0 plays the
    noise; :meth:`~Interpolant.noise_scale`). Since the
    score is s = −η_z/σ, the SDE correction ε s = −scale·η_z stays bounded where σ → 0 and the
    score is singular (both ends for the Brownian γ, t = 1 for one-sided interpolants), and the
    noise √(2ε) vanishes there.

    Parameters
    ----------
    interpolant:
        The interpolant whose noise level is used.
    scale:
        The proportionality factor, ≥ 0.
    """

    def __init__(self, interpolant: Interpolant, scale: float = 1.0) -> None:
        if not isinstance(interpolant, Interpolant):
            raise TypeError(f"interpolant must be an Interpolant, got {type(interpolant).__name__}")
        if not (math.isfinite(scale) and scale >= 0):
            raise ValueError(f"scale must be a finite number ≥ 0, got {scale}")
        if not interpolant.has_noise:
            raise ValueError(
                f"{interpolant!r} has γ ≡ 0, so ε = scale·γ would vanish; use ConstantDiffusion"
            )
        self.interpolant = interpolant
        self.scale = float(scale)

    def __call__(self, t: Times) -> Times:
        return self.scale * self.interpolant.noise_scale(t)

    def __repr__(self) -> str:
        return f"GammaProportionalDiffusion({self.interpolant!r}, scale={self.scale})"


@final
class CustomDiffusion(Diffusion):
    """ε(t) given by a user callable, elementwise on a tensor of times.

    The callable is checked at construction to be finite and ≥ 0 on 1001 points of [0, 1]
    (float64); the integrators check it again on their own grid.
    """

    def __init__(self, fn: Callable[[Tensor], Tensor]) -> None:
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {type(fn).__name__}")
        grid = torch.linspace(0, 1, 1001, dtype=torch.float64)
        values = fn(grid)
        if not isinstance(values, Tensor) or values.shape != grid.shape:
            raise TypeError("fn must map a tensor of times to a tensor of the same shape")
        if not bool(torch.isfinite(values).all()):
            raise ValueError("fn (ε) must be finite on [0, 1]")
        if bool((values < 0).any()):
            raise ValueError(
                f"fn (ε) must be ≥ 0 on [0, 1], got a minimum of {float(values.min())}"
            )
        self.fn = fn

    def __call__(self, t: Times) -> Times:
        return self.fn(t)

    def __repr__(self) -> str:
        return f"CustomDiffusion({self.fn!r})"
