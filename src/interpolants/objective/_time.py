r"""Distributions of the training time t, with optional importance weights.

An objective draws one time per sample from a :class:`TimeSampler` (uniform on [0, 1] by
default) and multiplies each per-sample loss by :meth:`~TimeSampler.weight`. Every sampler here
has weight 1 except :class:`ImportanceWeighted`, whose weight 1/p(t) makes the expected loss
equal to the loss under uniform times while t is drawn from p. (Any time distribution with
full support on (0, 1) has the same minimiser; the weights change only the variance and the
relative emphasis of the times.)

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
from .._validation import check_time_range

__all__ = ["BetaTime", "ImportanceWeighted", "InverseCDFTime", "TimeSampler", "UniformTime"]


class TimeSampler(abc.ABC):
    """Abstract distribution of training times on [0, 1], with its density p(t)."""

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
        u = torch.rand(n, generator=generator, dtype=dtype, device=device)
        if self.low == 0.0 and self.high == 1.0:
            return u
        return self.low + (self.high - self.low) * u

    def density(self, t: Tensor) -> Tensor:
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
        tc = t.clamp(0.0, 1.0)
        logp = (self.a - 1) * torch.log(tc) + (self.b - 1) * torch.log1p(-tc) - self._log_norm
        return torch.exp(logp)

    def __repr__(self) -> str:
        return f"BetaTime(a={self.a}, b={self.b})"


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
        u = torch.rand(n, generator=generator, dtype=dtype, device=device)
        t = self._inverse_cdf(u)
        if not isinstance(t, Tensor) or t.shape != u.shape:
            raise ValueError("inverse_cdf must map a tensor of shape (n,) to one of that shape")
        check_time_range(t, "inverse_cdf(u)")
        return t

    def density(self, t: Tensor) -> Tensor:
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
        return self.sampler.sample(n, generator=generator, dtype=dtype, device=device)

    def density(self, t: Tensor) -> Tensor:
        return self.sampler.density(t)

    def weight(self, t: Tensor) -> Tensor:
        return 1.0 / self.sampler.density(t).clamp_min(self.min_density)

    def __repr__(self) -> str:
        return f"ImportanceWeighted({self.sampler!r})"
