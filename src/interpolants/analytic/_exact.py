"""The Gaussian mixtures and their exact interpolant fields (see :mod:`interpolants.analytic`)."""

import math
from typing import final

import torch
from jaxtyping import Float
from torch import Tensor

from .. import _validation
from .._types import TimeLike, Vector
from .._validation import as_time, check_finite, check_floating
from ..interpolant._base import Interpolant

__all__ = ["ExactInterpolantFields"]


@final
class GaussianMixture:
    r"""A Gaussian mixture ρ(x) = Σₖ wₖ N(x; μₖ, Cₖ) in ``dim`` dimensions.

    Parameters
    ----------
    weights:
        Mixture weights, shape ``(K,)``, non-negative; normalised to sum to one.
    means:
        Component means, shape ``(K, dim)``.
    covariances:
        Symmetric positive-definite covariances, shape ``(K, dim, dim)``.

    All three are stored in the dtype and on the device of ``means``.

    Example
    -------
    >>> import torch
    >>> from interpolants import GaussianMixture
    >>> g = GaussianMixture.standard_normal(2, dtype=torch.float64)
    >>> round(float(g.log_prob(torch.zeros(1, 2, dtype=torch.float64))[0]), 6)
    -1.837877
    """

    def __init__(
        self,
        weights: Float[Tensor, " K"],
        means: Float[Tensor, "K dim"],
        covariances: Float[Tensor, "K dim dim"],
    ) -> None:
        for name, value in (("weights", weights), ("means", means), ("covariances", covariances)):
            check_floating(value, name)
            check_finite(value, name)
        if means.ndim != 2:
            raise ValueError(f"means must have shape (K, dim), got {tuple(means.shape)}")
        k, d = means.shape
        if weights.shape != (k,):
            raise ValueError(f"weights must have shape ({k},), got {tuple(weights.shape)}")
        if covariances.shape != (k, d, d):
            raise ValueError(
                f"covariances must have shape ({k}, {d}, {d}), got {tuple(covariances.shape)}"
            )
        if bool((weights < 0).any()) or float(weights.sum()) <= 0:
            raise ValueError("weights must be non-negative with a positive sum")
        covariances = covariances.to(device=means.device, dtype=means.dtype)
        if not torch.allclose(covariances, covariances.mT, rtol=1e-6, atol=1e-8):
            raise ValueError("covariances must be symmetric")
        chol, info = torch.linalg.cholesky_ex(covariances)
        if bool((info != 0).any()):
            raise ValueError("covariances must be positive definite")
        self.weights = (weights / weights.sum()).to(device=means.device, dtype=means.dtype)
        self.means = means
        self.covariances = covariances
        self._chol = chol

    @classmethod
    def standard_normal(
        cls, dim: int, *, dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu"
    ) -> "GaussianMixture":
        """N(0, I) in ``dim`` dimensions as a one-component mixture."""
        return cls.isotropic(
            torch.ones(1, dtype=dtype, device=device),
            torch.zeros(1, dim, dtype=dtype, device=device),
            1.0,
        )

    @classmethod
    def isotropic(
        cls, weights: Float[Tensor, " K"], means: Float[Tensor, "K dim"], std: float
    ) -> "GaussianMixture":
        """Components N(μₖ, std²·I) sharing one standard deviation."""
        if not std > 0:
            raise ValueError(f"std must be positive, got {std}")
        k, d = means.shape
        eye = torch.eye(d, dtype=means.dtype, device=means.device)
        return cls(weights, means, (std**2 * eye).expand(k, d, d).clone())

    @property
    def dim(self) -> int:
        """The dimension of the space."""
        return int(self.means.shape[1])

    @property
    def num_components(self) -> int:
        """The number of components K."""
        return int(self.means.shape[0])

    def to(
        self, dtype: torch.dtype | None = None, device: torch.device | str | None = None
    ) -> "GaussianMixture":
        """A copy in another dtype and/or on another device."""
        return GaussianMixture(
            self.weights.to(device=device, dtype=dtype),
            self.means.to(device=device, dtype=dtype),
            self.covariances.to(device=device, dtype=dtype),
        )

    def mean(self) -> Float[Tensor, " dim"]:
        """The mixture mean Σₖ wₖ μₖ."""
        return self.weights @ self.means

    def covariance(self) -> Float[Tensor, "dim dim"]:
        """The mixture covariance Σₖ wₖ (Cₖ + μₖμₖᵀ) − μμᵀ."""
        m = self.mean()
        second = torch.einsum("k,kij->ij", self.weights, self.covariances) + torch.einsum(
            "k,ki,kj->ij", self.weights, self.means, self.means
        )
        return second - torch.outer(m, m)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Vector:
        """``n`` independent samples, shape ``(n, dim)``."""
        if n < 0:
            raise ValueError(f"n must be non-negative, got {n}")
        if self.num_components == 1:  # one matrix product, no component draw
            eps = torch.randn(
                n, self.dim, dtype=self.means.dtype, device=self.means.device, generator=generator
            )
            out: Tensor = self.means[0] + eps @ self._chol[0].T
            return out
        comp = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        eps = torch.randn(
            n, self.dim, dtype=self.means.dtype, device=self.means.device, generator=generator
        )
        return self.means[comp] + torch.einsum("nij,nj->ni", self._chol[comp], eps)

    def log_prob(self, x: Float[Tensor, "batch dim"]) -> Float[Tensor, " batch"]:
        """log ρ(x), shape ``(batch,)``."""
        check_floating(x, "x")
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x must have shape (batch, {self.dim}), got {tuple(x.shape)}")
        x = x.to(self.means.dtype)
        comp = _gaussian_log_prob(x[:, None, :], self.means[None], self._chol[None])
        return torch.logsumexp(comp + torch.log(self.weights), dim=-1)


