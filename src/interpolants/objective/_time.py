r"""Distributions of the training time t, with optional importance weights.

An objective draws one time per sample from a :class:`TimeSampler` (uniform on [0, 1] by
default) and multiplies each per-sample loss by :meth:`~TimeSampler.weight`. Every sampler here
has weight 1 except :class:`ImportanceWeighted`, whose weight 1/p(t) makes the expected loss
equal to the loss under uniform times while t is drawn from p. (Any time distribution with
full support on (0, 1) has the same minimiser; the weights change only the variance and the
relative emphasis of the times.) Besides the uniform and Beta laws: :class:`LogitNormalTime`
(the logit-normal law of rectified-flow training), any law given by its inverse CDF
(:class:`InverseCDFTime`) or by any density function (:class:`DensityTime`).

Samplers draw on the requested device and dtype with the given ``torch.Generator`` (which must
live on that device), so that a fixed generator gives reproducible losses.
"""

import abc
import math
from collections.abc import Callable
from typing import final

import torch
from torch import Tensor

from .._types import Time
from .._validation import check_floating, check_time_range

__all__ = [
    "BetaTime",
    "DensityTime",
    "ImportanceWeighted",
    "InverseCDFTime",
    "LogitNormalTime",
    "TimeSampler",
    "UniformTime",
]


