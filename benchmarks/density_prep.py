r"""Fixed bijective preprocessing for :mod:`density` (the likelihood counts its Jacobian).

:class:`MarginalGaussianization` maps each coordinate through a monotone CDF fitted once to
training data and then through the standard normal quantile, z_d = Φ⁻¹(F_d(y_d)), so that
every marginal of z is close to N(0, 1) and the flow only has to learn the dependencies.
F_d is piecewise linear (a histogram density: exact for uniformly dequantised levels, or
quantile knots for continuous data), mixed with a small Gaussian component so that it is
strictly increasing on the whole line:

.. math::

    F_d(y) = (1 − ε)\,\mathrm{PL}_d(y) + ε\,Φ((y − m_d)/s_d),\qquad
    \log ρ_Y(y) = \log ρ_Z(z) + \sum_d [\log F_d'(y_d) − \log φ(z_d)].

:class:`Preprocessed` wraps a model of z (any module returning a distribution when called,
such as :class:`~interpolants.density.InterpolantFlow`) into a model of y with that change
of variables, so ``Preprocessed(...)().log_prob(y)`` is an exact log-density of y.
"""

import math
from typing import Any

import torch
from torch import Tensor, nn

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


class MarginalGaussianization(nn.Module):
    """z = Φ⁻¹(F(y)) per coordinate, with its log-Jacobian (computed in float64)."""

    def __init__(self, knots: Tensor, cdf: Tensor, mean: Tensor, scale: Tensor, eps: float) -> None:
        super().__init__()
        # knots, cdf: (dim, K), increasing along the last axis, cdf from 0 to 1
        self.register_buffer("knots", knots.double().contiguous())
        self.register_buffer("cdf", cdf.double().contiguous())
        self.register_buffer("mean", mean.double())
        self.register_buffer("scale", scale.double())
        self.eps = eps

    @classmethod
    def histogram(
        cls, x: Tensor, edges: Tensor, pseudo: float = 0.5, eps: float = 0.0
    ) -> "MarginalGaussianization":
        """Piecewise-uniform marginals on the bins ``edges`` (shared by every coordinate),
        bin probabilities from the counts in ``x`` plus ``pseudo`` per bin."""
        edges = edges.double()
        bins = edges.numel() - 1
        idx = torch.bucketize(x.double().contiguous(), edges[1:-1], right=True)  # (n, dim)
        counts = torch.stack([torch.bincount(c, minlength=bins) for c in idx.T]).double()
        probs = (counts + pseudo) / (counts + pseudo).sum(1, keepdim=True)
        cdf = torch.cat([torch.zeros(probs.shape[0], 1, dtype=probs.dtype), probs.cumsum(1)], 1)
        cdf[:, -1] = 1.0
        knots = edges.expand(probs.shape[0], -1)
        return cls(knots, cdf, x.double().mean(0), 2 * x.double().std(0) + 1e-3, eps)

    @classmethod
    def quantiles(
        cls, x: Tensor, n_knots: int = 128, eps: float = 1e-3
    ) -> "MarginalGaussianization":
        """Knots at ``n_knots`` evenly spaced empirical quantiles of ``x`` (continuous data)."""
        levels = torch.linspace(0, 1, n_knots, dtype=torch.float64)
        knots = torch.quantile(x.double(), levels, dim=0).T.contiguous()  # (dim, K)
        gap = 1e-6 * (knots[:, -1:] - knots[:, :1])
        knots = knots + gap * torch.arange(n_knots, dtype=torch.float64)  # strictly increasing
        cdf = levels.expand(x.shape[1], -1)
        return cls(knots, cdf, x.double().mean(0), 2 * x.double().std(0), eps)

    def _pl(self, y: Tensor) -> tuple[Tensor, Tensor]:
        """Piecewise-linear CDF and its density at ``y`` (n, dim), float64."""
        knots: Tensor = self.knots  # type: ignore[assignment]
        cdf: Tensor = self.cdf  # type: ignore[assignment]
        k = knots.shape[1]
        idx = torch.searchsorted(knots, y.T.contiguous(), right=True).T - 1  # (n, dim)
        inside = (idx >= 0) & (idx < k - 1)
        i = idx.clamp(0, k - 2)
        lo = torch.gather(knots, 1, i.T).T
        hi = torch.gather(knots, 1, (i + 1).T).T
        clo = torch.gather(cdf, 1, i.T).T
        chi = torch.gather(cdf, 1, (i + 1).T).T
        slope = (chi - clo) / (hi - lo)
        value = torch.where(inside, clo + slope * (y - lo), (idx >= k - 1).double())
        return value, torch.where(inside, slope, torch.zeros_like(slope))

    def _cdf(self, y: Tensor) -> tuple[Tensor, Tensor]:
        """F(y) and F′(y) for float64 y of shape (n, dim): the piecewise-linear CDF mixed with
        the Gaussian component."""
        value, dens = self._pl(y)
        if self.eps > 0:
            u = (y - self.mean) / self.scale
            value = (1 - self.eps) * value + self.eps * torch.special.ndtr(u)
            gauss = torch.exp(-0.5 * u**2 - _HALF_LOG_2PI) / self.scale
            dens = (1 - self.eps) * dens + self.eps * gauss
        return value, dens

    def forward(self, y: Tensor) -> tuple[Tensor, Tensor]:
        """(z, log|det ∂z/∂y|) for y of shape (n, dim); z in y's dtype."""
        value, dens = self._cdf(y.double())
        value = value.clamp(1e-15, 1 - 1e-15)
        z = torch.special.ndtri(value)
        log_phi = -0.5 * z**2 - _HALF_LOG_2PI
        logdet = (torch.log(dens) - log_phi).sum(1)
        return z.to(y.dtype), logdet.to(y.dtype)

    def inverse(self, z: Tensor, iterations: int = 60) -> Tensor:
        """y with Φ⁻¹(F(y)) = z, by bisection (F is increasing)."""
        target = torch.special.ndtr(z.double())
        knots: Tensor = self.knots  # type: ignore[assignment]
        lo = (knots[:, 0] - 10 * self.scale).expand_as(target).clone()
        hi = (knots[:, -1] + 10 * self.scale).expand_as(target).clone()
        if self.eps == 0:
            lo, hi = knots[:, 0].expand_as(target).clone(), knots[:, -1].expand_as(target).clone()
        for _ in range(iterations):
            mid = 0.5 * (lo + hi)
            below = self._cdf(mid)[0] < target
            lo = torch.where(below, mid, lo)
            hi = torch.where(below, hi, mid)
        return (0.5 * (lo + hi)).to(z.dtype)


class _Distribution:
    def __init__(self, inner: Any, prep: MarginalGaussianization) -> None:
        self.inner, self.prep = inner, prep

    def log_prob(self, y: Tensor, **kwargs: Any) -> Tensor:
        z, logdet = self.prep(y)
        return self.inner.log_prob(z, **kwargs) + logdet

    def sample(self, sample_shape: Any = ()) -> Tensor:
        return self.prep.inverse(self.inner.sample(sample_shape))


class Preprocessed(nn.Module):
    """A model of y = F⁻¹(Φ(z)) from a model ``inner`` of z: calling it gives an object with
    ``log_prob`` (change of variables) and ``sample``."""

    def __init__(self, inner: nn.Module, prep: MarginalGaussianization) -> None:
        super().__init__()
        self.inner, self.prep = inner, prep

    def forward(self) -> _Distribution:
        return _Distribution(self.inner(), self.prep)
