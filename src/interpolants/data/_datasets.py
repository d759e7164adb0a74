r"""Datasets that need no download: 2-D toys, Gaussian mixtures and the bundled 8×8 digits.

Every 2-D sampler is a small final class with ``sample(n, generator)`` returning an ``(n, 2)``
tensor, scaled so that the data has an O(1) spread (unit-ish variance), which suits a
N(0, I) base. :data:`TOY_DATASETS` maps the command-line names to the classes.

The digits are scikit-learn's bundled ``load_digits`` (1797 images of 8×8 pixels with
17 intensity levels 0..16): :func:`load_digits` dequantises them with uniform noise,
y = (x + u)/17 with u ~ U[0, 1)^64, and rescales to [−1, 1); it splits them into a fixed
train/test partition (seeded permutation, 1497/300).
"""

import abc
import math
from dataclasses import dataclass
from typing import final

import torch
from jaxtyping import Float
from torch import Tensor

from ..analytic._exact import GaussianMixture
from ._quantize import dequantize

__all__ = [
    "TOY_DATASETS",
    "Checkerboard",
    "Circles",
    "DigitsData",
    "EightGaussians",
    "GaussianMixtureData",
    "Moons",
    "Pinwheel",
    "SwissRoll",
    "ToyDataset",
    "TwoSpirals",
    "load_digits",
]


class ToyDataset(abc.ABC):
    """Abstract sampler of a 2-D toy distribution."""

    dim: int = 2

    @abc.abstractmethod
    def sample(self, n: int, generator: torch.Generator | None = None) -> Float[Tensor, "n 2"]:
        """``n`` float32 samples, shape ``(n, 2)``."""


def _check_n(n: int) -> None:
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")


@final
class EightGaussians(ToyDataset):
    """Eight Gaussians of std ``std`` at radius ``radius`` on the unit-circle angles kπ/4."""

    def __init__(self, radius: float = 2.0, std: float = 0.2) -> None:
        self.radius, self.std = radius, std

    def sample(self, n: int, generator: torch.Generator | None = None) -> Float[Tensor, "n 2"]:
        _check_n(n)
        k = torch.randint(0, 8, (n,), generator=generator)
        angle = k.float() * (math.pi / 4)
        centers = self.radius * torch.stack([torch.cos(angle), torch.sin(angle)], 1)
        return centers + self.std * torch.randn(n, 2, generator=generator)

    def as_mixture(self, dtype: torch.dtype = torch.float64) -> GaussianMixture:
        """The same law as an exact :class:`GaussianMixture`."""
        angle = torch.arange(8, dtype=dtype) * (math.pi / 4)
        means = self.radius * torch.stack([torch.cos(angle), torch.sin(angle)], 1)
        return GaussianMixture.isotropic(torch.ones(8, dtype=dtype), means, self.std)


@final
class Moons(ToyDataset):
    """Two interleaving half circles (scikit-learn's moons), centred, with Gaussian noise."""

    def __init__(self, noise: float = 0.05) -> None:
        self.noise = noise

    def sample(self, n: int, generator: torch.Generator | None = None) -> Float[Tensor, "n 2"]:
        _check_n(n)
        upper = torch.rand(n, generator=generator) < 0.5
        s = math.pi * torch.rand(n, generator=generator)
        x = torch.where(upper, torch.cos(s), 1 - torch.cos(s))
        y = torch.where(upper, torch.sin(s), 0.5 - torch.sin(s))
        out = torch.stack([x - 0.5, y - 0.25], 1) * 2.0
        return out + self.noise * 2.0 * torch.randn(n, 2, generator=generator)


@final
class Circles(ToyDataset):
    """Two concentric circles of radii 1 and 2 (scaled), with Gaussian noise."""

    def __init__(self, noise: float = 0.05) -> None:
        self.noise = noise

    def sample(self, n: int, generator: torch.Generator | None = None) -> Float[Tensor, "n 2"]:
        _check_n(n)
        radius = torch.where(torch.rand(n, generator=generator) < 0.5, 1.0, 2.0)
        angle = 2 * math.pi * torch.rand(n, generator=generator)
        out = radius[:, None] * torch.stack([torch.cos(angle), torch.sin(angle)], 1)
        return out + self.noise * torch.randn(n, 2, generator=generator)


@final
class Checkerboard(ToyDataset):
    """Uniform on the black squares of a 4×4 checkerboard on [−2, 2]²."""

    def sample(self, n: int, generator: torch.Generator | None = None) -> Float[Tensor, "n 2"]:
        _check_n(n)
        x1 = 4 * torch.rand(n, generator=generator) - 2
        shift = torch.randint(0, 2, (n,), generator=generator).float() * 2
        x2 = torch.rand(n, generator=generator) - shift + torch.floor(x1) % 2
        return torch.stack([x1, x2], 1)


