r"""An interpolant whose α and β are learned: monotone Bernstein polynomials.

With the Bernstein basis B_{k,K}(t) = C(K, k) t^k (1 − t)^{K−k},

.. math::

    β(t) = \sum_{k=0}^{K} b_k B_{k,K}(t),\qquad α(t) = 1 − \sum_{k=0}^{K} a_k B_{k,K}(t),

with 0 = b_0 ≤ b_1 ≤ … ≤ b_K = 1 (and the same for a) given by cumulative softmaxes of free
parameters. So β rises from 0 to 1 and α falls from 1 to 0 *exactly* at the ends, whatever the
parameters (a polynomial with increasing Bernstein coefficients is increasing), and
β̇(t) = K Σ_k (b_{k+1} − b_k) B_{k,K−1}(t) ≥ 0 in closed form. With all parameters zero,
b_k = a_k = k/K and the interpolant is the linear one (Bernstein polynomials reproduce t).

**Why learn them.** For the dot-form loss ½|b̂|² − y·b̂ (the MSE ½|b̂ − y|² less the
path-dependent ½|y|² of the target y) the optimum over b̂ is −½∫E|b|² dt, minus half the
kinetic energy of the marginal flow. So minimising the kinetic energy (shorter, straighter
paths, fewer function evaluations to sample) over the interpolant is a max–min problem: the
velocity descends the dot-form loss while the interpolant's parameters ascend it, jointly or
after pre-training on the exact energy of a known test bed. Ascend the dot form, not the
reported MSE of :class:`~interpolants.Objective` (which adds E|y|²/D, itself a function of the
path): e.g. with ``sample = interpolant.sample(t, x0, x1, z)``, the batch mean of
``(b * (0.5 * b - sample.velocity)).sum(1)`` for the model's ``b``.

References
----------
M. S. Albergo, N. M. Boffi, E. Vanden-Eijnden, *Stochastic Interpolants: A Unifying Framework
for Flows and Diffusions*, arXiv:2303.08797, §3.4 (optimising the interpolant).
R. T. Farouki, *The Bernstein polynomial basis: a centennial retrospective*, Comput. Aided
Geom. Des. 29 (2012).
"""

import math
from typing import final

import torch
from torch import Tensor, nn

from .._types import Times
from ._base import Interpolant
from ._gamma import GammaSchedule, NoGamma

__all__ = ["LearnedInterpolant"]


def _bernstein(t: Tensor, binomials: Tensor) -> Tensor:
    """B_{k,K}(t) = C(K, k) t^k (1 − t)^{K−k} for k = 0 … K (K = len(binomials) − 1), stacked
    in a last dimension: shape ``(*t.shape, K + 1)``."""
    degree = binomials.shape[0] - 1
    k = torch.arange(degree + 1, dtype=t.dtype, device=t.device)
    tt = t[..., None]
    return binomials.to(dtype=t.dtype, device=t.device) * tt.pow(k) * (1 - tt).pow(degree - k)


class _Logits(nn.Module):
    """The learnable logits of α's and β's coefficients, and the binomial coefficients."""

    binomials: Tensor
    rate_binomials: Tensor

    def __init__(self, degree: int) -> None:
        super().__init__()
        self.alpha_logits = nn.Parameter(torch.zeros(degree))
        self.beta_logits = nn.Parameter(torch.zeros(degree))
        for name, n in (("binomials", degree), ("rate_binomials", degree - 1)):
            values = [float(math.comb(n, j)) for j in range(n + 1)]
            self.register_buffer(name, torch.tensor(values), persistent=False)


@final
class LearnedInterpolant(Interpolant):
    r"""α and β as monotone Bernstein polynomials of degree ``degree`` with learnable
    coefficients (see the module notes); γ is the given schedule.

    The parameters live in :attr:`module` (an :class:`torch.nn.Module`, so they move with
    ``.to``, are saved by ``state_dict`` and are optimised like any network's); they are cast
    to the times' dtype and device when evaluated, so gradients reach them through every
    method (x_t, the targets, the exact test-bed fields).

    Parameters
    ----------
    gamma:
        The noise schedule γ (default γ ≡ 0).
    degree:
        The polynomial degree K ≥ 1 (K = 1 can only be the linear interpolant).

    Example
    -------
    >>> import torch
    >>> from interpolants.interpolant import LearnedInterpolant
    >>> interp = LearnedInterpolant(degree=4)  # starts as the linear interpolant
    >>> t = torch.tensor([0.0, 0.3, 1.0])
    >>> [round(v, 6) for v in interp.alpha(t).tolist()], interp.beta(t)[[0, 2]].tolist()
    ([1.0, 0.7, 0.0], [0.0, 1.0])
    >>> with torch.no_grad():
    ...     interp.module.beta_logits += torch.tensor([2.0, 0.0, 0.0, -2.0])
    >>> bool(interp.beta(torch.tensor(0.5)) > 0.5), float(interp.beta(torch.tensor(1.0)))
    (True, 1.0)
    """

    def __init__(self, gamma: GammaSchedule | None = None, *, degree: int = 6) -> None:
        if not isinstance(degree, int) or degree < 1:
            raise ValueError(f"degree must be a positive integer, got {degree!r}")
        super().__init__(NoGamma() if gamma is None else gamma)
        self.degree = degree
        self.module = _Logits(degree)

    def _coefficients(self, logits: Tensor, t: Tensor) -> Tensor:
        """0 = c_0 ≤ … ≤ c_K = 1 from the cumulative softmax of the logits (the last one set to
        exactly 1, so that the ends hold in floating point too)."""
        steps = torch.softmax(logits.to(dtype=t.dtype, device=t.device), dim=0)
        inner = steps[:-1].cumsum(0)
        return torch.cat([steps.new_zeros(1), inner, steps.new_ones(1)])

    def _value(self, logits: Tensor, t: Times) -> Tensor:
        basis = _bernstein(t, self.module.binomials)
        return (basis * self._coefficients(logits, t)).sum(-1)

    def _rate(self, logits: Tensor, t: Times) -> Tensor:
        steps = torch.softmax(logits.to(dtype=t.dtype, device=t.device), dim=0)
        return self.degree * (_bernstein(t, self.module.rate_binomials) * steps).sum(-1)

    def alpha(self, t: Times) -> Times:
        return torch.rsub(self._value(self.module.alpha_logits, t), 1.0)

    def beta(self, t: Times) -> Times:
        return self._value(self.module.beta_logits, t)

    def alpha_dot(self, t: Times) -> Times:
        return -self._rate(self.module.alpha_logits, t)

    def beta_dot(self, t: Times) -> Times:
        return self._rate(self.module.beta_logits, t)

    def parameters(self) -> list[nn.Parameter]:
        """The learnable parameters (the coefficients' logits of α and β)."""
        return list(self.module.parameters())

    def __repr__(self) -> str:
        return f"LearnedInterpolant(gamma={self.gamma_schedule!r}, degree={self.degree})"