def _gaussian_log_prob(x: Tensor, mean: Tensor, chol: Tensor) -> Tensor:
    """log N(x; mean, L Lᵀ) broadcast over leading dims; x, mean (..., d), chol (..., d, d)."""
    diff = (x - mean).unsqueeze(-1)
    chol = chol.expand(*diff.shape[:-2], *chol.shape[-2:])
    sol = torch.linalg.solve_triangular(chol, diff, upper=False).squeeze(-1)
    d = x.shape[-1]
    logdet = 2 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)
    out: Tensor = -0.5 * (sol**2).sum(-1) - 0.5 * logdet - 0.5 * d * math.log(2 * math.pi)
    return out


@final
class ExactInterpolantFields:
    r"""Closed-form ρ_t, b, v, s and η_z for an interpolant between two Gaussian mixtures.

    All computations run in the dtype and on the device of ``target.means`` (use float64 for
    tests) and are differentiable in ``t`` and ``x``. Each field method takes ``t`` as a number,
    a scalar tensor or one time per sample, and ``x`` of shape ``(batch, dim)``; the cost is
    O(batch · K0 · K1 · dim³).

    Parameters
    ----------
    interpolant:
        Any spatially linear :class:`Interpolant`. For a one-sided interpolant
        the base must be N(0, I) (it plays the noise); for the
        :class:`MirrorInterpolant` (α ≡ 0) the base does not enter
        and the target is mapped to itself.
    base:
        ρ0, a :class:`GaussianMixture` (coupled independently of the target).
    target:
        ρ1, a :class:`GaussianMixture` of the same dimension.


    Example
    -------
    >>> import torch
    >>> from interpolants import GaussianMixture, LinearInterpolant
    >>> from interpolants.analytic import ExactInterpolantFields
    >>> g0 = GaussianMixture.standard_normal(2, dtype=torch.float64)
    >>> g1 = GaussianMixture.isotropic(torch.ones(1, dtype=torch.float64),
    ...                                torch.full((1, 2), 3.0, dtype=torch.float64), 1.0)
    >>> exact = ExactInterpolantFields(LinearInterpolant(), g0, g1)
    >>> exact.velocity(0.5, torch.full((1, 2), 1.5, dtype=torch.float64))  # b = μ1 − μ0 here
    tensor([[3., 3.]], dtype=torch.float64)
    """

    def __init__(
        self, interpolant: Interpolant, base: GaussianMixture, target: GaussianMixture
    ) -> None:
        if base.dim != target.dim:
            raise ValueError(f"base has dimension {base.dim} but target has {target.dim}")
        if interpolant.one_sided:
            eye = torch.eye(base.dim, dtype=base.means.dtype, device=base.means.device)
            if (
                base.num_components != 1
                or bool(base.means.abs().max() > 1e-12)
                or not torch.allclose(base.covariances[0], eye, atol=1e-12)
            ):
                raise ValueError("a one-sided interpolant needs the base N(0, I)")
        self.interpolant = interpolant
        self.target = target
        self.base = base.to(dtype=target.means.dtype, device=target.means.device)

    @property
    def dim(self) -> int:
        """The dimension of the space."""
        return self.target.dim

    def _time(self, t: TimeLike, like: Tensor) -> Tensor:
        tt = as_time(t, like, "t")
        return tt.expand(like.shape[0]) if tt.ndim == 0 else tt

    def _check_x(self, x: Tensor) -> Tensor:
        check_floating(x, "x")
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x must have shape (batch, {self.dim}), got {tuple(x.shape)}")
        if _validation.CHECK_VALUES:  # a host read: only in the checked mode
            check_finite(x, "x")
        return x.to(self.target.means.dtype)

    def _components(self, t: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """Mixture form of ρ_t per sample: log-weights (B,P), m, ṁ (B,P,d), C, Ċ (B,P,d,d)."""
        c = self.interpolant.coefficients(t)
        g0, g1 = self.base, self.target
        k0, k1, d = g0.num_components, g1.num_components, self.dim
        a, b, g = (v[:, None, None, None] for v in (c.alpha, c.beta, c.gamma))
        ad, bd = (v[:, None, None, None] for v in (c.alpha_dot, c.beta_dot))
        ggd = c.gamma_gamma_dot[:, None, None, None]
        mu0, mu1 = g0.means[:, None, :], g1.means[None, :, :]
        mean = a * mu0 + b * mu1  # (B, k0, k1, d)
        mean_rate = ad * mu0 + bd * mu1
        c0, c1 = g0.covariances[:, None], g1.covariances[None, :]
        eye = torch.eye(d, dtype=t.dtype, device=t.device)
        cov = a[..., None] ** 2 * c0 + b[..., None] ** 2 * c1 + (g**2)[..., None] * eye
        cov_rate = 2 * ((a * ad)[..., None] * c0 + (b * bd)[..., None] * c1 + ggd[..., None] * eye)
        logw = (torch.log(g0.weights)[:, None] + torch.log(g1.weights)[None, :]).reshape(-1)
        n = t.shape[0]
        return (
            logw.expand(n, k0 * k1),
            mean.reshape(n, k0 * k1, d),
            mean_rate.reshape(n, k0 * k1, d),
            cov.reshape(n, k0 * k1, d, d),
            cov_rate.reshape(n, k0 * k1, d, d),
        )

    def _posterior(self, t: TimeLike, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """log ρ_t(x), posterior weights w (B,P), C⁻¹(x−m) (B,P,d), ṁ (B,P,d), Ċ (B,P,d,d)."""
        x = self._check_x(x)
        tt = self._time(t, x)
        logw, mean, mean_rate, cov, cov_rate = self._components(tt)
        chol = torch.linalg.cholesky(cov)
        diff = (x[:, None, :] - mean).unsqueeze(-1)
        prec_diff = torch.cholesky_solve(diff, chol).squeeze(-1)
        logn = _gaussian_log_prob(x[:, None, :], mean, chol)
        joint = logw + logn
        logp = torch.logsumexp(joint, dim=-1)
        w = torch.exp(joint - logp[:, None])
        return logp, w, prec_diff, mean_rate, cov_rate

    def log_prob(self, t: TimeLike, x: Float[Tensor, "batch dim"]) -> Float[Tensor, " batch"]:
        """log ρ_t(x), shape ``(batch,)``."""
        return self._posterior(t, x)[0]

    def sample(
        self, t: TimeLike, n: int, generator: torch.Generator | None = None
    ) -> Float[Tensor, "n dim"]:
        """``n`` samples of ρ_t drawn from its mixture form (not through the interpolant)."""
        like = torch.empty(n, dtype=self.target.means.dtype, device=self.target.means.device)
        tt = self._time(t, like)
        logw, mean, _, cov, _ = self._components(tt)
        comp = torch.multinomial(torch.softmax(logw, -1), 1, generator=generator)[:, 0]
        rows = torch.arange(n, device=like.device)
        chol = torch.linalg.cholesky(cov[rows, comp])
        eps = torch.randn(n, self.dim, dtype=like.dtype, device=like.device, generator=generator)
        return mean[rows, comp] + torch.einsum("nij,nj->ni", chol, eps)

    def score(self, t: TimeLike, x: Float[Tensor, "batch dim"]) -> Vector:
        """s(t, x) = ∇ log ρ_t(x)."""
        _, w, prec_diff, _, _ = self._posterior(t, x)
        return -(w[..., None] * prec_diff).sum(1)

    def velocity(self, t: TimeLike, x: Float[Tensor, "batch dim"]) -> Vector:
        """b(t, x) = E[α̇x0 + β̇x1 + γ̇z | x_t = x], the probability-flow velocity."""
        return self._velocity_and_score(t, x)[0]

    def _velocity_and_score(self, t: TimeLike, x: Tensor) -> tuple[Tensor, Tensor]:
        """b and s from one evaluation of the posterior weights."""
        _, w, prec_diff, mean_rate, cov_rate = self._posterior(t, x)
        cond = mean_rate + 0.5 * torch.einsum("bpij,bpj->bpi", cov_rate, prec_diff)
        return (w[..., None] * cond).sum(1), -(w[..., None] * prec_diff).sum(1)

    def mean_velocity(self, t: TimeLike, x: Float[Tensor, "batch dim"]) -> Vector:
        """v(t, x) = E[α̇x0 + β̇x1 | x_t = x], from the mixture algebra: per component,
        E[α̇x0 + β̇x1 | x] = ṁ + (αα̇C0 + ββ̇C1)C⁻¹(x − m) = ṁ + (½Ċ − γγ̇I)C⁻¹(x − m).
        (Written independently of the interpolant's conversion v = b + γγ̇ s, which the tests
        check against it.)"""
        _, w, prec_diff, mean_rate, cov_rate = self._posterior(t, x)
        ggd = self.interpolant.coefficients(self._time(t, prec_diff)).gamma_gamma_dot
        rate = 0.5 * torch.einsum("bpij,bpj->bpi", cov_rate, prec_diff)
        cond = mean_rate + rate - ggd[:, None, None] * prec_diff
        return (w[..., None] * cond).sum(1)

    def average_velocity(
        self,
        t: TimeLike,
        r: TimeLike,
        x: Float[Tensor, "batch dim"],
        *,
        steps: int = 64,
    ) -> Vector:
        r"""u(t, r, x) = (X_{t→r}(x) − x)/(r − t), the average velocity of the exact flow over
        [t, r] (b(t, x) where r = t), by ``steps`` classical Runge–Kutta steps of ẋ = b from t
        to r per sample (error O(steps⁻⁴)); the target of a mean flow
        (:class:`~interpolants.integrate.FlowMap`).

        Example
        -------
        >>> import torch
        >>> from interpolants import GaussianMixture, LinearInterpolant
        >>> from interpolants.analytic import ExactInterpolantFields
        >>> g = GaussianMixture.standard_normal(1, dtype=torch.float64)
        >>> exact = ExactInterpolantFields(LinearInterpolant(), g, g)
        >>> x = torch.tensor([[2.0]], dtype=torch.float64)
        >>> # N(0, 1) to itself: ρ_t = N(0, (1−t)² + t²), b = x(2t − 1)/((1−t)² + t²)
        >>> u = exact.average_velocity(0.0, 1.0, x)
        >>> bool(torch.allclose(u, torch.zeros(1, 1, dtype=torch.float64), atol=1e-6))
        True
        """
        if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
            raise ValueError(f"steps must be a positive integer, got {steps!r}")
        x = self._check_x(x)
        start, end = self._time(t, x), self._time(r, x)
        span = end - start
        h = 1.0 / steps
        average = torch.zeros_like(x)  # y = x + (r − t)·average along the way
        width = span[:, None]
        for k in range(steps):  # in s ∈ [0, 1]: τ = t + s(r − t), dy/ds = (r − t)·b(τ, y)
            s, y = k * h, x + width * average
            k1 = self.velocity(start + s * span, y)
            k2 = self.velocity(start + (s + h / 2) * span, y + (h / 2) * width * k1)
            k3 = self.velocity(start + (s + h / 2) * span, y + (h / 2) * width * k2)
            k4 = self.velocity(start + (s + h) * span, y + h * width * k3)
            average = average + (h / 6) * (k1 + 2 * k2 + 2 * k3 + k4)
        return average  # no division: r = t gives b(t, x)

    def denoiser(self, t: TimeLike, x: Float[Tensor, "batch dim"]) -> Vector:
        """η_z(t, x) = E[noise | x_t = x], from the mixture algebra: the noise (z, or x0 if
        one-sided) has covariance σI with x_t, so per component E[noise | x] = σC⁻¹(x − m),
        with σ the noise scale (γ, or α if one-sided); this is −σ s."""
        _, w, prec_diff, _, _ = self._posterior(t, x)
        sigma = self.interpolant.coefficients(self._time(t, prec_diff)).noise_scale
        return sigma[:, None] * (w[..., None] * prec_diff).sum(1)