@final
class Pinwheel(ToyDataset):
    """Five curved arms (the pinwheel of FFJORD), radial std 0.3, tangential std 0.1."""

    def __init__(self, arms: int = 5, rate: float = 0.25) -> None:
        self.arms, self.rate = arms, rate

    def sample(self, n: int, generator: torch.Generator | None = None) -> Float[Tensor, "n 2"]:
        _check_n(n)
        feats = torch.randn(n, 2, generator=generator) * torch.tensor([0.3, 0.1])
        feats[:, 0] += 1.0
        arm = torch.randint(0, self.arms, (n,), generator=generator).float()
        angle = arm * (2 * math.pi / self.arms) + self.rate * torch.exp(feats[:, 0])
        rot = torch.stack(
            [torch.cos(angle), -torch.sin(angle), torch.sin(angle), torch.cos(angle)], 1
        ).reshape(n, 2, 2)
        return 2 * torch.einsum("nij,nj->ni", rot, feats)


@final
class TwoSpirals(ToyDataset):
    """Two interleaved Archimedean spirals with Gaussian noise."""

    def __init__(self, noise: float = 0.1) -> None:
        self.noise = noise

    def sample(self, n: int, generator: torch.Generator | None = None) -> Float[Tensor, "n 2"]:
        _check_n(n)
        r = torch.sqrt(torch.rand(n, generator=generator)) * 540 * (2 * math.pi) / 360
        sign = torch.where(torch.rand(n, generator=generator) < 0.5, 1.0, -1.0)
        x = sign * -torch.cos(r) * r
        y = sign * torch.sin(r) * r
        out = torch.stack([x, y], 1) / 3
        return out + self.noise * torch.randn(n, 2, generator=generator)


@final
class SwissRoll(ToyDataset):
    """The 2-D Swiss roll (t cos t, t sin t), t ∈ [1.5π, 4.5π], scaled to O(1)."""

    def __init__(self, noise: float = 0.1) -> None:
        self.noise = noise

    def sample(self, n: int, generator: torch.Generator | None = None) -> Float[Tensor, "n 2"]:
        _check_n(n)
        t = 1.5 * math.pi * (1 + 2 * torch.rand(n, generator=generator))
        out = torch.stack([t * torch.cos(t), t * torch.sin(t)], 1) / 5
        return out + self.noise * torch.randn(n, 2, generator=generator)


@final
class GaussianMixtureData:
    """Samples of a :class:`GaussianMixture` in float32 (any dimension)."""

    def __init__(self, mixture: GaussianMixture) -> None:
        self.mixture = mixture
        self.dim = mixture.dim

    def sample(self, n: int, generator: torch.Generator | None = None) -> Float[Tensor, "n dim"]:
        _check_n(n)
        return self.mixture.sample(n, generator).float()


TOY_DATASETS: dict[str, type[ToyDataset]] = {
    "8gaussians": EightGaussians,
    "moons": Moons,
    "circles": Circles,
    "checkerboard": Checkerboard,
    "pinwheel": Pinwheel,
    "2spirals": TwoSpirals,
    "swissroll": SwissRoll,
}
"""Command-line names of the 2-D toys."""


@dataclass(frozen=True)
class DigitsData:
    """The bundled 8×8 digits, dequantised and scaled to [−1, 1).

    Attributes
    ----------
    train, test:
        Float32 tensors of shapes ``(1497, 64)`` and ``(300, 64)``.
    train_labels, test_labels:
        int64 digit classes 0..9.
    levels:
        Number of intensity levels of the raw data (17).
    scale:
        The affine factor a of y = a·(x + u) + c, here 2/17 (:func:`dequantize`
        with 17 levels onto [−1, 1); :func:`bits_per_dim` takes the same).
    """

    train: Tensor
    test: Tensor
    train_labels: Tensor
    test_labels: Tensor
    levels: int = 17
    scale: float = 2.0 / 17.0


def load_digits(generator: torch.Generator | None = None, test_size: int = 300) -> DigitsData:
    """Load scikit-learn's bundled digits (no download), dequantised and split.

    The split is fixed (a permutation seeded with 0) whatever ``generator`` is; ``generator``
    only draws the dequantisation noise. Needs scikit-learn (installed with the ``dev`` extra).
    """
    try:
        from sklearn.datasets import load_digits as _sk_load_digits
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("load_digits needs scikit-learn: pip install scikit-learn") from err
    raw = _sk_load_digits()
    x = torch.as_tensor(raw.data, dtype=torch.float32)
    y = torch.as_tensor(raw.target, dtype=torch.int64)
    if not 0 < test_size < x.shape[0]:
        raise ValueError(f"test_size must lie in (0, {x.shape[0]}), got {test_size}")
    perm = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(0))
    x, y = x[perm], y[perm]
    scaled = dequantize(x, levels=17, low=-1.0, high=1.0, generator=generator, dtype=torch.float32)
    return DigitsData(
        train=scaled[test_size:],
        test=scaled[:test_size],
        train_labels=y[test_size:],
        test_labels=y[:test_size],
    )