def check_size(n: object) -> int:
    """Raise :class:`ValueError` unless ``n`` is a positive integer (a sample size)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    return n


def check_times(t: Tensor) -> None:
    """Raise :class:`TypeError` unless ``t`` is a floating tensor (metadata only, no sync)."""
    check_floating(t, "t")


class TimeSampler(abc.ABC):
    """Abstract distribution of training times on [0, 1], with its density p(t).

    The built-in samplers raise :class:`ValueError` for a size ``n`` that is not a positive
    integer and :class:`TypeError` for times ``t`` without a floating dtype (both checks read
    metadata only, so they never synchronise with the device).
    """

    @abc.abstractmethod
    def sample(
        self,
        n: int,
        *,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> Time:
        """``n`` independent times, shape ``(n,)``."""

    @abc.abstractmethod
    def density(self, t: Tensor) -> Tensor:
        """The density p(t) with respect to Lebesgue measure on [0, 1], shape of ``t``."""

    def weight(self, t: Tensor) -> Tensor:
        """The weight multiplying the per-sample loss at time ``t`` (1 unless overridden)."""
        check_times(t)
        return torch.ones_like(t)


@final
class UniformTime(TimeSampler):
    """t ~ U[low, high] (default U[0, 1], the paper's choice).

    A truncated interval such as ``UniformTime(1e-3, 1 - 1e-3)`` keeps training away from the
    ends, as the official notebooks do for singular conversions.
    """

    def __init__(self, low: float = 0.0, high: float = 1.0) -> None:
        if not 0.0 <= low < high <= 1.0:
            raise ValueError(f"need 0 <= low < high <= 1, got low={low}, high={high}")
        self.low = float(low)
        self.high = float(high)

    def sample(
        self,
        n: int,
        *,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> Time:
        check_size(n)
        u = torch.rand(n, generator=generator, dtype=dtype, device=device)
        if self.low == 0.0 and self.high == 1.0:
            return u
        return self.low + (self.high - self.low) * u

    def density(self, t: Tensor) -> Tensor:
        check_times(t)
        inside = (t >= self.low) & (t <= self.high)
        return inside.to(t.dtype) / (self.high - self.low)

    def __repr__(self) -> str:
        return f"UniformTime(low={self.low}, high={self.high})"


@final
class BetaTime(TimeSampler):
    r"""t ~ Beta(a, b), density t^{a−1}(1−t)^{b−1}/B(a, b).

    ``a, b > 1`` concentrate the times inside (0, 1); ``a, b < 1`` near the ends. Drawn by
    :class:`torch.distributions.Beta` on the CPU in a forked RNG seeded from ``generator``
    (the global RNG is left untouched), then moved to ``device``.
    """

    def __init__(self, a: float, b: float) -> None:
        for name, value in (("a", a), ("b", b)):
            if not value > 0 or not math.isfinite(value):
                raise ValueError(f"{name} must be a positive finite number, got {value}")
        self.a = float(a)
        self.b = float(b)
        self._log_norm = math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)

    def sample(
        self,
        n: int,
        *,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> Time:
        check_size(n)
        dist = torch.distributions.Beta(
            torch.tensor(self.a, dtype=torch.float64), torch.tensor(self.b, dtype=torch.float64)
        )
        if generator is None:
            t = dist.sample((n,))
        else:
            seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device))
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                t = dist.sample((n,))
        return t.to(dtype=dtype, device=device)

    def density(self, t: Tensor) -> Tensor:
        check_times(t)
        tc = t.clamp(0.0, 1.0)
        logp = (self.a - 1) * torch.log(tc) + (self.b - 1) * torch.log1p(-tc) - self._log_norm
        return torch.exp(logp)

    def __repr__(self) -> str:
        return f"BetaTime(a={self.a}, b={self.b})"


@final
class LogitNormalTime(TimeSampler):
    r"""t = σ(m + s·ε), ε ~ N(0, 1): the logit-normal law, density

    .. math:: p(t) = \frac{1}{s\sqrt{2π}}\,\frac{1}{t(1 − t)}
              \exp\Big(−\frac{(\operatorname{logit} t − m)^2}{2s^2}\Big),

    which puts more weight on the middle of the path (m = 0) or on one side of it (m ≠ 0), the
    time law of Esser et al. (rectified-flow training at scale, arXiv:2403.03206; m = 0, s = 1
    there). The density decays like exp(−(log t)²/(2s²)) at both ends, below every power of
    t, so as the law of an :class:`ImportanceWeighted` sampler its weights 1/p(t) make the
    weighted loss's variance infinite (:doc:`/mathematics`): use it as the time law itself,
    with unit weights, or importance-weight a law whose density is bounded below
    (:class:`DensityTime`).

    Parameters
    ----------
    mean, std:
        The location m and the scale s > 0 of the normal variable logit t.

    Example
    -------
    >>> import torch
    >>> t = LogitNormalTime(0.0, 1.0).sample(4, generator=torch.Generator().manual_seed(0))
    >>> t.shape, bool(((0 < t) & (t < 1)).all())
    (torch.Size([4]), True)
    """

    def __init__(self, mean: float = 0.0, std: float = 1.0) -> None:
        if not math.isfinite(mean):
            raise ValueError(f"mean must be a finite number, got {mean}")
        if not std > 0 or not math.isfinite(std):
            raise ValueError(f"std must be a positive finite number, got {std}")
        self.mean = float(mean)
        self.std = float(std)

    def sample(
        self,
        n: int,
        *,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> Time:
        check_size(n)
        eps = torch.randn(n, generator=generator, dtype=dtype, device=device)
        return torch.sigmoid(self.mean + self.std * eps)

    def density(self, t: Tensor) -> Tensor:
        check_times(t)
        tiny = torch.finfo(t.dtype).tiny  # p → 0 at the ends: exp(−∞)/0 computed as 0
        tc = t.clamp(tiny, 1.0 - torch.finfo(t.dtype).eps / 2)
        logit = torch.log(tc) - torch.log1p(-tc)
        log_p = (
            -0.5 * ((logit - self.mean) / self.std) ** 2
            - math.log(self.std * math.sqrt(2 * math.pi))
            - torch.log(tc)
            - torch.log1p(-tc)
        )
        inside = (t > 0) & (t < 1)
        return torch.where(inside, torch.exp(log_p), torch.zeros_like(t))

    def __repr__(self) -> str:
        return f"LogitNormalTime(mean={self.mean}, std={self.std})"


@final
class DensityTime(TimeSampler):
    r"""t drawn from any density: p(t) ∝ f(t) for a user function f ≥ 0 on [0, 1].

    f is tabulated once, at the midpoints of ``cells`` equal cells (in float64), and the law
    sampled is its piecewise-constant version p̃ (the cell's mass spread uniformly over the
    cell), drawn exactly by inverting its piecewise-linear CDF. :meth:`density` returns that
    p̃, the law actually sampled, so the weights 1/p̃ of :class:`ImportanceWeighted` are exact
    (its weighted loss is unbiased for the uniform one) whatever ``cells`` is; p̃ differs from
    f/∫f by O(1/cells²) in the mean over a cell for a smooth f.

    Parameters
    ----------
    density:
        f, an elementwise torch function of a float64 tensor, non-negative and finite on
        (0, 1), not identically zero (checked on the table); it need not be normalised. A
        module-level function pickles (a lambda does not).
    cells:
        Number of cells of the table (at least 2).

    Example
    -------
    >>> import torch
    >>> sampler = DensityTime(lambda t: t * (1 - t))  # Beta(2, 2)
    >>> t = sampler.sample(3, generator=torch.Generator().manual_seed(0))
    >>> t.shape, round(float(sampler.density(torch.tensor([0.5]))), 2)  # 6t(1 − t) at ½
    (torch.Size([3]), 1.5)
    """

    def __init__(self, density: Callable[[Tensor], Tensor], *, cells: int = 4096) -> None:
        if not callable(density):
            raise TypeError(f"density must be callable, got {type(density).__name__}")
        if not isinstance(cells, int) or isinstance(cells, bool) or cells < 2:
            raise ValueError(f"cells must be an integer ≥ 2, got {cells!r}")
        mid = (torch.arange(cells, dtype=torch.float64) + 0.5) / cells
        values = density(mid)
        if not isinstance(values, Tensor) or values.shape != mid.shape:
            raise ValueError("density must map a tensor of shape (n,) to one of that shape")
        values = values.to(torch.float64)
        if not bool(torch.isfinite(values).all()) or bool((values < 0).any()):
            raise ValueError("density must be finite and non-negative on (0, 1)")
        total = float(values.sum())
        if not total > 0:
            raise ValueError("density must be positive somewhere in (0, 1)")
        self._density = density
        self.cells = cells
        self._mass = values / total  # the probability of each cell
        self._cdf = torch.cat([torch.zeros(1, dtype=torch.float64), self._mass.cumsum(0)])
        self._cdf[-1] = 1.0

    def sample(
        self,
        n: int,
        *,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> Time:
        check_size(n)
        u = torch.rand(n, generator=generator, dtype=dtype, device=device)
        cdf = self._cdf.to(dtype=dtype, device=u.device)
        # the cell k with cdf[k] ≤ u < cdf[k + 1] (of positive mass), then uniform within it
        k = (torch.searchsorted(cdf, u, right=True) - 1).clamp(0, self.cells - 1)
        width = (cdf[k + 1] - cdf[k]).clamp_min(torch.finfo(dtype).tiny)
        within = ((u - cdf[k]) / width).clamp(0.0, 1.0)
        return ((k.to(dtype) + within) / self.cells).clamp(0.0, 1.0)

    def density(self, t: Tensor) -> Tensor:
        """The piecewise-constant density p̃(t) actually sampled (cells · mass of t's cell)."""
        check_times(t)
        mass = self._mass.to(dtype=t.dtype, device=t.device)
        k = (t * self.cells).floor().long().clamp(0, self.cells - 1)
        inside = (t >= 0) & (t <= 1)
        return torch.where(inside, self.cells * mass[k], torch.zeros_like(t))

    def __repr__(self) -> str:
        name = getattr(self._density, "__qualname__", None)
        module = getattr(self._density, "__module__", None)
        label = f"{module}.{name}" if isinstance(name, str) else repr(self._density)
        return f"DensityTime({label}, cells={self.cells})"


@final
class InverseCDFTime(TimeSampler):
    """t = F⁻¹(u), u ~ U[0, 1], for a user distribution with inverse CDF F⁻¹ and density p.

    Parameters
    ----------
    inverse_cdf:
        Elementwise torch function mapping [0, 1] into [0, 1] (checked on every draw).
    density:
        Elementwise torch function p(t) (used by :class:`ImportanceWeighted`).

    Example
    -------
    >>> import torch
    >>> sampler = InverseCDFTime(torch.sqrt, lambda t: 2 * t)  # p(t) = 2t
    >>> sampler.sample(3, generator=torch.Generator().manual_seed(0)).shape
    torch.Size([3])
    """

    def __init__(
        self, inverse_cdf: Callable[[Tensor], Tensor], density: Callable[[Tensor], Tensor]
    ) -> None:
        self._inverse_cdf = inverse_cdf
        self._density = density

    def sample(
        self,
        n: int,
        *,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> Time:
        check_size(n)
        u = torch.rand(n, generator=generator, dtype=dtype, device=device)
        t = self._inverse_cdf(u)
        if not isinstance(t, Tensor) or t.shape != u.shape:
            raise ValueError("inverse_cdf must map a tensor of shape (n,) to one of that shape")
        check_time_range(t, "inverse_cdf(u)")
        return t

    def density(self, t: Tensor) -> Tensor:
        check_times(t)
        return self._density(t)

    def __repr__(self) -> str:
        return "InverseCDFTime(...)"


@final
class ImportanceWeighted(TimeSampler):
    """Draw t from ``sampler`` (density p) and weight each loss by 1/p(t).

    The expected weighted loss is then the loss under uniform times, E_{t~U}[ℓ(t)], whatever
    p is; p only changes the Monte-Carlo variance. The density is floored at ``min_density``
    so that a time drawn where p underflows gives a large but finite weight.
    """

    def __init__(self, sampler: TimeSampler, min_density: float = 1e-6) -> None:
        if not isinstance(sampler, TimeSampler):
            raise TypeError(f"sampler must be a TimeSampler, got {type(sampler).__name__}")
        if isinstance(sampler, ImportanceWeighted):
            raise TypeError("sampler is already importance weighted")
        if not min_density > 0:
            raise ValueError(f"min_density must be positive, got {min_density}")
        self.sampler = sampler
        self.min_density = float(min_density)

    def sample(
        self,
        n: int,
        *,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> Time:
        check_size(n)
        return self.sampler.sample(n, generator=generator, dtype=dtype, device=device)

    def density(self, t: Tensor) -> Tensor:
        check_times(t)
        return self.sampler.density(t)

    def weight(self, t: Tensor) -> Tensor:
        check_times(t)
        return 1.0 / self.sampler.density(t).clamp_min(self.min_density)

    def __repr__(self) -> str:
        return f"ImportanceWeighted({self.sampler!r})"
